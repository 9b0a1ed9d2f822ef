//! Time against a real provider: tokens whose `exp` is whole seconds and whose
//! `expires_in = exp - floor(now)` are never handed out past `exp`, and a server's
//! `Retry-After` cannot keep a client from refreshing for a day.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{claims, client};
use serde_json::json;
use tokenward_mock::MockServer;

fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
}

/// Sleeps until the wall clock's fraction of a second is at least `phase` (and below
/// `phase + 0.05`), so the token request lands there: the later in its second a provider
/// issues a token, the sooner before "sent + expires_in" it expires.
fn sleep_until_phase(phase: f64) {
    for _ in 0..100 {
        let fraction = wall_now().fract();
        if (phase..phase + 0.05).contains(&fraction) {
            return;
        }
        let wait = (phase - fraction).rem_euclid(1.0);
        std::thread::sleep(Duration::from_secs_f64(wait.min(1.0)));
    }
    panic!("the wall clock never reached phase {phase}");
}

/// One run: a token of `ttl` seconds issued at `phase` of a second, every later token
/// request failing, and calls in a loop until well past the token's `exp`. Returns how
/// many calls got a token, and how late past `exp` any of them was.
fn run(ttl: u64, phase: f64) -> (u64, Vec<f64>) {
    let mock = MockServer::start();
    mock.configure(json!({ "expiry": "wall_clock", "ttl_secs": ttl }));
    mock.push_fault(json!({ "target": "token", "after": 1, "count": "forever", "status": 503 }));
    let c = client(&mock, json!({ "retry": { "max_attempts": 1 } }));
    sleep_until_phase(phase);
    let first = c.token().expect("the first token is issued");
    let exp = claims(first.as_str())["exp"].as_f64().expect("exp");
    let (mut served, mut late) = (0, Vec::new());
    // Bounded by the wall clock: the token lives at most `ttl` seconds.
    while wall_now() < exp + 0.5 {
        if let Ok(token) = c.token() {
            let now = wall_now();
            let exp = claims(token.as_str())["exp"].as_f64().expect("exp");
            if now >= exp {
                late.push(now - exp);
            }
            served += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    (served, late)
}

#[test]
fn no_call_ever_receives_a_token_past_its_exp() {
    // (ttl, phase): late in the second is the case rounding hurts most; early, the least.
    let runs = [(2, 0.6), (3, 0.85), (4, 0.05)];
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|&(ttl, phase)| s.spawn(move || run(ttl, phase)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((ttl, phase), (served, late)) in runs.iter().zip(results) {
        assert!(
            served > 100,
            "ttl {ttl}, phase {phase}: only {served} calls got a token"
        );
        assert!(
            late.is_empty(),
            "ttl {ttl}, phase {phase}: {} of {served} calls got a token past its exp (up to {:.3} s)",
            late.len(),
            late.iter().cloned().fold(0.0, f64::max)
        );
    }
}

#[test]
fn one_retry_after_of_a_day_during_a_background_refresh_does_not_lock_calls_out() {
    let mock = MockServer::start();
    // Refresh from about 1.8 s (2 s before expiry, minus jitter); usable until 3 s.
    mock.configure(json!({ "ttl_secs": 4 }));
    mock.push_fault(json!({
        "target": "token", "after": 1, "count": 1, "status": 429, "retry_after": "86400",
        "body": { "error": "slow_down" },
    }));
    let c = client(
        &mock,
        json!({
            "refresh_before_secs": 2,
            "retry": { "max_attempts": 1, "base_delay_ms": 20, "max_delay_ms": 200, "max_retry_after_ms": 300 },
        }),
    );
    let first = c.token().expect("the first token");
    // Bounded: 500 calls 20 ms apart are 10 s, more than twice the token's lifetime.
    let mut renewed = None;
    for _ in 0..500 {
        if let Ok(token) = c.token() {
            if token.as_str() != first.as_str() {
                renewed = Some(token);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let renewed = renewed.expect("a new token once the remembered Retry-After (capped) passed");
    assert!(mock.is_token_valid(renewed.as_str()));
    assert!(
        mock.token_requests() >= 3,
        "the first token, the 429, the refresh that worked"
    );
}
