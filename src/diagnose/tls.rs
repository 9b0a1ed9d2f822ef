//! The TLS check: a handshake with the server against the same roots the transport trusts
//! (the OS store or the bundled roots, plus `tls.ca_file`), recording the chain the server
//! presented so that a failure can be explained — which issuer is unknown and whether
//! `tls.ca_file` would fix it, how long ago the certificate expired, which names it is for.
//!
//! Verification is never relaxed: the recording verifier hands every decision to rustls's
//! own webpki verifier and only keeps a copy of what it was shown.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use ureq::tls::RootCerts;

use super::network::{open, Route, StreamError, Target};
use super::settings::how_to_set;
use super::x509::{date, summarize, CertSummary};
use super::{ms, Check};
use crate::config::Config;
use crate::error::ErrorKind;
use crate::http::tls::trust_roots;
use crate::http::TlsMaterial;
use crate::sync::Mutex;

/// Certificates expiring sooner than this are a warning.
const EXPIRY_WARNING_DAYS: i64 = 21;

/// Where other tools on this machine look for extra CA certificates: a file there that
/// completes the chain is a `tls.ca_file` known to work.
const CA_FILE_VARIABLES: [&str; 4] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
];

/// Hands every decision to webpki and keeps the chain it was shown.
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.chain.lock() = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn verifier(roots: RootCertStore) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| e.to_string())
}

/// The roots the transport trusts for this configuration, as a rustls store.
fn configured_roots(material: &TlsMaterial) -> RootCertStore {
    let mut store = RootCertStore::empty();
    match trust_roots(&material.extra_roots) {
        RootCerts::Specific(certs) => {
            store.add_parsable_certificates(certs.iter().map(|c| CertificateDer::from(c.der())));
        }
        _ => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    store
}

/// The `tls` check.
pub(super) fn check(
    config: &Config,
    target: &Target,
    route: &Route,
    blocked: Option<&str>,
) -> Check {
    if !target.https {
        return Check::skip(
            "tls",
            "not used: plain http (allowed for loopback hosts only)",
        );
    }
    if let Some(failed) = blocked {
        return Check::skip("tls", format!("skipped: the {failed} check failed"));
    }
    let material = match TlsMaterial::load(&config.tls) {
        Ok(material) => material,
        Err(problems) => {
            return Check::fail(
                "tls",
                ErrorKind::Config,
                "the TLS files cannot be read",
                problems.join("; "),
                "fix the `tls` paths (they were readable when the configuration was built)",
            )
        }
    };
    let inner =
        match verifier(configured_roots(&material)) {
            Ok(inner) => inner,
            Err(e) => return Check::fail(
                "tls",
                ErrorKind::Tls,
                "no usable trust roots",
                format!("the certificate verifier could not be built: {e}"),
                "set `tls.ca_file` to a PEM file of the CA that issued the server's certificate",
            ),
        };
    let recorder = Arc::new(Recorder {
        inner,
        chain: Mutex::new(Vec::new()),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone());
    let client_config = match client_auth(builder, config) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                "tls",
                ErrorKind::Config,
                "the client certificate cannot be used",
                e,
                "check `tls.client_cert_file` and `tls.client_key_file`",
            )
        }
    };
    let Ok(server_name) = ServerName::try_from(target.host.clone()) else {
        return Check::fail(
            "tls",
            ErrorKind::Config,
            format!("`{}` is not a valid TLS server name", target.host),
            "the host cannot be used for TLS",
            "correct the host in the URL",
        );
    };
    let started = Instant::now();
    let mut stream = match open(config, target, route) {
        Ok(stream) => stream,
        Err(e) => {
            let why = match e {
                StreamError::ProxyConnect(e) | StreamError::Direct(e) => e.to_string(),
                StreamError::ProxyRefused(_, line) => line,
            };
            return Check::fail(
                "tls",
                ErrorKind::Network,
                format!("no connection for the handshake: {why}"),
                "the connection failed before TLS started",
                "see the TCP and proxy checks",
            );
        }
    };
    let _ = stream.set_read_timeout(Some(config.request_timeout));
    let _ = stream.set_write_timeout(Some(config.request_timeout));
    let mut connection = match rustls::ClientConnection::new(Arc::new(client_config), server_name) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                "tls",
                ErrorKind::Tls,
                format!("TLS could not start: {e}"),
                "rustls refused the client settings",
                "report this with the configuration (without secrets)",
            )
        }
    };
    let outcome = handshake(&mut connection, &mut stream);
    let elapsed = started.elapsed();
    let chain: Vec<CertSummary> = recorder
        .chain
        .lock()
        .iter()
        .filter_map(|der| summarize(der))
        .collect();
    let raw_chain = recorder.chain.lock().clone();
    let check = match outcome {
        Ok(()) => passed(&connection, target, &chain, elapsed),
        Err(Failure::Tls(rustls::Error::InvalidCertificate(error))) => {
            certificate_failure(config, target, &error, &chain, &raw_chain)
        }
        Err(Failure::Tls(rustls::Error::InvalidMessage(e))) => Check::fail(
            "tls",
            ErrorKind::Tls,
            format!("{} did not speak TLS ({e:?})", target.authority()),
            "the port answers plain HTTP or another protocol (an https:// URL for an http port?)",
            "check the scheme and the port of the URL",
        ),
        Err(Failure::Tls(error)) => Check::fail(
            "tls",
            ErrorKind::Tls,
            format!("the handshake with {} failed: {error}", target.authority()),
            "the server refused the handshake: no common TLS version or cipher (TLS 1.2+ is required), or it wants a client certificate",
            "check the server's TLS settings; with mutual TLS set `tls.client_cert_file`/`tls.client_key_file`",
        ),
        Err(Failure::Io(e)) => Check::fail(
            "tls",
            if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) {
                ErrorKind::Timeout
            } else {
                ErrorKind::Network
            },
            format!("the handshake with {} broke off: {e}", target.authority()),
            "the connection was closed or stalled during the handshake (a middlebox, or a server that does not speak TLS on this port)",
            "check the scheme and port; `openssl s_client -connect` the host to compare",
        ),
    };
    check.took(elapsed)
}

