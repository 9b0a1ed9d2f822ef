//! Trust roots and TLS client configurations, shared by every client of the process.
//!
//! Reading and parsing the OS trust store costs far more than everything else a first token
//! costs over plain `http` (~18 M of ~19 M instructions, callgrind), so it happens only when
//! a TLS connection first needs it, and once per process. A rustls `ClientConfig` (parsed
//! roots, client certificate) is built once per distinct TLS setting and shared by every
//! client with an equal setting. The registry holds configurations weakly: a setting that no
//! client uses any more is forgotten, so the registry never outgrows the live settings.
//!
//! The diagnosis's TLS check reads the same roots through [`trusted_roots`]: it makes a TLS
//! connection, so it may load them. A `rediss://` shared cache gets them as certificates
//! through [`root_certificates`] when its client is created.
//!
//! The registry's lock is one of the locks the fork hooks hold across `fork()`; nothing slow
//! (file reads, parsing) happens under it, and no other lock is taken while it is held.

use std::sync::{Arc, OnceLock, Weak};

use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, RootCertStore};
#[cfg(feature = "redis")]
use rustls_pki_types::CertificateDer;

use super::tls::{crypto_provider, TlsMaterial};
use crate::sync::fork::{ForkAware, Registered};
use crate::sync::{ForkLock, Mutex};

/// The TLS setting of one transport: the material its configuration names, and the shared
/// configuration once a TLS connection has needed it.
pub(crate) struct TlsSetting {
    material: TlsMaterial,
    config: Mutex<Option<Arc<ClientConfig>>>,
}

impl TlsSetting {
    pub(crate) fn new(material: TlsMaterial) -> TlsSetting {
        TlsSetting {
            material,
            config: Mutex::new(None),
        }
    }

    /// The configuration for this setting: this transport's, else the process's for an
    /// equal setting, else built now (reading the OS trust store if no configuration of the
    /// process has yet). Errors only when rustls refuses the crypto provider's TLS versions.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, rustls::Error> {
        if let Some(config) = &*self.config.lock() {
            return Ok(config.clone());
        }
        let config = shared_config(&self.material)?;
        Ok(self.config.lock().get_or_insert(config).clone())
    }

    /// The configuration, if a TLS connection has needed it yet.
    #[cfg(test)]
    pub(crate) fn loaded(&self) -> Option<Arc<ClientConfig>> {
        self.config.lock().clone()
    }

    /// The files this setting was made from (a `rediss://` shared cache trusts the same).
    #[cfg(feature = "redis")]
    pub(crate) fn material(&self) -> &TlsMaterial {
        &self.material
    }

    /// This setting's lock, for the fork hooks (`crate::sync::fork`).
    pub(crate) fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.config);
    }
}

/// Process-wide TLS counters, for tests and diagnosis: how often the OS trust store was read
/// and how many TLS client configurations were built. Not a stable API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsCounters {
    /// Times the OS trust store was read (once per process, or twice if two threads raced
    /// for the first TLS connection; and once per client with a `rediss://` shared cache).
    pub os_store_reads: u64,
    /// TLS client configurations built (one per distinct setting in use).
    pub configs_built: u64,
}

/// The process's [`TlsCounters`] so far. Not a stable API.
#[doc(hidden)]
pub fn tls_counters() -> TlsCounters {
    registry().lock().counters
}

struct Registry {
    os_roots: Option<Arc<RootCertStore>>,
    configs: Vec<([u8; 32], Weak<ClientConfig>)>,
    counters: TlsCounters,
}

/// The registry itself, made on first use (a `static` initialiser would have to be `const`,
/// which the lock of the loom model build is not).
fn registry_lock() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Mutex::new(Registry {
            os_roots: None,
            configs: Vec::new(),
            counters: TlsCounters {
                os_store_reads: 0,
                configs_built: 0,
            },
        })
    })
}

/// Lists the registry's lock for the fork hooks, for the life of the process.
struct RegistryLock;

