//! The public request and response types of [`crate::Client::send`].

use std::fmt;

use crate::error::{Error, ErrorKind, Result};
use crate::http::headers;
use crate::http::is_header_name;

/// An API request for [`crate::Client::send`]. The body is kept so it can be re-sent
/// intact when the request is retried.
#[derive(Clone)]
pub struct Request {
    pub(super) method: String,
    pub(super) url: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Option<Vec<u8>>,
}

impl Request {
    /// A request with any method (e.g. `"PATCH"`).
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// `GET url`.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// `POST url`.
    pub fn post(url: &str) -> Request {
        Request::new("POST", url)
    }

    /// Add a header. [`crate::Client::send`] refuses the request when a name is not an
    /// RFC 9110 token, a value has CR, LF, NUL or another control character, or the name is
    /// one the transport or tokenward sets: `Authorization`, `Proxy-Authorization`, `Host`,
    /// `Content-Length`, `Transfer-Encoding`, `Connection`, `TE`, `Upgrade` (any case).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Add headers given as `"Name: value\r\n"` lines (the C ABI's text form). Strict:
    /// every line ends with CRLF; a bare CR or LF, a line starting with whitespace
    /// (obs-fold), whitespace before the colon, an empty line other than a final one, or a
    /// header [`Request::header`] would refuse is an [`crate::ErrorKind::InvalidArgument`]
    /// naming the line (never quoting a value).
    pub fn header_lines(mut self, lines: &str) -> Result<Request> {
        let parsed =
            headers::parse_lines(lines).map_err(|why| invalid(format!("`headers` {why}")))?;
        self.headers.extend(parsed);
        Ok(self)
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    pub(super) fn is_idempotent(&self) -> bool {
        // RFC 9110 §9.2.2
        matches!(
            self.method.as_str(),
            "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
        )
    }

    pub(super) fn validate(&self) -> Result<()> {
        check_method(&self.method)?;
        for (name, value) in &self.headers {
            if let Some(why) = headers::refuse(name, value) {
                return Err(invalid(why));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// The API's answer: status, headers (names lower-cased) and the whole body.
#[derive(Clone)]
pub struct Response {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Response {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A header's value (case-insensitive); repeated headers are joined with `", "`.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// All headers in the order received, names lower-cased.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// An HTTP method is an RFC 9110 token.
pub(super) fn check_method(method: &str) -> Result<()> {
    if is_header_name(method) {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{}` is not a valid HTTP method",
            method.escape_debug()
        )))
    }
}

pub(super) fn invalid(message: String) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("The request was not sent: {message}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_with_bad_headers_are_refused() {
        assert!(Request::get("https://x")
            .header("a", "b\r\nc: d")
            .validate()
            .is_err());
        assert!(Request::get("https://x")
            .header("Authorization", "Bearer x")
            .validate()
            .is_err());
        assert!(Request::get("https://x")
            .header("bad name", "v")
            .validate()
            .is_err());
        assert!(Request::new("GE T", "https://x").validate().is_err());
        for name in [
            "host",
            "Content-Length",
            "TRANSFER-ENCODING",
            "te",
            "Upgrade",
        ] {
            assert!(Request::get("https://x")
                .header(name, "v")
                .validate()
                .is_err());
        }
        assert!(Request::post("https://x")
            .header("content-type", "application/json")
            .validate()
            .is_ok());
        let e = Request::get("https://x")
            .header_lines("X-A: 1\r\nX-B: 2\nX-C: 3\r\n")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("`headers` line 2"), "{e}");
    }
}
