//! The token endpoint against the mock IdP: wire format, errors, retries, malformed
//! responses, timeouts, TLS, configuration and secrecy.

mod common;

use std::time::{Duration, Instant};

use common::{claims, client, config_json, Recorder};
use serde_json::json;
use tokenward::{Client, Config, ErrorKind};
use tokenward_mock::{MockOptions, MockServer};

const SPECIAL: &str = "xY9#mK2$pL8@nQ5 +/%";
const SPECIAL_ENCODED: &str = "xY9%23mK2%24pL8%40nQ5%20%2B%2F%25";

fn special_mock() -> MockServer {
    MockServer::start_with(MockOptions {
        client_secret: SPECIAL.into(),
        ..MockOptions::default()
    })
}

#[test]
fn client_secret_post_wire_format() {
    let mock = special_mock();
    let c = client(
        &mock,
        json!({
            "client_secret": SPECIAL,
            "scope": ["EventsApi", "read:all"],
            "audience": "https://api.example.com",
            "resource": "urn:res",
            "extra_params": { "tenant": "acme corp" }
        }),
    );
    let token = c.token().expect("token");
    let log = mock.token_log();
    assert_eq!(log.len(), 1);
    let req = &log[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.headers.get("content-type").map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        req.headers.get("accept").map(String::as_str),
        Some("application/json")
    );
    assert!(!req.headers.contains_key("authorization"));
    let fields: Vec<&str> = req.body.split('&').collect();
    for expected in [
        "grant_type=client_credentials".to_string(),
        "scope=EventsApi%20read%3Aall".to_string(),
        "audience=https%3A%2F%2Fapi.example.com".to_string(),
        "resource=urn%3Ares".to_string(),
        "tenant=acme%20corp".to_string(),
        "client_id=demo-client".to_string(),
        format!("client_secret={SPECIAL_ENCODED}"),
    ] {
        assert!(
            fields.contains(&expected.as_str()),
            "missing {expected} in {}",
            req.body
        );
    }
    let cl = claims(token.as_str());
    assert_eq!(cl["scope"], "EventsApi read:all");
    assert_eq!(cl["aud"], "https://api.example.com");
    assert_eq!(cl["resource"], "urn:res");
}

#[test]
fn client_secret_basic_wire_format() {
    let mock = special_mock();
    let c = client(
        &mock,
        json!({ "client_secret": SPECIAL, "auth_method": "client_secret_basic", "scope": "a b" }),
    );
    c.token()
        .expect("the mock decodes the percent-encoded Basic credentials");
    let req = &mock.token_log()[0];
    let expected = format!("demo-client:{SPECIAL_ENCODED}");
    let auth = req.headers.get("authorization").expect("basic header");
    let b64 = auth.strip_prefix("Basic ").expect("Basic scheme");
    assert_eq!(decode_b64(b64), expected.as_bytes());
    assert!(
        !req.body.contains("client_secret"),
        "secret only in the header: {}",
        req.body
    );
    assert!(req.body.contains("scope=a%20b"), "{}", req.body);
}

fn decode_b64(s: &str) -> Vec<u8> {
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | table.iter().position(|t| *t == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn transient_503s_are_retried_until_success() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "target": "token", "count": 2, "status": 503, "body": "down" }));
    let c = client(&mock, json!({}));
    let rec = Recorder::attach(&c);
    c.token().expect("third attempt succeeds");
    assert_eq!(mock.token_requests(), 3);
    assert_eq!(c.stats().token_requests, 3);
    assert_eq!(
        rec.kinds()
            .iter()
            .filter(|k| **k == tokenward::EventKind::RetryScheduled)
            .count(),
        2
    );
}

