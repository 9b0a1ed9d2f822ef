//! `/admin/...` over real HTTP, and the in-process equivalents.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;
use tokenward_mock::{MockServer, MockStats};

const DEMO_FORM: &str =
    "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";

#[test]
fn stats_and_requests() {
    let mock = MockServer::start();
    let token = demo_token(&mock);
    token_request(&mock, "/oauth/token", "grant_type=client_credentials", &[]);
    api_request(&mock, "POST", "/api/items?x=1", &token, b"payload");
    get(&mock, "/admin/stats");

    let stats = get(&mock, "/admin/stats");
    assert_eq!(stats.status, 200);
    assert_eq!(
        stats.json(),
        json!({ "token_requests": 2, "tokens_issued": 1, "api_requests": 1 })
    );
    assert_eq!(
        mock.stats(),
        MockStats {
            token_requests: 2,
            tokens_issued: 1,
            api_requests: 1
        }
    );

    let log = get(&mock, "/admin/requests").json();
    assert_eq!(log["token"].as_array().unwrap().len(), 2);
    assert_eq!(
        log["api"].as_array().unwrap().len(),
        1,
        "admin requests are not logged"
    );
    let api = &log["api"][0];
    assert_eq!(api["method"], "POST");
    assert_eq!(api["path"], "/api/items?x=1");
    assert_eq!(api["body"], "payload");
    assert_eq!(api["headers"]["tenant-code"], "T1");
    assert_eq!(api["headers"]["authorization"], format!("Bearer {token}"));
    assert_eq!(log["token"][1]["body"], "grant_type=client_credentials");
    assert_eq!(mock.token_log().len(), 2);
    assert_eq!(mock.api_log()[0].body, "payload");
}

#[test]
fn config_merges_returns_everything_and_refuses_typos() {
    let mock = MockServer::start();
    let reply = post_json(
        &mock,
        "/admin/config",
        &json!({ "ttl_secs": 5, "clients": { "b": "s" } }),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({
            "ttl_secs": 5, "expires_in": "number", "token_type": "Bearer", "token_format": "jwt",
            "expiry": "monotonic", "clock_skew_secs": 0, "tls_certificate": "valid",
            "dpop": "off", "dpop_nonce": null, "dpop_api_nonce": null, "dpop_iat_window_secs": 60,
            "token_delay_ms": 0, "require_scope": false, "allowed_scopes": null,
            "secret_auth_methods": ["client_secret_post", "client_secret_basic"],
            "clients": { "demo-client": "demo-secret", "b": "s" }, "assertion_keys": {},
            "require_headers": ["tenant-code", "api-version"],
        })
    );
    let typo = post_json(
        &mock,
        "/admin/config",
        &json!({ "ttl_secs": 9, "ttl_sec": 1 }),
    );
    assert_eq!(typo.status, 400);
    assert!(typo.json()["error"].as_str().unwrap().contains("ttl_sec"));
    assert_eq!(
        get(&mock, "/admin/config").json()["ttl_secs"],
        5,
        "unchanged"
    );
    assert_eq!(mock.config()["ttl_secs"], 5);
    let not_json = request(&mock, "POST", "/admin/config", &[], b"{nope");
    assert_eq!(not_json.status, 400);
}

#[test]
fn revoke_and_reset() {
    let mock = MockServer::start();
    let token = demo_token(&mock);
    mock.configure(json!({ "ttl_secs": 7 }));
    mock.push_fault(json!({ "status": 500, "count": 5 }));
    let revoked = request(&mock, "POST", "/admin/revoke", &[], b"");
    assert_eq!(revoked.json(), json!({ "revoked": 1 }));
    assert!(!mock.is_token_valid(&token));

    let reset = request(&mock, "POST", "/admin/reset", &[], b"");
    assert_eq!(reset.status, 200);
    assert_eq!(mock.stats(), MockStats::default());
    assert!(mock.token_log().is_empty() && mock.api_log().is_empty());
    assert_eq!(mock.config()["ttl_secs"], 3600);
    let after = demo_token(&mock);
    assert_ne!(after, token);
    assert!(mock.is_token_valid(&after), "no faults left");
    assert_eq!(mock.token_requests(), 1);

    mock.revoke_all();
    assert!(!mock.is_token_valid(&after));
    mock.reset();
    assert_eq!(mock.token_requests(), 0);
}

#[test]
fn unknown_endpoints_and_wrong_methods() {
    let mock = MockServer::start();
    let missing = get(&mock, "/admin/nothing");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["endpoints"].as_array().unwrap().len() >= 7);
    let wrong = get(&mock, "/admin/reset");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("POST"));
    assert_eq!(request(&mock, "POST", "/admin/stats", &[], b"").status, 405);
}

#[test]
fn shutdown_answers_then_stops() {
    let mock = MockServer::start();
    let reply = request(&mock, "POST", "/admin/shutdown", &[], b"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({ "stopping": true }));
    assert_eq!(reply.header("connection"), Some("close"));
    for _ in 0..100 {
        if mock.is_stopped() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(mock.is_stopped());
    std::thread::sleep(Duration::from_millis(100));
    assert!(std::net::TcpStream::connect(("127.0.0.1", mock.port())).is_err());
}

#[test]
#[should_panic(expected = "unknown mock config key `tll_secs`")]
fn configure_panics_on_a_typo() {
    MockServer::start().configure(json!({ "tll_secs": 5 }));
}

#[test]
fn the_handle_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MockServer>();
    let mock = std::sync::Arc::new(MockServer::start());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let mock = mock.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    assert_eq!(
                        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status,
                        200
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(mock.stats().tokens_issued, 40);
}