fn client_auth(
    builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    config: &Config,
) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let (Some(cert_path), Some(key_path)) =
        (&config.tls.client_cert_file, &config.tls.client_key_file)
    else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("`tls.client_cert_file` {}: {e}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| format!("`tls.client_key_file` {}: {e}", key_path.display()))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| e.to_string())
}

enum Failure {
    Tls(rustls::Error),
    Io(std::io::Error),
}

/// Drive the handshake to completion over `stream`.
fn handshake(
    connection: &mut rustls::ClientConnection,
    stream: &mut std::net::TcpStream,
) -> Result<(), Failure> {
    while connection.is_handshaking() {
        while connection.wants_write() {
            connection.write_tls(stream).map_err(Failure::Io)?;
        }
        stream.flush().map_err(Failure::Io)?;
        if connection.is_handshaking() && connection.wants_read() {
            match connection.read_tls(stream) {
                Ok(0) => {
                    return Err(match connection.process_new_packets() {
                        Err(e) => Failure::Tls(e),
                        Ok(_) => Failure::Io(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the server closed the connection",
                        )),
                    })
                }
                Ok(_) => {}
                Err(e) => return Err(Failure::Io(e)),
            }
            if let Err(e) = connection.process_new_packets() {
                // Tell the server why, as a client library would.
                let _ = connection.write_tls(stream);
                return Err(Failure::Tls(e));
            }
        }
    }
    while connection.wants_write() {
        connection.write_tls(stream).map_err(Failure::Io)?;
    }
    // Nothing is sent over the session; close it politely.
    connection.send_close_notify();
    let _ = connection.write_tls(stream);
    let mut sink = [0u8; 1];
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(1)));
    let _ = stream.read(&mut sink);
    Ok(())
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn passed(
    connection: &rustls::ClientConnection,
    target: &Target,
    chain: &[CertSummary],
    elapsed: std::time::Duration,
) -> Check {
    let version = match connection.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "TLS",
    };
    let suite = connection
        .negotiated_cipher_suite()
        .map(|s| format!(" {:?}", s.suite()))
        .unwrap_or_default();
    let Some(leaf) = chain.first() else {
        return Check::pass(
            "tls",
            format!("{version}{suite} with {} in {}", target.host, ms(elapsed)),
        );
    };
    let days = (leaf.not_after - now_unix()).div_euclid(86_400);
    let summary = format!(
        "{version}{suite}, certificate for {} verified (issuer {}, expires {} — {days} days), {}",
        target.host,
        leaf.issuer,
        date(leaf.not_after),
        ms(elapsed)
    );
    let check = if days < EXPIRY_WARNING_DAYS {
        Check::warn(
            "tls",
            summary,
            format!(
                "the server certificate expires in {days} days ({})",
                date(leaf.not_after)
            ),
            "tell the server's operator; clients fail the handshake the moment it expires",
        )
    } else {
        Check::pass("tls", summary)
    };
    describe_chain(check, chain).fact("days_until_expiry", days)
}

