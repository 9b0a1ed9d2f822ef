//! Concurrency claims, proven by hammering: single flight, refresh-ahead without waiting,
//! no expired tokens under short TTLs, one refresh per invalidated token, keyed slots.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{claims, client, Recorder};
use serde_json::json;
use tokenward::{EventKind, TokenRequest};
use tokenward_mock::MockServer;

fn on_threads<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect()
}

#[test]
fn sixty_four_threads_on_a_cold_cache_make_one_request() {
    let mock = MockServer::start();
    mock.configure(json!({ "token_delay_ms": 200 }));
    let c = client(&mock, json!({}));
    let tokens = on_threads(64, move |_| c.token().expect("token").as_str().to_string());
    assert_eq!(mock.token_requests(), 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

#[test]
fn the_refresh_window_serves_the_old_token_while_one_refresh_runs() {
    let mock = MockServer::start();
    mock.configure(json!({ "ttl_secs": 6 }));
    let c = client(&mock, json!({ "refresh_before_secs": 3 }));
    let rec = Recorder::attach(&c);
    let issued = Instant::now();
    let old = c.token().unwrap();
    mock.configure(json!({ "token_delay_ms": 2000 }));
    // refresh_at is 3 s before expiry minus up to 0.3 s of jitter; usable until 5.4 s.
    thread::sleep(Duration::from_millis(3100).saturating_sub(issued.elapsed()));
    // Calls from 3.1 s to ~4.6 s: the refresh (2 s at the mock) is in flight the whole time,
    // so a caller that waited on it would see the new token. Every call sees the old one.
    let served = on_threads(8, {
        let c = c.clone();
        move |_| {
            let mut seen = Vec::new();
            let until = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < until {
                seen.push(
                    c.token()
                        .expect("no caller gets an error")
                        .as_str()
                        .to_string(),
                );
                thread::sleep(Duration::from_millis(5));
            }
            seen
        }
    });
    for seen in &served {
        assert!(
            seen.iter().all(|t| t == old.as_str()),
            "only the old token during the refresh"
        );
    }
    // The refresh finishes at ~5.1 s, before the old token stops being usable (5.4 s).
    thread::sleep(Duration::from_millis(5300).saturating_sub(issued.elapsed()));
    let new = c.token().unwrap();
    assert_ne!(new.as_str(), old.as_str());
    assert_eq!(mock.token_requests(), 2, "exactly one refresh");
    assert_eq!(c.stats().background_refreshes, 1);
    assert!(rec.kinds().contains(&EventKind::TokenAcquired));
}

#[test]
fn soak_with_two_second_tokens_never_serves_an_expired_token() {
    let mock = Arc::new(MockServer::start());
    mock.configure(json!({ "ttl_secs": 2 }));
    let c = client(&mock, json!({}));
    let run = Duration::from_secs(10);
    let checks = on_threads(4, {
        let (c, mock) = (c.clone(), mock.clone());
        move |_| {
            let until = Instant::now() + run;
            let mut checks = 0u64;
            while Instant::now() < until {
                let t = c.token().expect("token");
                assert!(
                    mock.is_token_valid(t.as_str()),
                    "served a token the mock considers expired"
                );
                checks += 1;
                thread::sleep(Duration::from_micros(500));
            }
            checks
        }
    });
    let requests = mock.token_requests();
    // A 2 s token is refreshed from 1 s (minus jitter): about 10 refreshes in 10 s.
    assert!(
        (8..=14).contains(&requests),
        "token requests: {requests} (no storm, no starvation)"
    );
    assert!(checks.iter().sum::<u64>() > 1000);
}

#[test]
fn thirty_two_threads_invalidating_the_same_token_cause_one_refresh() {
    let mock = MockServer::start();
    let c = client(&mock, json!({}));
    let old = c.token().unwrap().as_str().to_string();
    mock.configure(json!({ "token_delay_ms": 100 }));
    let tokens = on_threads(32, {
        let c = c.clone();
        move |_| {
            c.invalidate(Some(&old));
            c.token().unwrap().as_str().to_string()
        }
    });
    assert_eq!(mock.token_requests(), 2);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(c.stats().invalidations, 1);
}

#[test]
fn a_failing_background_refresh_keeps_the_old_token_serving() {
    let mock = MockServer::start();
    // Refresh window from 2.25–2.5 s (3 s before expiry, at most half of 5 s, minus up to
    // 10 % jitter); usable until 4 s (a margin of at least 1 s).
    mock.configure(json!({ "ttl_secs": 5 }));
    let c = client(
        &mock,
        json!({ "refresh_before_secs": 3, "retry": { "max_attempts": 1 } }),
    );
    let rec = Recorder::attach(&c);
    let issued = Instant::now();
    let old = c.token().unwrap();
    mock.push_fault(json!({ "target": "token", "count": 100, "status": 500, "body": "{\"error\":\"server_error\"}" }));
    thread::sleep(Duration::from_millis(2550).saturating_sub(issued.elapsed()));
    let deadline = Instant::now() + Duration::from_millis(900);
    while Instant::now() < deadline {
        assert_eq!(c.token().expect("still usable").as_str(), old.as_str());
        thread::sleep(Duration::from_millis(20));
    }
    let kinds = rec.kinds();
    assert!(kinds.contains(&EventKind::RefreshFailed), "{kinds:?}");
    assert!(kinds.contains(&EventKind::ServedStale), "{kinds:?}");
    assert!(c.stats().failures >= 1);
}

#[test]
fn concurrent_token_for_never_mixes_up_combinations() {
    let mock = MockServer::start();
    mock.configure(json!({ "token_delay_ms": 150 }));
    let c = client(&mock, json!({}));
    let combos = [
        TokenRequest::new().scope("EventsApi"),
        TokenRequest::new().scope("OrdersApi read"),
        TokenRequest::new()
            .scope("EventsApi")
            .resource("urn:orders"),
        TokenRequest::new().audience("https://billing.example.com"),
    ];
    let results = on_threads(16, {
        let c = c.clone();
        let combos = combos.clone();
        move |i| {
            let req = &combos[i % 4];
            (i % 4, c.token_for(req).expect("token").as_str().to_string())
        }
    });
    for (i, token) in &results {
        let cl = claims(token);
        let req = &combos[*i];
        assert_eq!(
            cl.get("scope").and_then(|v| v.as_str()).map(str::to_string),
            req.scope_param(),
            "{cl}"
        );
        assert_eq!(
            cl.get("aud").and_then(|v| v.as_str()),
            req.audience_param(),
            "{cl}"
        );
        assert_eq!(
            cl.get("resource").and_then(|v| v.as_str()),
            req.resource_param(),
            "{cl}"
        );
    }
    assert_eq!(mock.token_requests(), 4, "each combination fetched once");
    // Same scopes in another order share the slot.
    let again = c
        .token_for(&TokenRequest::new().scope("read OrdersApi"))
        .unwrap();
    assert_eq!(claims(again.as_str())["scope"], "OrdersApi read");
    assert_eq!(mock.token_requests(), 4);
}

#[test]
fn waiters_share_a_failed_fetch_and_its_error() {
    let mock = MockServer::start();
    mock.configure(json!({ "token_delay_ms": 200 }));
    mock.push_fault(json!({ "target": "token", "count": 1, "status": 400, "body": "{\"error\":\"invalid_scope\",\"error_description\":\"nope\"}", "delay_ms": 200 }));
    let c = client(&mock, json!({}));
    let kinds = on_threads(16, move |_| c.token().unwrap_err().kind());
    assert!(kinds
        .iter()
        .all(|k| *k == tokenward::ErrorKind::InvalidScope));
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn inline_refresh_mode_refreshes_on_the_calling_thread() {
    let mock = MockServer::start();
    mock.configure(json!({ "ttl_secs": 4 }));
    let c = client(
        &mock,
        json!({ "refresh_before_secs": 2, "refresh_mode": "inline" }),
    );
    let issued = Instant::now();
    let old = c.token().unwrap();
    thread::sleep(Duration::from_millis(2100).saturating_sub(issued.elapsed()));
    let new = c.token().unwrap();
    assert_ne!(
        new.as_str(),
        old.as_str(),
        "the caller that noticed refreshed inline"
    );
    assert_eq!(c.stats().background_refreshes, 0);
    assert_eq!(mock.token_requests(), 2);
}

/// Hits are answered from a per-thread copy of the token; an eviction on another thread
/// (invalidate, secret rotation) must reach every thread's next call.
#[test]
fn evictions_reach_every_threads_hit_path() {
    let mock = MockServer::start();
    let c = client(&mock, json!({}));
    let first = c.token().unwrap().as_str().to_string();
    const THREADS: usize = 4;
    let phase = Arc::new(Barrier::new(THREADS + 1));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (c, phase) = (c.clone(), phase.clone());
            thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..2 {
                    // Two hits: the first makes this thread's copy, the second uses it.
                    seen.push(c.token().unwrap().as_str().to_string());
                    seen.push(c.token().unwrap().as_str().to_string());
                    phase.wait(); // the main thread evicts
                    phase.wait();
                }
                seen.push(c.token().unwrap().as_str().to_string());
                seen
            })
        })
        .collect();
    phase.wait();
    assert!(c.invalidate(Some(&first)));
    phase.wait();
    phase.wait();
    c.set_client_secret("demo-secret").unwrap();
    phase.wait();
    let seen: Vec<Vec<String>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    for tokens in &seen {
        assert_eq!(tokens[0], first);
        assert_eq!(tokens[1], first);
        assert_ne!(
            tokens[2], first,
            "a thread served its copy after invalidate"
        );
        assert_eq!(tokens[2], tokens[3]);
        assert_ne!(
            tokens[4], tokens[2],
            "a thread served its copy after rotation"
        );
    }
    assert_eq!(mock.stats().tokens_issued, 3, "one fetch per eviction");
}
