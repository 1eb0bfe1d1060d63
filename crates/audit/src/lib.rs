//! # phiguard-audit
//!
//! The tamper-evident audit trail: an append-only log of JSON records (AI requests, admin
//! actions, logins, key use, de-identification runs) in an RFC 6962 Merkle tree over SQLite,
//! Ed25519-signed checkpoints in the C2SP signed-note format, inclusion and consistency proofs,
//! an export file and an offline verifier that needs only that file and the public key.
//!
//! Records are stored as canonical JSON ([`canonical`]); the leaf of record `i` is the
//! canonical JSON `{"appended_at":"<RFC 3339 UTC>","record":<record>}`, so the time of logging
//! is covered by the tree too. The store is the embedded SQLite file ([`store`]) or a
//! PostgreSQL database shared by several instances ([`pg`]), chosen by URL ([`backend`]).
//! In the SQLite store, record payloads are encrypted under a phiguard-crypto key provider
//! ([`encryption`]; the CLI uses the local key file), while leaf hashes stay over the
//! plaintext, so proofs and exports do not change.
//! The crate never logs, and its errors and `Debug` output never show record contents or key
//! material.
//!
//! ```
//! use phiguard_audit::{AuditLog, Signer, verify};
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir()?;
//! let mut log = AuditLog::open(&dir.path().join("audit.db"))?;
//! let receipts = log.append_batch(&[
//!     json!({"user": "svc-summarizer", "patient_ref": "p-81f3", "action": "summarization"}),
//!     json!({"user": "alice", "action": "login"}),
//! ])?;
//! let head = log.tree_head()?;
//! assert_eq!(head.size, 2);
//!
//! // Prove record 0 is in the tree, and check the proof as a third party would.
//! let proof = log.inclusion_proof(0, head.size)?;
//! verify::verify_inclusion(0, head.size, &receipts[0].leaf_hash, &proof, &head.root)?;
//!
//! // Sign a checkpoint; anyone with the verifier key can check it.
//! let signer = Signer::from_seed("example.com/audit", [7; 32])?;
//! let checkpoint = log.sign_checkpoint(&signer)?;
//! let opened = signer.verifier().open_checkpoint(&checkpoint.note)?;
//! assert_eq!((opened.size, opened.root), (head.size, head.root));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backend;
pub mod canonical;
pub mod encryption;
pub mod error;
pub mod export;
pub mod file_key;
pub mod hash;
pub mod journal;
pub mod note;
pub mod pg;
pub mod pg_tls;
pub mod store;
pub mod tree;
pub mod verify;

pub use backend::{AuditStore, StoreUrl};
pub use encryption::PayloadCipher;
pub use error::AuditError;
pub use export::{ExportReport, Problem, verify_export};
pub use hash::{Hash, empty_root, leaf_hash, node_hash};
pub use journal::{JournalOptions, JournalSyncer, JournaledLog};
pub use note::{Checkpoint, KeyOrigin, NoteError, Signer, VerifierKey};
pub use pg::PgAuditLog;
pub use store::{
    AuditLog, Durability, Entry, Options, Query, Receipt, StoreCheck, StoredCheckpoint, TreeHead,
    WalSyncer,
};
