//! phiguard-crypto integration tests: AES-256-GCM known answers (NIST CAVP, Wycheproof), the
//! envelope format's round trips and failure modes, the local key file, rotation and rewrap.

// A test crate: helpers outside `#[test]` functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod aws_kms;
mod azure_kv;
mod envelope;
mod field;
mod gcp_kms;
mod kat;
mod keyfile;
mod mock_http;
mod pkcs11;
mod redaction;
mod support;
