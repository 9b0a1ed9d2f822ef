//! The one public error type and its stable kinds.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::redact::Quoted;

/// What went wrong, as a stable category. Each kind maps 1:1 to a C status code
/// (`tw_status`); new kinds are appended, never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A null pointer, bad UTF-8 or bad JSON crossed the FFI boundary.
    InvalidArgument,
    /// The configuration was rejected; the message names the key.
    Config,
    /// A caller's buffer was too small (FFI only); the required length is reported.
    BufferTooSmall,
    /// DNS, connect, reset or proxy failure.
    Network,
    /// The connect or request deadline passed.
    Timeout,
    /// Certificate verification or TLS handshake failure.
    Tls,
    /// OAuth `invalid_client`, or HTTP 401 from the token endpoint.
    InvalidClient,
    /// OAuth `invalid_scope`.
    InvalidScope,
    /// OAuth `unauthorized_client` or `unsupported_grant_type`.
    UnauthorizedClient,
    /// Any other OAuth error response.
    OAuth,
    /// HTTP 429 after retries; [`Error::retry_after`] carries the server's hint.
    RateLimited,
    /// HTTP 5xx after retries.
    Server,
    /// The token response was malformed: not JSON, no `access_token`, too large.
    BadResponse,
    /// The API answered 401 again after one token refresh.
    Unauthorized,
    /// The API answered 403.
    Forbidden,
    /// A Rust panic was caught at the FFI boundary.
    Panic,
    /// A request URL's origin is not one of the configured `api_base_urls`: nothing of the
    /// client's (token, static headers) goes there.
    ForeignOrigin,
}

impl ErrorKind {
    /// Transient failures are retried with backoff; every other kind is final.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Network | ErrorKind::Timeout | ErrorKind::Server | ErrorKind::RateLimited
        )
    }

    /// A short stable name, e.g. `"invalid_client"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Config => "config",
            ErrorKind::BufferTooSmall => "buffer_too_small",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::InvalidClient => "invalid_client",
            ErrorKind::InvalidScope => "invalid_scope",
            ErrorKind::UnauthorizedClient => "unauthorized_client",
            ErrorKind::OAuth => "oauth",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Server => "server",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Panic => "panic",
            ErrorKind::ForeignOrigin => "foreign_origin",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every fallible tokenward call.
///
/// Cheap to clone (one `Arc`), so every caller waiting on one token fetch gets the same
/// error. Messages are complete sentences naming the endpoint, the HTTP status and the
/// OAuth `error` / `error_description` when present, and what to check. They never contain
/// a secret, an assertion or a full token. Transport failures keep the underlying error as
/// [`std::error::Error::source`].
///
/// Match on [`Error::kind`], not on the message; the fields are private, so details can be
/// added without breaking callers.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    http_status: Option<u16>,
    oauth_error: Option<String>,
    oauth_error_description: Option<String>,
    retry_after: Option<Duration>,
    scope: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind,
                message: message.into(),
                http_status: None,
                oauth_error: None,
                oauth_error_description: None,
                retry_after: None,
                scope: None,
                source: None,
            }),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, message)
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("details are only set while the error is being built")
    }

    pub(crate) fn with_status(mut self, status: u16) -> Error {
        self.inner_mut().http_status = Some(status);
        self
    }

    /// The OAuth `error` and `error_description`, quoted: they are server text.
    pub(crate) fn with_oauth(
        mut self,
        error: Option<Quoted>,
        description: Option<Quoted>,
    ) -> Error {
        let inner = self.inner_mut();
        inner.oauth_error = error.map(Quoted::into_string);
        inner.oauth_error_description = description.map(Quoted::into_string);
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Error {
        self.inner_mut().retry_after = retry_after;
        self
    }

    pub(crate) fn with_scope(mut self, scope: Option<Quoted>) -> Error {
        self.inner_mut().scope = scope.map(Quoted::into_string);
        self
    }

    /// The same error with its message rewritten by `rewrite` (e.g. scrubbed of a token a
    /// redirect target carried). The cause is kept when this is the only copy of the error.
    pub(crate) fn map_message(mut self, rewrite: impl FnOnce(&str) -> String) -> Error {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.message = rewrite(&inner.message);
            return self;
        }
        let inner = &self.inner;
        Error {
            inner: Arc::new(Inner {
                kind: inner.kind,
                message: rewrite(&inner.message),
                http_status: inner.http_status,
                oauth_error: inner.oauth_error.clone(),
                oauth_error_description: inner.oauth_error_description.clone(),
                retry_after: inner.retry_after,
                scope: inner.scope.clone(),
                source: None,
            }),
        }
    }

    /// Keep `source` as the cause ([`std::error::Error::source`]).
    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        self.inner_mut().source = Some(Box::new(source));
        self
    }

    /// The stable category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The full message (also what `Display` prints).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The HTTP status the server answered with, when the failure came from a response.
    pub fn http_status(&self) -> Option<u16> {
        self.inner.http_status
    }

    /// The OAuth `error` code (RFC 6749 §5.2) or the API's `WWW-Authenticate` `error`.
    pub fn oauth_error(&self) -> Option<&str> {
        self.inner.oauth_error.as_deref()
    }

    /// The OAuth `error_description`, when the server sent one.
    pub fn oauth_error_description(&self) -> Option<&str> {
        self.inner.oauth_error_description.as_deref()
    }

    /// The server's `Retry-After` hint, for rate limiting and 503s.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// For [`ErrorKind::Forbidden`]: the scope the API said it requires, if it said.
    pub fn required_scope(&self) -> Option<&str> {
        self.inner.scope.as_deref()
    }

    /// Whether retrying later may succeed (network, timeout, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        self.inner.kind.is_transient()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(status) = self.inner.http_status {
            d.field("http_status", &status);
        }
        if let Some(error) = &self.inner.oauth_error {
            d.field("oauth_error", error);
        }
        if let Some(retry_after) = self.inner.retry_after {
            d.field("retry_after", &retry_after);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let source = self.inner.source.as_deref()?;
        Some(source)
    }
}

/// `Result` with tokenward's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_is_shared_and_details_survive() {
        let e = Error::new(ErrorKind::RateLimited, "slow down")
            .with_status(429)
            .with_retry_after(Some(Duration::from_secs(2)));
        let c = e.clone();
        assert_eq!(c.kind(), ErrorKind::RateLimited);
        assert_eq!(c.http_status(), Some(429));
        assert_eq!(c.retry_after(), Some(Duration::from_secs(2)));
        assert!(c.is_transient());
        assert_eq!(c.to_string(), "slow down");
        assert!(std::error::Error::source(&c).is_none());
    }

    #[test]
    fn the_cause_is_kept_as_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e = Error::new(ErrorKind::Network, "The token endpoint failed.").with_source(io);
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), "reset by peer");
        assert_eq!(e.clone().to_string(), "The token endpoint failed.");
    }
}
