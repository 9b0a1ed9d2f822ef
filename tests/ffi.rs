//! The C ABI exercised from Rust: argument checks, the buffer protocol, status names,
//! per-thread errors, events and send. (The C suite in bindings/c covers the same from C.)

mod common;

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::Mutex;

use serde_json::json;
use tokenward::ffi::*;
use tokenward_mock::MockServer;

fn last_error() -> String {
    unsafe { CStr::from_ptr(tw_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn new_client(json: &str) -> Result<*mut tw_client, (tw_status, String)> {
    let json = CString::new(json).unwrap();
    let mut out = null_mut();
    match unsafe { tw_client_new(json.as_ptr(), &mut out) } {
        TW_OK => Ok(out),
        status => {
            assert!(out.is_null());
            Err((status, last_error()))
        }
    }
}

fn mock_client(mock: &MockServer) -> *mut tw_client {
    new_client(&common::config_json(mock, json!({}))).unwrap()
}

fn read(f: impl Fn(*mut c_char, usize, *mut usize) -> tw_status) -> Result<String, tw_status> {
    let mut len = 0usize;
    match f(null_mut(), 0, &mut len) {
        TW_ERR_BUFFER_TOO_SMALL => {}
        other => return Err(other),
    }
    let mut buf = vec![0u8; len];
    let status = f(buf.as_mut_ptr().cast(), buf.len(), &mut len);
    if status != TW_OK {
        return Err(status);
    }
    assert_eq!(buf[len - 1], 0, "NUL-terminated");
    Ok(String::from_utf8(buf[..len - 1].to_vec()).unwrap())
}

#[test]
fn names_version_and_null_arguments() {
    let version = unsafe { CStr::from_ptr(tw_version()) }.to_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    for status in [
        0, 1, 2, 3, 10, 11, 12, 20, 21, 22, 23, 24, 25, 26, 30, 31, 32, 99,
    ] {
        let name = unsafe { CStr::from_ptr(tw_status_name(status)) }
            .to_str()
            .unwrap();
        assert!(
            name.starts_with("TW_") && name != "TW_ERR_UNKNOWN",
            "{status}"
        );
    }
    assert_eq!(
        unsafe { CStr::from_ptr(tw_status_name(12345)) }
            .to_str()
            .unwrap(),
        "TW_ERR_UNKNOWN"
    );

    let mut out = null_mut();
    assert_eq!(
        unsafe { tw_client_new(null(), &mut out) },
        TW_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("config_json"));
    assert_eq!(
        unsafe { tw_client_new(c"{}".as_ptr(), null_mut()) },
        TW_ERR_INVALID_ARGUMENT
    );
    let mut len = 0;
    let mut buf = [0 as c_char; 8];
    assert_eq!(
        unsafe { tw_client_token(null_mut(), buf.as_mut_ptr(), 8, &mut len) },
        TW_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { tw_client_headers(null_mut(), null_mut(), 0, &mut len) },
        TW_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { tw_client_stats(null_mut(), null_mut(), 0, &mut len) },
        TW_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { tw_client_invalidate(null_mut(), null()) },
        TW_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { tw_client_set_event_callback(null_mut(), None, null_mut()) },
        TW_ERR_INVALID_ARGUMENT
    );
    unsafe { tw_client_free(null_mut()) };
    unsafe { tw_response_free(null_mut()) };
    assert_eq!(unsafe { tw_response_status(null()) }, 0);
}

#[test]
fn config_errors_at_the_boundary() {
    let (status, msg) = new_client("{not json").unwrap_err();
    assert_eq!(status, TW_ERR_INVALID_ARGUMENT);
    assert!(msg.contains("JSON"), "{msg}");
    let (status, msg) =
        new_client(r#"{"token_url":"https://i/t","client_id":"c","client_secert":"s"}"#)
            .unwrap_err();
    assert_eq!(status, TW_ERR_CONFIG);
    assert!(msg.contains("client_secert"), "{msg}");
    let bad_utf8 = b"{\"client_id\":\"\xff\"}\0";
    let mut out = null_mut();
    assert_eq!(
        unsafe { tw_client_new(bad_utf8.as_ptr().cast(), &mut out) },
        TW_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("UTF-8"));
}

#[test]
fn buffer_protocol() {
    let mock = MockServer::start();
    let c = mock_client(&mock);
    let token = read(|b, cap, len| unsafe { tw_client_token(c, b, cap, len) }).unwrap();
    assert!(mock.is_token_valid(&token));
    let needed = token.len() + 1;
    // One byte short: nothing written, size reported.
    let mut buf = vec![0x55u8; needed - 1];
    let mut len = 0;
    assert_eq!(
        unsafe { tw_client_token(c, buf.as_mut_ptr().cast(), buf.len(), &mut len) },
        TW_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, needed);
    assert!(buf.iter().all(|b| *b == 0x55));
    // Exact fit and a large buffer.
    let mut buf = vec![0u8; needed];
    assert_eq!(
        unsafe { tw_client_token(c, buf.as_mut_ptr().cast(), needed, &mut len) },
        TW_OK
    );
    let mut big = vec![0u8; 4096];
    assert_eq!(
        unsafe { tw_client_token(c, big.as_mut_ptr().cast(), big.len(), &mut len) },
        TW_OK
    );
    assert_eq!(len, needed);
    // NULL buffer with a capacity is a caller bug.
    assert_eq!(
        unsafe { tw_client_token(c, null_mut(), 10, &mut len) },
        TW_ERR_INVALID_ARGUMENT
    );

    let auth = read(|b, cap, len| unsafe { tw_client_authorization(c, b, cap, len) }).unwrap();
    assert_eq!(auth, format!("Bearer {token}"));
    let headers = read(|b, cap, len| unsafe { tw_client_headers(c, b, cap, len) }).unwrap();
    // Static headers follow Authorization in config order (the test JSON is key-sorted).
    assert_eq!(
        headers,
        format!("Authorization: Bearer {token}\r\napi-version: 2\r\ntenant-code: T1\r\n")
    );
    let stats: serde_json::Value = serde_json::from_str(
        &read(|b, cap, len| unsafe { tw_client_stats(c, b, cap, len) }).unwrap(),
    )
    .unwrap();
    assert_eq!(stats["token_requests"], 1);
    assert!(stats["remaining_ms"].as_u64().unwrap() > 3_000_000);

    let mut reusable = 0u64;
    let mut buf = vec![0u8; needed];
    assert_eq!(
        unsafe {
            tw_client_token_cacheable(c, buf.as_mut_ptr().cast(), needed, &mut len, &mut reusable)
        },
        TW_OK
    );
    assert!(
        reusable > 3_000 * 1_000_000_000 && reusable <= 3_300 * 1_000_000_000,
        "{reusable}"
    );

    // An hour token: fresh until its refresh point, usable until 30 s before expiry.
    let (mut fresh, mut usable) = (0u64, 0u64);
    assert_eq!(
        unsafe {
            tw_client_token_window(
                c,
                buf.as_mut_ptr().cast(),
                needed,
                &mut len,
                &mut fresh,
                &mut usable,
            )
        },
        TW_OK
    );
    let secs = 1_000_000_000u64;
    assert!(fresh > 3_000 * secs && fresh <= 3_300 * secs, "{fresh}");
    assert!(usable > 3_500 * secs && usable <= 3_570 * secs, "{usable}");
    assert!(fresh < usable);
    assert_eq!(
        unsafe { tw_client_token_window(c, null_mut(), 0, &mut len, null_mut(), &mut usable) },
        TW_ERR_INVALID_ARGUMENT
    );
    unsafe { tw_client_free(c) };
}

#[test]
fn abi_version_matches_the_header_constant() {
    assert_eq!(tw_abi_version(), TW_ABI_VERSION);
}

#[test]
fn last_error_is_per_thread() {
    let a = std::thread::spawn(|| {
        let _ = new_client("{oops");
        std::thread::sleep(std::time::Duration::from_millis(50));
        last_error()
    });
    let b = std::thread::spawn(|| {
        let _ = new_client(r#"{"nope":1}"#);
        std::thread::sleep(std::time::Duration::from_millis(50));
        last_error()
    });
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert!(a.contains("not valid JSON"), "{a}");
    assert!(b.contains("nope"), "{b}");
}

static EVENTS: Mutex<Vec<(i32, String, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_event(user_data: *mut c_void, event: *const tw_event) {
    assert_eq!(user_data as usize, 0xabc);
    let e = unsafe { &*event };
    let name = unsafe { CStr::from_ptr(e.kind_name) }
        .to_string_lossy()
        .into_owned();
    let msg = unsafe { CStr::from_ptr(e.message) }
        .to_string_lossy()
        .into_owned();
    EVENTS.lock().unwrap().push((e.kind, name, msg));
}

#[test]
fn events_reach_the_callback_redacted_and_stop_after_unregister() {
    let mock = MockServer::start();
    let c = mock_client(&mock);
    assert_eq!(
        unsafe { tw_client_set_event_callback(c, Some(on_event), 0xabc as *mut c_void) },
        TW_OK
    );
    let token = read(|b, cap, len| unsafe { tw_client_token(c, b, cap, len) }).unwrap();
    let t = CString::new(token.clone()).unwrap();
    assert_eq!(unsafe { tw_client_invalidate(c, t.as_ptr()) }, TW_OK);
    assert_eq!(
        unsafe { tw_client_set_client_secret(c, c"wrong".as_ptr()) },
        TW_OK
    );
    assert_eq!(
        read(|b, cap, len| unsafe { tw_client_token(c, b, cap, len) }).unwrap_err(),
        TW_ERR_INVALID_CLIENT
    );
    assert_eq!(
        unsafe { tw_client_set_event_callback(c, None, null_mut()) },
        TW_OK
    );
    let before = EVENTS.lock().unwrap().len();
    unsafe { tw_client_invalidate(c, null()) };
    let events = EVENTS.lock().unwrap().clone();
    assert_eq!(events.len(), before, "no events after unregistering");
    let names: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    assert!(
        names.contains(&"token_acquired")
            && names.contains(&"invalidated")
            && names.contains(&"fetch_failed"),
        "{names:?}"
    );
    assert!(events.iter().any(|e| e.0 == TW_EVENT_TOKEN_ACQUIRED));
    for (_, _, msg) in &events {
        assert!(
            !msg.contains(&token) && !msg.contains("demo-secret") && !msg.contains("wrong"),
            "{msg}"
        );
    }
    unsafe { tw_client_free(c) };
}

#[test]
fn send_through_the_abi() {
    let mock = MockServer::start();
    let c = new_client(&common::config_json(
        &mock,
        json!({ "api_base_urls": [mock.url()] }),
    ))
    .unwrap();
    let url = CString::new(format!("{}/api/items", mock.url())).unwrap();
    let body = b"{\"name\":\"x\"}";
    let mut resp = null_mut();
    let status = unsafe {
        tw_client_send(
            c,
            c"POST".as_ptr(),
            url.as_ptr(),
            c"Content-Type: application/json\r\n".as_ptr(),
            body.as_ptr(),
            body.len(),
            &mut resp,
        )
    };
    assert_eq!(status, TW_OK, "{}", last_error());
    assert_eq!(unsafe { tw_response_status(resp) }, 200);
    let mut len = 0;
    let ptr = unsafe { tw_response_body(resp, &mut len) };
    let json: serde_json::Value =
        serde_json::from_slice(unsafe { std::slice::from_raw_parts(ptr, len) }).unwrap();
    assert_eq!(json["body"], "{\"name\":\"x\"}");
    let ct =
        read(|b, cap, l| unsafe { tw_response_header(resp, c"Content-Type".as_ptr(), b, cap, l) })
            .unwrap();
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(
        unsafe { tw_response_header(resp, c"x-missing".as_ptr(), null_mut(), 0, &mut len) },
        TW_OK
    );
    assert_eq!(len, 0);
    unsafe { tw_response_free(resp) };

    let other = c"http://127.0.0.1:1/api/items";
    let mut resp = null_mut();
    assert_eq!(
        unsafe {
            tw_client_send(
                c,
                c"GET".as_ptr(),
                other.as_ptr(),
                null(),
                null(),
                0,
                &mut resp,
            )
        },
        TW_ERR_FOREIGN_ORIGIN
    );
    assert!(resp.is_null());
    assert!(last_error().contains("api_base_urls"), "{}", last_error());
    let forbidden = CString::new(format!("{}/api/forbidden", mock.url())).unwrap();
    assert_eq!(
        unsafe {
            tw_client_send(
                c,
                c"GET".as_ptr(),
                forbidden.as_ptr(),
                null(),
                null(),
                0,
                &mut resp,
            )
        },
        TW_ERR_FORBIDDEN
    );
    assert_eq!(
        unsafe {
            tw_client_send(
                c,
                c"GET".as_ptr(),
                url.as_ptr(),
                c"Authorization: Bearer x\r\n".as_ptr(),
                null(),
                0,
                &mut resp,
            )
        },
        TW_ERR_INVALID_ARGUMENT
    );
    unsafe { tw_client_free(c) };
}
