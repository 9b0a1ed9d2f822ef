//! `tw_client_send` and `tw_response`: authorized requests for C programs without an HTTP
//! client of their own.

use std::ffi::c_char;

use super::client::tw_client;
use super::panic::{ffi_boundary, try_out, try_ref, try_str};
use super::{fail, fail_with, tw_status, write_out, TW_ERR_INVALID_ARGUMENT, TW_OK};
use crate::{Request, Response};

/// An API response. Opaque; owned by the caller, who frees it with `tw_response_free`.
/// Immutable, so it may be read from any thread.
pub struct tw_response(Response);

/// Send an API request with the token and configured headers (see `Client::send`): on 401
/// (or a GraphQL `UNAUTHENTICATED`, when enabled) the token is refreshed and the request
/// re-sent once; 403 gives `TW_ERR_FORBIDDEN`, a second 401 `TW_ERR_UNAUTHORIZED`; a URL
/// outside `api_base_urls` is refused before anything is sent. Other statuses (including
/// 4xx/5xx) are `TW_OK` with the status in the response.
///
/// `method`, `url`: NUL-terminated UTF-8. `headers`: NULL or `"Name: value\r\n"` lines
/// (must not contain Authorization). `body`: NULL (with `body_len` 0) or `body_len` bytes,
/// copied. On success `*out` receives a response to free with `tw_response_free`; on
/// failure `*out` is NULL. Blocks for at most the request timeout (plus a token fetch).
#[no_mangle]
pub unsafe extern "C" fn tw_client_send(
    client: *mut tw_client,
    method: *const c_char,
    url: *const c_char,
    headers: *const c_char,
    body: *const u8,
    body_len: usize,
    out: *mut *mut tw_response,
) -> tw_status {
    ffi_boundary! {
        try_out!(out, "out");
        // SAFETY: checked non-NULL above.
        unsafe { *out = std::ptr::null_mut() };
        let client = try_ref!(client, "client");
        let method = try_str!(method, "method");
        let url = try_str!(url, "url");
        let mut request = Request::new(method, url);
        if !headers.is_null() {
            for line in try_str!(headers, "headers").split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line.is_empty() {
                    continue;
                }
                match line.split_once(':') {
                    Some((name, value)) => request = request.header(name.trim(), value.trim()),
                    None => return fail(TW_ERR_INVALID_ARGUMENT, "`headers` has a line without ':'; use \"Name: value\\r\\n\" lines"),
                }
            }
        }
        if body.is_null() && body_len > 0 {
            return fail(TW_ERR_INVALID_ARGUMENT, "`body` is NULL but `body_len` is not 0");
        }
        if !body.is_null() {
            // SAFETY: the caller guarantees `body` is valid for `body_len` bytes.
            request = request.body(unsafe { std::slice::from_raw_parts(body, body_len) }.to_vec());
        }
        match client.0.send(request) {
            Ok(response) => {
                // SAFETY: checked non-NULL above.
                unsafe { *out = Box::into_raw(Box::new(tw_response(response))) };
                TW_OK
            }
            Err(e) => fail_with(&e),
        }
    }
}

/// The HTTP status of a response; 0 when `response` is NULL.
#[no_mangle]
pub unsafe extern "C" fn tw_response_status(response: *const tw_response) -> u16 {
    // SAFETY: NULL or a live response from `tw_client_send`.
    match unsafe { response.as_ref() } {
        Some(r) => r.0.status(),
        None => 0,
    }
}

/// The response body: returns a pointer to `*len` bytes owned by the response (valid until
/// `tw_response_free`; not NUL-terminated). Returns NULL with `*len` 0 when `response` is
/// NULL; `len` may not be NULL.
#[no_mangle]
pub unsafe extern "C" fn tw_response_body(
    response: *const tw_response,
    len: *mut usize,
) -> *const u8 {
    if len.is_null() {
        return std::ptr::null();
    }
    // SAFETY: NULL or a live response from `tw_client_send`.
    let (ptr, n) = match unsafe { response.as_ref() } {
        Some(r) => (r.0.body().as_ptr(), r.0.body().len()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: checked non-NULL above.
    unsafe { *len = n };
    ptr
}

/// Copy the value of header `name` (case-insensitive; repeated headers joined by ", ") into
/// `buf` under the buffer protocol. A header the response does not have gives `TW_OK` with
/// `*len` = 0 and nothing written.
#[no_mangle]
pub unsafe extern "C" fn tw_response_header(
    response: *const tw_response,
    name: *const c_char,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> tw_status {
    ffi_boundary! {
        let response = try_ref!(response, "response");
        let name = try_str!(name, "name");
        try_out!(len, "len");
        match response.0.header(name) {
            // SAFETY: `len` checked; `buf` validity is the caller's contract.
            Some(value) => unsafe { write_out(value.as_bytes(), buf, cap, len) },
            None => {
                // SAFETY: checked non-NULL above.
                unsafe { *len = 0 };
                TW_OK
            }
        }
    }
}

/// Free a response. NULL is fine; must not be called twice.
#[no_mangle]
pub unsafe extern "C" fn tw_response_free(response: *mut tw_response) {
    if !response.is_null() {
        // SAFETY: the pointer came from `tw_client_send` and is freed once.
        drop(unsafe { Box::from_raw(response) });
    }
}
