//! `Client::health` through a refresh failure and the recovery: ok → degraded (serving while
//! refreshes fail) → failing (no usable token) → ok, all read from memory.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokenward::{Client, ErrorKind, Health, HealthState};
use tokenward_mock::MockServer;

/// Poll `health` until `done` holds; the bound only keeps a broken build from hanging.
fn wait_for(client: &Client, what: &str, done: impl Fn(&Health) -> bool) -> Health {
    let bound = Instant::now() + Duration::from_secs(30);
    loop {
        let health = client.health();
        if done(&health) {
            return health;
        }
        assert!(Instant::now() < bound, "never {what}: {health:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn health_follows_a_refresh_failure_and_the_recovery() {
    let mock = MockServer::start();
    // 8 s tokens: refreshes are due after 4 s, the token is unusable after 7.2 s.
    mock.configure(json!({ "ttl_secs": 8 }));
    let client = common::client(
        &mock,
        json!({ "refresh_mode": "inline", "refresh_before_secs": 3600,
                "retry": { "max_attempts": 1, "base_delay_ms": 10, "max_delay_ms": 20 } }),
    );

    let fresh = client.health();
    assert_eq!(
        fresh.state,
        HealthState::Ok,
        "nothing asked, nothing failed"
    );
    assert_eq!((fresh.remaining, fresh.next_refresh), (None, None));
    assert_eq!(fresh.consecutive_failures, 0);
    assert!(fresh.last_error.is_none());

    client.token().unwrap();
    let ok = client.health();
    assert_eq!(ok.state, HealthState::Ok);
    assert!(ok.remaining.unwrap() > Duration::ZERO);
    assert!(ok.next_refresh.unwrap() < ok.remaining.unwrap());

    // From now on the identity provider is down.
    mock.push_fault(json!({ "count": "forever", "status": 503, "body": "down" }));
    wait_for(&client, "due for a refresh", |h| {
        h.next_refresh == Some(Duration::ZERO)
    });
    let before = mock.token_requests();
    client.token().expect("the current token keeps serving");
    assert_eq!(mock.token_requests(), before + 1, "one refresh was tried");
    let degraded = client.health();
    assert_eq!(degraded.state, HealthState::Degraded, "{degraded:?}");
    assert_eq!(degraded.consecutive_failures, 1);
    assert!(degraded.remaining.is_some());
    let error = degraded.last_error.as_ref().unwrap();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(error.http_status(), Some(503));

    let failing = wait_for(&client, "failing", |h| h.state == HealthState::Failing);
    assert_eq!((failing.remaining, failing.next_refresh), (None, None));
    let e = client.token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    let failing = client.health();
    assert_eq!(failing.state, HealthState::Failing);
    assert_eq!(failing.consecutive_failures, 2);

    // Health reads memory only: probing asks the identity provider nothing.
    let asked = mock.token_requests();
    for _ in 0..100 {
        client.health();
    }
    assert_eq!(mock.token_requests(), asked);

    let json: Value = serde_json::from_str(&failing.to_json()).unwrap();
    assert_eq!(json["state"], "failing");
    assert_eq!(json["remaining_ms"], Value::Null);
    assert_eq!(json["consecutive_failures"], 2);
    assert_eq!(json["last_error"]["kind"], "server");
    assert_eq!(json["last_error"]["http_status"], 503);
    assert!(json["last_error"]["message"]
        .as_str()
        .unwrap()
        .contains("HTTP 503"));

    // The provider recovers; after the short backoff the next call fetches.
    mock.reset();
    let bound = Instant::now() + Duration::from_secs(30);
    while client.token().is_err() {
        assert!(Instant::now() < bound, "never recovered");
        std::thread::sleep(Duration::from_millis(20));
    }
    let recovered = client.health();
    assert_eq!(recovered.state, HealthState::Ok);
    assert_eq!(recovered.consecutive_failures, 0);
    assert!(recovered.remaining.is_some());
    assert_eq!(
        recovered.last_error.map(|e| e.kind()),
        Some(ErrorKind::Server),
        "the last failure stays visible after the recovery"
    );
    let json: Value = serde_json::from_str(&client.health().to_json()).unwrap();
    assert_eq!(json["state"], "ok");
    assert!(json["remaining_ms"].as_u64().unwrap() > 0);
}

#[test]
fn a_hard_failure_before_any_token_is_failing() {
    let mock = MockServer::start();
    let client = common::client(&mock, json!({ "client_secret": "wr0ng-s3cret-value" }));
    assert_eq!(client.token().unwrap_err().kind(), ErrorKind::InvalidClient);
    let health = client.health();
    assert_eq!(health.state, HealthState::Failing);
    assert_eq!(health.consecutive_failures, 1);
    let message = health.last_error.unwrap().message().to_string();
    assert!(!message.contains("wr0ng-s3cret"), "no secret in {message}");
}
