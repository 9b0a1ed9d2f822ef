//! The `probe` check: one API call with the token and the configured headers, and what the
//! API's answer says about them — `WWW-Authenticate` read for `invalid_token` versus
//! `insufficient_scope`, the scope a 403 requires, a 400 about a missing tenant header.

use std::time::Instant;

use serde_json::Value;

use super::settings::how_to_set;
use super::{ms, Check, Findings};
use crate::client::challenge::{bearer_params, param};
use crate::config::Config;
use crate::error::ErrorKind;
use crate::http::{check_url, Outgoing, Reply, Transport};
use crate::redact::Redactor;

pub(super) fn check(config: &Config, url: &str, findings: &Findings) -> Check {
    let origin = match check_url(url, "the probe URL", config.allow_http) {
        Ok(origin) => origin,
        Err(e) => {
            return Check::fail(
                "probe",
                ErrorKind::InvalidArgument,
                format!("{url} cannot be probed"),
                e.message().to_string(),
                "give an absolute https:// URL of the API",
            )
        }
    };
    if !config.api_origins.is_empty() && !config.api_origins.contains(&origin) {
        return Check::fail(
            "probe",
            ErrorKind::InvalidArgument,
            format!("{origin} is not one of the configured api_base_urls"),
            "tokenward sends the token only to the origins in `api_base_urls`, so requests to this URL would go without it",
            format!("add {origin} to `api_base_urls` if it is the API this token is for"),
        );
    }
    let Some(obtained) = &findings.token else {
        return Check::skip("probe", format!("skipped: no token to call {url} with"));
    };
    let transport =
        match Transport::new(&config.tls, config.proxy.as_deref(), config.connect_timeout) {
            Ok(t) => t,
            Err(e) => {
                return Check::fail(
                    "probe",
                    e.kind(),
                    "the HTTP transport cannot be set up",
                    e.message().to_string(),
                    "fix the `tls` files or the `proxy` setting",
                )
            }
        };
    let mut headers: Vec<(&str, &str)> = vec![("Authorization", obtained.token.authorization())];
    headers.extend(config.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let started = Instant::now();
    let outcome = transport.execute(&Outgoing {
        method: "GET",
        url,
        headers: &headers,
        body: None,
        deadline: started + config.request_timeout,
        body_limit: config.max_response_bytes.min(1 << 20),
        peer: "API",
    });
    let elapsed = started.elapsed();
    let reply = match outcome {
        // The API's words are quoted below; an API that echoes the request must not make the
        // diagnosis print the token.
        Ok(reply) => {
            let mut redactor = Redactor::new();
            redactor.token(obtained.token.as_str());
            without_token(reply, &redactor)
        }
        Err(e) => {
            return Check::fail(
                "probe",
                e.kind(),
                format!("GET {url} failed ({})", e.kind()),
                e.message().to_string(),
                "check the API's URL and that it is reachable from here (the checks above cover the token endpoint only)",
            )
            .took(elapsed)
        }
    };
    let status = reply.status;
    let sent: Vec<&str> = config.headers.iter().map(|(n, _)| n.as_str()).collect();
    let check = match status {
        200..=299 => Check::pass("probe", format!("GET {url} → HTTP {status} in {}", ms(elapsed))),
        300..=399 => Check::warn(
            "probe",
            format!("GET {url} → HTTP {status} to {}", reply.header("location").map_or_else(|| "(no Location)".into(), |l| quote(l.as_bytes()))),
            "the API redirects; tokenward follows redirects only within `api_base_urls`, and never takes the token to another origin",
            "probe (and call) the final URL, or add its origin to `api_base_urls` if it is the same API",
        ),
        401 => unauthorized(url, &reply),
        403 => forbidden(url, &reply),
        400 => bad_request(config, url, &reply, &sent),
        404 => Check::fail(
            "probe",
            ErrorKind::BadResponse,
            format!("GET {url} → HTTP 404"),
            "the path does not exist on this API (or the API hides resources this token may not see)",
            "check the probe URL against the API's documentation",
        ),
        _ => Check::fail(
            "probe",
            if status >= 500 { ErrorKind::Server } else { ErrorKind::BadResponse },
            format!("GET {url} → HTTP {status}"),
            format!("the API answered: \"{}\"", quote(&reply.body)),
            if status >= 500 {
                "the API is failing; retry later or ask its operator"
            } else {
                "read the API's answer above"
            },
        ),
    };
    check.http(status).took(elapsed)
}

/// The reply with the token scrubbed out wherever the API echoed it, in any encoding the
/// redactor knows.
fn without_token(reply: Reply, redactor: &Redactor) -> Reply {
    let scrub = |text: &str| redactor.scrub(text);
    Reply {
        status: reply.status,
        headers: reply
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), scrub(v)))
            .collect(),
        body: match std::str::from_utf8(&reply.body) {
            Ok(text) => scrub(text).into_bytes(),
            Err(_) => reply.body,
        },
    }
}

