//! The HTTP front end: `GET /health` (liveness), `GET /ready` (readiness), `GET /v1/models`, `POST /v1/chat/completions` (plain and
//! `stream: true`), errors in OpenAI's shape. Each request: authenticate the service key, check
//! role, model and action, guard the body, route (deny by default), write the dispatch audit
//! record, call the provider, filter the answer, write the completion record, answer.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use futures_util::StreamExt;
use rand::RngCore;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use crate::audit::{AuditSink, Wait};
use crate::config::{
    Config, Durability, InjectionMode, InputPolicy, PhiPermission, ProviderKind, RoleConfig,
};
use crate::error::{ApiError, codes};
use crate::guard::{self, GuardReport, InjectionScreen, OutputMode, PhiScanner, Vault};
use crate::keys::{KeyRejection, KeyStore, Principal};
use crate::metrics::Metrics;
use crate::providers::aws_credentials::AwsCredentials;
use crate::providers::azure_openai::AzureOpenAi;
use crate::providers::bedrock::Bedrock;
use crate::providers::openai_compatible::OpenAiCompatible;
use crate::providers::vertex::Vertex;
use crate::providers::{ProviderAdapter, UpstreamError};
use crate::routing::phi_eligibility;
use crate::stream::StreamFilter;

/// The service name BAAs must cover for chat completions.
pub const SERVICE_CHAT: &str = "chat.completions";
/// The service name BAAs must cover for embeddings.
pub const SERVICE_EMBEDDINGS: &str = "embeddings";

/// Which operation a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Chat,
    Embeddings,
}

impl Op {
    fn service(self) -> &'static str {
        match self {
            Op::Chat => SERVICE_CHAT,
            Op::Embeddings => SERVICE_EMBEDDINGS,
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Op::Chat => "gateway.chat_completions",
            Op::Embeddings => "gateway.embeddings",
        }
    }
    fn route(self) -> &'static str {
        match self {
            Op::Chat => "/v1/chat/completions",
            Op::Embeddings => "/v1/embeddings",
        }
    }
    fn default_action(self) -> &'static str {
        match self {
            Op::Chat => "chat",
            Op::Embeddings => "embedding",
        }
    }
}

/// The header naming the patient a request is about.
pub const PATIENT_REF_HEADER: &str = "x-patient-ref";
/// The header naming the action (default `chat`).
pub const ACTION_HEADER: &str = "x-phiguard-action";
/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The end user a service calls for (an opaque reference, as `X-Patient-Ref`): recorded in
/// the audit record and counted by `limits.requests_per_second_per_user`.
pub const USER_HEADER: &str = "x-phiguard-user";

/// Past this many tracked users, users idle long enough to be back at a full burst are
/// forgotten (memory stays bounded whatever users callers name).
const USER_LIMITER_TRIM: usize = 100_000;

/// Everything a running gateway shares.
pub struct Gateway {
    config: Config,
    scanner: Arc<dyn PhiScanner>,
    injection: Arc<dyn InjectionScreen>,
    keys: Arc<KeyStore>,
    audit: Arc<dyn AuditSink>,
    providers: BTreeMap<String, Arc<dyn ProviderAdapter>>,
    today: fn() -> time::Date,
    limiter: Option<governor::DefaultKeyedRateLimiter<String>>,
    route_limiter: Option<governor::DefaultKeyedRateLimiter<&'static str>>,
    /// Keyed by `<key id>/<end user>`.
    user_limiter: Option<governor::DefaultKeyedRateLimiter<String>>,
    metrics: Arc<Metrics>,
}

/// A keyed GCRA limiter for `rate` per second with `burst` (default: the rate).
fn keyed_limiter<K: std::hash::Hash + Eq + Clone>(
    name: &str,
    rate: Option<u32>,
    burst: Option<u32>,
) -> Result<Option<governor::DefaultKeyedRateLimiter<K>>, String> {
    let Some(rate) = rate else {
        return Ok(None);
    };
    let rate = NonZeroU32::new(rate).ok_or_else(|| format!("{name} must be at least 1"))?;
    let burst = burst.and_then(NonZeroU32::new).unwrap_or(rate);
    Ok(Some(governor::RateLimiter::keyed(
        governor::Quota::per_second(rate).allow_burst(burst),
    )))
}

/// Takes one cell from `limiter` for `key`, or refuses with 429 and a `Retry-After` (whole
/// seconds, at least 1).
fn take<K: std::hash::Hash + Eq + Clone>(
    limiter: Option<&governor::DefaultKeyedRateLimiter<K>>,
    key: &K,
    message: &'static str,
) -> Result<(), ApiError> {
    use governor::clock::Clock;
    let Some(l) = limiter else {
        return Ok(());
    };
    l.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(l.clock().now());
        let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED, message)
            .with_retry_after(secs)
    })
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn today_utc() -> time::Date {
    OffsetDateTime::now_utc().date()
}

