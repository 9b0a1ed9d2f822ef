//! The client-side rate limit of `send`: a token bucket shared by every thread of a client.

use std::time::{Duration, Instant};

use crate::config::RateLimit;
use crate::error::{Error, ErrorKind, Result};
use crate::sync::{ForkLock, Mutex};

/// A token bucket: `requests` per `per`, starting full. Callers wait for a permit.
pub(crate) struct RateLimiter {
    state: Mutex<(f64, Instant)>,
    capacity: f64,
    per_second: f64,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> RateLimiter {
        let capacity = f64::from(limit.requests);
        RateLimiter {
            state: Mutex::new((capacity, Instant::now())),
            capacity,
            per_second: capacity / limit.per.as_secs_f64(),
        }
    }

    /// Take one permit, sleeping (never holding the lock) until one is free or `deadline`.
    pub(super) fn acquire(&self, deadline: Instant) -> Result<()> {
        loop {
            let wait = {
                let mut state = self.state.lock();
                let now = Instant::now();
                let refill = now.saturating_duration_since(state.1).as_secs_f64() * self.per_second;
                state.0 = (state.0 + refill).min(self.capacity);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return Ok(());
                }
                Duration::from_secs_f64((1.0 - state.0) / self.per_second)
            };
            if Instant::now() + wait > deadline {
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    "The request was not sent: the client-side rate limit (`rate_limit`) allows no request before the request deadline.",
                ));
            }
            std::thread::sleep(wait);
        }
    }

    /// The bucket lock, for the fork hooks (`crate::sync::fork`).
    pub(crate) fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_starts_full_then_paces() {
        let limiter = RateLimiter::new(RateLimit {
            requests: 2,
            per: Duration::from_millis(100),
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let started = Instant::now();
        for _ in 0..4 {
            limiter.acquire(deadline).unwrap();
        }
        assert!(
            started.elapsed() >= Duration::from_millis(90),
            "{:?}",
            started.elapsed()
        );
        let e = limiter.acquire(Instant::now()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
    }
}
