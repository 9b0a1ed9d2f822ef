//! The protected API behind the identity provider (`/api/...`, `/graphql`) and the
//! unprotected extras (discovery, redirects, 404s).

use std::time::Duration;

use serde_json::{json, Value};

use crate::codec;
use crate::config::{header_safe, DpopMode};
use crate::dpop::{self, ProofError};
use crate::request::Request;
use crate::response::Response;
use crate::server::Shared;
use crate::state::{Invalid, State};

/// RFC 6750 §3: 401 with a Bearer challenge saying why.
fn unauthorized(description: &str) -> Response {
    Response::json(401, &json!({ "error": "invalid_token" })).header(
        "WWW-Authenticate",
        &format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
    )
}

/// How the access token was presented.
enum Presented<'a> {
    /// `Authorization: Bearer <token>`, or no token at all.
    Bearer(Option<&'a str>),
    /// `Authorization: DPoP <token>` (RFC 9449 §7.1).
    Dpop(&'a str),
}

/// The token of an `Authorization: Bearer …` or `DPoP …` header (schemes
/// case-insensitive); any other scheme counts as no token.
fn presented(request: &Request) -> Presented<'_> {
    let Some((scheme, token)) = request
        .header("authorization")
        .and_then(|h| h.split_once(' '))
    else {
        return Presented::Bearer(None);
    };
    if scheme.eq_ignore_ascii_case("dpop") {
        Presented::Dpop(token.trim())
    } else {
        Presented::Bearer(scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()))
    }
}

/// Why the API refuses a request's token.
enum Refusal {
    /// A Bearer token that is missing, unknown, expired or revoked.
    Bearer(Invalid),
    /// A DPoP refusal: `error`, description, and the nonce to use (for `use_dpop_nonce`).
    Dpop(&'static str, String, Option<String>),
}

impl Refusal {
    fn response(self) -> Response {
        match self {
            Refusal::Bearer(why) => unauthorized(why.description()),
            Refusal::Dpop(error, description, nonce) => {
                let r = Response::json(401, &json!({ "error": error }))
                    .header("WWW-Authenticate", &dpop::challenge(error, &description));
                match nonce {
                    Some(nonce) => r.header("DPoP-Nonce", &nonce),
                    None => r,
                }
            }
        }
    }
}

/// The claims of the token the request presents, if the API accepts it: a Bearer token
/// that is not DPoP-bound, or a DPoP-bound token with a valid proof of its key.
fn authenticate(shared: &Shared, state: &mut State, request: &Request) -> Result<Value, Refusal> {
    let dpop_refusal = |error, why: &str| Refusal::Dpop(error, why.to_string(), None);
    let token = match presented(request) {
        Presented::Bearer(token) => {
            let claims = state.check(token).map_err(Refusal::Bearer)?.claims.clone();
            if dpop::bound_jkt(&claims).is_some() {
                return Err(dpop_refusal(
                    "invalid_token",
                    "The access token is DPoP-bound: send it as Authorization: DPoP with a proof.",
                ));
            }
            return Ok(claims);
        }
        Presented::Dpop(token) => token,
    };
    let claims = state
        .check(Some(token))
        .map_err(|why| dpop_refusal("invalid_token", why.description()))?
        .claims
        .clone();
    let Some(jkt) = dpop::bound_jkt(&claims) else {
        return Err(dpop_refusal(
            "invalid_token",
            "The access token is not DPoP-bound: send it as Authorization: Bearer.",
        ));
    };
    let proof = match dpop::proof_header(request) {
        Ok(Some(proof)) => proof,
        Ok(None) => {
            return Err(dpop_refusal(
                "invalid_dpop_proof",
                "A DPoP proof is required with a DPoP-bound token.",
            ))
        }
        Err(why) => return Err(dpop_refusal("invalid_dpop_proof", &why)),
    };
    let config = &state.config;
    let expected = dpop::Expected {
        method: &request.method,
        urls: dpop::request_urls(&shared.base_url, request),
        nonce: config.dpop_api_nonce.as_deref(),
        access_token: Some(token),
        window_secs: config.dpop_iat_window_secs,
        skew_secs: config.clock_skew_secs,
    };
    let keep = Duration::from_secs(2 * config.dpop_iat_window_secs + 1);
    match dpop::verify(proof, &expected) {
        Ok(proof) if proof.jkt != jkt => Err(dpop_refusal(
            "invalid_dpop_proof",
            "The DPoP proof is signed by another key than the one the token is bound to.",
        )),
        Ok(proof) if !state.dpop_jtis.insert(&proof.jti, keep) => Err(dpop_refusal(
            "invalid_dpop_proof",
            "The DPoP proof `jti` was used before.",
        )),
        Ok(_) => Ok(claims),
        Err(ProofError::Invalid(why)) => Err(dpop_refusal("invalid_dpop_proof", &why)),
        Err(ProofError::UseNonce) => Err(Refusal::Dpop(
            "use_dpop_nonce",
            "Resource server requires nonce in DPoP proof.".into(),
            expected.nonce.map(str::to_string),
        )),
    }
}

/// `/api`, `/api/...` and `/graphql`.
pub fn handle(shared: &Shared, request: &Request) -> Response {
    let path = request.path();
    if path == "/api/redirect" {
        return redirect(request);
    }
    let mut state = shared.state();
    let checked = authenticate(shared, &mut state, request);
    if path == "/graphql" {
        return graphql(request, checked.as_ref().ok());
    }
    let claims = match checked {
        Ok(claims) => claims,
        Err(refusal) => return refusal.response(),
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
            "jti": claims["jti"],
            "scope": claims.get("scope"),
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
fn graphql(request: &Request, claims: Option<&Value>) -> Response {
    if request.method != "POST" {
        return Response::json(405, &json!({ "error": "method_not_allowed" }))
            .header("Allow", "POST");
    }
    match claims {
        Some(claims) => Response::json(
            200,
            &json!({ "data": { "viewer": { "jti": claims["jti"] } } }),
        ),
        None => Response::json(
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
        ("GET" | "HEAD", "/.well-known/openid-configuration") => {
            let mut doc = json!({
                "issuer": base,
                "token_endpoint": format!("{base}/oauth/token"),
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "response_types_supported": ["token"],
            });
            let state = shared.state();
            doc["token_endpoint_auth_methods_supported"] = json!(state.config.secret_auth_methods);
            if let Some(scopes) = &state.config.allowed_scopes {
                doc["scopes_supported"] = json!(scopes);
            }
            if state.config.dpop != DpopMode::Off {
                doc["dpop_signing_alg_values_supported"] = json!(crate::jose::ALGS);
            }
            if !state.config.assertion_keys.is_empty() {
                let mut methods = state.config.secret_auth_methods.clone();
                methods.push("private_key_jwt".into());
                doc["token_endpoint_auth_methods_supported"] = json!(methods);
                doc["token_endpoint_auth_signing_alg_values_supported"] = json!(crate::jose::ALGS);
            }
            Response::json(200, &doc)
        }
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
