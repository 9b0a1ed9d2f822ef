//! Forked workers re-draw their refresh jitter: children of one parent, inheriting its cached
//! token, must not all refresh at the parent's instant (nor at one shared instant of their
//! own). One test per binary: forking while other tests' threads run would muddy the result.

#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tokenward::Client;
use tokenward_mock::MockServer;

/// When `client`'s token is due for refresh, in nanoseconds after `reference`.
fn refresh_point(client: &Client, reference: Instant) -> u128 {
    let (_, fresh_for, _) = client.token_window().expect("a token");
    (reference.elapsed() + fresh_for).as_nanos()
}

#[test]
fn forked_children_get_refresh_points_of_their_own() {
    let mock = MockServer::start();
    // One-hour tokens, refresh 300 s early, jitter up to 30 s of that.
    let client = common::client(&mock, json!({ "refresh_before_secs": 300 }));
    let token = client.token().unwrap().as_str().to_string();
    let reference = Instant::now();
    let parent = refresh_point(&client, reference);

    let dir = std::env::temp_dir().join(format!("tokenward-fork-jitter-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut points = vec![parent];
    for i in 0..6 {
        let out = dir.join(format!("child-{i}"));
        let pid = common::process::fork_child(|| {
            // The same token, with a refresh point of the child's own.
            let same = client.token().is_ok_and(|t| t.as_str() == token);
            let point = refresh_point(&client, reference);
            same && std::fs::write(&out, point.to_string()).is_ok()
        });
        let status =
            common::process::wait_child(pid, Duration::from_secs(15)).expect("the child hung");
        assert_eq!(status, 0, "child {i} failed (wait status {status})");
        points.push(std::fs::read_to_string(&out).unwrap().parse().unwrap());
    }
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(
        refresh_point(&client, reference).abs_diff(parent) / 1_000_000,
        0,
        "the parent keeps its own"
    );
    assert_eq!(
        mock.stats().token_requests,
        1,
        "nobody fetched: the token was kept"
    );
    let window = Duration::from_secs(30).as_nanos();
    for (i, a) in points.iter().enumerate() {
        assert!(
            a.abs_diff(parent) <= window,
            "within the jitter allowance: {a} vs {parent}"
        );
        for b in &points[i + 1..] {
            // Two draws from 30 s land within 0.2 ms of each other about once in 10^4 tests.
            assert!(
                a.abs_diff(*b) > 200_000,
                "two processes refresh together: {points:?}"
            );
        }
    }
}
