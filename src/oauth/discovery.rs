//! OpenID Connect discovery: the token endpoint read from the issuer's
//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4).

use std::time::Instant;

use serde_json::Value;

use super::endpoint::TOKEN_BODY_LIMIT;
use crate::error::{quote_body, Error, ErrorKind, Result};
use crate::http::{check_url, Outgoing, Peer, Transport};

/// Ask `issuer` for its token endpoint; the answer must pass the same URL policy as a
/// configured `token_url`.
pub(super) fn discover(
    transport: &Transport,
    issuer: &str,
    allow_http: bool,
    deadline: Instant,
) -> Result<String> {
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    let reply = transport.execute(&Outgoing {
        method: "GET",
        url: &discovery,
        headers: &[("accept", "application/json")],
        body: None,
        deadline,
        body_limit: TOKEN_BODY_LIMIT,
        peer: Peer::Discovery,
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
                "OpenID discovery at {discovery} answered HTTP {}; check `issuer` (got: {}).",
                reply.status,
                quote_body(&reply.body, 200)
            ),
        )
        .with_status(reply.status));
    }
    let endpoint = serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|doc| doc.get("token_endpoint")?.as_str().map(str::to_string))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::BadResponse,
                format!("OpenID discovery at {discovery} has no `token_endpoint` string; set `token_url` instead."),
            )
        })?;
    check_url(&endpoint, "the discovered token_endpoint", allow_http)?;
    Ok(endpoint)
}
