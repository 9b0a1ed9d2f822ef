//! The protected API behind the identity provider (`/api/...`, `/graphql`) and the
//! unprotected extras (discovery, redirects, 404s).

use serde_json::{json, Value};

use crate::codec;
use crate::config::header_safe;
use crate::request::Request;
use crate::response::Response;
use crate::server::Shared;
use crate::state::Invalid;

/// RFC 6750 §3: 401 with a Bearer challenge saying why.
fn unauthorized(description: &str) -> Response {
    Response::json(401, &json!({ "error": "invalid_token" })).header(
        "WWW-Authenticate",
        &format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
    )
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer(request: &Request) -> Option<&str> {
    let (scheme, token) = request.header("authorization")?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `/api`, `/api/...` and `/graphql`.
pub fn handle(shared: &Shared, request: &Request) -> Response {
    let path = request.path();
    if path == "/api/redirect" {
        return redirect(request);
    }
    let state = shared.state();
    let checked = state.check(bearer(request));
    if path == "/graphql" {
        return graphql(request, checked.map(|issued| &issued.claims));
    }
    let issued = match checked {
        Ok(issued) => issued,
        Err(why) => return unauthorized(why.description()),
    };
    if path == "/api/always-401" {
        return unauthorized("This endpoint refuses every token.");
    }
    if path == "/api/forbidden" {
        return Response::json(
            403,
            &json!({ "error": "insufficient_scope", "scope": "admin:write" }),
        )
        .header(
            "WWW-Authenticate",
            "Bearer error=\"insufficient_scope\", scope=\"admin:write\"",
        );
    }
    if let Some(missing) = state
        .config
        .require_headers
        .iter()
        .find(|h| request.header(h).is_none())
    {
        return Response::json(400, &json!({ "error": missing_header_code(missing) }));
    }
    Response::json(
        200,
        &json!({
            "ok": true,
            "method": request.method,
            "path": path,
            "query": request.query(),
            "tenant_code": request.header("tenant-code"),
            "api_version": request.header("api-version"),
            "jti": issued.claims["jti"],
            "scope": issued.claims.get("scope"),
            "body": String::from_utf8_lossy(&request.body),
        }),
    )
}

/// `tenant-code` → `MISSING_TENANT`, `api-version` → `MISSING_API_VERSION`, others
/// `MISSING_<NAME>` (upper case, `-` as `_`).
fn missing_header_code(name: &str) -> String {
    match name {
        "tenant-code" => "MISSING_TENANT".into(),
        "api-version" => "MISSING_API_VERSION".into(),
        other => format!("MISSING_{}", other.to_ascii_uppercase().replace('-', "_")),
    }
}

/// AWS AppSync style: a bad token is still HTTP 200, with the error in the body.
fn graphql(request: &Request, claims: Result<&Value, Invalid>) -> Response {
    if request.method != "POST" {
        return Response::json(405, &json!({ "error": "method_not_allowed" }))
            .header("Allow", "POST");
    }
    match claims {
        Ok(claims) => Response::json(
            200,
            &json!({ "data": { "viewer": { "jti": claims["jti"] } } }),
        ),
        Err(_) => Response::json(
            200,
            &json!({
                "data": null,
                "errors": [{ "message": "Unauthenticated", "extensions": { "code": "UNAUTHENTICATED" } }]
            }),
        ),
    }
}

/// `/api/redirect?to=<percent-encoded URL>[&status=301|302|303|307|308]`, no auth check.
fn redirect(request: &Request) -> Response {
    let param = |name: &str| {
        request.query().split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    };
    let Some(to) = param("to")
        .and_then(|t| codec::percent_decode(t, false))
        .and_then(|t| header_safe(&t))
        .filter(|t| !t.is_empty())
    else {
        return Response::json(
            400,
            &json!({ "error": "invalid_request", "error_description": "`to` must be a percent-encoded URL" }),
        );
    };
    let status = match param("status") {
        None => 302,
        Some(s) => match s.parse::<u16>() {
            Ok(s @ (301 | 302 | 303 | 307 | 308)) => s,
            _ => {
                return Response::json(
                    400,
                    &json!({ "error": "invalid_request", "error_description": "`status` must be 301, 302, 303, 307 or 308" }),
                )
            }
        },
    };
    Response::new(status).header("Location", &to)
}

/// Everything that is neither a token path nor the API: discovery, or 404.
pub fn other(shared: &Shared, request: &Request) -> Response {
    let base = &shared.base_url;
    match (request.method.as_str(), request.path()) {
        ("GET" | "HEAD", "/.well-known/openid-configuration") => Response::json(
            200,
            &json!({
                "issuer": base,
                "token_endpoint": format!("{base}/oauth/token"),
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "response_types_supported": ["token"],
            }),
        ),
        (_, path) => Response::json(404, &json!({ "error": "not_found", "path": path })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_header_codes() {
        assert_eq!(missing_header_code("tenant-code"), "MISSING_TENANT");
        assert_eq!(missing_header_code("api-version"), "MISSING_API_VERSION");
        assert_eq!(missing_header_code("x-request-id"), "MISSING_X_REQUEST_ID");
    }
}
