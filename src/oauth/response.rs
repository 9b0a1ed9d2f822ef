//! Token responses: the success body (RFC 6749 §5.1) becomes a [`Fetched`] token, an error
//! body (§5.2) a typed [`Error`]. Whatever the server wrote is quoted through the request's
//! [`Redactor`], so an echoed secret, assertion or token never reaches a message; the body
//! and the parsed JSON are wiped once read.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use super::jwt::jwt_lifetime;
use super::token::{Fetched, TokenType};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{parse_retry_after, Reply};
use crate::redact::{Quoted, Redactor};
use crate::secret::Secret;

/// Read the token endpoint's `reply` to a request sent at `issued`; `default_lifetime`
/// applies when neither `expires_in` nor a JWT `exp` says how long the token lives.
/// `redactor` knows what the request carried; it learns the tokens of the body too, before
/// any part of the body is quoted. The reply's body is zeroized when done.
pub(super) fn parse_token_response(
    reply: Reply,
    url: &str,
    issued: Instant,
    redactor: Redactor,
    default_lifetime: Duration,
) -> Result<Fetched> {
    let Reply {
        status,
        headers,
        body,
    } = reply;
    let body = Zeroizing::new(body);
    // Some servers (IIS-hosted ones in particular) prefix JSON with a UTF-8 BOM.
    let json_text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&body);
    let mut json = serde_json::from_slice::<Value>(json_text).ok();
    let answer = Answer {
        status,
        headers: &headers,
        body: &body,
        url,
        parsed: json.as_ref(),
        redactor: RefCell::new(redactor),
        learned: Cell::new(false),
    };
    let result = answer.read(
        json.as_ref().filter(|j| j.is_object()),
        issued,
        default_lifetime,
    );
    drop(answer);
    if let Some(json) = json.as_mut() {
        wipe(json);
    }
    result
}

/// One token-endpoint answer being read.
struct Answer<'a> {
    status: u16,
    headers: &'a [(String, String)],
    body: &'a [u8],
    url: &'a str,
    /// The body, parsed.
    parsed: Option<&'a Value>,
    /// Knows what the request carried; only [`Answer::quote`] and [`Answer::quote_bytes`]
    /// use it, and they first teach it the tokens of `parsed`, so that quoting any part of
    /// the body cannot show them. Learning copies every token in the body, which an answer
    /// that quotes nothing (a success) does not need.
    redactor: RefCell<Redactor>,
    learned: Cell<bool>,
}

