//! TLS termination: certificates made here with rcgen; clients trust the test CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use phiguard_detect::Span;
use phiguard_gateway::guard::{GuardError, PhiScanner};
use phiguard_gateway::{Config, Gateway, KeyStore, MemorySink};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::json;

/// No detection (these tests are about the transport).
struct Clean;
impl PhiScanner for Clean {
    fn scan(&self, _: &str) -> Result<Vec<Span>, GuardError> {
        Ok(Vec::new())
    }
}

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = p.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

/// A leaf certificate from `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    client_ca: Ca,
    other_ca: Ca,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = new_ca("phiguard test CA");
        let (cert, key) = leaf(&ca, &["127.0.0.1", "localhost"]);
        std::fs::write(dir.path().join("server.pem"), cert).unwrap();
        std::fs::write(dir.path().join("server.key"), key).unwrap();
        let client_ca = new_ca("phiguard test client CA");
        std::fs::write(dir.path().join("client-ca.pem"), &client_ca.pem).unwrap();
        Pki {
            dir,
            ca,
            client_ca,
            other_ca: new_ca("some other CA"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn config(pki: &Pki, upstream: &str, min_version: &str, mtls: bool) -> String {
    let p = |n: &str| pki.path(n).display().to_string();
    let client_ca = if mtls {
        format!("client_ca = \"{}\"\n", p("client-ca.pem"))
    } else {
        String::new()
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
key_store = "{keys}"

[server.tls]
cert = "{cert}"
key = "{key}"
{client_ca}min_version = "{min_version}"

[providers.private]
kind = "openai_compatible"
endpoint = "{upstream}"
models = ["echo"]
private = true

[roles.clinician]
actions = ["chat"]
models = ["*"]
phi = "full"
input = "tokenize"
"#,
        keys = p("keys.db"),
        cert = p("server.pem"),
        key = p("server.key"),
    )
}

/// Starts a TLS gateway; returns its base URL (`https://127.0.0.1:PORT`) and a key.
async fn start_tls(pki: &Pki, min_version: &str, mtls: bool) -> (String, String) {
    let (base, keys, _) = start_tls_with(pki, min_version, mtls).await;
    let key = keys.create("clinician", &[], None).unwrap().token;
    (base, key)
}

/// Starts a TLS gateway; returns its base URL, its key store and its audit sink.
async fn start_tls_with(
    pki: &Pki,
    min_version: &str,
    mtls: bool,
) -> (String, Arc<KeyStore>, Arc<MemorySink>) {
    let (_mock, upstream) = crate::mock::start().await;
    let config = Config::parse(
        &config(pki, &upstream, min_version, mtls),
        Path::new("tls.toml"),
        |_| None,
    )
    .unwrap();
    let tls = phiguard_gateway::tls::server_config(config.server.tls.as_ref().unwrap()).unwrap();
    let keys = Arc::new(KeyStore::open(&pki.path("keys.db")).unwrap());
    let sink = Arc::new(MemorySink::default());
    let gw = Gateway::new(config, Arc::new(Clean), keys.clone(), sink.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        phiguard_gateway::serve_tls(gw, listener, tls, std::future::pending())
            .await
            .unwrap();
    });
    (format!("https://{addr}"), keys, sink)
}

fn client(ca_pem: &str, identity: Option<(&str, &str)>, tls12_only: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap());
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    if tls12_only {
        b = b.max_tls_version(reqwest::tls::Version::TLS_1_2);
    }
    b.build().unwrap()
}

/// The protocol version a rustls client limited to `versions` negotiates, or the error.
async fn negotiate(
    ca_pem: &str,
    addr: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ProtocolVersion, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(stream.get_ref().1.protocol_version().unwrap())
}

use rustls::pki_types::pem::PemObject;

