//! Hostile servers against what tokenward says: no secret, assertion or token in any
//! message, `Debug`, OAuth field or event, however a server echoes it; nothing huge either;
//! discovery documents checked before a credential goes anywhere; `Retry-After` of any shape
//! neither panics nor stretches a wait past its cap.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use common::Recorder;
use serde_json::{json, Value};
use tokenward::{Client, Config, Error, ErrorKind, EventKind, Request};
use tokenward_mock::hostile::{HostileServer, RawResponse};
use tokenward_mock::MockServer;

/// A secret with every character class an encoder treats differently: space, `+`, `/`,
/// `%`, reserved punctuation and non-ASCII.
const SECRET: &str = "xY9#mK2$ pL8@nQ5+/%é";

/// Messages may be long only by what tokenward writes itself (a URL, a hint); every quoted
/// piece of server text is at most 300 characters.
const MESSAGE_LIMIT: usize = 1500;

fn client(config: Value) -> Client {
    Client::new(Config::from_json(&config.to_string()).expect("valid config")).expect("client")
}

/// A client of `token_url` with the test secret, one attempt per fetch.
fn secret_client(token_url: &str, auth_method: &str) -> Client {
    client(json!({
        "token_url": token_url,
        "client_id": "demo-client",
        "client_secret": SECRET,
        "auth_method": auth_method,
        "allow_http": true,
        "retry": { "max_attempts": 1 },
        "timeouts": { "request_ms": 5000 },
    }))
}

/// Every place an error or its events could show server text, as one string.
fn everything(e: &Error, events: &Recorder) -> String {
    format!(
        "{e}\n{e:?}\n{:?}\n{:?}\n{:?}\n{}",
        e.oauth_error(),
        e.oauth_error_description(),
        e.required_scope(),
        events.messages().join("\n")
    )
}

