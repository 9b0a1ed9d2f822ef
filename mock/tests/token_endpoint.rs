//! The token endpoint over real HTTP: client authentication, errors, token shapes.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use tokenward_mock::{decode_claims, MockOptions, MockServer};

const DEMO_FORM: &str =
    "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";

#[test]
fn client_secret_post_issues_a_jwt_recording_the_request() {
    let mock = MockServer::start();
    let reply = token_request(
        &mock,
        "/oauth/token",
        &format!("{DEMO_FORM}&scope=EventsApi%20read&audience=https%3A%2F%2Fapi.example.com&resource=urn%3Ares&tenant=acme+corp"),
        &[],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "EventsApi read");
    let token = body["access_token"].as_str().unwrap();

    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3);
    assert!(segments[2].len() >= 16, "a random-ish third segment");
    let header = decode_claims(&format!("x.{}.x", segments[0])).unwrap();
    assert_eq!(header, json!({ "alg": "none", "typ": "JWT" }));
    let claims = decode_claims(token).unwrap();
    assert_eq!(claims["iss"], mock.url());
    assert_eq!(claims["sub"], "demo-client");
    assert_eq!(claims["client_id"], "demo-client");
    assert_eq!(claims["scope"], "EventsApi read");
    assert_eq!(claims["aud"], "https://api.example.com");
    assert_eq!(claims["resource"], "urn:res");
    assert_eq!(claims["extra"], json!({ "tenant": "acme corp" }));
    assert!(claims["jti"].is_string());
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
    assert!(mock.is_token_valid(token));
    assert!(!mock.is_token_valid("forged"));

    let stats = mock.stats();
    assert_eq!((stats.token_requests, stats.tokens_issued), (1, 1));
    let log = mock.token_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].path, "/oauth/token");
    assert_eq!(
        log[0].headers.get("content-type").map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    assert!(log[0].body.contains("client_secret=demo-secret"));
}

#[test]
fn claims_leave_out_what_was_not_asked_for_and_jtis_differ() {
    let mock = MockServer::start();
    let a = demo_token_plain(&mock);
    let b = demo_token_plain(&mock);
    assert_ne!(a, b);
    let (ca, cb) = (decode_claims(&a).unwrap(), decode_claims(&b).unwrap());
    assert_ne!(ca["jti"], cb["jti"]);
    for absent in ["scope", "aud", "resource"] {
        assert!(ca.get(absent).is_none(), "{absent} in {ca}");
    }
    assert_eq!(ca["extra"], json!({}));
}

fn demo_token_plain(mock: &MockServer) -> String {
    let reply = token_request(mock, "/oauth/token", DEMO_FORM, &[]);
    assert!(reply.json().get("scope").is_none());
    reply.json()["access_token"].as_str().unwrap().to_string()
}

#[test]
fn every_token_path_is_the_same_endpoint() {
    let mock = MockServer::start();
    for path in tokenward_mock::TOKEN_PATHS {
        let reply = token_request(&mock, path, DEMO_FORM, &[]);
        assert_eq!(reply.status, 200, "{path}");
    }
    assert_eq!(mock.token_requests(), 4);
}

#[test]
fn client_secret_basic_with_a_special_character_secret() {
    let mock = MockServer::start_with(MockOptions {
        client_secret: SPECIAL_SECRET.into(),
        ..MockOptions::default()
    });
    let form = "grant_type=client_credentials&scope=a%20b";
    let auth = basic("demo-client", SPECIAL_SECRET);
    assert!(auth.len() > 10);
    let reply = token_request(&mock, "/oauth/token", form, &[("Authorization", &auth)]);
    assert_eq!(reply.status, 200, "{}", reply.text());

    // The scheme is case-insensitive, and form encoding may write a space as '+'.
    let plus = format!(
        "basic {}",
        base64(b"demo-client:xY9%23mK2%24pL8%40nQ5+%2B%2F%25")
    );
    let reply = token_request(&mock, "/oauth/token", form, &[("Authorization", &plus)]);
    assert_eq!(reply.status, 200, "{}", reply.text());

    // Not percent-encoding the secret is a client bug the mock must expose.
    let raw = format!(
        "Basic {}",
        base64(format!("demo-client:{SPECIAL_SECRET}").as_bytes())
    );
    let reply = token_request(&mock, "/oauth/token", form, &[("Authorization", &raw)]);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "invalid_client");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Basic realm=\"tokenward-mock\"")
    );

    // The same secret in the form (client_secret_post).
    let post = format!(
        "grant_type=client_credentials&client_id=demo-client&client_secret={}",
        form_encode(SPECIAL_SECRET)
    );
    assert_eq!(token_request(&mock, "/oauth/token", &post, &[]).status, 200);
}

