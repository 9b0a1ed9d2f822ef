//! The hot path: a cache hit without the shared lock, through per-thread token copies.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

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
            let at = local.next;
            local.next = (at + 1) % LOCAL_ENTRIES;
            // An empty or expired entry if there is one, else the next in turn.
            let stale = local
                .entries
                .iter()
                .position(|e| e.as_ref().is_none_or(|e| now >= e.fresh_until));
            local.entries[stale.unwrap_or(at)] = Some(LocalToken {
                token: token.private_copy(),
                fresh_until,
            });
        });
        Some(token)
    }
}
