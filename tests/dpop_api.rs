//! DPoP (RFC 9449) at the API, against the mock: a fresh proof per request from `send` and
//! `headers_for`, refusals of every other presentation, API nonces (`send` and `recover`),
//! uniqueness under 64 threads, 401 recovery, refresh-ahead and redirects with DPoP, and
//! the refusal of the request-independent header calls (Rust and C ABI).

mod common;
mod keys;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{claims, client};
use keys::{decode_jwt, sha256_b64url, TestKey};
use serde_json::{json, Value};
use tokenward::{Client, ErrorKind, Request};
use tokenward_mock::hostile::{HostileServer, RawResponse};
use tokenward_mock::{MockServer, RecordedRequest};

fn dpop_mock() -> MockServer {
    let mock = MockServer::start();
    mock.configure(json!({ "dpop": "required" }));
    mock
}

fn dpop_client(mock: &MockServer, extra: Value) -> Client {
    let mut config = json!({ "dpop": { "generate": true } });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    client(mock, config)
}

/// A plain HTTP GET with exactly `headers`, as another HTTP client would send it.
fn raw_get(url: &str, headers: &[(String, String)]) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let mut response = request.call().expect("the mock answers");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// Check that a request the API received carried a DPoP token and a proof for exactly its
/// method and URL; returns the proof's claims.
fn check_bound(mock: &MockServer, request: &RecordedRequest) -> Value {
    let authorization = request.headers.get("authorization").expect("Authorization");
    let token = authorization
        .strip_prefix("DPoP ")
        .unwrap_or_else(|| panic!("DPoP scheme: {authorization}"));
    let (header, proof) = decode_jwt(request.headers.get("dpop").expect("a DPoP proof"));
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(proof["htm"], request.method.as_str());
    let path = request.path.split('?').next().unwrap();
    assert_eq!(proof["htu"], format!("{}{path}", mock.url()));
    assert_eq!(proof["ath"], sha256_b64url(token.as_bytes()));
    proof
}

#[test]
fn the_api_accepts_dpop_requests_and_refuses_every_other_presentation() {
    let mock = dpop_mock();
    let c = dpop_client(&mock, json!({}));
    let url = format!("{}/api/items?page=2", mock.url());

    let response = c.send(Request::get(&url)).unwrap();
    assert_eq!(response.status(), 200, "{}", response.text());
    let sent = mock.api_log();
    let token = c.token().unwrap();
    assert_eq!(
        sent[0].headers["authorization"],
        format!("DPoP {}", token.as_str())
    );
    check_bound(&mock, &sent[0]);

    // headers_for: the same, for another HTTP client.
    let headers = c.headers_for("GET", &url).unwrap();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..2],
        ["Authorization", "DPoP"],
        "then the static headers"
    );
    assert_eq!(names.len(), 4);
    let (status, body) = raw_get(&url, &headers);
    assert_eq!(status, 200, "{body}");

    // The same proof twice is a replay.
    let (status, body) = raw_get(&url, &headers);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_dpop_proof"), "{body}");
    // The bound token as a Bearer token.
    let bearer = vec![
        (
            "Authorization".to_string(),
            format!("Bearer {}", token.as_str()),
        ),
        ("tenant-code".into(), "T1".into()),
        ("api-version".into(), "2".into()),
    ];
    let (status, body) = raw_get(&url, &bearer);
    assert_eq!(status, 401, "{body}");
    // The bound token with a valid proof by another key.
    let thief = TestKey::new();
    let mut stolen = headers.clone();
    stolen[1].1 = thief.proof(
        "GET",
        &format!("{}/api/items", mock.url()),
        Some(token.as_str()),
    );
    let (status, body) = raw_get(&url, &stolen);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_dpop_proof"), "{body}");
    // A proof made for another method, or another URL.
    let post = c.headers_for("POST", &url).unwrap();
    assert_eq!(raw_get(&url, &post).0, 401);
    let other = c
        .headers_for("GET", &format!("{}/api/other", mock.url()))
        .unwrap();
    assert_eq!(raw_get(&url, &other).0, 401);
    // No proof at all.
    let without_proof: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| n != "DPoP")
        .cloned()
        .collect();
    let (status, _) = raw_get(&url, &without_proof);
    assert_eq!(status, 401);
    assert_eq!(
        mock.stats().token_requests,
        1,
        "the refusals cost no token request"
    );
}

