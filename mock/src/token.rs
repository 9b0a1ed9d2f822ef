//! The token endpoint: RFC 6749 §4.4 client credentials, with §2.3.1 client authentication
//! and §5.2 error responses.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::clock;
use crate::codec;
use crate::config::{DpopMode, Expiry, MockConfig, TokenFormat};
use crate::dpop::{self, ProofError};
use crate::jose::Jws;
use crate::request::Request;
use crate::response::Response;
use crate::server::Shared;
use crate::state::State;

/// Form parameters that become claims of their own rather than `extra`.
const KNOWN_PARAMS: [&str; 8] = [
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "audience",
    "resource",
];

/// RFC 6749 §5.2 error JSON; never cached.
fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    Response::json(
        status,
        &json!({ "error": error, "error_description": description }),
    )
    .header("Cache-Control", "no-store")
    .header("Pragma", "no-cache")
}

fn invalid_request(description: &str) -> Response {
    oauth_error(400, "invalid_request", description)
}

/// §5.2: a client that authenticated with the Authorization header gets a challenge back.
fn invalid_client(description: &str, used_basic: bool) -> Response {
    let r = oauth_error(401, "invalid_client", description);
    if used_basic {
        r.header("WWW-Authenticate", "Basic realm=\"tokenward-mock\"")
    } else {
        r
    }
}

