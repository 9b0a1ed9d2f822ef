//! `tw_client_health` and `tw_client_diagnose` through the C ABI: JSON out, argument checks,
//! the diagnosis's status, and no secret in either.

mod common;

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use serde_json::{json, Value};
use tokenward::ffi::*;
use tokenward_mock::MockServer;

fn client(mock: &MockServer, extra: Value) -> *mut tw_client {
    let json = CString::new(common::config_json(mock, extra)).unwrap();
    let mut out = null_mut();
    assert_eq!(unsafe { tw_client_new(json.as_ptr(), &mut out) }, TW_OK);
    out
}

fn read(f: impl Fn(*mut c_char, usize, *mut usize) -> tw_status) -> Value {
    loop {
        let mut len = 0usize;
        assert_eq!(f(null_mut(), 0, &mut len), TW_ERR_BUFFER_TOO_SMALL);
        let mut buf = vec![0u8; len];
        match f(buf.as_mut_ptr().cast(), buf.len(), &mut len) {
            TW_OK => {
                let text = CStr::from_bytes_until_nul(&buf).unwrap().to_str().unwrap();
                return serde_json::from_str(text).unwrap();
            }
            // The value grew between the two calls: ask again.
            TW_ERR_BUFFER_TOO_SMALL => continue,
            other => panic!("status {other}"),
        }
    }
}

fn diagnose(client: *mut tw_client, options: Option<&str>) -> (tw_status, Value) {
    let options = options.map(|o| CString::new(o).unwrap());
    let mut out = null_mut();
    let status = unsafe {
        tw_client_diagnose(
            client,
            options.as_ref().map_or(null(), |o| o.as_ptr()),
            &mut out,
        )
    };
    assert_eq!(status, TW_OK);
    let json = read(|b, c, l| unsafe { tw_diagnosis_json(out, b, c, l) });
    let verdict = unsafe { tw_diagnosis_status(out) };
    unsafe { tw_diagnosis_free(out) };
    (verdict, json)
}

#[test]
fn health_is_json_and_follows_the_client() {
    let mock = MockServer::start();
    let c = client(&mock, json!({ "client_secret": "not-the-s3cret" }));
    let health = read(|b, cap, l| unsafe { tw_client_health(c, b, cap, l) });
    assert_eq!(health["state"], "ok");
    assert_eq!(health["remaining_ms"], Value::Null);
    let mut len = 0;
    assert_eq!(
        unsafe { tw_client_token(c, null_mut(), 0, &mut len) },
        TW_ERR_INVALID_CLIENT
    );
    let health = read(|b, cap, l| unsafe { tw_client_health(c, b, cap, l) });
    assert_eq!(health["state"], "failing");
    assert_eq!(health["consecutive_failures"], 1);
    assert_eq!(health["last_error"]["kind"], "invalid_client");
    assert!(!health.to_string().contains("not-the-s3cret"));
    unsafe { tw_client_free(c) };

    let mut len = 0;
    assert_eq!(
        unsafe { tw_client_health(null_mut(), null_mut(), 0, &mut len) },
        TW_ERR_INVALID_ARGUMENT
    );
}

#[test]
fn a_diagnosis_runs_reports_and_maps_its_verdict_to_a_status() {
    let mock = MockServer::start();
    let good = client(&mock, json!({}));
    let probe = format!(r#"{{"probe":"{}/api/items"}}"#, mock.url());
    let (status, json) = diagnose(good, Some(&probe));
    assert_eq!(status, TW_OK, "{json:#}");
    assert_eq!(json["ok"], true);
    let ids: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "config",
            "dns",
            "tcp",
            "proxy",
            "tls",
            "clock",
            "token",
            "token_sanity",
            "probe"
        ]
    );
    assert_eq!(json["checks"][8]["status"], "pass");
    assert_eq!(json["checks"][8]["http_status"], 200);
    assert_eq!(json["verdict"], "✓ all 8 checks passed");
    // The client's own cache was not used: its first token() still fetches.
    let before = mock.token_requests();
    let mut len = 0;
    assert_eq!(
        unsafe { tw_client_token(good, null_mut(), 0, &mut len) },
        TW_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(mock.token_requests(), before + 1);
    unsafe { tw_client_free(good) };

    let bad = client(&mock, json!({ "client_secret": "not-the-s3cret" }));
    let (status, json) = diagnose(bad, None);
    assert_eq!(status, TW_ERR_INVALID_CLIENT);
    assert_eq!(json["ok"], false);
    assert_eq!(json["error_kind"], "invalid_client");
    assert!(!json.to_string().contains("not-the-s3cret"), "{json}");
    let token = &json["checks"][6];
    assert_eq!(
        (token["id"].as_str(), token["status"].as_str()),
        (Some("token"), Some("fail"))
    );
    assert_eq!(token["http_status"], 401);

    for bad_options in [r#"[1]"#, r#"{"prob":"x"}"#, r#"{"probe":1}"#] {
        let options = CString::new(bad_options).unwrap();
        let mut out = null_mut();
        assert_eq!(
            unsafe { tw_client_diagnose(bad, options.as_ptr(), &mut out) },
            TW_ERR_INVALID_ARGUMENT,
            "{bad_options}"
        );
        assert!(out.is_null());
    }
    assert_eq!(
        unsafe { tw_client_diagnose(bad, null(), null_mut()) },
        TW_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { tw_diagnosis_status(null()) },
        TW_ERR_INVALID_ARGUMENT
    );
    unsafe { tw_diagnosis_free(null_mut()) };
    unsafe { tw_client_free(bad) };
}
