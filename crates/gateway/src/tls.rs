//! TLS termination with rustls (ring provider): TLS 1.2 and 1.3 only, optionally TLS 1.3
//! only, optionally mutual TLS (client certificates verified against `client_ca`). Errors name
//! the file and what is wrong with it, never key material.
//!
//! [`TlsListener::reloading`] watches the certificate, key and client-CA files and swaps in a
//! new configuration when they change (a renewed certificate is served without a restart);
//! files that do not load (a half-written renewal, a key that does not match) are reported and
//! the previous configuration stays in use.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{MinTlsVersion, TlsConfig};

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS setup error: the file and what is wrong (never key material).
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {message}")]
pub struct TlsError {
    /// `server.tls.cert`, `server.tls.key` or `server.tls.client_ca`.
    pub what: &'static str,
    pub path: String,
    pub message: String,
}

fn tls_err(what: &'static str, path: &Path, message: impl Into<String>) -> TlsError {
    TlsError {
        what,
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// What is wrong with a PEM file, without quoting any of it (a base64 error would quote a
/// byte of the key).
fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".into(),
        pem::Error::Io(e) => format!("cannot read: {}", e.kind()),
        pem::Error::NoItemsFound => "no PEM section found".into(),
        pem::Error::SectionTooLarge => "a PEM section is too large".into(),
        _ => "not valid PEM".into(),
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| tls_err(what, path, format!("cannot read the file: {e}")))
}

/// Reads every `CERTIFICATE` block of a PEM file (at least one).
pub fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(what, path, pem_problem(&e)))?;
    if certs.is_empty() {
        return Err(tls_err(
            what,
            path,
            "no certificate found (expected PEM blocks -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    const WHAT: &str = "server.tls.key";
    let bytes = read(WHAT, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => tls_err(
            WHAT,
            path,
            "no private key found (expected a PEM block -----BEGIN PRIVATE KEY-----, \
             -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)",
        ),
        e => tls_err(WHAT, path, pem_problem(&e)),
    })
}

/// Builds the rustls server configuration from `[server.tls]`.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
        MinTlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinTlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let certs = load_certs("server.tls.cert", &tls.cert)?;
    let key = load_key(&tls.key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| tls_err("server.tls.min_version", &tls.cert, e.to_string()))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in load_certs("server.tls.client_ca", ca)? {
                roots.add(c).map_err(|e| {
                    tls_err(
                        "server.tls.client_ca",
                        ca,
                        format!("not a usable CA certificate: {e}"),
                    )
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| {
                tls_err(
                    "server.tls.client_ca",
                    ca,
                    format!("cannot verify clients with it: {e}"),
                )
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        tls_err(
            "server.tls.key",
            &tls.key,
            format!(
                "cannot be used with the certificate in {}: {e}",
                tls.cert.display()
            ),
        )
    })?;
    // The router speaks HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener that hands out connections once their TLS handshake has succeeded. Handshakes run
/// in their own tasks (a slow client does not hold up the others) with a time limit; failed
/// handshakes are logged (the reason only) and dropped.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, TlsPeer)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsListener({})", self.local)
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(w) = &self.watcher {
            w.abort();
        }
    }
}

/// A digest of each TLS file's bytes (`None` when it cannot be read): a change of content is
/// seen whatever the file system's timestamp granularity.
type Stamp = Vec<Option<[u8; 32]>>;

fn stamp(tls: &TlsConfig) -> Stamp {
    use sha2::Digest;
    std::iter::once(&tls.cert)
        .chain(std::iter::once(&tls.key))
        .chain(tls.client_ca.as_ref())
        .map(|p| {
            std::fs::read(p)
                .ok()
                .map(|b| sha2::Sha256::digest(&b).into())
        })
        .collect()
}

impl TlsListener {
    /// Starts accepting on `listener` with `config`.
    pub fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<TlsListener> {
        let acceptor = Arc::new(RwLock::new(TlsAcceptor::from(config)));
        TlsListener::start(listener, acceptor, None)
    }

    /// Starts accepting on `listener` with the configuration `tls` describes, and looks at its
    /// files every `every`: when one has changed, the configuration is built again and used for
    /// new connections (connections already open keep theirs). If the new files do not load,
    /// the reason is logged and the previous configuration stays.
    pub fn reloading(
        listener: TcpListener,
        tls: TlsConfig,
        every: Duration,
    ) -> Result<TlsListener, TlsError> {
        let mut seen = stamp(&tls);
        let config = server_config(&tls)?;
        let acceptor = Arc::new(RwLock::new(TlsAcceptor::from(config)));
        let shared = acceptor.clone();
        let watcher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = stamp(&tls);
                if now == seen {
                    continue;
                }
                seen = now;
                match server_config(&tls) {
                    Ok(config) => {
                        if let Ok(mut a) = shared.write() {
                            *a = TlsAcceptor::from(config);
                            eprintln!(
                                "phiguard-gateway: TLS files changed; now serving the certificate in {}",
                                tls.cert.display()
                            );
                        }
                    }
                    Err(e) => eprintln!(
                        "phiguard-gateway: TLS files changed but do not load ({e}); still serving the previous certificate"
                    ),
                }
            }
        });
        let abort = watcher.abort_handle();
        TlsListener::start(listener, acceptor, Some(watcher)).map_err(|e| {
            abort.abort();
            TlsError {
                what: "server.listen",
                path: String::new(),
                message: e.to_string(),
            }
        })
    }

    fn start(
        listener: TcpListener,
        current: Arc<RwLock<TlsAcceptor>>,
        watcher: Option<tokio::task::JoinHandle<()>>,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(_) => {
                        // Out of file descriptors and the like: back off, as axum does.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // No Nagle delay (see `serve`).
                let _ = tcp.set_nodelay(true);
                let Ok(acceptor) = current.read().map(|a| a.clone()) else {
                    // A poisoned lock cannot happen (nothing panics while holding it); refuse
                    // the connection rather than guess.
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let client_cert = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(<[_]>::first)
                                .map(|c| cert_sha256(c.as_ref()));
                            let _ = tx
                                .send((
                                    stream,
                                    TlsPeer {
                                        addr: peer,
                                        client_cert,
                                    },
                                ))
                                .await;
                        }
                        Ok(Err(e)) => {
                            eprintln!("phiguard-gateway: TLS handshake refused: {e}");
                        }
                        Err(_) => {
                            eprintln!("phiguard-gateway: TLS handshake timed out");
                        }
                    }
                });
            }
        });
        Ok(TlsListener {
            rx,
            local,
            task,
            watcher,
        })
    }
}

