//! TLS mode: a throw-away CA and a leaf certificate for `localhost`, made at startup.
//!
//! The certificates satisfy strict verifiers too (OpenSSL's `X509_STRICT`, which Python
//! 3.13 enables by default; .NET; webpki): key usages, key identifiers, and a validity
//! period that fits UTCTime.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::TlsCertificate;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

fn tls_error(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("mock TLS setup: {what}: {e}"))
}

/// One server configuration per [`TlsCertificate`] choice, all for `localhost` and signed
/// by the same CA, so the choice can change while the mock runs.
pub struct TlsConfigs {
    valid: Arc<rustls::ServerConfig>,
    expired: Arc<rustls::ServerConfig>,
    not_yet_valid: Arc<rustls::ServerConfig>,
}

impl TlsConfigs {
    pub fn get(&self, which: TlsCertificate) -> Arc<rustls::ServerConfig> {
        match which {
            TlsCertificate::Valid => self.valid.clone(),
            TlsCertificate::Expired => self.expired.clone(),
            TlsCertificate::NotYetValid => self.not_yet_valid.clone(),
        }
    }
}

/// The server configurations, and the path of the CA certificate written to `dir/ca.pem`.
pub fn server_configs(dir: &Path) -> io::Result<(TlsConfigs, PathBuf)> {
    let ca_key = KeyPair::generate().map_err(|e| tls_error("CA key", e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_error("CA", e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "tokenward mock CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = date_time_ymd(2020, 1, 1);
    ca.not_after = date_time_ymd(2049, 12, 31);
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| tls_error("CA", e))?;
    let issuer = Issuer::new(ca, ca_key);

    std::fs::create_dir_all(dir)?;
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem())?;

    // The odd ones stay inside the CA's validity, so only the leaf's dates are wrong.
    let configs = TlsConfigs {
        valid: leaf_config(&issuer, (2020, 1, 1), (2049, 12, 31))?,
        expired: leaf_config(&issuer, (2020, 1, 1), (2021, 1, 1))?,
        not_yet_valid: leaf_config(&issuer, (2048, 1, 1), (2049, 12, 31))?,
    };
    Ok((configs, ca_path))
}

fn leaf_config(
    issuer: &Issuer<'_, KeyPair>,
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> io::Result<Arc<rustls::ServerConfig>> {
    let leaf_key = KeyPair::generate().map_err(|e| tls_error("leaf key", e))?;
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string()]).map_err(|e| tls_error("leaf", e))?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
    leaf.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
    let leaf_cert = leaf
        .signed_by(&leaf_key, issuer)
        .map_err(|e| tls_error("leaf", e))?;

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_error("protocol versions", e))?
    .with_no_client_auth()
    .with_single_cert(vec![leaf_cert.der().clone()], key)
    .map_err(|e| tls_error("certificate", e))?;
    // Say HTTP/1.1 explicitly, so clients that offer h2 (curl) know not to speak it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
