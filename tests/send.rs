//! `Client::send` against the mock API: header injection, 401 and GraphQL recovery, 403,
//! origin binding and redirects, rate limiting, idempotent-only retries.

mod common;

use std::time::{Duration, Instant};

use common::client;
use serde_json::{json, Value};
use tokenward::{ErrorKind, Request};
use tokenward_mock::MockServer;

fn api(mock: &MockServer, path: &str) -> String {
    format!("{}{path}", mock.url())
}

fn bound_client(mock: &MockServer, extra: Value) -> tokenward::Client {
    let mut extra = extra;
    extra["api_base_urls"] = json!([mock.url()]);
    client(mock, extra)
}

#[test]
fn get_and_post_carry_the_token_and_static_headers() {
    let mock = MockServer::start();
    let c = bound_client(&mock, json!({}));
    let r = c.send(Request::get(&api(&mock, "/api/items?x=1"))).unwrap();
    assert_eq!(r.status(), 200, "{}", r.text());
    let body: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(body["tenant_code"], "T1");
    assert_eq!(body["api_version"], "2");
    let r = c
        .send(
            Request::post(&api(&mock, "/api/items"))
                .header("content-type", "application/json")
                .body("{\"a\":1}"),
        )
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        serde_json::from_slice::<Value>(r.body()).unwrap()["body"],
        "{\"a\":1}"
    );
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn a_revoked_token_costs_one_401_one_refresh_one_retry() {
    let mock = MockServer::start();
    let c = bound_client(&mock, json!({}));
    c.send(Request::get(&api(&mock, "/api/items"))).unwrap();
    mock.revoke_all();
    let before = mock.stats();
    let payload = "{\"order\":42,\"note\":\"ünïcode & more\"}";
    let r = c
        .send(
            Request::post(&api(&mock, "/api/orders"))
                .header("content-type", "application/json")
                .body(payload),
        )
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = mock.stats();
    assert_eq!(
        after.api_requests - before.api_requests,
        2,
        "one 401, one retry"
    );
    assert_eq!(
        after.token_requests - before.token_requests,
        1,
        "one refresh"
    );
    let log = mock.api_log();
    let posts: Vec<_> = log.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].body, payload);
    assert_eq!(posts[1].body, payload, "body re-sent intact");
    assert_ne!(
        posts[0].headers["authorization"],
        posts[1].headers["authorization"]
    );
}

#[test]
fn persistent_401_and_403_are_typed_errors() {
    let mock = MockServer::start();
    let c = bound_client(&mock, json!({}));
    let e = c
        .send(Request::get(&api(&mock, "/api/always-401")))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(e.oauth_error(), Some("invalid_token"));
    assert_eq!(mock.stats().api_requests, 2, "exactly one retry");

    let e = c
        .send(Request::get(&api(&mock, "/api/forbidden")))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden);
    assert_eq!(e.required_scope(), Some("admin:write"));
    assert_eq!(e.oauth_error(), Some("insufficient_scope"));
    assert!(e.message().contains("admin:write"), "{e}");
    assert_eq!(mock.stats().api_requests, 3, "403 is not retried");
}

#[test]
fn graphql_unauthenticated_is_recovered_only_when_enabled() {
    let query = "{\"query\":\"{ viewer { id } }\"}";
    let mock = MockServer::start();
    let c = bound_client(&mock, json!({ "graphql_auth_errors": true }));
    c.token().unwrap();
    mock.revoke_all();
    let r = c
        .send(
            Request::post(&api(&mock, "/graphql"))
                .header("content-type", "application/json")
                .body(query),
        )
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        serde_json::from_slice::<Value>(r.body()).unwrap()["data"]["viewer"].is_object(),
        "{}",
        r.text()
    );
    assert_eq!(mock.token_requests(), 2);

    let mock = MockServer::start();
    let c = bound_client(&mock, json!({}));
    c.token().unwrap();
    mock.revoke_all();
    let r = c
        .send(Request::post(&api(&mock, "/graphql")).body(query))
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        serde_json::from_slice::<Value>(r.body()).unwrap()["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert_eq!(mock.token_requests(), 1, "returned as is");
}

#[test]
fn the_token_only_goes_to_allowed_origins() {
    let mock = MockServer::start();
    let elsewhere = MockServer::start();
    let c = bound_client(&mock, json!({}));
    let e = c
        .send(Request::get(&api(&elsewhere, "/api/items")))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ForeignOrigin);
    assert!(e.message().contains("api_base_urls"), "{e}");
    let e = c
        .send(Request::get(&format!(
            "http://localhost:{}/api/items",
            mock.port()
        )))
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::ForeignOrigin,
        "another host is another origin"
    );
    assert_eq!(elsewhere.stats().api_requests, 0);
    assert_eq!(mock.stats().api_requests, 0);
    assert_eq!(
        mock.token_requests(),
        0,
        "nothing was sent, not even a token request"
    );

    // A redirect to another origin is followed without anything of ours.
    let target = api(&elsewhere, "/api/landing");
    let redirect = api(
        &mock,
        &format!(
            "/api/redirect?to={}",
            target.replace(':', "%3A").replace('/', "%2F")
        ),
    );
    let r = c.send(Request::get(&redirect)).unwrap();
    assert_eq!(r.status(), 401, "the other origin got no token");
    let landed = elsewhere.api_log();
    assert_eq!(landed.len(), 1);
    assert!(
        !landed[0].headers.contains_key("authorization"),
        "{:?}",
        landed[0].headers
    );
    assert!(
        !landed[0].headers.contains_key("tenant-code"),
        "{:?}",
        landed[0].headers
    );

    // Without api_base_urls, redirects are returned, not followed.
    let c = client(&mock, json!({}));
    let r = c.send(Request::get(&redirect)).unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(elsewhere.api_log().len(), 1);
}

#[test]
fn user_headers_cannot_smuggle_or_override_authorization() {
    let mock = MockServer::start();
    let c = bound_client(&mock, json!({}));
    for req in [
        Request::get(&api(&mock, "/api/items")).header("x-note", "a\r\nAuthorization: Bearer evil"),
        Request::get(&api(&mock, "/api/items")).header("Authorization", "Bearer mine"),
        Request::get(&api(&mock, "/api/items")).header("x-null", "a\0b"),
    ] {
        assert_eq!(c.send(req).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
    assert_eq!(mock.stats().api_requests, 0);
}

#[test]
fn the_rate_limit_paces_sends_instead_of_failing_them() {
    let mock = MockServer::start();
    let c = bound_client(
        &mock,
        json!({ "rate_limit": { "requests": 10, "per_ms": 500 } }),
    );
    c.token().unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(
            c.send(Request::get(&api(&mock, "/api/items")))
                .unwrap()
                .status(),
            200
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(mock.stats().api_requests, 20);
}

#[test]
fn transient_api_failures_are_retried_only_for_idempotent_methods() {
    let mock = MockServer::start();
    let c = bound_client(&mock, json!({}));
    c.token().unwrap();
    mock.push_fault(json!({ "target": "api", "count": 1, "status": 503, "retry_after": "0" }));
    assert_eq!(
        c.send(Request::get(&api(&mock, "/api/items")))
            .unwrap()
            .status(),
        200
    );
    assert_eq!(mock.stats().api_requests, 2);

    mock.push_fault(json!({ "target": "api", "count": 1, "status": 503 }));
    let r = c
        .send(Request::post(&api(&mock, "/api/items")).body("x"))
        .unwrap();
    assert_eq!(r.status(), 503, "POST is not retried");
    assert_eq!(mock.stats().api_requests, 3);
}
