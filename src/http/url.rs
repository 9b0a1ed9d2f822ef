//! URL checks and encodings shared by config, the token endpoint and `send`.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::error::{Error, Result};

/// The scheme, host and port of a URL — the unit a token is bound to (RFC 6454).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) scheme: String,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Origin {
    pub(crate) fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Messages show at most this many characters of a URL or of a lower layer's error text:
/// either may come from a server (a redirect's `Location`, the names in a certificate, a
/// proxy's answer) and be of any length.
const CLIP_CHARS: usize = 300;

/// `text` as messages show it: clipped to [`CLIP_CHARS`], the last one `…` when cut.
pub(crate) fn clip(text: &str) -> Cow<'_, str> {
    if text.char_indices().nth(CLIP_CHARS).is_none() {
        return Cow::Borrowed(text);
    }
    let cut = text
        .char_indices()
        .nth(CLIP_CHARS - 1)
        .map_or(text.len(), |(at, _)| at);
    Cow::Owned(format!("{}…", &text[..cut]))
}

/// Parse an absolute http(s) URL into its origin; `what` names it in the error.
pub(crate) fn origin_of(url: &str, what: &str) -> Result<Origin> {
    let show = clip(url);
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| Error::config(format!("{what} `{show}` is not a valid absolute URL")))?;
    let scheme = uri.scheme_str().map(|s| s.to_ascii_lowercase());
    let scheme = match scheme.as_deref() {
        Some("https") | Some("http") => scheme.unwrap_or_default(),
        _ => {
            return Err(Error::config(format!(
                "{what} `{show}` must start with https:// (or http:// for loopback with allow_http)"
            )))
        }
    };
    let host = match uri.host() {
        Some(h) if !h.is_empty() => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
        _ => return Err(Error::config(format!("{what} `{show}` has no host"))),
    };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Error::config(format!(
            "{what} must not carry credentials in the URL; use client_id/client_secret"
        )));
    }
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Ok(Origin { scheme, host, port })
}

/// Check that `url` may be used: https, or http to a loopback host when `allow_http`.
pub(crate) fn check_url(url: &str, what: &str, allow_http: bool) -> Result<Origin> {
    let origin = origin_of(url, what)?;
    let url = clip(url);
    if origin.scheme == "http" {
        if !origin.is_loopback() {
            return Err(Error::config(format!(
                "{what} `{url}` uses plain http to a non-loopback host; https is required \
                 (allow_http is only honoured for 127.0.0.1, ::1 and localhost)"
            )));
        }
        if !allow_http {
            return Err(Error::config(format!(
                "{what} `{url}` uses plain http; set allow_http to use it on loopback"
            )));
        }
    }
    Ok(origin)
}

pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Percent-encode everything but RFC 3986 unreserved characters. Used for form values and
/// for the Basic credentials of RFC 6749 §2.3.1; a space becomes `%20` (never `+`), so
/// servers decoding either as a form or with plain percent-decoding read the same value.
/// `out` grows once, by exactly what is written, before anything of `value` is in it.
pub(crate) fn percent_encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(encoded_len(value));
    let bytes = value.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if is_unreserved(b) {
            continue;
        }
        // A run of unreserved (ASCII) bytes starts and ends on char boundaries.
        if plain < i {
            out.push_str(&value[plain..i]);
        }
        out.push('%');
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
        plain = i + 1;
    }
    if plain < bytes.len() {
        out.push_str(&value[plain..]);
    }
}

fn is_unreserved(b: u8) -> bool {
    UNRESERVED[b as usize]
}

/// RFC 3986 unreserved characters, by byte: a table keeps the encoder's per-byte test to
/// one load.
static UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
        b += 1;
    }
    table
};

/// How long `value` is once percent-encoded.
fn encoded_len(value: &str) -> usize {
    value
        .bytes()
        .map(|b| if is_unreserved(b) { 1 } else { 3 })
        .sum()
}

/// An `application/x-www-form-urlencoded` body.
#[derive(Default)]
pub(crate) struct Form {
    body: zeroize::Zeroizing<String>,
}

