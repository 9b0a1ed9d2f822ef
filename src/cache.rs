//! The token cache: per-request slots with single-flight fetches, refresh-ahead, serve-stale,
//! failure memory and rotation (DESIGN.md §3). No HTTP and no threads here: `lookup` says
//! what the caller must do, and the client does it and reports back with `complete`.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex};

use crate::config::RetryPolicy;
use crate::endpoint::Fetched;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{backoff, random_unit};
use crate::token::{AccessToken, SlotKey, Timing};

/// What `lookup` tells the caller to do.
pub(crate) enum Lookup {
    /// Use this token.
    Fresh(AccessToken),
    /// Use this token; refreshes are failing, which the caller should report once.
    ServeStale(AccessToken),
    /// Use this token, and run the refresh `ticket` (in the background or inline).
    Refresh(AccessToken, Ticket),
    /// No usable token: fetch with `ticket`; every waiter gets this fetch's outcome.
    Fetch(Ticket),
    /// Another caller is fetching: wait for it.
    Wait(Waiter),
    /// A recent failure is remembered: answer it without asking the server again.
    Failed(Error),
}

/// The right (and the duty) to complete one fetch. Dropping it uncompleted — a panic in
/// the fetch, say — completes it with an error, so waiters never hang on a dead flight.
pub(crate) struct Ticket {
    slot: SlotRef,
    flight: u64,
    generation: u64,
    done: bool,
    cache: *const TokenCache,
}

// SAFETY: the pointer is only dereferenced in `Drop`, and every Ticket is completed or
// dropped while the client (which owns the cache) is alive: fetchers hold an `Arc` to it.
unsafe impl Send for Ticket {}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            // SAFETY: see the Send impl.
            let cache = unsafe { &*self.cache };
            let error = Error::new(
                ErrorKind::Panic,
                "The token fetch was abandoned by an internal failure.",
            );
            let _ = cache.finish(self, Err(error), Instant::now());
        }
    }
}

pub(crate) struct Waiter {
    slot: SlotRef,
    flight: u64,
}

#[derive(Clone)]
enum SlotRef {
    Default,
    Keyed(SlotKey),
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
    /// The serial of the default slot's token while it is cached (0 when none), written
    /// under the lock: the lock-free hit path checks its thread's copy against it.
    published: Arc<AtomicU64>,
    /// Hits answered without the lock, counted per thread shard (no shared cache line).
    fast_hits: [ShardedCount; HIT_SHARDS],
}

const HIT_SHARDS: usize = 8;

#[repr(align(128))]
#[derive(Default)]
struct ShardedCount(AtomicU64);

/// Per thread: private copies of the default tokens of the clients it used last.
///
/// Why: with one shared lock and one shared `Arc`, two threads hitting the cache bounce
/// the lock word and the reference count between cores (~280 ns a hit). A hit here only
/// reads `published`, which changes once per token, and clones an `Arc` no other thread
/// touches. A copy is made once per thread and token (one allocation), then reused.
struct LocalTokens {
    entries: [Option<LocalToken>; LOCAL_ENTRIES],
    next: usize,
    shard: usize,
}

struct LocalToken {
    token: AccessToken,
    /// `token`'s fresh-until point on the coarse clock, as its slot computed it.
    fresh_until: crate::clock::Nanos,
}

const LOCAL_ENTRIES: usize = 4;

static NEXT_SHARD: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static LOCAL: RefCell<LocalTokens> = RefCell::new(LocalTokens {
        entries: [None, None, None, None],
        next: 0,
        shard: NEXT_SHARD.fetch_add(1, Ordering::Relaxed) as usize % HIT_SHARDS,
    });
}

struct State {
    default: Slot,
    keyed: Vec<Slot>,
    /// Bumped by credential rotation: fetches started before it are not stored.
    generation: u64,
    next_flight: u64,
    clock: u64,
    hits: u64,
}