impl Gateway {
    /// Builds the gateway: one adapter per configured provider.
    pub fn new(
        config: Config,
        scanner: Arc<dyn PhiScanner>,
        keys: Arc<KeyStore>,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Gateway, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|_| "cannot build the HTTP client".to_string())?;
        let timeout = Duration::from_secs(config.limits.upstream_timeout_secs);
        let mut providers: BTreeMap<String, Arc<dyn ProviderAdapter>> = BTreeMap::new();
        for (name, p) in &config.providers {
            let adapter: Arc<dyn ProviderAdapter> = match p.kind {
                ProviderKind::OpenaiCompatible => Arc::new(OpenAiCompatible::new(
                    client.clone(),
                    &p.endpoint,
                    p.api_key.clone(),
                    timeout,
                )),
                ProviderKind::Bedrock => {
                    let creds = AwsCredentials::resolve(p)
                        .map_err(|e| format!("providers.{name}: AWS credentials: {e}"))?;
                    // The source only (never a key): operators see which one was picked.
                    eprintln!(
                        "phiguard-gateway: providers.{name}: AWS credentials from {}",
                        creds.source()
                    );
                    Arc::new(
                        Bedrock::new(
                            client.clone(),
                            &p.endpoint,
                            p.region.as_deref().unwrap_or(""),
                            creds,
                            timeout,
                        )
                        .map_err(|e| format!("providers.{name}.{e}"))?,
                    )
                }
                ProviderKind::AzureOpenai => Arc::new(
                    AzureOpenAi::from_config(client.clone(), p, timeout)
                        .map_err(|e| format!("providers.{name}: {e}"))?,
                ),
                ProviderKind::Vertex => Arc::new(
                    Vertex::from_config(client.clone(), p, timeout)
                        .map_err(|e| format!("providers.{name}: {e}"))?,
                ),
            };
            providers.insert(name.clone(), adapter);
        }
        let limiter = keyed_limiter(
            "limits.requests_per_second_per_key",
            config.limits.requests_per_second_per_key,
            config.limits.burst_per_key,
        )?;
        let route_limiter = keyed_limiter(
            "limits.requests_per_second_per_route",
            config.limits.requests_per_second_per_route,
            config.limits.burst_per_route,
        )?;
        let user_limiter = keyed_limiter(
            "limits.requests_per_second_per_user",
            config.limits.requests_per_second_per_user,
            config.limits.burst_per_user,
        )?;
        for w in config.baa_expiry_warnings(today_utc(), 30) {
            eprintln!("phiguard-gateway: warning: {w}");
        }
        for w in config.warnings() {
            // Provider and checklist key names only.
            eprintln!("phiguard-gateway: warning: {w}");
        }
        let injection = phiguard_injection::Screen::try_new()
            .map_err(|e| format!("the prompt-injection screen cannot be loaded: {e}"))?;
        Ok(Gateway {
            config,
            scanner,
            injection: Arc::new(injection),
            keys,
            audit,
            providers,
            today: today_utc,
            limiter,
            route_limiter,
            user_limiter,
            metrics: Arc::new(Metrics::default()),
        })
    }

    /// Replaces the prompt-injection screen (tests plug in a failing one).
    pub fn with_injection_screen(mut self, screen: Arc<dyn InjectionScreen>) -> Self {
        self.injection = screen;
        self
    }

    /// Replaces the clock used for BAA dates (tests).
    pub fn with_today(mut self, today: fn() -> time::Date) -> Self {
        self.today = today;
        self
    }

    /// The axum router.
    pub fn router(self) -> Router {
        let state = Arc::new(self);
        Router::new()
            .route("/health", get(health))
            .route("/ready", get(ready))
            .route("/v1/models", get(models))
            .route("/v1/phiguard/providers", get(providers_view))
            .route("/metrics", get(metrics))
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/embeddings", post(embeddings))
            .fallback(not_found)
            .with_state(state)
    }
}

/// Serves `gateway` on `listener` until `shutdown` resolves.
pub async fn serve(
    gateway: Gateway,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // No Nagle delay: SSE chunks and small answers go out at once (otherwise a body written
    // after the headers can wait for a delayed ACK, ~40 ms).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, gateway.router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves `gateway` over TLS (see [`crate::tls`]) on `listener` until `shutdown` resolves.
pub async fn serve_tls(
    gateway: Gateway,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = crate::tls::TlsListener::new(listener, tls)?;
    serve_on_tls(gateway, listener, shutdown).await
}

/// Serves over TLS built from `tls`, reloading the certificate, key and client CA when their
/// files change (checked every `every`; see [`crate::tls::TlsListener::reloading`]).
pub async fn serve_tls_reloading(
    gateway: Gateway,
    listener: tokio::net::TcpListener,
    tls: crate::config::TlsConfig,
    every: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = crate::tls::TlsListener::reloading(listener, tls, every)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    serve_on_tls(gateway, listener, shutdown).await
}

/// Serves on a TLS listener, with each connection's peer (address, client certificate) given
/// to the handlers.
async fn serve_on_tls(
    gateway: Gateway,
    listener: crate::tls::TlsListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        gateway
            .router()
            .into_make_service_with_connect_info::<crate::tls::TlsPeer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Liveness: the process is up and serving.
async fn health() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Readiness: 200 only when the key store can be read, the audit sink reports healthy and at
/// least one provider is configured; otherwise 503 naming the check that failed.
async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    let checked = tokio::task::spawn_blocking(move || readiness(&gw)).await;
    match checked {
        Ok(Ok(())) => axum::Json(
            json!({"status": "ready", "checks": {"providers": "ok", "key_store": "ok", "audit": "ok"}}),
        )
        .into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(_) => not_ready("readiness", "the check did not finish").into_response(),
    }
}

fn not_ready(check: &str, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        codes::NOT_READY,
        format!("not ready: {check}: {why}"),
    )
}

fn readiness(gw: &Gateway) -> Result<(), ApiError> {
    if gw.providers.is_empty() {
        return Err(not_ready("providers", "no provider is configured"));
    }
    gw.keys
        .health()
        .map_err(|_| not_ready("key_store", "the key store cannot be read"))?;
    gw.audit.health().map_err(|e| not_ready("audit", &e.0))?;
    Ok(())
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    let mut text = gw.metrics.render();
    text.push_str(&baa_metrics(&gw.config, (gw.today)()));
    text.push_str(&audit_metrics(gw.audit.as_ref()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// The gauges the audit sink reports (each only if it has that stage).
fn audit_metrics(sink: &dyn AuditSink) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (name, help, value) in [
        (
            "phiguard_gateway_audit_backlog",
            "Audit records durable in the journal and not yet taken into the audit store.",
            sink.backlog(),
        ),
        (
            "phiguard_gateway_audit_unsynced",
            "Audit records written and not yet fsynced (durability = \"background\").",
            sink.unsynced(),
        ),
    ] {
        if let Some(n) = value {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {n}");
        }
    }
    out
}

/// The BAA of every provider that depends on one (not private deployments), as of `today`:
/// days until it expires (0 or less once it has) and whether it is in effect, so that an
/// alert can fire before PHI routing to a provider stops. Labels are provider names from the
/// config.
fn baa_metrics(config: &Config, today: time::Date) -> String {
    use std::fmt::Write as _;
    let baas: Vec<_> = config.baa_bound().collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP phiguard_gateway_baa_days_remaining Days until each provider's BAA expires (0 or less: expired; PHI is no longer routed to it)."
    );
    let _ = writeln!(out, "# TYPE phiguard_gateway_baa_days_remaining gauge");
    for (name, b) in &baas {
        let days = b.days_remaining(today);
        let _ = writeln!(
            out,
            "phiguard_gateway_baa_days_remaining{{provider=\"{}\"}} {days}",
            label(name)
        );
    }
    let _ = writeln!(
        out,
        "# HELP phiguard_gateway_baa_active 1 while the provider's BAA is signed, in effect and not expired, else 0."
    );
    let _ = writeln!(out, "# TYPE phiguard_gateway_baa_active gauge");
    for (name, b) in &baas {
        let _ = writeln!(
            out,
            "phiguard_gateway_baa_active{{provider=\"{}\"}} {}",
            label(name),
            u8::from(b.in_effect(today))
        );
    }
    out
}

/// A Prometheus label value: backslash, quote and line breaks escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such route")
}

