//! TLS material: the trust roots a server certificate is verified against, and the files
//! (extra CA, client certificate and key) a configuration names.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, ClientCert, PemItem, RootCerts};

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
    pub(crate) extra_roots: Vec<Certificate<'static>>,
    pub(crate) client_cert: Option<ClientCert>,
}

impl TlsMaterial {
    /// Read every file `files` names. On failure, every problem as a phrase naming its key
    /// (e.g. "`tls.ca_file` /x cannot be read: …"), for a configuration error.
    pub(crate) fn load(files: &TlsFiles) -> std::result::Result<TlsMaterial, Vec<String>> {
        let mut problems = Vec::new();
        let mut tls = TlsMaterial::default();
        if let Some(path) = &files.ca_file {
            match read_pem(path, "tls.ca_file") {
                Ok(items) => {
                    tls.extra_roots = items
                        .into_iter()
                        .filter_map(|item| match item {
                            PemItem::Certificate(c) => Some(c),
                            _ => None,
                        })
                        .collect();
                    if tls.extra_roots.is_empty() {
                        problems.push(format!(
                            "`tls.ca_file` {} contains no PEM certificate",
                            path.display()
                        ));
                    }
                }
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
}

fn client_cert(cert_path: &Path, key_path: &Path) -> std::result::Result<ClientCert, String> {
    let certs: Vec<_> = read_pem(cert_path, "tls.client_cert_file")?
        .into_iter()
        .filter_map(|i| match i {
            PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    let key = read_pem(key_path, "tls.client_key_file")?
        .into_iter()
        .find_map(|i| match i {
            PemItem::PrivateKey(k) => Some(k),
            _ => None,
        });
    match (certs.is_empty(), key) {
        (false, Some(key)) => Ok(ClientCert::new_with_certs(&certs, key)),
        (true, _) => Err("`tls.client_cert_file` contains no PEM certificate".into()),
        (_, None) => Err("`tls.client_key_file` contains no PEM private key".into()),
    }
}

fn read_pem(path: &Path, key: &str) -> std::result::Result<Vec<PemItem<'static>>, String> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| format!("`{key}` {} cannot be read: {e}", path.display()))?,
    );
    ureq::tls::parse_pem(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("`{key}` {} is not valid PEM: {e}", path.display()))
}

/// The OS trust store (read once per process) plus the configured extra CA. Falls back to
/// the bundled Mozilla roots when the OS store is empty (minimal containers) and no extra CA
/// is configured. Verification is never switched off.
pub(crate) fn trust_roots(extra: &[Certificate<'static>]) -> RootCerts {
    static OS_ROOTS: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    let os = OS_ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        Arc::new(
            found
                .certs
                .iter()
                .map(|der| Certificate::from_der(der.as_ref()).to_owned())
                .collect(),
        )
    });
    match (os.is_empty(), extra.is_empty()) {
        (true, true) => RootCerts::WebPki,
        (false, true) => RootCerts::Specific(os.clone()),
        _ => {
            let mut all: Vec<Certificate<'static>> = os.as_ref().clone();
            all.extend(extra.iter().cloned());
            RootCerts::Specific(Arc::new(all))
        }
    }
}
