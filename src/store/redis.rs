//! The Redis backend (cargo feature `redis`), over redis-rs's blocking client.
//!
//! - Entries are `tokenward:v1:<name>`, written with `SET … PX` and read with `GET` and
//!   `PTTL` in one `MULTI`: Redis's clock alone says how long an entry lives, so clock
//!   differences between hosts do not matter.
//! - The fetch lock is `tokenward:v1:<name>:lock`, taken with `SET … NX PX` and a random
//!   owner, and released by a Lua compare-and-delete, never a blind `DEL` (a lapsed lock may
//!   belong to another process by then). Compare-and-delete of entries is a Lua script too.
//! - Connections are made with the store's timeout (connect, TLS handshake and `AUTH`
//!   included) and keep it as their read and write timeout. An idle connection is reused; one
//!   that failed is dropped. After `fork()` the child makes its own.
//! - `rediss://` verifies the server against the token endpoint's trust roots (the OS store
//!   plus `tls.ca_file`, or the bundled webpki roots when the OS store is empty), read when
//!   the store is created.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use redis::{Connection, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};
use ring::rand::{SecureRandom, SystemRandom};

use super::url::RedisAddress;
use super::{HeldLock, Store, StoreError, StoreLock, StoreResult, Stored};
use crate::http::trust::root_certificates;
use crate::http::TlsMaterial;
use crate::redact::Redactor;
use crate::secret::Secret;
use crate::sync::{fork, ForkLock, Mutex};

const PREFIX: &str = "tokenward:v1:";
/// Idle connections kept per client: one per thread that touches the store at once.
const MAX_IDLE: usize = 4;

/// Deletes KEYS[1] if its value starts with ARGV[1].
const DELETE_IF_PREFIX: &str = "local v = redis.call('GET', KEYS[1]) \
    if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) end return 0";

/// Deletes KEYS[1] if its value is ARGV[1] (the lock's owner).
const DELETE_IF_OWNER: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) end return 0";

pub(crate) struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    described: String,
    timeout: Duration,
    /// Kept out of error text (a server could echo it).
    password: Option<Secret>,
    /// Idle connections, and the fork epoch they were made in.
    idle: Mutex<(u64, Vec<Connection>)>,
}

impl RedisStore {
    pub(crate) fn new(
        address: &RedisAddress,
        timeout: Duration,
        tls: &TlsMaterial,
    ) -> Result<RedisStore, String> {
        let addr = if address.tls {
            ConnectionAddr::TcpTls {
                host: address.host.clone(),
                port: address.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(address.host.clone(), address.port)
        };
        let mut settings = RedisConnectionInfo::default()
            .set_db(address.db)
            // One round trip less per connection; the server needs no library name.
            .set_skip_set_lib_name();
        if let Some(user) = &address.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &address.password {
            settings = settings.set_password(password.expose());
        }
        let info = addr
            .into_connection_info()
            .map_err(|e| e.to_string())?
            .set_redis_settings(settings);
        let client = if address.tls {
            // `None`: the bundled webpki roots (the redis `tls-rustls-webpki-roots` feature).
            let root_cert =
                root_certificates(tls).map(|certs| pem_bundle(certs.iter().map(|c| c.as_ref())));
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert,
                },
            )
        } else {
            redis::Client::open(info)
        }
        .map_err(|e| format!("cannot be used: {e}"))?;
        let described = format!(
            "Redis at {}:{}",
            if address.host.contains(':') {
                format!("[{}]", address.host)
            } else {
                address.host.clone()
            },
            address.port
        );
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                described,
                timeout,
                password: address.password.clone(),
                idle: Mutex::new((fork::epoch(), Vec::new())),
            }),
        })
    }
}

