//! The API error: an HTTP status, a stable machine-readable `code`, and a message that never
//! carries request content. Rendered in OpenAI's error shape:
//! `{"error":{"message":…,"type":…,"param":null,"code":…}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every error the gateway returns to a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable code (see [`codes`]).
    pub code: &'static str,
    /// Human-readable, PHI-free.
    pub message: String,
    /// Seconds to send as `Retry-After` (rate limits).
    pub retry_after_secs: Option<u64>,
}

/// The stable error codes.
pub mod codes {
    pub const MISSING_API_KEY: &str = "missing_api_key";
    pub const INVALID_API_KEY: &str = "invalid_api_key";
    pub const CLIENT_CERT_MISMATCH: &str = "client_cert_mismatch";
    pub const ROLE_NOT_CONFIGURED: &str = "role_not_configured";
    pub const MODEL_NOT_ALLOWED: &str = "model_not_allowed";
    pub const ACTION_NOT_ALLOWED: &str = "action_not_allowed";
    pub const MODEL_NOT_FOUND: &str = "model_not_found";
    pub const MODEL_RETIRED: &str = "model_retired";
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const REQUEST_TOO_LARGE: &str = "request_too_large";
    pub const PATIENT_REF_REQUIRED: &str = "patient_ref_required";
    pub const PHI_BLOCKED: &str = "phi_blocked";
    pub const PHI_ROUTE_DENIED: &str = "phi_route_denied";
    pub const INJECTION_BLOCKED: &str = "injection_blocked";
    pub const GUARD_FAILED: &str = "guard_failed";
    pub const AUDIT_FAILED: &str = "audit_failed";
    pub const UPSTREAM_ERROR: &str = "upstream_error";
    pub const UPSTREAM_TIMEOUT: &str = "upstream_timeout";
    pub const NOT_FOUND: &str = "not_found";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const NOT_READY: &str = "not_ready";
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// Adds a `Retry-After` header of `secs` seconds.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// OpenAI's `type` for this status.
    pub fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 | 400 | 410 | 422 => "invalid_request_error",
            429 => "rate_limit_error",
            502 | 504 => "upstream_error",
            _ => "api_error",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind(), "param": null, "code": self.code}})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        r
    }
}