#[test]
fn retry_after_is_honoured() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "target": "token", "count": 1, "status": 429, "retry_after": "1" }));
    // A hint is waited for inside a call only up to retry.max_delay_ms.
    let c = client(
        &mock,
        json!({ "retry": { "max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 2000 } }),
    );
    let started = Instant::now();
    c.token().expect("second attempt succeeds");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(mock.token_requests(), 2);
}

#[test]
fn exhausted_attempts_give_server_and_rate_limited() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "target": "token", "count": 3, "status": 503, "body": "<html>Service Unavailable</html>", "content_type": "text/html" }));
    let e = client(&mock, json!({})).token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.http_status(), Some(503));
    assert!(e.message().contains("Service Unavailable"), "{e}");
    assert_eq!(mock.token_requests(), 3);

    let mock = MockServer::start();
    mock.push_fault(json!({ "target": "token", "count": 3, "status": 429, "retry_after": "0" }));
    let e = client(&mock, json!({})).token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::ZERO));
    assert_eq!(mock.token_requests(), 3);
}

#[test]
fn retry_after_beyond_the_deadline_fails_fast() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "target": "token", "count": 1, "status": 429, "retry_after": "60" }));
    let started = Instant::now();
    let e = client(&mock, json!({ "timeouts": { "request_ms": 2000 } }))
        .token()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn invalid_client_is_typed_and_cooled_down() {
    let mock = MockServer::start();
    let c = client(
        &mock,
        json!({ "client_secret": "wrong-secret", "error_cooldown_ms": 60000 }),
    );
    let e = c.token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidClient);
    assert_eq!(e.http_status(), Some(401));
    assert_eq!(e.oauth_error(), Some("invalid_client"));
    assert_eq!(
        e.oauth_error_description(),
        Some("Client authentication failed.")
    );
    assert!(e.message().contains("Client authentication failed."), "{e}");
    assert!(e.message().contains(&mock.token_url()), "{e}");
    for _ in 0..20 {
        assert_eq!(c.token().unwrap_err().kind(), ErrorKind::InvalidClient);
    }
    assert_eq!(
        mock.token_requests(),
        1,
        "calls inside the cooldown do not reach the IdP"
    );
    assert!(!e.message().contains("wrong-secret"));
}

#[test]
fn malformed_responses_are_bad_response_errors() {
    let cases = [
        (
            json!({ "status": 200, "body": "this is not json", "content_type": "text/plain" }),
            "not a JSON object",
        ),
        (
            json!({ "status": 200, "body": "{\"token_type\":\"Bearer\",\"expires_in\":60}" }),
            "without an `access_token`",
        ),
        (
            json!({ "status": 200, "body": "[1,2,3]" }),
            "not a JSON object",
        ),
        (
            json!({ "status": 200, "body": "{\"access_token\":\"a b\"}" }),
            "spaces",
        ),
        (
            json!({ "status": 404, "body": "<html>Not Found</html>", "content_type": "text/html" }),
            "Not Found",
        ),
        (
            json!({ "kind": "oversized", "size": 10 * 1024 * 1024 }),
            "limit",
        ),
    ];
    for (fault, needle) in cases {
        let mock = MockServer::start();
        let mut fault = fault;
        fault["target"] = json!("token");
        mock.push_fault(fault.clone());
        let e = client(&mock, json!({})).token().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadResponse, "{fault}: {e}");
        assert!(e.message().contains(needle), "{fault}: {e}");
        assert_eq!(
            mock.token_requests(),
            1,
            "hard failures are not retried: {fault}"
        );
    }
}

#[test]
fn html_502_from_a_proxy_is_a_server_error_quoting_the_page() {
    let mock = MockServer::start();
    let page = format!(
        "<html><body><h1>502 Bad Gateway</h1>{}</body></html>",
        "x".repeat(1000)
    );
    mock.push_fault(json!({ "target": "token", "count": 3, "status": 502, "body": page, "content_type": "text/html" }));
    let e = client(&mock, json!({})).token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().contains("502 Bad Gateway"), "{e}");
    assert!(
        e.message().len() < 600,
        "quotes at most 200 characters: {}",
        e.message().len()
    );
}