/// PEM text of DER certificates, for redis-rs's `root_cert`.
fn pem_bundle<'a>(certs: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut pem = String::new();
    for der in certs {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let text = STANDARD.encode(der);
        for line in text.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

impl Inner {
    fn error(&self, e: &redis::RedisError) -> StoreError {
        // Errors are rare, and a redactor belongs to one exchange: made here, not kept.
        let mut redactor = Redactor::new();
        if let Some(password) = &self.password {
            redactor.password(password.expose());
        }
        let detail = redactor.quote(&e.to_string());
        StoreError(format!("The {} failed: {detail}.", self.described))
    }

    fn connection(&self) -> StoreResult<Connection> {
        {
            let mut idle = self.idle.lock();
            let epoch = fork::epoch();
            if idle.0 != epoch {
                // The parent's connections: closing them here could end the parent's TLS
                // sessions, so the child leaks them instead.
                for connection in idle.1.drain(..) {
                    std::mem::forget(connection);
                }
                idle.0 = epoch;
            }
            if let Some(connection) = idle.1.pop() {
                return Ok(connection);
            }
        }
        let connection = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| self.error(&e))?;
        connection
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| connection.set_write_timeout(Some(self.timeout)))
            .map_err(|e| self.error(&e))?;
        Ok(connection)
    }

    /// Run `f` on a connection; a connection that failed is not reused.
    fn run<T>(&self, f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>) -> StoreResult<T> {
        let mut connection = self.connection()?;
        let result = f(&mut connection).map_err(|e| self.error(&e))?;
        let mut idle = self.idle.lock();
        if idle.0 == fork::epoch() && idle.1.len() < MAX_IDLE {
            idle.1.push(connection);
        }
        Ok(result)
    }
}

struct RedisLock {
    inner: Arc<Inner>,
    key: String,
    owner: String,
}

impl HeldLock for RedisLock {
    fn release(self: Box<Self>) -> StoreResult<()> {
        self.inner.run(|c| {
            redis::cmd("EVAL")
                .arg(DELETE_IF_OWNER)
                .arg(1)
                .arg(&self.key)
                .arg(&self.owner)
                .query::<i64>(c)
                .map(drop)
        })
    }

    fn abandon(self: Box<Self>) {
        // The lock lapses after its `PX`.
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().clamp(1, u64::MAX as u128) as u64
}

impl Store for RedisStore {
    fn read(&self, name: &str) -> StoreResult<Option<Stored>> {
        let key = format!("{PREFIX}{name}");
        let (value, ttl): (Option<Vec<u8>>, i64) = self.inner.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("GET")
                .arg(&key)
                .cmd("PTTL")
                .arg(&key)
                .query(c)
        })?;
        // PTTL -1 (no expiry) is not an entry of ours; -2 means it is gone.
        Ok(match (value, ttl) {
            (Some(value), ttl) if ttl > 0 => Some(Stored {
                value,
                remaining: Duration::from_millis(ttl as u64),
            }),
            _ => None,
        })
    }

    fn write(&self, name: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let key = format!("{PREFIX}{name}");
        self.inner.run(|c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .query::<Value>(c)
                .map(drop)
        })
    }

    fn delete_if(&self, name: &str, prefix: &[u8]) -> StoreResult<bool> {
        let key = format!("{PREFIX}{name}");
        let deleted: i64 = self.inner.run(|c| {
            redis::cmd("EVAL")
                .arg(DELETE_IF_PREFIX)
                .arg(1)
                .arg(&key)
                .arg(prefix)
                .query(c)
        })?;
        Ok(deleted > 0)
    }

    fn try_lock(&self, name: &str, ttl: Duration) -> StoreResult<Option<StoreLock>> {
        let key = format!("{PREFIX}{name}:lock");
        let mut owner = [0u8; 16];
        SystemRandom::new()
            .fill(&mut owner)
            .map_err(|_| StoreError("The system random source failed.".into()))?;
        let owner: String = owner.iter().map(|b| format!("{b:02x}")).collect();
        let answer = self.inner.run(|c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(&owner)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query::<Value>(c)
        })?;
        Ok(match answer {
            Value::Nil => None,
            _ => Some(StoreLock::new(Box::new(RedisLock {
                inner: Arc::clone(&self.inner),
                key,
                owner,
            }))),
        })
    }

    fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.inner.idle);
    }

    fn forget_inherited_work(&self) {
        // The connections are replaced on first use (see `Inner::connection`).
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_wrap_at_64_columns() {
        let pem = String::from_utf8(pem_bundle([&[7u8; 100][..]].into_iter())).unwrap();
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
    }
}
