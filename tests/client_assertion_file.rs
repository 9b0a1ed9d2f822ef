//! Federated client assertions (RFC 7523 §2.2) read from a file the platform rotates,
//! against the mock IdP, which verifies them with the registered public key.

mod common;
mod keys;

use std::path::{Path, PathBuf};

use common::{claims, Recorder};
use keys::{decode_jwt, unix_now, TempDir, TestKey};
use serde_json::json;
use tokenward::{AuthMethod, Client, Config, ErrorKind};
use tokenward_mock::MockServer;

const ISSUER: &str = "https://kubernetes.default.svc";
const SUBJECT: &str = "system:serviceaccount:payments:worker";
const AUDIENCE: &str = "tokenward-test-audience";

/// A mock that trusts `key` for federated assertions of demo-client.
fn federated_mock(key: &TestKey) -> MockServer {
    let mock = MockServer::start();
    mock.configure(json!({ "assertion_keys": { "demo-client": {
        "public_key_pem": key.public_pem(), "issuer": ISSUER, "subject": SUBJECT, "audience": AUDIENCE,
    } } }));
    mock
}

/// A projected token as the platform would write it, valid for `lifetime` seconds (negative:
/// already expired).
fn assertion(key: &TestKey, jti: &str, lifetime: i64) -> String {
    let now = unix_now() as i64;
    key.jwt(
        &json!({ "alg": "ES256", "typ": "JWT", "kid": "k8s" }),
        &json!({ "iss": ISSUER, "sub": SUBJECT, "aud": AUDIENCE, "jti": jti,
                 "iat": now - 10, "nbf": now - 10, "exp": now + lifetime }),
    )
}

