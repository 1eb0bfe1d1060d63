//! phiguard-audit integration tests: RFC 6962 known answers, properties of proofs, and the
//! export verifier against tampered files and a lying server.

// A test crate: helpers outside `#[test]` functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod encrypted_store;
mod export;
mod properties;
mod rfc6962;