fn assert_bounded(e: &Error) {
    assert!(
        e.message().chars().count() <= MESSAGE_LIMIT,
        "{} characters: {}…",
        e.message().chars().count(),
        e.message().chars().take(200).collect::<String>()
    );
    for field in [
        e.oauth_error(),
        e.oauth_error_description(),
        e.required_scope(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(field.chars().count() <= 300, "{} characters", field.len());
    }
    assert!(format!("{e:?}").chars().count() <= 2 * MESSAGE_LIMIT);
}

/// Form-decode one `application/x-www-form-urlencoded` value.
fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&value[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The client secret a request carried, as it was on the wire (form field or Basic).
fn sent_secret_field(req: &tokenward_mock::hostile::RecordedRequest) -> Option<String> {
    let body = String::from_utf8_lossy(&req.body).into_owned();
    body.split('&')
        .find_map(|f| f.strip_prefix("client_secret="))
        .map(str::to_string)
}

/// The `Basic` credentials a request carried, decoded: (form-encoded pair, raw pair).
fn sent_basic(req: &tokenward_mock::hostile::RecordedRequest) -> Option<(String, String, String)> {
    let value = req.header("authorization")?;
    let payload = value.strip_prefix("Basic ")?.to_string();
    let pair = String::from_utf8(STANDARD.decode(&payload).ok()?).ok()?;
    let (id, secret) = pair.split_once(':')?;
    Some((
        payload,
        pair.clone(),
        format!("{}:{}", form_decode(id), form_decode(secret)),
    ))
}

/// How an echoing server writes back the secret it received.
#[derive(Clone, Copy, Debug)]
enum Echo {
    Raw,
    PercentUpper,
    PercentLower,
    PlusForSpace,
    BasicAsSent,
    BasicReEncoded,
    BasicUrlSafe,
}

impl Echo {
    const ALL: [Echo; 7] = [
        Echo::Raw,
        Echo::PercentUpper,
        Echo::PercentLower,
        Echo::PlusForSpace,
        Echo::BasicAsSent,
        Echo::BasicReEncoded,
        Echo::BasicUrlSafe,
    ];

    fn auth_method(self) -> &'static str {
        match self {
            Echo::BasicAsSent | Echo::BasicReEncoded | Echo::BasicUrlSafe => "client_secret_basic",
            _ => "client_secret_post",
        }
    }

    /// What the server writes back, made from what it received.
    fn of(self, req: &tokenward_mock::hostile::RecordedRequest) -> String {
        let field = sent_secret_field(req);
        let basic = sent_basic(req);
        match self {
            Echo::Raw => form_decode(&field.expect("a form secret")),
            Echo::PercentUpper => field.expect("a form secret"),
            Echo::PercentLower => {
                let field = field.expect("a form secret");
                // Lower-case every %XX escape.
                let mut out = String::new();
                let mut rest = field.as_str();
                while let Some(at) = rest.find('%') {
                    out.push_str(&rest[..at]);
                    out.push_str(&rest[at..at + 3].to_ascii_lowercase());
                    rest = &rest[at + 3..];
                }
                out.push_str(rest);
                out
            }
            Echo::PlusForSpace => form_decode(&field.expect("a form secret"))
                .bytes()
                .map(|b| match b {
                    b' ' => "+".to_string(),
                    b if b.is_ascii_alphanumeric() => (b as char).to_string(),
                    b => format!("%{b:02X}"),
                })
                .collect(),
            Echo::BasicAsSent => format!("Basic {}", basic.expect("Basic").0),
            Echo::BasicReEncoded => STANDARD.encode(basic.expect("Basic").2),
            Echo::BasicUrlSafe => URL_SAFE.encode(basic.expect("Basic").1),
        }
    }
}

/// Pieces any echo of the test secret would show (base64 pieces start after the 12 bytes of
/// `demo-client:`, so they encode secret bytes only).
fn secret_pieces() -> Vec<String> {
    let pe = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let sent_pair = format!("{}:{}", pe("demo-client"), pe(SECRET));
    let raw_pair = format!("demo-client:{SECRET}");
    let mut pieces = vec!["xY9".to_string(), "pL8".into(), "nQ5".into()];
    for encoded in [
        STANDARD.encode(&sent_pair),
        STANDARD.encode(&raw_pair),
        URL_SAFE.encode(&sent_pair),
        URL_SAFE.encode(&raw_pair),
    ] {
        pieces.push(encoded[16..28].to_string());
    }
    pieces
}

fn assert_no_secret(text: &str, what: &str) {
    for piece in secret_pieces() {
        assert!(!text.contains(&piece), "{what}: `{piece}` in\n{text}");
    }
}

/// Where in its answer an echoing token endpoint puts the echo.
#[derive(Clone, Copy, Debug)]
enum Place {
    ErrorDescription,
    ErrorCode,
    TokenType,
    HtmlBody,
    NotAnObject,
}

impl Place {
    const ALL: [Place; 5] = [
        Place::ErrorDescription,
        Place::ErrorCode,
        Place::TokenType,
        Place::HtmlBody,
        Place::NotAnObject,
    ];

    fn answer(self, echo: &str) -> RawResponse {
        match self {
            Place::ErrorDescription => RawResponse::json(
                400,
                &json!({ "error": "invalid_client", "error_description": format!("bad secret {echo}") }),
            ),
            Place::ErrorCode => RawResponse::json(400, &json!({ "error": echo })),
            Place::TokenType => RawResponse::json(
                200,
                &json!({ "access_token": "AT-1", "token_type": echo, "expires_in": 60 }),
            ),
            Place::HtmlBody => RawResponse::http(
                400,
                &[("Content-Type", "text/html")],
                format!("<html><body>You sent {echo}</body></html>"),
            ),
            Place::NotAnObject => RawResponse::json(200, &json!([echo])),
        }
    }
}

#[test]
fn an_echoed_secret_never_reaches_a_message_in_any_encoding() {
    for echo in Echo::ALL {
        for place in Place::ALL {
            let server = HostileServer::start(move |req| place.answer(&echo.of(req)));
            let c = secret_client(&server.url_for("/token"), echo.auth_method());
            let events = Recorder::attach(&c);
            let e = c.token().expect_err("the server refuses");
            let what = format!("{echo:?} in {place:?}");
            assert_eq!(server.request_count(), 1, "{what}");
            // The server did echo it: the test is not vacuous.
            let echoed = echo.of(&server.requests()[0]);
            assert!(
                secret_pieces().iter().any(|p| echoed.contains(p.as_str())),
                "{what}: {echoed}"
            );
            assert!(events.kinds().contains(&EventKind::FetchFailed), "{what}");
            assert_no_secret(&everything(&e, &events), &what);
            assert!(e.message().contains("[redacted]"), "{what}: {e}");
        }
    }
}

#[test]
fn token_members_of_a_quoted_body_are_scrubbed() {
    let bodies = [
        RawResponse::json(
            400,
            &json!({ "status": 400, "access_token": "AT-leak-1", "refresh_token": "RT-leak-2", "id_token": "ID-leak-3" }),
        ),
        RawResponse::json(
            200,
            &json!([{ "access_token": "AT-leak-1", "refresh_token": "RT-leak-2" }, { "id_token": "ID-leak-3" }]),
        ),
        RawResponse::http(
            502,
            &[("Content-Type", "text/plain")],
            "upstream said access_token=AT-leak-1&refresh_token=RT-leak-2&id_token=ID-leak-3",
        ),
        RawResponse::json(
            200,
            &json!({ "access_token": "AT-leak-1", "token_type": "mac AT-leak-1", "refresh_token": "RT-leak-2" }),
        ),
    ];
    for body in bodies {
        let server = HostileServer::start(move |_| body.clone());
        let c = secret_client(&server.url_for("/token"), "client_secret_post");
        let events = Recorder::attach(&c);
        let e = c.token().expect_err("refused");
        let all = everything(&e, &events);
        for leak in ["AT-leak-1", "RT-leak-2", "ID-leak-3"] {
            assert!(!all.contains(leak), "{leak} in\n{all}");
        }
    }
}

/// An API (on a hostile server, bound by `api_base_urls`) whose answers quote the token
/// each request carried; tokens come from the mock.
fn api_echo_client(api: &HostileServer, mock: &MockServer) -> Client {
    client(json!({
        "token_url": mock.token_url(),
        "client_id": "demo-client",
        "client_secret": "demo-secret",
        "allow_http": true,
        "api_base_urls": [api.origin()],
        "retry": { "max_attempts": 1 },
        "timeouts": { "request_ms": 5000 },
    }))
}

fn carried_token(req: &tokenward_mock::hostile::RecordedRequest) -> String {
    req.header("authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_string))
        .unwrap_or_default()
}

fn assert_no_token(text: &str, tokens: &[String], what: &str) {
    for token in tokens {
        assert!(!token.is_empty());
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !text.contains(token.as_str()),
            "{what}: the token in\n{text}"
        );
        assert!(
            !text.contains(signature),
            "{what}: its signature in\n{text}"
        );
    }
}

#[test]
fn the_token_a_request_carried_never_reaches_a_message() {
    let mock = MockServer::start();
    type Answer = fn(&str) -> RawResponse;
    let answers: [(&str, Answer); 4] = [
        ("401 description", |t| {
            RawResponse::http(
                401,
                &[(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer error="invalid_token", error_description="token {t} is expired""#
                    ),
                )],
                "",
            )
        }),
        ("401 error code", |t| {
            RawResponse::http(
                401,
                &[("WWW-Authenticate", &format!(r#"Bearer error="{t}""#))],
                "",
            )
        }),
        ("403 description and scope", |t| {
            RawResponse::http(
                403,
                &[(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer error="insufficient_scope", scope="{t}", error_description="{t} may not""#
                    ),
                )],
                "",
            )
        }),
        ("redirect to a closed port", |t| {
            RawResponse::redirect(302, &format!("http://127.0.0.1:1/steal?t={t}"))
        }),
    ];
    for (what, answer) in answers {
        let api = HostileServer::start(move |req| answer(&carried_token(req)));
        let c = api_echo_client(&api, &mock);
        let events = Recorder::attach(&c);
        let e = c
            .send(Request::get(&api.url_for("/items")))
            .expect_err("refused");
        let tokens: Vec<String> = api.requests().iter().map(carried_token).collect();
        assert!(!tokens.is_empty(), "{what}");
        assert_no_token(&everything(&e, &events), &tokens, what);
        assert_bounded(&e);
    }
    // A Location the client refuses to follow, carrying the token.
    let api = HostileServer::start(|req| {
        RawResponse::redirect(302, &format!("ftp://files.example/{}", carried_token(req)))
    });
    let c = api_echo_client(&api, &mock);
    let e = c
        .send(Request::get(&api.url_for("/items")))
        .expect_err("refused");
    let tokens: Vec<String> = api.requests().iter().map(carried_token).collect();
    assert_no_token(
        &everything(&e, &Recorder::default()),
        &tokens,
        "refused Location",
    );
}

#[test]
fn oversized_fields_are_clipped_in_every_quoted_place() {
    let huge = |c: &str| c.repeat(500_000);
    let token_answers: Vec<(&str, RawResponse)> = vec![
        (
            "error",
            RawResponse::json(400, &json!({ "error": huge("E") })),
        ),
        (
            "error_description",
            RawResponse::json(
                400,
                &json!({ "error": "invalid_request", "error_description": huge("D") }),
            ),
        ),
        (
            "token_type",
            RawResponse::json(
                200,
                &json!({ "access_token": "AT", "token_type": huge("T") }),
            ),
        ),
        (
            "rejected body",
            RawResponse::http(400, &[("Content-Type", "text/html")], "B ".repeat(450_000)),
        ),
        ("not an object", RawResponse::json(200, &json!([huge("N")]))),
    ];
    for (what, answer) in token_answers {
        let server = HostileServer::start(move |_| answer.clone());
        let c = secret_client(&server.url_for("/token"), "client_secret_post");
        let e = c.token().expect_err(what);
        assert_bounded(&e);
        assert!(e.message().contains('…'), "{what}: {e}");
    }

    // Discovery documents.
    // Each answer gets the issuer the client was configured with.
    type DiscoveryAnswer = fn(&str) -> RawResponse;
    let discovery_answers: Vec<(&str, DiscoveryAnswer)> = vec![
        ("issuer", |_| {
            RawResponse::json(
                200,
                &json!({ "issuer": "I".repeat(500_000), "token_endpoint": "https://idp.example/t" }),
            )
        }),
        ("token_endpoint", |issuer| {
            RawResponse::json(
                200,
                &json!({ "issuer": issuer, "token_endpoint": format!("http://idp.example/{}", "P".repeat(500_000)) }),
            )
        }),
        ("error page", |_| {
            RawResponse::http(404, &[], "<p>".repeat(300_000))
        }),
    ];
    for (what, answer) in discovery_answers {
        let issuer = Arc::new(std::sync::OnceLock::<String>::new());
        let seen = Arc::clone(&issuer);
        let server = HostileServer::start(move |_| answer(seen.get().map_or("", String::as_str)));
        issuer.set(server.url()).unwrap();
        let c = client(json!({
            "issuer": server.url(), "client_id": "demo-client", "client_secret": SECRET,
            "allow_http": true, "retry": { "max_attempts": 1 },
        }));
        let e = c.token().expect_err(what);
        assert_bounded(&e);
    }

    // The API's challenge parameters and a Location.
    let mock = MockServer::start();
    let api_answers: Vec<(&str, RawResponse)> = vec![
        (
            "401 description",
            RawResponse::http(
                401,
                &[(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer error="{}", error_description="{}""#,
                        "e".repeat(20_000),
                        "d".repeat(20_000)
                    ),
                )],
                "",
            ),
        ),
        (
            "403 scope",
            RawResponse::http(
                403,
                &[(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer error="insufficient_scope", scope="{}""#,
                        "s".repeat(40_000)
                    ),
                )],
                "",
            ),
        ),
        (
            "Location refused",
            RawResponse::redirect(302, &format!("ftp://x/{}", "L".repeat(40_000))),
        ),
        (
            "Location unreachable",
            RawResponse::redirect(302, &format!("http://127.0.0.1:1/{}", "L".repeat(40_000))),
        ),
    ];
    for (what, answer) in api_answers {
        let api = HostileServer::start(move |_| answer.clone());
        let c = api_echo_client(&api, &mock);
        let e = c
            .send(Request::get(&api.url_for("/items")))
            .expect_err(what);
        assert_bounded(&e);
    }
}

