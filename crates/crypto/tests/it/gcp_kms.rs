//! The Google Cloud KMS provider against a local mock of the Cloud KMS REST API (encrypt /
//! decrypt / get CryptoKey, AES-256-GCM with the AAD it is given) and of Google's OAuth
//! token endpoint (JWT-bearer grant; the mock verifies the RS256 signature with the service
//! account's public key and checks every claim).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use phiguard_crypto::provider::gcp_kms::{GcpCredential, GcpKms, GcpKmsConfig, ServiceAccountKey};
use phiguard_crypto::{
    CryptoError, DataKey, FieldCipher, FieldRef, KeyProvider, SecretString, decrypt, encrypt,
    rewrap,
};
use serde_json::json;

use crate::mock_http::{Mock, Request, Response};
use crate::support::{ctx, vault};

const KEY: &str = "projects/phi-prod/locations/us-east1/keyRings/phiguard/cryptoKeys/kek";
const EMAIL: &str = "phiguard@phi-prod.iam.gserviceaccount.com";
const KEY_ID: &str = "7d1b3c5e9f0a2b4c6d8e0f1a2b3c4d5e6f708192";
const TOKEN: &str = "ya29.GCP-ACCESS-TOKEN-SECRET-VALUE";
const SCOPE: &str = "https://www.googleapis.com/auth/cloudkms";

/// A throwaway RSA-2048 key generated for these tests only (never used anywhere else).
const SA_PRIVATE_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQClvLYj5U8GVQx6\n\
BmDQYWmI4LbVM239fzaye1be58ixzCu0OlMHyI6yqKe8UjF9mCSeBptWmngEh34I\n\
4bvx4cq4DBK0ARaPbwNlgH0h/sGMS/7a/1+69oRFeagmJvsO92mjca+MdjMuoSmY\n\
U2gAPkI4SKdPo067j9sqUXs63k8sFyExDZpCGTKuzQjOe2wA3GaVa43d+f2BvOCW\n\
yklAsUpINvldhOVzG3hlqss+iwyslmU0CAcbaj4KVwxF9qFDVd4yxmuw+VaW7+i0\n\
nRMOrJUzsqsydYBNczQp3BmaJyIT2CpvyR5tS2NgRuBMhAtWjGGiFar09zd2F45v\n\
ToT/QIpDAgMBAAECggEAS7bb0Kc7xE1LP121kczGrSDXdauillms77m39GoX/d2j\n\
o5i3gMlHI2g4BKjZ8iH0rHqhMV2s8YjCc6VIOpaniQ/+5VvP5iPVfePGhqa+3eyD\n\
16EtpxhiUejjf9Z0ACDYEjJn+7et5yH6AhwsWVwX3WWXhaK536a2/Wyu6rRPn/iN\n\
xLomeBuKjps2uh+CzMqjBjnqHRrkRA2rQdPcQaMPUgz5IyDMM8nMTlXvpxysbvHv\n\
RuagsOR/pIvzbPnN1Dzj5bHJTLjCQ10mp3xKcGUCMcLjPb1iHr0ZfsCMZ30lA7nK\n\
lql1rY8chohmwMATlMGDQh+W9xZNQ8VVSSSdxpSLHQKBgQDleYtwosd4BKNnv0dJ\n\
Ys3AeMqKVsF181crgeFJ600Muf6e/V6JB9tXxj2KsRr67QyJAbRGrtxBi7jWE8Ay\n\
AweO5crTwTBHsjAEy+F+zB8NbI4sNzZfM7FrZhYV1K2EJzdVD56HjfLTTLLvDpxs\n\
d0RoIyfYYb9AtxGoGCFsL/pmPwKBgQC45RaGuAR7Wca9JkEEb4EPus+V+3lzbKPi\n\
bgB7GDoBV2iOKDIHm/wIuzbNW9QswRH4eYmEU33D+8NyB4jky62tbuw4OK/l8rRw\n\
3lTYN+dPiL+QoyUIvS2RCIlv1DhZrdNv+YmjkMxBcsshLeh5CqYcrz7N56qFf1iX\n\
h7J+wsMC/QKBgDJklrKNjLBWlGvcHZOIFxcFb7UhiCqW3bW4N/k7qxf4YGoZygDd\n\
sNV9u1YRvpMMK4yKy0QaclQSkuywOazB7Y7796a47hlQkCr9eu+Vc9xG0pHzLgWK\n\
HJQxPvhcVB6JXiVX4MBz87djSIgm9UL8jhEwZzelf5J+oWoAopZXku2RAoGBAJFD\n\
IvSK5LKIsRRwVoqGlC5ohaj/HscpZoSCCgyr1v6wzqtJNy01RskRVRf4enUC5vyB\n\
eCInelqclUwkUU/4GaZ1zE7Lcp7FlTBL7PrGyQt6k46uLm10O7WDsH7Ui8UhRUnn\n\
ElUYcPFGoAKcT9WxIRrOMBiTVyx1BYRfj0P5/j59AoGACoqHOzQOIv9Z4O7IP+lv\n\
F6Un3H9TGfW4drZZZLXJwh64gEJGu3D1+2BSBhMUhqHElGU3L4F+Hx17y3k69HGm\n\
/Z1NiS+3SHGWLvoZDJASpqrzkP/ksvleBzbwojHR6fNcpTcoSDc7mxs4GUpS5pk0\n\
UC4XRlkyouxG3VNsUHh2Umo=\n\
-----END PRIVATE KEY-----\n\
";