pub fn handle(shared: &Shared, request: &Request) -> Response {
    if request.method != "POST" {
        return oauth_error(
            405,
            "invalid_request",
            "The token endpoint only accepts POST.",
        )
        .header("Allow", "POST");
    }
    let media_type = request
        .header("content-type")
        .and_then(|ct| ct.split(';').next())
        .map(|mt| mt.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return invalid_request("Content-Type must be application/x-www-form-urlencoded.");
    }
    let Some(form) = std::str::from_utf8(&request.body)
        .ok()
        .and_then(codec::parse_form)
    else {
        return invalid_request("The form body is not valid x-www-form-urlencoded UTF-8.");
    };
    // §3.2: parameters must not be included more than once.
    if let Some((dup, _)) = form
        .iter()
        .enumerate()
        .find(|(i, (k, _))| form[..*i].iter().any(|(seen, _)| seen == k))
        .map(|(_, kv)| kv.clone())
    {
        return invalid_request(&format!("The parameter `{dup}` was sent more than once."));
    }
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported.",
        );
    }
    let basic = request.header("authorization").and_then(|h| {
        let (scheme, credentials) = h.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("basic")
            .then(|| credentials.trim())
    });
    let (mut client_id, secret) = match basic {
        Some(_) if field("client_secret").is_some() => {
            return invalid_request(
                "Use one client authentication method: Basic or the form, not both.",
            )
        }
        Some(credentials) => match decode_basic(credentials) {
            Some((id, secret)) => {
                if field("client_id").is_some_and(|form_id| form_id != id) {
                    return invalid_request(
                        "client_id in the form differs from the Basic credentials.",
                    );
                }
                (id, secret)
            }
            None => return invalid_client("Malformed Basic credentials.", true),
        },
        None => (
            field("client_id").unwrap_or_default().to_string(),
            field("client_secret").unwrap_or_default().to_string(),
        ),
    };
    let used_basic = basic.is_some();
    let mut state = shared.state();
    let authenticated = match field("client_assertion") {
        Some(_) if used_basic || field("client_secret").is_some() => {
            return invalid_request(
                "Use one client authentication method: an assertion or a secret, not both.",
            )
        }
        Some(assertion) => {
            let claimed = Claimed {
                client_id: field("client_id"),
                assertion_type: field("client_assertion_type"),
                assertion,
            };
            match verify_assertion(shared, &state.config, request, &claimed) {
                Ok(id) => {
                    client_id = id;
                    true
                }
                Err(Some(why)) => {
                    return invalid_client(
                        &format!("The client assertion was rejected: {why}"),
                        false,
                    )
                }
                // No key registered for the client: as unknown as a wrong secret.
                Err(None) => false,
            }
        }
        None => {
            // A server registers each client for one way of presenting its secret and
            // answers any other with the same `invalid_client` as a wrong secret.
            let method = if used_basic {
                "client_secret_basic"
            } else {
                "client_secret_post"
            };
            !secret.is_empty()
                && state.config.secret_auth_methods.iter().any(|m| m == method)
                && state
                    .config
                    .clients
                    .get(&client_id)
                    .is_some_and(|known| *known == secret)
        }
    };
    if !authenticated {
        return invalid_client("Client authentication failed.", used_basic);
    }
    let scope = field("scope");
    if state.config.require_scope && scope.is_none_or(|s| s.trim().is_empty()) {
        return oauth_error(400, "invalid_scope", "A scope is required.");
    }
    if let (Some(allowed), Some(scope)) = (&state.config.allowed_scopes, scope) {
        if let Some(refused) = scope
            .split_whitespace()
            .find(|s| !allowed.iter().any(|a| a == s))
        {
            return oauth_error(
                400,
                "invalid_scope",
                &format!("The scope `{refused}` is not allowed for this client."),
            );
        }
    }

    let config = state.config.clone();
    let jkt = match dpop_binding(shared, &mut state, request) {
        Ok(jkt) => jkt,
        Err(refusal) => return refusal,
    };
    let (serial, noise) = state.next_serial();
    // Whole seconds, as real providers write them: `exp` falls up to a second before
    // "issued + ttl_secs".
    let now = clock::unix_secs(config.clock_skew_secs);
    let extra: Map<String, Value> = form
        .iter()
        .filter(|(k, _)| !KNOWN_PARAMS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut claims = json!({
        "iss": shared.base_url,
        "sub": client_id,
        "client_id": client_id,
        "jti": serial.to_string(),
        "iat": now,
        "exp": now.saturating_add(config.ttl_secs),
        "extra": extra,
    });
    if let Some(jkt) = &jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    for (claim, param) in [
        ("scope", "scope"),
        ("aud", "audience"),
        ("resource", "resource"),
    ] {
        if let Some(v) = field(param) {
            claims[claim] = json!(v);
        }
    }
    let token = match config.token_format {
        TokenFormat::Opaque => format!("opaque-{serial}-{}", hex(&noise)),
        TokenFormat::Jwt => format!(
            "{}.{}.{}",
            codec::b64url_encode(br#"{"alg":"none","typ":"JWT"}"#),
            codec::b64url_encode(claims.to_string().as_bytes()),
            codec::b64url_encode(&noise)
        ),
    };
    let exp = claims["exp"].as_u64().unwrap_or(now);
    state.remember(
        token.clone(),
        Duration::from_secs(config.ttl_secs),
        config.expiry,
        claims,
    );
    drop(state);
    let expires_in = match config.expiry {
        Expiry::Monotonic => config.ttl_secs,
        // What is left of the token's life by the whole-second clock at answer time.
        Expiry::WallClock => exp.saturating_sub(clock::unix_secs(config.clock_skew_secs)),
    };

    let mut body = json!({ "access_token": token });
    if jkt.is_some() {
        body["token_type"] = json!("DPoP");
    } else if let Some(token_type) = &config.token_type {
        body["token_type"] = json!(token_type);
    }
    if let Some(expires_in) = config.expires_in.render(expires_in) {
        body["expires_in"] = expires_in;
    }
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    let response = Response::json(200, &body)
        .header("Cache-Control", "no-store")
        .header("Pragma", "no-cache");
    match (&config.dpop_nonce, config.dpop) {
        // RFC 9449 §8.2: a fresh nonce may ride on any answer; here it is the current one.
        (Some(nonce), DpopMode::Allowed | DpopMode::Required) => {
            response.header("DPoP-Nonce", nonce)
        }
        _ => response,
    }
}

/// RFC 9449 §5: the thumbprint to bind the token to, `None` for a Bearer token, or the
/// refusal (`invalid_dpop_proof`, or `use_dpop_nonce` with the nonce to use).
fn dpop_binding(
    shared: &Shared,
    state: &mut State,
    request: &Request,
) -> Result<Option<String>, Response> {
    let config = &state.config;
    if config.dpop == DpopMode::Off {
        return Ok(None);
    }
    let refuse = |why: &str| oauth_error(400, "invalid_dpop_proof", why);
    let proof = match dpop::proof_header(request) {
        Ok(Some(proof)) => proof,
        Ok(None) if config.dpop == DpopMode::Required => {
            return Err(refuse("A DPoP proof is required."))
        }
        Ok(None) => return Ok(None),
        Err(why) => return Err(refuse(&why)),
    };
    let expected = dpop::Expected {
        method: &request.method,
        urls: dpop::request_urls(&shared.base_url, request),
        nonce: config.dpop_nonce.as_deref(),
        access_token: None,
        window_secs: config.dpop_iat_window_secs,
        skew_secs: config.clock_skew_secs,
    };
    let keep = Duration::from_secs(2 * config.dpop_iat_window_secs + 1);
    match dpop::verify(proof, &expected) {
        Ok(proof) if state.dpop_jtis.insert(&proof.jti, keep) => Ok(Some(proof.jkt)),
        Ok(_) => Err(refuse("The DPoP proof `jti` was used before.")),
        Err(ProofError::Invalid(why)) => Err(refuse(&why)),
        Err(ProofError::UseNonce) => {
            let nonce = expected.nonce.unwrap_or_default();
            Err(oauth_error(
                400,
                "use_dpop_nonce",
                "Authorization server requires nonce in DPoP proof.",
            )
            .header("DPoP-Nonce", nonce))
        }
    }
}

/// RFC 7523 §2.2: the assertion type of `private_key_jwt` and federated credentials.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What a request says about its assertion.
struct Claimed<'a> {
    client_id: Option<&'a str>,
    assertion_type: Option<&'a str>,
    assertion: &'a str,
}