#[test]
fn bad_client_credentials_are_invalid_client() {
    let mock = MockServer::start();
    let expected =
        json!({ "error": "invalid_client", "error_description": "Client authentication failed." });
    for form in [
        "grant_type=client_credentials&client_id=demo-client&client_secret=wrong",
        "grant_type=client_credentials&client_id=nobody&client_secret=demo-secret",
        "grant_type=client_credentials&client_id=demo-client",
        "grant_type=client_credentials",
    ] {
        let reply = token_request(&mock, "/oauth/token", form, &[]);
        assert_eq!(reply.status, 401, "{form}");
        assert_eq!(reply.json(), expected, "{form}");
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    let wrong = basic("demo-client", "wrong");
    let reply = token_request(
        &mock,
        "/oauth/token",
        "grant_type=client_credentials",
        &[("Authorization", &wrong)],
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json(), expected);
    let garbage = token_request(
        &mock,
        "/oauth/token",
        "grant_type=client_credentials",
        &[("Authorization", "Basic %%%")],
    );
    assert_eq!(garbage.status, 401);
    assert_eq!(garbage.json()["error"], "invalid_client");
    assert_eq!(mock.stats().tokens_issued, 0);
    assert_eq!(mock.token_requests(), 6);
}

#[test]
fn two_authentication_methods_at_once_are_invalid_request() {
    let mock = MockServer::start();
    let auth = basic("demo-client", "demo-secret");
    let reply = token_request(
        &mock,
        "/oauth/token",
        DEMO_FORM,
        &[("Authorization", &auth)],
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "invalid_request");
}

#[test]
fn only_client_credentials_in_a_form_post_is_accepted() {
    let mock = MockServer::start();
    for form in [
        "grant_type=password&client_id=demo-client&client_secret=demo-secret",
        "client_id=demo-client&client_secret=demo-secret",
    ] {
        let reply = token_request(&mock, "/oauth/token", form, &[]);
        assert_eq!(reply.status, 400, "{form}");
        assert_eq!(reply.json()["error"], "unsupported_grant_type", "{form}");
    }
    let json_body = request(
        &mock,
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/json")],
        br#"{"grant_type":"client_credentials"}"#,
    );
    assert_eq!(json_body.status, 400);
    assert_eq!(json_body.json()["error"], "invalid_request");
    let with_charset = request(
        &mock,
        "POST",
        "/oauth/token",
        &[(
            "Content-Type",
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
        )],
        DEMO_FORM.as_bytes(),
    );
    assert_eq!(with_charset.status, 200);
    let get = get(&mock, "/oauth/token");
    assert_eq!(get.status, 405);
    assert_eq!(get.json()["error"], "invalid_request");
    assert_eq!(get.header("allow"), Some("POST"));
    let twice = token_request(
        &mock,
        "/oauth/token",
        &format!("{DEMO_FORM}&scope=a&scope=b"),
        &[],
    );
    assert_eq!(twice.status, 400);
    assert_eq!(twice.json()["error"], "invalid_request");
    let bad_escape = token_request(
        &mock,
        "/oauth/token",
        &format!("{DEMO_FORM}&scope=%zz"),
        &[],
    );
    assert_eq!(bad_escape.status, 400);
}

#[test]
fn expires_in_modes() {
    let mock = MockServer::start();
    for (mode, expected) in [
        ("number", Some("\"expires_in\":3600")),
        ("string", Some("\"expires_in\":\"3600\"")),
        ("float", Some("\"expires_in\":3600.0")),
        ("missing", None),
        ("zero", Some("\"expires_in\":0")),
        ("negative", Some("\"expires_in\":-1")),
    ] {
        mock.configure(json!({ "expires_in": mode }));
        let text = token_request(&mock, "/oauth/token", DEMO_FORM, &[]).text();
        match expected {
            Some(fragment) => assert!(text.contains(fragment), "{mode}: {text}"),
            None => assert!(!text.contains("expires_in"), "{mode}: {text}"),
        }
    }
    // The token itself always lives ttl_secs, whatever expires_in says.
    mock.configure(json!({ "expires_in": "zero", "ttl_secs": 60 }));
    let token = token_request(&mock, "/oauth/token", DEMO_FORM, &[]).json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(mock.is_token_valid(&token));
    let claims = decode_claims(&token).unwrap();
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        60
    );
}

