//! Real-provider expiry (`expiry: "wall_clock"`) and faults that start after N successes.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use support::*;
use tokenward_mock::{decode_claims, MockServer};

const DEMO_FORM: &str =
    "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";

fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Sleeps until the wall clock reaches `unix_secs` (bounded: the tokens here live seconds).
fn sleep_until_wall(unix_secs: u64) {
    for _ in 0..1000 {
        let left = unix_secs as f64 - wall_now();
        if left <= 0.0 {
            return;
        }
        std::thread::sleep(Duration::from_secs_f64(left.min(0.05)) + Duration::from_millis(1));
    }
    panic!("the wall clock did not reach {unix_secs}");
}

#[test]
fn wall_clock_tokens_carry_whole_second_exp_and_matching_expires_in() {
    let mock = MockServer::start();
    assert_eq!(mock.config()["expiry"], "monotonic", "off by default");
    mock.configure(json!({ "expiry": "wall_clock", "ttl_secs": 3 }));
    let before = wall_now().floor() as u64;
    let reply = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    let after = wall_now().floor() as u64;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    let claims = decode_claims(body["access_token"].as_str().unwrap()).unwrap();
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert!((before..=after).contains(&iat), "iat = floor(now)");
    assert_eq!(exp, iat + 3);
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!(
        (exp - after..=exp - before).contains(&expires_in),
        "expires_in = exp - floor(now): {expires_in}"
    );
}

#[test]
fn the_api_refuses_a_wall_clock_token_once_exp_has_passed() {
    let mock = MockServer::start();
    mock.configure(json!({ "expiry": "wall_clock", "ttl_secs": 3 }));
    let sent = wall_now();
    let token = demo_token(&mock);
    let received = wall_now();
    let exp = decode_claims(&token).unwrap()["exp"].as_u64().unwrap() as f64;
    // iat = floor(issue time): the token dies up to 1 s before "sent + ttl", never after
    // "received + ttl".
    assert!(
        sent + 3.0 - 1.0 < exp && exp <= received + 3.0,
        "{sent} {exp}"
    );
    assert_eq!(
        api_request(&mock, "GET", "/api/items", &token, b"").status,
        200,
        "valid before exp"
    );
    let exp = exp as u64;
    sleep_until_wall(exp);
    assert!(!mock.is_token_valid(&token));
    let reply = api_request(&mock, "GET", "/api/items", &token, b"");
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json(), json!({ "error": "invalid_token" }));
    assert!(reply
        .header("www-authenticate")
        .unwrap()
        .contains("The access token expired."));
}

#[test]
fn opaque_tokens_keep_the_wall_clock_exp_server_side() {
    let mock = MockServer::start();
    mock.configure(json!({ "expiry": "wall_clock", "ttl_secs": 2, "token_format": "opaque" }));
    let reply = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    let token = reply.json()["access_token"].as_str().unwrap().to_string();
    assert!(decode_claims(&token).is_none());
    assert!(mock.is_token_valid(&token));
    let expires_in = reply.json()["expires_in"].as_u64().unwrap();
    assert!(expires_in == 1 || expires_in == 2, "{expires_in}");
    sleep_until_wall(wall_now().floor() as u64 + expires_in + 1);
    assert!(!mock.is_token_valid(&token));
}

#[test]
fn expiry_is_set_over_admin_http_and_typos_are_refused() {
    let mock = MockServer::start();
    let reply = post_json(&mock, "/admin/config", &json!({ "expiry": "wall_clock" }));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["expiry"], "wall_clock");
    let reply = post_json(&mock, "/admin/config", &json!({ "expiry": "wallclock" }));
    assert_eq!(reply.status, 400);
    post_json(&mock, "/admin/reset", &json!({}));
    assert_eq!(mock.config()["expiry"], "monotonic");
}

#[test]
fn every_token_request_after_the_first_success_can_fail() {
    let mock = MockServer::start();
    let reply = post_json(
        &mock,
        "/admin/fault",
        &json!({ "target": "token", "after": 1, "count": "forever", "status": 503,
                 "retry_after": "1" }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    // A refused request is not a success: the fault keeps waiting.
    let wrong = "grant_type=client_credentials&client_id=demo-client&client_secret=nope";
    assert_eq!(token_request(&mock, "/oauth/token", wrong, &[]).status, 401);
    assert_eq!(
        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status,
        200
    );
    for _ in 0..20 {
        let reply = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("retry-after"), Some("1"));
    }
    let token = demo_token_or_status(&mock);
    assert_eq!(token, Err(503), "still failing");
    let stats = mock.stats();
    assert_eq!((stats.token_requests, stats.tokens_issued), (23, 1));
    mock.reset();
    assert!(demo_token_or_status(&mock).is_ok(), "a reset clears it");
}

#[test]
fn a_waiting_fault_holds_back_the_faults_behind_it() {
    let mock = MockServer::start();
    mock.push_fault(json!([
        { "target": "token", "after": 2, "status": 500 },
        { "target": "token", "status": 502 },
    ]));
    let statuses: Vec<u16> = (0..5)
        .map(|_| token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status)
        .collect();
    assert_eq!(statuses, [200, 200, 500, 502, 200]);
}

fn demo_token_or_status(mock: &MockServer) -> Result<String, u16> {
    let reply = token_request(mock, "/oauth/token", DEMO_FORM, &[]);
    match reply.status {
        200 => Ok(reply.json()["access_token"].as_str().unwrap().to_string()),
        other => Err(other),
    }
}