#[test]
fn a_discovery_document_naming_another_issuer_gets_no_credential() {
    let elsewhere = HostileServer::start(|_| {
        RawResponse::json(200, &json!({ "access_token": "stolen", "expires_in": 60 }))
    });
    let token_endpoint = elsewhere.url_for("/token");
    let discovery = HostileServer::start(move |_| {
        RawResponse::json(
            200,
            &json!({ "issuer": "https://evil.example", "token_endpoint": token_endpoint }),
        )
    });
    let c = secret_client_for_issuer(&discovery.url());
    let e = c.token().expect_err("the document is refused");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("issuer"), "{e}");
    assert_eq!(
        elsewhere.request_count(),
        0,
        "nothing was sent to its token endpoint"
    );
}

#[test]
fn a_discovered_token_endpoint_on_plain_http_gets_no_credential() {
    let discovery = HostileServer::start(|req| {
        let issuer = format!("http://{}", req.header("host").unwrap_or_default());
        RawResponse::json(
            200,
            &json!({ "issuer": issuer, "token_endpoint": format!("http://idp.example.com/token?client_secret={SECRET}") }),
        )
    });
    let c = secret_client_for_issuer(&discovery.url());
    let e = c.token().expect_err("the document is refused");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("https"), "{e}");
    assert_no_secret(&everything(&e, &Recorder::default()), "plain http endpoint");
    assert_eq!(
        discovery.request_count(),
        1,
        "only the document was asked for"
    );
}

