//! Token responses: the success body (RFC 6749 §5.1) becomes a [`Fetched`] token, an error
//! body (§5.2) a typed [`Error`] whose message never echoes the secret.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD_NO_PAD_INDIFFERENT, URL_SAFE_NO_PAD_INDIFFERENT};
use base64::Engine as _;
use serde_json::Value;

use super::token::{Fetched, TokenType};
use crate::error::{quote_body, Error, ErrorKind, Result};
use crate::http::{parse_retry_after, percent_encode, Reply};
use crate::secret::Secret;

/// Read the token endpoint's `reply` to a request sent at `issued`; `default_lifetime`
/// applies when neither `expires_in` nor a JWT `exp` says how long the token lives.
pub(super) fn parse_token_response(
    reply: Reply,
    url: &str,
    issued: Instant,
    secrets: &[&Secret],
    default_lifetime: Duration,
) -> Result<Fetched> {
    // Some servers (IIS-hosted ones in particular) prefix JSON with a UTF-8 BOM.
    let body = reply
        .body
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&reply.body);
    let json = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object);
    let success = (200..300).contains(&reply.status);
    let has_token = json
        .as_ref()
        .is_some_and(|j| j.get("access_token").is_some());
    if !success || (json.as_ref().is_some_and(|j| j.get("error").is_some()) && !has_token) {
        return Err(error_response(&reply, json.as_ref(), url, secrets));
    }
    let Some(json) = json else {
        return Err(Error::new(
            ErrorKind::BadResponse,
            format!(
                "The token endpoint at {url} answered HTTP {} with a body that is not a JSON object \
                 (a proxy or login page?): \"{}\".",
                reply.status,
                quote_body(scrub(&String::from_utf8_lossy(&reply.body), secrets).as_bytes(), 200)
            ),
        )
        .with_status(reply.status));
    };
    let value = match json.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => token,
        _ => {
            return Err(Error::new(
                ErrorKind::BadResponse,
                format!(
                "The token endpoint at {url} answered HTTP {} without an `access_token` string.",
                reply.status
            ),
            )
            .with_status(reply.status))
        }
    };
    // The token goes into an HTTP header verbatim; RFC 6750 b64token is a subset of this.
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::new(
            ErrorKind::BadResponse,
            format!("The token endpoint at {url} issued an access_token with spaces, control or non-ASCII characters; it cannot be sent as a Bearer token."),
        ));
    }
    // Whether a DPoP-bound token was wanted is the endpoint's rule (`dpop::check_token_type`).
    let token_type = match json.get("token_type") {
        None | Some(Value::Null) => TokenType::Bearer,
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => TokenType::Bearer,
        Some(Value::String(t)) if t.eq_ignore_ascii_case("dpop") => TokenType::Dpop,
        Some(other) => {
            return Err(Error::new(
                ErrorKind::BadResponse,
                format!(
                    "The token endpoint at {url} issued a token of type {other}; tokenward only uses Bearer and DPoP tokens (RFC 6749 §7.1)."
                ),
            ))
        }
    };
    let lifetime = expires_in(json.get("expires_in"))
        .or_else(|| jwt_lifetime(value))
        .unwrap_or(default_lifetime);
    Ok(Fetched {
        value: value.clone(),
        token_type,
        lifetime,
        issued,
        granted_scope: json
            .get("scope")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
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

/// Turn a non-success token response into a typed error (RFC 6749 §5.2).
fn error_response(reply: &Reply, json: Option<&Value>, url: &str, secrets: &[&Secret]) -> Error {
    let status = reply.status;
    let text = |key: &str| {
        json.and_then(|j| j.get(key))
            .and_then(Value::as_str)
            .map(|s| quote_body(scrub(s, secrets).as_bytes(), 300))
    };
    let code = text("error");
    let description = text("error_description");
    let retry_after = reply.header("retry-after").and_then(parse_retry_after);
    let lower = code.as_deref().map(|c| c.trim().to_ascii_lowercase());
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
        (Some(c), None) => c.clone(),
        (None, _) if reply.body.is_empty() => "an empty body".to_string(),
        (None, _) => format!(
            "\"{}\"",
            quote_body(
                scrub(&String::from_utf8_lossy(&reply.body), secrets).as_bytes(),
                200
            )
        ),
    };
    Error::new(
        kind,
        format!("The token endpoint at {url} answered HTTP {status} with {what}.{hint}"),
    )
    .with_status(status)
    .with_oauth(code, description)
    .with_retry_after(retry_after)
}

/// Remove what the request carried that must stay secret — the client secret, a client
/// assertion, a DPoP proof — raw or percent-encoded from server-provided text, in case a
/// misbehaving server echoes the request.
fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().map(|s| s.expose()).filter(|s| s.len() >= 4) {
        let mut encoded = String::new();
        percent_encode(secret, &mut encoded);
        text = text.replace(secret, "***").replace(&encoded, "***");
    }
    text
}