const SA_PUBLIC_KEY: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEApby2I+VPBlUMegZg0GFp\n\
iOC21TNt/X82sntW3ufIscwrtDpTB8iOsqinvFIxfZgkngabVpp4BId+COG78eHK\n\
uAwStAEWj28DZYB9If7BjEv+2v9fuvaERXmoJib7Dvdpo3GvjHYzLqEpmFNoAD5C\n\
OEinT6NOu4/bKlF7Ot5PLBchMQ2aQhkyrs0IzntsANxmlWuN3fn9gbzglspJQLFK\n\
SDb5XYTlcxt4ZarLPosMrJZlNAgHG2o+ClcMRfahQ1XeMsZrsPlWlu/otJ0TDqyV\n\
M7KrMnWATXM0KdwZmiciE9gqb8kebUtjYEbgTIQLVoxhohWq9Pc3dheOb06E/0CK\n\
QwIDAQAB\n\
-----END PUBLIC KEY-----\n\
";

#[derive(Clone, Copy, Debug)]
enum Fail {
    Status(u16),
    TooManyRequests,
    Malformed,
    Slow,
}

struct State {
    versions: BTreeMap<u32, [u8; 32]>,
    primary: u32,
    disabled: BTreeSet<u32>,
    plan: VecDeque<Fail>,
}

struct GcpMock {
    mock: Mock,
    state: Arc<Mutex<State>>,
}

impl GcpMock {
    fn start() -> GcpMock {
        let state = Arc::new(Mutex::new(State {
            versions: BTreeMap::from([(1, [0x31; 32])]),
            primary: 1,
            disabled: BTreeSet::new(),
            plan: VecDeque::new(),
        }));
        let shared = Arc::clone(&state);
        let mock = Mock::start(move |m, r| handle(m, r, &shared));
        GcpMock { mock, state }
    }

    fn rotate(&self) -> u32 {
        let mut s = self.state.lock().unwrap();
        let next = s.primary + 1;
        s.versions.insert(next, [0x30 + next as u8; 32]);
        s.primary = next;
        next
    }

    fn fail_next(&self, fails: &[Fail]) {
        self.state
            .lock()
            .unwrap()
            .plan
            .extend(fails.iter().copied());
    }

    fn token_uri(&self) -> String {
        format!("{}/token", self.mock.base_url)
    }