#[test]
fn a_discovery_document_without_an_issuer_is_refused() {
    let discovery = HostileServer::start(|_| {
        RawResponse::json(
            200,
            &json!({ "token_endpoint": "https://idp.example/token" }),
        )
    });
    let e = secret_client_for_issuer(&discovery.url())
        .token()
        .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

#[test]
fn a_matching_issuer_may_differ_by_a_trailing_slash() {
    let mock = MockServer::start();
    let token_endpoint = mock.token_url();
    let discovery = HostileServer::start(move |req| {
        let issuer = format!("http://{}/", req.header("host").unwrap_or_default());
        RawResponse::json(
            200,
            &json!({ "issuer": issuer, "token_endpoint": token_endpoint }),
        )
    });
    let c = client(json!({
        "issuer": discovery.url(), "client_id": "demo-client", "client_secret": "demo-secret",
        "allow_http": true,
    }));
    c.token().expect("the document is accepted");
    assert_eq!(mock.token_requests(), 1);
}

fn secret_client_for_issuer(issuer: &str) -> Client {
    client(json!({
        "issuer": issuer, "client_id": "demo-client", "client_secret": SECRET,
        "allow_http": true, "retry": { "max_attempts": 1 },
    }))
}

/// A deterministic xorshift generator, so every run sends the same values.
struct Gen(u64);

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Retry-After values a hostile server might send: extreme dates and numbers, and
/// generated garbage.
fn retry_after_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "Sun, 06 Nov 18446744073709551615 08:49:37 GMT",
        "Sun, 06 Nov 18446744073709551616 08:49:37 GMT",
        "Sunday, 06-Nov-18446744073709551615 08:49:37 GMT",
        "Sun Nov  6 08:49:37 18446744073709551615",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Sun, 99 Nov 1994 99:99:99 GMT",
        "18446744073709551615",
        "18446744073709551616",
        "999999999999999999999999999999999999",
        "86400",
        "0",
        "-1",
        "1e9",
        "0.01",
        "",
        "soon",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let parts = [
        "Sun,",
        "06",
        "Nov",
        "1994",
        "08:49:37",
        "GMT",
        "18446744073709551615",
        "-",
        ":",
        "9999",
        "99999",
        "é",
        "  ",
    ];
    let mut g = Gen(0x2545_F491_4F6C_DD1D);
    for _ in 0..40 {
        let n = 1 + g.below(7);
        let value: Vec<&str> = (0..n).map(|_| parts[g.below(parts.len())]).collect();
        values.push(value.join(if g.below(2) == 0 { " " } else { "" }));
    }
    values
}