#[test]
fn plain_headers_and_authorization_need_the_request() {
    let mock = dpop_mock();
    let c = dpop_client(&mock, json!({}));
    for err in [c.headers().unwrap_err(), c.authorization().unwrap_err()] {
        assert_eq!(err.kind(), ErrorKind::NeedsRequest, "{err}");
        assert!(err.message().contains("headers_for(method, url)"), "{err}");
    }
    assert_eq!(mock.stats().token_requests, 0, "refused before any fetch");
    assert_eq!(c.token().unwrap().token_type(), "DPoP");
    // A client without DPoP is unaffected.
    let plain_mock = MockServer::start();
    let plain = client(&plain_mock, json!({}));
    assert!(plain.authorization().unwrap().starts_with("Bearer "));
}

#[test]
fn caller_dpop_headers_are_refused() {
    let mock = dpop_mock();
    let c = dpop_client(&mock, json!({}));
    let err = c
        .send(Request::get(&format!("{}/api/items", mock.url())).header("dpop", "x.y.z"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.message().contains("tokenward sets it"), "{err}");
    assert_eq!(mock.stats().api_requests, 0);
}

#[test]
fn an_api_nonce_challenge_is_answered_once_and_the_nonce_remembered() {
    let mock = dpop_mock();
    mock.configure(json!({ "dpop_api_nonce": "api-1" }));
    let c = dpop_client(&mock, json!({}));
    let url = format!("{}/api/items", mock.url());
    assert_eq!(c.send(Request::get(&url)).unwrap().status(), 200);
    let sent = mock.api_log();
    assert_eq!(sent.len(), 2, "the challenge, then the re-send");
    assert!(check_bound(&mock, &sent[0]).get("nonce").is_none());
    assert_eq!(check_bound(&mock, &sent[1])["nonce"], "api-1");
    assert_eq!(
        c.stats().invalidations,
        0,
        "a nonce challenge keeps the token"
    );
    assert_eq!(mock.stats().token_requests, 1);

    // Remembered: the next request carries it at once; headers_for too.
    assert_eq!(c.send(Request::post(&url).body("x")).unwrap().status(), 200);
    assert_eq!(mock.api_log().len(), 3);
    let headers = c.headers_for("GET", &url).unwrap();
    assert_eq!(decode_jwt(header(&headers, "dpop")).1["nonce"], "api-1");

    // Rotated: one more challenge and re-send.
    mock.configure(json!({ "dpop_api_nonce": "api-2" }));
    assert_eq!(c.send(Request::get(&url)).unwrap().status(), 200);
    let sent = mock.api_log();
    assert_eq!(sent.len(), 5);
    assert_eq!(check_bound(&mock, &sent[4])["nonce"], "api-2");
}

#[test]
fn recover_answers_an_api_nonce_challenge_without_dropping_the_token() {
    let mock = dpop_mock();
    mock.configure(json!({ "dpop_api_nonce": "adapter-1" }));
    let c = dpop_client(&mock, json!({}));
    let url = format!("{}/api/items", mock.url());
    let first = c.headers_for("GET", &url).unwrap();
    // What an adapter does: send, then report the answer.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(&url);
    for (name, value) in &first {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.call().unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let answer: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    assert!(c
        .recover(&url, header(&first, "authorization"), 401, &answer, b"")
        .unwrap());
    assert_eq!(c.stats().invalidations, 0, "the token stays");
    let again = c.headers_for("GET", &url).unwrap();
    assert_eq!(
        header(&again, "authorization"),
        header(&first, "authorization")
    );
    assert_eq!(decode_jwt(header(&again, "dpop")).1["nonce"], "adapter-1");
    assert_eq!(raw_get(&url, &again).0, 200);
    // The same challenge again (no new nonce) is an ordinary rejection.
    assert!(c
        .recover(&url, header(&again, "authorization"), 401, &answer, b"")
        .unwrap());
    assert_eq!(c.stats().invalidations, 1);
    // Without headers nothing is learnt: an ordinary rejection too.
    assert!(!c
        .recover(&url, "DPoP x", 200, &[] as &[(&str, &str)], b"")
        .unwrap());
}

#[test]
fn an_api_that_challenges_forever_gets_bounded_retries() {
    let idp = dpop_mock();
    let n = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&n);
    let api = HostileServer::start(move |_req| {
        let i = counter.fetch_add(1, Ordering::SeqCst);
        RawResponse::http(
            401,
            &[
                (
                    "WWW-Authenticate",
                    r#"DPoP error="use_dpop_nonce", algs="ES256""#,
                ),
                ("DPoP-Nonce", &format!("n-{i}")),
            ],
            "",
        )
    });
    let c = dpop_client(&idp, json!({ "api_base_urls": [api.url()] }));
    let err = c.send(Request::get(&api.url_for("/x"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    // One nonce re-send, then the ordinary recovery: one refresh and one re-send.
    assert_eq!(api.request_count(), 3);
    assert_eq!(idp.stats().token_requests, 2);
    let proofs: Vec<String> = api
        .requests()
        .iter()
        .map(|r| r.header("dpop").unwrap())
        .collect();
    assert_eq!(decode_jwt(&proofs[1]).1["nonce"], "n-0");
}

#[test]
fn sixty_four_threads_never_reuse_a_proof() {
    let mock = dpop_mock();
    let c = Arc::new(dpop_client(&mock, json!({})));
    const THREADS: usize = 64;
    const EACH: usize = 3;
    let methods = ["GET", "PUT", "DELETE", "POST", "PATCH"];
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = Arc::clone(&c);
            let base = mock.url();
            std::thread::spawn(move || {
                let mut proofs = Vec::new();
                for i in 0..EACH {
                    let method = methods[(t + i) % methods.len()];
                    let url = format!("{base}/api/t{t}/r{i}?q={i}");
                    let response = c.send(Request::new(method, &url).body("b")).unwrap();
                    assert_eq!(
                        response.status(),
                        200,
                        "{method} {url}: {}",
                        response.text()
                    );
                    // And the per-request header call, without sending.
                    let headers = c.headers_for(method, &url).unwrap();
                    let (_, claims) = decode_jwt(header(&headers, "dpop"));
                    assert_eq!(claims["htm"], method);
                    assert_eq!(claims["htu"], format!("{base}/api/t{t}/r{i}"));
                    proofs.push(claims["jti"].as_str().unwrap().to_string());
                }
                proofs
            })
        })
        .collect();
    let mut jtis: HashSet<String> = HashSet::new();
    for handle in handles {
        for jti in handle.join().unwrap() {
            assert!(jtis.insert(jti), "a proof jti was reused");
        }
    }
    let sent = mock.api_log();
    assert_eq!(sent.len(), THREADS * EACH, "no request needed a retry");
    for request in &sent {
        let proof = check_bound(&mock, request);
        assert!(
            jtis.insert(proof["jti"].as_str().unwrap().to_string()),
            "a proof jti was reused"
        );
    }
    assert_eq!(jtis.len(), 2 * THREADS * EACH);
    assert_eq!(mock.stats().token_requests, 1);
}

#[test]
fn a_401_is_recovered_with_a_new_bound_token() {
    let mock = dpop_mock();
    let c = dpop_client(&mock, json!({}));
    let url = format!("{}/api/items", mock.url());
    assert_eq!(c.send(Request::get(&url)).unwrap().status(), 200);
    let old = c.token().unwrap();
    mock.revoke_all();
    assert_eq!(c.send(Request::get(&url)).unwrap().status(), 200);
    let new = c.token().unwrap();
    assert_ne!(old.as_str(), new.as_str());
    assert_eq!(
        claims(new.as_str())["cnf"]["jkt"],
        c.dpop_thumbprint().unwrap()
    );
    let sent = mock.api_log();
    assert_eq!(sent.len(), 3, "ok, 401, re-send");
    assert_eq!(
        sent[2].headers["authorization"],
        format!("DPoP {}", new.as_str())
    );
    check_bound(&mock, &sent[2]);
    assert_eq!(mock.stats().token_requests, 2);
    assert_eq!(c.stats().invalidations, 1);
}

#[test]
fn refresh_ahead_brings_a_new_bound_token_while_the_old_one_serves() {
    let mock = dpop_mock();
    // 4 s tokens: fresh for 2 s, then one background refresh.
    mock.configure(json!({ "ttl_secs": 4 }));
    let c = dpop_client(&mock, json!({}));
    let url = format!("{}/api/items", mock.url());
    let first = c.token().unwrap();
    std::thread::sleep(Duration::from_millis(2300));
    // In the refresh window: answered with the current token at once; a refresh starts.
    assert_eq!(c.send(Request::get(&url)).unwrap().status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let second = loop {
        let token = c.token().unwrap();
        if token.as_str() != first.as_str() || Instant::now() > deadline {
            break token;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(
        second.as_str(),
        first.as_str(),
        "the background refresh landed"
    );
    assert_eq!(second.token_type(), "DPoP");
    assert_eq!(c.send(Request::get(&url)).unwrap().status(), 200);
    assert_eq!(mock.stats().token_requests, 2);
    assert_eq!(c.stats().background_refreshes, 1);
}

#[test]
fn every_redirect_hop_gets_its_own_proof() {
    let mock = dpop_mock();
    let c = dpop_client(&mock, json!({ "api_base_urls": [mock.url()] }));
    let url = format!("{}/api/redirect?to=%2Fapi%2Flanding%3Fz%3D1", mock.url());
    let response = c.send(Request::get(&url)).unwrap();
    assert_eq!(response.status(), 200, "{}", response.text());
    let sent = mock.api_log();
    assert_eq!(sent.len(), 2);
    let hops: Vec<Value> = sent.iter().map(|r| check_bound(&mock, r)).collect();
    assert_eq!(hops[1]["htu"], format!("{}/api/landing", mock.url()));
    assert_ne!(hops[0]["jti"], hops[1]["jti"]);
}

#[cfg(feature = "ffi")]
#[test]
fn the_c_abi_makes_dpop_headers_per_request_only() {
    use std::ffi::{c_char, CStr, CString};
    use tokenward::ffi::*;

    let mock = dpop_mock();
    let config = CString::new(common::config_json(
        &mock,
        json!({ "dpop": { "generate": true } }),
    ))
    .unwrap();
    let mut handle = std::ptr::null_mut();
    // SAFETY: valid C strings and out-pointer.
    assert_eq!(
        unsafe { tw_client_new(config.as_ptr(), &mut handle) },
        TW_OK
    );
    let mut buf = vec![0 as c_char; 8192];
    let mut len = 0usize;
    let last_error = || {
        // SAFETY: tw_last_error never returns NULL.
        unsafe { CStr::from_ptr(tw_last_error()) }
            .to_string_lossy()
            .into_owned()
    };
    for status in [
        // SAFETY: a live handle and a buffer of `buf.len()` bytes.
        unsafe { tw_client_headers(handle, buf.as_mut_ptr(), buf.len(), &mut len) },
        // SAFETY: as above.
        unsafe { tw_client_authorization(handle, buf.as_mut_ptr(), buf.len(), &mut len) },
    ] {
        assert_eq!(status, TW_ERR_NEEDS_REQUEST);
        assert!(
            last_error().contains("tw_client_headers_for"),
            "{}",
            last_error()
        );
    }
    // SAFETY: a static string.
    let name = unsafe { CStr::from_ptr(tw_status_name(TW_ERR_NEEDS_REQUEST)) };
    assert_eq!(name.to_str().unwrap(), "TW_ERR_NEEDS_REQUEST");
    let url = CString::new(format!("{}/api/items", mock.url())).unwrap();
    // SAFETY: live handle, C strings, buffer of `buf.len()` bytes.
    let status = unsafe {
        tw_client_headers_for(
            handle,
            c"GET".as_ptr(),
            url.as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
        )
    };
    assert_eq!(status, TW_OK, "{}", last_error());
    // SAFETY: NUL-terminated by the call.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(lines[0].starts_with("Authorization: DPoP "), "{text}");
    assert!(lines[1].starts_with("DPoP: ey"), "{text}");
    let headers: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(raw_get(url.to_str().unwrap(), &headers).0, 200);
    // SAFETY: freed once.
    unsafe { tw_client_free(handle) };
}

#[test]
fn a_proof_echoed_by_the_api_never_reaches_a_message() {
    let idp = dpop_mock();
    let api = HostileServer::start(|req| {
        let proof = req.header("dpop").unwrap_or_default();
        RawResponse::http(
            401,
            &[(
                "WWW-Authenticate",
                &format!(r#"DPoP error="invalid_dpop_proof", error_description="bad {proof}""#),
            )],
            format!(r#"{{"error":"invalid_dpop_proof","proof":"{proof}"}}"#),
        )
    });
    let c = dpop_client(&idp, json!({ "api_base_urls": [api.url()] }));
    let events = common::Recorder::attach(&c);
    let err = c.send(Request::get(&api.url_for("/x"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let proofs: Vec<String> = api
        .requests()
        .iter()
        .map(|r| r.header("dpop").unwrap())
        .collect();
    assert_eq!(proofs.len(), 2);
    let texts: Vec<String> = [
        err.to_string(),
        format!("{err:?}"),
        err.oauth_error_description()
            .unwrap_or_default()
            .to_string(),
    ]
    .into_iter()
    .chain(events.messages())
    .collect();
    for text in &texts {
        for proof in &proofs {
            assert!(!text.contains(proof.as_str()), "{text}");
            assert!(!text.contains(proof.rsplit('.').next().unwrap()), "{text}");
        }
    }
}

#[test]
fn the_diagnosis_proves_possession_too() {
    let mock = dpop_mock();
    let c = dpop_client(&mock, json!({}));
    let url = format!("{}/api/items", mock.url());
    let diagnosis = c.diagnose(&tokenward::DiagnoseOptions::new().probe(&url));
    assert!(
        diagnosis.is_ok(),
        "{:?}",
        diagnosis.verdict().map(|c| c.summary().to_string())
    );
    let probe = diagnosis
        .checks()
        .iter()
        .find(|c| c.id() == "probe")
        .unwrap();
    assert_eq!(
        probe.status(),
        tokenward::CheckStatus::Pass,
        "{}",
        probe.summary()
    );
    let probed: Vec<RecordedRequest> = mock
        .api_log()
        .into_iter()
        .filter(|r| r.path == "/api/items")
        .collect();
    assert_eq!(probed.len(), 1);
    check_bound(&mock, &probed[0]);
    let settings = diagnosis
        .checks()
        .iter()
        .find(|c| c.id() == "config")
        .unwrap();
    assert!(
        settings
            .details()
            .iter()
            .any(|d| d.contains("generate(ES256)")),
        "{:?}",
        settings.details()
    );
}