    fn service_account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": "phi-prod",
            "private_key_id": KEY_ID,
            "private_key": SA_PRIVATE_KEY,
            "client_email": EMAIL,
            "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
        })
        .to_string()
    }

    fn config(&self, credential: GcpCredential) -> GcpKmsConfig {
        let mut c = GcpKmsConfig::new(KEY, credential);
        c.base_url = self.mock.base_url.clone();
        c.timeout = Duration::from_millis(1500);
        c.max_retry_wait = Duration::from_millis(200);
        c
    }

    fn provider(&self) -> GcpKms {
        let key = ServiceAccountKey::from_json(&self.service_account_json()).unwrap();
        GcpKms::new(self.config(GcpCredential::ServiceAccount(key))).unwrap()
    }

    fn token_provider(&self) -> GcpKms {
        GcpKms::new(self.config(GcpCredential::Token(SecretString::from(TOKEN.to_string()))))
            .unwrap()
    }

    fn assert_clean(&self) {
        assert_eq!(self.mock.violations(), Vec::<String>::new());
    }
}

fn gcp_error(code: u16, status: &str, message: &str) -> Response {
    Response::json(
        code,
        &json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

fn handle(m: &Mock, r: &Request, state: &Mutex<State>) -> Response {
    if r.path == "/token" {
        return token_endpoint(m, r);
    }
    if r.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return gcp_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    }
    if !r.query.is_empty() {
        m.violation(format!("query `{}`", r.query));
    }
    let mut s = state.lock().unwrap();
    if let Some(fail) = s.plan.pop_front() {
        return match fail {
            Fail::Status(code) => gcp_error(code, "INTERNAL", "injected"),
            Fail::TooManyRequests => gcp_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded")
                .with_header("Retry-After", "0"),
            Fail::Malformed => Response::raw(200, b"<html>proxy error</html>".to_vec()),
            Fail::Slow => Response::json(200, &json!({})).delayed(Duration::from_secs(4)),
        };
    }
    let primary = s.primary;
    if r.path == format!("/v1/{KEY}") {
        if r.method != "GET" {
            m.violation(format!("{} {}", r.method, r.path));
        }
        return Response::json(
            200,
            &json!({"name": KEY, "purpose": "ENCRYPT_DECRYPT",
                    "primary": {"name": format!("{KEY}/cryptoKeyVersions/{primary}"), "state": "ENABLED"}}),
        );
    }
    let op = match r.path.strip_prefix(&format!("/v1/{KEY}:")) {
        Some(op @ ("encrypt" | "decrypt")) => op,
        _ => return gcp_error(404, "NOT_FOUND", "CryptoKey not found."),
    };
    if r.method != "POST" {
        m.violation(format!("{} {}", r.method, r.path));
    }
    if r.header("content-type") != Some("application/json") {
        m.violation(format!("content-type {:?}", r.header("content-type")));
    }
    let body = r.json().unwrap_or_default();
    let field = if op == "encrypt" {
        "plaintext"
    } else {
        "ciphertext"
    };
    let keys: BTreeSet<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if keys != BTreeSet::from([field, "additionalAuthenticatedData"]) {
        m.violation(format!("{op} body fields {keys:?}"));
    }
    let decode = |name: &str| B64.decode(body[name].as_str().unwrap_or("!")).ok();
    let (Some(input), Some(aad)) = (decode(field), decode("additionalAuthenticatedData")) else {
        m.violation(format!("{op} fields are not standard base64"));
        return gcp_error(400, "INVALID_ARGUMENT", "Invalid base64.");
    };
    if op == "encrypt" {
        let key = s.versions[&primary];
        let nonce = [primary as u8; 12];
        let ct = Aes256Gcm::new(&key.into())
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &input,
                    aad: &aad,
                },
            )
            .unwrap();
        let mut blob = primary.to_be_bytes().to_vec();
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        return Response::json(
            200,
            &json!({"name": format!("{KEY}/cryptoKeyVersions/{primary}"),
                    "ciphertext": B64.encode(blob),
                    "verifiedPlaintextCrc32c": false,
                    "verifiedAdditionalAuthenticatedDataCrc32c": false,
                    "protectionLevel": "SOFTWARE"}),
        );
    }
    let bad = || {
        gcp_error(
            400,
            "INVALID_ARGUMENT",
            "Decryption failed: the ciphertext is invalid.",
        )
    };
    if input.len() < 16 + 12 + 4 {
        return bad();
    }
    let version = u32::from_be_bytes(input[..4].try_into().unwrap());
    if s.disabled.contains(&version) {
        return gcp_error(
            400,
            "FAILED_PRECONDITION",
            "The request cannot be fulfilled: the key version is not enabled.",
        );
    }
    let Some(key) = s.versions.get(&version) else {
        return bad();
    };
    match Aes256Gcm::new(&(*key).into()).decrypt(
        Nonce::from_slice(&input[4..16]),
        Payload {
            msg: &input[16..],
            aad: &aad,
        },
    ) {
        Ok(plain) => Response::json(
            200,
            &json!({"plaintext": B64.encode(plain), "usedPrimary": version == primary,
                    "protectionLevel": "SOFTWARE"}),
        ),
        Err(_) => bad(),
    }
}

