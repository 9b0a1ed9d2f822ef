//! The rules for headers a caller adds to a request: one validation for the Rust API and
//! both C forms (`"Name: value\r\n"` text and name/value arrays), so every language gets the
//! same answer.
//!
//! - A name is an RFC 9110 token; a value has no CR, LF, NUL or other control character.
//! - Headers that decide where a request goes or how it is framed are the transport's:
//!   `Authorization` (ours), `Proxy-Authorization`, `Host`, `Content-Length`,
//!   `Transfer-Encoding`, `Connection`, `TE`, `Upgrade`. A caller's `Host` could steer a
//!   shared edge to another origin than the one the token is bound to; a caller's
//!   `Content-Length: 0` would silently cut the body.
//! - The text form is strict RFC 9112 §5: every line `Name: value` ended by CRLF, no bare CR
//!   or LF, no obs-fold (a line starting with whitespace), no whitespace before the colon,
//!   and no empty line except one final one.
//! - On a redirect to an origin the token is not bound to, only headers that describe what
//!   the caller accepts and sends survive: `Accept`, `Accept-Language`, `User-Agent`, and
//!   `Content-Type` while the body goes along.

use super::url::{is_header_name, is_header_value};

/// Header names a caller may not set (compared case-insensitively).
pub(crate) const RESERVED: [&str; 8] = [
    "Authorization",
    "Proxy-Authorization",
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "TE",
    "Upgrade",
];

/// Caller headers that may follow a redirect to an origin outside the configured ones.
const SURVIVE_FOREIGN_REDIRECT: [&str; 3] = ["Accept", "Accept-Language", "User-Agent"];

/// Why `name: value` may not be sent as a caller header; `None` when it may. The reason
/// never quotes the value (it may be a credential).
pub(crate) fn refuse(name: &str, value: &str) -> Option<String> {
    if !is_header_name(name) {
        return Some(format!(
            "header name `{}` is not an RFC 9110 token",
            name.escape_debug()
        ));
    }
    if !is_header_value(value) {
        return Some(format!(
            "header `{name}` has CR, LF, NUL or another control character in its value"
        ));
    }
    if let Some(reserved) = RESERVED.iter().find(|r| r.eq_ignore_ascii_case(name)) {
        let why = if *reserved == "Authorization" {
            "tokenward sets it"
        } else {
            "the HTTP transport sets it"
        };
        return Some(format!(
            "header `{name}` may not be set by the caller; {why}"
        ));
    }
    None
}

/// Whether a caller header goes along on a redirect to an origin outside the configured
/// ones; `body_kept` says whether the body does (then so does its `Content-Type`).
pub(crate) fn survives_foreign_redirect(name: &str, body_kept: bool) -> bool {
    SURVIVE_FOREIGN_REDIRECT
        .iter()
        .any(|kept| kept.eq_ignore_ascii_case(name))
        || (body_kept && name.eq_ignore_ascii_case("Content-Type"))
}

