//! The fleet protocol: how the processes sharing a store (`shared_cache`) behave like one
//! client. It runs only where the cache decided a fetch is due — a miss, a refresh point —
//! and on invalidation; a cache hit never reaches it.
//!
//! Where a process would ask the identity provider, it first reads the shared entry:
//! - a miss adopts any entry still usable, and an early refresh adopts one newer than the
//!   token it is replacing — no request to the identity provider;
//! - otherwise it takes the fetch lock, reads once more (the owner before it may just have
//!   written), fetches, writes the entry for the token's remaining lifetime and releases;
//! - a process that finds the lock taken waits — polling, for at most the request timeout,
//!   which is also the lock's lifetime, so a lock whose owner died has lapsed by then — for
//!   the entry to appear, then adopts it (or takes the lapsed lock itself). A lock still
//!   taken when that wait ends belongs to a process that took it since; its fetch is waited
//!   for too, once, rather than fetched alongside.
//!
//! A DPoP client shares only with processes holding the same DPoP key (`dpop.key_file`):
//! the key's thumbprint is part of every entry name, and adopted tokens are DPoP-bound.
//!
//! `invalidate` deletes the shared entry only if it still holds the rejected token. The
//! store failing in any way is reported once, the token is fetched directly, and the store
//! is left alone for a back-off; no call fails or waits longer than the store timeout for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use zeroize::Zeroizing;

use super::events::{EventKind, Events};
use crate::config::{AuthMethod, Config, Credential, DpopSetting, TokenLocation};
use crate::error::{Error, Result};
use crate::http::{random_unit, Transport};
use crate::oauth::token::TokenType;
use crate::oauth::{AccessToken, Fetched, SlotKey, Timing};
use crate::store::seal::{describe, Keys, Record};
use crate::store::{
    self, Store, StoreLock, StoreResult, StoreUrl, GENERATED_DPOP_KEY, NO_FLEET_SECRET,
};
use crate::sync::{ForkLock, Mutex};

/// The first pause between two looks at a lock another process holds, and the longest.
const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_millis(50);
/// The store is left alone for this long after a failure, doubling per failure up to
/// `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Counters of the shared cache, in [`crate::Stats::shared`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedStats {
    /// Tokens adopted from the shared cache instead of fetched.
    pub hits: u64,
    /// Fetches this process made because the shared cache had no usable token.
    pub misses: u64,
    /// Failed store operations (each episode is also reported once as an event).
    pub errors: u64,
    /// Times this process waited for another process's fetch.
    pub lock_waits: u64,
}

/// Where a token handed to the cache came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    IdentityProvider,
    SharedCache,
}

pub(crate) struct Fleet {
    store: Box<dyn Store>,
    url: StoreUrl,
    /// What every slot's entry name starts from: endpoint, client, method, extra parameters,
    /// and the DPoP key's thumbprint.
    base: Vec<String>,
    /// How the tokens of this client are presented: what an adopted token is (the token
    /// endpoint answers only this type to this configuration).
    token_type: TokenType,
    keys: Mutex<Arc<Keys>>,
    /// The fetch lock's lifetime and the longest wait for another process: the request
    /// timeout, the longest a fetch may take.
    request_timeout: Duration,
    health: Mutex<Health>,
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    lock_waits: AtomicU64,
}

#[derive(Default)]
struct Health {
    /// Consecutive failures; the store is in trouble while this is not 0.
    failures: u32,
    /// The store is not used before this.
    retry_at: Option<Instant>,
}

/// An entry as read: its record and when it expires, by this process's clock.
struct Entry {
    record: Record,
    expires_at: Instant,
    usable_until: Instant,
}

impl Entry {
    fn new(record: Record, read_at: Instant, remaining: Duration) -> Entry {
        // Never trust the store to keep a token longer than it was granted for.
        let remaining = remaining.min(record.lifetime);
        let expires_at = read_at + remaining;
        let usable_until = expires_at
            .checked_sub(Timing::margin(record.lifetime))
            .unwrap_or(read_at);
        Entry {
            record,
            expires_at,
            usable_until,
        }
    }

    /// Whether a caller in need of a token (`current`: the one being refreshed) takes it.
    fn will_do(&self, current: Option<&AccessToken>) -> bool {
        if self.usable_until <= Instant::now() {
            return false;
        }
        match current {
            None => true,
            Some(current) => {
                !current.same_as(self.record.token.expose())
                    && self.usable_until > current.timing().usable_until
            }
        }
    }

