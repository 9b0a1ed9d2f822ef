//! `tw_client`: the client handle and its calls.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

use super::handle;
use super::panic::{ffi_boundary, try_handle, try_out, try_str};
use super::{
    fail, fail_with, tw_status, write_out, write_out_parts, TW_ERR_INVALID_ARGUMENT, TW_OK,
};
use crate::{Client, Config, EventKind};

/// An OAuth client with its token cache. Opaque. Thread-safe: share one handle between all
/// threads. Create with `tw_client_new` or `tw_client_from_env`; free with `tw_client_free`.
///
/// Every call checks a tag inside the handle first, so a handle that was already freed or a
/// pointer that is not a `tw_client` most likely gets `TW_ERR_INVALID_ARGUMENT` instead of
/// undefined behaviour. This is a best-effort safety net, not a licence: freed handles are
/// recognised reliably only until 1024 more clients have been freed, and an arbitrary
/// pointer may still crash.
pub struct tw_client {
    _opaque: [u8; 0],
}

/// The kind of a `tw_event`.
pub type tw_event_kind = i32;
/// A new token was fetched.
pub const TW_EVENT_TOKEN_ACQUIRED: tw_event_kind = 1;
/// A fetch that callers were waiting on failed.
pub const TW_EVENT_FETCH_FAILED: tw_event_kind = 2;
/// An early refresh failed; the current token keeps serving.
pub const TW_EVENT_REFRESH_FAILED: tw_event_kind = 3;
/// A still-usable token was served while refreshes fail (once per episode).
pub const TW_EVENT_SERVED_STALE: tw_event_kind = 4;
/// A transient failure; retrying after a delay.
pub const TW_EVENT_RETRY_SCHEDULED: tw_event_kind = 5;
/// A token was evicted by `tw_client_invalidate`.
pub const TW_EVENT_INVALIDATED: tw_event_kind = 6;
/// A configuration problem that does not stop the client (a credential file readable by
/// group or others). Delivered once, to the first callback registered.
pub const TW_EVENT_WARNING: tw_event_kind = 7;

/// An event delivered to a `tw_event_fn`. All pointers are owned by the library and valid
/// only during the callback.
#[repr(C)]
pub struct tw_event {
    /// One of the `TW_EVENT_*` values.
    pub kind: tw_event_kind,
    /// Static name of the kind, e.g. `"token_acquired"`.
    pub kind_name: *const c_char,
    /// A sentence for logs. Never contains a secret or a full token (only fingerprints).
    pub message: *const c_char,
}

/// Event callback. May run on a library thread (the background refresh thread). It must
/// return quickly, must not throw/unwind, and must not call back into the same client.
pub type tw_event_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const tw_event)>;

fn kind_name(kind: EventKind) -> &'static CStr {
    match kind {
        EventKind::TokenAcquired => c"token_acquired",
        EventKind::FetchFailed => c"fetch_failed",
        EventKind::RefreshFailed => c"refresh_failed",
        EventKind::ServedStale => c"served_stale",
        EventKind::RetryScheduled => c"retry_scheduled",
        EventKind::Invalidated => c"invalidated",
        EventKind::Warning => c"warning",
    }
}

fn install(client: Client, out: *mut *mut tw_client) -> tw_status {
    // SAFETY: the caller checked `out` is non-NULL.
    unsafe { *out = handle::new::<tw_client>(client) };
    TW_OK
}

/// Create a client from a JSON configuration (the keys are listed in the README).
///
/// On success `*out` receives a handle the caller must free with `tw_client_free`; on
/// failure `*out` is set to NULL. Errors: `TW_ERR_INVALID_ARGUMENT` (NULL, invalid UTF-8,
/// malformed JSON), `TW_ERR_CONFIG` (a key is unknown or invalid; the message names it).
/// Does no network I/O.
#[no_mangle]
pub unsafe extern "C" fn tw_client_new(
    config_json: *const c_char,
    out: *mut *mut tw_client,
) -> tw_status {
    ffi_boundary! {
        try_out!(out, "out");
        // SAFETY: checked non-NULL above.
        unsafe { *out = std::ptr::null_mut() };
        let text = try_str!(config_json, "config_json");
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
            return fail(TW_ERR_INVALID_ARGUMENT, &format!("`config_json` is not valid JSON: {e}"));
        }
        match Config::from_json(text).and_then(Client::new) {
            Ok(client) => install(client, out),
            Err(e) => fail_with(&e),
        }
    }
}