fn date_str(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn new_request_id() -> String {
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("req_{}", hex::encode(b))
}

/// The SHA-256 of the client certificate the request's connection presented (mutual TLS).
fn peer_cert(extensions: &axum::http::Extensions) -> Option<[u8; 32]> {
    extensions
        .get::<axum::extract::ConnectInfo<crate::tls::TlsPeer>>()
        .and_then(|c| c.0.client_cert)
}

/// The API key of the request, checked against the key store and, for a key bound to a client
/// certificate, against the certificate the connection presented (`client_cert`).
fn authenticate(
    gw: &Gateway,
    headers: &HeaderMap,
    client_cert: Option<[u8; 32]>,
) -> Result<Principal, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::MISSING_API_KEY,
            "missing API key: send Authorization: Bearer pg_…",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    match gw.keys.verify(token) {
        Ok(Ok(p)) if p.client_cert.is_some() && p.client_cert != client_cert => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::CLIENT_CERT_MISMATCH,
            "the API key is bound to a client certificate this connection did not present",
        )),
        Ok(Ok(p)) => Ok(p),
        Ok(Err(r)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::INVALID_API_KEY,
            match r {
                KeyRejection::Malformed => "the API key is malformed",
                KeyRejection::Unknown => "the API key is not valid",
                KeyRejection::Revoked => "the API key was revoked",
                KeyRejection::Expired => "the API key has expired",
            },
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::GUARD_FAILED,
            "the key store is unavailable",
        )),
    }
}

/// The per-key limit first (a key over its own limit does not use up the route's), then the
/// per-route limit.
fn check_limits(gw: &Gateway, principal: &Principal, route: &'static str) -> Result<(), ApiError> {
    take(
        gw.limiter.as_ref(),
        &principal.key_id,
        "too many requests for this API key; retry later",
    )?;
    take(
        gw.route_limiter.as_ref(),
        &route,
        "too many requests on this route; retry later",
    )
}

/// The per-user limit, counted per API key (`<key id>/<user>`).
fn check_user_limit(gw: &Gateway, principal: &Principal, user: &str) -> Result<(), ApiError> {
    let Some(l) = gw.user_limiter.as_ref() else {
        return Ok(());
    };
    if l.len() > USER_LIMITER_TRIM {
        l.retain_recent();
    }
    take(
        Some(l),
        &format!("{}/{user}", principal.key_id),
        "too many requests for this user; retry later",
    )
}

fn role_of<'a>(gw: &'a Gateway, p: &Principal) -> Result<&'a RoleConfig, ApiError> {
    gw.config.roles.get(&p.role).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            codes::ROLE_NOT_CONFIGURED,
            "the key's role is not in the configuration",
        )
    })
}

/// For the read-only endpoints: the request's key (checked against the connection's client
/// certificate when bound to one), its rate limits on `route`, and its role.
fn authorize<'g>(
    gw: &'g Gateway,
    req: Request,
    route: &'static str,
) -> Result<(Principal, &'g RoleConfig), ApiError> {
    let (parts, _) = req.into_parts();
    let principal = authenticate(gw, &parts.headers, peer_cert(&parts.extensions))?;
    check_limits(gw, &principal, route)?;
    let role = role_of(gw, &principal)?;
    Ok((principal, role))
}