    fn into_fetched(self, token_type: TokenType) -> Fetched {
        let lifetime = self.record.lifetime;
        let elapsed =
            lifetime.saturating_sub(self.expires_at.saturating_duration_since(Instant::now()));
        let now = Instant::now();
        // Issued `elapsed` ago by the fetching process, as its clock would say; on a host
        // that booted more recently than that, the token counts as issued now with what is
        // left as its lifetime.
        let (issued, lifetime) = match now.checked_sub(elapsed) {
            Some(issued) => (issued, lifetime),
            None => (now, lifetime - elapsed),
        };
        Fetched {
            value: self.record.token.clone(),
            token_type,
            lifetime,
            issued,
            granted_scope: self.record.granted_scope,
        }
    }
}

impl Fleet {
    /// The fleet of `config`'s `shared_cache`, if one is configured; `rediss://` trusts what
    /// `transport` trusts. Errors: [`crate::ErrorKind::Config`] when the credential's
    /// key file cannot be read again, or the store URL cannot be used by this build.
    pub(super) fn new(config: &Config, transport: &Transport) -> Result<Option<Fleet>> {
        let Some(url) = &config.shared_cache else {
            return Ok(None);
        };
        let store = store::open(url, transport)
            .map_err(|why| Error::config(format!("`shared_cache` {url} {why}")))?;
        let material = material(config)?;
        let location = match &config.location {
            TokenLocation::Url(url) => format!("token_url={url}"),
            TokenLocation::Issuer(url) => format!("issuer={url}"),
        };
        let method = match config.auth_method {
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::ClientAssertionFile => "client_assertion_file",
        };
        let mut base = vec![location, config.client_id.clone(), method.to_string()];
        base.push(config.extra_params.len().to_string());
        for (name, value) in &config.extra_params {
            base.push(name.clone());
            base.push(value.clone());
        }
        // Bearer entries keep their names; a DPoP key's tokens are useless to other keys.
        let token_type = match &config.dpop {
            None => TokenType::Bearer,
            Some(DpopSetting::Key(key)) => {
                base.push(format!("dpop {}", key.thumbprint()));
                TokenType::Dpop
            }
            Some(DpopSetting::Generate) => {
                return Err(Error::config(format!(
                    "configuration rejected: {GENERATED_DPOP_KEY}."
                )))
            }
        };
        Ok(Some(Fleet {
            store,
            url: url.clone(),
            base,
            token_type,
            keys: Mutex::new(Arc::new(Keys::derive(&material))),
            request_timeout: config.request_timeout,
            health: Mutex::new(Health::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            lock_waits: AtomicU64::new(0),
        }))
    }

    /// Use the keys of a new client secret (credential rotation): entries of the old secret
    /// are not found any more.
    pub(super) fn rekey(&self, secret: &str) {
        *self.keys.lock() = Arc::new(Keys::derive(secret.as_bytes()));
    }

    /// Where adopted tokens come from, for messages (password redacted).
    pub(super) fn describe(&self) -> String {
        format!("the shared cache {}", self.url)
    }

    pub(super) fn stats(&self) -> SharedStats {
        SharedStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            lock_waits: self.lock_waits.load(Ordering::Relaxed),
        }
    }

    fn entry_name(&self, keys: &Keys, slot: &SlotKey) -> String {
        let (scopes, audience, resource) = slot.parts();
        let count = scopes.len().to_string();
        let fields = self
            .base
            .iter()
            .map(|s| Some(s.as_str()))
            .chain([Some(count.as_str())])
            .chain(scopes.iter().map(|s| Some(s.as_str())))
            .chain([audience, resource]);
        keys.entry_name(&describe(fields))
    }

