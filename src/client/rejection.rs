//! No refresh storms from an API that rejects every token. Recovering from a 401 means
//! evicting the token and fetching another; if the API also rejects the new one (wrong
//! audience, scope or tenant headers), recovering again would turn every API call into a
//! token request. So once a rejection has caused a refresh, a rejection of a token issued
//! after it — within `error_cooldown` — starts no other fetch: the caller gets
//! `Unauthorized` at once, and one new attempt is allowed per cooldown.
//!
//! Tokens are ordered by their serial (assigned when issued, increasing in the process), so
//! "issued after the rejected one" needs no clock. Rejections of the same or an older token
//! (many requests that carried it, answered at once) are admitted: they evict nothing new
//! and share the one refresh.

use std::time::{Duration, Instant};

use crate::sync::{ForkLock, Mutex};

/// Remembers the last rejection that was allowed to cause a refresh.
pub(super) struct RejectionGuard {
    /// When it happened and the serial of the token rejected.
    last: Mutex<Option<(Instant, u64)>>,
    cooldown: Duration,
}

impl RejectionGuard {
    pub(super) fn new(cooldown: Duration) -> RejectionGuard {
        RejectionGuard {
            last: Mutex::new(None),
            cooldown,
        }
    }

    /// Whether the API's rejection, at `now`, of the token with `serial` may evict it and
    /// start a refresh. `Err(since)` when a token older than this one was rejected `since`
    /// ago (less than the cooldown): this one was issued after that and is rejected too.
    pub(super) fn admit(&self, serial: u64, now: Instant) -> Result<(), Duration> {
        let mut last = self.last.lock();
        match *last {
            Some((at, rejected)) if now.saturating_duration_since(at) < self.cooldown => {
                if serial > rejected {
                    return Err(now.saturating_duration_since(at));
                }
            }
            _ => *last = Some((now, serial)),
        }
        Ok(())
    }

    /// The lock, for the fork hooks (`crate::sync::fork`).
    pub(super) fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refresh_per_cooldown_for_tokens_issued_after_a_rejection() {
        let guard = RejectionGuard::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(guard.admit(10, t0), Ok(()), "the first rejection refreshes");
        assert_eq!(guard.admit(10, t0), Ok(()), "same token, other request");
        assert_eq!(guard.admit(9, t0), Ok(()), "an older token");
        let one = Duration::from_secs(1);
        assert_eq!(guard.admit(11, t0 + one), Err(one), "a newer token");
        assert_eq!(guard.admit(11, t0 + one * 4), Err(one * 4));
        assert_eq!(guard.admit(11, t0 + one * 5), Ok(()), "cooldown over");
        assert_eq!(guard.admit(12, t0 + one * 6), Err(one));
    }

    #[test]
    fn a_zero_cooldown_never_refuses() {
        let guard = RejectionGuard::new(Duration::ZERO);
        let t0 = Instant::now();
        for serial in 1..5 {
            assert_eq!(guard.admit(serial, t0), Ok(()));
        }
    }
}