/// Create a client from environment variables `{prefix}TOKEN_URL`, `{prefix}CLIENT_ID`,
/// `{prefix}CLIENT_SECRET`, ... (`prefix` NULL means `"TOKENWARD_"`). `*out` as for
/// `tw_client_new`.
#[no_mangle]
pub unsafe extern "C" fn tw_client_from_env(
    prefix: *const c_char,
    out: *mut *mut tw_client,
) -> tw_status {
    ffi_boundary! {
        try_out!(out, "out");
        // SAFETY: checked non-NULL above.
        unsafe { *out = std::ptr::null_mut() };
        let prefix = if prefix.is_null() { None } else { Some(try_str!(prefix, "prefix")) };
        match Config::from_env(prefix).and_then(Client::new) {
            Ok(client) => install(client, out),
            Err(e) => fail_with(&e),
        }
    }
}

/// Free a client. NULL is fine. Must not be called while another thread still uses the
/// handle. After it returns, the event callback is never called again. Freeing a handle
/// twice, or a pointer that is not a `tw_client`, is most likely detected and ignored (see
/// `tw_client`; `tw_last_error` says so) — do not rely on it.
#[no_mangle]
pub unsafe extern "C" fn tw_client_free(client: *mut tw_client) {
    if client.is_null() {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: a handle from `tw_client_new`/`tw_client_from_env`, or a misuse the tag
        // check reports; the caller does not use it on another thread meanwhile.
        let freed = unsafe {
            handle::free(client, |client: &Client| {
                // A background refresh may outlive the handle; it must not reach the callback.
                client.set_event_hook(None::<fn(&crate::Event)>);
            })
        };
        if let Err(misuse) = freed {
            fail(
                TW_ERR_INVALID_ARGUMENT,
                &handle::describe(misuse, "client", "tw_client"),
            );
        }
    }));
}

/// Copy the current access token into `buf` (buffer protocol: `*len` always receives the
/// size needed including the NUL; if `cap` is smaller nothing is written and
/// `TW_ERR_BUFFER_TOO_SMALL` is returned; `buf = NULL, cap = 0` asks for the size).
///
/// Returns at once from the cache when a token is fresh (no allocation after the calling
/// thread's first use of that token, which copies it for the thread); blocks when no
/// usable token is cached, and with `refresh_mode` `inline` also for the early refresh
/// (at most the configured request timeout either way). Errors: any
/// `TW_ERR_*` of the token fetch (see `tw_last_error`).
#[no_mangle]
pub unsafe extern "C" fn tw_client_token(
    client: *mut tw_client,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        try_out!(len, "len");
        match client.token() {
            // SAFETY: `len` checked; `buf` validity is the caller's contract.
            Ok(token) => unsafe { write_out(token.as_str().as_bytes(), buf, cap, len) },
            Err(e) => fail_with(&e),
        }
    }
}

/// Like `tw_client_token`, and `*reusable_ns` receives how long (nanoseconds from now) the
/// caller may reuse this token without calling again: until the core's own refresh point,
/// 0 when it should ask on every use. Bindings memoize with it; drop the memo after
/// `tw_client_invalidate` or `tw_client_set_client_secret`.
#[no_mangle]
pub unsafe extern "C" fn tw_client_token_cacheable(
    client: *mut tw_client,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
    reusable_ns: *mut u64,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        try_out!(len, "len");
        try_out!(reusable_ns, "reusable_ns");
        match client.token_reusable_for() {
            Ok((token, fresh_for)) => {
                // SAFETY: checked non-NULL above.
                unsafe { *reusable_ns = u64::try_from(fresh_for.as_nanos()).unwrap_or(u64::MAX) };
                // SAFETY: `len` checked; `buf` validity is the caller's contract.
                unsafe { write_out(token.as_str().as_bytes(), buf, cap, len) }
            }
            Err(e) => fail_with(&e),
        }
    }
}