    /// A token for `slot` — adopted from the store, or fetched by `fetch` (given its
    /// deadline) and shared — and where it came from. `current` is the token an early
    /// refresh replaces (`None` on a miss).
    pub(super) fn obtain(
        &self,
        slot: &SlotKey,
        current: Option<&AccessToken>,
        fetch: &dyn Fn(Instant) -> Result<Fetched>,
        events: &Events,
    ) -> (Result<Fetched>, Source) {
        let direct = || {
            (
                fetch(Instant::now() + self.request_timeout),
                Source::IdentityProvider,
            )
        };
        if !self.in_service() {
            return direct();
        }
        let keys = Arc::clone(&self.keys.lock());
        let name = self.entry_name(&keys, slot);
        let mut wait_until = Instant::now() + self.request_timeout;
        let mut extended = false;
        let mut pause = FIRST_POLL;
        let mut waited = false;
        loop {
            match self.read(&keys, &name, events) {
                None => return direct(),
                Some(Some(entry)) if entry.will_do(current) => return self.adopt(entry),
                Some(_) => {}
            }
            match self.call(events, |s| s.try_lock(&name, self.request_timeout)) {
                None => return direct(),
                Some(Some(lock)) => {
                    return self.fetch_locked(&keys, &name, lock, current, fetch, events)
                }
                Some(None) => {}
            }
            if !waited {
                waited = true;
                self.lock_waits.fetch_add(1, Ordering::Relaxed);
            }
            let now = Instant::now();
            if now >= wait_until && !extended {
                // The owner this wait began with has finished or its lock has lapsed by now (a
                // fetch cannot outlast the request timeout), so the lock is held by a process
                // that took it since: wait for its fetch too, once.
                extended = true;
                wait_until = now + self.request_timeout;
            } else if now >= wait_until {
                // Neither owner finished nor let its lock lapse in time.
                self.misses.fetch_add(1, Ordering::Relaxed);
                return direct();
            }
            std::thread::sleep(pause.min(wait_until - now));
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// As the lock owner: read once more, else fetch and share.
    fn fetch_locked(
        &self,
        keys: &Keys,
        name: &str,
        lock: StoreLock,
        current: Option<&AccessToken>,
        fetch: &dyn Fn(Instant) -> Result<Fetched>,
        events: &Events,
    ) -> (Result<Fetched>, Source) {
        // Between our read and our lock the previous owner may have written the entry.
        if let Some(Some(entry)) = self.read(keys, name, events) {
            if entry.will_do(current) {
                drop(lock);
                return self.adopt(entry);
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let fetched = fetch(Instant::now() + self.request_timeout);
        if let Ok(token) = &fetched {
            self.share(keys, name, token, events);
        }
        if self.in_service() {
            self.call(events, |_| lock.release());
        } else {
            // The store just failed: do not wait on it again; the lock lapses by itself.
            lock.abandon();
        }
        (fetched, Source::IdentityProvider)
    }

    fn adopt(&self, entry: Entry) -> (Result<Fetched>, Source) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        (Ok(entry.into_fetched(self.token_type)), Source::SharedCache)
    }

    /// The entry under `name`: `None` if the store failed, `Some(None)` if it holds nothing
    /// this process can use (nothing, or a corrupt or foreign value the next write replaces).
    fn read(&self, keys: &Keys, name: &str, events: &Events) -> Option<Option<Entry>> {
        let read_at = Instant::now();
        let stored = self.call(events, |s| s.read(name))?;
        Some(stored.and_then(|stored| {
            let record = keys.open(name, &stored.value)?;
            Some(Entry::new(record, read_at, stored.remaining))
        }))
    }

    /// Write a token just fetched for the rest of its lifetime.
    fn share(&self, keys: &Keys, name: &str, token: &Fetched, events: &Events) {
        let left = token.lifetime.saturating_sub(token.issued.elapsed());
        if left.is_zero() || !self.in_service() {
            return;
        }
        let record = Record {
            token: token.value.clone(),
            granted_scope: token.granted_scope.clone(),
            lifetime: token.lifetime,
        };
        if let Some(value) = keys.seal(name, &record) {
            self.call(events, |s| s.write(name, &value, left));
        }
    }

    /// After `token` was rejected: delete the shared entry if it still holds it.
    pub(super) fn invalidate(&self, slot: &SlotKey, token: &AccessToken, events: &Events) {
        if !self.in_service() {
            return;
        }
        let keys = Arc::clone(&self.keys.lock());
        let name = self.entry_name(&keys, slot);
        let prefix = keys.prefix(token.as_str());
        self.call(events, |s| s.delete_if(&name, &prefix));
    }

    /// Whether the store is to be used now (not within a back-off after a failure).
    fn in_service(&self) -> bool {
        self.health
            .lock()
            .retry_at
            .is_none_or(|at| Instant::now() >= at)
    }

    /// Run one store operation: a failure is counted, reported once per episode and starts
    /// a back-off (`None`); a success after failures reports the recovery.
    fn call<T>(
        &self,
        events: &Events,
        operation: impl FnOnce(&dyn Store) -> StoreResult<T>,
    ) -> Option<T> {
        match operation(&*self.store) {
            Ok(value) => {
                let recovered = {
                    let mut health = self.health.lock();
                    let was_failing = health.failures > 0;
                    *health = Health::default();
                    was_failing
                };
                if recovered {
                    events.emit(EventKind::SharedStoreRecovered, || {
                        format!(
                            "The shared token cache {} answers again; tokens are shared again.",
                            self.url
                        )
                    });
                }
                Some(value)
            }
            Err(error) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let (first, wait) = {
                    let mut health = self.health.lock();
                    health.failures = health.failures.saturating_add(1);
                    let ceiling = FIRST_BACKOFF
                        .saturating_mul(1 << (health.failures - 1).min(16))
                        .min(MAX_BACKOFF);
                    // Half fixed, half random: processes that failed together retry apart.
                    let wait = ceiling / 2 + (ceiling / 2).mul_f64(random_unit());
                    health.retry_at = Some(Instant::now() + wait);
                    (health.failures == 1, wait)
                };
                if first {
                    events.emit(EventKind::SharedStoreUnavailable, || {
                        format!(
                            "The shared token cache {} is unavailable; tokens are fetched \
                             directly, and the store is tried again in {} ms. {error}",
                            self.url,
                            wait.as_millis()
                        )
                    });
                }
                None
            }
        }
    }

    pub(super) fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.keys);
        visit(&self.health);
        self.store.fork_locks(visit);
    }

