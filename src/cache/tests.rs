//! Unit tests of the cache decisions, without HTTP.

use super::*;
use crate::oauth::token::TokenType;

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
                max_retry_after: Duration::from_secs(2),
            },
            max_keyed_slots: 2,
        },
    )
}

fn fetched(value: &str, issued: Instant, lifetime: u64) -> Result<Fetched> {
    Ok(Fetched {
        value: crate::secret::Secret::new(value),
        token_type: TokenType::Bearer,
        lifetime: Duration::from_secs(lifetime),
        issued,
        granted_scope: None,
    })
}

fn ticket(l: Lookup<'_>) -> Ticket<'_> {
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
    let tok = t.complete(fetched("a", t0, 3600), t0).unwrap();
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
    // The refresh fails: old token keeps serving, reported stale once. The server's
    // Retry-After fixes the backoff (full jitter alone may draw less than the 1 ms below,
    // and the next lookup would then start a refresh instead).
    let err = Error::new(ErrorKind::Server, "down").with_retry_after(Some(Duration::from_secs(1)));
    assert!(refresh.complete(Err(err), at).is_err());
    let after = at + Duration::from_millis(1);
    assert!(matches!(c.lookup(None, after), Lookup::ServeStale(t) if t.as_str() == "a"));
    assert!(matches!(c.lookup(None, after), Lookup::Fresh(_)));
    // Past usable_until with no flight and a remembered failure: the failure, at once.
    let past = t0 + Duration::from_secs(3580);
    match c.lookup(None, past) {
        Lookup::Failed(e) => assert_eq!(e.kind(), ErrorKind::Server),
        Lookup::Fetch(_) => {} // backoff already elapsed: a new fetch is right too
        _ => panic!("unexpected decision"),
    };
}

#[test]
fn hard_failures_are_remembered_for_the_cooldown() {
    let c = cache();
    let t0 = Instant::now();
    let t = ticket(c.lookup(None, t0));
    let err = Error::new(ErrorKind::InvalidClient, "bad secret");
    assert!(t.complete(Err(err), t0).is_err());
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
    t.complete(fetched("new", t0, 3600), t0).unwrap();
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
    old.complete(fetched("old-secret-token", t0, 3600), t0)
        .unwrap();
    assert!(
        matches!(c.lookup(None, t0), Lookup::Wait(_)),
        "old result not stored"
    );
    new.complete(fetched("new-secret-token", t0, 3600), t0)
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
        t.complete(fetched("once", t0, 0), t0).unwrap().as_str(),
        "once"
    );
    assert!(matches!(c.lookup(None, t0), Lookup::Fetch(_)));
}

#[test]
fn keyed_slots_are_bounded_lru() {
    let c = cache();
    let t0 = Instant::now();
    let key = |s: &str| crate::oauth::TokenRequest::new().scope(s).key().clone();
    for s in ["a", "b", "c"] {
        let t = ticket(c.lookup(Some(&key(s)), t0));
        t.complete(fetched(s, t0, 3600), t0).unwrap();
    }
    // "a" was least recently used and evicted; "b" and "c" are cached.
    assert!(matches!(c.lookup(Some(&key("c")), t0), Lookup::Fresh(t) if t.as_str() == "c"));
    assert!(matches!(c.lookup(Some(&key("b")), t0), Lookup::Fresh(t) if t.as_str() == "b"));
    assert!(matches!(c.lookup(Some(&key("a")), t0), Lookup::Fetch(_)));
}

#[test]
fn a_detached_flight_completes_on_another_thread() {
    let c = cache();
    let t0 = Instant::now();
    let flight = ticket(c.lookup(None, t0)).detach();
    let w = match c.lookup(None, t0) {
        Lookup::Wait(w) => w,
        _ => panic!("the detached flight is still in progress"),
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            c.resume(flight)
                .complete(fetched("bg", t0, 3600), Instant::now())
                .unwrap();
        });
    });
    let tok = c.wait(w, Instant::now() + Duration::from_secs(1)).unwrap();
    assert_eq!(tok.as_str(), "bg");
}

#[test]
fn a_resumed_flight_dropped_uncompleted_releases_waiters() {
    let c = cache();
    let t0 = Instant::now();
    let flight = ticket(c.lookup(None, t0)).detach();
    let w = match c.lookup(None, t0) {
        Lookup::Wait(w) => w,
        _ => panic!("expected wait"),
    };
    drop(c.resume(flight));
    let e = c
        .wait(w, Instant::now() + Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panic);
    assert!(matches!(
        c.lookup(None, Instant::now()),
        Lookup::Failed(_) | Lookup::Fetch(_)
    ));
}

/// Lock-free hits so far (the hit path's own counters, not the locked ones).
fn fast_hits(c: &TokenCache) -> u64 {
    c.fast_hits
        .iter()
        .map(|count| count.0.load(Ordering::Relaxed))
        .sum()
}

fn filled(value: &str) -> TokenCache {
    let c = cache();
    let now = Instant::now();
    ticket(c.lookup(None, now))
        .complete(fetched(value, now, 3600), now)
        .unwrap();
    c
}

#[test]
fn a_thread_copies_four_tokens_and_serves_the_rest_through_the_lock() {
    if clock::coarse_deadline(Instant::now() + Duration::from_secs(60)) == 0 {
        return; // no coarse clock on this platform: every hit takes the lock
    }
    // A new thread, so that its table of copies starts empty.
    std::thread::spawn(|| {
        let mut caches: Vec<TokenCache> = (0..6).map(|i| filled(&format!("t{i}"))).collect();
        for _ in 0..3 {
            for c in &caches {
                assert!(c.fresh_default().is_some());
            }
        }
        // The first round copied the first four tokens; later rounds hit those copies.
        let fast: Vec<u64> = caches.iter().map(fast_hits).collect();
        assert_eq!(fast, [2, 2, 2, 2, 0, 0]);

        // A dropped cache frees its entry: the next cache that misses takes it.
        caches.remove(0);
        for _ in 0..2 {
            for c in &caches {
                assert!(c.fresh_default().is_some());
            }
        }
        let fast: Vec<u64> = caches.iter().map(fast_hits).collect();
        assert_eq!(fast, [4, 4, 4, 1, 0]);

        // So does a replaced token: its cache's next miss copies the new one.
        let evicted = caches[0].invalidate(None);
        assert_eq!(evicted.len(), 1);
        let now = Instant::now();
        ticket(caches[0].lookup(None, now))
            .complete(fetched("t1-renewed", now, 3600), now)
            .unwrap();
        let hit = caches[0].fresh_default().unwrap();
        assert_eq!(hit.as_str(), "t1-renewed");
        assert_eq!(fast_hits(&caches[0]), 4, "a miss: the copy is made now");
        assert_eq!(caches[0].fresh_default().unwrap().as_str(), "t1-renewed");
        assert_eq!(fast_hits(&caches[0]), 5);
    })
    .join()
    .unwrap();
}