/// The lifetime a JWT declares (`exp - iat`), used when the server sends no `expires_in`.
/// Only the payload is read; tokenward does not (and need not) verify the signature.
fn jwt_lifetime(token: &str) -> Option<Duration> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    let bytes = base64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    let iat = claims.get("iat")?.as_f64()?;
    let secs = exp - iat;
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(1e10)))
}

/// base64url as JWTs use it (RFC 7515 §2: no padding), tolerating padding and the standard
/// alphabet from servers that get it wrong; this only reads a lifetime hint.
fn base64url_decode(input: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD_INDIFFERENT
        .decode(input)
        .or_else(|_| STANDARD_NO_PAD_INDIFFERENT.decode(input))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_utf8_bom_before_the_json_is_accepted() {
        let body = "\u{feff}{\"access_token\":\"abc\",\"token_type\":\"bearer\",\"expires_in\":60}";
        let fetched = parse_token_response(
            reply(200, body, &[]),
            "http://127.0.0.1:1/t",
            Instant::now(),
            &[],
            Duration::from_secs(3600),
        )
        .unwrap();
        assert_eq!(fetched.value, "abc");
        assert_eq!(fetched.lifetime, Duration::from_secs(60));
    }

    #[test]
    fn jwt_lifetime_reads_exp_minus_iat() {
        // {"alg":"none"} . {"iat":1000,"exp":1600} . sig
        let token = "eyJhbGciOiJub25lIn0.eyJpYXQiOjEwMDAsImV4cCI6MTYwMH0.c2ln";
        assert_eq!(jwt_lifetime(token), Some(Duration::from_secs(600)));
        assert_eq!(jwt_lifetime("opaque-token"), None);
        assert_eq!(jwt_lifetime("a.b.c"), None);
        // exp before iat is not a lifetime.
        let bad = "eyJhbGciOiJub25lIn0.eyJpYXQiOjE2MDAsImV4cCI6MTAwMH0.c2ln";
        assert_eq!(jwt_lifetime(bad), None);
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

    fn classify(status: u16, body: &str) -> ErrorKind {
        let r = reply(status, body, &[]);
        let json = serde_json::from_slice::<Value>(&r.body).ok();
        error_response(&r, json.as_ref(), "https://idp/token", &[]).kind()
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
        let r = reply(
            429,
            r#"{"error":"slow_down","error_description":"Too many"}"#,
            &[("retry-after", "7")],
        );
        let json = serde_json::from_slice::<Value>(&r.body).ok();
        let e = error_response(&r, json.as_ref(), "https://idp/token", &[]);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.oauth_error(), Some("slow_down"));
        assert!(e.message().contains("HTTP 429"), "{e}");
        assert!(e.message().contains("Too many"), "{e}");
        assert!(e.message().contains("https://idp/token"), "{e}");
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let secret = Secret::new("xY9#mK2$ secret");
        let r = reply(
            400,
            "client_secret=xY9%23mK2%24%20secret rejected; raw xY9#mK2$ secret",
            &[],
        );
        let e = error_response(&r, None, "https://idp/token", &[&secret]);
        assert!(!e.message().contains("xY9"), "{e}");
    }
}
