//! The token cache: per-request slots with single-flight fetches, refresh-ahead, serve-stale,
//! failure memory and rotation. No HTTP and no threads here: `lookup` says what the caller
//! must do, and the client does it and reports back with `complete`.
//!
//! - this file: the decisions (`lookup`, `complete`, `wait`, `invalidate`, `rotate`);
//! - `slot`: the state behind the lock, one slot per distinct token request;
//! - `hit`: the lock-free hit path through per-thread token copies;
//! - `health`: a read-only look at the default slot, for readiness probes;
//! - `clock`: the coarse monotonic clock that hit path compares against;
//! - `loom_model`: the model-checked proof of the above (single flight, shared outcomes,
//!   serve-stale, invalidation by identity, the hit path's serial check, a dropped cache's
//!   copies gone by each thread's next miss).

pub(crate) mod clock;
mod health;
mod hit;
#[cfg(all(test, loom))]
mod loom_model;
mod refork;
mod slot;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use self::hit::{ShardedCount, HIT_SHARDS};
use self::slot::{Slot, SlotRef, State};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{failure_memory, random_unit, RetryPolicy};
use crate::oauth::{AccessToken, Fetched, SlotKey, Timing};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Condvar, ForkLock, Mutex};

/// What `lookup` tells the caller to do.
pub(crate) enum Lookup<'a> {
    /// Use this token.
    Fresh(AccessToken),
    /// Use this token; refreshes are failing, which the caller should report once.
    ServeStale(AccessToken),
    /// Use this token, and run the refresh `ticket` (in the background or inline).
    Refresh(AccessToken, Ticket<'a>),
    /// No usable token: fetch with `ticket`; every waiter gets this fetch's outcome.
    Fetch(Ticket<'a>),
    /// Another caller is fetching: wait for it.
    Wait(Waiter),
    /// A recent failure is remembered: answer it without asking the server again.
    Failed(Error),
}

/// The right (and the duty) to complete one fetch, borrowed from the cache that issued it.
/// Dropping it uncompleted — a panic in the fetch, say — completes it with an error, so
/// waiters never hang on a dead flight. To carry the duty to another thread, [`detach`]
/// it and [`TokenCache::resume`] it there.
///
/// [`detach`]: Ticket::detach
pub(crate) struct Ticket<'a> {
    cache: &'a TokenCache,
    /// `Some` until the ticket is completed or detached.
    flight: Option<Flight>,
}

/// A fetch under way, without a borrow of its cache, so that it can move to another thread.
/// It owes its cache a completion: turn it back into a [`Ticket`] with
/// [`TokenCache::resume`] on the same cache. A `Flight` that is merely dropped leaves its
/// slot waiting for an outcome until the request deadline, so whoever holds one keeps it in
/// a guard that resumes it on drop.
#[must_use = "a flight must be resumed on its cache and completed"]
pub(crate) struct Flight {
    slot: SlotRef,
    id: u64,
    generation: u64,
}

impl<'a> Ticket<'a> {
    /// Record this fetch's outcome, wake its waiters, and return the token (or error) it made.
    pub(crate) fn complete(
        mut self,
        fetched: Result<Fetched>,
        now: Instant,
    ) -> Result<AccessToken> {
        let policy = &self.cache.policy;
        let result = fetched.map(|f| {
            let timing = Timing::new(f.issued, f.lifetime, policy.refresh_before, random_unit());
            AccessToken::new(f.value, f.token_type, f.granted_scope, timing)
        });
        let flight = self
            .flight
            .take()
            .expect("a ticket holds its flight until completed");
        self.cache.finish(&flight, result, now)
    }

    /// Give up the borrow of the cache, keeping the duty to complete (see [`Flight`]).
    pub(crate) fn detach(mut self) -> Flight {
        self.flight
            .take()
            .expect("a ticket holds its flight until detached")
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(flight) = self.flight.take() {
            let error = Error::new(
                ErrorKind::Panic,
                "The token fetch was abandoned by an internal failure.",
            );
            let _ = self.cache.finish(&flight, Err(error), Instant::now());
        }
    }
}

/// A caller's place in the queue for another caller's fetch; see [`TokenCache::wait`].
pub(crate) struct Waiter {
    slot: SlotRef,
    flight: u64,
}