async fn models(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (_, role) = match authorize(&gw, req, "/v1/models") {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let today = (gw.today)();
    let mut data = Vec::new();
    for (m, pname, entry) in gw.config.all_models() {
        if !role.allows_model(m) || entry.is_some_and(|e| e.is_retired(today)) {
            continue;
        }
        let mut item = json!({"id": m, "object": "model", "created": 0, "owned_by": pname});
        if let Some(e) = entry {
            item["version"] = json!(e.version);
            if let Some(d) = &e.description {
                item["description"] = json!(d);
            }
            if let Some(r) = e.retired {
                item["retired"] = json!(date_str(r));
            }
        }
        data.push(item);
    }
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// The provider registry as the gateway sees it today, for keys whose role allows the
/// `admin` action: kind, models, whether it is a private deployment or a known consumer
/// endpoint, and its BAA (dates, services, reference, checklist state and missing points,
/// days remaining, whether PHI may be routed to it). Endpoints and credentials are left out.
async fn providers_view(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (principal, role) = match authorize(&gw, req, "/v1/phiguard/providers") {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let scoped_out =
        !principal.scopes.is_empty() && !principal.scopes.iter().any(|s| s == "*" || s == "admin");
    if !role.allows_action("admin") || scoped_out {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            codes::ACTION_NOT_ALLOWED,
            "the provider registry needs a role (and key scopes) allowing the admin action",
        )
        .into_response();
    }
    let today = (gw.today)();
    let data: Vec<Value> = gw
        .config
        .providers
        .iter()
        .map(|(name, p)| {
            let consumer = crate::routing::is_consumer_endpoint(&p.endpoint);
            let baa = p.baa.as_ref().map(|b| {
                json!({
                    "signed": date_str(b.signed),
                    "effective": date_str(b.effective),
                    "expires": date_str(b.expires),
                    "days_remaining": b.days_remaining(today),
                    "active": b.in_effect(today),
                    "services": b.services,
                    "reference": b.reference,
                    "checklist": b.checklist_state().as_str(),
                    "checklist_missing": b.checklist.as_ref().map(|c| c.missing()),
                })
            });
            let phi = if consumer {
                "never: known consumer (non-BAA) endpoint"
            } else if p.private {
                "yes: private deployment"
            } else {
                match p.baa.as_ref() {
                    None => "no: no BAA",
                    Some(b) if !b.in_effect(today) => "no: BAA not in effect",
                    Some(b) if b.checklist_state() == crate::config::ChecklistState::Incomplete => {
                        "no: BAA checklist incomplete"
                    }
                    Some(_) => "yes: for the services the BAA covers",
                }
            };
            json!({
                "name": name,
                "kind": p.kind.as_str(),
                "models": p.models,
                "private": p.private,
                "consumer_endpoint": consumer,
                "phi_routing": phi,
                "baa": baa,
            })
        })
        .collect();
    axum::Json(json!({"object": "list", "as_of": date_str(today), "data": data})).into_response()
}

/// What the prompt-injection screen decided for one request (no text).
struct InjectionTrace {
    /// `clean`, `flagged` or `blocked`.
    verdict: &'static str,
    /// The highest score over the caller's texts.
    score: f32,
    signals: Vec<&'static str>,
}

/// What one request did, for its audit records and its log line.
struct Trace {
    op: Op,
    request_id: String,
    started: OffsetDateTime,
    clock: Instant,
    user: Option<String>,
    /// The SHA-256 (hex) of the client certificate the connection presented (mutual TLS).
    client_cert: Option<String>,
    /// The end user the service calls for, when named as an opaque reference.
    end_user: Option<String>,
    role: Option<String>,
    patient_ref: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    /// From the model registry, when the model is in it.
    model_version: Option<String>,
    action: Option<String>,
    routing: Option<&'static str>,
    /// The provider's BAA checklist state, when it has a BAA.
    baa_checklist: Option<&'static str>,
    policy: Option<InputPolicy>,
    report: GuardReport,
    blocked: bool,
    injection: Option<InjectionTrace>,
    stream: bool,
    mode: Option<OutputMode>,
    scrubbed: u32,
    upstream_status: Option<u16>,
    ttft_ms: Option<f64>,
    upstream_ttft_ms: Option<f64>,
    overhead_ms: f64,
}

impl Trace {
    fn new(op: Op) -> Trace {
        Trace {
            op,
            request_id: new_request_id(),
            started: OffsetDateTime::now_utc(),
            clock: Instant::now(),
            user: None,
            client_cert: None,
            end_user: None,
            role: None,
            patient_ref: None,
            provider: None,
            model: None,
            model_version: None,
            action: None,
            routing: None,
            baa_checklist: None,
            policy: None,
            report: GuardReport::default(),
            blocked: false,
            injection: None,
            stream: false,
            mode: None,
            scrubbed: 0,
            upstream_status: None,
            ttft_ms: None,
            upstream_ttft_ms: None,
            overhead_ms: 0.0,
        }
    }

    fn record(&self, phase: &str, error: Option<&ApiError>, disposition: &str) -> Value {
        let counts: Map<String, Value> = self
            .report
            .counts
            .iter()
            .map(|(c, n)| (c.as_str().to_string(), json!(n)))
            .collect();
        json!({
            "kind": self.op.kind(),
            "phase": phase,
            "request_id": self.request_id,
            "user": self.user.clone().unwrap_or_else(|| "anonymous".into()),
            "client_cert_sha256": self.client_cert,
            "end_user": self.end_user,
            "role": self.role,
            "started_at": rfc3339(self.started),
            "completed_at": if phase == "complete" { Some(rfc3339(OffsetDateTime::now_utc())) } else { None },
            "patient_ref": self.patient_ref,
            "provider": self.provider,
            "model": {
                "name": self.model,
                "version": self.model_version,
                "provider": self.provider,
            },
            "action": self.action,
            "decision": {
                "allowed": error.is_none() || phase == "complete" && self.upstream_status.is_some(),
                "code": error.map(|e| e.code),
                "role": self.role,
                "routing": self.routing,
                "baa_checklist": self.baa_checklist,
            },
            "guard": {
                "policy": self.policy.map(InputPolicy::as_str),
                "counts": counts,
                "phi_detected": self.report.total(),
                "leaves_scanned": self.report.leaves,
                "tokenized": self.report.tokenized,
                "redacted": self.report.redacted,
                "blocked": self.blocked,
                "injection": self.injection.as_ref().map(|i| json!({
                    "verdict": i.verdict,
                    "score": (f64::from(i.score) * 1000.0).round() / 1000.0,
                    "signals": i.signals,
                })),
            },
            "output": {
                "disposition": disposition,
                "mode": self.mode.map(|m| match m { OutputMode::Restore => "restore", OutputMode::Scrub => "scrub" }),
                "scrubbed": self.scrubbed,
                "stream": self.stream,
                "ttft_ms": self.ttft_ms,
                "upstream_ttft_ms": self.upstream_ttft_ms,
            },
            "upstream_status": self.upstream_status,
            "overhead_ms": self.overhead_ms,
        })
    }
}

/// Commits the dispatch record before anything goes upstream: it survives a crash of the
/// gateway at once, and a power loss with the completion record's durable wait (or at once with
/// `[audit] sync_dispatch`).
async fn append_dispatch(gw: &Arc<Gateway>, t: &Trace) -> Result<(), ApiError> {
    let wait = match (gw.config.audit.sync_dispatch, gw.config.audit.durability) {
        (true, _) => Wait::Durable,
        (false, Durability::Answer) => Wait::Committed,
        (false, Durability::Background) => Wait::Background,
    };
    append(gw, t.record("dispatch", None, "pending"), wait).await
}

/// How a completion record waits: for the disk before the answer, or only for its commit
/// (`[audit] durability = "background"`).
fn completion_wait(gw: &Gateway) -> Wait {
    match gw.config.audit.durability {
        Durability::Answer => Wait::Durable,
        Durability::Background => Wait::Background,
    }
}

async fn append(gw: &Arc<Gateway>, record: Value, wait: Wait) -> Result<(), ApiError> {
    let sink = gw.audit.clone();
    let failed = || {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::AUDIT_FAILED,
            "the audit record could not be written; the request was not completed",
        )
    };
    let done = match sink.submit(record, wait) {
        Ok(pending) => pending.await,
        Err(record) => match tokio::task::spawn_blocking(move || sink.append(&record)).await {
            Ok(r) => r,
            Err(_) => return Err(failed()),
        },
    };
    done.map_err(|_| failed())
}

/// Logs one line for a finished request and counts it in the metrics.
fn log_line(gw: &Gateway, t: &Trace, status: u16, code: Option<&'static str>) {
    // Ids, status and timings only: never request or answer text. Formatted first and written
    // in one call: stderr is unbuffered, and `eprintln!` makes a write per piece (13 here).
    let line = format!(
        "phiguard-gateway: {} status={} code={} phi={} injection={} ms={:.1}\n",
        t.request_id,
        status,
        code.unwrap_or("-"),
        t.report.total(),
        t.injection.as_ref().map_or("-", |i| i.verdict),
        t.clock.elapsed().as_secs_f64() * 1e3
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    let m = &gw.metrics;
    m.request(status, code.unwrap_or("ok"));
    if let Some(i) = &t.injection {
        m.injection(i.verdict);
    }
    let outcome = if t.blocked {
        "blocked"
    } else if t.report.total() == 0 {
        "clean"
    } else if t.report.tokenized + t.report.redacted > 0 {
        "transformed"
    } else {
        "allowed"
    };
    if let Some(p) = t.policy {
        m.decision(p.as_str(), outcome);
    }
    m.detections(&t.report.counts);
    if code.is_none() {
        m.overhead(t.overhead_ms);
    }
}

/// Ends a refused request: writes its completion record (the refusal becomes an audit error
/// if that fails) and renders the error.
async fn refuse(gw: &Arc<Gateway>, t: &Trace, e: ApiError) -> Response {
    let e = match append(
        gw,
        t.record("complete", Some(&e), "refused"),
        completion_wait(gw),
    )
    .await
    {
        Ok(()) => e,
        Err(audit) => audit,
    };
    log_line(gw, t, e.status.as_u16(), Some(e.code));
    with_request_id(e.into_response(), &t.request_id)
}

fn with_request_id(mut r: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    r
}

fn valid_ref(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

fn valid_action(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// Everything checked before the body is guarded.
struct Admitted {
    body: Value,
    /// The body's size in bytes (decides where its guard runs: [`run_guard`]).
    size: usize,
    provider: Arc<dyn ProviderAdapter>,
    role: RoleConfig,
}

async fn admit(gw: &Arc<Gateway>, t: &mut Trace, req: Request) -> Result<Admitted, ApiError> {
    let (parts, body) = req.into_parts();
    let client_cert = peer_cert(&parts.extensions);
    t.client_cert = client_cert.map(hex::encode);
    let principal = authenticate(gw, &parts.headers, client_cert)?;
    t.user = Some(principal.audit_id());
    t.role = Some(principal.role.clone());
    check_limits(gw, &principal, t.op.route())?;
    let role = role_of(gw, &principal)?.clone();
    t.policy = Some(role.input);

    let action = match parts.headers.get(ACTION_HEADER) {
        None => t.op.default_action().to_string(),
        Some(v) => match v.to_str() {
            Ok(s) if valid_action(s) => s.to_string(),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_REQUEST,
                    "X-Phiguard-Action: expected a lower-case action name",
                ));
            }
        },
    };
    if !role.allows_action(&action) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::ACTION_NOT_ALLOWED,
            format!("the role may not perform action {action}"),
        ));
    }
    t.action = Some(action);
    if !principal.scopes.is_empty()
        && !principal
            .scopes
            .iter()
            .any(|s| s == "*" || Some(s) == t.action.as_ref())
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::ACTION_NOT_ALLOWED,
            "the API key's scopes do not include this action",
        ));
    }

    let header_user = match parts.headers.get(USER_HEADER) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(s) if valid_ref(s) => Some(s.to_string()),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_REQUEST,
                    "X-Phiguard-User: expected an opaque reference (letters, digits, - _ . : /, at most 128)",
                ));
            }
        },
    };

    if let Some(v) = parts.headers.get(PATIENT_REF_HEADER) {
        match v.to_str() {
            Ok(s) if valid_ref(s) => t.patient_ref = Some(s.to_string()),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_REQUEST,
                    "X-Patient-Ref: expected an opaque reference (letters, digits, - _ . : /, at most 128)",
                ));
            }
        }
    }

    let limit = gw.config.limits.max_request_bytes;
    let bytes: Bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::REQUEST_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    })?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Some(obj) = body.as_object() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            "the body must be a JSON object",
        ));
    };
    // The end user: the header, else OpenAI's `user` field. The field's value is only
    // recorded when it is an opaque reference (it may be anything, even a name); it is still
    // counted by the per-user limit, in memory.
    let body_user = obj.get("user").and_then(Value::as_str);
    t.end_user = header_user
        .clone()
        .or_else(|| body_user.filter(|u| valid_ref(u)).map(str::to_string));
    if let Some(user) = header_user.as_deref().or(body_user) {
        check_user_limit(gw, &principal, user)?;
    }
    match t.op {
        Op::Chat => {
            if !obj.get("messages").is_some_and(Value::is_array) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_REQUEST,
                    "`messages` must be an array",
                ));
            }
            t.stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
        }
        Op::Embeddings => {
            if !obj
                .get("input")
                .is_some_and(|i| i.is_string() || i.is_array())
            {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_REQUEST,
                    "`input` must be a string or an array",
                ));
            }
        }
    }
    let Some(model) = obj.get("model").and_then(Value::as_str) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            "`model` must be a string",
        ));
    };
    // The model name is only recorded once it is known to be a configured name.
    let Some((pname, _)) = gw.config.provider_for(model) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::MODEL_NOT_FOUND,
            "no configured provider serves this model",
        ));
    };
    t.model = Some(model.to_string());
    t.provider = Some(pname.to_string());
    let entry = gw.config.models.get(model);
    t.model_version = entry.map(|e| e.version.clone());
    if !role.allows_model(model) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::MODEL_NOT_ALLOWED,
            "the role may not use this model",
        ));
    }
    let mut body = body;
    if let Some(e) = entry {
        if e.is_retired((gw.today)()) {
            return Err(ApiError::new(
                StatusCode::GONE,
                codes::MODEL_RETIRED,
                "the model is retired in the model registry",
            ));
        }
        if let Some(up) = &e.upstream_name
            && let Some(obj) = body.as_object_mut()
        {
            obj.insert("model".into(), Value::String(up.clone()));
        }
    }
    let provider = gw.providers.get(pname).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::UPSTREAM_ERROR,
            "the provider has no adapter",
        )
    })?;
    Ok(Admitted {
        body,
        size: bytes.len(),
        provider,
        role,
    })
}

