//! [`Client::health`]: the client's state for readiness probes, from memory only.

use std::fmt;
use std::time::{Duration, Instant};

use super::Client;
use crate::error::Error;

/// The overall state of a client's default token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthState {
    /// A usable token is cached and the last fetch succeeded — or nothing has been fetched
    /// or has failed yet (the first call fetches).
    Ok,
    /// A usable token is still served, but refreshing it has failed; it will run out at
    /// `remaining` unless a refresh succeeds first.
    Degraded,
    /// No usable token is cached and the last fetch failed: calls fail (or wait on the
    /// identity provider) until a fetch succeeds.
    Failing,
}

impl HealthState {
    /// `"ok"`, `"degraded"` or `"failing"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Ok => "ok",
            HealthState::Degraded => "degraded",
            HealthState::Failing => "failing",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of the client's default token and its refreshes; see [`Client::health`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Health {
    /// Ok, degraded or failing.
    pub state: HealthState,
    /// How long the cached token may still be handed out; `None` when none is usable.
    pub remaining: Option<Duration>,
    /// How long until the next refresh may start (zero: due, or running). Refreshes are
    /// started by calls, not by a timer: an idle client refreshes on its next call. `None`
    /// when no usable token is cached.
    pub next_refresh: Option<Duration>,
    /// Fetches and refreshes that failed since the last success (retries within one fetch
    /// count once).
    pub consecutive_failures: u32,
    /// The newest failure, kept after a recovery (then `consecutive_failures` is 0). Its
    /// message, like every tokenward message, holds no secret and no token.
    pub last_error: Option<Error>,
}

impl Health {
    /// The snapshot as JSON (the C ABI's `tw_client_health` format):
    /// `{"state":"ok"|"degraded"|"failing","remaining_ms":n|null,"next_refresh_ms":n|null,
    /// "consecutive_failures":n,"last_error":{"kind":"…","message":"…","http_status":n|null}|null}`.
    pub fn to_json(&self) -> String {
        let ms = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        serde_json::json!({
            "state": self.state.as_str(),
            "remaining_ms": ms(self.remaining),
            "next_refresh_ms": ms(self.next_refresh),
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error.as_ref().map(|e| serde_json::json!({
                "kind": e.kind().as_str(),
                "message": e.message(),
                "http_status": e.http_status(),
            })),
        })
        .to_string()
    }
}

impl Client {
    /// The state of the default token, for readiness probes and dashboards: whether a
    /// usable token is cached, how long it lasts, when it is refreshed, and how refreshes
    /// are failing. Reads memory only — no network call, no refresh started, no lock held
    /// beyond a copy of a few fields — so it may be called as often as a probe likes.
    pub fn health(&self) -> Health {
        let now = Instant::now();
        let slot = self.shared.cache.health(now);
        let state = match (&slot.usable, slot.consecutive_failures) {
            (_, 0) => HealthState::Ok,
            (Some(_), _) => HealthState::Degraded,
            (None, _) => HealthState::Failing,
        };
        let next_refresh = slot.next_refresh.map(|at| {
            if slot.in_flight {
                Duration::ZERO
            } else {
                at.saturating_duration_since(now)
            }
        });
        Health {
            state,
            remaining: slot
                .usable
                .as_ref()
                .map(|t| t.timing().usable_until.saturating_duration_since(now)),
            next_refresh,
            consecutive_failures: slot.consecutive_failures,
            last_error: slot.last_error,
        }
    }
}