impl ForkAware for RegistryLock {
    fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(registry_lock());
    }

    fn forget_inherited_work(&self) {}
}

/// The registry, its lock known to the fork hooks before anyone can take it.
fn registry() -> &'static Mutex<Registry> {
    static HOOKED: OnceLock<Arc<Registered<RegistryLock>>> = OnceLock::new();
    HOOKED.get_or_init(|| Registered::new(RegistryLock));
    registry_lock()
}

fn find(registry: &Registry, identity: [u8; 32]) -> Option<Arc<ClientConfig>> {
    registry
        .configs
        .iter()
        .find(|(id, _)| *id == identity)
        .and_then(|(_, config)| config.upgrade())
}

fn shared_config(material: &TlsMaterial) -> Result<Arc<ClientConfig>, rustls::Error> {
    let identity = material.identity();
    if let Some(config) = find(&registry().lock(), identity) {
        return Ok(config);
    }
    let built = Arc::new(build(material)?);
    let mut registry = registry().lock();
    // Another thread may have built the same setting meanwhile; everyone uses the first.
    if let Some(config) = find(&registry, identity) {
        return Ok(config);
    }
    registry
        .configs
        .retain(|(_, config)| config.strong_count() > 0);
    registry.configs.push((identity, Arc::downgrade(&built)));
    registry.counters.configs_built += 1;
    Ok(built)
}

/// The OS trust store, read and parsed on the first call of the process.
fn os_roots() -> Arc<RootCertStore> {
    if let Some(roots) = &registry().lock().os_roots {
        return roots.clone();
    }
    // Unreadable entries are skipped, as every client of the OS store does; an empty result
    // falls back to the bundled roots (see `build`).
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(found.certs);
    let mut registry = registry().lock();
    registry.counters.os_store_reads += 1;
    registry.os_roots.get_or_insert(Arc::new(store)).clone()
}

/// The roots a connection with `material` trusts: the OS trust store (read on the first call
/// of the process and shared with every TLS configuration) plus the configured extra CA.
/// Falls back to the bundled Mozilla roots when the OS store is empty (minimal containers)
/// and no extra CA is configured. The diagnosis verifies its own handshake against these, so
/// that it judges a server exactly as the transport does.
pub(crate) fn trusted_roots(material: &TlsMaterial) -> Arc<RootCertStore> {
    let os = os_roots();
    match (os.is_empty(), material.extra_roots.is_empty()) {
        (true, true) => Arc::new(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        (false, true) => os,
        _ => {
            let mut all = RootCertStore::clone(&os);
            all.add_parsable_certificates(material.extra_roots.iter().cloned());
            Arc::new(all)
        }
    }
}

/// The certificates behind [`trusted_roots`], for a TLS client that takes certificates
/// rather than a parsed store (the Redis client of a `rediss://` shared cache): the OS
/// store's plus `material`'s extra CA, or `None` where [`trusted_roots`] falls back to the
/// bundled Mozilla roots (which that client then uses too). Reads the OS store on every call:
/// the shared parse keeps no certificates, and this runs once per client using `rediss://`.
#[cfg(feature = "redis")]
pub(crate) fn root_certificates(material: &TlsMaterial) -> Option<Vec<CertificateDer<'static>>> {
    let os = rustls_native_certs::load_native_certs().certs;
    registry().lock().counters.os_store_reads += 1;
    if os.is_empty() && material.extra_roots.is_empty() {
        return None;
    }
    Some(
        os.into_iter()
            .chain(material.extra_roots.iter().cloned())
            .collect(),
    )
}

/// The configuration of `material`'s connections: [`trusted_roots`], the client certificate
/// if any. Verification is never switched off.
fn build(material: &TlsMaterial) -> Result<ClientConfig, rustls::Error> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .with_root_certificates(trusted_roots(material));
    Ok(match &material.client_cert {
        Some(cert) => {
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(cert.key.clone())))
        }
        None => builder.with_no_client_auth(),
    })
}
