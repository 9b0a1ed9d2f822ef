//! The state every clone of a [`crate::Client`] shares, and the driver that carries out
//! what the cache decides: serve, wait, or fetch (inline, or on a short-lived background
//! thread for early refreshes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::events::{EventKind, Events};
use super::limiter::RateLimiter;
use super::rejection::RejectionGuard;
use crate::cache::{Flight, Lookup, Ticket, TokenCache};
use crate::config::{Config, RefreshMode};
use crate::error::Result;
use crate::http::Transport;
use crate::oauth::{AccessToken, TokenEndpoint, TokenRequest};
use crate::sync::fork::Registered;
use crate::sync::{ForkAware, ForkLock};

/// Everything a client owns; one allocation behind every clone's `Arc`.
pub(crate) struct Shared {
    pub(super) config: Config,
    pub(super) transport: Arc<Transport>,
    pub(super) endpoint: TokenEndpoint,
    pub(super) cache: TokenCache,
    pub(super) events: Events,
    pub(super) limiter: Option<RateLimiter>,
    /// Keeps an API that rejects every token from causing a refresh per call.
    pub(super) rejections: RejectionGuard,
    /// The static headers as `"Name: value\r\n"` lines, formatted once for the C ABI.
    #[cfg(feature = "ffi")]
    pub(super) static_header_lines: String,
    pub(super) failures: AtomicU64,
    pub(super) background_refreshes: AtomicU64,
    pub(super) invalidations: AtomicU64,
}

/// What every clone of a client holds: the shared state, known to the fork hooks.
pub(crate) type SharedRef = Arc<Registered<Shared>>;

/// A token for `request` (`None`: the configured default) — the cache's decision, carried
/// out. Takes the `Arc` because a background refresh keeps the state alive on its thread.
pub(crate) fn token(shared: &SharedRef, request: Option<&TokenRequest>) -> Result<AccessToken> {
    let this: &Shared = shared;
    this.token_with(request, || Arc::clone(shared))
}

impl Shared {
    #[inline]
    fn token_with(
        &self,
        request: Option<&TokenRequest>,
        handle: impl FnOnce() -> SharedRef,
    ) -> Result<AccessToken> {
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
                        let refresh = BackgroundRefresh {
                            shared: handle(),
                            flight: Some(ticket.detach()),
                            request,
                        };
                        // If no thread can be spawned the closure, and with it `refresh`, is
                        // dropped, which records a failure; the current token keeps serving.
                        let _ = std::thread::Builder::new()
                            .name("tokenward-refresh".into())
                            .spawn(move || refresh.run());
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

    fn fetch(
        &self,
        ticket: Ticket<'_>,
        request: &TokenRequest,
        early: bool,
    ) -> Result<AccessToken> {
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
        let outcome = ticket.complete(fetched, Instant::now());
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

/// An early refresh on its own thread: the client state it needs and the flight it owes
/// the cache. Dropped without having run (no thread could be spawned) it completes the
/// flight with an error; unwinding out of the fetch, the resumed ticket does the same.
struct BackgroundRefresh {
    shared: SharedRef,
    /// `Some` until `run` takes it.
    flight: Option<Flight>,
    request: TokenRequest,
}

impl BackgroundRefresh {
    fn run(mut self) {
        if let Some(flight) = self.flight.take() {
            let ticket = self.shared.cache.resume(flight);
            let _ = self.shared.fetch(ticket, &self.request, true);
        }
    }
}

impl Drop for BackgroundRefresh {
    fn drop(&mut self) {
        if let Some(flight) = self.flight.take() {
            drop(self.shared.cache.resume(flight));
        }
    }
}

impl ForkAware for Shared {
    fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        self.events.fork_locks(visit);
        self.cache.fork_locks(visit);
        self.transport.fork_locks(visit);
        self.endpoint.fork_locks(visit);
        if let Some(limiter) = &self.limiter {
            limiter.fork_locks(visit);
        }
        self.rejections.fork_locks(visit);
    }

    fn forget_inherited_work(&self) {
        self.cache.forget_flights();
    }
}
