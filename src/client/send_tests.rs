//! The send loop over a scripted transport: headers, one token refresh on 401, origin
//! binding, without a socket. The same behaviour against a real server is in
//! `tests/send.rs`.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::request::Request;
use super::send::{send, Sender, Tokens};
use crate::config::Config;
use crate::error::{ErrorKind, Result};
use crate::http::scripted::Script;
use crate::oauth::token::TokenType;
use crate::oauth::{AccessToken, Timing};
use crate::redact::Redactor;
use crate::secret::Secret;

const API: &str = "http://127.0.0.1:9";

/// Hands out `t1`, `t2`, … and remembers what was rejected (and so invalidated).
#[derive(Default)]
struct Counted {
    issued: RefCell<u32>,
    invalidated: RefCell<Vec<String>>,
}

impl Tokens for Counted {
    fn token(&self) -> Result<AccessToken> {
        let mut issued = self.issued.borrow_mut();
        if self.invalidated.borrow().len() as u32 == *issued {
            *issued += 1;
        }
        let timing = Timing::new(
            Instant::now(),
            Duration::from_secs(3600),
            Duration::ZERO,
            0.0,
        );
        Ok(AccessToken::new(
            Secret::new(format!("t{issued}")),
            TokenType::Bearer,
            None,
            timing,
        ))
    }

    fn rejected(&self, token: &AccessToken) -> std::result::Result<(), Duration> {
        self.invalidated
            .borrow_mut()
            .push(token.as_str().to_string());
        Ok(())
    }

    fn redactor(&self) -> Redactor {
        let mut redactor = Redactor::new();
        redactor.secret("svc", "secret", None);
        redactor
    }
}

fn config() -> Config {
    Config::builder()
        .token_url(format!("{API}/oauth/token"))
        .client_id("svc")
        .client_secret("secret")
        .allow_http(true)
        .api_base_url(API)
        .header("tenant-code", "T1")
        .build()
        .unwrap()
}

#[test]
fn a_401_invalidates_the_token_it_carried_and_retries_once_with_a_new_one() {
    let script = Script::new();
    script
        .json(
            401,
            "www-authenticate: Bearer error=\"invalid_token\"\r\n",
            "{}",
        )
        .json(200, "", r#"{"ok":true}"#);
    let (config, transport, tokens) = (config(), script.transport(), Counted::default());
    let sender = Sender {
        config: &config,
        transport: &transport,
        limiter: None,
        tokens: &tokens,
        dpop: None,
    };
    let response = send(&sender, Request::post(&format!("{API}/orders")).body("{}")).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), r#"{"ok":true}"#);
    assert_eq!(*tokens.invalidated.borrow(), ["t1"]);
    let sent = script.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].header("authorization"), Some("Bearer t1"));
    assert_eq!(sent[1].header("authorization"), Some("Bearer t2"));
    for request in &sent {
        assert_eq!(request.request_line, "POST /orders HTTP/1.1");
        assert_eq!(request.header("tenant-code"), Some("T1"));
        assert_eq!(request.body_text(), "{}");
    }
}

#[test]
fn a_second_401_is_unauthorized_without_a_third_request() {
    let script = Script::new();
    script
        .json(401, "", "{}")
        .json(401, "", "{}")
        .json(200, "", "{}");
    let (config, transport, tokens) = (config(), script.transport(), Counted::default());
    let sender = Sender {
        config: &config,
        transport: &transport,
        limiter: None,
        tokens: &tokens,
        dpop: None,
    };
    let error = match send(&sender, Request::get(&format!("{API}/orders"))) {
        Ok(response) => panic!("expected Unauthorized, got HTTP {}", response.status()),
        Err(e) => e,
    };
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    assert_eq!(*tokens.invalidated.borrow(), ["t1"]);
    assert_eq!(script.requests().len(), 2);
    assert_eq!(script.unused(), 1);
}

#[test]
fn a_url_outside_the_api_origins_is_refused_before_a_token_is_asked_for() {
    let script = Script::new();
    let (config, transport, tokens) = (config(), script.transport(), Counted::default());
    let sender = Sender {
        config: &config,
        transport: &transport,
        limiter: None,
        tokens: &tokens,
        dpop: None,
    };
    let error = match send(&sender, Request::get("http://127.0.0.2:9/orders")) {
        Ok(response) => panic!("expected a refusal, got HTTP {}", response.status()),
        Err(e) => e,
    };
    assert_eq!(error.kind(), ErrorKind::ForeignOrigin, "{error}");
    assert!(error.message().contains("api_base_urls"), "{error}");
    assert_eq!(*tokens.issued.borrow(), 0);
    assert!(script.requests().is_empty());
}
