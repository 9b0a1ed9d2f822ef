//! The token endpoint over a scripted transport: the form it sends, how it reads answers
//! and when it retries, without a socket. The same behaviour against a real server is in
//! `tests/token_endpoint.rs`.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::credential::{AuthMethod, Credential};
use super::endpoint::{EndpointSettings, TokenEndpoint, TokenLocation};
use super::token::TokenRequest;
use crate::error::{Error, ErrorKind};
use crate::http::scripted::Script;
use crate::http::RetryPolicy;
use crate::secret::Secret;

const URL: &str = "http://127.0.0.1:9/oauth/token";
const TOKEN: &str =
    r#"{"access_token":"tok-1","token_type":"bearer","expires_in":"120","scope":"read write"}"#;

fn endpoint(script: &Script, auth_method: AuthMethod) -> TokenEndpoint {
    TokenEndpoint::new(
        EndpointSettings {
            location: TokenLocation::Url(URL.into()),
            client_id: "svc".into(),
            auth_method,
            credential: Credential::Secret(Secret::new("s3cr:et")),
            extra_params: vec![("tenant".into(), "t 1".into())],
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
                max_retry_after: Duration::from_millis(2),
            },
            default_lifetime: Duration::from_secs(3600),
            allow_http: true,
            dpop: None,
        },
        Arc::new(script.transport()),
    )
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn fetch_error(endpoint: &TokenEndpoint) -> Error {
    match endpoint.fetch(&TokenRequest::new(), deadline(), &|_, _, _| {}) {
        Ok(fetched) => panic!("expected an error, got a token of {:?}", fetched.lifetime),
        Err(error) => error,
    }
}

#[test]
fn a_token_response_is_read_from_the_form_that_asked_for_it() {
    let script = Script::new();
    script.json(200, "", TOKEN);
    let endpoint = endpoint(&script, AuthMethod::ClientSecretPost);
    let request = TokenRequest::new().scope("write read");
    let fetched = endpoint.fetch(&request, deadline(), &|_, _, _| {}).unwrap();
    assert_eq!(fetched.value.expose(), "tok-1");
    // `expires_in` as a string, as some servers send it.
    assert_eq!(fetched.lifetime, Duration::from_secs(120));
    assert_eq!(fetched.granted_scope.as_deref(), Some("read write"));

    let sent = &script.requests()[0];
    assert_eq!(sent.request_line, "POST /oauth/token HTTP/1.1");
    assert_eq!(
        sent.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(sent.header("accept"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None);
    let form = sent.body_text();
    for pair in [
        "grant_type=client_credentials",
        "scope=write%20read",
        "tenant=t%201",
        "client_id=svc",
        "client_secret=s3cr%3Aet",
    ] {
        assert!(
            form.split('&').any(|p| p == pair),
            "{pair} missing in {form}"
        );
    }
    assert_eq!(endpoint.requests(), 1);
}

#[test]
fn client_secret_basic_sends_the_encoded_pair_in_the_authorization_header() {
    let script = Script::new();
    script.json(200, "", TOKEN);
    let endpoint = endpoint(&script, AuthMethod::ClientSecretBasic);
    endpoint
        .fetch(&TokenRequest::new(), deadline(), &|_, _, _| {})
        .unwrap();
    let sent = &script.requests()[0];
    // RFC 6749 §2.3.1: "svc:s3cr%3Aet" (the secret form-encoded first), base64.
    assert_eq!(
        sent.header("authorization"),
        Some("Basic c3ZjOnMzY3IlM0FldA==")
    );
    assert!(
        !sent.body_text().contains("client_secret"),
        "{}",
        sent.body_text()
    );
}

#[test]
fn an_oauth_error_is_typed_final_and_quotes_no_secret() {
    let script = Script::new();
    script.json(
        401,
        "",
        r#"{"error":"invalid_client","error_description":"client s3cr:et is unknown"}"#,
    );
    let endpoint = endpoint(&script, AuthMethod::ClientSecretPost);
    let error = fetch_error(&endpoint);
    assert_eq!(error.kind(), ErrorKind::InvalidClient, "{error}");
    assert_eq!(error.oauth_error(), Some("invalid_client"));
    assert_eq!(error.http_status(), Some(401));
    assert!(!error.message().contains("s3cr:et"), "{error}");
    assert_eq!(endpoint.requests(), 1, "a hard failure is not retried");
}

#[test]
fn transient_failures_are_retried_until_a_token_arrives() {
    let script = Script::new();
    script
        .refuse()
        .json(
            503,
            "retry-after: 0\r\n",
            r#"{"error":"temporarily_unavailable"}"#,
        )
        .json(200, "", TOKEN);
    let endpoint = endpoint(&script, AuthMethod::ClientSecretPost);
    let retries = Cell::new(Vec::new());
    let fetched = endpoint
        .fetch(&TokenRequest::new(), deadline(), &|error, _, attempt| {
            let mut seen = retries.take();
            seen.push((error.kind(), attempt));
            retries.set(seen);
        })
        .unwrap();
    assert_eq!(fetched.value.expose(), "tok-1");
    assert_eq!(
        retries.take(),
        [(ErrorKind::Network, 1), (ErrorKind::Server, 2)]
    );
    assert_eq!(endpoint.requests(), 3, "every attempt counts");
    assert_eq!(
        script.requests().len(),
        2,
        "the refused attempt sent nothing"
    );
}

#[test]
fn a_login_page_instead_of_json_is_a_bad_response() {
    let script = Script::new();
    script.raw(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 27\r\n\r\n\
         <html>Please sign in</html>",
    );
    let endpoint = endpoint(&script, AuthMethod::ClientSecretPost);
    let error = fetch_error(&endpoint);
    assert_eq!(error.kind(), ErrorKind::BadResponse, "{error}");
    assert!(error.message().contains("not a JSON object"), "{error}");
    assert!(error.message().contains("Please sign in"), "{error}");
}
