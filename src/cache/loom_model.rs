//! A `loom` model of the cache's concurrency core: every interleaving of a few threads (up
//! to a preemption bound) is run, with the cache's locks, condition variable, atomics and
//! thread-locals replaced by loom's (`crate::sync` under `cfg(loom)`).
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom`
//! (scripts/test-all.sh does). `LOOM_MAX_PREEMPTIONS` overrides the bound set here (4):
//! on the 2-core reference VM all models take ~1 s at 4, ~10 s at 6, and ~70 s unbounded
//! (every interleaving).
//!
//! The model has teeth (each checked by hand): dropping the hit path's serial check in
//! `hit.rs` (finding an entry by `now < e.fresh_until` alone) makes
//! `loom_hit_path_never_serves_a_token_after_its_eviction` fail, as the reader serves its
//! private copy of a token evicted before the call; moving `finish`'s `notify_all` before
//! it records the outcome makes the single-flight and invalidation models report a
//! deadlock (a waiter woken too early sleeps again and nobody wakes it); and a cache drop
//! that does not publish 0 makes `loom_a_dropped_caches_copies_go_by_the_next_miss` fail
//! when the other thread drops the cache (this thread's copy still looks in use).
//!
//! The HTTP request is not modelled: a fetch is the caller completing its ticket with a
//! result it makes up. Test bookkeeping (fetch counters) uses `std` atomics: loom runs a
//! model's threads one at a time on one OS thread, and these are not what is under test.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use loom::sync::atomic::AtomicBool;
use loom::thread;

use super::*;

/// The bound on preemptions per execution: all models together finish in about a second on
/// two cores, and each race below needs at most two preemptions to show.
const PREEMPTIONS: usize = 4;

fn model(f: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    builder.check(f);
}

fn cache() -> Arc<TokenCache> {
    Arc::new(TokenCache::new(
        SlotKey::default(),
        CachePolicy {
            refresh_before: Duration::from_secs(300),
            error_cooldown: Duration::from_secs(5),
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(1),
                max_retry_after: Duration::from_secs(2),
            },
            max_keyed_slots: 2,
        },
    ))
}

/// A token the "server" issued at `issued`, valid for an hour: fresh by the real clock for
/// the whole run (the hit path reads the real coarse clock), refreshed from 3 270–3 300 s
/// on, usable until 3 570 s.
fn issued(value: &str, issued: Instant) -> Result<Fetched> {
    Ok(Fetched {
        value: crate::secret::Secret::new(value),
        token_type: crate::oauth::token::TokenType::Bearer,
        lifetime: Duration::from_secs(3600),
        issued,
        granted_scope: None,
    })
}

/// Far enough that no wait in a model times out (loom's timed waits never do anyway: a
/// wait nobody ends is reported as a deadlock).
fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// What `Client::token` does with the cache's decisions, without HTTP: the lock-free hit
/// path first, then `lookup`; a fetch counts itself in `fetches` and produces `fetch(n)`
/// for the `n`-th fetch. Refreshes are not expected here (tokens stay fresh).
fn token(
    cache: &TokenCache,
    fetches: &AtomicUsize,
    fetch: impl Fn(usize) -> Result<Fetched>,
) -> Result<AccessToken> {
    if let Some(token) = cache.fresh_default() {
        return Ok(token);
    }
    let now = Instant::now();
    match cache.lookup(None, now) {
        Lookup::Fresh(token) => Ok(token),
        Lookup::Fetch(ticket) => {
            let n = fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ticket.complete(fetch(n), now)
        }
        Lookup::Wait(waiter) => cache.wait(waiter, deadline()),
        Lookup::Failed(error) => Err(error),
        Lookup::ServeStale(_) | Lookup::Refresh(..) => panic!("no refresh window here"),
    }
}

/// Fill the cache with `value` (one fetch, on the calling thread).
fn prime(cache: &TokenCache, value: &str, at: Instant) -> AccessToken {
    match cache.lookup(None, at) {
        Lookup::Fetch(ticket) => ticket.complete(issued(value, at), at).unwrap(),
        _ => panic!("an empty cache asks for a fetch"),
    }
}

#[test]
fn loom_single_flight_waiters_share_the_one_token() {
    model(|| {
        let cache = cache();
        let fetches = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let (cache, fetches) = (cache.clone(), fetches.clone());
                thread::spawn(move || {
                    token(&cache, &fetches, |n| issued(&format!("token-{n}"), t0)).unwrap()
                })
            })
            .collect();
        let mine = token(&cache, &fetches, |n| issued(&format!("token-{n}"), t0)).unwrap();
        for caller in callers {
            let theirs = caller.join().unwrap();
            assert_eq!(
                theirs.serial(),
                mine.serial(),
                "every caller gets the one token"
            );
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(mine.as_str(), "token-0");
    });
}

#[test]
fn loom_single_flight_waiters_share_the_one_error() {
    model(|| {
        let cache = cache();
        let fetches = Arc::new(AtomicUsize::new(0));
        let refused = |_| Err(Error::new(ErrorKind::InvalidClient, "refused"));
        let caller = {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            thread::spawn(move || token(&cache, &fetches, refused).unwrap_err())
        };
        let mine = token(&cache, &fetches, refused).unwrap_err();
        let theirs = caller.join().unwrap();
        // A waiter gets the fetch's outcome; a later caller the remembered hard failure.
        assert_eq!(mine.kind(), ErrorKind::InvalidClient);
        assert_eq!(theirs.kind(), ErrorKind::InvalidClient);
        assert_eq!(fetches.load(std::sync::atomic::Ordering::Relaxed), 1);
    });
}

/// Callers in the refresh window: each gets a usable token at once (never waits), exactly
/// one of them starts a refresh, which runs on its own thread (as with `refresh_mode`
/// `background`). A failed refresh leaves the old token serving, reported stale once.
fn refresh_window(refresh_fails: bool) {
    model(move || {
        let cache = cache();
        let t0 = Instant::now();
        let old = prime(&cache, "old", t0);
        let window = t0 + Duration::from_secs(3400);
        // What one caller got: the token, whether it was reported stale, and the refresh it
        // started, if it did.
        let caller = |cache: Arc<TokenCache>| {
            move || match cache.lookup(None, window) {
                Lookup::Fresh(token) => (token, false, None),
                Lookup::ServeStale(token) => (token, true, None),
                Lookup::Refresh(token, ticket) => {
                    let flight = ticket.detach();
                    let background = {
                        let cache = cache.clone();
                        thread::spawn(move || {
                            let outcome = if refresh_fails {
                                Err(Error::new(ErrorKind::Server, "down"))
                            } else {
                                issued("new", window)
                            };
                            let _ = cache.resume(flight).complete(outcome, window);
                        })
                    };
                    (token, false, Some(background))
                }
                _ => panic!("a caller in the refresh window never waits or fails"),
            }
        };
        let other = thread::spawn(caller(cache.clone()));
        let mut calls = vec![caller(cache.clone())(), other.join().unwrap()];
        let refreshes: Vec<_> = calls.iter_mut().filter_map(|c| c.2.take()).collect();
        assert_eq!(refreshes.len(), 1, "exactly one refresh");
        for refresh in refreshes {
            refresh.join().unwrap();
        }
        calls.push(caller(cache.clone())());
        for (token, _, refresh) in &calls {
            assert!(refresh.is_none(), "no second refresh before the backoff");
            if refresh_fails || token.serial() == old.serial() {
                assert_eq!(token.serial(), old.serial(), "the old token keeps serving");
            } else {
                assert_eq!(token.as_str(), "new");
            }
        }
        let last = &calls[2].0;
        let stale_reports = calls.iter().filter(|c| c.1).count();
        if refresh_fails {
            assert_eq!(stale_reports, 1, "a failing refresh is reported once");
        } else {
            assert_eq!(last.as_str(), "new", "the refreshed token replaces the old");
            assert_eq!(stale_reports, 0);
        }
    });
}

#[test]
fn loom_refresh_window_serves_while_one_refresh_succeeds() {
    refresh_window(false);
}

#[test]
fn loom_refresh_window_serves_stale_when_the_refresh_fails() {
    refresh_window(true);
}

#[test]
fn loom_invalidate_by_identity_refreshes_once() {
    model(|| {
        let cache = cache();
        let fetches = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let rejected = prime(&cache, "rejected", t0);
        // Two requests were answered 401 for the same token: each invalidates it and asks
        // again.
        let after_401 = |cache: Arc<TokenCache>, fetches: Arc<AtomicUsize>, sent: AccessToken| {
            move || {
                let evicted = cache.invalidate(Some(sent.as_str())).len();
                let token = token(&cache, &fetches, |_| issued("renewed", t0)).unwrap();
                (evicted, token)
            }
        };
        let other = thread::spawn(after_401(cache.clone(), fetches.clone(), rejected.clone()));
        let (my_evictions, mine) = after_401(cache.clone(), fetches.clone(), rejected)();
        let (their_evictions, theirs) = other.join().unwrap();
        assert_eq!(my_evictions + their_evictions, 1, "one eviction");
        assert_eq!(
            fetches.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "one refresh"
        );
        assert_eq!(mine.as_str(), "renewed");
        assert_eq!(theirs.serial(), mine.serial());
    });
}

#[test]
fn loom_hit_path_never_serves_a_token_after_its_eviction() {
    model(|| {
        let cache = cache();
        let t0 = Instant::now();
        let first = prime(&cache, "first", t0);
        let replaced = Arc::new(AtomicBool::new(false));
        // The reader warms its private copy, then calls again once it may have seen the
        // replacement.
        let reader = {
            let (cache, replaced, first) = (cache.clone(), replaced.clone(), first.serial());
            thread::spawn(move || {
                for _ in 0..2 {
                    let token = cache.fresh_default();
                    assert!(token.is_none_or(|t| t.as_str() == "first" || t.as_str() == "second"));
                }
                let saw_replacement = replaced.load(Ordering::Acquire);
                let token = cache.fresh_default();
                if saw_replacement {
                    let token = token.expect("the second token is fresh and published");
                    assert_ne!(token.serial(), first, "served an evicted token");
                    assert_eq!(token.as_str(), "second");
                }
            })
        };
        assert_eq!(cache.invalidate(Some(first.as_str())).len(), 1);
        let now = Instant::now();
        match cache.lookup(None, now) {
            Lookup::Fetch(ticket) => {
                ticket.complete(issued("second", now), now).unwrap();
            }
            _ => panic!("the evicted slot asks for a fetch"),
        }
        replaced.store(true, Ordering::Release);
        reader.join().unwrap();
    });
}

#[test]
fn loom_a_dropped_caches_copies_go_by_the_next_miss() {
    if clock::coarse_deadline(Instant::now() + Duration::from_secs(60)) == 0 {
        return; // no coarse clock on this platform: no per-thread copies are made
    }
    model(|| {
        let t0 = Instant::now();
        let (dropped, kept) = (cache(), cache());
        prime(&dropped, "dropped", t0);
        prime(&kept, "kept", t0);
        // Both threads hit `dropped` (each copies its token), then let go of it: whichever
        // lets go last drops the cache, and the other learns of it only from the 0 that
        // the drop publishes.
        let other = {
            let dropped = dropped.clone();
            thread::spawn(move || {
                assert_eq!(dropped.fresh_default().unwrap().as_str(), "dropped");
                drop(dropped);
            })
        };
        assert_eq!(dropped.fresh_default().unwrap().as_str(), "dropped");
        drop(dropped);
        other.join().unwrap();
        // This thread's copy went with the cache if the drop ran here; else this miss on
        // another cache drops it.
        assert_eq!(kept.fresh_default().unwrap().as_str(), "kept");
        assert_eq!(
            hit::local_copies(),
            1,
            "a dropped cache's copy outlived a miss"
        );
    });
}
