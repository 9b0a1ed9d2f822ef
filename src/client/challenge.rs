//! What an API's `WWW-Authenticate: Bearer` challenge says (RFC 6750 §3), turned into the
//! errors `send` reports for a second 401 and for a 403. Every parameter is server text, so
//! each is quoted through a redactor that knows the token the request carried.

use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::http::{challenge, Reply};
use crate::redact::Redactor;

/// The auth-params of the `Bearer` challenge of the answer's `WWW-Authenticate` (RFC 6750
/// §3), names lower-cased; empty without one.
pub(crate) fn bearer_params(reply: &Reply) -> Vec<(String, String)> {
    reply
        .header("www-authenticate")
        .and_then(|header| challenge::params_of(header, "bearer"))
        .unwrap_or_default()
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// What to check when an API rejects tokens that were just issued.
const CHECK_FRESH: &str = "it rejects freshly issued tokens. Check that the token's audience and \
     scope are what this API expects, and the tenant headers it needs";

/// A rejection (401, or GraphQL `UNAUTHENTICATED` in a 200) after one token refresh.
pub(super) fn unauthorized(reply: &Reply, url: &str, redactor: &Redactor) -> Error {
    rejection(
        reply,
        Some(url),
        "again after one token refresh".into(),
        "",
        redactor,
    )
}

/// A rejection of a token issued after the API had rejected another one `since` ago: no
/// refresh is started for it (see the `rejection` module). `url` when it is known.
pub(super) fn rejected_fresh(
    reply: &Reply,
    url: Option<&str>,
    since: Duration,
    redactor: &Redactor,
) -> Error {
    rejection(
        reply,
        url,
        format!(
            "for a token issued after it rejected another one {} ms ago",
            since.as_millis()
        ),
        " No new token is fetched for it until error_cooldown has passed.",
        redactor,
    )
}

fn rejection(
    reply: &Reply,
    url: Option<&str>,
    context: String,
    then: &str,
    redactor: &Redactor,
) -> Error {
    let params = bearer_params(reply);
    let code = param(&params, "error").map(|c| redactor.quote(c));
    let description = param(&params, "error_description").map(|d| redactor.quote(d));
    let detail = match (&code, &description) {
        (Some(c), Some(d)) => format!(" ({c}: \"{d}\")"),
        (Some(c), None) => format!(" ({c})"),
        _ => String::new(),
    };
    let what = if reply.status == 401 {
        "HTTP 401"
    } else {
        "a GraphQL UNAUTHENTICATED error"
    };
    Error::new(
        ErrorKind::Unauthorized,
        format!(
            "The API{} answered {what}{detail} {context}: {CHECK_FRESH}.{then}",
            url.map(|u| format!(" at {u}")).unwrap_or_default()
        ),
    )
    .with_status(reply.status)
    .with_oauth(code, description)
}

pub(super) fn forbidden(reply: &Reply, url: &str, redactor: &Redactor) -> Error {
    let params = bearer_params(reply);
    let code = param(&params, "error").map(|c| redactor.quote(c));
    let scope = param(&params, "scope").map(|s| redactor.quote(s));
    let detail = match (&code, &scope) {
        (Some(c), Some(s)) => format!(" ({c}; required scope: `{s}`)"),
        (Some(c), None) => format!(" ({c})"),
        (None, Some(s)) => format!(" (required scope: `{s}`)"),
        (None, None) => String::new(),
    };
    Error::new(
        ErrorKind::Forbidden,
        format!("The API at {url} answered HTTP 403{detail}: the token is valid but lacks permission. Not retried."),
    )
    .with_status(403)
    .with_oauth(
        code,
        param(&params, "error_description").map(|d| redactor.quote(d)),
    )
    .with_scope(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_with(header: &str) -> Reply {
        Reply {
            status: 403,
            headers: vec![("www-authenticate".into(), header.into())],
            body: Vec::new(),
        }
    }

    #[test]
    fn bearer_challenge_params() {
        let r = reply_with(
            r#"Bearer realm="api", error="insufficient_scope", scope="admin:write read", error_description="needs \"admin\"""#,
        );
        let p = bearer_params(&r);
        assert_eq!(param(&p, "error"), Some("insufficient_scope"));
        assert_eq!(param(&p, "scope"), Some("admin:write read"));
        assert_eq!(param(&p, "error_description"), Some("needs \"admin\""));
        assert!(bearer_params(&reply_with("Basic realm=x")).is_empty());
        let p = bearer_params(&reply_with("bearer error=invalid_token"));
        assert_eq!(param(&p, "error"), Some("invalid_token"));
        let e = forbidden(
            &reply_with(r#"Bearer error="insufficient_scope", scope="admin:write""#),
            "https://api/x",
            &Redactor::new(),
        );
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        assert_eq!(e.required_scope(), Some("admin:write"));
    }

    #[test]
    fn challenge_parameters_are_quoted_without_the_token() {
        let mut redactor = Redactor::new();
        redactor.token("tok-123456789");
        let header = format!(
            r#"Bearer error="tok-123456789", scope="{}", error_description="token tok-123456789 {}""#,
            "s".repeat(10_000),
            "d".repeat(10_000)
        );
        for e in [
            forbidden(&reply_with(&header), "https://api/x", &redactor),
            unauthorized(&reply_with(&header), "https://api/x", &redactor),
        ] {
            let all = format!(
                "{e} {e:?} {:?} {:?} {:?}",
                e.oauth_error(),
                e.oauth_error_description(),
                e.required_scope()
            );
            assert!(!all.contains("tok-1"), "{all}");
            assert!(e.message().len() < 1200, "{}", e.message().len());
            assert!(e.oauth_error_description().unwrap().chars().count() <= 300);
        }
    }
}
