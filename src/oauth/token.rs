//! Access tokens, what they were asked for, and when they must be refreshed.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::secret::{fingerprint, Secret};

/// What a token is requested for: scopes, audience and resource. Each distinct request
/// has its own cache slot. Scopes are de-duplicated; their order on the wire is kept, but
/// two requests with the same scopes in another order share a slot.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TokenRequest {
    scopes: Vec<String>,
    audience: Option<String>,
    resource: Option<String>,
    key: SlotKey,
}

/// The normalised identity of a request: sorted scopes, audience, resource.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug)]
pub(crate) struct SlotKey {
    scopes: Vec<String>,
    audience: Option<String>,
    resource: Option<String>,
}

impl SlotKey {
    /// The sorted scopes, the audience and the resource: what names the slot in a store
    /// other processes share.
    pub(crate) fn parts(&self) -> (&[String], Option<&str>, Option<&str>) {
        (
            &self.scopes,
            self.audience.as_deref(),
            self.resource.as_deref(),
        )
    }
}

impl TokenRequest {
    /// A request with no scope, audience or resource.
    pub fn new() -> TokenRequest {
        TokenRequest::default()
    }

    /// Add scopes; a string is split on whitespace (`"a b"` is two scopes).
    pub fn scope(mut self, scope: &str) -> TokenRequest {
        for s in scope.split_whitespace() {
            if !self.scopes.iter().any(|have| have == s) {
                self.scopes.push(s.to_string());
            }
        }
        self.rekey()
    }

    /// Add several scopes.
    pub fn scopes<I, S>(self, scopes: I) -> TokenRequest
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        scopes
            .into_iter()
            .fold(self, |req, s| req.scope(s.as_ref()))
    }

    /// The `audience` parameter (Auth0-style providers).
    pub fn audience(mut self, audience: &str) -> TokenRequest {
        self.audience = Some(audience.to_string());
        self.rekey()
    }

    /// The `resource` parameter (RFC 8707, Entra v1).
    pub fn resource(mut self, resource: &str) -> TokenRequest {
        self.resource = Some(resource.to_string());
        self.rekey()
    }

    fn rekey(mut self) -> TokenRequest {
        let mut scopes = self.scopes.clone();
        scopes.sort();
        self.key = SlotKey {
            scopes,
            audience: self.audience.clone(),
            resource: self.resource.clone(),
        };
        self
    }

    /// The scopes in the order they were given.
    pub fn scope_list(&self) -> &[String] {
        &self.scopes
    }

    /// The `scope` parameter as sent: scopes joined by single spaces.
    pub fn scope_param(&self) -> Option<String> {
        (!self.scopes.is_empty()).then(|| self.scopes.join(" "))
    }

    /// The audience, if any.
    pub fn audience_param(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The resource, if any.
    pub fn resource_param(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    pub(crate) fn key(&self) -> &SlotKey {
        &self.key
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("resource", &self.resource)
            .finish()
    }
}

/// How a token is presented: as a Bearer token (RFC 6750), or bound to the client's key
/// and sent with a proof of possession (DPoP, RFC 9449).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenType {
    Bearer,
    Dpop,
}

/// A token as the server issued it, before the cache gives it a schedule.
pub(crate) struct Fetched {
    pub(crate) value: Secret,
    pub(crate) token_type: TokenType,
    pub(crate) lifetime: Duration,
    /// Taken before the request that produced the token was sent.
    pub(crate) issued: Instant,
    pub(crate) granted_scope: Option<String>,
}

/// A cached access token. Cheap to clone (one `Arc`); the token text is zeroized when the
/// last clone drops, and `Debug` shows only a fingerprint.
#[derive(Clone)]
pub struct AccessToken {
    inner: Arc<TokenInner>,
}

struct TokenInner {
    value: Secret,
    token_type: TokenType,
    /// `"Bearer <token>"` (or `"DPoP <token>"`), built once so the hot path never allocates.
    authorization: Secret,
    granted_scope: Option<String>,
    /// Made when first asked for (logs, events, `Debug`): a SHA-256 per token is most of
    /// what caching a token costs, and nothing on the way to a caller needs it.
    fingerprint: OnceLock<String>,
    timing: Timing,
    /// Unique per token in the process (copies share it); 0 is never used.
    serial: u64,
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// When a token expires, stops being handed out, and should be refreshed. All instants are
/// monotonic: wall-clock jumps cannot make a token look valid or expired.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) lifetime: Duration,
    /// Never hand the token out after this: it could expire in flight.
    pub(crate) usable_until: Instant,
    /// From here on, one refresh is started while the token keeps serving.
    pub(crate) refresh_at: Instant,
}

