//! # phiguard-gateway
//!
//! The AI gateway: OpenAI-compatible API, BAA-enforced provider routing, PHI guards in and out,
//! roles, an audit record per call.
//!
//! Data flow for `POST /v1/chat/completions`: authenticate the service key ([`keys`]) → role,
//! action and model checks ([`config`]) → screen the caller's texts for prompt injection
//! (`phiguard-injection`; the role's `injection` mode: off, flag or block) → scan every string
//! leaf and apply the role's input policy ([`guard`]) → deny-by-default routing ([`routing`])
//! → dispatch audit record ([`audit`]) → provider adapter ([`providers`]) → restore or scrub the answer ([`guard`],
//! [`stream`] for SSE) → completion audit record → answer. Any failure of the detector, the
//! injection screen, the vault or the audit sink refuses the request.

pub mod audit;
pub mod config;
pub mod error;
pub mod guard;
pub mod keys;
pub mod metrics;
pub mod providers;
pub mod routing;
pub mod server;
pub mod stream;
pub mod tls;

pub use audit::{AuditSink, AuditSinkError, GroupCommit, MemorySink, Submitted, Syncer, Wait};
pub use config::{Config, ConfigError};
pub use error::ApiError;
pub use guard::{InjectionScreen, PhiScanner, Vault};
pub use keys::{KeyStore, Principal};
pub use server::{Gateway, serve, serve_tls, serve_tls_reloading};