impl Answer<'_> {
    /// `text` quoted through the redactor, once it knows the body's tokens.
    fn quote(&self, text: &str) -> Quoted {
        self.learn();
        self.redactor.borrow().quote(text)
    }

    /// The same for bytes.
    fn quote_bytes(&self, bytes: &[u8]) -> Quoted {
        self.learn();
        self.redactor.borrow().quote_bytes(bytes)
    }

    fn learn(&self) {
        if !self.learned.replace(true) {
            if let Some(parsed) = self.parsed {
                self.redactor.borrow_mut().members_of(parsed);
            }
        }
    }

    fn read(
        &self,
        json: Option<&Value>,
        issued: Instant,
        default_lifetime: Duration,
    ) -> Result<Fetched> {
        let (status, url) = (self.status, self.url);
        let success = (200..300).contains(&status);
        let has_token = json.is_some_and(|j| j.get("access_token").is_some());
        if !success || (json.is_some_and(|j| j.get("error").is_some()) && !has_token) {
            return Err(self.error(json));
        }
        let Some(json) = json else {
            return Err(Error::new(
                ErrorKind::BadResponse,
                format!(
                    "The token endpoint at {url} answered HTTP {status} with a body that is not a JSON object \
                     (a proxy or login page?): \"{}\".",
                    self.quote_bytes(self.body)
                ),
            )
            .with_status(status));
        };
        let value = match json.get("access_token") {
            Some(Value::String(token)) if !token.is_empty() => token,
            _ => {
                return Err(Error::new(
                    ErrorKind::BadResponse,
                    format!(
                        "The token endpoint at {url} answered HTTP {status} without an `access_token` string."
                    ),
                )
                .with_status(status))
            }
        };
        // The token goes into an HTTP header verbatim; RFC 6750 b64token is a subset of this.
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::new(
                ErrorKind::BadResponse,
                format!("The token endpoint at {url} issued an access_token with spaces, control or non-ASCII characters; it cannot be sent as a Bearer token."),
            ));
        }
        // Whether a DPoP-bound token was wanted is the endpoint's rule
        // (`dpop::check_token_type`).
        let token_type = match json.get("token_type") {
            None | Some(Value::Null) => TokenType::Bearer,
            Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => TokenType::Bearer,
            Some(Value::String(t)) if t.eq_ignore_ascii_case("dpop") => TokenType::Dpop,
            Some(other) => {
                let shown = match other {
                    Value::String(t) => self.quote(t),
                    other => self.quote(&Zeroizing::new(other.to_string())),
                };
                return Err(Error::new(
                    ErrorKind::BadResponse,
                    format!(
                        "The token endpoint at {url} issued a token of type \"{shown}\"; tokenward only uses Bearer and DPoP tokens (RFC 6749 §7.1)."
                    ),
                ));
            }
        };
        let stated = expires_in(json.get("expires_in"));
        let from_jwt = jwt_lifetime(value);
        // A JWT's own `exp - iat` bounds the lifetime even when `expires_in` says more.
        let lifetime = match (stated, from_jwt) {
            (Some(stated), Some(jwt)) => stated.min(jwt),
            (stated, jwt) => stated.or(jwt).unwrap_or(default_lifetime),
        };
        Ok(Fetched {
            value: Secret::new(value.as_str()),
            token_type,
            lifetime,
            issued,
            granted_scope: json
                .get("scope")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// Turn a non-success token response into a typed error (RFC 6749 §5.2).
    fn error(&self, json: Option<&Value>) -> Error {
        let (status, url) = (self.status, self.url);
        let raw = |key: &str| json.and_then(|j| j.get(key)).and_then(Value::as_str);
        let code = raw("error").map(|c| self.quote(c));
        let description = raw("error_description").map(|d| self.quote(d));
        let retry_after = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| parse_retry_after(v));
        // Classified on the raw code: a quotation may have been clipped or scrubbed.
        let lower = raw("error").map(|c| c.trim().to_ascii_lowercase());
        let kind = match (status, lower.as_deref()) {
            (429, _) => ErrorKind::RateLimited,
            (_, Some("invalid_client")) => ErrorKind::InvalidClient,
            (_, Some("invalid_scope")) => ErrorKind::InvalidScope,
            (_, Some("unauthorized_client" | "unsupported_grant_type")) => {
                ErrorKind::UnauthorizedClient
            }
            (_, Some("temporarily_unavailable" | "server_error")) => ErrorKind::Server,
            (500.., _) => ErrorKind::Server,
            (401, _) => ErrorKind::InvalidClient,
            (408, _) => ErrorKind::Timeout,
            (_, Some(_)) => ErrorKind::OAuth,
            _ => ErrorKind::BadResponse,
        };
        let hint = match kind {
            ErrorKind::InvalidClient => " Check client_id, the client secret and auth_method (this server may expect client_secret_basic or client_secret_post).",
            ErrorKind::InvalidScope => " Check `scope` against the scopes this client may request.",
            ErrorKind::UnauthorizedClient => " Allow the client_credentials grant for this client at the identity provider.",
            ErrorKind::RateLimited => " The identity provider is rate-limiting this client; tokenward backs off.",
            ErrorKind::Server => " The identity provider is failing; tokenward retries with backoff.",
            _ if (300..400).contains(&status) => " Redirects from the token endpoint are not followed; configure the final token URL.",
            ErrorKind::BadResponse => " Check `token_url`.",
            _ => "",
        };
        let what = match (&code, &description) {
            (Some(c), Some(d)) => format!("{c}: \"{d}\""),
            (Some(c), None) => c.to_string(),
            (None, _) if self.body.is_empty() => "an empty body".to_string(),
            (None, _) => format!("\"{}\"", self.quote_bytes(self.body)),
        };
        Error::new(
            kind,
            format!("The token endpoint at {url} answered HTTP {status} with {what}.{hint}"),
        )
        .with_status(status)
        .with_oauth(code, description)
        .with_retry_after(retry_after)
    }
}