fn file_client(mock: &MockServer, file: &Path, extra: serde_json::Value) -> Client {
    let mut config = json!({
        "token_url": mock.token_url(),
        "client_id": "demo-client",
        "client_assertion_file": file,
        "allow_http": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    Client::new(Config::from_json(&config.to_string()).expect("config")).expect("client")
}

/// The form fields of the `n`th token request the mock received.
fn sent_form(mock: &MockServer, n: usize) -> Vec<(String, String)> {
    let log = mock.token_log();
    log[n]
        .body
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_string(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_file_is_sent_as_the_client_assertion() {
    let key = TestKey::new();
    let mock = federated_mock(&key);
    let dir = TempDir::new("assertion-sent");
    let first = assertion(&key, "a-1", 600);
    let file = dir.write("token", &format!("{first}\n"));
    let c = file_client(&mock, &file, json!({ "scope": "EventsApi" }));
    assert_eq!(
        c.config().default_request().scope_param().as_deref(),
        Some("EventsApi")
    );
    let token = c.token().expect("a token for the federated assertion");
    assert_eq!(claims(token.as_str())["client_id"], "demo-client");
    let form = sent_form(&mock, 0);
    assert_eq!(field(&form, "client_assertion"), Some(first.as_str()));
    assert_eq!(
        field(&form, "client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(field(&form, "client_id"), Some("demo-client"));
    assert_eq!(field(&form, "client_secret"), None);
    assert!(!mock.token_log()[0].headers.contains_key("authorization"));
}

#[test]
fn a_rotated_file_is_read_for_the_next_fetch() {
    let key = TestKey::new();
    let mock = federated_mock(&key);
    let dir = TempDir::new("assertion-rotated");
    let first = assertion(&key, "a-1", 600);
    let file = dir.write("token", &first);
    let c = file_client(&mock, &file, json!({}));
    let t1 = c.token().unwrap();
    let second = assertion(&key, "a-2", 600);
    dir.write("token", &second);
    // A cached token needs no assertion; the next fetch reads the file again.
    assert_eq!(c.token().unwrap().as_str(), t1.as_str());
    assert_eq!(mock.stats().token_requests, 1);
    c.invalidate(None);
    let t2 = c.token().unwrap();
    assert_ne!(t1.as_str(), t2.as_str());
    assert_eq!(
        field(&sent_form(&mock, 0), "client_assertion"),
        Some(first.as_str())
    );
    assert_eq!(
        field(&sent_form(&mock, 1), "client_assertion"),
        Some(second.as_str())
    );
}

#[test]
fn an_expired_file_is_a_config_error_and_nothing_is_sent() {
    let key = TestKey::new();
    let mock = federated_mock(&key);
    let dir = TempDir::new("assertion-expired");
    let expired = assertion(&key, "old", -5);
    let file = dir.write("token", &expired);
    let c = file_client(&mock, &file, json!({ "error_cooldown_ms": 0 }));
    let events = Recorder::attach(&c);
    let err = c.token().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("expired"), "{err}");
    assert!(err.message().contains(&file.display().to_string()), "{err}");
    assert_eq!(
        mock.stats().token_requests,
        0,
        "no request with an expired assertion"
    );
    for text in std::iter::once(format!("{err:?}")).chain(events.messages()) {
        assert!(!text.contains(&expired), "{text}");
    }
    // Once the platform rotates it, fetching works again.
    dir.write("token", &assertion(&key, "new", 600));
    c.token().expect("the rotated assertion works");
    assert_eq!(mock.stats().token_requests, 1);
}

#[test]
fn a_file_that_vanishes_or_holds_no_jwt_is_a_config_error() {
    let key = TestKey::new();
    let mock = federated_mock(&key);
    let dir = TempDir::new("assertion-broken");
    let file = dir.write("token", &assertion(&key, "a", 600));
    let c = file_client(&mock, &file, json!({ "error_cooldown_ms": 0 }));
    dir.write("token", "not a jwt");
    let err = c.token().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("does not hold a JWT"), "{err}");
    std::fs::remove_file(&file).unwrap();
    let err = c.token().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("cannot be read"), "{err}");
    assert_eq!(mock.stats().token_requests, 0);
}

#[test]
fn an_assertion_the_idp_refuses_is_invalid_client_and_never_quoted() {
    let key = TestKey::new();
    let mock = federated_mock(&key);
    let dir = TempDir::new("assertion-refused");
    let stranger = TestKey::new();
    let forged = assertion(&stranger, "forged", 600);
    let file = dir.write("token", &forged);
    let c = file_client(&mock, &file, json!({}));
    let err = c.token().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidClient, "{err}");
    assert!(!err.message().contains(&forged), "{err}");
    assert!(!format!("{c:?}").contains(&forged));
    assert!(!format!("{:?}", c.config()).contains(&forged));
}

#[test]
fn a_missing_file_is_refused_at_build_time() {
    let err = Config::from_json(
        &json!({
            "token_url": "https://idp.example.com/token",
            "client_id": "c",
            "auth_method": "client_assertion_file",
            "client_assertion_file": "/no/such/dir/token",
        })
        .to_string(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message()
            .contains("`client_assertion_file` /no/such/dir/token"),
        "{err}"
    );
}

#[test]
fn dpop_and_a_federated_assertion_together() {
    let key = TestKey::new();
    let mock = federated_mock(&key);
    mock.configure(json!({ "dpop": "required" }));
    let dir = TempDir::new("assertion-dpop");
    let file: PathBuf = dir.write("token", &assertion(&key, "a-1", 600));
    let c = file_client(&mock, &file, json!({ "dpop": { "generate": true } }));
    assert_eq!(c.config().default_request().scope_param(), None);
    let token = c.token().unwrap();
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(
        claims(token.as_str())["cnf"]["jkt"],
        c.dpop_thumbprint().unwrap()
    );
    let (header, _) = decode_jwt(mock.token_log()[0].headers.get("dpop").unwrap());
    assert_eq!(header["typ"], "dpop+jwt");
}

#[test]
fn the_builder_and_the_auth_method_name() {
    let key = TestKey::new();
    let mock = federated_mock(&key);
    let dir = TempDir::new("assertion-builder");
    let file = dir.write("token", &assertion(&key, "a-1", 600));
    let config = Config::builder()
        .token_url(mock.token_url())
        .client_id("demo-client")
        .auth_method(AuthMethod::ClientAssertionFile)
        .client_assertion_file(&file)
        .allow_http(true)
        .build()
        .unwrap();
    let c = Client::new(config).unwrap();
    c.token().unwrap();
    let err = c.set_client_secret("s").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[test]
fn an_assertion_echoed_by_the_server_is_scrubbed() {
    use tokenward_mock::hostile::{HostileServer, RawResponse};
    let server = HostileServer::start(|req| {
        let body = String::from_utf8_lossy(&req.body).into_owned();
        RawResponse::json(
            400,
            &json!({ "error": "invalid_request", "error_description": body }),
        )
    });
    let key = TestKey::new();
    let dir = TempDir::new("assertion-echo");
    let sent = assertion(&key, "echo", 600);
    let file = dir.write("token", &sent);
    let config = json!({
        "token_url": server.url_for("/token"),
        "client_id": "demo-client",
        "client_assertion_file": file,
        "allow_http": true,
    });
    let c = Client::new(Config::from_json(&config.to_string()).unwrap()).unwrap();
    let err = c.token().unwrap_err();
    assert!(
        err.message().contains("client_assertion=[redacted]"),
        "{err}"
    );
    assert!(!err.message().contains(&sent), "{err}");
    assert!(
        !err.message().contains(sent.rsplit('.').next().unwrap()),
        "{err}"
    );
}
