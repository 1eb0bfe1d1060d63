//! The Azure Key Vault provider against a local mock of the Key Vault REST API (wrapkey /
//! unwrapkey, api-version 7.4, A256KW) and of Entra ID's client-credentials token endpoint.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use phiguard_crypto::provider::azure_kv::{
    AzureCredential, AzureKeyVault, AzureKeyVaultConfig, WrapAlgorithm,
};
use phiguard_crypto::{
    CryptoError, DataKey, FieldCipher, FieldRef, KeyProvider, SecretString, decrypt, encrypt,
    rewrap,
};
use serde_json::json;

use crate::mock_http::{Mock, Request, Response};
use crate::support::vault;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID: &str = "0b8c1f0e-phiguard-test";
const CLIENT_SECRET: &str = "cs~SuperSecretClientValue.42";
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.AZURE-ACCESS-TOKEN-SECRET";
const KEY_NAME: &str = "phiguard-kek";
const V1: &str = "4387e9f3d6e14c459867679a90fd0f79";
const V2: &str = "9a1b2c3d4e5f60718293a4b5c6d7e8f9";

#[derive(Clone, Copy, Debug)]
enum Fail {
    Status(u16),
    TooManyRequests,
    Malformed,
    Slow,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, [u8; 32]>,
    disabled: BTreeSet<String>,
    /// Failures to apply to the next key operations, one per request.
    plan: VecDeque<Fail>,
}

struct AzureMock {
    mock: Mock,
    state: Arc<Mutex<State>>,
}

impl AzureMock {
    fn start() -> AzureMock {
        let state = Arc::new(Mutex::new(State::default()));
        {
            let mut s = state.lock().unwrap();
            s.keys.insert(V1.into(), [0x11; 32]);
            s.keys.insert(V2.into(), [0x22; 32]);
        }
        let shared = Arc::clone(&state);
        let mock = Mock::start(move |m, r| handle(m, r, &shared));
        AzureMock { mock, state }
    }

    fn fail_next(&self, fails: &[Fail]) {
        self.state
            .lock()
            .unwrap()
            .plan
            .extend(fails.iter().copied());
    }

    fn disable(&self, version: &str) {
        self.state.lock().unwrap().disabled.insert(version.into());
    }

    fn config(&self, versions: &[&str], credential: AzureCredential) -> AzureKeyVaultConfig {
        let mut c = AzureKeyVaultConfig::new(
            self.mock.base_url.clone(),
            KEY_NAME,
            versions.iter().map(|v| v.to_string()).collect(),
            credential,
        );
        c.algorithm = WrapAlgorithm::A256Kw;
        c.timeout = Duration::from_millis(1500);
        c.max_retry_wait = Duration::from_millis(200);
        c
    }

    fn provider(&self, versions: &[&str]) -> AzureKeyVault {
        AzureKeyVault::new(self.config(versions, self.client_secret(CLIENT_SECRET))).unwrap()
    }

    fn client_secret(&self, secret: &str) -> AzureCredential {
        AzureCredential::ClientSecret {
            authority: self.mock.base_url.clone(),
            tenant_id: TENANT.into(),
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::from(secret.to_string()),
        }
    }

    fn assert_clean(&self) {
        assert_eq!(self.mock.violations(), Vec::<String>::new());
    }
}

