//! The façade: tokens, authorization values and headers, invalidation, rotation, events and
//! statistics. It runs the fetches the cache asks for — inline, or on a short-lived
//! background thread for early refreshes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::{CachePolicy, Lookup, Ticket, TokenCache};
use crate::config::{Config, RefreshMode};
use crate::endpoint::TokenEndpoint;
use crate::error::Result;
use crate::events::{Event, EventKind, Events};
use crate::fork::{self, ForkAware};
use crate::request::{RateLimiter, Request, Response};
use crate::secret::Secret;
use crate::token::{AccessToken, TokenRequest};
use crate::transport::Transport;

/// Keyed slots (distinct scope/audience/resource requests) kept besides the default one.
const MAX_KEYED_SLOTS: usize = 16;

/// An OAuth 2.0 client-credentials client with a token cache.
///
/// `Clone` is cheap (one `Arc`) and every clone shares the cache; `Client` is `Send + Sync`,
/// so one instance serves all threads. Calls block only when no usable token is cached.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) transport: Arc<Transport>,
    endpoint: TokenEndpoint,
    cache: TokenCache,
    events: Events,
    limiter: Option<RateLimiter>,
    /// The static headers as `"Name: value\r\n"` lines, formatted once for the C ABI.
    #[cfg(feature = "ffi")]
    static_header_lines: String,
    failures: AtomicU64,
    background_refreshes: AtomicU64,
    invalidations: AtomicU64,
}

/// Counters and state for monitoring; see [`Client::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests sent to the token endpoint (every attempt counts).
    pub token_requests: u64,
    /// Calls answered from the cache.
    pub cache_hits: u64,
    /// Fetches and refreshes that failed (after their retries).
    pub failures: u64,
    /// Early refreshes started on a background thread.
    pub background_refreshes: u64,
    /// Tokens evicted by `invalidate`.
    pub invalidations: u64,
    /// How long the default token may still be handed out, if one is cached.
    pub remaining: Option<Duration>,
}

impl Stats {
    /// The stats as a JSON object (the C ABI's `tw_client_stats` format).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "token_requests": self.token_requests,
            "cache_hits": self.cache_hits,
            "failures": self.failures,
            "background_refreshes": self.background_refreshes,
            "invalidations": self.invalidations,
            "remaining_ms": self.remaining.map(|d| d.as_millis() as u64),
        })
        .to_string()
    }
}

impl Client {
    /// Build a client. No network I/O happens until the first token is needed.
    ///
    /// Errors: [`crate::ErrorKind::Config`] when the transport cannot be set up (e.g. proxy).
    pub fn new(config: Config) -> Result<Client> {
        let transport = Arc::new(Transport::new(&config)?);
        let endpoint = TokenEndpoint::new(&config, Arc::clone(&transport));
        let cache = TokenCache::new(
            config.request.key().clone(),
            CachePolicy {
                refresh_before: config.refresh_before,
                error_cooldown: config.error_cooldown,
                retry: config.retry,
                max_keyed_slots: MAX_KEYED_SLOTS,
            },
        );
        let limiter = config.rate_limit.map(RateLimiter::new);
        #[cfg(feature = "ffi")]
        let static_header_lines = config
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        let shared = Arc::new(Shared {
            config,
            #[cfg(feature = "ffi")]
            static_header_lines,
            limiter,
            transport,
            endpoint,
            cache,
            events: Events::default(),
            failures: AtomicU64::new(0),
            background_refreshes: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        });
        fork::register(Arc::as_ptr(&shared) as *const dyn ForkAware);
        Ok(Client { shared })
    }

    /// A token for the configured scope/audience/resource: from the cache when fresh,
    /// otherwise fetched (one fetch however many threads ask). In the refresh window the
    /// current token is returned at once while one refresh runs.
    pub fn token(&self) -> Result<AccessToken> {
        self.shared.token(None)
    }

    /// A token for another scope/audience/resource combination; each has its own cache slot.
    pub fn token_for(&self, request: &TokenRequest) -> Result<AccessToken> {
        self.shared.token(Some(request))
    }

    /// `"Bearer <token>"` for an `Authorization` header.
    pub fn authorization(&self) -> Result<String> {
        Ok(self.token()?.authorization().to_string())
    }

