//! The hot path: a cache hit without the shared lock, through per-thread token copies.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::clock::{coarse_now, Nanos};
use super::TokenCache;
use crate::oauth::AccessToken;

pub(super) const HIT_SHARDS: usize = 8;

#[repr(align(128))]
#[derive(Default)]
pub(super) struct ShardedCount(pub(super) AtomicU64);

/// Per thread: private copies of the default tokens of the clients it used last.
///
/// Why: with one shared lock and one shared `Arc`, two threads hitting the cache bounce
/// the lock word and the reference count between cores (~280 ns a hit). A hit here only
/// reads `published`, which changes once per token, and clones an `Arc` no other thread
/// touches. A copy is made once per thread and token (one allocation), then reused.
pub(super) struct LocalTokens {
    pub(super) entries: [Option<LocalToken>; LOCAL_ENTRIES],
    pub(super) next: usize,
    pub(super) shard: usize,
}

pub(super) struct LocalToken {
    pub(super) token: AccessToken,
    /// `token`'s fresh-until point on the coarse clock, as its slot computed it.
    pub(super) fresh_until: Nanos,
    /// Its cache's published serial: gone once the cache is dropped, different once the
    /// token is replaced or evicted. Either way this copy is of no more use.
    pub(super) published: Weak<AtomicU64>,
}

impl LocalToken {
    /// Whether this copy can still be served: its cache lives, still publishes this token,
    /// and the token is fresh.
    fn in_use(&self, now: Nanos) -> bool {
        now < self.fresh_until
            && self
                .published
                .upgrade()
                .is_some_and(|p| p.load(Ordering::Acquire) == self.token.serial())
    }
}

pub(super) const LOCAL_ENTRIES: usize = 4;

pub(super) static NEXT_SHARD: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static LOCAL: RefCell<LocalTokens> = RefCell::new(LocalTokens {
        entries: [None, None, None, None],
        next: 0,
        shard: NEXT_SHARD.fetch_add(1, Ordering::Relaxed) as usize % HIT_SHARDS,
    });
}

impl TokenCache {
    /// The hot path: the default slot's token if it is fresh by the coarse clock (see
    /// `clock.rs`); `None` means "ask `lookup`". Usually lock-free: this thread's private
    /// copy of the token, if it is still the published one (see `LocalTokens`).
    #[inline]
    pub(crate) fn fresh_default(&self) -> Option<AccessToken> {
        let now = coarse_now();
        let published = self.published.load(Ordering::Acquire);
        if published != 0 {
            // `try_with`: during thread teardown the thread-local may be gone; use the lock.
            let hit = LOCAL.try_with(|local| {
                let local = local.borrow();
                let found = local
                    .entries
                    .iter()
                    .flatten()
                    .find(|e| e.token.serial() == published && now < e.fresh_until)?;
                self.fast_hits[local.shard]
                    .0
                    .fetch_add(1, Ordering::Relaxed);
                Some(found.token.clone())
            });
            if let Ok(Some(token)) = hit {
                return Some(token);
            }
        }
        let (token, fresh_until) = {
            let mut state = self.state.lock();
            if now >= state.default.fresh_until {
                return None;
            }
            state.hits += 1;
            (state.default.token.clone()?, state.default.fresh_until)
        };
        let _ = LOCAL.try_with(|local| {
            let mut local = local.borrow_mut();
            // Copies no longer in use are dropped (and so zeroized) now rather than when
            // their entry is next reused: of a dropped client, a replaced or a stale token.
            for entry in &mut local.entries {
                if entry.as_ref().is_some_and(|e| !e.in_use(now)) {
                    *entry = None;
                }
            }
            let at = local.next;
            local.next = (at + 1) % LOCAL_ENTRIES;
            let free = local.entries.iter().position(Option::is_none);
            local.entries[free.unwrap_or(at)] = Some(LocalToken {
                token: token.private_copy(),
                fresh_until,
                published: Arc::downgrade(&self.published),
            });
        });
        Some(token)
    }

    /// Drop this thread's copies of this cache's tokens (and of any dropped cache's), for
    /// the cache's `Drop`. Other threads drop theirs on their next miss, or when they exit.
    pub(super) fn forget_local_copies(&self) {
        let mine = Arc::as_ptr(&self.published);
        let _ = LOCAL.try_with(|local| {
            if let Ok(mut local) = local.try_borrow_mut() {
                for entry in &mut local.entries {
                    if entry.as_ref().is_some_and(|e| {
                        e.published.as_ptr() == mine || e.published.strong_count() == 0
                    }) {
                        *entry = None;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CachePolicy;
    use crate::http::RetryPolicy;
    use crate::oauth::{Fetched, SlotKey};
    use crate::secret::Secret;
    use std::time::{Duration, Instant};

    fn cache_with_token(value: &str) -> TokenCache {
        let cache = TokenCache::new(
            SlotKey::default(),
            CachePolicy {
                refresh_before: Duration::from_secs(300),
                error_cooldown: Duration::from_secs(5),
                retry: RetryPolicy::default(),
                max_keyed_slots: 2,
            },
        );
        let now = Instant::now();
        let ticket = match cache.lookup(None, now) {
            super::super::Lookup::Fetch(ticket) => ticket,
            _ => panic!("an empty cache fetches"),
        };
        ticket
            .complete(
                Ok(Fetched {
                    value: Secret::new(value),
                    token_type: crate::oauth::token::TokenType::Bearer,
                    lifetime: Duration::from_secs(3600),
                    issued: now,
                    granted_scope: None,
                }),
                now,
            )
            .unwrap();
        cache
    }

    fn local_copies() -> usize {
        LOCAL.with(|local| local.borrow().entries.iter().flatten().count())
    }

    #[test]
    fn copies_of_a_dropped_cache_are_dropped() {
        if super::super::clock::coarse_deadline(Instant::now() + Duration::from_secs(60)) == 0 {
            return; // no coarse clock on this platform: no per-thread copies are made
        }
        let before = local_copies();
        let a = cache_with_token("token-a");
        assert!(a.fresh_default().is_some());
        assert_eq!(
            local_copies(),
            before + 1,
            "the first hit makes this thread's copy"
        );
        drop(a);
        assert_eq!(
            local_copies(),
            before,
            "dropping the cache drops this thread's copy"
        );

        // Another thread's copy of `b` outlives `b` until that thread next misses.
        let b = Arc::new(cache_with_token("token-b"));
        let c = cache_with_token("token-c");
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (report, copies) = std::sync::mpsc::channel::<usize>();
        std::thread::scope(|s| {
            let theirs = Arc::clone(&b);
            let c = &c;
            s.spawn(move || {
                assert!(theirs.fresh_default().is_some());
                drop(theirs);
                report.send(local_copies()).unwrap();
                wait.recv().unwrap();
                assert!(c.fresh_default().is_some(), "a miss on another cache");
                report.send(local_copies()).unwrap();
            });
            assert_eq!(copies.recv().unwrap(), 1);
            drop(b);
            go.send(()).unwrap();
            assert_eq!(copies.recv().unwrap(), 1, "b's copy went, c's came");
        });
    }
}
