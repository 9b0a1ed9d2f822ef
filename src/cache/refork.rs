//! After `fork()`: give every inherited token a refresh point of the child's own.
//!
//! A pre-fork server's workers inherit the parent's tokens with the parent's refresh points,
//! jitter included, so without this they would all refresh at the same instant — the storm
//! the jitter exists to prevent.

#![forbid(unsafe_code)]

use super::TokenCache;
use crate::http::random_unit;
use crate::oauth::token::TokenType;
use crate::oauth::{AccessToken, Timing};
use crate::secret::Secret;

impl TokenCache {
    /// Re-draw the refresh jitter of every cached token (for the fork hooks, in the child).
    pub(crate) fn redraw_jitter(&self) {
        let refresh_before = self.policy.refresh_before;
        for slot in self.state.lock().slots_mut() {
            let Some(token) = &slot.token else { continue };
            let timing = token.timing();
            // `Timing::new` took the margin off the expiry and the jitter off the refresh
            // window; undo the first to find when the token was issued.
            let issued = timing
                .usable_until
                .checked_add(Timing::margin(timing.lifetime))
                .and_then(|expires_at| expires_at.checked_sub(timing.lifetime));
            let Some(issued) = issued else { continue };
            let redrawn = Timing::new(issued, timing.lifetime, refresh_before, random_unit());
            let token_type = if token.is_dpop() {
                TokenType::Dpop
            } else {
                TokenType::Bearer
            };
            let copy = AccessToken::new(
                Secret::new(token.as_str()),
                token_type,
                token.granted_scope().map(str::to_string),
                redrawn,
            );
            slot.store(Some(copy));
        }
    }
}