struct Slot {
    key: SlotKey,
    /// For the default slot: where its token's serial is published (see `TokenCache`).
    published: Option<Arc<AtomicU64>>,
    token: Option<AccessToken>,
    /// `token`'s refresh point on the coarse clock (`clock.rs`), kept inline for the hot
    /// path; 0 when there is no token.
    fresh_until: crate::clock::Nanos,
    flight: Option<u64>,
    /// The newest completed flight and what it produced, for its waiters.
    outcome: Option<(u64, Result<AccessToken>)>,
    /// A failure answered to callers without a usable token until it expires.
    failure: Option<(Error, Instant)>,
    /// No new refresh is started before this.
    retry_at: Option<Instant>,
    failures: u32,
    stale_reported: bool,
    last_used: u64,
}

impl Slot {
    fn new(key: SlotKey, published: Option<Arc<AtomicU64>>) -> Slot {
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
            stale_reported: false,
            last_used: 0,
        }
    }

    fn store(&mut self, token: Option<AccessToken>) {
        self.fresh_until = token
            .as_ref()
            .map_or(0, |t| crate::clock::coarse_deadline(t.fresh_until()));
        if let Some(published) = &self.published {
            published.store(
                token.as_ref().map_or(0, AccessToken::serial),
                Ordering::Release,
            );
        }
        self.token = token;
    }

    fn evict(&mut self) -> Option<AccessToken> {
        let token = self.token.take();
        self.store(None);
        token
    }
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

    /// Decide what a caller of `token()` does now: the state machine of DESIGN.md §3.
    /// `key` is `None` for the configured default request.
    pub(crate) fn lookup(&self, key: Option<&SlotKey>, now: Instant) -> Lookup {
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

    /// The hot path: the default slot's token if it is fresh by the coarse clock (see
    /// `clock.rs`); `None` means "ask `lookup`". Usually lock-free: this thread's private
    /// copy of the token, if it is still the published one (see `LocalTokens`).
    #[inline]
    pub(crate) fn fresh_default(&self) -> Option<AccessToken> {
        let now = crate::clock::coarse_now();
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

    /// Record a fetch's outcome, wake its waiters, and return the token (or error) it made.
    pub(crate) fn complete(
        &self,
        mut ticket: Ticket,
        fetched: Result<Fetched>,
        now: Instant,
    ) -> Result<AccessToken> {
        let result = fetched.map(|f| {
            let timing = Timing::new(
                f.issued,
                f.lifetime,
                self.policy.refresh_before,
                random_unit(),
            );
            AccessToken::new(f.value, f.granted_scope, timing)
        });
        ticket.done = true;
        self.finish(&ticket, result, now)
    }

    fn finish(
        &self,
        ticket: &Ticket,
        result: Result<AccessToken>,
        now: Instant,
    ) -> Result<AccessToken> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let current = state.generation == ticket.generation;
        if let Some(slot) = state.find(&ticket.slot) {
            if slot.flight == Some(ticket.flight) {
                slot.flight = None;
            }
            if slot
                .outcome
                .as_ref()
                .is_none_or(|(id, _)| *id < ticket.flight)
            {
                slot.outcome = Some((ticket.flight, result.clone()));
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
                        let wait = if error.is_transient() {
                            backoff(&self.policy.retry, slot.failures, error.retry_after())
                        } else {
                            self.policy.error_cooldown
                        };
                        slot.failure = Some((error.clone(), now + wait));
                        slot.retry_at = Some(now + wait);
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

    /// Evict `token` wherever it is cached (all tokens when `None`); true if one was evicted.
    /// A token that is no longer current is left alone, so many requests failing with the
    /// same old token cause one refresh, not one each.
    pub(crate) fn invalidate(&self, token: Option<&str>) -> Vec<AccessToken> {
        let mut state = self.state.lock();
        let mut evicted = Vec::new();
        for slot in state.slots_mut() {
            let matches = match (&slot.token, token) {
                (Some(current), Some(t)) => current.same_as(t),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if matches {
                evicted.extend(slot.evict());
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

    /// Take the state lock for a fork (see `fork.rs`); released by `fork_unlock`.
    ///
    /// # Safety
    /// Only from the `pthread_atfork` prepare handler.
    pub(crate) unsafe fn fork_lock(&self) {
        // SAFETY: paired with `fork_unlock` in the parent or child handler.
        unsafe { self.state.fork_lock() };
    }

    /// Release the fork lock; in the child, first forget fetches that no thread will finish.
    ///
    /// # Safety
    /// Only from the `pthread_atfork` parent/child handler, after `fork_lock`.
    pub(crate) unsafe fn fork_unlock(&self, in_child: bool) {
        if in_child {
            // SAFETY: this thread holds the lock (taken in `fork_lock`).
            let state = unsafe { self.state.fork_data() };
            for slot in state.slots_mut() {
                slot.flight = None;
            }
        }
        // SAFETY: locked by `fork_lock` on this thread.
        unsafe { self.state.fork_unlock() };
    }
}

impl State {
    fn slots_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        std::iter::once(&mut self.default).chain(self.keyed.iter_mut())
    }

    fn find(&mut self, slot: &SlotRef) -> Option<&mut Slot> {
        match slot {
            SlotRef::Default => Some(&mut self.default),
            SlotRef::Keyed(key) => self.keyed.iter_mut().find(|s| s.key == *key),
        }
    }

    /// The slot for `key`, created if needed; the least recently used idle keyed slot is
    /// evicted when there are too many.
    fn slot(&mut self, key: Option<&SlotKey>, max_keyed: usize) -> (&mut Slot, SlotRef) {
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

    fn start(&mut self, slot: SlotRef, cache: &TokenCache) -> Ticket {
        let flight = self.next_flight;
        self.next_flight += 1;
        if let Some(s) = self.find(&slot) {
            s.flight = Some(flight);
        }
        Ticket {
            slot,
            flight,
            generation: self.generation,
            done: false,
            cache,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> TokenCache {
        TokenCache::new(
            SlotKey::default(),
            CachePolicy {
                refresh_before: Duration::from_secs(300),
                error_cooldown: Duration::from_secs(5),
                retry: RetryPolicy {
                    max_attempts: 3,
                    base_delay: Duration::from_millis(100),
                    max_delay: Duration::from_secs(1),
                },
                max_keyed_slots: 2,
            },
        )
    }

    fn fetched(value: &str, issued: Instant, lifetime: u64) -> Result<Fetched> {
        Ok(Fetched {
            value: value.into(),
            lifetime: Duration::from_secs(lifetime),
            issued,
            granted_scope: None,
        })
    }

    fn ticket(l: Lookup) -> Ticket {
        match l {
            Lookup::Fetch(t) | Lookup::Refresh(_, t) => t,
            _ => panic!("expected a ticket"),
        }
    }

    #[test]
    fn cold_fetch_then_hits_then_refresh_window_then_stale() {
        let c = cache();
        let t0 = Instant::now();
        let t = ticket(c.lookup(None, t0));
        // A second caller while the fetch runs waits for it.
        assert!(matches!(c.lookup(None, t0), Lookup::Wait(_)));
        let tok = c.complete(t, fetched("a", t0, 3600), t0).unwrap();
        assert_eq!(tok.as_str(), "a");
        assert!(
            matches!(c.lookup(None, t0 + Duration::from_secs(100)), Lookup::Fresh(t) if t.as_str() == "a")
        );
        // In the refresh window: the token plus exactly one refresh ticket.
        let at = t0 + Duration::from_secs(3400);
        let refresh = match c.lookup(None, at) {
            Lookup::Refresh(t, ticket) => {
                assert_eq!(t.as_str(), "a");
                ticket
            }
            _ => panic!("expected a refresh"),
        };
        assert!(matches!(c.lookup(None, at), Lookup::Fresh(_)));
        // The refresh fails: old token keeps serving, reported stale once.
        let err = Error::new(ErrorKind::Server, "down");
        assert!(c.complete(refresh, Err(err), at).is_err());
        let after = at + Duration::from_millis(1);
        assert!(matches!(c.lookup(None, after), Lookup::ServeStale(t) if t.as_str() == "a"));
        assert!(matches!(c.lookup(None, after), Lookup::Fresh(_)));
        // Past usable_until with no flight and a remembered failure: the failure, at once.
        let past = t0 + Duration::from_secs(3580);
        match c.lookup(None, past) {
            Lookup::Failed(e) => assert_eq!(e.kind(), ErrorKind::Server),
            Lookup::Fetch(_) => {} // backoff already elapsed: a new fetch is right too
            _ => panic!("unexpected decision"),
        }
    }

    #[test]
    fn hard_failures_are_remembered_for_the_cooldown() {
        let c = cache();
        let t0 = Instant::now();
        let t = ticket(c.lookup(None, t0));
        let err = Error::new(ErrorKind::InvalidClient, "bad secret");
        assert!(c.complete(t, Err(err), t0).is_err());
        assert!(
            matches!(c.lookup(None, t0 + Duration::from_secs(4)), Lookup::Failed(e) if e.kind() == ErrorKind::InvalidClient)
        );
        assert!(matches!(
            c.lookup(None, t0 + Duration::from_secs(6)),
            Lookup::Fetch(_)
        ));
    }

    #[test]
    fn invalidate_evicts_only_the_current_token() {
        let c = cache();
        let t0 = Instant::now();
        let t = ticket(c.lookup(None, t0));
        c.complete(t, fetched("new", t0, 3600), t0).unwrap();
        assert!(c.invalidate(Some("old")).is_empty());
        assert!(matches!(c.lookup(None, t0), Lookup::Fresh(_)));
        assert_eq!(c.invalidate(Some("new")).len(), 1);
        assert!(matches!(c.lookup(None, t0), Lookup::Fetch(_)));
    }

    #[test]
    fn rotation_discards_fetches_of_the_old_credential() {
        let c = cache();
        let t0 = Instant::now();
        let old = ticket(c.lookup(None, t0));
        c.rotate(|| Ok(())).unwrap();
        let new = ticket(c.lookup(None, t0));
        c.complete(old, fetched("old-secret-token", t0, 3600), t0)
            .unwrap();
        assert!(
            matches!(c.lookup(None, t0), Lookup::Wait(_)),
            "old result not stored"
        );
        c.complete(new, fetched("new-secret-token", t0, 3600), t0)
            .unwrap();
        assert!(matches!(c.lookup(None, t0), Lookup::Fresh(t) if t.as_str() == "new-secret-token"));
    }

    #[test]
    fn abandoned_tickets_release_waiters() {
        let c = cache();
        let t0 = Instant::now();
        let t = ticket(c.lookup(None, t0));
        let w = match c.lookup(None, t0) {
            Lookup::Wait(w) => w,
            _ => panic!("expected wait"),
        };
        drop(t);
        let e = c
            .wait(w, Instant::now() + Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic);
    }

    #[test]
    fn zero_lifetime_tokens_are_used_once_never_cached() {
        let c = cache();
        let t0 = Instant::now();
        let t = ticket(c.lookup(None, t0));
        assert_eq!(
            c.complete(t, fetched("once", t0, 0), t0).unwrap().as_str(),
            "once"
        );
        assert!(matches!(c.lookup(None, t0), Lookup::Fetch(_)));
    }

    #[test]
    fn keyed_slots_are_bounded_lru() {
        let c = cache();
        let t0 = Instant::now();
        let key = |s: &str| crate::token::TokenRequest::new().scope(s).key().clone();
        for s in ["a", "b", "c"] {
            let t = ticket(c.lookup(Some(&key(s)), t0));
            c.complete(t, fetched(s, t0, 3600), t0).unwrap();
        }
        // "a" was least recently used and evicted; "b" and "c" are cached.
        assert!(matches!(c.lookup(Some(&key("c")), t0), Lookup::Fresh(t) if t.as_str() == "c"));
        assert!(matches!(c.lookup(Some(&key("b")), t0), Lookup::Fresh(t) if t.as_str() == "b"));
        assert!(matches!(c.lookup(Some(&key("a")), t0), Lookup::Fetch(_)));
    }
}
