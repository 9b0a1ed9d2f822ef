//! The state behind the cache lock: one slot per distinct token request, each with its
//! token, its flight, its last outcome and its failure memory.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Instant;

use super::clock::{coarse_deadline, Nanos};
use super::{Flight, Ticket, TokenCache};
use crate::error::{Error, Result};
use crate::oauth::{AccessToken, SlotKey};
use crate::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone)]
pub(super) enum SlotRef {
    Default,
    Keyed(SlotKey),
}

pub(super) struct State {
    pub(super) default: Slot,
    pub(super) keyed: Vec<Slot>,
    /// Bumped by credential rotation: fetches started before it are not stored.
    pub(super) generation: u64,
    pub(super) next_flight: u64,
    pub(super) clock: u64,
    pub(super) hits: u64,
}

pub(super) struct Slot {
    pub(super) key: SlotKey,
    /// For the default slot: where its token's serial is published (see `TokenCache`).
    pub(super) published: Option<Arc<AtomicU64>>,
    pub(super) token: Option<AccessToken>,
    /// `token`'s refresh point on the coarse clock (see `clock`), kept inline for the hot
    /// path; 0 when there is no token.
    pub(super) fresh_until: Nanos,
    pub(super) flight: Option<u64>,
    /// The newest completed flight and what it produced, for its waiters.
    pub(super) outcome: Option<(u64, Result<AccessToken>)>,
    /// A failure answered to callers without a usable token until it expires.
    pub(super) failure: Option<(Error, Instant)>,
    /// No new refresh is started before this.
    pub(super) retry_at: Option<Instant>,
    pub(super) failures: u32,
    /// The newest failed fetch's error, kept after recovery (for `health`).
    pub(super) last_error: Option<Error>,
    pub(super) stale_reported: bool,
    pub(super) last_used: u64,
}

impl Slot {
    pub(super) fn new(key: SlotKey, published: Option<Arc<AtomicU64>>) -> Slot {
        Slot {
            key,
            published,
            token: None,
            fresh_until: 0,
            flight: None,
            outcome: None,
            failure: None,
            retry_at: None,
            failures: 0,
            last_error: None,
            stale_reported: false,
            last_used: 0,
        }
    }

    pub(super) fn store(&mut self, token: Option<AccessToken>) {
        self.fresh_until = token
            .as_ref()
            .map_or(0, |t| coarse_deadline(t.fresh_until()));
        if let Some(published) = &self.published {
            published.store(
                token.as_ref().map_or(0, AccessToken::serial),
                Ordering::Release,
            );
        }
        self.token = token;
    }

    pub(super) fn evict(&mut self) -> Option<AccessToken> {
        let token = self.token.take();
        self.store(None);
        token
    }
}

impl State {
    pub(super) fn slots_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        std::iter::once(&mut self.default).chain(self.keyed.iter_mut())
    }

    pub(super) fn find(&mut self, slot: &SlotRef) -> Option<&mut Slot> {
        match slot {
            SlotRef::Default => Some(&mut self.default),
            SlotRef::Keyed(key) => self.keyed.iter_mut().find(|s| s.key == *key),
        }
    }

    /// The slot for `key`, created if needed; the least recently used idle keyed slot is
    /// evicted when there are too many.
    pub(super) fn slot(&mut self, key: Option<&SlotKey>, max_keyed: usize) -> (&mut Slot, SlotRef) {
        let key = match key {
            Some(k) if *k != self.default.key => k,
            _ => return (&mut self.default, SlotRef::Default),
        };
        let index = match self.keyed.iter().position(|s| s.key == *key) {
            Some(i) => i,
            None => {
                if self.keyed.len() >= max_keyed {
                    let idle = self
                        .keyed
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.flight.is_none())
                        .min_by_key(|(_, s)| s.last_used)
                        .map(|(i, _)| i);
                    if let Some(i) = idle {
                        self.keyed.swap_remove(i);
                    }
                }
                self.keyed.push(Slot::new(key.clone(), None));
                self.keyed.len() - 1
            }
        };
        (&mut self.keyed[index], SlotRef::Keyed(key.clone()))
    }

    pub(super) fn start<'a>(&mut self, slot: SlotRef, cache: &'a TokenCache) -> Ticket<'a> {
        let id = self.next_flight;
        self.next_flight += 1;
        if let Some(s) = self.find(&slot) {
            s.flight = Some(id);
        }
        cache.resume(Flight {
            slot,
            id,
            generation: self.generation,
        })
    }
}