/// Bodies up to this size are guarded on the request's own worker thread: for them a hand-off
/// to the blocking pool (two thread wake-ups) costs more than the scan. Larger ones go to the
/// blocking pool so that one big request does not hold up the others on its worker.
const INLINE_GUARD_BYTES: usize = 64 * 1024;

/// Runs guard work (`f`, CPU-bound) over an input of `size` bytes; `None` when it panicked
/// (the caller fails closed).
async fn run_guard<T: Send + 'static>(
    size: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    if size <= INLINE_GUARD_BYTES {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
    } else {
        tokio::task::spawn_blocking(f).await.ok()
    }
}

/// The bytes of text in a JSON value (its strings and keys): what a scan of it costs.
fn text_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(text_bytes).sum(),
        Value::Object(m) => m.iter().map(|(k, x)| k.len() + text_bytes(x)).sum(),
        _ => 8,
    }
}

fn guard_failed() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::GUARD_FAILED,
        "the PHI guard failed; nothing was sent upstream",
    )
}

/// Guards the body and decides the route. Returns the body to send and the vault.
async fn guard_and_route(
    gw: &Arc<Gateway>,
    t: &mut Trace,
    role: &RoleConfig,
    mut body: Value,
    size: usize,
) -> Result<(Value, Vault), ApiError> {
    let scanner = gw.scanner.clone();
    let screen = gw.injection.clone();
    let policy = role.input;
    let mode = role.injection;
    let (body, vault, report, injection) = run_guard(size, move || {
        // The caller's texts are screened as sent, before any PHI is replaced.
        let injection = match mode {
            InjectionMode::Off => None,
            _ => Some(guard::screen_request(screen.as_ref(), &body)?),
        };
        if mode == InjectionMode::Block && injection.as_ref().is_some_and(|r| r.injections > 0) {
            // Refused: the PHI guard need not run (nothing goes upstream).
            return Ok((body, Vault::default(), GuardReport::default(), injection));
        }
        let mut vault = Vault::default();
        let r = guard::guard_request(scanner.as_ref(), policy, &mut vault, &mut body);
        r.map(|report| (body, vault, report, injection))
    })
    .await
    .ok_or_else(guard_failed)?
    .map_err(|_| guard_failed())?;
    if let Some(r) = injection {
        let verdict = match (r.injections > 0, mode) {
            (false, _) => "clean",
            (true, InjectionMode::Block) => "blocked",
            (true, _) => "flagged",
        };
        t.injection = Some(InjectionTrace {
            verdict,
            score: r.max_score,
            signals: r.signals.into_iter().collect(),
        });
        if verdict == "blocked" {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::INJECTION_BLOCKED,
                "the request looks like a prompt injection and the role's policy blocks it",
            ));
        }
    }
    t.report = report;
    let phi = t.report.total() > 0;
    if phi && t.patient_ref.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::PATIENT_REF_REQUIRED,
            "the request carries PHI: name the patient with the X-Patient-Ref header",
        ));
    }
    if phi && policy == InputPolicy::Block {
        t.blocked = true;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::PHI_BLOCKED,
            "the request carries PHI and the role's policy blocks it",
        ));
    }
    let provider = t
        .provider
        .as_deref()
        .and_then(|p| gw.config.providers.get(p))
        .ok_or_else(guard_failed)?;
    let eligibility = phi_eligibility(provider, t.op.service(), (gw.today)());
    t.routing = Some(eligibility.as_str());
    t.baa_checklist = provider.baa.as_ref().map(|b| b.checklist_state().as_str());
    if phi && !eligibility.allows_phi() {
        // Deny by default: even redacted or tokenized, a request that carried PHI goes only
        // inside the boundary or under an active BAA (the detector's recall is not 100%).
        t.blocked = true;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::PHI_ROUTE_DENIED,
            format!(
                "the request carries PHI and the provider may not receive it ({})",
                eligibility.as_str()
            ),
        ));
    }
    Ok((body, vault))
}