#[test]
fn expires_in_shapes_and_token_type_case() {
    for (patch, lifetime) in [
        (json!({ "expires_in": "string", "ttl_secs": 1800 }), 1800),
        (json!({ "expires_in": "float", "ttl_secs": 1200 }), 1200),
        (json!({ "expires_in": "missing", "ttl_secs": 1234 }), 1234),
        (
            json!({ "expires_in": "missing", "token_format": "opaque" }),
            777,
        ),
        (json!({ "token_type": "bearer" }), 3600),
        (json!({ "token_type": "BEARER" }), 3600),
        (json!({ "token_type": null }), 3600),
    ] {
        let mock = MockServer::start();
        mock.configure(patch.clone());
        let c = client(&mock, json!({ "default_lifetime_secs": 777 }));
        let t = c.token().unwrap_or_else(|e| panic!("{patch}: {e}"));
        assert_eq!(t.lifetime(), Duration::from_secs(lifetime), "{patch}");
        assert_eq!(t.token_type(), "Bearer");
        assert_eq!(c.authorization().unwrap(), format!("Bearer {}", t.as_str()));
        c.token().unwrap();
        assert_eq!(mock.token_requests(), 1, "cached: {patch}");
    }
}

#[test]
fn zero_and_negative_lifetimes_are_used_once_never_cached() {
    for mode in ["zero", "negative"] {
        let mock = MockServer::start();
        mock.configure(json!({ "expires_in": mode }));
        let c = client(&mock, json!({}));
        let a = c.token().unwrap();
        assert_eq!(a.lifetime(), Duration::ZERO);
        let b = c.token().unwrap();
        assert_ne!(a.as_str(), b.as_str(), "{mode}: refetched");
        assert_eq!(mock.token_requests(), 2, "{mode}");
    }
}

#[test]
fn unusable_token_types_are_refused() {
    let mock = MockServer::start();
    mock.configure(json!({ "token_type": "mac" }));
    let e = client(&mock, json!({})).token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadResponse);
    assert!(e.message().contains("Bearer"), "{e}");
}

#[test]
fn a_hanging_endpoint_times_out_within_the_deadline() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "target": "token", "kind": "hang", "count": 5 }));
    let c = client(&mock, json!({ "timeouts": { "request_ms": 500 } }));
    let started = Instant::now();
    let e = c.token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_closed_port_is_a_network_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = json!({
        "token_url": format!("http://127.0.0.1:{port}/oauth/token"),
        "client_id": "c", "client_secret": "s", "allow_http": true,
        "retry": { "max_attempts": 2, "base_delay_ms": 10, "max_delay_ms": 20 },
    });
    let c = Client::new(Config::from_json(&config.to_string()).unwrap()).unwrap();
    let e = c.token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert!(e.message().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[test]
fn connection_closed_without_answer_is_retried() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "target": "token", "kind": "close", "count": 1 }));
    client(&mock, json!({}))
        .token()
        .expect("second attempt succeeds");
    assert_eq!(mock.token_requests(), 2);
}

