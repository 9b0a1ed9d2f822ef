//! The C ABI. Only `extern "C"` plumbing lives here: handles, status codes,
//! strings, buffers and the panic boundary. Every behaviour comes from the Rust core.
//!
//! Rules every entry point follows: each pointer argument is checked, strings are validated
//! as UTF-8, panics are caught (`TW_ERR_PANIC`), failures leave a message for
//! `tw_last_error`, and nothing the caller owns is ever freed.

// The C ABI is raw pointers by nature; every block states its contract with `SAFETY:`.
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]
// Each entry point states its pointer contract in prose written for the C reader (cbindgen
// copies it into the header); a Rust-style `# Safety` section would only repeat it there.
#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

use crate::error::{Error, ErrorKind};

mod client;
mod diagnose;
pub(crate) mod handle;
mod panic;
mod response;

pub use client::*;
pub use diagnose::*;
pub use response::*;

/// Status code of every fallible call. Values are fixed forever; new ones are appended.
pub type tw_status = i32;

/// Success.
pub const TW_OK: tw_status = 0;
/// A NULL pointer, invalid UTF-8 or malformed JSON was passed.
pub const TW_ERR_INVALID_ARGUMENT: tw_status = 1;
/// The configuration was rejected; the message names the key.
pub const TW_ERR_CONFIG: tw_status = 2;
/// The caller's buffer is too small; `*len` holds the size needed (NUL included).
pub const TW_ERR_BUFFER_TOO_SMALL: tw_status = 3;
/// DNS, connect, reset or proxy failure.
pub const TW_ERR_NETWORK: tw_status = 10;
/// The connect or request deadline passed.
pub const TW_ERR_TIMEOUT: tw_status = 11;
/// Certificate or TLS handshake failure.
pub const TW_ERR_TLS: tw_status = 12;
/// OAuth `invalid_client` (or HTTP 401 from the token endpoint).
pub const TW_ERR_INVALID_CLIENT: tw_status = 20;
/// OAuth `invalid_scope`.
pub const TW_ERR_INVALID_SCOPE: tw_status = 21;
/// OAuth `unauthorized_client` / `unsupported_grant_type`.
pub const TW_ERR_UNAUTHORIZED_CLIENT: tw_status = 22;
/// Any other OAuth error response.
pub const TW_ERR_OAUTH: tw_status = 23;
/// HTTP 429 after retries.
pub const TW_ERR_RATE_LIMITED: tw_status = 24;
/// HTTP 5xx after retries.
pub const TW_ERR_SERVER: tw_status = 25;
/// The token response was malformed (not JSON, no access_token, too large).
pub const TW_ERR_BAD_RESPONSE: tw_status = 26;
/// The API answered 401 again after one token refresh.
pub const TW_ERR_UNAUTHORIZED: tw_status = 30;
/// The API answered 403.
pub const TW_ERR_FORBIDDEN: tw_status = 31;
/// The request URL's origin is not one of the configured `api_base_urls`; nothing was sent
/// and no header was handed out for it.
pub const TW_ERR_FOREIGN_ORIGIN: tw_status = 32;
/// A Rust panic was caught at the boundary (a tokenward bug; please report it).
pub const TW_ERR_PANIC: tw_status = 99;

/// Version of this C ABI; bumped only on incompatible changes.
pub const TW_ABI_VERSION: i32 = 1;

pub(crate) fn status_of(kind: ErrorKind) -> tw_status {
    match kind {
        ErrorKind::InvalidArgument => TW_ERR_INVALID_ARGUMENT,
        ErrorKind::Config => TW_ERR_CONFIG,
        ErrorKind::BufferTooSmall => TW_ERR_BUFFER_TOO_SMALL,
        ErrorKind::Network => TW_ERR_NETWORK,
        ErrorKind::Timeout => TW_ERR_TIMEOUT,
        ErrorKind::Tls => TW_ERR_TLS,
        ErrorKind::InvalidClient => TW_ERR_INVALID_CLIENT,
        ErrorKind::InvalidScope => TW_ERR_INVALID_SCOPE,
        ErrorKind::UnauthorizedClient => TW_ERR_UNAUTHORIZED_CLIENT,
        ErrorKind::OAuth => TW_ERR_OAUTH,
        ErrorKind::RateLimited => TW_ERR_RATE_LIMITED,
        ErrorKind::Server => TW_ERR_SERVER,
        ErrorKind::BadResponse => TW_ERR_BAD_RESPONSE,
        ErrorKind::Unauthorized => TW_ERR_UNAUTHORIZED,
        ErrorKind::Forbidden => TW_ERR_FORBIDDEN,
        ErrorKind::Panic => TW_ERR_PANIC,
        ErrorKind::ForeignOrigin => TW_ERR_FOREIGN_ORIGIN,
    }
}