/// `POST /v1/embeddings`: the input is guarded and routed like a chat request (the BAA must
/// cover `embeddings`); the answer holds vectors only, so nothing is restored or scrubbed.
async fn embeddings(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let mut t = Trace::new(Op::Embeddings);
    let admitted = match admit(&gw, &mut t, req).await {
        Ok(a) => a,
        Err(e) => return refuse(&gw, &t, e).await,
    };
    let (body, _vault) =
        match guard_and_route(&gw, &mut t, &admitted.role, admitted.body, admitted.size).await {
            Ok(x) => x,
            Err(e) => return refuse(&gw, &t, e).await,
        };
    if let Err(e) = append_dispatch(&gw, &t).await {
        return refuse(&gw, &t, e).await;
    }
    let up_start = Instant::now();
    let result = admitted.provider.embeddings(body).await;
    let upstream_time = up_start.elapsed();
    let answer = match result {
        Ok(v) => v,
        Err(e) => return refuse(&gw, &t, upstream_error(&e)).await,
    };
    t.upstream_status = Some(200);
    t.overhead_ms = (t.clock.elapsed().saturating_sub(upstream_time)).as_secs_f64() * 1e3;
    if let Err(e) = append(
        &gw,
        t.record("complete", None, "returned"),
        completion_wait(&gw),
    )
    .await
    {
        log_line(&gw, &t, e.status.as_u16(), Some(e.code));
        return with_request_id(e.into_response(), &t.request_id);
    }
    log_line(&gw, &t, 200, None);
    with_request_id(axum::Json(answer).into_response(), &t.request_id)
}