/// The least safety margin: identity providers write `exp` in whole seconds and answer
/// `expires_in = exp - floor(now)`, so a token can expire up to a second before
/// "sent + expires_in".
const ROUNDING_MARGIN: Duration = Duration::from_secs(1);

impl Timing {
    /// How long before expiry a token of `lifetime` stops being handed out: min(30 s, L/10)
    /// against expiry in flight, at least the rounding of `exp`, and never more than the
    /// lifetime (a token shorter than that is used once, not cached). Shared-cache entries
    /// and re-drawn refresh points use the same rule.
    pub(crate) fn margin(lifetime: Duration) -> Duration {
        Duration::from_secs(30)
            .min(lifetime / 10)
            .max(ROUNDING_MARGIN)
            .min(lifetime)
    }

    /// `jitter` in [0, 1) picks how much of the allowed 10 % is taken off `refresh_at`, so a
    /// fleet started together does not refresh together.
    pub(crate) fn new(
        issued: Instant,
        lifetime: Duration,
        refresh_before: Duration,
        jitter: f64,
    ) -> Timing {
        let expires_at = add(issued, lifetime);
        let usable_until = sub(expires_at, Timing::margin(lifetime));
        let window = refresh_before.min(lifetime / 2);
        let jitter = window.mul_f64(0.1 * jitter.clamp(0.0, 1.0));
        // A refresh_before shorter than the margin would otherwise leave a token "fresh"
        // after it stopped being usable.
        let refresh_at = sub(sub(expires_at, window), jitter).min(usable_until);
        Timing {
            lifetime,
            usable_until,
            refresh_at,
        }
    }
}

fn add(at: Instant, d: Duration) -> Instant {
    // A server may say "expires_in": 1e12; cap at ~100 years rather than overflow.
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(at)
}

fn sub(at: Instant, d: Duration) -> Instant {
    at.checked_sub(d).unwrap_or(at)
}

impl AccessToken {
    pub(crate) fn new(
        value: Secret,
        token_type: TokenType,
        granted_scope: Option<String>,
        timing: Timing,
    ) -> AccessToken {
        let scheme = match token_type {
            TokenType::Bearer => "Bearer ",
            TokenType::Dpop => "DPoP ",
        };
        // Sized once: growing it would leave a copy of the token in the freed buffer.
        let mut authorization = String::with_capacity(scheme.len() + value.expose().len());
        authorization.push_str(scheme);
        authorization.push_str(value.expose());
        AccessToken {
            inner: Arc::new(TokenInner {
                value,
                token_type,
                authorization: Secret::new(authorization),
                granted_scope,
                fingerprint: OnceLock::new(),
                timing,
                serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            }),
        }
    }

    /// An equal token in its own allocation, for one thread's exclusive use: cloning it
    /// touches no memory another thread writes (see `TokenCache::fresh_default`).
    pub(crate) fn private_copy(&self) -> AccessToken {
        let inner = &*self.inner;
        AccessToken {
            inner: Arc::new(TokenInner {
                value: inner.value.clone(),
                token_type: inner.token_type,
                authorization: inner.authorization.clone(),
                granted_scope: inner.granted_scope.clone(),
                fingerprint: inner.fingerprint.clone(),
                timing: inner.timing,
                serial: inner.serial,
            }),
        }
    }

    /// Identifies this token (and its copies) among every token the process has seen.
    pub(crate) fn serial(&self) -> u64 {
        self.inner.serial
    }

    /// The token itself. Treat it as a secret: do not log it.
    pub fn as_str(&self) -> &str {
        self.inner.value.expose()
    }