    /// `Authorization` first, then the configured static headers, in order.
    pub fn headers(&self) -> Result<Vec<(String, String)>> {
        let token = self.token()?;
        Ok(self.shared.headers_with(&token))
    }

    /// The configured static headers as `"Name: value\r\n"` lines (no `Authorization`).
    #[cfg(feature = "ffi")]
    pub(crate) fn static_header_lines(&self) -> &str {
        &self.shared.static_header_lines
    }

    /// Evict `token` if it is the one cached (constant-time compare), or every cached token
    /// when `None`. Returns whether anything was evicted. Call it with the token an API
    /// rejected with 401: many such calls for the same old token cause one refresh.
    pub fn invalidate(&self, token: Option<&str>) -> bool {
        self.shared.invalidate(token)
    }

    /// Replace the client secret: atomically clears every cached token and remembered
    /// error, so the next call fetches with the new secret.
    pub fn set_client_secret(&self, secret: impl Into<String>) -> Result<()> {
        let secret = Secret::new(secret);
        let shared = &self.shared;
        shared
            .cache
            .rotate(|| shared.endpoint.replace_secret(secret))
    }

    /// Install (or with `None` remove) the event hook. The hook may run on a library thread,
    /// must return quickly, and must not call back into this client. When this returns, a
    /// replaced hook is no longer running and will not be called again.
    pub fn set_event_hook<F>(&self, hook: Option<F>)
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        self.shared
            .events
            .set(hook.map(|h| Arc::new(h) as crate::events::EventHook));
    }

    /// Send an API request with the token and static headers (DESIGN.md §4).
    ///
    /// On 401 (or, with `graphql_auth_errors`, a 200 GraphQL answer whose
    /// `errors[].extensions.code` is `UNAUTHENTICATED`) the token it carried is invalidated
    /// and the request re-sent once, body intact; a second 401 is [`crate::ErrorKind::Unauthorized`].
    /// 403 is [`crate::ErrorKind::Forbidden`] (never retried). Idempotent methods are retried
    /// on connect errors, 429, 502, 503, 504. With `api_base_urls` set, other origins get an
    /// error before anything is sent, and redirects are followed (the token only to allowed
    /// origins); without it, redirects are returned as they are. Other statuses are returned
    /// as a [`Response`]. Blocks for at most the request timeout plus the token fetch.
    pub fn send(&self, request: Request) -> Result<Response> {
        crate::request::send(&self.shared, request)
    }

    /// Counters and the default token's remaining lifetime.
    pub fn stats(&self) -> Stats {
        let (cache_hits, remaining) = self.shared.cache.snapshot();
        Stats {
            token_requests: self.shared.endpoint.requests(),
            cache_hits,
            failures: self.shared.failures.load(Ordering::Relaxed),
            background_refreshes: self.shared.background_refreshes.load(Ordering::Relaxed),
            invalidations: self.shared.invalidations.load(Ordering::Relaxed),
            remaining,
        }
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A token plus how long it may be reused without asking again (until its refresh
    /// point; zero inside the refresh window). Lets bindings memoize without policy.
    pub fn token_reusable_for(&self) -> Result<(AccessToken, Duration)> {
        let token = self.token()?;
        let fresh_for = token
            .fresh_until()
            .saturating_duration_since(Instant::now());
        Ok((token, fresh_for))
    }

    /// A token plus two spans from now: how long it stays fresh (until its refresh point;
    /// zero inside the refresh window) and how long it stays usable (until the point after
    /// which the core never hands it out; zero for a use-once token). A binding's memo may
    /// answer without asking the core while fresh, and, while one of its threads asks the core
    /// (which starts the refresh), keep answering until usable — never after it, and never
    /// after an invalidation or a secret rotation.
    pub fn token_window(&self) -> Result<(AccessToken, Duration, Duration)> {
        let token = self.token()?;
        let now = Instant::now();
        let fresh_for = token.fresh_until().saturating_duration_since(now);
        let usable_for = token.timing().usable_until.saturating_duration_since(now);
        Ok((token, fresh_for, usable_for))
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("token_endpoint", &self.shared.endpoint.describe())
            .field("client_id", &self.shared.config.client_id)
            .finish_non_exhaustive()
    }
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
