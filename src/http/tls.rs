//! Trust roots: what a server certificate is verified against.

use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, RootCerts};

/// The OS trust store (read once per process) plus the configured extra CA. Falls back to
/// the bundled Mozilla roots when the OS store is empty (minimal containers) and no extra CA
/// is configured. Verification is never switched off.
pub(super) fn trust_roots(extra: &[Certificate<'static>]) -> RootCerts {
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