#[test]
fn token_type_can_be_any_string_or_left_out() {
    let mock = MockServer::start();
    mock.configure(json!({ "token_type": "bearer" }));
    assert_eq!(
        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).json()["token_type"],
        "bearer"
    );
    mock.configure(json!({ "token_type": null }));
    let body = token_request(&mock, "/oauth/token", DEMO_FORM, &[]).json();
    assert!(body.get("token_type").is_none(), "{body}");
    assert!(body["access_token"].is_string());
}

#[test]
fn opaque_tokens_are_not_jwts_but_still_valid() {
    let mock = MockServer::start();
    mock.configure(json!({ "token_format": "opaque" }));
    let token = demo_token(&mock);
    assert!(token.starts_with("opaque-"), "{token}");
    assert!(decode_claims(&token).is_none());
    let reply = api_request(&mock, "GET", "/api/items", &token, b"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["scope"], "EventsApi");
}

#[test]
fn scopes_can_be_required_and_restricted() {
    let mock = MockServer::start();
    mock.configure(json!({ "require_scope": true, "allowed_scopes": ["EventsApi", "read"] }));
    let none = token_request(&mock, "/oauth/token", DEMO_FORM, &[]);
    assert_eq!(none.status, 400);
    assert_eq!(none.json()["error"], "invalid_scope");
    let refused = token_request(
        &mock,
        "/oauth/token",
        &format!("{DEMO_FORM}&scope=read%20write"),
        &[],
    );
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"], "invalid_scope");
    assert!(refused.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("write"));
    let fine = token_request(
        &mock,
        "/oauth/token",
        &format!("{DEMO_FORM}&scope=EventsApi+read"),
        &[],
    );
    assert_eq!(fine.status, 200);
    assert_eq!(fine.json()["scope"], "EventsApi read");
}

#[test]
fn clients_can_be_added() {
    let mock = MockServer::start();
    mock.configure(json!({ "clients": { "svc-2": "s2" } }));
    let form = "grant_type=client_credentials&client_id=svc-2&client_secret=s2";
    let reply = token_request(&mock, "/connect/token", form, &[]);
    assert_eq!(reply.status, 200);
    let claims = decode_claims(reply.json()["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sub"], "svc-2");
    assert_eq!(
        token_request(&mock, "/oauth/token", DEMO_FORM, &[]).status,
        200,
        "still there"
    );
}

#[test]
fn tokens_expire_on_the_mocks_clock() {
    let mock = MockServer::start();
    mock.configure(json!({ "ttl_secs": 1 }));
    let token = demo_token(&mock);
    assert!(mock.is_token_valid(&token));
    std::thread::sleep(Duration::from_millis(1100));
    assert!(!mock.is_token_valid(&token));
    let reply = api_request(&mock, "GET", "/api/items", &token, b"");
    assert_eq!(reply.status, 401);
    assert!(reply
        .header("www-authenticate")
        .unwrap()
        .contains("expired"));
}

#[test]
fn token_delay_slows_the_answer() {
    let mock = MockServer::start();
    mock.configure(json!({ "token_delay_ms": 300 }));
    let started = Instant::now();
    let token = demo_token(&mock);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(mock.is_token_valid(&token));
    let t = Instant::now();
    assert_eq!(api_request(&mock, "GET", "/api/x", &token, b"").status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "the API is not delayed"
    );
}

#[test]
fn decode_claims_is_none_for_non_jwts() {
    assert_eq!(decode_claims("abc"), None);
    assert_eq!(decode_claims(""), None);
    let value: Option<Value> = decode_claims("e30.e30.x");
    assert_eq!(value, Some(json!({})));
}
