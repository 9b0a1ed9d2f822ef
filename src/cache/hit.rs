//! The hot path: a cache hit without the shared lock, through per-thread token copies.
//!
//! Why: with one shared lock and one shared `Arc`, two threads hitting the cache bounce the
//! lock word and the reference count between cores (~280 ns a hit). A hit here reads only
//! the cache's `published` serial, which changes once per token, and clones an `Arc` no
//! other thread touches.
//!
//! Each thread keeps up to [`LOCAL_ENTRIES`] copies, at most one per token. A copy is in use
//! while its token is fresh and its cache still publishes it; it is out of use once the
//! token is replaced or evicted, goes stale, or the client is dropped (the cache then
//! publishes 0). Copies out of use are dropped, and so zeroized, as soon as the thread next
//! takes the lock (a miss), when it exits, and, for a dropped client's copies on the thread
//! that drops it, at once.
//!
//! A copy costs allocations, so it is made only into an empty entry. An entry in use is
//! never evicted for another: a thread that uses more clients than it has entries serves
//! the others through the lock, without allocating, instead of copying tokens in a circle
//! (each copy would evict one that is needed again a few calls later). So a thread makes at
//! most one copy per token, whatever the number of clients it uses, and entries free
//! themselves as tokens are refreshed.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::sync::Arc;

use super::clock::{coarse_now, Nanos};
use super::TokenCache;
use crate::oauth::AccessToken;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::thread_local;

pub(super) const HIT_SHARDS: usize = 8;

#[repr(align(128))]
#[derive(Default)]
pub(super) struct ShardedCount(pub(super) AtomicU64);

/// How many tokens a thread keeps private copies of.
pub(super) const LOCAL_ENTRIES: usize = 4;

/// Per thread: private copies of the default tokens of (up to four of) the clients it uses.
struct LocalTokens {
    entries: [Option<LocalToken>; LOCAL_ENTRIES],
    /// Which of the cache's hit counters this thread adds to.
    shard: usize,
}

struct LocalToken {
    /// Kept inline so that a lookup touches only this table until it finds its entry.
    serial: u64,
    /// `token`'s fresh-until point on the coarse clock, as its slot computed it.
    fresh_until: Nanos,
    /// Where the cache this copy came from publishes its current serial: the entry is free
    /// again once that is another serial (the cache publishes 0 when it drops).
    published: Arc<AtomicU64>,
    token: AccessToken,
}

impl LocalToken {
    /// Whether this copy can still be served: still fresh, and its cache still publishes its
    /// token (a dropped cache publishes 0, which no token has).
    fn in_use(&self, now: Nanos) -> bool {
        now < self.fresh_until && self.published.load(Ordering::Relaxed) == self.serial
    }
}

impl LocalTokens {
    /// Drop (and so zeroize) every copy out of use, and return an empty entry if there is
    /// one for a new copy (see the module docs).
    fn sweep(&mut self, now: Nanos) -> Option<usize> {
        for entry in &mut self.entries {
            if entry.as_ref().is_some_and(|e| !e.in_use(now)) {
                *entry = None;
            }
        }
        self.entries.iter().position(Option::is_none)
    }
}

static NEXT_SHARD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static LOCAL: RefCell<LocalTokens> = RefCell::new(LocalTokens {
        entries: [None, None, None, None],
        shard: NEXT_SHARD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % HIT_SHARDS,
    });
}

impl TokenCache {
    /// The hot path: the default slot's token if it is fresh by the coarse clock (see
    /// `clock.rs`); `None` means "ask `lookup`". Lock-free when this thread holds a copy of
    /// the token the cache publishes; otherwise one lock, and a copy for next time if this
    /// thread has a free entry. Never allocates except to make that copy.
    #[inline]
    pub(crate) fn fresh_default(&self) -> Option<AccessToken> {
        let now = coarse_now();
        let published = self.published.load(Ordering::Acquire);
        if published != 0 {
            // `try_with`: during thread teardown the thread-local may be gone; use the lock.
            let hit = LOCAL.try_with(|local| {
                let local = local.borrow();
                // The serial check is what keeps an evicted or replaced token from being
                // served: a copy is used only while its cache still publishes its serial.
                let found = local
                    .entries
                    .iter()
                    .flatten()
                    .find(|e| e.serial == published && now < e.fresh_until)?;
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
            if let Some(at) = local.sweep(now) {
                local.entries[at] = Some(LocalToken {
                    serial: token.serial(),
                    fresh_until,
                    published: Arc::clone(&self.published),
                    token: token.private_copy(),
                });
            }
        });
        Some(token)
    }
}

/// Drop this thread's copies that are no longer in use: for a cache's `Drop`, once it has
/// published 0, so that its copies on the dropping thread go at once. Other threads drop
/// theirs at their next miss, or when they exit.
pub(super) fn drop_unused_copies() {
    let now = coarse_now();
    let _ = LOCAL.try_with(|local| {
        // Copies own no cache, so no cache drops while the table is borrowed; `try_` keeps
        // even that case from panicking.
        if let Ok(mut local) = local.try_borrow_mut() {
            local.sweep(now);
        }
    });
}

/// How many token copies this thread holds, for tests.
#[cfg(test)]
pub(super) fn local_copies() -> usize {
    LOCAL.with(|local| local.borrow().entries.iter().flatten().count())
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