#[tokio::test]
async fn https_answers_a_client_that_trusts_the_ca() {
    let pki = Pki::new();
    let (base, key) = start_tls(&pki, "1.2", false).await;
    let c = client(&pki.ca.pem, None, false);
    let r = c.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "echo", "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("You said: hello"));
    // A client that does not trust the CA is refused; plain HTTP gets no answer.
    let stranger = client(&pki.other_ca.pem, None, false);
    assert!(stranger.get(format!("{base}/health")).send().await.is_err());
    let plain = reqwest::Client::new();
    let http = base.replace("https://", "http://");
    assert!(
        plain
            .get(format!("{http}/health"))
            .send()
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
    );
}

#[tokio::test]
async fn min_version_1_2_serves_tls12_and_1_3_refuses_it() {
    let pki = Pki::new();
    let (base12, _) = start_tls(&pki, "1.2", false).await;
    let addr12 = base12.trim_start_matches("https://").to_string();
    assert_eq!(
        negotiate(&pki.ca.pem, &addr12, &[&rustls::version::TLS12]).await,
        Ok(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        negotiate(&pki.ca.pem, &addr12, &[&rustls::version::TLS13]).await,
        Ok(rustls::ProtocolVersion::TLSv1_3)
    );
    let c12 = client(&pki.ca.pem, None, true);
    let r = c12.get(format!("{base12}/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let (base13, _) = start_tls(&pki, "1.3", false).await;
    let addr13 = base13.trim_start_matches("https://").to_string();
    assert!(
        negotiate(&pki.ca.pem, &addr13, &[&rustls::version::TLS12])
            .await
            .is_err()
    );
    assert!(c12.get(format!("{base13}/health")).send().await.is_err());
    assert_eq!(
        negotiate(&pki.ca.pem, &addr13, &[&rustls::version::TLS13]).await,
        Ok(rustls::ProtocolVersion::TLSv1_3)
    );
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new();
    let (base, key) = start_tls(&pki, "1.2", true).await;
    // No certificate: refused at the handshake (TLS 1.2 and 1.3 clients alike).
    for tls12 in [false, true] {
        let c = client(&pki.ca.pem, None, tls12);
        assert!(c.get(format!("{base}/health")).send().await.is_err());
    }
    // A certificate from another CA: refused.
    let (cert, k) = leaf(&pki.other_ca, &["svc-intruder"]);
    let c = client(&pki.ca.pem, Some((&cert, &k)), false);
    assert!(c.get(format!("{base}/health")).send().await.is_err());
    // A certificate from the client CA: served, and the API key is still required.
    let (cert, k) = leaf(&pki.client_ca, &["svc-billing"]);
    let c = client(&pki.ca.pem, Some((&cert, &k)), false);
    let r = c.get(format!("{base}/v1/models")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .get(format!("{base}/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn a_key_bound_to_a_client_certificate_needs_that_certificate() {
    let pki = Pki::new();
    let (base, keys, sink) = start_tls_with(&pki, "1.2", true).await;
    let (cert_a, key_a) = leaf(&pki.client_ca, &["svc-billing"]);
    let (cert_b, key_b) = leaf(&pki.client_ca, &["svc-reports"]);
    std::fs::write(pki.path("svc-billing.pem"), &cert_a).unwrap();
    let fp_a =
        phiguard_gateway::tls::cert_file_sha256("--client-cert", &pki.path("svc-billing.pem"))
            .unwrap();
    assert_eq!(fp_a, phiguard_gateway::tls::cert_sha256(&der(&cert_a)));
    let bound = keys
        .create_bound("clinician", &[], None, Some(fp_a))
        .unwrap()
        .token;
    let free = keys.create("clinician", &[], None).unwrap().token;
    let chat = json!({"model": "echo", "messages": [{"role": "user", "content": "hello"}]});
    let a = client(&pki.ca.pem, Some((&cert_a, &key_a)), false);
    let b = client(&pki.ca.pem, Some((&cert_b, &key_b)), false);

    // The bound key over the connection that presented its certificate: served, and the
    // certificate's fingerprint is in the audit record.
    let r = a
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&bound)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = a
        .get(format!("{base}/v1/models"))
        .bearer_auth(&bound)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let records = sink.records();
    assert!(
        records
            .iter()
            .any(|r| r["client_cert_sha256"] == hex::encode(fp_a) && r["phase"] == "complete"),
        "the audit record names the client certificate"
    );

    // The same key from another client certificate (same CA, handshake accepted): refused.
    for path in ["/v1/chat/completions", "/v1/models"] {
        let req = if path == "/v1/models" {
            b.get(format!("{base}{path}"))
        } else {
            b.post(format!("{base}{path}")).json(&chat)
        };
        let r = req.bearer_auth(&bound).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "client_cert_mismatch", "{path}");
    }
    // An unbound key still works from either certificate.
    let r = b
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&free)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Without mutual TLS no certificate is presented: the bound key is refused.
    let pki2 = Pki::new();
    let (base2, keys2, _) = start_tls_with(&pki2, "1.2", false).await;
    let bound2 = keys2
        .create_bound("clinician", &[], None, Some(fp_a))
        .unwrap()
        .token;
    let r = client(&pki2.ca.pem, None, false)
        .post(format!("{base2}/v1/chat/completions"))
        .bearer_auth(&bound2)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[test]
fn non_loopback_listen_without_tls_is_a_config_error() {
    let text = crate::config_text("http://127.0.0.1:9/v1").replace("127.0.0.1:0", "0.0.0.0:8443");
    let e = Config::parse(&text, Path::new("test.toml"), |_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[server.tls]"), "{e}");
    // plain_http does not make a non-loopback address acceptable either.
    assert!(text.contains("plain_http = true"));
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_named() {
    let pki = Pki::new();
    let (_, other_key) = leaf(&pki.ca, &["localhost"]);
    std::fs::write(pki.path("other.key"), &other_key).unwrap();
    let text =
        config(&pki, "http://127.0.0.1:9/v1", "1.2", false).replace("server.key", "other.key");
    let config = Config::parse(&text, Path::new("tls.toml"), |_| None).unwrap();
    let e = phiguard_gateway::tls::server_config(config.server.tls.as_ref().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("other.key") && e.contains("server.pem"), "{e}");
    let body: String = other_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!e.contains(&body[..20]), "{e}");
}

/// The DER of the certificate the server at `addr` presents.
async fn served_cert(ca_pem: &str, addr: &str) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der(pem_text: &str) -> Vec<u8> {
    rustls::pki_types::CertificateDer::from_pem_slice(pem_text.as_bytes())
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    let pki = Pki::new();
    let (_mock, upstream) = crate::mock::start().await;
    let config = Config::parse(
        &config(&pki, &upstream, "1.2", false),
        Path::new("tls.toml"),
        |_| None,
    )
    .unwrap();
    let tls = config.server.tls.clone().unwrap();
    let keys = Arc::new(KeyStore::open(&pki.path("keys.db")).unwrap());
    let gw = Gateway::new(
        config,
        Arc::new(Clean),
        keys,
        Arc::new(MemorySink::default()),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        phiguard_gateway::serve_tls_reloading(
            gw,
            listener,
            tls,
            std::time::Duration::from_millis(50),
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    let first = std::fs::read_to_string(pki.path("server.pem")).unwrap();
    assert_eq!(served_cert(&pki.ca.pem, &addr).await, der(&first));

    // Renewal: a new certificate and key from the same CA (written key first, as tools do;
    // the mismatched moment in between must not take the server down).
    let (cert2, key2) = leaf(&pki.ca, &["127.0.0.1", "localhost"]);
    std::fs::write(pki.path("server.key"), &key2).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        served_cert(&pki.ca.pem, &addr).await,
        der(&first),
        "a key that does not match the certificate yet is not used"
    );
    std::fs::write(pki.path("server.pem"), &cert2).unwrap();
    let mut now = Vec::new();
    for _ in 0..100 {
        now = served_cert(&pki.ca.pem, &addr).await;
        if now == der(&cert2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        now,
        der(&cert2),
        "the renewed certificate was not picked up"
    );

    // A broken file: the renewed certificate stays in service.
    std::fs::write(pki.path("server.pem"), "not a certificate").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(served_cert(&pki.ca.pem, &addr).await, der(&cert2));
    let r = client(&pki.ca.pem, None, false)
        .get(format!("https://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
