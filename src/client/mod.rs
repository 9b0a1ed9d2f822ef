//! The façade: tokens, authorization values and headers, invalidation, rotation, events and
//! statistics. [`Client`] is a handle on the state in `shared`, which runs the fetches the
//! cache asks for; `send` and its parts (`request`, `limiter`, `challenge`, `graphql`,
//! `rejection`) make authorized API calls, and `headers_for`/`recover` give HTTP clients of
//! other libraries the same policy; `events` carries what happened to the user's hook; `health`
//! reports the default token's state for readiness probes.

#![forbid(unsafe_code)]

pub(crate) mod challenge;
pub(crate) mod events;
mod graphql;
mod health;
mod limiter;
mod rejection;
mod request;
mod send;
mod shared;

pub use health::{Health, HealthState};
pub use request::{Request, Response};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::events::{Event, Events};
use self::limiter::RateLimiter;
use self::rejection::RejectionGuard;
use self::request::check_method;
use self::send::{Sender, Tokens};
use self::shared::{Shared, SharedRef};
use crate::cache::{CachePolicy, TokenCache};
use crate::config::Config;
use crate::error::Result;
use crate::http::Transport;
use crate::oauth::{AccessToken, EndpointSettings, TokenEndpoint, TokenRequest};
use crate::secret::Secret;
use crate::sync::fork::Registered;

/// Keyed slots (distinct scope/audience/resource requests) kept besides the default one.
const MAX_KEYED_SLOTS: usize = 16;

