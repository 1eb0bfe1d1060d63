#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration tests for phiguard-dicom: leaks over the corpus, structure round trips, key
//! consistency, options, malformed input.

mod common;
mod keys;
mod leak;
mod malformed;
mod options;
mod stream;
mod structure;
mod synth;
