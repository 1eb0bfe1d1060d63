//! # phiguard-dicom
//!
//! DICOM de-identification: PS3.15 Annex E profiles and options, UID remapping, private tags, burned-in text flags.
