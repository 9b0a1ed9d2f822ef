//! The protected API, GraphQL, redirects and discovery over real HTTP.

mod support;

use serde_json::json;
use support::*;
use tokenward_mock::MockServer;

const INVALID_TOKEN_CHALLENGE: &str = "Bearer error=\"invalid_token\", error_description=\"";

#[test]
fn a_valid_token_with_the_headers_is_echoed() {
    let mock = MockServer::start();
    let token = demo_token(&mock);
    let reply = api_request(
        &mock,
        "PUT",
        "/api/items/7?page=2&x=y",
        &token,
        "héllo".as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let jti = tokenward_mock::decode_claims(&token).unwrap()["jti"].clone();
    assert_eq!(
        reply.json(),
        json!({
            "ok": true, "method": "PUT", "path": "/api/items/7", "query": "page=2&x=y",
            "tenant_code": "T1", "api_version": "2", "jti": jti, "scope": "EventsApi",
            "body": "héllo",
        })
    );
    assert_eq!(mock.stats().api_requests, 1);
    let log = mock.api_log();
    assert_eq!(log[0].path, "/api/items/7?page=2&x=y");
    assert_eq!(log[0].headers["authorization"], format!("Bearer {token}"));
    assert_eq!(log[0].headers["tenant-code"], "T1");
    assert_eq!(log[0].body, "héllo");
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let mock = MockServer::start();
    let token = demo_token(&mock);
    let auth = format!("bEaReR {token}");
    let reply = request(
        &mock,
        "GET",
        "/api/items",
        &[
            ("Authorization", &auth),
            ("tenant-code", "T1"),
            ("api-version", "2"),
        ],
        b"",
    );
    assert_eq!(reply.status, 200);
}

#[test]
fn missing_unknown_and_revoked_tokens_get_401_with_a_challenge() {
    let mock = MockServer::start();
    let token = demo_token(&mock);
    let missing = request(
        &mock,
        "GET",
        "/api/items",
        &[("tenant-code", "T1"), ("api-version", "2")],
        b"",
    );
    let unknown = api_request(&mock, "GET", "/api/items", "not-a-token", b"");
    assert_eq!(
        api_request(&mock, "GET", "/api/items", &token, b"").status,
        200
    );
    mock.revoke_all();
    assert!(!mock.is_token_valid(&token));
    let revoked = api_request(&mock, "GET", "/api/items", &token, b"");
    for (reply, why) in [
        (missing, "No bearer"),
        (unknown, "not issued"),
        (revoked, "revoked"),
    ] {
        assert_eq!(reply.status, 401);
        assert_eq!(reply.json(), json!({ "error": "invalid_token" }));
        let challenge = reply.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with(INVALID_TOKEN_CHALLENGE),
            "{challenge}"
        );
        assert!(challenge.contains(why), "{challenge}");
        assert!(challenge.ends_with('"'), "{challenge}");
    }
    // A token issued after the revocation is fine.
    let fresh = demo_token(&mock);
    assert_eq!(
        api_request(&mock, "GET", "/api/items", &fresh, b"").status,
        200
    );
    assert_eq!(mock.stats().api_requests, 5);
}

#[test]
fn required_headers_are_checked_after_the_token() {
    let mock = MockServer::start();
    let token = demo_token(&mock);
    let auth = format!("Bearer {token}");
    let no_tenant = request(
        &mock,
        "GET",
        "/api/items",
        &[("Authorization", &auth), ("api-version", "2")],
        b"",
    );
    assert_eq!(no_tenant.status, 400);
    assert_eq!(no_tenant.json(), json!({ "error": "MISSING_TENANT" }));
    let no_version = request(
        &mock,
        "GET",
        "/api/items",
        &[("Authorization", &auth), ("tenant-code", "T1")],
        b"",
    );
    assert_eq!(no_version.status, 400);
    assert_eq!(no_version.json(), json!({ "error": "MISSING_API_VERSION" }));
    let neither_no_token = request(&mock, "GET", "/api/items", &[], b"");
    assert_eq!(neither_no_token.status, 401, "the token is checked first");

    mock.configure(json!({ "require_headers": ["X-Correlation-Id"] }));
    let custom = request(&mock, "GET", "/api/items", &[("Authorization", &auth)], b"");
    assert_eq!(
        custom.json(),
        json!({ "error": "MISSING_X_CORRELATION_ID" })
    );
    mock.configure(json!({ "require_headers": [] }));
    let bare = request(&mock, "GET", "/api/items", &[("Authorization", &auth)], b"");
    assert_eq!(bare.status, 200);
    assert_eq!(bare.json()["tenant_code"], serde_json::Value::Null);
}