async fn chat_completions(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let mut t = Trace::new(Op::Chat);
    let admitted = match admit(&gw, &mut t, req).await {
        Ok(a) => a,
        Err(e) => return refuse(&gw, &t, e).await,
    };
    let (body, vault) =
        match guard_and_route(&gw, &mut t, &admitted.role, admitted.body, admitted.size).await {
            Ok(x) => x,
            Err(e) => return refuse(&gw, &t, e).await,
        };
    let mode = if admitted.role.phi == PhiPermission::Full {
        OutputMode::Restore
    } else {
        OutputMode::Scrub
    };
    t.mode = Some(mode);
    // Nothing leaves before the dispatch record is committed.
    if let Err(e) = append_dispatch(&gw, &t).await {
        return refuse(&gw, &t, e).await;
    }
    let vault = Arc::new(vault);
    if t.stream {
        return stream_completion(gw, t, admitted.provider, body, vault, mode).await;
    }
    let up_start = Instant::now();
    let result = admitted.provider.chat(body).await;
    let upstream_time = up_start.elapsed();
    let mut answer = match result {
        Ok(v) => v,
        Err(e) => return refuse(&gw, &t, upstream_error(&e)).await,
    };
    t.upstream_status = Some(200);
    let scanner = gw.scanner.clone();
    let v2 = vault.clone();
    let size = text_bytes(&answer);
    let filtered = run_guard(size, move || {
        filter_answer(scanner.as_ref(), &v2, mode, &mut answer).map(|n| (answer, n))
    })
    .await;
    let (answer, scrubbed) = match filtered {
        Some(Ok(x)) => x,
        _ => {
            t.upstream_status = None;
            return refuse(&gw, &t, guard_failed()).await;
        }
    };
    t.scrubbed = scrubbed;
    t.overhead_ms = (t.clock.elapsed().saturating_sub(upstream_time)).as_secs_f64() * 1e3;
    if let Err(e) = append(
        &gw,
        t.record("complete", None, "returned"),
        completion_wait(&gw),
    )
    .await
    {
        log_line(&gw, &t, e.status.as_u16(), Some(e.code));
        return with_request_id(e.into_response(), &t.request_id);
    }
    log_line(&gw, &t, 200, None);
    with_request_id(axum::Json(answer).into_response(), &t.request_id)
}

fn upstream_error(e: &UpstreamError) -> ApiError {
    match e {
        UpstreamError::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            codes::UPSTREAM_TIMEOUT,
            e.to_string(),
        ),
        UpstreamError::Unsupported(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            e.to_string(),
        ),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            codes::UPSTREAM_ERROR,
            e.to_string(),
        ),
    }
}

/// Filters every string the caller will see in a non-streamed answer: each choice's message
/// (content, content parts, refusal, tool-call arguments and names). Returns values scrubbed.
fn filter_answer(
    scanner: &dyn PhiScanner,
    vault: &Vault,
    mode: OutputMode,
    answer: &mut Value,
) -> Result<u32, guard::GuardError> {
    let mut n = 0;
    let Some(choices) = answer.get_mut("choices").and_then(Value::as_array_mut) else {
        return Ok(0);
    };
    for c in choices {
        if let Some(m) = c.get_mut("message") {
            n += filter_leaves(scanner, vault, mode, "", m)?;
        }
        drop_token_detail(mode, c);
    }
    Ok(n)
}

/// Log-probabilities list the answer's tokens one by one, where a detector cannot see PHI
/// split across tokens: callers who may not see PHI get them removed.
fn drop_token_detail(mode: OutputMode, choice: &mut Value) {
    if mode == OutputMode::Scrub
        && let Some(obj) = choice.as_object_mut()
        && obj.get("logprobs").is_some_and(|l| !l.is_null())
    {
        obj.insert("logprobs".into(), Value::Null);
    }
}