/// An OAuth 2.0 client-credentials client with a token cache.
///
/// `Clone` is cheap (one `Arc`) and every clone shares the cache; `Client` is `Send + Sync`,
/// so one instance serves all threads. Calls block when no usable token is cached, and with
/// [`crate::RefreshMode::Inline`] also for the one call that runs an early refresh.
#[derive(Clone)]
pub struct Client {
    shared: SharedRef,
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
        let transport = Arc::new(Transport::new(
            &config.tls,
            config.proxy.as_deref(),
            config.connect_timeout,
        )?);
        let endpoint = TokenEndpoint::new(
            EndpointSettings {
                location: config.location.clone(),
                client_id: config.client_id.clone(),
                auth_method: config.auth_method,
                credential: config.credential.clone(),
                extra_params: config.extra_params.clone(),
                retry: config.retry,
                default_lifetime: config.default_lifetime,
                allow_http: config.allow_http,
            },
            Arc::clone(&transport),
        );
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
        let rejections = RejectionGuard::new(config.error_cooldown);
        let warnings = config
            .warnings
            .iter()
            .map(|message| Event {
                kind: events::EventKind::Warning,
                message: message.clone(),
            })
            .collect();
        let shared = Registered::new(Shared {
            config,
            rejections,
            #[cfg(feature = "ffi")]
            static_header_lines,
            limiter,
            transport,
            endpoint,
            cache,
            events: Events::with_pending(warnings),
            failures: AtomicU64::new(0),
            background_refreshes: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        });
        Ok(Client { shared })
    }

    /// A token for the configured scope/audience/resource: from the cache when fresh,
    /// otherwise fetched (one fetch however many threads ask). In the refresh window the
    /// current token is returned while one refresh runs: at once with
    /// [`crate::RefreshMode::Background`], after the refresh (or its failure) with
    /// [`crate::RefreshMode::Inline`] for the caller that runs it.
    pub fn token(&self) -> Result<AccessToken> {
        shared::token(&self.shared, None)
    }

    /// A token for another scope/audience/resource combination; each has its own cache slot.
    pub fn token_for(&self, request: &TokenRequest) -> Result<AccessToken> {
        shared::token(&self.shared, Some(request))
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
    /// replaced hook is no longer running and will not be called again. The first hook
    /// installed first receives, on this thread, the configuration's
    /// [`EventKind::Warning`](crate::EventKind::Warning)s (each once per client).
    pub fn set_event_hook<F>(&self, hook: Option<F>)
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        self.shared
            .events
            .set(hook.map(|h| Arc::new(h) as events::EventHook));
    }

    /// Send an API request with the token and static headers.
    ///
    /// The request's own headers are checked first (see [`Request::header`]): a bad name or
    /// value, or a header the transport or tokenward sets, is
    /// [`crate::ErrorKind::InvalidArgument`] and nothing is sent. With `api_base_urls` set,
    /// a URL of another origin is [`crate::ErrorKind::ForeignOrigin`], also before anything
    /// is sent.
    ///
    /// On 401 (or, with `graphql_auth_errors`, a 200 GraphQL answer whose
    /// `errors[].extensions.code` is `UNAUTHENTICATED`) the token it carried is invalidated
    /// and the request re-sent once, body intact; a second rejection is
    /// [`crate::ErrorKind::Unauthorized`]. Once a rejection has caused a refresh, a rejection
    /// of a token issued after it, within `error_cooldown`, is `Unauthorized` at once
    /// without another token request: an API that rejects every token cannot turn each call
    /// into a token request. 403 is [`crate::ErrorKind::Forbidden`] (never retried).
    /// Idempotent methods are retried on connect errors, 429, 502, 503, 504 (after the
    /// server's `Retry-After` when it asks for at most `retry.max_delay`; an answer asking for
    /// longer is returned as it is).
    ///
    /// With `api_base_urls` set, redirects are followed (at most 5; `Location` resolved by
    /// RFC 3986 §5.2). The token and the static headers go only to allowed origins; once the
    /// chain reaches another origin nothing of ours goes along any more — no token, no static
    /// header, and of the request's headers only `Accept`, `Accept-Language`, `User-Agent`
    /// and, while the body goes along, `Content-Type`. Without `api_base_urls`, redirects
    /// are returned as they are. Other statuses are returned as a [`Response`]. Blocks for at
    /// most the request timeout plus the token fetch.
    pub fn send(&self, request: Request) -> Result<Response> {
        let shared = &self.shared;
        let sender = Sender {
            config: &shared.config,
            transport: &shared.transport,
            limiter: shared.limiter.as_ref(),
            tokens: self,
        };
        send::send(&sender, request)
    }

    /// The headers for one request to `url` by another HTTP client: `Authorization` first,
    /// then the configured static headers, as [`Client::headers`] — provided `url` may carry
    /// them. `method` is the request's method (an RFC 9110 token).
    ///
    /// Errors: [`crate::ErrorKind::ForeignOrigin`] when `api_base_urls` is set and `url` is
    /// of another origin; [`crate::ErrorKind::InvalidArgument`] for a malformed method or
    /// URL, or plain http other than to loopback with `allow_http`; any error of the token
    /// fetch. Blocks like [`Client::token`].
    pub fn headers_for(&self, method: &str, url: &str) -> Result<Vec<(String, String)>> {
        check_method(method)?;
        send::bind(&self.shared.config, url)?;
        self.headers()
    }

    /// Report how an API answered a request that carried `authorization` (the value
    /// [`Client::headers_for`] gave), so that an adapter for another HTTP client recovers as
    /// [`Client::send`] does. `body` is needed only for `graphql_auth_errors` (pass `&[]`
    /// when it is not at hand).
    ///
    /// Returns `Ok(false)` when the answer does not reject the token (anything but 401, or
    /// with `graphql_auth_errors` a 200 whose `errors[].extensions.code` is
    /// `UNAUTHENTICATED`). `Ok(true)`: the token was rejected and is invalidated; re-send the
    /// request once, with new headers from `headers_for`, and hand a second rejection to
    /// the caller. [`crate::ErrorKind::Unauthorized`] when the rejected token was issued
    /// after the API rejected another one less than `error_cooldown` ago: do not re-send
    /// (the API rejects freshly issued tokens; the message says what to check). May block
    /// on a token fetch when the rejected token is no longer cached.
    pub fn recover(&self, authorization: &str, status: u16, body: &[u8]) -> Result<bool> {
        if !send::rejects_token(&self.shared.config, status, body) {
            return Ok(false);
        }
        let current = self.token()?;
        let carried = crate::secret::constant_time_eq(
            current.authorization().as_bytes(),
            authorization.as_bytes(),
        );
        if carried {
            if let Err(since) = Tokens::rejected(self, &current) {
                let reply = crate::http::Reply {
                    status,
                    headers: Vec::new(),
                    body: Vec::new(),
                };
                let mut redactor = Tokens::redactor(self);
                redactor.token(current.as_str());
                return Err(challenge::rejected_fresh(&reply, None, since, &redactor));
            }
        }
        // A token that is no longer the cached one was already replaced: re-send with the
        // current one.
        Ok(true)
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

impl Tokens for Client {
    fn token(&self) -> Result<AccessToken> {
        Client::token(self)
    }

    fn rejected(&self, token: &AccessToken) -> std::result::Result<(), Duration> {
        self.shared
            .rejections
            .admit(token.serial(), Instant::now())?;
        self.shared.invalidate(Some(token.as_str()));
        Ok(())
    }

    fn redactor(&self) -> crate::redact::Redactor {
        self.shared.endpoint.redactor()
    }
}