#[test]
fn forbidden_and_always_401() {
    let mock = MockServer::start();
    let token = demo_token(&mock);
    let forbidden = api_request(&mock, "GET", "/api/forbidden", &token, b"");
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.header("www-authenticate"),
        Some("Bearer error=\"insufficient_scope\", scope=\"admin:write\"")
    );
    let no_token = request(&mock, "GET", "/api/forbidden", &[], b"");
    assert_eq!(no_token.status, 401, "403 only with a valid token");
    let always = api_request(&mock, "POST", "/api/always-401", &token, b"{}");
    assert_eq!(always.status, 401);
    assert!(always
        .header("www-authenticate")
        .unwrap()
        .starts_with(INVALID_TOKEN_CHALLENGE));
    assert!(mock.is_token_valid(&token), "always-401 does not revoke");
}

#[test]
fn graphql_reports_bad_tokens_in_a_200() {
    let mock = MockServer::start();
    let query = br#"{"query":"{ viewer { jti } }"}"#;
    let bad = request(
        &mock,
        "POST",
        "/graphql",
        &[("Content-Type", "application/json")],
        query,
    );
    assert_eq!(bad.status, 200);
    assert_eq!(
        bad.json(),
        json!({ "data": null, "errors": [{ "message": "Unauthenticated", "extensions": { "code": "UNAUTHENTICATED" } }] })
    );
    let token = demo_token(&mock);
    let auth = format!("Bearer {token}");
    let good = request(
        &mock,
        "POST",
        "/graphql",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        query,
    );
    assert_eq!(good.status, 200);
    let jti = tokenward_mock::decode_claims(&token).unwrap()["jti"].clone();
    assert_eq!(good.json(), json!({ "data": { "viewer": { "jti": jti } } }));
    mock.revoke_all();
    let revoked = request(
        &mock,
        "POST",
        "/graphql",
        &[("Authorization", &auth)],
        query,
    );
    assert_eq!(
        revoked.json()["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert_eq!(mock.stats().api_requests, 3);
}

#[test]
fn redirects_need_no_token() {
    let mock = MockServer::start();
    let reply = get(
        &mock,
        "/api/redirect?to=http%3A%2F%2F127.0.0.1%3A9%2Fapi%2Flanding%3Fa%3D1",
    );
    assert_eq!(reply.status, 302);
    assert_eq!(
        reply.header("location"),
        Some("http://127.0.0.1:9/api/landing?a=1")
    );
    let temporary = get(&mock, "/api/redirect?status=307&to=%2Fapi%2Fitems");
    assert_eq!(temporary.status, 307);
    assert_eq!(temporary.header("location"), Some("/api/items"));
    assert_eq!(get(&mock, "/api/redirect").status, 400);
    assert_eq!(
        get(&mock, "/api/redirect?to=%0D%0ASet-Cookie%3A%20x").status,
        400
    );
    assert_eq!(get(&mock, "/api/redirect?to=%2F&status=200").status, 400);
}

#[test]
fn discovery_and_unknown_paths() {
    let mock = MockServer::start();
    let reply = get(&mock, "/.well-known/openid-configuration");
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert_eq!(doc["issuer"], mock.url());
    assert_eq!(doc["token_endpoint"], mock.token_url());
    assert_eq!(doc["grant_types_supported"], json!(["client_credentials"]));
    let missing = get(&mock, "/nothing/here");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not_found");
    // Logged as "api", but only /api and /graphql count as API requests.
    assert_eq!(mock.api_log().len(), 2);
    assert_eq!(mock.stats().api_requests, 0);
}