fn status_name(status: tw_status) -> &'static CStr {
    match status {
        TW_OK => c"TW_OK",
        TW_ERR_INVALID_ARGUMENT => c"TW_ERR_INVALID_ARGUMENT",
        TW_ERR_CONFIG => c"TW_ERR_CONFIG",
        TW_ERR_BUFFER_TOO_SMALL => c"TW_ERR_BUFFER_TOO_SMALL",
        TW_ERR_NETWORK => c"TW_ERR_NETWORK",
        TW_ERR_TIMEOUT => c"TW_ERR_TIMEOUT",
        TW_ERR_TLS => c"TW_ERR_TLS",
        TW_ERR_INVALID_CLIENT => c"TW_ERR_INVALID_CLIENT",
        TW_ERR_INVALID_SCOPE => c"TW_ERR_INVALID_SCOPE",
        TW_ERR_UNAUTHORIZED_CLIENT => c"TW_ERR_UNAUTHORIZED_CLIENT",
        TW_ERR_OAUTH => c"TW_ERR_OAUTH",
        TW_ERR_RATE_LIMITED => c"TW_ERR_RATE_LIMITED",
        TW_ERR_SERVER => c"TW_ERR_SERVER",
        TW_ERR_BAD_RESPONSE => c"TW_ERR_BAD_RESPONSE",
        TW_ERR_UNAUTHORIZED => c"TW_ERR_UNAUTHORIZED",
        TW_ERR_FORBIDDEN => c"TW_ERR_FORBIDDEN",
        TW_ERR_FOREIGN_ORIGIN => c"TW_ERR_FOREIGN_ORIGIN",
        TW_ERR_PANIC => c"TW_ERR_PANIC",
        _ => c"TW_ERR_UNKNOWN",
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Remember `message` as this thread's last error and return `status`.
pub(crate) fn fail(status: tw_status, message: &str) -> tw_status {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = text);
    status
}

pub(crate) fn fail_with(error: &Error) -> tw_status {
    fail(status_of(error.kind()), error.message())
}

/// Copy `value` plus a NUL into the caller's buffer under the buffer protocol: `*len`
/// always gets the size needed; too small (including the `buf = NULL, cap = 0` size query)
/// writes nothing and returns `TW_ERR_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `buf` must be NULL or valid for `cap` bytes; `len` must be valid for a write.
pub(crate) unsafe fn write_out(
    value: &[u8],
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> tw_status {
    // SAFETY: forwarded caller contract.
    unsafe { write_out_parts(&[value], buf, cap, len) }
}

/// [`write_out`] for a value given as consecutive parts (written back to back).
///
/// # Safety
/// As for [`write_out`].
pub(crate) unsafe fn write_out_parts(
    parts: &[&[u8]],
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> tw_status {
    let value_len: usize = parts.iter().map(|part| part.len()).sum();
    let needed = value_len + 1;
    // SAFETY: the caller checked `len` is non-NULL and writable.
    unsafe { *len = needed };
    if buf.is_null() && cap > 0 {
        return fail(TW_ERR_INVALID_ARGUMENT, "`buf` is NULL but `cap` is not 0");
    }
    if cap < needed {
        return fail(
            TW_ERR_BUFFER_TOO_SMALL,
            &format!("The buffer holds {cap} bytes; {needed} are needed (see *len)."),
        );
    }
    // SAFETY: `buf` is valid for `cap >= needed` bytes and cannot overlap our own values.
    unsafe {
        let mut at = buf.cast::<u8>();
        for part in parts {
            std::ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
            at = at.add(part.len());
        }
        *at = 0;
    }
    TW_OK
}

/// The library version, e.g. `"0.1.0"`. Static; never NULL; never free it.
#[no_mangle]
pub extern "C" fn tw_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The C ABI version this library was built with (`TW_ABI_VERSION` of its header).
/// Bindings compare it with the version they were written for before any other call.
#[no_mangle]
pub extern "C" fn tw_abi_version() -> i32 {
    TW_ABI_VERSION
}

/// The name of a status code, e.g. `"TW_ERR_TIMEOUT"`; `"TW_ERR_UNKNOWN"` for values this
/// version does not know. Static; never NULL; never free it.
#[no_mangle]
pub extern "C" fn tw_status_name(status: tw_status) -> *const c_char {
    status_name(status).as_ptr()
}

/// This thread's last error message (`""` if none yet). Never NULL. Owned by the library
/// and valid until this thread's next `tw_` call; copy it if you need it longer.
#[no_mangle]
pub extern "C" fn tw_last_error() -> *const c_char {
    // The pointer stays valid until the next `fail` on this thread replaces the CString.
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}
