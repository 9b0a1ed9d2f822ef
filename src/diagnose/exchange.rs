//! The conversation with the identity provider: its discovery document (for its clock and
//! the scopes and authentication methods it supports), the clock check, and one token
//! request whose outcome is classified — a wrong secret told apart from a wrong
//! authentication method by trying the other one.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::network::Target;
use super::settings::{auth_method_name, how_to_set};
use super::{ms, Check, Findings};
use crate::config::{Config, TokenLocation};
use crate::error::{Error, ErrorKind};
use crate::http::{origin_of, parse_http_date, Outgoing, RetryPolicy, Transport};
use crate::oauth::{AccessToken, EndpointSettings, Timing, TokenEndpoint};
use crate::AuthMethod;

/// Beyond this the clocks disagree enough to break time-checked credentials.
pub(crate) const CLOCK_TOLERANCE_SECS: i64 = 30;

/// What the provider's discovery document says, when it has one.
pub(crate) struct Discovery {
    pub(crate) scopes_supported: Option<Vec<String>>,
    pub(crate) auth_methods: Option<Vec<String>>,
    pub(crate) grant_types: Option<Vec<String>>,
}

/// The token the diagnosis obtained.
pub(crate) struct Obtained {
    pub(crate) token: AccessToken,
}

/// The `clock` and `token` checks.
pub(super) fn run(config: &Config, target: &Target, findings: &mut Findings) -> Vec<Check> {
    if let Some(failed) = findings.blocked {
        return vec![
            Check::skip("clock", format!("skipped: the {failed} check failed")),
            Check::skip("token", format!("skipped: the {failed} check failed")),
        ];
    }
    let transport =
        match Transport::new(&config.tls, config.proxy.as_deref(), config.connect_timeout) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                return vec![
                    Check::skip("clock", "skipped: no transport"),
                    Check::fail(
                        "token",
                        e.kind(),
                        "the HTTP transport cannot be set up",
                        e.message().to_string(),
                        "fix the `tls` files or the `proxy` setting",
                    ),
                ]
            }
        };
    let (date, discovery) = discover(config, target, &transport);
    let clock = clock(config, date, findings);
    findings.discovery = discovery;
    let token = token(config, &transport, findings);
    vec![clock, token]
}