fn filter_leaves(
    scanner: &dyn PhiScanner,
    vault: &Vault,
    mode: OutputMode,
    key: &str,
    v: &mut Value,
) -> Result<u32, guard::GuardError> {
    let mut n = 0;
    match v {
        Value::String(s) if key == "role" || key == "type" || key == "id" => {
            let _ = s;
        }
        Value::String(s) => {
            if key == "arguments"
                && let Ok(mut inner @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(s)
            {
                n += filter_leaves(scanner, vault, mode, "", &mut inner)?;
                *s = serde_json::to_string(&inner)
                    .map_err(|_| guard::GuardError("cannot re-encode arguments".into()))?;
                return Ok(n);
            }
            let (out, k) = guard::filter_output(scanner, vault, mode, s)?;
            *s = out;
            n += k;
        }
        Value::Array(a) => {
            for x in a {
                n += filter_leaves(scanner, vault, mode, key, x)?;
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                n += filter_leaves(scanner, vault, mode, k, x)?;
            }
        }
        _ => {}
    }
    Ok(n)
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// A text channel of a stream: (choice index, tool-call index or `None` for the content).
type ChannelKey = (u64, Option<u64>);

/// Per-stream filters: one per choice's content and one per tool call's arguments.
struct StreamFilters {
    scanner: Arc<dyn PhiScanner>,
    vault: Arc<Vault>,
    mode: OutputMode,
    filters: BTreeMap<ChannelKey, StreamFilter>,
}

impl StreamFilters {
    fn get(&mut self, key: ChannelKey) -> &mut StreamFilter {
        let (s, v, m) = (self.scanner.clone(), self.vault.clone(), self.mode);
        self.filters
            .entry(key)
            .or_insert_with(|| StreamFilter::new(s, v, m, key.1.is_some()))
    }

    fn scrubbed(&self) -> u32 {
        self.filters.values().map(|f| f.scrubbed).sum()
    }

    /// Filters one chunk in place. Returns true when it carries visible text.
    fn chunk(&mut self, chunk: &mut Value) -> Result<bool, guard::GuardError> {
        let mut visible = false;
        let Some(choices) = chunk.get_mut("choices").and_then(Value::as_array_mut) else {
            return Ok(false);
        };
        for c in choices {
            let idx = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let finished = c.get("finish_reason").is_some_and(|f| !f.is_null());
            drop_token_detail(self.mode, c);
            let Some(delta) = c.get_mut("delta").and_then(Value::as_object_mut) else {
                continue;
            };
            if let Some(Value::String(s)) = delta.get_mut("content") {
                let out = self.get((idx, None)).push(s)?;
                visible |= !out.is_empty();
                *s = out;
            }
            if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
                for (pos, call) in calls.iter_mut().enumerate() {
                    let ti = call
                        .get("index")
                        .and_then(Value::as_u64)
                        .unwrap_or(pos as u64);
                    if let Some(Value::String(a)) = call
                        .get_mut("function")
                        .and_then(|f| f.get_mut("arguments"))
                    {
                        *a = self.get((idx, Some(ti))).push(a)?;
                    }
                }
            }
            if finished {
                // Flush this choice's held text into its final chunk.
                let keys: Vec<_> = self
                    .filters
                    .keys()
                    .filter(|k| k.0 == idx)
                    .copied()
                    .collect();
                for k in keys {
                    let rest = self.get(k).finish()?;
                    if rest.is_empty() {
                        continue;
                    }
                    match k.1 {
                        None => {
                            let prev = delta
                                .get("content")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string();
                            delta.insert("content".into(), Value::String(prev + &rest));
                            visible = true;
                        }
                        Some(ti) => {
                            let calls = delta
                                .entry("tool_calls")
                                .or_insert_with(|| Value::Array(Vec::new()));
                            if let Some(a) = calls.as_array_mut() {
                                a.push(json!({"index": ti, "function": {"arguments": rest}}));
                            }
                        }
                    }
                }
            }
        }
        Ok(visible)
    }

    /// Text still held when the upstream ended without a finish chunk.
    fn flush_all(&mut self) -> Result<Vec<(ChannelKey, String)>, guard::GuardError> {
        let mut out = Vec::new();
        for (k, f) in self.filters.iter_mut() {
            let rest = f.finish()?;
            if !rest.is_empty() {
                out.push((*k, rest));
            }
        }
        Ok(out)
    }
}

async fn stream_completion(
    gw: Arc<Gateway>,
    mut t: Trace,
    provider: Arc<dyn ProviderAdapter>,
    body: Value,
    vault: Arc<Vault>,
    mode: OutputMode,
) -> Response {
    let up_start = Instant::now();
    let pre_upstream = t.clock.elapsed();
    let mut upstream = match provider.chat_stream(body).await {
        Ok(s) => s,
        Err(e) => return refuse(&gw, &t, upstream_error(&e)).await,
    };
    t.upstream_status = Some(200);
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    let request_id = t.request_id.clone();
    let scanner = gw.scanner.clone();
    tokio::spawn(async move {
        let mut filters = StreamFilters {
            scanner,
            vault,
            mode,
            filters: BTreeMap::new(),
        };
        let mut disposition = "returned";
        let mut error: Option<ApiError> = None;
        let mut last_meta = json!({});
        let mut filter_time = Duration::ZERO;
        let mut upstream_ttft: Option<Duration> = None;
        while let Some(item) = upstream.next().await {
            let mut chunk = match item {
                Ok(c) => c,
                Err(e) => {
                    disposition = "partial";
                    error = Some(upstream_error(&e));
                    break;
                }
            };
            if upstream_ttft.is_none() {
                upstream_ttft = Some(up_start.elapsed());
                t.upstream_ttft_ms = Some((pre_upstream + up_start.elapsed()).as_secs_f64() * 1e3);
            }
            let f0 = Instant::now();
            // A panic in the detector must not end the stream without its audit record.
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                filters.chunk(&mut chunk)
            }))
            .unwrap_or_else(|_| Err(guard::GuardError("the output filter panicked".into())));
            filter_time += f0.elapsed();
            let visible = match res {
                Ok(v) => v,
                Err(_) => {
                    disposition = "partial";
                    error = Some(guard_failed());
                    break;
                }
            };
            if visible && t.ttft_ms.is_none() {
                t.ttft_ms = Some(t.clock.elapsed().as_secs_f64() * 1e3);
            }
            for k in ["id", "model", "created", "object"] {
                if let Some(v) = chunk.get(k) {
                    last_meta[k] = v.clone();
                }
            }
            if tx.send(sse(&chunk)).await.is_err() {
                disposition = "client_disconnected";
                break;
            }
        }
        if error.is_none() && disposition == "returned" {
            let flushed =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| filters.flush_all()))
                    .unwrap_or_else(|_| {
                        Err(guard::GuardError("the output filter panicked".into()))
                    });
            match flushed {
                Ok(rest) => {
                    for ((idx, tool), text) in rest {
                        let delta = match tool {
                            None => json!({"content": text}),
                            Some(ti) => {
                                json!({"tool_calls": [{"index": ti, "function": {"arguments": text}}]})
                            }
                        };
                        let mut c = last_meta.clone();
                        c["choices"] =
                            json!([{"index": idx, "delta": delta, "finish_reason": null}]);
                        let _ = tx.send(sse(&c)).await;
                    }
                }
                Err(_) => {
                    disposition = "partial";
                    error = Some(guard_failed());
                }
            }
        }
        t.scrubbed = filters.scrubbed();
        // Gateway time: everything before the upstream call plus filtering the chunks.
        t.overhead_ms = (pre_upstream + filter_time).as_secs_f64() * 1e3;
        // The completion record is written before the stream is allowed to complete.
        let record_error = append(
            &gw,
            t.record("complete", error.as_ref(), disposition),
            completion_wait(&gw),
        )
        .await
        .err();
        let final_error = record_error.or(error);
        match &final_error {
            None => {
                let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
                log_line(&gw, &t, 200, None);
            }
            Some(e) => {
                let _ = tx.send(sse(&e.body())).await;
                log_line(&gw, &t, e.status.as_u16(), Some(e.code));
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    }));
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_request_id(r, &request_id)
}
