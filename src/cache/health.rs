//! A read-only look at the default slot for health checks: no fetch is started, no hit is
//! counted, nothing changes.

#![forbid(unsafe_code)]

use std::time::Instant;

use super::TokenCache;
use crate::error::Error;
use crate::oauth::AccessToken;

/// What the default slot holds right now.
pub(crate) struct SlotHealth {
    /// The cached token, if it may still be handed out.
    pub(crate) usable: Option<AccessToken>,
    /// When the next refresh may start: the token's refresh point, or later while a failed
    /// refresh backs off. `None` without a usable token.
    pub(crate) next_refresh: Option<Instant>,
    /// Whether a fetch or refresh is running.
    pub(crate) in_flight: bool,
    /// Fetches and refreshes that failed since the last success.
    pub(crate) consecutive_failures: u32,
    /// The newest failure's error, kept after a recovery.
    pub(crate) last_error: Option<Error>,
}

impl TokenCache {
    pub(crate) fn health(&self, now: Instant) -> SlotHealth {
        let state = self.state.lock();
        let slot = &state.default;
        let usable = slot
            .token
            .as_ref()
            .filter(|t| now < t.timing().usable_until)
            .cloned();
        let next_refresh = usable.as_ref().map(|t| match slot.retry_at {
            Some(retry_at) => t.fresh_until().max(retry_at),
            None => t.fresh_until(),
        });
        SlotHealth {
            usable,
            next_refresh,
            in_flight: slot.flight.is_some(),
            consecutive_failures: slot.failures,
            last_error: slot.last_error.clone(),
        }
    }
}