    pub(super) fn forget_inherited_work(&self) {
        self.store.forget_inherited_work();
    }
}

/// The secret the store keys derive from: the client secret, or a digest of the private key
/// (for `private_key_jwt`) or of the TLS client key (for `tls_client_auth`).
fn material(config: &Config) -> Result<Zeroizing<Vec<u8>>> {
    Ok(match &config.credential {
        Credential::Secret(secret) => Zeroizing::new(secret.expose().as_bytes().to_vec()),
        Credential::Key(key) => Zeroizing::new(key.secret_digest().to_vec()),
        Credential::AssertionFile(_) => {
            return Err(Error::config(format!(
                "configuration rejected: {NO_FLEET_SECRET}."
            )))
        }
        Credential::Certificate => {
            let path = config.tls.client_key_file.as_deref().ok_or_else(|| {
                Error::config("`shared_cache` with tls_client_auth needs `tls.client_key_file`")
            })?;
            let pem = Zeroizing::new(std::fs::read(path).map_err(|e| {
                Error::config(format!(
                    "`tls.client_key_file` {} cannot be read: {e}",
                    path.display()
                ))
            })?);
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
                Error::config(format!(
                    "`tls.client_key_file` {} contains no PEM private key",
                    path.display()
                ))
            })?;
            let digest = ring::digest::digest(&ring::digest::SHA256, key.secret_der());
            Zeroizing::new(digest.as_ref().to_vec())
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    /// A store whose fetch lock is always held by another process, and whose entry appears
    /// `appears_after` from creation: a waiter's deadline can pass while that owner fetches.
    struct HeldElsewhere {
        created: Instant,
        appears_after: Duration,
        value: Arc<StdMutex<Option<Vec<u8>>>>,
    }

    impl Store for HeldElsewhere {
        fn read(&self, _: &str) -> StoreResult<Option<store::Stored>> {
            if self.created.elapsed() < self.appears_after {
                return Ok(None);
            }
            Ok(self
                .value
                .lock()
                .unwrap()
                .clone()
                .map(|value| store::Stored {
                    value,
                    remaining: Duration::from_secs(3000),
                }))
        }
        fn write(&self, _: &str, _: &[u8], _: Duration) -> StoreResult<()> {
            Ok(())
        }
        fn delete_if(&self, _: &str, _: &[u8]) -> StoreResult<bool> {
            Ok(false)
        }
        fn try_lock(&self, _: &str, _: Duration) -> StoreResult<Option<StoreLock>> {
            Ok(None)
        }
        fn fork_locks<'a>(&'a self, _: &mut dyn FnMut(&'a dyn ForkLock)) {}
        fn forget_inherited_work(&self) {}
    }

    #[test]
    fn a_lock_taken_again_while_waiting_is_waited_for_once_more() {
        let request_timeout = Duration::from_millis(100);
        let value = Arc::new(StdMutex::new(None));
        let store = HeldElsewhere {
            created: Instant::now(),
            // After the first wait's deadline, before the second one's.
            appears_after: request_timeout + request_timeout / 2,
            value: Arc::clone(&value),
        };
        let fleet = Fleet {
            store: Box::new(store),
            url: StoreUrl::parse("file:///nonexistent/tokenward-unit").unwrap(),
            base: vec!["unit".into()],
            token_type: TokenType::Bearer,
            keys: Mutex::new(Arc::new(Keys::derive(b"unit secret"))),
            request_timeout,
            health: Mutex::new(Health::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            lock_waits: AtomicU64::new(0),
        };
        let slot = crate::TokenRequest::new().key().clone();
        let keys = Arc::clone(&fleet.keys.lock());
        let name = fleet.entry_name(&keys, &slot);
        let record = Record {
            token: crate::secret::Secret::new("shared-token"),
            granted_scope: None,
            lifetime: Duration::from_secs(3600),
        };
        *value.lock().unwrap() = keys.seal(&name, &record);

        let fetches = AtomicU64::new(0);
        let fetch = |_: Instant| -> Result<Fetched> {
            fetches.fetch_add(1, Ordering::Relaxed);
            Err(Error::config("the test fetches nothing"))
        };
        let (got, source) = fleet.obtain(&slot, None, &fetch, &Events::default());
        assert!(matches!(source, Source::SharedCache), "adopted");
        assert_eq!(got.unwrap().value.expose(), "shared-token");
        assert_eq!(fetches.load(Ordering::Relaxed), 0, "no fetch alongside");
    }
}