fn handle(m: &Mock, r: &Request, state: &Mutex<State>) -> Response {
    if r.path == format!("/{TENANT}/oauth2/v2.0/token") {
        return token_endpoint(m, r);
    }
    let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    let ["keys", name, version, op] = parts[..] else {
        m.violation(format!("unexpected path {}", r.path));
        return Response::json(404, &json!({"error": {"code": "NotFound"}}));
    };
    if r.method != "POST" {
        m.violation(format!("{} {}", r.method, r.path));
    }
    if r.query != "api-version=7.4" {
        m.violation(format!("query `{}`", r.query));
    }
    if r.header("content-type") != Some("application/json") {
        m.violation(format!("content-type {:?}", r.header("content-type")));
    }
    if r.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return Response::json(
            401,
            &json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}),
        );
    }
    let mut s = state.lock().unwrap();
    if let Some(fail) = s.plan.pop_front() {
        match fail {
            Fail::Status(code) => {
                return Response::json(
                    code,
                    &json!({"error": {"code": "ServiceError", "message": "injected"}}),
                );
            }
            Fail::TooManyRequests => {
                return Response::json(
                    429,
                    &json!({"error": {"code": "Throttled", "message": "Too many requests"}}),
                )
                .with_header("Retry-After", "0");
            }
            Fail::Malformed => return Response::raw(200, b"{\"kid\": \"x\", \"val".to_vec()),
            Fail::Slow => {
                return Response::json(200, &json!({})).delayed(Duration::from_secs(4));
            }
        }
    }
    if name != KEY_NAME || !s.keys.contains_key(version) {
        return Response::json(
            404,
            &json!({"error": {"code": "KeyNotFound", "message": "A key with (name/id) was not found in this key vault."}}),
        );
    }
    if s.disabled.contains(version) {
        return Response::json(
            403,
            &json!({"error": {"code": "Forbidden", "message": "Operation is not allowed on a disabled key.", "innererror": {"code": "KeyDisabled"}}}),
        );
    }
    let Some(body) = r.json() else {
        m.violation("body is not JSON");
        return Response::json(400, &json!({"error": {"code": "BadParameter"}}));
    };
    let keys: BTreeSet<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if keys != BTreeSet::from(["alg", "value"]) || body["alg"] != "A256KW" {
        m.violation(format!("body fields {keys:?} alg {}", body["alg"]));
    }
    let value = body["value"].as_str().unwrap_or_default();
    let Ok(input) = B64URL.decode(value) else {
        m.violation("value is not unpadded base64url");
        return Response::json(400, &json!({"error": {"code": "BadParameter"}}));
    };
    let kek = aes_kw::KekAes256::from(s.keys[version]);
    let out = match op {
        "wrapkey" => kek.wrap_vec(&input).ok(),
        "unwrapkey" => kek.unwrap_vec(&input).ok(),
        _ => {
            m.violation(format!("operation {op}"));
            None
        }
    };
    match out {
        Some(out) => Response::json(
            200,
            &json!({"kid": format!("{}/keys/{KEY_NAME}/{version}", m.base_url), "value": B64URL.encode(out)}),
        ),
        None => Response::json(
            400,
            &json!({"error": {"code": "BadParameter", "message": "Invalid ciphertext"}}),
        ),
    }
}

fn token_endpoint(m: &Mock, r: &Request) -> Response {
    if r.method != "POST" {
        m.violation(format!("token {}", r.method));
    }
    if r.header("content-type") != Some("application/x-www-form-urlencoded") {
        m.violation(format!("token content-type {:?}", r.header("content-type")));
    }
    if r.header("authorization").is_some() {
        m.violation("token request carries an Authorization header");
    }
    let form = r.form();
    let expected_keys = BTreeSet::from(["client_id", "client_secret", "grant_type", "scope"]);
    if form.keys().map(String::as_str).collect::<BTreeSet<_>>() != expected_keys {
        m.violation(format!("token form fields {:?}", form.keys()));
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("scope").map(String::as_str) != Some("https://vault.azure.net/.default")
        || form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
    {
        m.violation(format!(
            "token form {:?}",
            (
                form.get("grant_type"),
                form.get("scope"),
                form.get("client_id")
            )
        ));
    }
    if form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
        return Response::json(
            401,
            &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
        );
    }
    Response::json(
        200,
        &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": TOKEN}),
    )
}

/// Every string a user could see: the error's Display, Debug and source chain.
fn shown(e: &CryptoError) -> String {
    let mut out = format!("{e} | {e:?}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(&format!(" | {s} | {s:?}"));
        src = s.source();
    }
    out
}

fn assert_no_secrets(text: &str) {
    for secret in [
        CLIENT_SECRET,
        TOKEN,
        "AZURE-ACCESS-TOKEN-SECRET",
        "SuperSecret",
    ] {
        assert!(!text.contains(secret), "secret leaked in: {text}");
    }
}

#[test]
fn wrap_unwrap_round_trip_with_client_credentials() {
    let az = AzureMock::start();
    let p = az.provider(&[V1]);
    let key = DataKey::from_bytes([7; 32]);
    let wrapped = p.wrap(&key, &vault()).unwrap();
    assert_eq!(wrapped.provider, "azure-kv");
    assert_eq!(
        wrapped.kek.id,
        format!("{}/keys/{KEY_NAME}", az.mock.base_url)
    );
    assert_eq!(wrapped.kek.version, 1);
    let back = p.unwrap(&wrapped, &vault()).unwrap();
    assert_eq!(back.expose_secret(), key.expose_secret());
    // One token request, cached for the second call.
    assert_eq!(az.mock.count("/oauth2/v2.0/token"), 1);
    assert_eq!(az.mock.count("/wrapkey"), 1);
    assert_eq!(az.mock.count("/unwrapkey"), 1);
    az.assert_clean();
}

