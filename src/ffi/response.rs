//! `tw_client_send` and `tw_response`: authorized requests for C programs without an HTTP
//! client of their own.

use std::ffi::c_char;

use super::client::tw_client;
use super::handle;
use super::panic::{ffi_boundary, try_handle, try_out, try_str};
use super::{fail, fail_with, tw_status, write_out, TW_ERR_INVALID_ARGUMENT, TW_OK};
use crate::{Client, Request, Response};

/// An API response. Opaque; owned by the caller, who frees it with `tw_response_free`.
/// Immutable, so it may be read from any thread. Carries the same best-effort tag as
/// `tw_client`: a freed response passed back most likely gets `TW_ERR_INVALID_ARGUMENT`.
pub struct tw_response {
    _opaque: [u8; 0],
}

/// The body argument of both send calls as a slice (copied into the request).
///
/// # Safety
/// `body` is NULL or valid for `body_len` bytes.
unsafe fn body_of(
    request: Request,
    body: *const u8,
    body_len: usize,
) -> Result<Request, tw_status> {
    if body.is_null() && body_len > 0 {
        return Err(fail(
            TW_ERR_INVALID_ARGUMENT,
            "`body` is NULL but `body_len` is not 0",
        ));
    }
    if body.is_null() {
        return Ok(request);
    }
    // SAFETY: the caller guarantees `body` is valid for `body_len` bytes.
    Ok(request.body(unsafe { std::slice::from_raw_parts(body, body_len) }.to_vec()))
}

/// Send `request` and hand the response out through `out` (checked non-NULL, already NULL).
///
/// # Safety
/// `out` is valid for a write.
unsafe fn send_out(client: &Client, request: Request, out: *mut *mut tw_response) -> tw_status {
    match client.send(request) {
        Ok(response) => {
            // SAFETY: checked non-NULL by the caller.
            unsafe { *out = handle::new::<tw_response>(response) };
            TW_OK
        }
        Err(e) => fail_with(&e),
    }
}

/// Send an API request with the token and configured headers (see `Client::send`): on 401
/// (or a GraphQL `UNAUTHENTICATED`, when enabled) the token is refreshed and the request
/// re-sent once; 403 gives `TW_ERR_FORBIDDEN`, a second 401 `TW_ERR_UNAUTHORIZED` (also at
/// once, without a token request, when the API already rejected a token issued just before:
/// no refresh storm); a URL outside `api_base_urls` is `TW_ERR_FOREIGN_ORIGIN` before
/// anything is sent. Redirects (with `api_base_urls`) carry nothing of the client's to
/// another origin: no token, no static header, and of `headers` only `Accept`,
/// `Accept-Language`, `User-Agent` and (with the body) `Content-Type`. Other statuses
/// (including 4xx/5xx) are `TW_OK` with the status in the response.
///
/// `method`, `url`: NUL-terminated UTF-8. `headers`: NULL or `"Name: value\r\n"` lines,
/// strictly: each line ends with CRLF; a bare CR or LF, a line starting with a space or tab
/// (obs-fold), whitespace before the colon, an empty line other than one final one, a name
/// that is not an RFC 9110 token, or a control character in a value is
/// `TW_ERR_INVALID_ARGUMENT` naming the line. So are the headers the transport or tokenward
/// sets (any case): `Authorization`, `Proxy-Authorization`, `Host`, `Content-Length`,
/// `Transfer-Encoding`, `Connection`, `TE`, `Upgrade`. To pass names and values without
/// building text, use `tw_client_send_pairs`. `body`: NULL (with `body_len` 0) or
/// `body_len` bytes, copied. On success `*out` receives a response to free with
/// `tw_response_free`; on failure `*out` is NULL. Blocks for at most the request timeout
/// (plus a token fetch).
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
        let client = try_handle!(client, "client", "tw_client");
        let method = try_str!(method, "method");
        let url = try_str!(url, "url");
        let mut request = Request::new(method, url);
        if !headers.is_null() {
            request = match request.header_lines(try_str!(headers, "headers")) {
                Ok(request) => request,
                Err(e) => return fail_with(&e),
            };
        }
        // SAFETY: forwarded caller contract for `body`.
        let request = match unsafe { body_of(request, body, body_len) } {
            Ok(request) => request,
            Err(status) => return status,
        };
        // SAFETY: `out` checked non-NULL above.
        unsafe { send_out(client, request, out) }
    }
}

