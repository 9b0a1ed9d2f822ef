//! TLS material: the files a configuration names (extra CA, client certificate and key),
//! read and parsed. Which trust roots they add to, and the rustls configuration built from
//! them on the first TLS connection, are `trust`'s business.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The `tls` files of a configuration: paths only, read by [`TlsMaterial::load`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// Extra CA certificates (PEM), trusted besides the OS store.
    pub(crate) ca_file: Option<PathBuf>,
    /// The client certificate chain (PEM) for mutual TLS.
    pub(crate) client_cert_file: Option<PathBuf>,
    /// The client private key (PEM) for mutual TLS.
    pub(crate) client_key_file: Option<PathBuf>,
}

/// What [`TlsFiles`] name, read and parsed.
#[derive(Default)]
pub(crate) struct TlsMaterial {
    /// Certificates of `tls.ca_file`, trusted besides the OS store.
    pub(crate) extra_roots: Vec<CertificateDer<'static>>,
    /// The client certificate chain and its private key (checked to match).
    pub(crate) client_cert: Option<ClientCert>,
}

/// A client certificate chain with its private key, ready for rustls.
#[derive(Clone)]
pub(crate) struct ClientCert {
    pub(crate) key: Arc<CertifiedKey>,
    /// SHA-256 of the private key's DER: identifies the key without keeping its bytes.
    key_digest: [u8; 32],
}

impl TlsMaterial {
    /// Read every file `files` names. On failure, every problem as a phrase naming its key
    /// (e.g. "`tls.ca_file` /x cannot be read: …"), for a configuration error.
    pub(crate) fn load(files: &TlsFiles) -> std::result::Result<TlsMaterial, Vec<String>> {
        let mut problems = Vec::new();
        let mut tls = TlsMaterial::default();
        if let Some(path) = &files.ca_file {
            match read_certificates(path, "tls.ca_file") {
                Ok(certs) => tls.extra_roots = certs,
                Err(msg) => problems.push(msg),
            }
        }
        match (&files.client_cert_file, &files.client_key_file) {
            (None, None) => {}
            (Some(cert_path), Some(key_path)) => match client_cert(cert_path, key_path) {
                Ok(cert) => tls.client_cert = Some(cert),
                Err(msg) => problems.push(msg),
            },
            _ => problems.push(
                "set both `tls.client_cert_file` and `tls.client_key_file`, or neither".into(),
            ),
        }
        if problems.is_empty() {
            Ok(tls)
        } else {
            Err(problems)
        }
    }

    /// What distinguishes this material from any other: a SHA-256 over the extra roots,
    /// the client chain and the client key. Equal identities mean equal settings.
    pub(crate) fn identity(&self) -> [u8; 32] {
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        let mut add = |bytes: &[u8]| {
            digest.update(&(bytes.len() as u64).to_le_bytes());
            digest.update(bytes);
        };
        add(b"tokenward tls material v1");
        add(&(self.extra_roots.len() as u64).to_le_bytes());
        for cert in &self.extra_roots {
            add(cert);
        }
        if let Some(client) = &self.client_cert {
            add(&(client.key.cert.len() as u64).to_le_bytes());
            for cert in &client.key.cert {
                add(cert);
            }
            add(&client.key_digest);
        }
        let mut out = [0; 32];
        out.copy_from_slice(digest.finish().as_ref());
        out
    }
}

/// The crypto provider of every TLS connection: the process default if the application
/// installed one, otherwise ring (the provider this crate is built with).
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

fn client_cert(cert_path: &Path, key_path: &Path) -> std::result::Result<ClientCert, String> {
    let chain = read_certificates(cert_path, "tls.client_cert_file")?;
    let bytes = read(key_path, "tls.client_key_file")?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => format!(
            "`tls.client_key_file` {} contains no PEM private key",
            key_path.display()
        ),
        e => format!(
            "`tls.client_key_file` {} is not valid PEM: {e}",
            key_path.display()
        ),
    })?;
    let mut key_digest = [0; 32];
    key_digest
        .copy_from_slice(ring::digest::digest(&ring::digest::SHA256, key.secret_der()).as_ref());
    // Checked now rather than at the first TLS handshake, so that a key of another
    // certificate (or of an unsupported type) is a configuration error, not a failed call.
    let key = CertifiedKey::from_der(chain, key, &crypto_provider()).map_err(|e| {
        format!(
            "`tls.client_key_file` {} cannot be used with `tls.client_cert_file` {}: {e}",
            key_path.display(),
            cert_path.display()
        )
    })?;
    Ok(ClientCert {
        key: Arc::new(key),
        key_digest,
    })
}

fn read_certificates(
    path: &Path,
    key: &str,
) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path, key)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("`{key}` {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "`{key}` {} contains no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

fn read(path: &Path, key: &str) -> std::result::Result<zeroize::Zeroizing<Vec<u8>>, String> {
    std::fs::read(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| format!("`{key}` {} cannot be read: {e}", path.display()))
}