fn describe_chain(check: Check, chain: &[CertSummary]) -> Check {
    chain.iter().enumerate().fold(check, |check, (i, cert)| {
        let names = if cert.names.is_empty() {
            String::new()
        } else {
            format!(", names {}", cert.names.join(" "))
        };
        check.detail(format!(
            "certificate {}: {} (issuer {}), valid {} to {}{names}",
            i + 1,
            cert.subject,
            cert.issuer,
            date(cert.not_before),
            date(cert.not_after)
        ))
    })
}

fn certificate_failure(
    config: &Config,
    target: &Target,
    error: &CertificateError,
    chain: &[CertSummary],
    raw_chain: &[CertificateDer<'static>],
) -> Check {
    let leaf = chain.first();
    let subject = leaf.map_or_else(
        || "the server certificate".to_string(),
        |l| format!("`{}`", l.subject),
    );
    let check = match error {
        CertificateError::UnknownIssuer => {
            let issuer = chain
                .last()
                .map_or_else(|| "its issuer".to_string(), |c| format!("`{}`", c.issuer));
            let (would_fix, fix) = ca_file_remedy(config, target, raw_chain, &issuer);
            Check::fail(
                "tls",
                ErrorKind::Tls,
                format!("{subject} is signed by {issuer}, which is not trusted here"),
                format!(
                    "the chain does not lead to a trusted root: {issuer} is a private or corporate CA (or a TLS-inspecting proxy) that is neither in the OS trust store nor in `tls.ca_file`{}",
                    match &config.tls.ca_file {
                        Some(path) => format!(" ({} does not contain it)", path.display()),
                        None => String::new(),
                    }
                ),
                fix,
            )
            .fact("failing_issuer", issuer.trim_matches('`').to_string())
            .fact("ca_file_would_fix", would_fix)
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let days = leaf.map(|l| (now_unix() - l.not_after).div_euclid(86_400));
            Check::fail(
                "tls",
                ErrorKind::Tls,
                format!(
                    "{subject} expired{}",
                    match (leaf, days) {
                        (Some(l), Some(d)) => format!(" on {} ({d} days ago)", date(l.not_after)),
                        _ => String::new(),
                    }
                ),
                "the server presents an expired certificate (or this machine's clock is far ahead: see the clock check); `tls.ca_file` would not fix it",
                "the server's operator must renew the certificate; if the date above looks wrong, fix this machine's clock",
            )
            .fact("ca_file_would_fix", false)
            .fact("days_until_expiry", days.map_or(0, |d| -d))
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => Check::fail(
            "tls",
            ErrorKind::Tls,
            format!(
                "{subject} is not valid yet{}",
                leaf.map(|l| format!(" (from {})", date(l.not_before)))
                    .unwrap_or_default()
            ),
            "the certificate's validity starts in the future: this machine's clock is behind, or the server installed a certificate too early; `tls.ca_file` would not fix it",
            "check this machine's clock (NTP); otherwise the server's operator must install a current certificate",
        )
        .fact("ca_file_would_fix", false),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let names = match error {
                CertificateError::NotValidForNameContext { presented, .. } => presented.join(", "),
                _ => leaf.map(|l| l.names.join(", ")).unwrap_or_default(),
            };
            Check::fail(
                "tls",
                ErrorKind::Tls,
                format!("{subject} is not for {} (it is for: {names})", target.host),
                "the URL's host is not one of the names in the certificate: a wrong host or an IP address in the URL, or a load balancer serving another site's certificate; `tls.ca_file` would not fix it",
                "use a URL with one of the certificate's names",
            )
            .fact("ca_file_would_fix", false)
        }
        other => Check::fail(
            "tls",
            ErrorKind::Tls,
            format!("{subject} was refused: {other:?}"),
            "the certificate is malformed, revoked, or signed with an algorithm rustls does not accept",
            "ask the server's operator to check the certificate chain (`openssl s_client -showcerts`)",
        ),
    };
    describe_chain(check, chain)
}

/// Whether a `tls.ca_file` would complete the chain: proven when the server sent its root or
/// a CA file other tools use here verifies it, else said as a condition.
fn ca_file_remedy(
    config: &Config,
    target: &Target,
    raw_chain: &[CertificateDer<'static>],
    issuer: &str,
) -> (bool, String) {
    let verifies_with = |roots: Vec<CertificateDer<'static>>| -> bool {
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(roots);
        let (Ok(verifier), Some((leaf, rest)), Ok(name)) = (
            verifier(store),
            raw_chain.split_first(),
            ServerName::try_from(target.host.clone()),
        ) else {
            return false;
        };
        verifier
            .verify_server_cert(leaf, rest, &name, &[], UnixTime::now())
            .is_ok()
    };
    // The server sent its own root: trusting that certificate would complete the chain.
    for der in raw_chain.iter().skip(1) {
        let Some(root) = summarize(der).filter(CertSummary::is_self_issued) else {
            continue;
        };
        if verifies_with(vec![der.clone()]) {
            return (
                true,
                format!("yes, `tls.ca_file` fixes it: save the server's root `{}` as PEM (after checking its fingerprint out of band) and point `tls.ca_file` at it", root.subject),
            );
        }
    }
    for name in CA_FILE_VARIABLES {
        let Some(path) = std::env::var_os(name).map(PathBuf::from) else {
            continue;
        };
        if config.tls.ca_file.as_ref() == Some(&path) {
            continue;
        }
        let files = crate::http::TlsFiles {
            ca_file: Some(path.clone()),
            ..Default::default()
        };
        if let Ok(material) = TlsMaterial::load(&files) {
            let roots = material
                .extra_roots
                .iter()
                .map(|c| CertificateDer::from(c.der()).into_owned())
                .collect();
            if verifies_with(roots) {
                return (
                    true,
                    format!("yes, `tls.ca_file` fixes it: {} (from ${name}) completes the chain; set {} to it", path.display(), how_to_set(config, "tls.ca_file", "CA_FILE")),
                );
            }
        }
    }
    (
        false,
        format!("`tls.ca_file` fixes it if {issuer} is a CA you trust: get its certificate (PEM) from your administrator or the provider and set {} to it; the server did not send it, so it could not be tried here", how_to_set(config, "tls.ca_file", "CA_FILE")),
    )
}
