//! Connecting to PostgreSQL: the URL's `sslmode` and `sslrootcert` parameters, read the way
//! libpq reads them but stricter, over rustls (TLS 1.2 and 1.3 only; no OpenSSL).
//!
//! | `sslmode` | what phiguard does |
//! |---|---|
//! | absent | loopback/Unix socket: no TLS; any other host: `verify-full` |
//! | `disable`, `allow`, `prefer` | no TLS — refused for any host but loopback/Unix socket |
//! | `require`, `verify-full` | TLS; the server certificate must chain to the roots and name the host |
//! | `verify-ca` | TLS; the certificate must chain to the roots (the host name is not checked) |
//!
//! Roots: the PEM file named by `sslrootcert`, else the Mozilla roots (webpki-roots). libpq's
//! `require` does not verify the certificate at all; phiguard treats it as `verify-full`,
//! since an audit trail sent to an unauthenticated server is not protected.

use std::sync::Arc;

use postgres::config::Host;
use postgres::{Client, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, SignatureScheme};

use crate::error::AuditError;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    VerifyCa,
    VerifyFull,
}

/// A parsed store URL: the connection settings and the TLS policy.
pub struct PgTarget {
    pub config: postgres::Config,
    pub tls: TlsMode,
    pub root_cert: Option<String>,
}

fn loopback(config: &postgres::Config) -> bool {
    config.get_hosts().iter().all(|h| match h {
        Host::Tcp(name) => matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1" | "[::1]"),
        #[cfg(unix)]
        Host::Unix(_) => true,
    })
}

/// Parses `postgres://user@host:port/db?sslmode=...&sslrootcert=...`. Errors never repeat the
/// URL (it may hold a password).
pub fn parse(url: &str) -> Result<PgTarget, AuditError> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    let mut mode: Option<String> = None;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => mode = Some(v.to_ascii_lowercase()),
            "sslrootcert" => root_cert = Some(percent_decode(v)),
            _ => kept.push(pair),
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let config: postgres::Config = rebuilt
        .parse()
        .map_err(|_| AuditError::Url("not a valid postgres:// URL".into()))?;
    let local = loopback(&config);
    let tls = match mode.as_deref() {
        None if local => TlsMode::Disable,
        None | Some("require") | Some("verify-full") => TlsMode::VerifyFull,
        Some("verify-ca") => TlsMode::VerifyCa,
        Some("disable") | Some("allow") | Some("prefer") => TlsMode::Disable,
        Some(_) => {
            return Err(AuditError::Url(
                "unknown sslmode; expected disable, require, verify-ca or verify-full".into(),
            ));
        }
    };
    if tls == TlsMode::Disable && !local {
        return Err(AuditError::Url(
            "a PostgreSQL store on another host needs TLS: use sslmode=verify-full (the \
             default) with sslrootcert=CA.pem if its certificate is not from a public CA"
                .into(),
        ));
    }
    Ok(PgTarget {
        config,
        tls,
        root_cert,
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(Ok(v)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Accepts a certificate that chains to the roots whatever host it names (`verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn tls_config(target: &PgTarget) -> Result<rustls::ClientConfig, AuditError> {
    let mut roots = rustls::RootCertStore::empty();
    match &target.root_cert {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|_| {
                    AuditError::Url(
                        "sslrootcert: cannot read PEM certificates from the file".into(),
                    )
                })?;
            if certs.is_empty() {
                return Err(AuditError::Url(
                    "sslrootcert: the file holds no certificate".into(),
                ));
            }
            for c in certs {
                roots.add(c).map_err(|_| {
                    AuditError::Url("sslrootcert: a certificate is not valid".into())
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| AuditError::Url(format!("TLS setup: {e}")))?;
    let roots = Arc::new(roots);
    let config = match target.tls {
        TlsMode::VerifyCa => {
            let inner =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| AuditError::Url(format!("TLS setup: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
                .with_no_client_auth()
        }
        _ => builder.with_root_certificates(roots).with_no_client_auth(),
    };
    Ok(config)
}

/// Connects as `target` says.
pub fn connect(target: &PgTarget) -> Result<Client, AuditError> {
    match target.tls {
        TlsMode::Disable => Ok(target.config.connect(NoTls)?),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let mut config = target.config.clone();
            config.ssl_mode(postgres::config::SslMode::Require);
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(target)?);
            Ok(config.connect(tls)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let t = parse("postgres://u@localhost/db").unwrap();
        assert_eq!(t.tls, TlsMode::Disable);
        let t = parse("postgres://u@db.example.org/db").unwrap();
        assert_eq!(t.tls, TlsMode::VerifyFull);
        let t = parse("postgres://u@db.example.org/db?sslmode=require&application_name=x").unwrap();
        assert_eq!(t.tls, TlsMode::VerifyFull);
        assert_eq!(t.config.get_application_name(), Some("x"));
        let t = parse("postgres://u@10.0.0.5/db?sslmode=verify-ca&sslrootcert=%2Ftmp%2Fca.pem")
            .unwrap();
        assert_eq!(t.tls, TlsMode::VerifyCa);
        assert_eq!(t.root_cert.as_deref(), Some("/tmp/ca.pem"));
        let e = parse("postgres://u:secret@db.example.org/db?sslmode=disable")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("needs TLS") && !e.contains("secret"), "{e}");
        assert!(parse("postgres://u@localhost/db?sslmode=bogus").is_err());
        let t = parse("postgres://u@localhost/db?sslmode=verify-full").unwrap();
        assert_eq!(t.tls, TlsMode::VerifyFull);
    }
}
