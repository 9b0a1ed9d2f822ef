//! Secrets that never print and are wiped from memory on drop.

#![forbid(unsafe_code)]

use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A client secret, assertion or token. `Debug` prints `***` and there is no `Display`;
/// every copy zeroizes its bytes when it is dropped. Compare with [`constant_time_eq`].
#[derive(Clone)]
pub(crate) struct Secret(Zeroizing<String>);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret itself, for the code that puts it on the wire (a form, a header).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Compare two secrets in time that depends only on their lengths, so timing does not
/// reveal a common prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A short, non-reversible fingerprint of a token for logs and events: the first 8 hex
/// digits of its SHA-256.
pub(crate) fn fingerprint(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn fingerprint_is_short_and_stable() {
        let f = fingerprint("eyJhbGciOiJub25lIn0.e30.sig");
        assert_eq!(f.len(), 8);
        assert_eq!(f, fingerprint("eyJhbGciOiJub25lIn0.e30.sig"));
        assert_ne!(f, fingerprint("other"));
    }
}
