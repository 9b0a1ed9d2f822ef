//! Shared token stores: where processes (and hosts) of a fleet leave the token they fetched,
//! so the others adopt it instead of asking the identity provider again.
//!
//! - this file: the [`Store`] every backend implements, and [`open`];
//! - `url`: the `shared_cache` URL (`redis://`, `rediss://`, `file:///dir`), printed redacted;
//! - `seal`: entry names and sealed values, derived from the client credential;
//! - `redis` (cargo feature `redis`): Redis, whose own clock (`PX`/`PTTL`) times entries;
//! - `file` (Linux): a private directory on one host, timed by `CLOCK_BOOTTIME`.
//!
//! A store knows nothing of tokens: it keeps opaque values for a time, deletes a value only if
//! it still starts with an expected prefix, and grants one process at a time a lock that
//! lapses when its owner dies. The client's `fleet` module builds the protocol on these.

#[cfg(target_os = "linux")]
mod file;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod seal;
pub(crate) mod url;

use std::fmt;
use std::time::Duration;

use crate::http::Transport;

use crate::sync::ForkLock;
pub(crate) use url::{Backend, StoreUrl};

/// A value and how much longer the store keeps it.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) value: Vec<u8>,
    pub(crate) remaining: Duration,
}

/// Why a store operation failed: a sentence without secrets (a Redis password the server
/// echoes is scrubbed), for the `shared_store_unavailable` event.
#[derive(Debug, Clone)]
pub(crate) struct StoreError(pub(crate) String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) type StoreResult<T> = std::result::Result<T, StoreError>;

/// A backend. Every method returns within about the store's timeout (a file update may wait
/// that long for another process's update of the same entry); a failure is an `Err`, never
/// a panic. Implementations are shared by all threads of a client.
pub(crate) trait Store: Send + Sync {
    /// The value under `name` and how much longer the store keeps it; `None` when there is
    /// none (or it has expired).
    fn read(&self, name: &str) -> StoreResult<Option<Stored>>;

    /// Store `value` under `name` for `ttl`, replacing whatever is there.
    fn write(&self, name: &str, value: &[u8], ttl: Duration) -> StoreResult<()>;

    /// Delete `name` only if its value still starts with `prefix`, atomically; whether it did.
    fn delete_if(&self, name: &str, prefix: &[u8]) -> StoreResult<bool>;

    /// Try to become the one process fetching for `name`. `None`: another process holds the
    /// lock. The lock lapses by itself when its owner dies (file) or after `ttl` (Redis).
    fn try_lock(&self, name: &str, ttl: Duration) -> StoreResult<Option<StoreLock>>;

    /// The backend's locks, for the fork hooks.
    fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock));

    /// In a forked child: drop what belongs to the parent (its connections, its lock files).
    fn forget_inherited_work(&self);
}

/// A lock taken by [`Store::try_lock`]; released by [`StoreLock::release`] or on drop.
pub(crate) struct StoreLock {
    held: Option<Box<dyn HeldLock>>,
}

/// What a backend keeps to release its lock.
pub(crate) trait HeldLock: Send {
    /// Give the lock up (only if it is still ours: a lapsed lock may belong to another now).
    fn release(self: Box<Self>) -> StoreResult<()>;

    /// Give the lock up without waiting on a store that just failed: a lock that would need
    /// the network to release is left to lapse.
    fn abandon(self: Box<Self>);
}

impl StoreLock {
    pub(crate) fn new(held: Box<dyn HeldLock>) -> StoreLock {
        StoreLock { held: Some(held) }
    }

    /// Release now and say whether the store answered.
    pub(crate) fn release(mut self) -> StoreResult<()> {
        self.held.take().map_or(Ok(()), HeldLock::release)
    }

    /// See [`HeldLock::abandon`].
    pub(crate) fn abandon(mut self) {
        if let Some(held) = self.held.take() {
            held.abandon();
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            let _ = held.release();
        }
    }
}

/// The backend `url` names. No network I/O happens here: a store that is down shows up at
/// first use, as an event, never as a failed client. `rediss://` verifies the server with the
/// trust roots of `transport`'s TLS files, read now.
pub(crate) fn open(url: &StoreUrl, transport: &Transport) -> Result<Box<dyn Store>, String> {
    match &url.backend {
        #[cfg(feature = "redis")]
        Backend::Redis(address) => Ok(Box::new(redis::RedisStore::new(
            address,
            url.timeout,
            transport.tls_material(),
        )?)),
        #[cfg(not(feature = "redis"))]
        Backend::Redis(_) => {
            let _ = transport;
            Err(without_redis())
        }
        #[cfg(target_os = "linux")]
        Backend::File(dir) => Ok(Box::new(file::FileStore::new(dir.clone(), url.timeout))),
        #[cfg(not(target_os = "linux"))]
        Backend::File(_) => Err(without_file()),
    }
}

/// Why `shared_cache` and `dpop.generate` do not go together (configuration validation
/// says so; a client built anyway refuses too).
pub(crate) const GENERATED_DPOP_KEY: &str = "`shared_cache` cannot be used with \
     `dpop.generate`: every process makes its own DPoP key, so its tokens are useless to the \
     others; give the fleet one key with `dpop.key_file`";

/// Why `shared_cache` and `client_assertion_file` do not go together.
pub(crate) const NO_FLEET_SECRET: &str = "`shared_cache` cannot be used with \
     `client_assertion_file`: the store's entries are named and sealed with keys derived from \
     a credential every process holds (a client secret or private key), and a platform's \
     rotating assertion is none";

/// Whether this build can open `url`; the reason when it cannot (for config validation).
pub(crate) fn supported(url: &StoreUrl) -> Result<(), String> {
    match &url.backend {
        Backend::Redis(_) if cfg!(not(feature = "redis")) => Err(without_redis()),
        Backend::File(_) if cfg!(not(target_os = "linux")) => Err(without_file()),
        _ => Ok(()),
    }
}

fn without_redis() -> String {
    "needs Redis support, which this build of tokenward does not have (cargo feature `redis`)"
        .into()
}

fn without_file() -> String {
    "uses the file backend, which needs Linux (CLOCK_BOOTTIME); use redis:// instead".into()
}