#[test]
fn https_with_the_ca_file_works_and_without_it_fails() {
    let dir = std::env::temp_dir().join(format!("tw-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mock = MockServer::start_tls(&dir);
    assert!(mock.url().starts_with("https://localhost:"));
    let ca = mock.ca_pem_path().expect("ca.pem");
    let base = json!({ "token_url": mock.token_url(), "client_id": "demo-client", "client_secret": "demo-secret",
                       "retry": { "max_attempts": 1 } });
    let with_ca = |url: String| {
        let mut c = base.clone();
        c["token_url"] = json!(url);
        c["tls"] = json!({ "ca_file": ca.to_str().unwrap() });
        Client::new(Config::from_json(&c.to_string()).unwrap()).unwrap()
    };
    with_ca(mock.token_url())
        .token()
        .expect("trusted via tls.ca_file");

    let e = Client::new(Config::from_json(&base.to_string()).unwrap())
        .unwrap()
        .token()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");

    // The certificate names `localhost` only.
    let wrong_host = mock.token_url().replace("localhost", "127.0.0.1");
    let e = with_ca(wrong_host).token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn configuration_is_rejected_with_the_key_named() {
    let cases = [
        (
            r#"{"token_url":"http://idp.example.com/t","client_id":"c","client_secret":"s","allow_http":true}"#,
            "non-loopback",
        ),
        (
            r#"{"token_url":"https://i/t","client_id":"c","client_secert":"s"}"#,
            "client_secert",
        ),
        (
            r#"{"token_url":"https://i/t","client_id":"c","client_secret":"s","headers":{"tenant-code":"T1\r\nX-Evil: 1"}}"#,
            "CR, LF",
        ),
        (
            r#"{"token_url":"https://i/t","client_secret":"s"}"#,
            "client_id",
        ),
        (
            r#"{"token_url":"https://i/t","client_id":"c"}"#,
            "client secret is required",
        ),
        (
            r#"{"token_url":"https://i/t","client_id":"c","client_secret":"s","client_secret_file":"/x"}"#,
            "only one of",
        ),
        (
            r#"{"token_url":"https://i/t","client_id":"c","client_secret":"s","auth_method":"magic"}"#,
            "auth_method",
        ),
        (
            r#"{"token_url":"https://i/t","client_id":"c","client_secret":"s","timeouts":{"request_ms":0}}"#,
            "timeouts.request_ms",
        ),
        (
            r#"{"token_url":"https://i/t","client_id":"c","client_secret":"s","tls":{"ca_file":"/nonexistent.pem"}}"#,
            "tls.ca_file",
        ),
        (
            r#"{"token_url":"https://i/t","client_id":"c","auth_method":"private_key_jwt"}"#,
            "private_key_file",
        ),
        (
            r#"{"token_url":"https://i/t","client_id":"c","auth_method":"tls_client_auth"}"#,
            "tls.client_cert_file",
        ),
        (r#"[1]"#, "JSON object"),
    ];
    for (text, needle) in cases {
        let e = Config::from_json(text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{text}");
        assert!(e.message().contains(needle), "{text}: {e}");
        assert!(!e.message().contains("\"s\""));
    }
}

#[test]
fn nothing_formatted_contains_the_secret_or_the_full_token() {
    let secret = "s3cr3t-value-that-must-not-leak";
    let mock = MockServer::start_with(MockOptions {
        client_secret: secret.into(),
        ..MockOptions::default()
    });
    let config =
        Config::from_json(&config_json(&mock, json!({ "client_secret": secret }))).unwrap();
    let c = Client::new(config.clone()).unwrap();
    let rec = Recorder::attach(&c);
    let token = c.token().unwrap();
    c.invalidate(Some(token.as_str()));
    let token2 = c.token().unwrap();
    c.set_client_secret("wrong-one-also-secret").unwrap();
    let err = c.token().unwrap_err();
    let mut texts = vec![
        format!("{config:?}"),
        format!("{c:?}"),
        format!("{token:?}"),
        format!("{token2:?}"),
        format!("{err}"),
        format!("{err:?}"),
        format!("{:?}", c.stats()),
        c.stats().to_json(),
    ];
    texts.extend(rec.messages());
    assert!(
        rec.messages()
            .iter()
            .any(|m| m.contains(token.fingerprint())),
        "events name fingerprints"
    );
    for text in &texts {
        for forbidden in [
            secret,
            "wrong-one-also-secret",
            token.as_str(),
            token2.as_str(),
        ] {
            assert!(!text.contains(forbidden), "leaked in: {text}");
        }
    }
}

#[test]
fn rotation_clears_the_cache_and_the_cooldown() {
    let mock = MockServer::start();
    let c = client(
        &mock,
        json!({ "client_secret": "old-wrong", "error_cooldown_ms": 60000 }),
    );
    assert_eq!(c.token().unwrap_err().kind(), ErrorKind::InvalidClient);
    assert_eq!(c.token().unwrap_err().kind(), ErrorKind::InvalidClient);
    assert_eq!(mock.token_requests(), 1);
    c.set_client_secret("demo-secret").unwrap();
    let a = c.token().expect("the new secret is used at once");
    assert_eq!(mock.token_requests(), 2);
    c.set_client_secret("demo-secret").unwrap();
    let b = c.token().unwrap();
    assert_ne!(a.as_str(), b.as_str(), "rotation evicts cached tokens");
    assert_eq!(
        c.set_client_secret("").unwrap_err().kind(),
        ErrorKind::Config
    );
}

#[test]
fn env_configuration_with_the_api_prefix() {
    let mock = MockServer::start();
    let prefix = format!("TWTEST{}_API_", std::process::id());
    let set = |k: &str, v: &str| std::env::set_var(format!("{prefix}{k}"), v);
    set("AUTH_URL", &mock.token_url());
    set("CLIENT_ID", "demo-client");
    set("CLIENT_SECRET", "demo-secret");
    set("SCOPE", "EventsApi");
    set("TENANT_CODE", "T9");
    set("VERSION", "3");
    set("BASE_URL", &mock.url());
    set("ALLOW_HTTP", "1");
    let c = Client::new(Config::from_env(Some(&prefix)).unwrap()).unwrap();
    let headers = c.headers().unwrap();
    assert_eq!(headers[0].0, "Authorization");
    assert_eq!(
        &headers[1..],
        &[
            ("tenant-code".into(), "T9".into()),
            ("api-version".into(), "3".into())
        ]
    );
    assert_eq!(claims(c.token().unwrap().as_str())["scope"], "EventsApi");
}

#[test]
fn issuer_discovery_finds_the_token_endpoint_once() {
    let mock = MockServer::start();
    let config = json!({ "issuer": mock.url(), "client_id": "demo-client", "client_secret": "demo-secret", "allow_http": true });
    let c = Client::new(Config::from_json(&config.to_string()).unwrap()).unwrap();
    let t = c.token().unwrap();
    assert!(mock.is_token_valid(t.as_str()));
    c.invalidate(None);
    c.token().unwrap();
    assert_eq!(mock.token_requests(), 2);
}

#[test]
fn private_key_jwt_sends_a_signed_assertion() {
    let dir = std::env::temp_dir().join(format!("tw-pkjwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("key.pem");
    std::fs::write(&key_path, ec_key_pem()).unwrap();
    let mock = MockServer::start();
    let config = json!({ "token_url": mock.token_url(), "client_id": "demo-client", "auth_method": "private_key_jwt",
                         "private_key_file": key_path.to_str().unwrap(), "private_key_id": "k1", "allow_http": true,
                         "retry": { "max_attempts": 1 } });
    let c = Client::new(Config::from_json(&config.to_string()).unwrap()).unwrap();
    // The mock does not verify assertions, so it refuses the client; the request is what we check.
    let _ = c.token();
    let req = &mock.token_log()[0];
    assert!(req.body.contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"), "{}", req.body);
    let assertion = req
        .body
        .split('&')
        .find_map(|f| f.strip_prefix("client_assertion="))
        .expect("assertion");
    assert_eq!(assertion.split('.').count(), 3);
    let claims = tokenward_mock::decode_claims(assertion).expect("JWT");
    assert_eq!(claims["iss"], "demo-client");
    assert_eq!(claims["aud"], mock.token_url());
    assert!(!req.body.contains("client_secret"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh P-256 key as PKCS#8 PEM.
fn ec_key_pem() -> String {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let der = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.as_ref().chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            b64.push(if i <= chunk.len() {
                table[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}