/// Like `tw_client_token_cacheable`, with two spans in nanoseconds from now:
/// `*fresh_ns`, how long the token stays fresh (until the core's refresh point; 0 inside the
/// refresh window), and `*usable_ns`, how long the core itself would still hand it out (0 for
/// a token to be used once). A binding's memo may answer without calling while fresh; past
/// that it may keep answering until usable provided one of its threads at a time calls this
/// again (that call starts the refresh and picks up the new token). Never reuse past
/// `*usable_ns`, nor after `tw_client_invalidate` or `tw_client_set_client_secret`.
#[no_mangle]
pub unsafe extern "C" fn tw_client_token_window(
    client: *mut tw_client,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
    fresh_ns: *mut u64,
    usable_ns: *mut u64,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        try_out!(len, "len");
        try_out!(fresh_ns, "fresh_ns");
        try_out!(usable_ns, "usable_ns");
        match client.token_window() {
            Ok((token, fresh_for, usable_for)) => {
                let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                // SAFETY: both checked non-NULL above.
                unsafe {
                    *fresh_ns = nanos(fresh_for);
                    *usable_ns = nanos(usable_for);
                }
                // SAFETY: `len` checked; `buf` validity is the caller's contract.
                unsafe { write_out(token.as_str().as_bytes(), buf, cap, len) }
            }
            Err(e) => fail_with(&e),
        }
    }
}

/// Copy `"Bearer <token>"` into `buf` (buffer protocol as for `tw_client_token`).
#[no_mangle]
pub unsafe extern "C" fn tw_client_authorization(
    client: *mut tw_client,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        try_out!(len, "len");
        match client.token() {
            // SAFETY: `len` checked; `buf` validity is the caller's contract.
            Ok(token) => unsafe { write_out(token.authorization().as_bytes(), buf, cap, len) },
            Err(e) => fail_with(&e),
        }
    }
}

/// Copy every header to send into `buf` as `"Name: value\r\n"` lines: `Authorization`
/// first, then the configured static headers in order (buffer protocol as for
/// `tw_client_token`).
#[no_mangle]
pub unsafe extern "C" fn tw_client_headers(
    client: *mut tw_client,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        try_out!(len, "len");
        match client.token() {
            // Written straight from the cached `Authorization` value and the static lines
            // formatted at construction: no allocation, no copy of the token on the heap.
            Ok(token) => {
                let parts: [&[u8]; 4] = [
                    b"Authorization: ",
                    token.authorization().as_bytes(),
                    b"\r\n",
                    client.static_header_lines().as_bytes(),
                ];
                // SAFETY: `len` checked; `buf` validity is the caller's contract.
                unsafe { write_out_parts(&parts, buf, cap, len) }
            }
            Err(e) => fail_with(&e),
        }
    }
}

/// Copy the headers for one request to `url` into `buf` as `"Name: value\r\n"` lines,
/// `Authorization` first, then the configured static headers (buffer protocol as for
/// `tw_client_token`) — for adapters of other HTTP clients, which attach them and nothing
/// else. `method` is the request's method (an RFC 9110 token, e.g. `"GET"`), `url` its
/// absolute URL; both NUL-terminated UTF-8.
///
/// Errors: `TW_ERR_FOREIGN_ORIGIN` when `api_base_urls` is set and `url` is of another origin
/// (nothing is written: the token must not go there); `TW_ERR_INVALID_ARGUMENT` for a
/// malformed method or URL, or plain http other than to loopback with `allow_http`; any
/// `TW_ERR_*` of the token fetch. Blocks like `tw_client_token`.
#[no_mangle]
pub unsafe extern "C" fn tw_client_headers_for(
    client: *mut tw_client,
    method: *const c_char,
    url: *const c_char,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        let method = try_str!(method, "method");
        let url = try_str!(url, "url");
        try_out!(len, "len");
        match client.headers_for(method, url) {
            Ok(headers) => {
                let text = zeroize::Zeroizing::new(
                    headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect::<String>(),
                );
                // SAFETY: `len` checked; `buf` validity is the caller's contract.
                unsafe { write_out(text.as_bytes(), buf, cap, len) }
            }
            Err(e) => fail_with(&e),
        }
    }
}

