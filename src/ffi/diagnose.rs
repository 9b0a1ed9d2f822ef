//! `tw_client_health` and `tw_client_diagnose`: the client's state for readiness probes, and
//! the setup diagnosis for start-up self-tests, both as JSON.

use std::ffi::c_char;

use super::client::tw_client;
use super::handle;
use super::panic::{ffi_boundary, try_handle, try_out, try_str};
use super::{fail, status_of, tw_status, write_out, TW_ERR_INVALID_ARGUMENT, TW_OK};
use crate::{DiagnoseOptions, Diagnosis};

/// Copy the client's health as JSON into `buf` (buffer protocol as for `tw_client_token`):
/// `{"state":"ok"|"degraded"|"failing","remaining_ms":n|null,"next_refresh_ms":n|null,
/// "consecutive_failures":n,"last_error":{"kind":"…","message":"…","http_status":n|null}|null}`.
///
/// `ok`: a usable token is cached and the last fetch succeeded (or nothing was fetched or
/// failed yet); `degraded`: a usable token is served while refreshes fail; `failing`: no
/// usable token and the last fetch failed. Reads memory only: no network call, no refresh
/// started, never blocks on I/O. The JSON's length can change between calls (the numbers
/// move), so retry on `TW_ERR_BUFFER_TOO_SMALL` with the new `*len`.
#[no_mangle]
pub unsafe extern "C" fn tw_client_health(
    client: *mut tw_client,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        try_out!(len, "len");
        let json = client.health().to_json();
        // SAFETY: `len` checked; `buf` validity is the caller's contract.
        unsafe { write_out(json.as_bytes(), buf, cap, len) }
    }
}

/// The result of `tw_client_diagnose`. Opaque and immutable (any thread may read it); the
/// caller frees it with `tw_diagnosis_free`. Carries the same best-effort tag as
/// `tw_client`: a freed diagnosis passed back most likely gets `TW_ERR_INVALID_ARGUMENT`.
pub struct tw_diagnosis {
    _opaque: [u8; 0],
}

/// Diagnose the client's setup: configuration → DNS → TCP → proxy → TLS → clock → token
/// request → token sanity → (optionally) one API call, each check passing, warning or
/// failing with its cause and fix.
///
/// `options_json`: NULL or a JSON object, `{"probe": "https://api.example.com/v1/ping"}` to
/// also call that URL once (GET) with the token and configured headers. On success `*out`
/// receives a diagnosis to read with `tw_diagnosis_json` / `tw_diagnosis_status` and free
/// with `tw_diagnosis_free` — success means the diagnosis ran, whatever it found. On failure
/// (`TW_ERR_INVALID_ARGUMENT` for bad options) `*out` is NULL.
///
/// Blocks while it talks to the identity provider (each step bounded by the configured
/// timeouts). Leaves the client's cache alone: it sends its own token request (and one with
/// the other of client_secret_post/client_secret_basic when the first is refused), without
/// retries.
#[no_mangle]
pub unsafe extern "C" fn tw_client_diagnose(
    client: *mut tw_client,
    options_json: *const c_char,
    out: *mut *mut tw_diagnosis,
) -> tw_status {
    ffi_boundary! {
        try_out!(out, "out");
        // SAFETY: checked non-NULL above.
        unsafe { *out = std::ptr::null_mut() };
        let client = try_handle!(client, "client", "tw_client");
        let mut options = DiagnoseOptions::new();
        if !options_json.is_null() {
            let text = try_str!(options_json, "options_json");
            let value = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => return fail(TW_ERR_INVALID_ARGUMENT, "`options_json` must be a JSON object such as {\"probe\": \"https://…\"}"),
            };
            for (key, value) in value {
                match (key.as_str(), value) {
                    ("probe", serde_json::Value::String(url)) => options = options.probe(url),
                    ("probe", serde_json::Value::Null) => {}
                    ("probe", _) => return fail(TW_ERR_INVALID_ARGUMENT, "`options_json.probe` must be a URL string"),
                    (other, _) => return fail(TW_ERR_INVALID_ARGUMENT, &format!("`options_json` has an unknown key `{other}` (known: probe)")),
                }
            }
        }
        let diagnosis = client.diagnose(&options);
        // SAFETY: checked non-NULL above.
        unsafe { *out = handle::new::<tw_diagnosis>(diagnosis) };
        TW_OK
    }
}

/// Copy the diagnosis as JSON into `buf` (buffer protocol as for `tw_client_token`; the
/// value never changes, so a size query followed by a copy is enough):
/// `{"ok":bool,"error_kind":"…"|null,"verdict":"<one line>","checks":[{"id","title",
/// "status":"pass"|"warn"|"fail"|"skip","summary","details":[…],"cause","fix","error_kind",
/// "http_status","elapsed_ms","facts":{…}}]}`. No secret or token appears in it.
#[no_mangle]
pub unsafe extern "C" fn tw_diagnosis_json(
    diagnosis: *const tw_diagnosis,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> tw_status {
    ffi_boundary! {
        let diagnosis = try_handle!(diagnosis, "diagnosis", "tw_diagnosis");
        try_out!(len, "len");
        let json = diagnosis.to_json();
        // SAFETY: `len` checked; `buf` validity is the caller's contract.
        unsafe { write_out(json.as_bytes(), buf, cap, len) }
    }
}

/// `TW_OK` when no check failed (warnings allowed), else the status of the first failed
/// check's error family (e.g. `TW_ERR_INVALID_CLIENT`, `TW_ERR_TLS`). Does not touch
/// `tw_last_error`. `TW_ERR_INVALID_ARGUMENT` when `diagnosis` is NULL, freed or not a
/// diagnosis (best effort, see `tw_diagnosis`).
#[no_mangle]
pub unsafe extern "C" fn tw_diagnosis_status(diagnosis: *const tw_diagnosis) -> tw_status {
    std::panic::catch_unwind(|| {
        // SAFETY: NULL, a diagnosis from `tw_client_diagnose` (live or freed), or a misuse
        // the tag check reports.
        match unsafe { handle::get(diagnosis) } {
            Ok(d) => d.error_kind().map_or(TW_OK, status_of),
            Err(_) => TW_ERR_INVALID_ARGUMENT,
        }
    })
    .unwrap_or(super::TW_ERR_PANIC)
}

/// Free a diagnosis. NULL is fine. A second free of the same diagnosis, or a pointer that
/// is not a `tw_diagnosis`, is most likely detected and ignored (see `tw_diagnosis`) — do
/// not rely on it.
#[no_mangle]
pub unsafe extern "C" fn tw_diagnosis_free(diagnosis: *mut tw_diagnosis) {
    if diagnosis.is_null() {
        return;
    }
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: a diagnosis from `tw_client_diagnose`, or a misuse the tag check reports.
        if let Err(misuse) = unsafe { handle::free(diagnosis, |_: &Diagnosis| {}) } {
            fail(
                TW_ERR_INVALID_ARGUMENT,
                &handle::describe(misuse, "diagnosis", "tw_diagnosis"),
            );
        }
    });
}