fn unauthorized(url: &str, reply: &Reply) -> Check {
    let params = bearer_params(reply);
    let error = param(&params, "error");
    let description = param(&params, "error_description")
        .map(|d| format!(": \"{}\"", quote(d.as_bytes())))
        .unwrap_or_default();
    match error {
        Some("insufficient_scope") => scope_check(url, reply, ErrorKind::Unauthorized, &params),
        Some(code) => Check::fail(
            "probe",
            ErrorKind::Unauthorized,
            format!("GET {url} → HTTP 401 {}{description}", quote(code.as_bytes())),
            "the API refuses the token itself (a fresh one, just issued): it was issued for another API (aud), by another issuer or environment, or the API cannot validate it",
            "compare the token's aud and iss (`tokenward inspect`) with what the API expects; request the token with the API's `audience`, `resource` or scope",
        ),
        None => Check::fail(
            "probe",
            ErrorKind::Unauthorized,
            format!(
                "GET {url} → HTTP 401{}",
                reply
                    .header("www-authenticate")
                    .map(|h| format!(" (WWW-Authenticate: {})", quote(h.as_bytes())))
                    .unwrap_or_else(|| " without a Bearer challenge".into())
            ),
            "the API did not accept the Bearer token: it may expect another scheme or a header of its own (an API key), or it rejects the token without saying why",
            "check the API's authentication documentation; compare the token's aud and iss (`tokenward inspect`) with what it expects",
        ),
    }
}

fn forbidden(url: &str, reply: &Reply) -> Check {
    let params = bearer_params(reply);
    scope_check(url, reply, ErrorKind::Forbidden, &params)
}

/// A 403 (or a 401 with `insufficient_scope`): the token is fine, its permissions are not.
fn scope_check(url: &str, reply: &Reply, kind: ErrorKind, params: &[(String, String)]) -> Check {
    let body_scope = serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|b| b.get("scope").and_then(Value::as_str).map(str::to_string));
    let required = param(params, "scope")
        .map(str::to_string)
        .or(body_scope)
        .map(|s| quote(s.as_bytes()));
    let code = quote(param(params, "error").unwrap_or("forbidden").as_bytes());
    match required {
        Some(scope) => Check::fail(
            "probe",
            kind,
            format!("GET {url} → HTTP {} {code}: requires scope `{scope}`", reply.status),
            format!("the token is valid but was not granted `{scope}`"),
            format!("add `{scope}` to `scope` and grant it to this client at the provider"),
        )
        .fact("required_scope", scope),
        None => Check::fail(
            "probe",
            kind,
            format!("GET {url} → HTTP {} {code}", reply.status),
            "the token is valid but lacks a permission this resource needs (a scope, a role, or a tenant the client is not in)",
            "find the permission in the API's documentation and grant it to this client",
        ),
    }
}

fn bad_request(config: &Config, url: &str, reply: &Reply, sent: &[&str]) -> Check {
    let text = String::from_utf8_lossy(&reply.body).to_string();
    let lower = text.to_ascii_lowercase();
    let has = |name: &str| sent.iter().any(|s| s.eq_ignore_ascii_case(name));
    let quoted = quote(&reply.body);
    if lower.contains("tenant") {
        let (cause, fix) = if has("tenant-code") {
            (
                format!("the API names the tenant (\"{quoted}\"), and a `tenant-code` header was sent: its value is wrong or of another environment"),
                format!("check the tenant code for this environment ({})", how_to_set(config, "headers.tenant-code", "TENANT_CODE")),
            )
        } else {
            (
                format!("the API wants a tenant header and none was sent (\"{quoted}\")"),
                format!(
                    "set the tenant header ({})",
                    how_to_set(config, "headers.tenant-code", "TENANT_CODE")
                )
                .to_string(),
            )
        };
        return Check::fail(
            "probe",
            ErrorKind::Config,
            format!("GET {url} → HTTP 400: missing or wrong tenant"),
            cause,
            fix,
        );
    }
    if lower.contains("version") && !has("api-version") {
        return Check::fail(
            "probe",
            ErrorKind::Config,
            format!("GET {url} → HTTP 400: missing API version"),
            format!("the API wants a version header and none was sent (\"{quoted}\")"),
            format!(
                "set the version header ({})",
                how_to_set(config, "headers.api-version", "API_VERSION")
            ),
        );
    }
    Check::fail(
        "probe",
        ErrorKind::BadResponse,
        format!("GET {url} → HTTP 400"),
        format!("the API refused the request: \"{quoted}\""),
        "the API's answer names what it wants (often a header of its own); add it to `headers`",
    )
}

/// Server text for a check's line: one line, clipped, token members of a JSON body blanked
/// (the token itself is already scrubbed out of the whole reply).
fn quote(bytes: &[u8]) -> String {
    Redactor::new().quote_bytes(bytes).into_string()
}
