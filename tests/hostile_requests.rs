//! The request path against hostile servers that record every request exactly as received:
//! caller headers that try to inject or override (Rust API, C text form, C pairs form),
//! redirects to another origin, relative `Location`s, `headers_for` refusing a foreign
//! origin, an API that rejects every token (no refresh storm), and handles passed back after
//! they were freed.

mod common;

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::Arc;

use serde_json::{json, Value};
use tokenward::ffi::*;
use tokenward::{Client, Config, ErrorKind, Request};
use tokenward_mock::hostile::{HostileServer, RawResponse, RecordedRequest};
use tokenward_mock::MockServer;

const RESERVED: [&str; 8] = [
    "Authorization",
    "Proxy-Authorization",
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "TE",
    "Upgrade",
];

fn ok() -> RawResponse {
    RawResponse::json(200, &json!({ "ok": true }))
}

/// A client whose tokens come from `idp` and whose only API origin is `api`.
fn config(idp: &MockServer, api: &HostileServer, extra: Value) -> String {
    let mut extra = extra;
    extra["api_base_urls"] = json!([api.url()]);
    common::config_json(idp, extra)
}

fn client(idp: &MockServer, api: &HostileServer) -> Client {
    Client::new(Config::from_json(&config(idp, api, json!({}))).unwrap()).unwrap()
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(tw_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// A C handle for the same configuration; freed by the test.
fn c_client(json: &str) -> *mut tw_client {
    let json = CString::new(json).unwrap();
    let mut out = null_mut();
    assert_eq!(
        unsafe { tw_client_new(json.as_ptr(), &mut out) },
        TW_OK,
        "{}",
        last_error()
    );
    out
}

fn c_send_text(c: *mut tw_client, url: &str, headers: &str) -> (tw_status, *mut tw_response) {
    let url = CString::new(url).unwrap();
    let headers = CString::new(headers).unwrap();
    let mut out = null_mut();
    let status = unsafe {
        tw_client_send(
            c,
            c"GET".as_ptr(),
            url.as_ptr(),
            headers.as_ptr(),
            null(),
            0,
            &mut out,
        )
    };
    (status, out)
}

fn c_send_pairs(
    c: *mut tw_client,
    url: &str,
    pairs: &[(&str, &str)],
) -> (tw_status, *mut tw_response) {
    let url = CString::new(url).unwrap();
    let names: Vec<CString> = pairs
        .iter()
        .map(|(n, _)| CString::new(*n).unwrap())
        .collect();
    let values: Vec<CString> = pairs
        .iter()
        .map(|(_, v)| CString::new(*v).unwrap())
        .collect();
    let name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let value_ptrs: Vec<*const c_char> = values.iter().map(|v| v.as_ptr()).collect();
    let mut out = null_mut();
    let status = unsafe {
        tw_client_send_pairs(
            c,
            c"GET".as_ptr(),
            url.as_ptr(),
            name_ptrs.as_ptr(),
            value_ptrs.as_ptr(),
            pairs.len(),
            null(),
            0,
            &mut out,
        )
    };
    (status, out)
}

fn names(request: &RecordedRequest) -> Vec<String> {
    request
        .headers()
        .into_iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect()
}

#[test]
fn header_injection_through_the_c_text_form_is_refused_naming_the_line() {
    let idp = MockServer::start();
    let api = HostileServer::start(|_| ok());
    let c = c_client(&config(&idp, &api, json!({})));
    let url = api.url_for("/items");
    for (headers, line, why) in [
        ("X-A: 1\r\nX-B: 2\nX-Evil: 1\r\n", 2, "bare LF"),
        ("X-A: 1\nX-Evil: 1\r\n", 1, "bare LF"),
        ("X-A: 1\rX-Evil: 1\r\n", 1, "bare CR"),
        ("X-A: 1\r\n X-Evil: 1\r\n", 2, "starts with whitespace"),
        ("X-A: 1\r\n\tX-Evil: 1\r\n", 2, "starts with whitespace"),
        ("X-A : 1\r\n", 1, "whitespace before the ':'"),
        ("X-A: 1\r\n\r\nX-Evil: 1\r\n", 2, "is empty"),
        ("X-A: 1\r\nX Evil: 1\r\n", 2, "not an RFC 9110 token"),
        ("X-A: 1\r\nX-B: a\u{7}b\r\n", 2, "control character"),
        ("X-A: 1\r\nno colon\r\n", 2, "no ':'"),
        ("X-A: 1", 1, "does not end with CRLF"),
    ] {
        let (status, out) = c_send_text(c, &url, headers);
        assert_eq!(status, TW_ERR_INVALID_ARGUMENT, "{headers:?}");
        assert!(out.is_null());
        let message = last_error();
        assert!(
            message.contains(&format!("line {line}")) && message.contains(why),
            "{headers:?}: {message}"
        );
    }
    assert_eq!(api.request_count(), 0, "nothing was sent");
    assert_eq!(idp.token_requests(), 0, "not even a token request");

    // A well-formed block (with one final empty line) arrives as written, after ours.
    let (status, out) = c_send_text(c, &url, "X-Request-Id: 42\r\nAccept:  text/plain \r\n\r\n");
    assert_eq!(status, TW_OK, "{}", last_error());
    unsafe { tw_response_free(out) };
    let got = &api.requests()[0];
    assert_eq!(got.header("x-request-id").as_deref(), Some("42"));
    assert_eq!(got.header("accept").as_deref(), Some("text/plain"));
    assert!(got.header("x-evil").is_none());
    unsafe { tw_client_free(c) };
}

#[test]
fn header_injection_through_the_c_pairs_form_is_refused_naming_the_pair() {
    let idp = MockServer::start();
    let api = HostileServer::start(|_| ok());
    let c = c_client(&config(&idp, &api, json!({})));
    let url = api.url_for("/items");
    for (pairs, index, why) in [
        (
            vec![("X-A", "1"), ("X-B", "v\r\nX-Evil: 1")],
            1,
            "control character",
        ),
        (vec![("X-B", "v\nX-Evil: 1")], 0, "control character"),
        (
            vec![("X-A", "1"), ("X-B", "v\rX-Evil: 1")],
            1,
            "control character",
        ),
        (vec![("X-A: 1\r\nX-Evil", "1")], 0, "not an RFC 9110 token"),
        (vec![("X A", "1")], 0, "not an RFC 9110 token"),
        (vec![("", "1")], 0, "not an RFC 9110 token"),
        (
            vec![("X-A", "1"), ("host", "evil.example")],
            1,
            "may not be set",
        ),
    ] {
        let (status, out) = c_send_pairs(c, &url, &pairs);
        assert_eq!(status, TW_ERR_INVALID_ARGUMENT, "{pairs:?}");
        assert!(out.is_null());
        let message = last_error();
        assert!(
            message.contains(&format!("header pair {index}")) && message.contains(why),
            "{pairs:?}: {message}"
        );
        assert!(!message.contains("X-Evil: 1") || index == 0, "{message}");
    }
    // NULL elements and invalid UTF-8 are named too.
    let url_c = CString::new(url.clone()).unwrap();
    let name = c"X-A";
    let bad = [0xffu8, 0];
    let mut out: *mut tw_response = null_mut();
    for (names, values, what) in [
        ([name.as_ptr()], [null::<c_char>()], "`values[0]` is NULL"),
        ([null::<c_char>()], [name.as_ptr()], "`names[0]` is NULL"),
        (
            [name.as_ptr()],
            [bad.as_ptr().cast()],
            "`values[0]` is not valid UTF-8",
        ),
    ] {
        let status = unsafe {
            tw_client_send_pairs(
                c,
                c"GET".as_ptr(),
                url_c.as_ptr(),
                names.as_ptr(),
                values.as_ptr(),
                1,
                null(),
                0,
                &mut out,
            )
        };
        assert_eq!(status, TW_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains(what), "{}", last_error());
    }
    assert_eq!(api.request_count(), 0, "nothing was sent");

    // Valid pairs arrive as given, values untrimmed of inner spaces.
    let (status, out) = c_send_pairs(c, &url, &[("X-Note", "a b"), ("Accept", "text/csv")]);
    assert_eq!(status, TW_OK, "{}", last_error());
    unsafe { tw_response_free(out) };
    let got = &api.requests()[0];
    assert_eq!(got.header("x-note").as_deref(), Some("a b"));
    assert_eq!(got.header("accept").as_deref(), Some("text/csv"));
    // NULL arrays are fine with no pairs.
    let mut out = null_mut();
    let status = unsafe {
        tw_client_send_pairs(
            c,
            c"GET".as_ptr(),
            url_c.as_ptr(),
            null(),
            null(),
            0,
            null(),
            0,
            &mut out,
        )
    };
    assert_eq!(status, TW_OK, "{}", last_error());
    unsafe { tw_response_free(out) };
    unsafe { tw_client_free(c) };
}

#[test]
fn reserved_headers_are_refused_in_any_case_by_every_form() {
    let idp = MockServer::start();
    let api = HostileServer::start(|_| ok());
    let rust = client(&idp, &api);
    let c = c_client(&config(&idp, &api, json!({})));
    let url = api.url_for("/items");
    for reserved in RESERVED {
        for name in [
            reserved.to_string(),
            reserved.to_ascii_lowercase(),
            reserved.to_ascii_uppercase(),
        ] {
            let e = rust
                .send(Request::get(&url).header(&name, "evil.example"))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{name}");
            assert!(e.message().contains("may not be set"), "{e}");

            let (status, _) = c_send_text(c, &url, &format!("{name}: 0\r\n"));
            assert_eq!(status, TW_ERR_INVALID_ARGUMENT, "{name}");
            assert!(last_error().contains("line 1"), "{}", last_error());

            let (status, _) = c_send_pairs(c, &url, &[(&name, "0")]);
            assert_eq!(status, TW_ERR_INVALID_ARGUMENT, "{name}");
        }
    }
    assert_eq!(api.request_count(), 0, "nothing was sent");
    unsafe { tw_client_free(c) };
}

/// An API (allowed origin) that answers `/start` with `status` to `target`, and 200 to
/// everything else.
fn redirecting_api(status: u16, target: String) -> HostileServer {
    HostileServer::start(move |r| {
        if r.path() == "/start" {
            RawResponse::redirect(status, &target)
        } else {
            ok()
        }
    })
}

fn caller_request(url: &str) -> Request {
    Request::post(url)
        .header("Accept", "application/json")
        .header("Accept-Language", "de")
        .header("User-Agent", "billing/1.0")
        .header("Content-Type", "application/json")
        .header("Cookie", "session=s3cr3t")
        .header("X-Api-Key", "k3y")
        .body("{\"amount\":1}")
}

#[test]
fn a_redirect_to_another_origin_carries_nothing_of_ours() {
    let idp = MockServer::start();
    let evil = HostileServer::start(|_| ok());
    let api = redirecting_api(307, evil.url_for("/steal"));
    let c = client(&idp, &api);
    let r = c.send(caller_request(&api.url_for("/start"))).unwrap();
    assert_eq!(r.status(), 200);

    let first = &api.requests()[0];
    for name in [
        "authorization",
        "tenant-code",
        "api-version",
        "cookie",
        "x-api-key",
    ] {
        assert!(first.header(name).is_some(), "{name} goes to the API");
    }
    let landed = evil.requests();
    assert_eq!(landed.len(), 1);
    let got = &landed[0];
    assert_eq!(got.method(), "POST", "307 keeps the method");
    assert_eq!(got.body, b"{\"amount\":1}", "and the body");
    let mut sent = names(got);
    sent.sort();
    // Only what describes the request, plus what the transport itself writes.
    for name in &sent {
        assert!(
            [
                "accept",
                "accept-language",
                "user-agent",
                "content-type",
                "host",
                "content-length",
                "accept-encoding",
                "connection",
            ]
            .contains(&name.as_str()),
            "{name} went to the other origin: {sent:?}"
        );
    }
    assert_eq!(got.header("accept").as_deref(), Some("application/json"));
    assert_eq!(got.header("accept-language").as_deref(), Some("de"));
    assert_eq!(got.header("user-agent").as_deref(), Some("billing/1.0"));
    assert_eq!(
        got.header("content-type").as_deref(),
        Some("application/json")
    );
    let raw = String::from_utf8_lossy(&got.raw_head).to_ascii_lowercase();
    for secret in ["bearer", "s3cr3t", "k3y", "t1"] {
        assert!(!raw.contains(secret), "{secret} leaked: {raw}");
    }
}

#[test]
fn a_303_to_another_origin_drops_the_body_and_its_content_type() {
    let idp = MockServer::start();
    let evil = HostileServer::start(|_| ok());
    let api = redirecting_api(303, evil.url_for("/see-other"));
    let c = client(&idp, &api);
    c.send(caller_request(&api.url_for("/start"))).unwrap();
    let got = &evil.requests()[0];
    assert_eq!(got.method(), "GET");
    assert!(got.body.is_empty());
    assert!(got.header("content-type").is_none(), "{:?}", got.headers());
    assert_eq!(got.header("accept").as_deref(), Some("application/json"));
    assert!(got.header("authorization").is_none());
}

#[test]
fn same_origin_redirects_keep_everything() {
    let idp = MockServer::start();
    let api = redirecting_api(307, "/landing".into());
    let c = client(&idp, &api);
    c.send(caller_request(&api.url_for("/start"))).unwrap();
    let landed = api.requests();
    assert_eq!(landed.len(), 2);
    assert_eq!(landed[1].path(), "/landing");
    for name in [
        "authorization",
        "tenant-code",
        "api-version",
        "cookie",
        "x-api-key",
        "accept",
        "content-type",
    ] {
        assert_eq!(
            landed[0].header(name),
            landed[1].header(name),
            "{name} kept on a same-origin redirect"
        );
    }
    assert!(landed[1]
        .header("authorization")
        .is_some_and(|a| a.starts_with("Bearer ")));
    assert_eq!(landed[1].body, b"{\"amount\":1}");
}

#[test]
fn a_chain_that_left_the_allowed_origins_gets_nothing_back_home() {
    let idp = MockServer::start();
    let api_slot: Arc<std::sync::OnceLock<String>> = Arc::default();
    let home = api_slot.clone();
    // The foreign server sends the request back to the API, to a path of its choosing.
    let evil = HostileServer::start(move |_| {
        RawResponse::redirect(307, &format!("{}/admin/delete", home.get().unwrap()))
    });
    let api = redirecting_api(307, evil.url_for("/bounce"));
    api_slot.set(api.url()).unwrap();
    let c = client(&idp, &api);
    c.send(caller_request(&api.url_for("/start"))).unwrap();
    let landed = api.requests();
    assert_eq!(landed.len(), 2);
    assert_eq!(landed[1].path(), "/admin/delete");
    for name in ["authorization", "tenant-code", "cookie", "x-api-key"] {
        assert!(landed[1].header(name).is_none(), "{name} came back");
    }
}

#[test]
fn relative_locations_resolve_by_rfc3986() {
    let idp = MockServer::start();
    let evil = HostileServer::start(|_| ok());
    let next = format!("/path?next={}/steal", evil.url());
    let api = HostileServer::start(move |r| match r.target().as_str() {
        "/v1/items?page=1" => RawResponse::redirect(302, "?page=2"),
        "/v1/items?page=2" => RawResponse::redirect(302, "../x"),
        "/x" => RawResponse::redirect(302, &next),
        _ => ok(),
    });
    let c = client(&idp, &api);
    let r = c
        .send(Request::get(&api.url_for("/v1/items?page=1")))
        .unwrap();
    assert_eq!(r.status(), 200);
    let targets: Vec<String> = api.requests().iter().map(RecordedRequest::target).collect();
    assert_eq!(
        targets,
        [
            "/v1/items?page=1".to_string(),
            "/v1/items?page=2".into(),
            "/x".into(),
            format!("/path?next={}/steal", evil.url()),
        ]
    );
    assert!(api
        .requests()
        .iter()
        .all(|r| r.header("authorization").is_some()));
    assert_eq!(
        evil.request_count(),
        0,
        "a URL in the query is not a target"
    );
}

#[test]
fn headers_for_refuses_a_foreign_origin() {
    let idp = MockServer::start();
    let api = HostileServer::start(|_| ok());
    let evil = HostileServer::start(|_| ok());
    let c = client(&idp, &api);
    let e = c.headers_for("GET", &evil.url_for("/x")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ForeignOrigin);
    assert!(e.message().contains("api_base_urls"), "{e}");
    assert_eq!(idp.token_requests(), 0, "no token fetched for it");
    let e = c.headers_for("G ET", &api.url_for("/x")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = c.headers_for("GET", "https://").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);

    let headers = c.headers_for("POST", &api.url_for("/x?y=1")).unwrap();
    assert_eq!(headers[0].0, "Authorization");
    assert!(headers.contains(&("tenant-code".to_string(), "T1".to_string())));
    assert_eq!(headers, c.headers().unwrap());

    // The same through the C ABI: nothing written for the foreign origin.
    let h = c_client(&config(&idp, &api, json!({})));
    let foreign = CString::new(evil.url_for("/x")).unwrap();
    let mut buf = [0x55 as c_char; 4096];
    let mut len = 0usize;
    let status = unsafe {
        tw_client_headers_for(
            h,
            c"GET".as_ptr(),
            foreign.as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
        )
    };
    assert_eq!(status, TW_ERR_FOREIGN_ORIGIN, "{}", last_error());
    assert!(buf.iter().all(|b| *b == 0x55), "nothing written");
    let own = CString::new(api.url_for("/x")).unwrap();
    let status = unsafe {
        tw_client_headers_for(
            h,
            c"GET".as_ptr(),
            own.as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
        )
    };
    assert_eq!(status, TW_OK, "{}", last_error());
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert!(text.starts_with("Authorization: Bearer "), "{text}");
    assert!(text.contains("\r\ntenant-code: T1\r\n"), "{text}");
    assert!(text.contains("\r\napi-version: 2\r\n"), "{text}");
    unsafe { tw_client_free(h) };
}

#[test]
fn an_api_that_rejects_every_token_causes_no_refresh_storm() {
    let idp = MockServer::start();
    let api = HostileServer::start(|_| {
        RawResponse::http(
            401,
            &[("WWW-Authenticate", "Bearer error=\"invalid_token\"")],
            Vec::new(),
        )
    });
    let c = client(&idp, &api);
    for i in 0..50 {
        let e = c.send(Request::get(&api.url_for("/items"))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{i}: {e}");
        let message = e.message();
        assert!(
            message.contains("freshly issued") && message.contains("audience"),
            "{message}"
        );
        assert!(message.contains("tenant headers"), "{message}");
        if i > 0 {
            assert!(message.contains("error_cooldown"), "{message}");
        }
    }
    assert!(
        idp.token_requests() <= 2,
        "{} token requests for 50 sends",
        idp.token_requests()
    );
    assert_eq!(api.request_count(), 51, "one re-send, then none");
}

#[test]
fn adapters_recovering_through_the_core_cause_no_refresh_storm() {
    let idp = MockServer::start();
    let api = HostileServer::start(|_| ok());
    let c = client(&idp, &api);
    let url = api.url_for("/items");
    let mut refused = 0;
    for _ in 0..50 {
        let headers = c.headers_for("GET", &url).unwrap();
        // The API answered 401 to the request that carried these headers.
        match c.recover(&headers[0].1, 401, b"") {
            Ok(true) => {
                let again = c.headers_for("GET", &url).unwrap();
                assert_ne!(again[0].1, headers[0].1, "a new token for the re-send");
            }
            Ok(false) => panic!("a 401 is a rejection"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unauthorized);
                assert!(e.message().contains("freshly issued"), "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 49);
    assert!(idp.token_requests() <= 2, "{}", idp.token_requests());
    assert!(!c.recover("Bearer x", 200, b"{}").unwrap());
    assert!(!c.recover("Bearer x", 403, b"").unwrap());
}

#[test]
fn recover_honours_graphql_auth_errors() {
    let idp = MockServer::start();
    let api = HostileServer::start(|_| ok());
    let body = br#"{"data":null,"errors":[{"extensions":{"code":"UNAUTHENTICATED"}}]}"#;
    let off = client(&idp, &api);
    let auth = off.authorization().unwrap();
    assert!(!off.recover(&auth, 200, body).unwrap());
    let on = Client::new(
        Config::from_json(&config(&idp, &api, json!({ "graphql_auth_errors": true }))).unwrap(),
    )
    .unwrap();
    let auth = on.authorization().unwrap();
    assert!(on.recover(&auth, 200, body).unwrap());
    assert_ne!(on.authorization().unwrap(), auth, "invalidated");

    // Through the C ABI.
    let h = c_client(&config(&idp, &api, json!({ "graphql_auth_errors": true })));
    let mut len = 0usize;
    let mut buf = [0 as c_char; 4096];
    assert_eq!(
        unsafe { tw_client_authorization(h, buf.as_mut_ptr(), buf.len(), &mut len) },
        TW_OK
    );
    let mut resend: c_int = 7;
    let status =
        unsafe { tw_client_recover(h, buf.as_ptr(), 200, body.as_ptr(), body.len(), &mut resend) };
    assert_eq!((status, resend), (TW_OK, 1), "{}", last_error());
    let status =
        unsafe { tw_client_recover(h, buf.as_ptr(), 200, c"{}".as_ptr().cast(), 2, &mut resend) };
    assert_eq!((status, resend), (TW_OK, 0), "{}", last_error());
    // A token issued after the rejection, rejected again: refused, not re-sent.
    assert_eq!(
        unsafe { tw_client_authorization(h, buf.as_mut_ptr(), buf.len(), &mut len) },
        TW_OK
    );
    let status = unsafe { tw_client_recover(h, buf.as_ptr(), 401, null(), 0, &mut resend) };
    assert_eq!((status, resend), (TW_ERR_UNAUTHORIZED, 0));
    assert!(last_error().contains("freshly issued"), "{}", last_error());
    let status = unsafe { tw_client_recover(h, buf.as_ptr(), 401, null(), 5, &mut resend) };
    assert_eq!(status, TW_ERR_INVALID_ARGUMENT);
    unsafe { tw_client_free(h) };
}

#[test]
fn freed_and_foreign_handles_are_refused() {
    let idp = MockServer::start();
    let api = HostileServer::start(|_| ok());
    let json = config(&idp, &api, json!({}));
    let c = c_client(&json);
    let (status, response) = c_send_text(c, &api.url_for("/items"), "");
    assert_eq!(status, TW_OK);
    let mut buf = [0 as c_char; 4096];
    let mut len = 0usize;

    // A response is not a client, and a client is not a response.
    let status = unsafe { tw_client_token(response.cast(), buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(status, TW_ERR_INVALID_ARGUMENT);
    assert!(
        last_error().contains("not a tw_client handle"),
        "{}",
        last_error()
    );
    assert_eq!(unsafe { tw_response_status(c.cast()) }, 0);
    assert!(
        last_error().contains("not a tw_response handle"),
        "{}",
        last_error()
    );
    // Neither is a zeroed buffer, nor a misaligned pointer.
    let zeros = [0u64; 8];
    let status = unsafe {
        tw_client_token(
            zeros.as_ptr() as *mut tw_client,
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
        )
    };
    assert_eq!(status, TW_ERR_INVALID_ARGUMENT);
    let misaligned = unsafe { zeros.as_ptr().cast::<u8>().add(1) } as *mut tw_client;
    let status = unsafe { tw_client_token(misaligned, buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(status, TW_ERR_INVALID_ARGUMENT);

    unsafe { tw_response_free(response) };
    assert_eq!(unsafe { tw_response_status(response) }, 0);
    assert!(last_error().contains("already freed"), "{}", last_error());
    unsafe { tw_response_free(response) }; // a double free is caught, not a crash

    unsafe { tw_client_free(c) };
    let status = unsafe { tw_client_token(c, buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(status, TW_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("already freed"), "{}", last_error());
    let (status, _) = c_send_text(c, &api.url_for("/items"), "");
    assert_eq!(status, TW_ERR_INVALID_ARGUMENT);
    unsafe { tw_client_free(c) };
    assert!(last_error().contains("already freed"), "{}", last_error());

    // A new client may reuse a shell only after many frees: the freed handle stays freed.
    let fresh = c_client(&json);
    assert_ne!(fresh, c);
    assert_eq!(
        unsafe { tw_client_token(fresh, buf.as_mut_ptr(), buf.len(), &mut len) },
        TW_OK,
        "{}",
        last_error()
    );
    unsafe { tw_client_free(fresh) };
}