/// The discovery document: the issuer's, or the one at the token endpoint's origin. Any
/// answer gives the server's `Date`.
fn discover(
    config: &Config,
    target: &Target,
    transport: &Transport,
) -> (Option<(i64, i64)>, Option<Discovery>) {
    let url = match &config.location {
        TokenLocation::Issuer(_) => target.url.clone(),
        TokenLocation::Url(url) => match origin_of(url, "token_url") {
            Ok(origin) => {
                let authority = if origin.host.contains(':') {
                    format!("[{}]", origin.host)
                } else {
                    origin.host.clone()
                };
                format!(
                    "{}://{authority}:{}/.well-known/openid-configuration",
                    origin.scheme, origin.port
                )
            }
            Err(_) => return (None, None),
        },
    };
    let reply = transport.execute(&Outgoing {
        method: "GET",
        url: &url,
        headers: &[("accept", "application/json")],
        body: None,
        deadline: Instant::now() + config.request_timeout,
        body_limit: 1 << 20,
        peer: "OpenID discovery document",
    });
    let Ok(reply) = reply else {
        return (None, None);
    };
    let local = unix_now();
    let date = reply
        .header("date")
        .and_then(parse_http_date)
        .and_then(|d| i64::try_from(d).ok())
        .map(|server| (server, local));
    if reply.status != 200 {
        return (date, None);
    }
    let Ok(doc) = serde_json::from_slice::<Value>(&reply.body) else {
        return (date, None);
    };
    let list = |key: &str| -> Option<Vec<String>> {
        Some(
            doc.get(key)?
                .as_array()?
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        )
    };
    let discovery = Discovery {
        scopes_supported: list("scopes_supported"),
        auth_methods: list("token_endpoint_auth_methods_supported"),
        grant_types: list("grant_types_supported"),
    };
    (date, Some(discovery))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The `clock` check from the server's `Date` (server seconds, local seconds).
fn clock(config: &Config, date: Option<(i64, i64)>, findings: &mut Findings) -> Check {
    let Some((server, local)) = date else {
        return Check::skip(
            "clock",
            "skipped: the server's answer carried no usable Date header",
        );
    };
    let skew = server - local;
    findings.clock_skew = Some(skew);
    let direction = if skew > 0 { "ahead of" } else { "behind" };
    if skew.abs() <= CLOCK_TOLERANCE_SECS {
        return Check::pass(
            "clock",
            format!(
                "the server's Date is within {} s of this machine's clock",
                skew.abs().max(1)
            ),
        )
        .fact("skew_secs", skew);
    }
    let jwt_note = if config.auth_method == AuthMethod::PrivateKeyJwt {
        " This client uses private_key_jwt: the provider checks its assertions' iat/nbf/exp and refuses them (invalid_client) once the skew passes its leeway, often 60 s to 5 min."
    } else {
        ""
    };
    Check::warn(
        "clock",
        format!("the server's clock is {} s {direction} this machine's", skew.abs()),
        format!(
            "one of the two clocks is off by {}. tokenward's cache does not mind (it measures lifetimes on the monotonic clock), but anything that compares wall-clock times does: private_key_jwt client assertions (iat/nbf/exp checked by the provider), APIs that check a token's nbf/iat (\"token not yet valid\" 401s), DPoP proofs, and `exp` read by other tools.{jwt_note}",
            match (skew.abs() / 60, skew.abs() % 60) {
                (0, s) => format!("{s} s"),
                (m, 0) => format!("{m} min"),
                (m, s) => format!("{m} min {s} s"),
            }
        ),
        "synchronise the clock with NTP on whichever machine is wrong (here: `timedatectl set-ntp true`, or chrony/ntpd)",
    )
    .fact("skew_secs", skew)
}

fn endpoint(config: &Config, transport: &Arc<Transport>, method: AuthMethod) -> TokenEndpoint {
    TokenEndpoint::new(
        EndpointSettings {
            location: config.location.clone(),
            client_id: config.client_id.clone(),
            auth_method: method,
            credential: config.credential.clone(),
            extra_params: config.extra_params.clone(),
            // One attempt: a diagnosis reports what the server says, it does not wait it out.
            retry: RetryPolicy {
                max_attempts: 1,
                ..config.retry
            },
            default_lifetime: config.default_lifetime,
            allow_http: config.allow_http,
        },
        Arc::clone(transport),
    )
}

fn request(config: &Config, endpoint: &TokenEndpoint) -> Result<AccessToken, Error> {
    let deadline = Instant::now() + config.request_timeout;
    let fetched = endpoint.fetch(&config.request, deadline, &|_, _, _| {})?;
    let timing = Timing::new(fetched.issued, fetched.lifetime, config.refresh_before, 0.0);
    Ok(AccessToken::new(
        fetched.value,
        fetched.granted_scope,
        timing,
    ))
}

/// The `token` check.
fn token(config: &Config, transport: &Arc<Transport>, findings: &mut Findings) -> Check {
    let endpoint = endpoint(config, transport, config.auth_method);
    let started = Instant::now();
    let outcome = request(config, &endpoint);
    let elapsed = started.elapsed();
    let at = endpoint.describe().to_string();
    let error = match outcome {
        Ok(token) => {
            let scope = token
                .granted_scope()
                .map(|s| format!(", scope `{s}`"))
                .unwrap_or_default();
            let check = Check::pass(
                "token",
                format!(
                    "{} issued a token in {} (lifetime {} s{scope}; fingerprint {})",
                    at,
                    ms(elapsed),
                    token.lifetime().as_secs(),
                    token.fingerprint()
                ),
            )
            .took(elapsed)
            .fact("lifetime_secs", token.lifetime().as_secs());
            findings.token = Some(Obtained { token });
            return check;
        }
        Err(error) => error,
    };
    let check = classify(config, transport, &error, &at, findings);
    let check = match error.http_status() {
        Some(status) => check.http(status),
        None => check,
    };
    check.detail(error.message().to_string()).took(elapsed)
}

fn classify(
    config: &Config,
    transport: &Arc<Transport>,
    error: &Error,
    at: &str,
    findings: &Findings,
) -> Check {
    let discovery = findings.discovery.as_ref();
    let method = auth_method_name(config.auth_method);
    // "HTTP 401 `invalid_client`", "HTTP 503", "`invalid_scope`", or nothing.
    let answer = [
        error.http_status().map(|s| format!("HTTP {s}")),
        error.oauth_error().map(|c| format!("`{c}`")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let answered = |extra: String| -> String {
        match (answer.is_empty(), extra.is_empty()) {
            (true, true) => String::new(),
            (true, false) => format!(" ({extra})"),
            (false, true) => format!(" ({answer})"),
            (false, false) => format!(" ({answer}; {extra})"),
        }
    };
    match error.kind() {
        ErrorKind::InvalidClient => {
            let other = match config.auth_method {
                AuthMethod::ClientSecretPost => Some(AuthMethod::ClientSecretBasic),
                AuthMethod::ClientSecretBasic => Some(AuthMethod::ClientSecretPost),
                _ => None,
            };
            let Some(other) = other else {
                let what = if config.auth_method == AuthMethod::PrivateKeyJwt {
                    "the client assertion: the public key registered for this client, its `kid`, the assertion's audience (the token endpoint URL) and this machine's clock (see the clock check)"
                } else {
                    "the client certificate registered for this client at the provider"
                };
                return Check::fail(
                    "token",
                    ErrorKind::InvalidClient,
                    format!("{at} refused the client{} with auth_method {method}", answered(String::new())),
                    format!("the provider did not accept {what}"),
                    "register the right key or certificate for this client_id at the provider",
                );
            };
            let other_name = auth_method_name(other);
            let advertised = discovery
                .and_then(|d| d.auth_methods.as_ref())
                .map(|m| format!(" (its discovery document lists: {})", m.join(", ")))
                .unwrap_or_default();
            match request(config, &endpoint(config, transport, other)) {
                Ok(_) => Check::fail(
                    "token",
                    ErrorKind::InvalidClient,
                    format!("the secret is right, but {at} wants {other_name}, not {method}"),
                    format!(
                        "this client is registered for {other_name}{advertised}: the same credentials sent with {method} are refused{}, sent with {other_name} they are accepted",
                        answered(String::new())
                    ),
                    format!(
                        "set {} to `{other_name}`",
                        how_to_set(config, "auth_method", "AUTH_METHOD")
                    ),
                )
                .fact("working_auth_method", other_name),
                Err(second) if second.kind() == ErrorKind::InvalidClient => Check::fail(
                    "token",
                    ErrorKind::InvalidClient,
                    format!("{at} refused the client id or secret{}", answered(String::new())),
                    format!(
                        "both {method} and {other_name} were refused with invalid_client: the client secret (or the client_id) is wrong, expired, or was rotated — or the client belongs to another environment or tenant"
                    ),
                    "compare the secret with the provider's (no stray whitespace or quotes; see the config check), check `client_id`, and that the token URL is the environment this client was created in",
                ),
                Err(second) => Check::fail(
                    "token",
                    ErrorKind::InvalidClient,
                    format!("{at} refused the client with {method}{}", answered(String::new())),
                    format!(
                        "with {method} the client was refused; with {other_name} the answer was different: {}",
                        second.message()
                    ),
                    format!("check the client secret; if it is right, try `auth_method` `{other_name}`"),
                ),
            }
        }
        ErrorKind::InvalidScope => {
            let requested = config.request.scope_list();
            let (cause, fix) = match discovery.and_then(|d| d.scopes_supported.as_ref()) {
                Some(supported) => {
                    let unknown: Vec<&String> = requested
                        .iter()
                        .filter(|s| !supported.contains(s))
                        .collect();
                    let unknown = if unknown.is_empty() {
                        "every requested scope is listed, so this client is not allowed one of them".to_string()
                    } else {
                        format!(
                            "not offered by the provider: {}",
                            unknown.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
                        )
                    };
                    (
                        format!(
                            "the provider refused the requested scope `{}`; {unknown}. Its scopes_supported: {}",
                            requested.join(" "),
                            supported.join(" ")
                        ),
                        "request only scopes the provider offers and this client is granted (`scope`)".to_string(),
                    )
                }
                None => (
                    format!(
                        "the provider refused the requested scope `{}` (it does not exist, is misspelt, or is not granted to this client){}",
                        requested.join(" "),
                        if requested.is_empty() { "; no scope was requested, and this provider requires one" } else { "" }
                    ),
                    "set `scope` to what the API's documentation names and the client is granted at the provider".to_string(),
                ),
            };
            Check::fail(
                "token",
                ErrorKind::InvalidScope,
                format!("{at} refused the scope{}", answered(String::new())),
                cause,
                fix,
            )
        }
        ErrorKind::UnauthorizedClient => Check::fail(
            "token",
            ErrorKind::UnauthorizedClient,
            format!("{at} does not allow this client the client_credentials grant{}", answered(String::new())),
            format!(
                "the client exists and authenticated, but the client credentials grant is not enabled for it{}",
                discovery
                    .and_then(|d| d.grant_types.as_ref())
                    .filter(|g| !g.iter().any(|g| g == "client_credentials"))
                    .map(|g| format!("; the provider's grant_types_supported does not even list it ({})", g.join(", ")))
                    .unwrap_or_default()
            ),
            "enable the client credentials grant (machine-to-machine / \"application\" access) for this client at the provider",
        ),
        ErrorKind::RateLimited => {
            let wait = error
                .retry_after()
                .map(|d| format!("Retry-After {} s", d.as_secs()))
                .unwrap_or_default();
            let check = Check::fail(
                "token",
                ErrorKind::RateLimited,
                format!("{at} is rate-limiting this client{}", answered(wait)),
                "too many token requests from this client or IP: many processes fetching their own tokens, a restart loop, or a test hammering the endpoint",
                format!(
                    "wait{} and retry; share one tokenward client per process so tokens are cached and reused, not fetched per request",
                    error.retry_after().map(|d| format!(" {} s", d.as_secs())).unwrap_or_default()
                ),
            );
            match error.retry_after() {
                Some(d) => check.fact("retry_after_secs", d.as_secs()),
                None => check,
            }
        }
        ErrorKind::Server => {
            let wait = error.retry_after();
            let check = Check::fail(
                "token",
                ErrorKind::Server,
                format!(
                    "{at} is failing{}",
                    answered(wait.map(|d| format!("Retry-After {} s", d.as_secs())).unwrap_or_default())
                ),
                "the identity provider (or a gateway in front of it) has a problem of its own; the configuration may well be right",
                format!(
                    "retry {}; check the provider's status page. tokenward retries these with backoff",
                    wait.map(|d| format!("after {} s", d.as_secs())).unwrap_or_else(|| "later".into())
                ),
            );
            match wait {
                Some(d) => check.fact("retry_after_secs", d.as_secs()),
                None => check,
            }
        }
        ErrorKind::BadResponse => Check::fail(
            "token",
            ErrorKind::BadResponse,
            format!("{at} did not answer with a token response{}", answered(String::new())),
            "the URL answers, but not as an OAuth token endpoint: a login or error page, a gateway, or a redirect",
            "use the token endpoint URL from the provider's discovery document",
        ),
        kind @ (ErrorKind::Network | ErrorKind::Timeout | ErrorKind::Tls) => Check::fail(
            "token",
            kind,
            format!("the token request to {at} failed ({kind})"),
            "the request could not be completed; the checks above say where the connection breaks",
            "fix what the checks above report; if they all pass, the server stalls on this request (see the detail)",
        ),
        kind => Check::fail(
            "token",
            kind,
            format!("{at} refused the request{}", answered(String::new())),
            "the provider refused the token request; its description is in the detail line",
            "read the provider's error description above and correct the setting it names",
        ),
    }
}
