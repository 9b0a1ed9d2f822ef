//! What diagnosis tests need: a skewed clock (Date, iat/exp), 429/503 answers with
//! Retry-After, the missing-tenant error, TLS certificates with wrong dates, clients held to
//! one way of presenting their secret, and the allowed scopes in discovery.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use support::*;
use tokenward_mock::{decode_claims, http_date, MockOptions, MockServer};

const DEMO_FORM: &str =
    "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The HTTP dates of the whole seconds between `before` and `after` (inclusive), shifted.
fn dates_between(before: u64, after: u64, shift: i64) -> Vec<String> {
    (before..=after)
        .map(|s| http_date(s.saturating_add_signed(shift)))
        .collect()
}

#[test]
fn every_answer_carries_a_date_on_the_mocks_clock() {
    let mock = MockServer::start();
    let before = unix_now();
    let token = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    let api = get(&mock, "/api/items");
    let admin = get(&mock, "/admin/stats");
    let after = unix_now();
    let dates = dates_between(before, after, 0);
    for reply in [&token, &api, &admin] {
        let date = reply.header("date").expect("a Date header").to_string();
        assert!(dates.contains(&date), "{date} not in {dates:?}");
    }
}

#[test]
fn clock_skew_moves_date_iat_and_exp_but_not_validity() {
    let mock = MockServer::start();
    let reply = post_json(
        &mock,
        "/admin/config",
        &json!({ "clock_skew_secs": -7200, "expiry": "wall_clock", "ttl_secs": 60 }),
    );
    assert_eq!(reply.json()["clock_skew_secs"], -7200);
    let before = unix_now();
    let reply = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    let after = unix_now();
    let date = reply.header("date").unwrap().to_string();
    assert!(
        dates_between(before, after, -7200).contains(&date),
        "{date}"
    );
    let token = reply.json()["access_token"].as_str().unwrap().to_string();
    let claims = decode_claims(&token).unwrap();
    let iat = claims["iat"].as_u64().unwrap();
    assert!((before - 7200..=after - 7200).contains(&iat));
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 60);
    assert!(
        reply.json()["expires_in"].as_u64().unwrap() >= 59,
        "the server's own clock says the token is fresh"
    );
    // exp is in the local past, yet the server (on its own clock) accepts the token.
    assert!(claims["exp"].as_u64().unwrap() < before);
    assert_eq!(
        api_request(&mock, "GET", "/api/items", &token, b"").status,
        200
    );

    mock.configure(json!({ "clock_skew_secs": 0 }));
    assert!(
        !mock.is_token_valid(&token),
        "on a corrected clock its exp has passed"
    );
    assert_eq!(
        post_json(&mock, "/admin/config", &json!({ "clock_skew_secs": "1h" })).status,
        400
    );
}

#[test]
fn rate_limits_and_outages_with_retry_after_in_both_forms() {
    let mock = MockServer::start();
    mock.configure(json!({ "clock_skew_secs": 30 }));
    let queued = post_json(
        &mock,
        "/admin/fault",
        &json!([
            { "status": 429, "retry_after": 3, "body": { "error": "slow_down" } },
            { "status": 503, "retry_after_date_secs": 5, "content_type": "text/html",
              "body": "<html>maintenance</html>" },
            { "status": 503, "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT" },
        ]),
    );
    assert_eq!(queued.json(), json!({ "queued": 3 }));
    let limited = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("3"));
    assert_eq!(limited.json()["error"], "slow_down");

    let before = unix_now();
    let down = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    let after = unix_now();
    assert_eq!(down.status, 503);
    assert_eq!(down.text(), "<html>maintenance</html>");
    let retry = down.header("retry-after").unwrap().to_string();
    assert!(
        dates_between(before, after, 35).contains(&retry),
        "5 s ahead on the mock's (skewed) clock: {retry}"
    );
    let fixed = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    assert_eq!(
        fixed.header("retry-after"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    assert_eq!(
        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status,
        200
    );
}

#[test]
fn the_api_says_which_tenant_header_is_missing() {
    let mock = MockServer::start();
    let token = demo_token(&mock);
    let auth = format!("Bearer {token}");
    let reply = request(
        &mock,
        "GET",
        "/api/items",
        &[("Authorization", &auth), ("api-version", "2")],
        b"",
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), json!({ "error": "MISSING_TENANT" }));
}

