//! Programmed faults over real HTTP: statuses, delays, hangs, closes, oversized bodies.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use tokenward_mock::MockServer;

const DEMO_FORM: &str =
    "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";

#[test]
fn status_faults_answer_count_times_with_retry_after_then_recover() {
    let mock = MockServer::start();
    mock.push_fault(
        json!({ "target": "token", "count": 2, "status": 429, "retry_after": "2",
                            "body": { "error": "slow_down" } }),
    );
    for _ in 0..2 {
        let reply = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header("retry-after"), Some("2"));
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.json(), json!({ "error": "slow_down" }));
    }
    assert_eq!(
        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status,
        200
    );
    let stats = mock.stats();
    assert_eq!(
        (stats.token_requests, stats.tokens_issued),
        (3, 1),
        "faulted requests count"
    );
}

#[test]
fn faults_are_per_target_and_queue_in_order() {
    let mock = MockServer::start();
    let token = demo_token(&mock);
    mock.push_fault(json!([
        { "target": "api", "status": 503, "body": "<html>down</html>", "content_type": "text/html" },
        { "target": "api", "status": 502 },
    ]));
    assert_eq!(
        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status,
        200,
        "token unaffected"
    );
    let first = api_request(&mock, "GET", "/api/items", &token, b"");
    assert_eq!(first.status, 503);
    assert_eq!(first.header("content-type"), Some("text/html"));
    assert_eq!(first.text(), "<html>down</html>");
    let second = request(&mock, "POST", "/graphql", &[], b"{}");
    assert_eq!(second.status, 502, "graphql is an api target");
    assert_eq!(
        second.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        api_request(&mock, "GET", "/api/items", &token, b"").status,
        200
    );
    assert_eq!(mock.stats().api_requests, 3);
    // Discovery is not an API target.
    mock.push_fault(json!({ "target": "api", "status": 500 }));
    assert_eq!(get(&mock, "/.well-known/openid-configuration").status, 200);
    assert_eq!(
        api_request(&mock, "GET", "/api/items", &token, b"").status,
        500
    );
}

#[test]
fn delayed_faults_wait_first() {
    let mock = MockServer::start();
    mock.push_fault(
        json!({ "status": 500, "delay_ms": 300, "body": "{\"error\":\"server_error\"}" }),
    );
    let started = Instant::now();
    let reply = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["error"], "server_error");
}

#[test]
fn close_faults_close_without_an_answer() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "target": "token", "kind": "close" }));
    let mut conn = Conn::open(&mock);
    conn.send(
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        DEMO_FORM.as_bytes(),
    );
    assert!(conn.is_closed_by_peer());
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(
        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status,
        200
    );
}

#[test]
fn hang_faults_hold_the_socket_until_shutdown() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "target": "token", "kind": "hang" }));
    let mut conn = Conn::open(&mock);
    conn.set_read_timeout(Duration::from_millis(400));
    conn.send(
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        DEMO_FORM.as_bytes(),
    );
    let err = conn.read_reply().expect_err("no answer while hanging");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    assert_eq!(mock.token_requests(), 1, "the request was read");
    // Other connections are served meanwhile.
    assert_eq!(
        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status,
        200
    );

    conn.set_read_timeout(Duration::from_secs(5));
    let stopping = Instant::now();
    mock.shutdown();
    assert!(conn.is_closed_by_peer());
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "{:?}",
        stopping.elapsed()
    );
}

#[test]
fn oversized_faults_send_exactly_size_bytes_of_json_looking_text() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "kind": "oversized", "size": 100_000 }));
    let reply = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 100_000);
    assert!(reply.text().starts_with("{\"access_token\":\"xxx"));
    assert!(reply.text().ends_with("\"}"));
    assert_eq!(reply.header("content-type"), Some("application/json"));

    mock.push_fault(json!({ "kind": "oversized" }));
    let reply = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    assert_eq!(reply.body.len(), 10 * 1024 * 1024, "default size");
}

#[test]
fn malformed_faults_are_refused_whole() {
    let mock = MockServer::start();
    let reply = post_json(
        &mock,
        "/admin/fault",
        &json!([{ "status": 500 }, { "kind": "explode" }]),
    );
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("kind"));
    assert_eq!(
        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status,
        200,
        "nothing queued"
    );
    let reply = post_json(&mock, "/admin/fault", &json!({ "status": 500, "cuont": 2 }));
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("cuont"));
    let ok = post_json(&mock, "/admin/fault", &json!({ "status": 500, "count": 2 }));
    assert_eq!(ok.json(), json!({ "queued": 1 }));
}

#[test]
#[should_panic(expected = "unknown fault key")]
fn push_fault_panics_on_a_typo() {
    MockServer::start().push_fault(json!({ "stauts": 500 }));
}

#[test]
fn raw_faults_send_their_bytes_exactly_then_close() {
    let mock = MockServer::start();
    let evil = "HTTP/1.1 200 OK\r\nX-Injected: 1\r\nSet-Cookie: a=b\r\n\r\nHTTP/1.1 200 OK\r\n";
    let reply = post_json(
        &mock,
        "/admin/fault",
        &json!({ "target": "api", "kind": "raw", "body": evil }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut conn = Conn::open(&mock);
    conn.send("GET", "/api/x", &[], b"");
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut TakeRest(&mut conn), &mut answer).unwrap();
    assert_eq!(answer, evil.as_bytes());
    assert_eq!(mock.stats().api_requests, 1);
}

/// Reads whatever the mock sends until it closes.
struct TakeRest<'a>(&'a mut Conn<std::net::TcpStream>);

impl std::io::Read for TakeRest<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_some(buf)
    }
}