/// Who is at the other end of a TLS connection: the address, and the SHA-256 of the client
/// certificate (DER) when mutual TLS is on and one was presented (the handshake has already
/// verified it against `client_ca`). Handlers read it as `ConnectInfo<TlsPeer>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsPeer {
    pub addr: SocketAddr,
    pub client_cert: Option<[u8; 32]>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for TlsPeer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> TlsPeer {
        *stream.remote_addr()
    }
}

/// The SHA-256 of a certificate's DER bytes: how keys name the client certificate they are
/// bound to.
pub fn cert_sha256(der: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(der).into()
}

/// The SHA-256 of the first certificate of a PEM file (`what` names the setting or flag in
/// errors), for binding a key to a client certificate.
pub fn cert_file_sha256(what: &'static str, path: &Path) -> Result<[u8; 32], TlsError> {
    let certs = load_certs(what, path)?;
    match certs.first() {
        Some(c) => Ok(cert_sha256(c.as_ref())),
        None => Err(tls_err(what, path, "no certificate found")),
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task ended (it only does when aborted): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(TlsPeer {
            addr: self.local,
            client_cert: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const NOT_A_KEY: &str = "-----BEGIN PRIVATE KEY-----\nTUlJRXZRSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NCS2N3Z2dTakFnRUFBb0lCQVFD\n-----END PRIVATE KEY-----\n";

    fn cfg(dir: &Path, cert: &str, key: &str) -> TlsConfig {
        std::fs::write(dir.join("cert.pem"), cert).unwrap();
        std::fs::write(dir.join("key.pem"), key).unwrap();
        TlsConfig {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            client_ca: None,
            min_version: MinTlsVersion::Tls12,
        }
    }

    #[test]
    fn errors_name_the_file_and_never_the_key() {
        let dir = tempfile::tempdir().unwrap();
        // Missing file.
        let mut c = cfg(dir.path(), "", "");
        c.cert = dir.path().join("absent.pem");
        let e = server_config(&c).unwrap_err().to_string();
        assert!(
            e.contains("server.tls.cert") && e.contains("absent.pem") && e.contains("cannot read"),
            "{e}"
        );
        // A key where the certificate should be: no certificate, and no key bytes quoted.
        let c = cfg(dir.path(), NOT_A_KEY, NOT_A_KEY);
        let e = server_config(&c).unwrap_err().to_string();
        assert!(
            e.contains("cert.pem") && e.contains("no certificate"),
            "{e}"
        );
        assert!(!e.contains("TUlJ"), "{e}");
        // Broken base64 in the key file.
        let bad = "-----BEGIN PRIVATE KEY-----\nTUlJ*RXZ\n-----END PRIVATE KEY-----\n";
        let e = load_key(&cfg(dir.path(), "", bad).key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.tls.key") && e.contains("base64"), "{e}");
        assert!(!e.contains("TUlJ") && !e.contains('*'), "{e}");
        // No key at all.
        let e = load_key(&cfg(dir.path(), "", "hello\n").key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no private key"), "{e}");
    }
}