fn token_endpoint(m: &Mock, r: &Request) -> Response {
    if r.method != "POST" {
        m.violation(format!("token {}", r.method));
    }
    if r.header("content-type") != Some("application/x-www-form-urlencoded") {
        m.violation(format!("token content-type {:?}", r.header("content-type")));
    }
    let form = r.form();
    if form.keys().map(String::as_str).collect::<BTreeSet<_>>()
        != BTreeSet::from(["assertion", "grant_type"])
        || form["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer"
    {
        m.violation(format!("token form {:?}", form.keys()));
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[format!("{}/token", m.base_url)]);
    validation.set_issuer(&[EMAIL]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    let public = jsonwebtoken::DecodingKey::from_rsa_pem(SA_PUBLIC_KEY.as_bytes()).unwrap();
    let data = match jsonwebtoken::decode::<serde_json::Value>(&assertion, &public, &validation) {
        Ok(d) => d,
        Err(e) => {
            m.violation(format!("JWT does not verify: {e}"));
            return Response::json(
                400,
                &json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
            );
        }
    };
    let c = &data.claims;
    if data.header.kid.as_deref() != Some(KEY_ID) || data.header.typ.as_deref() != Some("JWT") {
        m.violation(format!("JWT header {:?}", data.header));
    }
    if c["scope"] != SCOPE {
        m.violation(format!("JWT scope {}", c["scope"]));
    }
    let (iat, exp) = (
        c["iat"].as_u64().unwrap_or(0),
        c["exp"].as_u64().unwrap_or(0),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if exp != iat + 3600 || iat.abs_diff(now) > 60 {
        m.violation(format!("JWT iat {iat} exp {exp} now {now}"));
    }
    let names: BTreeSet<&str> = c
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if names != BTreeSet::from(["aud", "exp", "iat", "iss", "scope"]) {
        m.violation(format!("JWT claims {names:?}"));
    }
    Response::json(
        200,
        &json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}),
    )
}

fn shown(e: &CryptoError) -> String {
    let mut out = format!("{e} | {e:?}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(&format!(" | {s} | {s:?}"));
        src = s.source();
    }
    out
}

/// A line from the middle of the private key: it must never be shown.
fn private_key_line() -> &'static str {
    SA_PRIVATE_KEY.lines().nth(5).unwrap()
}

fn assert_no_secrets(text: &str) {
    for secret in [TOKEN, "GCP-ACCESS-TOKEN-SECRET", private_key_line()] {
        assert!(!text.contains(secret), "secret leaked in: {text}");
    }
}