/// Report how the API answered a request that carried `authorization` (the `Authorization`
/// value `tw_client_headers_for` gave, NUL-terminated), so that an adapter recovers as
/// `tw_client_send` does. `body` (NULL with `body_len` 0 when not at hand) is read only with
/// `graphql_auth_errors`.
///
/// `*resend` receives 1 when the answer rejected the token (HTTP 401, or with
/// `graphql_auth_errors` a 200 whose `errors[].extensions.code` is `UNAUTHENTICATED`) and
/// the token was invalidated: re-send the request once with headers from
/// `tw_client_headers_for`, and return a second rejection to the caller. 0 otherwise.
/// Returns `TW_ERR_UNAUTHORIZED` (with `*resend` 0) when the rejected token was issued after
/// the API had rejected another one less than `error_cooldown` ago: do not re-send, the API
/// rejects freshly issued tokens (`tw_last_error` says what to check). May block on a token
/// fetch when the rejected token is no longer cached.
#[no_mangle]
pub unsafe extern "C" fn tw_client_recover(
    client: *mut tw_client,
    authorization: *const c_char,
    status: u16,
    body: *const u8,
    body_len: usize,
    resend: *mut c_int,
) -> tw_status {
    ffi_boundary! {
        try_out!(resend, "resend");
        // SAFETY: checked non-NULL above.
        unsafe { *resend = 0 };
        let client = try_handle!(client, "client", "tw_client");
        let authorization = try_str!(authorization, "authorization");
        if body.is_null() && body_len > 0 {
            return fail(TW_ERR_INVALID_ARGUMENT, "`body` is NULL but `body_len` is not 0");
        }
        let body: &[u8] = if body.is_null() {
            &[]
        } else {
            // SAFETY: the caller guarantees `body` is valid for `body_len` bytes.
            unsafe { std::slice::from_raw_parts(body, body_len) }
        };
        match client.recover(authorization, status, body) {
            Ok(again) => {
                // SAFETY: checked non-NULL above.
                unsafe { *resend = c_int::from(again) };
                TW_OK
            }
            Err(e) => fail_with(&e),
        }
    }
}

/// Evict `token` if it is the cached one (call it with the token an API rejected with 401;
/// a token that is no longer current is ignored, so many such calls cause one refresh).
/// `token` NULL evicts every cached token. Never blocks on the network.
#[no_mangle]
pub unsafe extern "C" fn tw_client_invalidate(
    client: *mut tw_client,
    token: *const c_char,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        let token = if token.is_null() { None } else { Some(try_str!(token, "token")) };
        client.invalidate(token);
        TW_OK
    }
}

/// Replace the client secret (rotation): clears every cached token and remembered error
/// atomically. Errors: `TW_ERR_CONFIG` for an empty secret or a non-secret auth method.
#[no_mangle]
pub unsafe extern "C" fn tw_client_set_client_secret(
    client: *mut tw_client,
    secret: *const c_char,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        let secret = try_str!(secret, "secret");
        match client.set_client_secret(secret) {
            Ok(()) => TW_OK,
            Err(e) => fail_with(&e),
        }
    }
}

/// Copy statistics as JSON into `buf` (buffer protocol as for `tw_client_token`):
/// `{"token_requests":n,"cache_hits":n,"failures":n,"background_refreshes":n,
/// "invalidations":n,"remaining_ms":n|null}`.
#[no_mangle]
pub unsafe extern "C" fn tw_client_stats(
    client: *mut tw_client,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        try_out!(len, "len");
        let json = client.stats().to_json();
        // SAFETY: `len` checked; `buf` validity is the caller's contract.
        unsafe { write_out(json.as_bytes(), buf, cap, len) }
    }
}

struct Callback {
    function: unsafe extern "C" fn(*mut c_void, *const tw_event),
    user_data: *mut c_void,
}

impl Callback {
    fn call(&self, event: &tw_event) {
        // SAFETY: the caller registered a valid function; `event` outlives the call.
        unsafe { (self.function)(self.user_data, event) };
    }
}

// SAFETY: the C caller registers a callback that may be called from any thread (documented
// on `tw_client_set_event_callback`); we only pass `user_data` back to it.
unsafe impl Send for Callback {}
// SAFETY: as above; the callback is only ever invoked, never mutated.
unsafe impl Sync for Callback {}

/// Register `callback` for events (NULL unregisters). It may run on a library thread,
/// must return quickly, must not throw, and must not call back into this client. When this
/// call returns, a previously registered callback is not running and will not run again.
/// The first callback registered receives the configuration's `TW_EVENT_WARNING` events
/// during this call, on the calling thread (each once per client).
#[no_mangle]
pub unsafe extern "C" fn tw_client_set_event_callback(
    client: *mut tw_client,
    callback: tw_event_fn,
    user_data: *mut c_void,
) -> tw_status {
    ffi_boundary! {
        let client = try_handle!(client, "client", "tw_client");
        match callback {
            None => client.set_event_hook(None::<fn(&crate::Event)>),
            Some(function) => {
                let cb = Callback { function, user_data };
                client.set_event_hook(Some(move |event: &crate::Event| {
                    let message = CString::new(event.message.replace('\0', " ")).unwrap_or_default();
                    let raw = tw_event {
                        kind: event.kind as tw_event_kind,
                        kind_name: kind_name(event.kind).as_ptr(),
                        message: message.as_ptr(),
                    };
                    cb.call(&raw);
                }));
            }
        }
        TW_OK
    }
}