    /// `"Bearer"`, or `"DPoP"` for a token bound to the client's DPoP key: the scheme is
    /// normalised whatever case the server used, and tokenward refuses token types it
    /// cannot use (RFC 6749 §7.1).
    pub fn token_type(&self) -> &'static str {
        match self.inner.token_type {
            TokenType::Bearer => "Bearer",
            TokenType::Dpop => "DPoP",
        }
    }

    /// Whether this token is DPoP-bound: every request must then carry a fresh proof, which
    /// [`crate::Client::send`] and the per-request header call make.
    pub fn is_dpop(&self) -> bool {
        self.inner.token_type == TokenType::Dpop
    }

    /// The `Authorization` header value: `"Bearer <token>"`, or `"DPoP <token>"` for a
    /// DPoP-bound token (which is useless without a proof).
    pub fn authorization(&self) -> &str {
        self.inner.authorization.expose()
    }

    /// How long this token may still be handed out (until its expiry minus the safety
    /// margin); zero once it must not be used.
    pub fn remaining(&self) -> Duration {
        self.inner
            .timing
            .usable_until
            .saturating_duration_since(Instant::now())
    }

    /// The lifetime the server granted (from `expires_in`, the JWT, or the default).
    pub fn lifetime(&self) -> Duration {
        self.inner.timing.lifetime
    }

    /// The scope the server says it granted, when it echoed one.
    pub fn granted_scope(&self) -> Option<&str> {
        self.inner.granted_scope.as_deref()
    }

    /// A short non-reversible fingerprint (8 hex digits of SHA-256) for logs.
    pub fn fingerprint(&self) -> &str {
        let inner = &*self.inner;
        if let Some(done) = inner.fingerprint.get() {
            return done;
        }
        // Hashed outside the `OnceLock`: its initialiser then only moves a string in, so a
        // `fork()` cannot catch another thread inside it and leave the child waiting.
        let made = fingerprint(inner.value.expose());
        inner.fingerprint.get_or_init(|| made)
    }

    pub(crate) fn timing(&self) -> &Timing {
        &self.inner.timing
    }

    /// The instant until which this token needs no refresh and may be reused as is.
    pub(crate) fn fresh_until(&self) -> Instant {
        self.inner.timing.refresh_at
    }

    pub(crate) fn same_as(&self, token: &str) -> bool {
        crate::secret::constant_time_eq(self.as_str().as_bytes(), token.as_bytes())
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("fingerprint", &self.fingerprint())
            .field("remaining", &self.remaining())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn timing_for_an_hour_token() {
        let t0 = Instant::now();
        let t = Timing::new(t0, secs(3600), secs(300), 0.0);
        assert_eq!(t.usable_until - t0, secs(3570));
        assert_eq!(t.refresh_at - t0, secs(3300));
        let j = Timing::new(t0, secs(3600), secs(300), 0.999_999);
        let taken = (t.refresh_at - j.refresh_at).as_secs_f64();
        assert!(
            taken > 29.9 && taken <= 30.0,
            "jitter takes up to 10% of the window: {taken}"
        );
    }

    #[test]
    fn timing_for_short_tokens_keeps_refresh_before_usable_end() {
        let t0 = Instant::now();
        let t = Timing::new(t0, secs(6), secs(3), 0.0);
        assert_eq!(t.refresh_at - t0, secs(3));
        assert_eq!(t.usable_until - t0, secs(5), "at least a second of margin");
        let t = Timing::new(t0, secs(20), secs(3), 0.0);
        assert_eq!(t.usable_until - t0, secs(18), "L/10 when that is more");
        let t = Timing::new(t0, Duration::from_millis(1500), secs(300), 0.0);
        assert_eq!(t.usable_until - t0, Duration::from_millis(500));
        assert!(t.refresh_at <= t.usable_until);
        // Shorter than the margin: used once, never cached.
        let t = Timing::new(t0, Duration::from_millis(900), secs(300), 0.0);
        assert_eq!((t.usable_until, t.refresh_at), (t0, t0));
        let t = Timing::new(t0, secs(5), secs(300), 0.0);
        assert_eq!(t.refresh_at - t0, Duration::from_millis(2500));
        // refresh_before 0: no early refresh, but never fresher than usable.
        let t = Timing::new(t0, secs(60), secs(0), 0.0);
        assert_eq!(t.refresh_at, t.usable_until);
        let t = Timing::new(t0, secs(0), secs(300), 0.0);
        assert_eq!((t.usable_until, t.refresh_at), (t0, t0));
    }

    #[test]
    fn huge_lifetimes_do_not_overflow() {
        let t = Timing::new(
            Instant::now(),
            Duration::from_secs(u64::MAX / 2),
            secs(300),
            0.5,
        );
        assert!(t.usable_until > Instant::now());
    }

    #[test]
    fn requests_share_a_key_whatever_the_scope_order() {
        let a = TokenRequest::new().scope("b a").audience("x");
        let b = TokenRequest::new().scopes(["a", "b", "a"]).audience("x");
        assert_eq!(a.key(), b.key());
        assert_eq!(a.scope_param().as_deref(), Some("b a"));
        assert_eq!(b.scope_param().as_deref(), Some("a b"));
        assert_ne!(a.key(), TokenRequest::new().scope("a b").key());
    }

    #[test]
    fn debug_shows_no_token() {
        let t = AccessToken::new(
            Secret::new("secret-token-value"),
            TokenType::Bearer,
            None,
            Timing::new(Instant::now(), secs(60), secs(10), 0.0),
        );
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("secret-token-value"));
        assert!(dbg.contains(t.fingerprint()));
        assert_eq!(t.authorization(), "Bearer secret-token-value");
    }
}