#[test]
fn round_trip_with_jwt_bearer_token() {
    let g = GcpMock::start();
    let p = g.provider();
    let key = DataKey::from_bytes([9; 32]);
    let wrapped = p.wrap(&key, &vault()).unwrap();
    assert_eq!(wrapped.provider, "gcp-kms");
    assert_eq!(wrapped.kek.id, KEY);
    assert_eq!(wrapped.kek.version, 1);
    assert_eq!(
        p.unwrap(&wrapped, &vault()).unwrap().expose_secret(),
        key.expose_secret()
    );
    assert_eq!(p.current().unwrap().version, 1);
    assert_eq!(g.mock.count("/token"), 1, "the token is cached");
    // The AAD on the wire is exactly the canonical context.
    let enc = g
        .mock
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with(":encrypt"))
        .unwrap();
    let aad = B64
        .decode(
            enc.json().unwrap()["additionalAuthenticatedData"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(aad, vault().canonical_bytes().unwrap());
    g.assert_clean();
}

#[test]
fn given_token_and_envelope_round_trip() {
    let g = GcpMock::start();
    let p = g.token_provider();
    let sealed = encrypt(&p, b"discharge summary draft", &vault()).unwrap();
    assert_eq!(
        decrypt(&p, &sealed, &vault()).unwrap(),
        b"discharge summary draft"
    );
    assert_eq!(g.mock.count("/token"), 0);
    g.assert_clean();
}

#[test]
fn context_mismatch_fails_in_kms() {
    let g = GcpMock::start();
    let p = g.token_provider();
    let wrapped = p.wrap(&DataKey::from_bytes([4; 32]), &vault()).unwrap();
    let other = ctx(&[("purpose", "vault"), ("tenant", "t2")]);
    let e = p.unwrap(&wrapped, &other).unwrap_err();
    assert_eq!(e.code(), "authentication_failed", "{e}");
    // And through the envelope, with the header's context edited to the other tenant: the
    // header check or KMS rejects it, never a plaintext.
    let sealed = encrypt(&p, b"x", &vault()).unwrap();
    assert!(decrypt(&p, &sealed, &other).is_err());
    g.assert_clean();
}

#[test]
fn rotation_and_rewrap() {
    let g = GcpMock::start();
    let p = g.token_provider();
    let fields = FieldCipher::new(&p, vault()).unwrap();
    let row = FieldRef::new("ai_outputs", "text", "42");
    let stored = fields.encrypt(&row, b"model said").unwrap();
    let sealed = encrypt(&p, b"file body", &vault()).unwrap();
    assert_eq!(g.rotate(), 2);
    assert!(
        fields.is_current(&stored).unwrap(),
        "cached primary until refresh"
    );
    p.refresh();
    assert_eq!(p.current().unwrap().version, 2);
    assert!(!fields.is_current(&stored).unwrap());
    assert_eq!(&fields.decrypt(&row, &stored).unwrap()[..], b"model said");
    let (_, moved) = fields.rewrap_field(&row, &stored).unwrap();
    assert!(fields.is_current(&moved).unwrap());
    let (_, rewrapped) = rewrap(&p, &sealed).unwrap();
    let header = phiguard_crypto::Header::parse(&rewrapped.unwrap())
        .unwrap()
        .header;
    assert_eq!(header.wrapped.kek.version, 2);
    g.state.lock().unwrap().disabled.insert(1);
    let e = decrypt(&p, &sealed, &vault()).unwrap_err();
    assert_eq!(e.code(), "kek_revoked", "{e}");
    assert_eq!(&fields.decrypt(&row, &moved).unwrap()[..], b"model said");
    g.assert_clean();
}

#[test]
fn failures_are_clear_and_retried_once() {
    let g = GcpMock::start();
    let p = g.provider();
    let key = DataKey::from_bytes([5; 32]);
    g.fail_next(&[Fail::TooManyRequests]);
    let wrapped = p.wrap(&key, &vault()).unwrap();
    assert_eq!(g.mock.count(":encrypt"), 2);
    g.fail_next(&[Fail::Status(500)]);
    assert!(p.unwrap(&wrapped, &vault()).is_ok());

    for (fails, expect) in [
        (vec![Fail::Status(500), Fail::Status(503)], "HTTP 503"),
        (
            vec![Fail::TooManyRequests, Fail::TooManyRequests],
            "RESOURCE_EXHAUSTED",
        ),
        (vec![Fail::Status(403)], "HTTP 403"),
        (vec![Fail::Malformed], "malformed response"),
    ] {
        g.fail_next(&fails);
        let e = p.wrap(&key, &vault()).unwrap_err();
        let text = shown(&e);
        assert!(text.contains(expect), "{expect}: {text}");
        assert!(text.contains("Cloud KMS encrypt"), "{text}");
        assert_no_secrets(&text);
    }
    g.assert_clean();
}

#[test]
fn slow_service_times_out() {
    let g = GcpMock::start();
    let mut config = g.config(GcpCredential::Token(SecretString::from(TOKEN.to_string())));
    config.timeout = Duration::from_millis(300);
    let p = GcpKms::new(config).unwrap();
    g.fail_next(&[Fail::Slow]);
    let started = std::time::Instant::now();
    let e = p.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(shown(&e).contains("timed out"), "{}", shown(&e));
    assert_no_secrets(&shown(&e));
}

#[test]
fn rejected_token_and_unknown_key() {
    let g = GcpMock::start();
    let p = GcpKms::new(g.config(GcpCredential::Token(SecretString::from(
        "expired-token-value".to_string(),
    ))))
    .unwrap();
    let e = p.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap_err();
    let text = shown(&e);
    assert!(
        text.contains("HTTP 401") && text.contains("UNAUTHENTICATED"),
        "{text}"
    );
    assert!(!text.contains("expired-token-value"), "{text}");

    let mut config = g.config(GcpCredential::Token(SecretString::from(TOKEN.to_string())));
    config.key_name =
        "projects/phi-prod/locations/us-east1/keyRings/phiguard/cryptoKeys/gone".into();
    let p = GcpKms::new(config).unwrap();
    let e = p.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap_err();
    assert_eq!(e.code(), "wrong_key", "{e}");

    // A wrapped key from another provider or key.
    let good = g.token_provider();
    let mut w = good.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap();
    w.kek.id = "projects/x/locations/l/keyRings/r/cryptoKeys/k".into();
    assert_eq!(good.unwrap(&w, &vault()).unwrap_err().code(), "wrong_key");
    w.provider = "local".into();
    assert_eq!(
        good.unwrap(&w, &vault()).unwrap_err().code(),
        "wrong_provider"
    );
}

#[test]
fn bad_service_account_keys_are_clear_errors() {
    let g = GcpMock::start();
    assert!(ServiceAccountKey::from_json("{not json").is_err());
    let key = ServiceAccountKey::new(
        EMAIL,
        None,
        SecretString::from(
            "-----BEGIN PRIVATE KEY-----\nAAAA-not-a-key\n-----END PRIVATE KEY-----\n".to_string(),
        ),
        g.token_uri(),
    );
    let p = GcpKms::new(g.config(GcpCredential::ServiceAccount(key))).unwrap();
    let e = p.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap_err();
    let text = shown(&e);
    assert!(text.contains("not an RSA PEM key"), "{text}");
    assert!(!text.contains("AAAA-not-a-key"), "{text}");
    // The token endpoint was never called with a bad assertion.
    assert_eq!(g.mock.count("/token"), 0);
}

#[test]
fn debug_output_hides_secrets() {
    let g = GcpMock::start();
    let p = g.provider();
    p.wrap(&DataKey::from_bytes([1; 32]), &vault()).unwrap(); // caches a token
    let key = ServiceAccountKey::from_json(&g.service_account_json()).unwrap();
    for text in [
        format!("{p:?}"),
        format!("{p:#?}"),
        format!("{key:?}"),
        format!(
            "{:?}",
            GcpCredential::Token(SecretString::from(TOKEN.to_string()))
        ),
        format!("{:?}", g.config(GcpCredential::ServiceAccount(key))),
    ] {
        assert_no_secrets(&text);
        assert!(text.contains("REDACTED"), "{text}");
    }
}