/// The policy the cache applies; from the configuration.
pub(crate) struct CachePolicy {
    pub(crate) refresh_before: Duration,
    pub(crate) error_cooldown: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_keyed_slots: usize,
}

pub(crate) struct TokenCache {
    state: Mutex<State>,
    flight_done: Condvar,
    policy: CachePolicy,
    /// The serial of the default slot's token while it is cached (0 when none, and once the
    /// cache is dropped), written under the lock: the lock-free hit path checks its thread's
    /// copy against it. Threads' copies share it, to tell when their entry is free again.
    published: Arc<AtomicU64>,
    /// Hits answered without the lock, counted per thread shard (no shared cache line).
    fast_hits: [ShardedCount; HIT_SHARDS],
}

impl TokenCache {
    pub(crate) fn new(default_key: SlotKey, policy: CachePolicy) -> TokenCache {
        let published = Arc::new(AtomicU64::new(0));
        TokenCache {
            published: published.clone(),
            fast_hits: Default::default(),
            state: Mutex::new(State {
                default: Slot::new(default_key, Some(published)),
                keyed: Vec::new(),
                generation: 0,
                next_flight: 1,
                clock: 0,
                hits: 0,
            }),
            flight_done: Condvar::new(),
            policy,
        }
    }

    /// Decide what a caller of `token()` does now: the whole state machine, in one `match`.
    /// `key` is `None` for the configured default request.
    pub(crate) fn lookup(&self, key: Option<&SlotKey>, now: Instant) -> Lookup<'_> {
        enum Plan {
            Use(AccessToken),
            Stale(AccessToken),
            Refresh(AccessToken),
            Wait(u64),
            Failed(Error),
            Fetch,
        }
        let mut guard = self.state.lock();
        let state = &mut *guard;
        state.clock += 1;
        let clock = state.clock;
        let (slot, slot_ref) = state.slot(key, self.policy.max_keyed_slots);
        slot.last_used = clock;
        let may_start = slot.flight.is_none() && slot.retry_at.is_none_or(|at| now >= at);
        let plan = match &slot.token {
            Some(token) if now < token.fresh_until() => Plan::Use(token.clone()),
            Some(token) if now < token.timing().usable_until => {
                if may_start {
                    Plan::Refresh(token.clone())
                } else if slot.failures > 0 && !slot.stale_reported {
                    slot.stale_reported = true;
                    Plan::Stale(token.clone())
                } else {
                    Plan::Use(token.clone())
                }
            }
            _ => match (slot.flight, &slot.failure) {
                (Some(flight), _) => Plan::Wait(flight),
                (None, Some((error, until))) if now < *until => Plan::Failed(error.clone()),
                (None, _) => Plan::Fetch,
            },
        };
        match plan {
            Plan::Use(token) => {
                state.hits += 1;
                Lookup::Fresh(token)
            }
            Plan::Stale(token) => {
                state.hits += 1;
                Lookup::ServeStale(token)
            }
            Plan::Refresh(token) => {
                state.hits += 1;
                Lookup::Refresh(token, state.start(slot_ref, self))
            }
            Plan::Wait(flight) => Lookup::Wait(Waiter {
                slot: slot_ref,
                flight,
            }),
            Plan::Failed(error) => Lookup::Failed(error),
            Plan::Fetch => Lookup::Fetch(state.start(slot_ref, self)),
        }
    }

    /// Take back a [`Flight`] detached from a ticket of this cache, on any thread.
    pub(crate) fn resume(&self, flight: Flight) -> Ticket<'_> {
        Ticket {
            cache: self,
            flight: Some(flight),
        }
    }

    fn finish(
        &self,
        ticket: &Flight,
        result: Result<AccessToken>,
        now: Instant,
    ) -> Result<AccessToken> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let current = state.generation == ticket.generation;
        if let Some(slot) = state.find(&ticket.slot) {
            if slot.flight == Some(ticket.id) {
                slot.flight = None;
            }
            if slot.outcome.as_ref().is_none_or(|(id, _)| *id < ticket.id) {
                slot.outcome = Some((ticket.id, result.clone()));
            }
            if current {
                match &result {
                    Ok(token) => {
                        slot.store(Some(token.clone()));
                        slot.failure = None;
                        slot.retry_at = None;
                        slot.failures = 0;
                        slot.stale_reported = false;
                    }
                    Err(error) => {
                        slot.failures += 1;
                        slot.last_error = Some(error.clone());
                        let wait = if error.is_transient() {
                            failure_memory(&self.policy.retry, slot.failures, error.retry_after())
                        } else {
                            self.policy.error_cooldown
                        };
                        // Far enough to mean "not before the next restart" if it cannot be
                        // represented: an error_cooldown of u64::MAX ms, say.
                        let until = now
                            .checked_add(wait)
                            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
                        slot.failure = Some((error.clone(), until));
                        slot.retry_at = Some(until);
                    }
                }
            }
        }
        drop(guard);
        self.flight_done.notify_all();
        result
    }

    /// Wait (at most until `deadline`) for another caller's fetch and share its outcome.
    pub(crate) fn wait(&self, waiter: Waiter, deadline: Instant) -> Result<AccessToken> {
        let mut state = self.state.lock();
        let mut timed_out = false;
        loop {
            match state.find(&waiter.slot) {
                Some(slot) => {
                    if let Some((id, outcome)) = &slot.outcome {
                        if *id >= waiter.flight {
                            return outcome.clone();
                        }
                    }
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::Panic,
                        "The token slot being waited on disappeared.",
                    ));
                }
            }
            // Checked after looking at the outcome once more: a fetch that finished just as
            // the deadline passed still counts.
            if timed_out {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "Timed out waiting for the token fetch already in progress (request deadline passed).",
                ));
            }
            let (guard, deadline_passed) = self.flight_done.wait_until(state, deadline);
            state = guard;
            timed_out = deadline_passed;
        }
    }

    /// Evict `token` wherever it is cached (all tokens when `None`), and return what was
    /// evicted with the key of its slot. A token that is no longer current is left alone, so
    /// many requests failing with the same old token cause one refresh, not one each.
    pub(crate) fn invalidate(&self, token: Option<&str>) -> Vec<(SlotKey, AccessToken)> {
        let mut state = self.state.lock();
        let mut evicted = Vec::new();
        for slot in state.slots_mut() {
            let matches = match (&slot.token, token) {
                (Some(current), Some(t)) => current.same_as(t),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if matches {
                evicted.extend(slot.evict().map(|t| (slot.key.clone(), t)));
            }
        }
        evicted
    }

    /// Atomically clear every token and remembered failure and run `replace` (which swaps the
    /// credential), so no caller sees a token or error of the old credential afterwards.
    pub(crate) fn rotate<T>(&self, replace: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut state = self.state.lock();
        let value = replace()?;
        state.generation += 1;
        for slot in state.slots_mut() {
            slot.evict();
            slot.failure = None;
            slot.retry_at = None;
            slot.failures = 0;
            slot.stale_reported = false;
            // Fetches under way used the old credential: new callers start their own.
            slot.flight = None;
        }
        Ok(value)
    }

    /// Cache hits so far, and the default token's remaining usable time.
    pub(crate) fn snapshot(&self) -> (u64, Option<Duration>) {
        let fast: u64 = self
            .fast_hits
            .iter()
            .map(|count| count.0.load(Ordering::Relaxed))
            .sum();
        let state = self.state.lock();
        (
            state.hits + fast,
            state.default.token.as_ref().map(AccessToken::remaining),
        )
    }

    /// The state lock, for the fork hooks (`crate::sync::fork`).
    pub(crate) fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.state);
    }

    /// In a forked child: forget fetches that threads of the parent were running; no thread
    /// of the child will finish them, and callers must start their own.
    pub(crate) fn forget_flights(&self) {
        for slot in self.state.lock().slots_mut() {
            slot.flight = None;
        }
    }
}

impl Drop for TokenCache {
    /// Threads may still hold copies of the last token. This thread's go now (zeroized);
    /// publishing 0 marks the others' as unused, so each thread drops them at its next miss
    /// (or when it exits) and takes their entries for other clients' tokens (see `hit`).
    fn drop(&mut self) {
        self.published.store(0, Ordering::Release);
        hit::drop_unused_copies();
    }
}
