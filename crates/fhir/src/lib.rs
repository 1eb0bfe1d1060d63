//! # phiguard-fhir
//!
//! FHIR R4 JSON de-identification: resources, Bundles, NDJSON; references remapped, narrative and attachments through the text detector.