/// `tw_client_send` with the request's headers as `count` name/value pairs: `names[i]` and
/// `values[i]` are NUL-terminated UTF-8 (`names` and `values` may be NULL when `count` is
/// 0). Each pair is checked as one line of `tw_client_send`'s text would be — a name that
/// is not an RFC 9110 token, a value with CR, LF or another control character, or a
/// reserved header is `TW_ERR_INVALID_ARGUMENT` naming the pair's index — and nothing is
/// sent. Values are sent as given (no whitespace trimmed). Everything else as for
/// `tw_client_send`.
#[no_mangle]
pub unsafe extern "C" fn tw_client_send_pairs(
    client: *mut tw_client,
    method: *const c_char,
    url: *const c_char,
    names: *const *const c_char,
    values: *const *const c_char,
    count: usize,
    body: *const u8,
    body_len: usize,
    out: *mut *mut tw_response,
) -> tw_status {
    ffi_boundary! {
        try_out!(out, "out");
        // SAFETY: checked non-NULL above.
        unsafe { *out = std::ptr::null_mut() };
        let client = try_handle!(client, "client", "tw_client");
        let method = try_str!(method, "method");
        let url = try_str!(url, "url");
        let mut request = Request::new(method, url);
        if count > 0 {
            try_out!(names, "names");
            try_out!(values, "values");
        }
        for i in 0..count {
            // SAFETY: the caller guarantees `count` elements in both arrays.
            let (name, value) = unsafe { (*names.add(i), *values.add(i)) };
            let pair = |what: &str| format!("header pair {i}: `{what}[{i}]`");
            let name = match c_text(name) {
                Ok(name) => name,
                Err(why) => return fail(TW_ERR_INVALID_ARGUMENT, &format!("{} {why}", pair("names"))),
            };
            let value = match c_text(value) {
                Ok(value) => value,
                Err(why) => return fail(TW_ERR_INVALID_ARGUMENT, &format!("{} {why}", pair("values"))),
            };
            if let Some(why) = crate::http::headers::refuse(name, value) {
                return fail(TW_ERR_INVALID_ARGUMENT, &format!("The request was not sent: header pair {i}: {why}."));
            }
            request = request.header(name, value);
        }
        // SAFETY: forwarded caller contract for `body`.
        let request = match unsafe { body_of(request, body, body_len) } {
            Ok(request) => request,
            Err(status) => return status,
        };
        // SAFETY: `out` checked non-NULL above.
        unsafe { send_out(client, request, out) }
    }
}

/// A NUL-terminated UTF-8 string element of an array, or why not.
fn c_text<'a>(ptr: *const c_char) -> Result<&'a str, &'static str> {
    if ptr.is_null() {
        return Err("is NULL");
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| "is not valid UTF-8")
}

/// The HTTP status of a response; 0 when `response` is NULL, freed or not a response
/// (`tw_last_error` says which).
#[no_mangle]
pub unsafe extern "C" fn tw_response_status(response: *const tw_response) -> u16 {
    // SAFETY: NULL, a response from the send calls (live or freed), or best effort.
    match unsafe { handle::get(response) } {
        Ok(r) => r.status(),
        Err(misuse) => {
            fail(
                TW_ERR_INVALID_ARGUMENT,
                &handle::describe(misuse, "response", "tw_response"),
            );
            0
        }
    }
}

/// The response body: returns a pointer to `*len` bytes owned by the response (valid until
/// `tw_response_free`; not NUL-terminated). Returns NULL with `*len` 0 when `response` is
/// NULL, freed or not a response; `len` may not be NULL.
#[no_mangle]
pub unsafe extern "C" fn tw_response_body(
    response: *const tw_response,
    len: *mut usize,
) -> *const u8 {
    if len.is_null() {
        return std::ptr::null();
    }
    // SAFETY: NULL, a response from the send calls (live or freed), or best effort.
    let (ptr, n) = match unsafe { handle::get(response) } {
        Ok(r) => (r.body().as_ptr(), r.body().len()),
        Err(misuse) => {
            fail(
                TW_ERR_INVALID_ARGUMENT,
                &handle::describe(misuse, "response", "tw_response"),
            );
            (std::ptr::null(), 0)
        }
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
        let response = try_handle!(response, "response", "tw_response");
        let name = try_str!(name, "name");
        try_out!(len, "len");
        match response.header(name) {
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

/// Free a response. NULL is fine. A response freed twice, or a pointer that is not a
/// `tw_response`, is most likely detected and ignored (see `tw_response`) — do not rely on
/// it.
#[no_mangle]
pub unsafe extern "C" fn tw_response_free(response: *mut tw_response) {
    if response.is_null() {
        return;
    }
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: a response from the send calls, or a misuse the tag check reports.
        if let Err(misuse) = unsafe { handle::free(response, |_: &Response| {}) } {
            fail(
                TW_ERR_INVALID_ARGUMENT,
                &handle::describe(misuse, "response", "tw_response"),
            );
        }
    });
}