/// Whether a header describes a body (dropped with the body when a redirect turns the
/// request into a GET, RFC 9110 §15.4).
pub(crate) fn describes_body(name: &str) -> bool {
    ["Content-Type", "Content-Encoding", "Content-Language"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Parse `"Name: value\r\n"` lines (see the module docs) into pairs, checking each with
/// [`refuse`]. Values lose the optional whitespace around them (RFC 9112 §5.1). The error
/// names the 1-based line and why, never the value.
pub(crate) fn parse_lines(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    let mut rest = text;
    let mut number = 0usize;
    while !rest.is_empty() {
        number += 1;
        let (line, after) = match rest.find(['\r', '\n']) {
            Some(at) if rest[at..].starts_with("\r\n") => (&rest[..at], &rest[at + 2..]),
            Some(at) if rest.as_bytes()[at] == b'\n' => {
                return Err(format!(
                    "line {number} ends with a bare LF; end every line with CRLF"
                ))
            }
            Some(_) => {
                return Err(format!(
                    "line {number} has a bare CR; end every line with CRLF and put no CR elsewhere"
                ))
            }
            None => return Err(format!("line {number} does not end with CRLF")),
        };
        rest = after;
        if line.is_empty() {
            if rest.is_empty() {
                // One final empty line, as in an HTTP head, ends the block.
                break;
            }
            return Err(format!("line {number} is empty but more lines follow"));
        }
        if line.starts_with([' ', '\t']) {
            return Err(format!(
                "line {number} starts with whitespace (obsolete line folding, RFC 9112 §5.2)"
            ));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "line {number} has no ':'; write \"Name: value\\r\\n\""
            ));
        };
        if name.ends_with([' ', '\t']) {
            return Err(format!(
                "line {number} has whitespace before the ':' (RFC 9112 §5.1)"
            ));
        }
        let value = value.trim_matches([' ', '\t']);
        if let Some(why) = refuse(name, value) {
            return Err(format!("line {number}: {why}"));
        }
        headers.push((name.to_string(), value.to_string()));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_lines(text).expect_err(text)
    }

    #[test]
    fn strict_lines_parse() {
        assert_eq!(parse_lines("").unwrap(), vec![]);
        assert_eq!(
            parse_lines("X-A: 1\r\nX-B:\t two words \r\n").unwrap(),
            vec![
                ("X-A".to_string(), "1".to_string()),
                ("X-B".to_string(), "two words".to_string())
            ]
        );
        assert_eq!(parse_lines("X-A: 1\r\n\r\n").unwrap().len(), 1);
        assert_eq!(parse_lines("X-Empty:\r\n").unwrap()[0].1, "");
    }

    #[test]
    fn every_malformed_line_is_refused_by_number() {
        assert!(err("X-A: 1\r\nX-B: 2\nX-Evil: 1\r\n").starts_with("line 2 ends with a bare LF"));
        assert!(err("X-A: 1\nX-Evil: 1\r\n").starts_with("line 1 ends with a bare LF"));
        assert!(err("X-A: 1\rX-Evil: 1\r\n").starts_with("line 1 has a bare CR"));
        assert!(err("X-A: 1\r\n folded\r\n").starts_with("line 2 starts with whitespace"));
        assert!(err("X-A: 1\r\n\tfolded\r\n").starts_with("line 2 starts with whitespace"));
        assert!(err("X-A : 1\r\n").starts_with("line 1 has whitespace before the ':'"));
        assert!(err("X-A\t: 1\r\n").starts_with("line 1 has whitespace before the ':'"));
        assert!(err("X-A: 1\r\n\r\nX-B: 2\r\n").starts_with("line 2 is empty"));
        assert!(err("\r\nX-B: 2\r\n").starts_with("line 1 is empty"));
        assert!(err("X-A: 1\r\nno colon\r\n").starts_with("line 2 has no ':'"));
        assert!(err("X-A: 1").starts_with("line 1 does not end with CRLF"));
        assert!(err("X(A): 1\r\n").starts_with("line 1: header name `X(A)`"));
        assert!(err("X-A: a\u{1}b\r\n").starts_with("line 1: header `X-A` has CR, LF"));
        assert!(err("X-A: 1\r\nhost: evil.example\r\n").starts_with("line 2: header `host`"));
    }

    #[test]
    fn errors_never_quote_values() {
        let e = err("X-Api-Key: s3cr3t-value\nX: 1\r\n");
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = err("Authorization: Bearer s3cr3t\r\n");
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn reserved_names_in_any_case() {
        for name in RESERVED {
            for spelled in [
                name.to_string(),
                name.to_ascii_lowercase(),
                name.to_ascii_uppercase(),
            ] {
                let why = refuse(&spelled, "x").unwrap_or_else(|| panic!("{spelled} accepted"));
                assert!(why.contains("may not be set"), "{why}");
            }
        }
        assert_eq!(refuse("X-Host", "x"), None);
        assert_eq!(refuse("Content-Type", "application/json"), None);
    }

    #[test]
    fn only_descriptive_headers_survive_a_foreign_redirect() {
        for name in ["accept", "Accept-Language", "USER-AGENT"] {
            assert!(survives_foreign_redirect(name, false), "{name}");
        }
        assert!(survives_foreign_redirect("content-type", true));
        assert!(!survives_foreign_redirect("content-type", false));
        for name in ["Cookie", "X-Api-Key", "tenant-code", "Authorization"] {
            assert!(!survives_foreign_redirect(name, true), "{name}");
        }
    }
}