#[test]
fn given_token_is_sent_as_bearer() {
    let az = AzureMock::start();
    let p = AzureKeyVault::new(az.config(
        &[V1],
        AzureCredential::Token(SecretString::from(TOKEN.to_string())),
    ))
    .unwrap();
    let key = DataKey::from_bytes([8; 32]);
    let wrapped = p.wrap(&key, &vault()).unwrap();
    assert_eq!(
        p.unwrap(&wrapped, &vault()).unwrap().expose_secret(),
        key.expose_secret()
    );
    assert_eq!(az.mock.count("/oauth2/v2.0/token"), 0);
    az.assert_clean();
}

#[test]
fn envelope_round_trip_and_rotation() {
    let az = AzureMock::start();
    let old = az.provider(&[V1]);
    let sealed = encrypt(&old, b"stored model output", &vault()).unwrap();
    let new = az.provider(&[V1, V2]);
    assert_eq!(
        decrypt(&new, &sealed, &vault()).unwrap(),
        b"stored model output"
    );
    let (_, rewrapped) = rewrap(&new, &sealed).unwrap();
    let rewrapped = rewrapped.unwrap();
    let header = phiguard_crypto::Header::parse(&rewrapped).unwrap().header;
    assert_eq!(header.wrapped.kek.version, 2);
    assert_eq!(
        decrypt(&new, &rewrapped, &vault()).unwrap(),
        b"stored model output"
    );
    // The old configuration does not know version 2.
    let e = decrypt(&old, &rewrapped, &vault()).unwrap_err();
    assert_eq!(e.code(), "wrong_key", "{e}");
    az.assert_clean();
}

#[test]
fn field_cipher_over_key_vault() {
    let az = AzureMock::start();
    let fields = FieldCipher::new(az.provider(&[V1]), vault()).unwrap();
    let row = FieldRef::new("vault_entries", "value", "row-1");
    let stored = fields.encrypt(&row, b"token-value").unwrap();
    assert_eq!(&fields.decrypt(&row, &stored).unwrap()[..], b"token-value");
}

#[test]
fn throttling_is_retried_once_after_retry_after() {
    let az = AzureMock::start();
    let p = az.provider(&[V1]);
    az.fail_next(&[Fail::TooManyRequests]);
    let key = DataKey::from_bytes([1; 32]);
    let wrapped = p.wrap(&key, &vault()).unwrap();
    assert_eq!(az.mock.count("/wrapkey"), 2);
    az.fail_next(&[Fail::Status(503)]);
    assert!(p.unwrap(&wrapped, &vault()).is_ok());
    // Twice throttled: a clear error after one retry.
    az.fail_next(&[Fail::TooManyRequests, Fail::TooManyRequests]);
    let e = p.wrap(&key, &vault()).unwrap_err();
    let text = shown(&e);
    assert!(
        text.contains("HTTP 429") && text.contains("Throttled"),
        "{text}"
    );
    assert!(text.contains("wrapkey"), "{text}");
    assert_no_secrets(&text);
    az.assert_clean();
}

#[test]
fn server_errors_give_clear_errors() {
    let az = AzureMock::start();
    let p = az.provider(&[V1]);
    let key = DataKey::from_bytes([1; 32]);
    az.fail_next(&[Fail::Status(500), Fail::Status(500)]);
    let e = p.wrap(&key, &vault()).unwrap_err();
    let text = shown(&e);
    assert_eq!(e.code(), "io");
    assert!(
        text.contains("HTTP 500") && text.contains("retried once"),
        "{text}"
    );
    assert_no_secrets(&text);

    az.fail_next(&[Fail::Status(403)]);
    let e = p.wrap(&key, &vault()).unwrap_err();
    let text = shown(&e);
    assert!(
        text.contains("HTTP 403") && text.contains("permission"),
        "{text}"
    );
    assert_no_secrets(&text);

    az.fail_next(&[Fail::Malformed]);
    let e = p.wrap(&key, &vault()).unwrap_err();
    let text = shown(&e);
    assert!(text.contains("malformed response"), "{text}");
    assert_no_secrets(&text);
}

