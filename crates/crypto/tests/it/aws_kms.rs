//! The AWS KMS provider against moto (a local mock of the KMS JSON API), and SigV4 against
//! the AWS Signature Version 4 test suite.
//!
//! The KMS endpoint is `PHIGUARD_TEST_KMS_ENDPOINT` (set by `.ci/setup.d/30-moto.sh`); when it
//! is unset and `moto_server` is on PATH, the tests start one on a free port for this process.
//! Otherwise they fail with a pointer to the setup script, unless `PHIGUARD_SKIP_KMS=1`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use phiguard_crypto::sigv4::{self, Credentials, Request, Scope, SigV4Error};
use phiguard_crypto::{
    AwsKmsProvider, CryptoError, DataKey, KeyProvider, KmsClient, KmsClientConfig, SecretString,
    decrypt, encrypt,
};
use serde_json::Value;

use crate::support::{ctx, data_file, vault};

// ---- SigV4 test suite -----------------------------------------------------------------------

fn suite() -> Value {
    serde_json::from_str(&data_file("sigv4/suite.json")).unwrap()
}

fn suite_credentials(v: &Value) -> Credentials {
    Credentials::new(
        v["credentials"]["access_key_id"].as_str().unwrap(),
        SecretString::from(
            v["credentials"]["secret_access_key"]
                .as_str()
                .unwrap()
                .to_string(),
        ),
        None,
    )
    .unwrap()
}

fn headers_of(case: &Value) -> Vec<(String, String)> {
    case["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn sigv4_suite_vectors() {
    let v = suite();
    let creds = suite_credentials(&v);
    let scope = Scope {
        amz_date: v["amz_date"].as_str().unwrap(),
        region: v["region"].as_str().unwrap(),
        service: v["service"].as_str().unwrap(),
    };
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 13, "a vector went missing");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let headers = headers_of(case);
        let req = Request {
            method: case["method"].as_str().unwrap(),
            path: case["path"].as_str().unwrap(),
            query: case["query"].as_str().unwrap(),
            headers: &headers,
            body: case["body"].as_str().unwrap().as_bytes(),
        };
        let (creq, _) = sigv4::canonical_request(&req).unwrap();
        assert_eq!(
            creq,
            case["canonical_request"].as_str().unwrap(),
            "{name}: canonical request"
        );
        let sts = sigv4::string_to_sign(&scope, &creq).unwrap();
        assert_eq!(
            sts,
            case["string_to_sign"].as_str().unwrap(),
            "{name}: string to sign"
        );
        let sig = sigv4::signature(&creds, &scope, &sts).unwrap();
        assert_eq!(
            sig,
            case["signature"].as_str().unwrap(),
            "{name}: signature"
        );
        let authz = sigv4::authorization(&creds, &scope, &req).unwrap();
        assert_eq!(
            authz,
            case["authorization"].as_str().unwrap(),
            "{name}: Authorization"
        );
    }
}