/// `expires_in` as a number, a numeric string, or a float; zero and negative mean "already
/// expiring" (usable once, never cached). Missing or unreadable gives `None`.
fn expires_in(value: Option<&Value>) -> Option<Duration> {
    let secs = match value? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !secs.is_finite() {
        return None;
    }
    Some(Duration::from_secs_f64(secs.clamp(0.0, 1e10)))
}

/// Overwrite every string in a parsed body (the token among them) before it is freed.
/// Object keys stay: they are member names, not secrets.
fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(members) => members.values_mut().for_each(wipe),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(status: u16, body: &str, headers: &[(&str, &str)]) -> Reply {
        Reply {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn parse_with(
        status: u16,
        body: &str,
        headers: &[(&str, &str)],
        redactor: Redactor,
    ) -> Result<Fetched> {
        parse_token_response(
            reply(status, body, headers),
            "https://idp/token",
            Instant::now(),
            redactor,
            Duration::from_secs(3600),
        )
    }

    fn parse(status: u16, body: &str) -> Result<Fetched> {
        parse_with(status, body, &[], Redactor::new())
    }

    #[test]
    fn a_utf8_bom_before_the_json_is_accepted() {
        let body = "\u{feff}{\"access_token\":\"abc\",\"token_type\":\"bearer\",\"expires_in\":60}";
        let fetched = parse(200, body).unwrap();
        assert_eq!(fetched.value.expose(), "abc");
        assert_eq!(fetched.lifetime, Duration::from_secs(60));
    }

    #[test]
    fn a_jwt_never_lives_longer_than_its_exp_says() {
        let token = "eyJhbGciOiJub25lIn0.eyJpYXQiOjEwMDAsImV4cCI6MTYwMH0.c2ln";
        let said = |expires_in: Value| {
            let body = json!({ "access_token": token, "expires_in": expires_in });
            parse(200, &body.to_string()).unwrap().lifetime
        };
        assert_eq!(
            said(json!(3600)),
            Duration::from_secs(600),
            "exp - iat wins"
        );
        assert_eq!(
            said(json!(599)),
            Duration::from_secs(599),
            "expires_in wins"
        );
        assert_eq!(said(Value::Null), Duration::from_secs(600), "only the JWT");
        let opaque = json!({ "access_token": "opaque", "expires_in": 3600 });
        assert_eq!(
            parse(200, &opaque.to_string()).unwrap().lifetime,
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn expires_in_shapes() {
        assert_eq!(
            expires_in(Some(&json!(3600))),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            expires_in(Some(&json!("3600"))),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            expires_in(Some(&json!(" 60 "))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            expires_in(Some(&json!(3599.5))),
            Some(Duration::from_millis(3_599_500))
        );
        assert_eq!(expires_in(Some(&json!(0))), Some(Duration::ZERO));
        assert_eq!(expires_in(Some(&json!(-5))), Some(Duration::ZERO));
        assert_eq!(expires_in(Some(&json!(null))), None);
        assert_eq!(expires_in(Some(&json!("soon"))), None);
        assert_eq!(expires_in(None), None);
    }

    fn classify(status: u16, body: &str) -> ErrorKind {
        parse(status, body).err().expect("an error").kind()
    }

    #[test]
    fn error_codes_map_to_kinds() {
        assert_eq!(
            classify(400, r#"{"error":"invalid_client"}"#),
            ErrorKind::InvalidClient
        );
        assert_eq!(
            classify(401, r#"{"error":"INVALID_CLIENT"}"#),
            ErrorKind::InvalidClient
        );
        assert_eq!(classify(401, "<html>nope</html>"), ErrorKind::InvalidClient);
        assert_eq!(
            classify(400, r#"{"error":"invalid_scope"}"#),
            ErrorKind::InvalidScope
        );
        assert_eq!(
            classify(400, r#"{"error":"unsupported_grant_type"}"#),
            ErrorKind::UnauthorizedClient
        );
        assert_eq!(
            classify(400, r#"{"error":"invalid_request"}"#),
            ErrorKind::OAuth
        );
        assert_eq!(classify(429, ""), ErrorKind::RateLimited);
        assert_eq!(classify(502, "<html>Bad Gateway</html>"), ErrorKind::Server);
        assert_eq!(
            classify(400, r#"{"error":"temporarily_unavailable"}"#),
            ErrorKind::Server
        );
        assert_eq!(
            classify(404, "<html>Not Found</html>"),
            ErrorKind::BadResponse
        );
        assert_eq!(classify(302, ""), ErrorKind::BadResponse);
        assert_eq!(classify(408, ""), ErrorKind::Timeout);
        // A non-string error member (Spring-style) is not an OAuth code.
        assert_eq!(
            classify(400, r#"{"error":{"x":1},"status":400}"#),
            ErrorKind::BadResponse
        );
    }

    #[test]
    fn error_message_has_status_code_description_and_retry_after() {
        let body = r#"{"error":"slow_down","error_description":"Too many"}"#;
        let e = parse_with(429, body, &[("retry-after", "7")], Redactor::new())
            .err()
            .unwrap();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.oauth_error(), Some("slow_down"));
        assert_eq!(e.oauth_error_description(), Some("Too many"));
        assert!(e.message().contains("HTTP 429"), "{e}");
        assert!(e.message().contains("Too many"), "{e}");
        assert!(e.message().contains("https://idp/token"), "{e}");
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let redactor = || {
            let mut redactor = Redactor::new();
            redactor.secret("id", "xY9#mK2$ secret", None);
            redactor
        };
        let body = "client_secret=xY9%23mK2%24%20secret rejected; raw xY9#mK2$ secret";
        let e = parse_with(400, body, &[], redactor()).err().unwrap();
        assert!(!e.message().contains("xY9"), "{e}");
        let body = json!({ "error": "xY9#mK2$ secret", "error_description": "xY9#mK2$+secret" });
        let e = parse_with(400, &body.to_string(), &[], redactor())
            .err()
            .unwrap();
        assert!(!format!("{e:?}").contains("xY9"), "{e:?}");
        assert!(!e.oauth_error_description().unwrap().contains("xY9"));
    }

    #[test]
    fn a_rejected_token_type_is_quoted_not_copied() {
        let body = json!({ "access_token": "AT", "token_type": "m".repeat(500_000) });
        let e = parse(200, &body.to_string()).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::BadResponse);
        assert!(e.message().len() < 1000, "{}", e.message().len());
        let body = json!({ "access_token": "AT", "token_type": { "refresh_token": "RT-9" } });
        let e = parse(200, &body.to_string()).err().unwrap();
        assert!(!e.message().contains("RT-9"), "{e}");
        // The body's own token, echoed in another member.
        let body = json!({ "access_token": "AT-secret-1", "token_type": "mac AT-secret-1" });
        let e = parse(200, &body.to_string()).err().unwrap();
        assert!(!e.message().contains("AT-secret-1"), "{e}");
    }

    #[test]
    fn parsed_strings_are_wiped() {
        let mut v = json!({ "access_token": "AT", "list": ["x", { "id_token": "y" }], "n": 1 });
        wipe(&mut v);
        assert_eq!(
            v,
            json!({ "access_token": "", "list": ["", { "id_token": "" }], "n": 1 })
        );
    }
}
