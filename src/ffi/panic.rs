//! The panic boundary and argument checks used by every entry point (after rustls-ffi's
//! `ffi_panic_boundary!` and `try_ref_from_ptr!`).

/// Run an entry point's body, turning a panic into `TW_ERR_PANIC` (never unwinding into C).
macro_rules! ffi_boundary {
    ($($body:tt)*) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| -> $crate::ffi::tw_status { $($body)* })) {
            Ok(status) => status,
            Err(_) => $crate::ffi::fail(
                $crate::ffi::TW_ERR_PANIC,
                "A Rust panic was caught at the tokenward FFI boundary; this is a bug, please report it.",
            ),
        }
    }};
}

/// The value behind a `tw_client`/`tw_response` handle after checking its tag (see
/// `handle`), or return `TW_ERR_INVALID_ARGUMENT` naming the argument and what is wrong.
macro_rules! try_handle {
    ($ptr:expr, $name:literal, $kind:literal) => {
        // SAFETY: NULL, a handle from `handle::new` (live or freed: its shell is never
        // deallocated), or — documented as best effort — another readable address.
        match unsafe { $crate::ffi::handle::get($ptr) } {
            Ok(value) => value,
            Err(misuse) => {
                return $crate::ffi::fail(
                    $crate::ffi::TW_ERR_INVALID_ARGUMENT,
                    &$crate::ffi::handle::describe(misuse, $name, $kind),
                )
            }
        }
    };
}

/// A non-NULL out-pointer, or return `TW_ERR_INVALID_ARGUMENT`.
macro_rules! try_out {
    ($ptr:expr, $name:literal) => {
        if $ptr.is_null() {
            return $crate::ffi::fail(
                $crate::ffi::TW_ERR_INVALID_ARGUMENT,
                concat!("`", $name, "` is NULL"),
            );
        }
    };
}

/// `&str` from a NUL-terminated UTF-8 C string, or return `TW_ERR_INVALID_ARGUMENT`.
macro_rules! try_str {
    ($ptr:expr, $name:literal) => {{
        if $ptr.is_null() {
            return $crate::ffi::fail(
                $crate::ffi::TW_ERR_INVALID_ARGUMENT,
                concat!("`", $name, "` is NULL"),
            );
        }
        // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string.
        match unsafe { ::std::ffi::CStr::from_ptr($ptr) }.to_str() {
            Ok(s) => s,
            Err(_) => {
                return $crate::ffi::fail(
                    $crate::ffi::TW_ERR_INVALID_ARGUMENT,
                    concat!("`", $name, "` is not valid UTF-8"),
                )
            }
        }
    }};
}

pub(crate) use {ffi_boundary, try_handle, try_out, try_str};