#[test]
fn sigv4_negative_cases() {
    let v = suite();
    let creds = suite_credentials(&v);
    let case = &v["cases"][0]; // get-vanilla
    let headers = headers_of(case);
    let req = Request {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    let scope = Scope {
        amz_date: "20150830T123600Z",
        region: "us-east-1",
        service: "service",
    };
    let good = case["signature"].as_str().unwrap();
    let sign = |creds: &Credentials, scope: &Scope, req: &Request| {
        let (creq, _) = sigv4::canonical_request(req).unwrap();
        sigv4::signature(creds, scope, &sigv4::string_to_sign(scope, &creq).unwrap()).unwrap()
    };
    assert_eq!(sign(&creds, &scope, &req), good);
    // Another secret, date, region, service, method, path, query, header or body: another
    // signature.
    let wrong = Credentials::new(
        "AKIDEXAMPLE",
        SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ".to_string()),
        None,
    )
    .unwrap();
    assert_ne!(sign(&wrong, &scope, &req), good);
    for s in [
        Scope {
            amz_date: "20150831T123600Z",
            ..scope
        },
        Scope {
            region: "us-east-2",
            ..scope
        },
        Scope {
            service: "kms",
            ..scope
        },
    ] {
        assert_ne!(sign(&creds, &s, &req), good);
    }
    let mut h2 = headers.clone();
    h2.push(("My-Header".into(), "x".into()));
    for r in [
        Request {
            method: "POST",
            ..req
        },
        Request { path: "/x", ..req },
        Request {
            query: "a=b",
            ..req
        },
        Request {
            headers: &h2,
            ..req
        },
        Request { body: b"x", ..req },
    ] {
        assert_ne!(sign(&creds, &scope, &r), good);
    }
    // Malformed inputs are errors, not panics or silent signatures.
    for bad in [
        "2015-08-30T12:36:00Z",
        "20150830",
        "20150830T123600",
        "2015083XT123600Z",
        "",
    ] {
        let s = Scope {
            amz_date: bad,
            ..scope
        };
        assert!(
            matches!(sigv4::string_to_sign(&s, "x"), Err(SigV4Error::BadDate(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        sigv4::string_to_sign(
            &Scope {
                region: "us east",
                ..scope
            },
            "x"
        ),
        Err(SigV4Error::BadScope { .. })
    ));
    assert!(matches!(
        sigv4::string_to_sign(
            &Scope {
                service: "",
                ..scope
            },
            "x"
        ),
        Err(SigV4Error::BadScope { .. })
    ));
    let no_host = vec![("X-Amz-Date".to_string(), "20150830T123600Z".to_string())];
    assert_eq!(
        sigv4::canonical_request(&Request {
            headers: &no_host,
            ..req
        })
        .unwrap_err(),
        SigV4Error::NoHost
    );
    let crlf = vec![
        ("Host".to_string(), "example.amazonaws.com".to_string()),
        ("X-Evil".to_string(), "a\r\nInjected: 1".to_string()),
    ];
    assert!(matches!(
        sigv4::canonical_request(&Request {
            headers: &crlf,
            ..req
        }),
        Err(SigV4Error::BadHeader(_))
    ));
    let bad_name = vec![("Bad Name".to_string(), "x".to_string())];
    assert!(matches!(
        sigv4::canonical_request(&Request {
            headers: &bad_name,
            ..req
        }),
        Err(SigV4Error::BadHeader(_))
    ));
    assert!(matches!(
        sigv4::canonical_request(&Request {
            path: "no-slash",
            ..req
        }),
        Err(SigV4Error::BadPath(_))
    ));
    assert!(matches!(
        sigv4::canonical_request(&Request {
            method: "GE T",
            ..req
        }),
        Err(SigV4Error::BadMethod(_))
    ));
    assert!(Credentials::new("", SecretString::from("s".to_string()), None).is_err());
    assert!(Credentials::new("AKID/x", SecretString::from("s".to_string()), None).is_err());
    // The secret never shows in Debug.
    let shown = format!("{creds:?}");
    assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
}

// ---- KMS against moto -----------------------------------------------------------------------

/// The moto endpoint, or `None` when skipped (PHIGUARD_SKIP_KMS=1).
fn endpoint() -> Option<String> {
    static ENDPOINT: OnceLock<Option<String>> = OnceLock::new();
    ENDPOINT.get_or_init(find_or_start_moto).clone()
}

fn answers(addr: &str) -> bool {
    addr.parse()
        .ok()
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).ok())
        .is_some()
}

// The watchdog shell outlives this function on purpose: it stops moto when the test process
// exits, and is reaped by init then.
#[allow(clippy::zombie_processes)]
fn find_or_start_moto() -> Option<String> {
    if let Ok(url) = std::env::var("PHIGUARD_TEST_KMS_ENDPOINT")
        && !url.is_empty()
    {
        return Some(url);
    }
    let has_moto = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_moto {
        if std::env::var("PHIGUARD_SKIP_KMS").as_deref() == Ok("1") {
            eprintln!(
                "SKIPPED: no KMS mock (PHIGUARD_TEST_KMS_ENDPOINT unset, no moto_server) and PHIGUARD_SKIP_KMS=1"
            );
            return None;
        }
        panic!(
            "no KMS mock: PHIGUARD_TEST_KMS_ENDPOINT is unset and moto_server is not on PATH. Run \
             `bash .ci/setup.d/30-moto.sh` and export PHIGUARD_TEST_KMS_ENDPOINT=http://127.0.0.1:5077 \
             (CI does), or set PHIGUARD_SKIP_KMS=1 to skip"
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A watchdog shell stops moto when this test process exits.
    let script = format!(
        "moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m",
        parent = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    while !answers(&addr) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "moto_server did not answer on {addr} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(format!("http://{addr}"))
}

fn creds(id: &str, secret: &str) -> Credentials {
    Credentials::new(id, SecretString::from(secret.to_string()), None).unwrap()
}

fn client(url: &str, c: Credentials) -> KmsClient {
    let mut cfg = KmsClientConfig::new("us-east-1");
    cfg.endpoint = Some(url.to_string());
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.timeout = Duration::from_secs(10);
    KmsClient::new(&cfg, c).unwrap()
}

/// A provider over a fresh KMS key made with CreateKey.
fn provider(url: &str) -> AwsKmsProvider {
    let c = client(url, creds("AKIDTESTING", "testing-secret"));
    let arn = c.create_key("phiguard test KEK").unwrap();
    assert!(arn.starts_with("arn:aws:kms:"), "{arn}");
    AwsKmsProvider::new(c, arn).unwrap()
}

#[test]
fn kms_generate_and_decrypt_round_trip() {
    let Some(url) = endpoint() else { return };
    let p = provider(&url);
    assert_eq!(p.name(), "aws-kms");
    let (key, w) = p.generate_data_key(&vault()).unwrap();
    assert_eq!(w.provider, "aws-kms");
    assert_eq!(w.kek.id, p.key_id());
    assert_eq!(w.kek.version, 0);
    let back = p.unwrap(&w, &vault()).unwrap();
    assert_eq!(back.expose_secret(), key.expose_secret());
    // wrap = Encrypt of a given key.
    let k2 = DataKey::generate().unwrap();
    let w2 = p.wrap(&k2, &vault()).unwrap();
    assert_eq!(
        p.unwrap(&w2, &vault()).unwrap().expose_secret(),
        k2.expose_secret()
    );
    assert!(p.is_current(&w2).unwrap());
    // Another provider name or another key id is refused before any call.
    let mut other = w.clone();
    other.kek.id = "arn:aws:kms:us-east-1:123456789012:key/other".into();
    assert!(matches!(
        p.unwrap(&other, &vault()),
        Err(CryptoError::UnknownKek { .. })
    ));
}

#[test]
fn kms_envelope_round_trip() {
    let Some(url) = endpoint() else { return };
    let p = provider(&url);
    let msg = crate::support::bytes(100_000, 3);
    let sealed = encrypt(&p, &msg, &vault()).unwrap();
    assert_eq!(decrypt(&p, &sealed, &vault()).unwrap(), msg);
}

#[test]
fn kms_wrong_context_fails() {
    let Some(url) = endpoint() else { return };
    let p = provider(&url);
    let (_, w) = p.generate_data_key(&vault()).unwrap();
    let other = ctx(&[("purpose", "vault"), ("tenant", "t2")]);
    let e = p.unwrap(&w, &other).unwrap_err();
    assert!(matches!(e, CryptoError::Authentication(_)), "{e}");
    // An altered blob fails too.
    let mut bad = w.clone();
    let n = bad.blob.len();
    bad.blob[n - 1] ^= 1;
    assert!(p.unwrap(&bad, &vault()).is_err());
}

/// A one-shot HTTP server that answers every request with `status` and `body`, like KMS
/// does for rejected credentials (moto does not check signatures by default).
fn lying_server(status: u16, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let mut buf = [0u8; 8192];
            let mut got = Vec::new();
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let resp = format!(
                "HTTP/1.1 {status} Bad\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    format!("http://{addr}")
}

#[test]
fn kms_bad_credentials_fail_clearly() {
    let url = lying_server(
        400,
        r#"{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}"#,
    );
    let c = client(&url, creds("AKIDWRONG", "wrong-secret-value"));
    let p = AwsKmsProvider::new(c, "arn:aws:kms:us-east-1:123456789012:key/k").unwrap();
    let e = p.generate_data_key(&vault()).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("rejected the credentials") && s.contains("UnrecognizedClientException"),
        "{s}"
    );
    assert!(!s.contains("wrong-secret-value"), "{s}");
    assert!(!format!("{p:?}").contains("wrong-secret-value"));
    // A disabled key is reported as revoked.
    let url = lying_server(
        400,
        r#"{"__type":"DisabledException","message":"key is disabled"}"#,
    );
    let p = AwsKmsProvider::new(client(&url, creds("AKID", "s")), "k1").unwrap();
    let w = phiguard_crypto::WrappedKey {
        provider: "aws-kms".into(),
        kek: p.current().unwrap(),
        blob: vec![1, 2, 3],
    };
    assert!(matches!(
        p.unwrap(&w, &vault()),
        Err(CryptoError::Revoked { .. })
    ));
    // Missing credentials in the environment are named (only checked when unset here).
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        let e = Credentials::from_env().unwrap_err().to_string();
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
    }
}

#[test]
fn kms_server_down_fails_clearly() {
    // A port that nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let p = AwsKmsProvider::new(client(&url, creds("AKID", "s")), "k1").unwrap();
    let e = p.generate_data_key(&vault()).unwrap_err();
    let s = e.to_string();
    assert!(s.contains("GenerateDataKey") && s.contains(&url), "{s}");
    assert_eq!(e.code(), "io");
}