#[test]
fn rejected_token_and_wrong_client_secret() {
    let az = AzureMock::start();
    let p = AzureKeyVault::new(az.config(
        &[V1],
        AzureCredential::Token(SecretString::from("stale-token-value".to_string())),
    ))
    .unwrap();
    let e = p.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap_err();
    let text = shown(&e);
    assert!(
        text.contains("HTTP 401") && text.contains("bearer token"),
        "{text}"
    );
    assert!(!text.contains("stale-token-value"), "{text}");

    let p = AzureKeyVault::new(az.config(&[V1], az.client_secret("wrong-secret-value"))).unwrap();
    let e = p.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap_err();
    let text = shown(&e);
    assert!(
        text.contains("invalid_client") && text.contains("HTTP 401"),
        "{text}"
    );
    assert!(!text.contains("wrong-secret-value"), "{text}");
    assert_no_secrets(&text);
}

#[test]
fn slow_service_times_out() {
    let az = AzureMock::start();
    let mut config = az.config(
        &[V1],
        AzureCredential::Token(SecretString::from(TOKEN.to_string())),
    );
    config.timeout = Duration::from_millis(300);
    let p = AzureKeyVault::new(config).unwrap();
    az.fail_next(&[Fail::Slow]);
    let started = std::time::Instant::now();
    let e = p.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    let text = shown(&e);
    assert!(text.contains("timed out"), "{text}");
    match &e {
        CryptoError::Io { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::TimedOut)
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_no_secrets(&text);
}

#[test]
fn disabled_and_unknown_versions() {
    let az = AzureMock::start();
    let p = az.provider(&[V1]);
    let wrapped = p.wrap(&DataKey::from_bytes([3; 32]), &vault()).unwrap();
    az.disable(V1);
    let e = p.unwrap(&wrapped, &vault()).unwrap_err();
    assert_eq!(e.code(), "kek_revoked", "{e}");

    let ghost = az.provider(&["00000000000000000000000000000000"]);
    let e = ghost
        .wrap(&DataKey::from_bytes([3; 32]), &vault())
        .unwrap_err();
    assert_eq!(e.code(), "wrong_key", "{e}");

    // A blob whose stored Key Vault version does not match the configured list.
    let swapped = az.provider(&[V2]);
    let e = swapped.unwrap(&wrapped, &vault()).unwrap_err();
    assert_eq!(e.code(), "wrong_key", "{e}");

    // An altered blob: Key Vault refuses to unwrap it.
    let p2 = az.provider(&[V1, V2]);
    let mut w2 = p2.wrap(&DataKey::from_bytes([3; 32]), &vault()).unwrap();
    let last = w2.blob.len() - 1;
    w2.blob[last] ^= 1;
    let e = p2.unwrap(&w2, &vault()).unwrap_err();
    assert!(shown(&e).contains("HTTP 400"), "{e}");
    az.assert_clean();
}

#[test]
fn connection_refused_is_a_clear_error() {
    // Bind and drop to get a port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = AzureKeyVaultConfig::new(
        format!("http://127.0.0.1:{port}"),
        KEY_NAME,
        vec![V1.into()],
        AzureCredential::Token(SecretString::from(TOKEN.to_string())),
    );
    config.timeout = Duration::from_millis(500);
    let p = AzureKeyVault::new(config).unwrap();
    let e = p.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap_err();
    let text = shown(&e);
    assert!(text.contains("Azure Key Vault wrapkey"), "{text}");
    assert_no_secrets(&text);
}

#[test]
fn configuration_is_checked() {
    let cred = || AzureCredential::Token(SecretString::from(TOKEN.to_string()));
    let bad = [
        AzureKeyVaultConfig::new(
            "http://vault.example.com",
            KEY_NAME,
            vec![V1.into()],
            cred(),
        ),
        AzureKeyVaultConfig::new("https://v.vault.azure.net", "", vec![V1.into()], cred()),
        AzureKeyVaultConfig::new("https://v.vault.azure.net", KEY_NAME, vec![], cred()),
        AzureKeyVaultConfig::new("https://v.vault.azure.net", "a/b", vec![V1.into()], cred()),
    ];
    for config in bad {
        let e = AzureKeyVault::new(config).unwrap_err();
        assert_no_secrets(&shown(&e));
    }
}

#[test]
fn debug_output_hides_secrets() {
    let az = AzureMock::start();
    let p = az.provider(&[V1]);
    p.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap(); // caches a token
    for text in [
        format!("{p:?}"),
        format!("{p:#?}"),
        format!("{:?}", az.client_secret(CLIENT_SECRET)),
        format!(
            "{:?}",
            AzureCredential::Token(SecretString::from(TOKEN.to_string()))
        ),
        format!("{:?}", az.config(&[V1], az.client_secret(CLIENT_SECRET))),
    ] {
        assert_no_secrets(&text);
        assert!(text.contains("REDACTED"), "{text}");
    }
}
