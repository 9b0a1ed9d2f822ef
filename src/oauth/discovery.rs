//! OpenID Connect discovery: the token endpoint read from the issuer's
//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4), and checked before
//! any credential is sent there (§4.3, RFC 8414 §3.3).

use std::time::Instant;

use serde_json::Value;

use super::endpoint::TOKEN_BODY_LIMIT;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{check_url, Outgoing, Transport};
use crate::redact::Redactor;

/// Ask `issuer` for its token endpoint. The document must name the same `issuer` (a
/// trailing `/` aside) and a `token_endpoint` that passes the URL policy of a configured
/// `token_url` (https, or http to loopback with `allow_http`); otherwise it is a `Config`
/// error and nothing is sent to the endpoint it names. `redactor` quotes the document.
pub(super) fn discover(
    transport: &Transport,
    issuer: &str,
    allow_http: bool,
    deadline: Instant,
    redactor: &Redactor,
) -> Result<String> {
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    let reply = transport.execute(&Outgoing {
        method: "GET",
        url: &discovery,
        headers: &[("accept", "application/json")],
        body: None,
        deadline,
        body_limit: TOKEN_BODY_LIMIT,
        peer: "OpenID discovery document",
    })?;
    if reply.status != 200 {
        let kind = if reply.status >= 500 {
            ErrorKind::Server
        } else {
            ErrorKind::BadResponse
        };
        return Err(Error::new(
            kind,
            format!(
                "OpenID discovery at {discovery} answered HTTP {}; check `issuer` (got: \"{}\").",
                reply.status,
                redactor.quote_bytes(&reply.body)
            ),
        )
        .with_status(reply.status));
    }
    let document = serde_json::from_slice::<Value>(&reply.body).ok();
    let member = |name: &str| document.as_ref()?.get(name)?.as_str();
    match member("issuer") {
        // Providers differ on the trailing slash (Auth0 writes one, Entra does not), and
        // users copy the issuer either way; anything else must match exactly.
        Some(named) if named.trim_end_matches('/') == issuer => {}
        Some(named) => {
            return Err(Error::config(format!(
                "OpenID discovery at {discovery} names issuer \"{}\", not the configured `issuer` \
                 {issuer} (OpenID Connect Discovery §4.3); no credential is sent to its endpoints. \
                 Check `issuer`.",
                redactor.quote(named)
            )))
        }
        None => {
            return Err(Error::config(format!(
                "OpenID discovery at {discovery} has no `issuer` string, so it cannot be checked \
                 (OpenID Connect Discovery §4.3); no credential is sent to its endpoints. Set \
                 `token_url` instead."
            )))
        }
    }
    let Some(endpoint) = member("token_endpoint") else {
        return Err(Error::new(
            ErrorKind::BadResponse,
            format!("OpenID discovery at {discovery} has no `token_endpoint` string; set `token_url` instead."),
        ));
    };
    // The reason is ours to give: check_url's own message would repeat the server's URL.
    if check_url(endpoint, "the discovered token_endpoint", allow_http).is_err() {
        return Err(Error::config(format!(
            "OpenID discovery at {discovery} names token_endpoint \"{}\", which is not an https \
             URL (plain http is accepted only for loopback hosts with allow_http); no credential \
             is sent there.",
            redactor.quote(endpoint)
        )));
    }
    Ok(endpoint.to_string())
}
