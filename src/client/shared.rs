//! The state every clone of a [`crate::Client`] shares, and the driver that carries out
//! what the cache decides: serve, wait, or fetch (inline, or on a short-lived background
//! thread for early refreshes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::events::{EventKind, Events};
use super::limiter::RateLimiter;
use crate::cache::{Lookup, Ticket, TokenCache};
use crate::config::{Config, RefreshMode};
use crate::error::Result;
use crate::http::Transport;
use crate::oauth::{AccessToken, TokenEndpoint, TokenRequest};
use crate::sync::fork::{self, ForkAware};

/// Everything a client owns; one allocation behind every clone's `Arc`.
pub(crate) struct Shared {
    pub(super) config: Config,
    pub(super) transport: Arc<Transport>,
    pub(super) endpoint: TokenEndpoint,
    pub(super) cache: TokenCache,
    pub(super) events: Events,
    pub(super) limiter: Option<RateLimiter>,
    /// The static headers as `"Name: value\r\n"` lines, formatted once for the C ABI.
    pub(super) static_header_lines: String,
    pub(super) failures: AtomicU64,
    pub(super) background_refreshes: AtomicU64,
    pub(super) invalidations: AtomicU64,
}

impl Shared {
    pub(crate) fn token(self: &Arc<Self>, request: Option<&TokenRequest>) -> Result<AccessToken> {
        if request.is_none() {
            if let Some(token) = self.cache.fresh_default() {
                return Ok(token);
            }
        }
        let now = Instant::now();
        match self.cache.lookup(request.map(TokenRequest::key), now) {
            Lookup::Fresh(token) => Ok(token),
            Lookup::ServeStale(token) => {
                self.events.emit(EventKind::ServedStale, || {
                    format!(
                        "Serving token {} ({} s left) while refreshes from {} are failing.",
                        token.fingerprint(),
                        token.remaining().as_secs(),
                        self.endpoint.describe()
                    )
                });
                Ok(token)
            }
            Lookup::Refresh(token, ticket) => {
                let request = request.unwrap_or(&self.config.request).clone();
                match self.config.refresh_mode {
                    RefreshMode::Background => {
                        self.background_refreshes.fetch_add(1, Ordering::Relaxed);
                        let shared = Arc::clone(self);
                        // If no thread can be spawned the ticket is dropped, which records
                        // a failure; the current token keeps serving meanwhile.
                        let _ = std::thread::Builder::new()
                            .name("tokenward-refresh".into())
                            .spawn(move || shared.fetch(ticket, &request, true));
                        Ok(token)
                    }
                    RefreshMode::Inline => Ok(self.fetch(ticket, &request, true).unwrap_or(token)),
                }
            }
            Lookup::Fetch(ticket) => {
                self.fetch(ticket, request.unwrap_or(&self.config.request), false)
            }
            Lookup::Wait(waiter) => self.cache.wait(waiter, now + self.config.request_timeout),
            Lookup::Failed(error) => Err(error),
        }
    }

    fn fetch(&self, ticket: Ticket, request: &TokenRequest, early: bool) -> Result<AccessToken> {
        let deadline = Instant::now() + self.config.request_timeout;
        let fetched = self
            .endpoint
            .fetch(request, deadline, &|error, delay, attempt| {
                self.events.emit(EventKind::RetryScheduled, || {
                    format!(
                        "Token request attempt {attempt} failed; retrying in {} ms. {error}",
                        delay.as_millis()
                    )
                })
            });
        let outcome = self.cache.complete(ticket, fetched, Instant::now());
        match &outcome {
            Ok(token) => self.events.emit(EventKind::TokenAcquired, || {
                format!(
                    "Acquired token {} from {} (lifetime {} s{}).",
                    token.fingerprint(),
                    self.endpoint.describe(),
                    token.lifetime().as_secs(),
                    request
                        .scope_param()
                        .map(|s| format!(", scope `{s}`"))
                        .unwrap_or_default()
                )
            }),
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let kind = if early {
                    EventKind::RefreshFailed
                } else {
                    EventKind::FetchFailed
                };
                self.events.emit(kind, || {
                    if early {
                        format!(
                            "Early token refresh failed; the current token keeps serving. {error}"
                        )
                    } else {
                        format!("Token fetch failed. {error}")
                    }
                });
            }
        }
        outcome
    }

    pub(crate) fn headers_with(&self, token: &AccessToken) -> Vec<(String, String)> {
        let mut headers = Vec::with_capacity(1 + self.config.headers.len());
        headers.push((
            "Authorization".to_string(),
            token.authorization().to_string(),
        ));
        headers.extend(self.config.headers.iter().cloned());
        headers
    }

    pub(crate) fn limiter(&self) -> Option<&RateLimiter> {
        self.limiter.as_ref()
    }

    pub(crate) fn invalidate(&self, token: Option<&str>) -> bool {
        let evicted = self.cache.invalidate(token);
        for token in &evicted {
            self.invalidations.fetch_add(1, Ordering::Relaxed);
            self.events.emit(EventKind::Invalidated, || {
                format!(
                    "Evicted token {}; the next call fetches a new one.",
                    token.fingerprint()
                )
            });
        }
        !evicted.is_empty()
    }
}

impl ForkAware for Shared {
    fn prepare(&self) {
        // SAFETY: called from the prepare handler; each lock is released in parent/child.
        unsafe {
            self.events.fork_lock();
            self.cache.fork_lock();
            self.transport.fork_lock();
            self.endpoint.fork_lock();
            if let Some(limiter) = &self.limiter {
                limiter.fork_lock();
            }
        }
    }

    fn parent(&self) {
        // SAFETY: the locks were taken in `prepare` on this thread.
        unsafe {
            if let Some(limiter) = &self.limiter {
                limiter.fork_unlock();
            }
            self.endpoint.fork_unlock();
            self.transport.fork_unlock();
            self.cache.fork_unlock(false);
            self.events.fork_unlock();
        }
    }

    fn child(&self) {
        // SAFETY: the locks were taken in `prepare` by the thread that is now the child's only one.
        unsafe {
            if let Some(limiter) = &self.limiter {
                limiter.fork_unlock();
            }
            self.endpoint.fork_unlock();
            self.transport.fork_unlock();
            self.cache.fork_unlock(true);
            self.events.fork_unlock();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        fork::unregister(self as *const Shared as *const dyn ForkAware);
    }
}
