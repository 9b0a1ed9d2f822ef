//! The hot path: a cache hit without the shared lock, through per-thread token copies.
//!
//! Why: with one shared lock and one shared `Arc`, two threads hitting the cache bounce the
//! lock word and the reference count between cores (~280 ns a hit). A hit here reads only
//! the cache's `published` serial, which changes once per token, and clones an `Arc` no
//! other thread touches.
//!
//! Each thread keeps up to [`LOCAL_ENTRIES`] copies, at most one per token. A copy costs one
//! allocation, so it is made only into a free entry: an empty one, or one whose token is no
//! longer fresh or no longer published by its cache (replaced, evicted, or the client
//! dropped). An entry whose token is still live is never evicted for another: a thread that
//! uses more clients than it has entries serves the others through the lock, without
//! allocating, instead of copying tokens in a circle (each copy would evict one that is
//! needed again a few calls later). So a thread makes at most one copy per token, whatever
//! the number of clients it uses, and entries free themselves as tokens are refreshed.

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

impl LocalTokens {
    /// The entry a new copy may go into, if any (see the module docs).
    fn free_entry(&self, now: Nanos) -> Option<usize> {
        self.entries.iter().position(|entry| match entry {
            None => true,
            Some(e) => now >= e.fresh_until || e.published.load(Ordering::Relaxed) != e.serial,
        })
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
            if let Some(at) = local.free_entry(now) {
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