/// RFC 7523 §3 / RFC 7521 §4.2: the authenticated client id, `Err(None)` when no key is
/// registered for the client, or `Err(Some(why))` when the assertion is refused.
fn verify_assertion(
    shared: &Shared,
    config: &MockConfig,
    request: &Request,
    claimed: &Claimed,
) -> Result<String, Option<String>> {
    let refuse = |why: String| Some(why);
    let jws = Jws::parse(claimed.assertion);
    // Without a form client_id the assertion's `sub` names the client (or its configured
    // subject does, for federated credentials).
    let (client_id, key) = match claimed.client_id {
        Some(id) => (id.to_string(), config.assertion_keys.get(id)),
        None => {
            let sub = jws
                .as_ref()
                .ok()
                .and_then(|jws| jws.claims["sub"].as_str())
                .unwrap_or_default();
            config
                .assertion_keys
                .iter()
                .find(|(id, key)| key.subject.as_deref().unwrap_or(id) == sub)
                .map_or((sub.to_string(), None), |(id, key)| (id.clone(), Some(key)))
        }
    };
    let key = key.ok_or(None)?;
    if claimed.assertion_type != Some(JWT_BEARER) {
        return Err(refuse(format!(
            "client_assertion_type must be {JWT_BEARER}."
        )));
    }
    let jws = jws.map_err(|e| refuse(format!("it is {e}.")))?;
    jws.verify_with(&key.key)
        .map_err(|e| refuse(format!("{e}.")))?;
    let claims = &jws.claims;
    let expect = |claim: &str, wanted: &str| {
        if claims[claim].as_str() == Some(wanted) {
            Ok(())
        } else {
            Err(refuse(format!("`{claim}` must be {wanted:?}.")))
        }
    };
    expect("iss", key.issuer.as_deref().unwrap_or(&client_id))?;
    expect("sub", key.subject.as_deref().unwrap_or(&client_id))?;
    let mut accepted = dpop::request_urls(&shared.base_url, request);
    accepted.extend(dpop::normalise_url(&shared.base_url));
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(aud) => vec![aud.as_str()],
        Value::Array(auds) => auds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = |aud: &&str| {
        key.audience.as_deref() == Some(*aud)
            || dpop::normalise_url(aud).is_some_and(|aud| accepted.contains(&aud))
    };
    if !audiences.iter().any(fits) {
        return Err(refuse(
            "`aud` must contain the token endpoint URL or the issuer.".into(),
        ));
    }
    let now = clock::unix_now(config.clock_skew_secs);
    match claims["exp"].as_f64() {
        Some(exp) if exp > now => {}
        Some(_) => return Err(refuse("it expired (`exp`).".into())),
        None => return Err(refuse("it has no numeric `exp`.".into())),
    }
    if claims["nbf"].as_f64().is_some_and(|nbf| nbf > now) {
        return Err(refuse("it is not valid yet (`nbf`).".into()));
    }
    Ok(client_id)
}

/// RFC 6749 §2.3.1: `base64(urlencode(id) ":" urlencode(secret))`, each part form-decoded.
fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(codec::b64_decode(credentials)?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((
        codec::percent_decode(id, true)?,
        codec::percent_decode(secret, true)?,
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        // base64("demo-client:xY9%23mK2%24pL8%40nQ5%20%2B%2F%25")
        let b64 = "ZGVtby1jbGllbnQ6eFk5JTIzbUsyJTI0cEw4JTQwblE1JTIwJTJCJTJGJTI1";
        assert_eq!(
            decode_basic(b64),
            Some(("demo-client".into(), "xY9#mK2$pL8@nQ5 +/%".into()))
        );
        // '+' is a space in form encoding (RFC 6749 appendix B).
        assert_eq!(
            decode_basic(&codec::b64url_encode(b"a+b:c")).map(|p| p.0),
            Some("a b".into())
        );
        assert_eq!(decode_basic("not base64!"), None);
        assert_eq!(decode_basic("bm9jb2xvbg"), None, "no colon");
        assert_eq!(
            decode_basic(&codec::b64url_encode(b"a:%zz")),
            None,
            "bad percent escape"
        );
    }
}