#[test]
fn any_retry_after_neither_panics_nor_waits_past_max_delay() {
    let values = Arc::new(retry_after_values());
    let next = Arc::new(AtomicUsize::new(0));
    let server = HostileServer::start({
        let values = Arc::clone(&values);
        let next = Arc::clone(&next);
        move |_| {
            let value = &values[next.load(Ordering::SeqCst) % values.len()];
            RawResponse::http(
                429,
                &[("Retry-After", value.as_str())],
                r#"{"error":"slow_down"}"#,
            )
        }
    });
    for i in 0..values.len() {
        next.store(i, Ordering::SeqCst);
        let c = client(json!({
            "token_url": server.url_for("/token"), "client_id": "demo-client",
            "client_secret": "s", "allow_http": true,
            "retry": { "max_attempts": 2, "base_delay_ms": 10, "max_delay_ms": 50, "max_retry_after_ms": 100 },
            "timeouts": { "request_ms": 3000 },
        }));
        let events = Recorder::attach(&c);
        let e = c.token().expect_err("always 429");
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{:?}: {e}", values[i]);
        for message in events.messages() {
            if let Some(ms) = message
                .split("retrying in ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
            {
                let ms: u64 = ms.parse().expect("a delay in ms");
                assert!(ms <= 50, "{:?} waited {ms} ms in a call", values[i]);
            }
        }
    }
}

#[test]
fn a_huge_retry_after_is_remembered_only_up_to_its_cap() {
    let asked = Arc::new(AtomicUsize::new(0));
    let server = HostileServer::start({
        let asked = Arc::clone(&asked);
        move |_| {
            if asked.fetch_add(1, Ordering::SeqCst) == 0 {
                RawResponse::http(429, &[("Retry-After", "86400")], r#"{"error":"slow_down"}"#)
            } else {
                RawResponse::json(200, &json!({ "access_token": "fresh", "expires_in": 600 }))
            }
        }
    });
    let c = client(json!({
        "token_url": server.url_for("/token"), "client_id": "demo-client",
        "client_secret": "s", "allow_http": true,
        "retry": { "max_attempts": 3, "base_delay_ms": 10, "max_delay_ms": 50, "max_retry_after_ms": 200 },
    }));
    let e = c.token().expect_err("the first answer is 429");
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(86_400)));
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "a day's wait ends the call at once"
    );
    // Answered from memory for at most 200 ms, then asked again: bounded, not a day.
    let mut token = None;
    for _ in 0..400 {
        match c.token() {
            Ok(t) => {
                token = Some(t);
                break;
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::RateLimited),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(token.expect("asked again after the cap").as_str(), "fresh");
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}