impl Form {
    pub(crate) fn push(&mut self, name: &str, value: &str) {
        let needed = 2 + encoded_len(name) + encoded_len(value);
        if self.body.capacity() - self.body.len() < needed {
            // Grown by hand: a reallocation would leave what was sent so far (a secret,
            // perhaps) in freed memory; the old buffer is wiped as it drops.
            let capacity = (self.body.len() + needed)
                .max(2 * self.body.capacity())
                .max(256);
            let mut grown = zeroize::Zeroizing::new(String::with_capacity(capacity));
            grown.push_str(&self.body);
            self.body = grown;
        }
        if !self.body.is_empty() {
            self.body.push('&');
        }
        percent_encode(name, &mut self.body);
        self.body.push('=');
        percent_encode(value, &mut self.body);
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.body
    }
}

/// RFC 9110 `token` characters, the only ones allowed in a header name.
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9110 field values: visible characters, spaces and tabs; never CR, LF or NUL.
pub(crate) fn is_header_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || b >= 0x20 && b != 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_urls_are_clipped_in_messages() {
        assert_eq!(clip("https://a/b"), "https://a/b");
        let exact = "x".repeat(CLIP_CHARS);
        assert_eq!(clip(&exact), exact.as_str());
        let long = format!("ftp://h/{}", "é".repeat(100_000));
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), CLIP_CHARS);
        assert!(clipped.ends_with('…'));
        let e = check_url(&long, "the redirect target", false).unwrap_err();
        assert!(
            e.message().chars().count() < 2 * CLIP_CHARS,
            "{}",
            e.message().len()
        );
    }

    #[test]
    fn origins_default_ports_and_normalise_case() {
        let o = origin_of("HTTPS://API.Example.com/v1", "x").unwrap();
        assert_eq!(
            (o.scheme.as_str(), o.host.as_str(), o.port),
            ("https", "api.example.com", 443)
        );
        let o = origin_of("http://[::1]:8080/", "x").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("::1", 8080));
        assert!(o.is_loopback());
    }

    #[test]
    fn http_only_for_loopback_with_allow_http() {
        assert!(check_url("http://127.0.0.1:9/t", "token_url", true).is_ok());
        assert!(check_url("http://localhost/t", "token_url", true).is_ok());
        assert!(check_url("http://127.0.0.1:9/t", "token_url", false).is_err());
        let e = check_url("http://idp.example.com/t", "token_url", true).unwrap_err();
        assert!(e.message().contains("non-loopback"), "{e}");
        assert!(check_url("ftp://x/", "token_url", true).is_err());
        assert!(check_url("https://user:pw@idp/", "token_url", false).is_err());
    }

    #[test]
    fn percent_encoding_of_special_secret() {
        let mut out = String::new();
        percent_encode("xY9#mK2$pL8@nQ5 +/%", &mut out);
        assert_eq!(out, "xY9%23mK2%24pL8%40nQ5%20%2B%2F%25");
        for (value, encoded) in [
            ("", ""),
            ("a-b.c_d~", "a-b.c_d~"),
            ("é", "%C3%A9"),
            ("aé b", "a%C3%A9%20b"),
            ("%", "%25"),
        ] {
            let mut out = String::from("x=");
            percent_encode(value, &mut out);
            assert_eq!(out, format!("x={encoded}"));
        }
    }

    #[test]
    fn a_form_holds_every_pair_whatever_its_size() {
        let mut form = Form::default();
        let long = "v é".repeat(200);
        form.push("grant_type", "client_credentials");
        form.push("client_assertion", &long);
        form.push("a b", "");
        let expected = format!(
            "grant_type=client_credentials&client_assertion={}&a%20b=",
            "v%20%C3%A9".repeat(200)
        );
        assert_eq!(form.as_str(), expected);
    }

    #[test]
    fn header_checks() {
        assert!(is_header_name("tenant-code"));
        assert!(!is_header_name("bad name"));
        assert!(!is_header_name("x:y"));
        assert!(!is_header_name(""));
        assert!(is_header_value("T1 \tok"));
        assert!(!is_header_value("T1\r\nX-Evil: 1"));
        assert!(!is_header_value("a\0b"));
    }
}