fn handshake_error(mock: &MockServer) -> String {
    let ca = mock.ca_pem_path().unwrap();
    match tls_conn(mock, &ca, "localhost") {
        Ok(_) => String::new(),
        Err(e) => e.to_string().to_ascii_lowercase(),
    }
}

#[test]
fn tls_certificates_can_be_expired_or_not_yet_valid_while_running() {
    let dir = temp_dir("tls-dates");
    let mock = MockServer::start_tls(&dir);
    assert_eq!(handshake_error(&mock), "", "valid by default");
    mock.configure(json!({ "tls_certificate": "expired" }));
    let error = handshake_error(&mock);
    assert!(error.contains("expired"), "{error}");
    mock.configure(json!({ "tls_certificate": "not_yet_valid" }));
    let error = handshake_error(&mock);
    assert!(error.contains("not valid yet"), "{error}");
    mock.reset();
    assert_eq!(
        handshake_error(&mock),
        "",
        "a reset brings the valid one back"
    );
    drop(mock);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_expired_certificate_can_be_the_start_setting() {
    let dir = temp_dir("tls-expired");
    let mock = MockServer::start_with(MockOptions {
        tls_dir: Some(dir.clone()),
        config: json!({ "tls_certificate": "expired" }),
        ..MockOptions::default()
    });
    assert!(handshake_error(&mock).contains("expired"));
    mock.reset();
    assert!(
        handshake_error(&mock).contains("expired"),
        "a reset returns to the start setting"
    );
    drop(mock);
    let _ = std::fs::remove_dir_all(dir);

    let bad = MockServer::try_start(MockOptions {
        config: json!({ "tls_certificat": "expired" }),
        ..MockOptions::default()
    });
    assert_eq!(
        bad.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::InvalidInput)
    );
}

#[test]
fn a_client_can_be_held_to_one_way_of_presenting_its_secret() {
    let mock = MockServer::start();
    mock.configure(json!({ "secret_auth_methods": ["client_secret_basic"] }));
    let post = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    assert_eq!(post.status, 401);
    assert_eq!(
        post.json(),
        json!({ "error": "invalid_client", "error_description": "Client authentication failed." }),
        "the same answer as a wrong secret"
    );
    let auth = basic("demo-client", "demo-secret");
    let basic_reply = token_request(
        &mock,
        "/oauth/token",
        "grant_type=client_credentials",
        &[("Authorization", &auth)],
    );
    assert_eq!(basic_reply.status, 200, "{}", basic_reply.text());
    let discovery = get(&mock, "/.well-known/openid-configuration").json();
    assert_eq!(
        discovery["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic"])
    );

    mock.configure(json!({ "secret_auth_methods": ["client_secret_post"] }));
    let basic_reply = token_request(
        &mock,
        "/oauth/token",
        "grant_type=client_credentials",
        &[("Authorization", &auth)],
    );
    assert_eq!(basic_reply.status, 401);
    assert!(basic_reply.header("www-authenticate").is_some());
    assert_eq!(
        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status,
        200
    );
    assert_eq!(
        post_json(
            &mock,
            "/admin/config",
            &json!({ "secret_auth_methods": ["basic"] })
        )
        .status,
        400
    );
    mock.reset();
    assert_eq!(
        mock.config()["secret_auth_methods"],
        json!(["client_secret_post", "client_secret_basic"])
    );
}

#[test]
fn discovery_lists_the_allowed_scopes() {
    let mock = MockServer::start();
    let discovery = || get(&mock, "/.well-known/openid-configuration").json();
    assert!(discovery().get("scopes_supported").is_none());
    mock.configure(json!({ "allowed_scopes": ["EventsApi", "read"] }));
    assert_eq!(
        discovery()["scopes_supported"],
        json!(["EventsApi", "read"])
    );
}
