//! `Client::send`: injects the headers, binds the token to the configured API origins,
//! recovers from one 401 (or a GraphQL `UNAUTHENTICATED`) without refresh storms, maps 403,
//! follows redirects (resolved by RFC 3986, carrying nothing of ours to other origins),
//! retries idempotent requests on transient failures, and applies the client-side rate
//! limit.

use std::time::{Duration, Instant};

use super::challenge::{forbidden, rejected_fresh, unauthorized};
use super::graphql::is_graphql_unauthenticated;
use super::limiter::RateLimiter;
use super::request::{invalid, Request, Response};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::http::headers::{describes_body, survives_foreign_redirect};
use crate::http::location::resolve;
use crate::http::{backoff, check_url, parse_retry_after, Origin, Outgoing, Transport};
use crate::oauth::AccessToken;
use crate::redact::Redactor;

/// Redirects followed per `send` at most.
const MAX_REDIRECTS: u32 = 5;

/// Where `send` gets the token to attach, and reports one the API rejected.
pub(super) trait Tokens {
    /// The current default token (from the cache, or fetched).
    fn token(&self) -> Result<AccessToken>;
    /// The API rejected `token`: evict it (if still cached) so that the next `token()`
    /// fetches. `Err(since)` when the rejection guard refuses (a token older than this one
    /// was rejected `since` ago): nothing is evicted.
    fn rejected(&self, token: &AccessToken) -> std::result::Result<(), Duration>;
    /// A redactor that knows the client's credential, for quoting the API's answers.
    fn redactor(&self) -> Redactor;
}

/// What `send` uses of a client, borrowed for one call.
pub(super) struct Sender<'a> {
    pub(super) config: &'a Config,
    pub(super) transport: &'a Transport,
    pub(super) limiter: Option<&'a RateLimiter>,
    pub(super) tokens: &'a dyn Tokens,
}

/// Whether the token and the static headers may go to `origin`.
fn allowed(config: &Config, origin: &Origin) -> bool {
    config.api_origins.is_empty() || config.api_origins.contains(origin)
}

/// Check that `url` may carry the client's token: https (or loopback http with
/// `allow_http`), and an origin among `api_base_urls` when they are set.
pub(super) fn bind(config: &Config, url: &str) -> Result<Origin> {
    let origin = check_url(url, "the request URL", config.allow_http)
        .map_err(|e| invalid(e.message().into()))?;
    if !allowed(config, &origin) {
        return Err(Error::new(
            ErrorKind::ForeignOrigin,
            format!(
                "The request was not sent: {origin} is not one of the configured \
                 api_base_urls, so neither the token nor the configured headers go there."
            ),
        ));
    }
    Ok(origin)
}

/// Whether an answer rejects the token it carried: 401, or with `graphql_auth_errors` a
/// GraphQL `UNAUTHENTICATED` error.
pub(super) fn rejects_token(config: &Config, status: u16, body: &[u8]) -> bool {
    status == 401 || (config.graphql_auth_errors && is_graphql_unauthenticated(status, body))
}

/// Perform `request` (see [`crate::Client::send`]).
pub(super) fn send(sender: &Sender<'_>, request: Request) -> Result<Response> {
    request.validate()?;
    let config = sender.config;
    let started = Instant::now();
    let deadline = started + config.request_timeout;
    bind(config, &request.url)?;
    if let Some(limiter) = sender.limiter {
        limiter.acquire(deadline)?;
    }

    let mut method = request.method.clone();
    let mut body = request.body.clone();
    let mut url = request.url.clone();
    let mut attempt = 1;
    let mut refreshed = false;
    let mut redirects = 0;
    // Knows every token this call carries: the API's answers are quoted through it, and the
    // messages that repeat a URL taken from a `Location` are scrubbed by it.
    let mut redactor = sender.tokens.redactor();
    // Once a redirect has left the configured origins nothing of ours goes along for the
    // rest of the chain, even back to an allowed origin: a foreign server must not be able
    // to steer an authorized request.
    let mut left = false;
    let mut body_dropped = false;
    loop {
        let target = check_url(&url, "the redirect target", config.allow_http).map_err(|e| {
            Error::new(
                ErrorKind::BadResponse,
                format!(
                    "The API redirected to a URL that is not followed: {}",
                    redactor.scrub(e.message())
                ),
            )
        })?;
        left = left || !allowed(config, &target);
        let token = if left {
            None
        } else {
            Some(sender.tokens.token()?)
        };
        if let Some(token) = &token {
            redactor.token(token.as_str());
        }
        let mut headers: Vec<(&str, &str)> =
            Vec::with_capacity(2 + config.headers.len() + request.headers.len());
        if let Some(token) = &token {
            headers.push(("Authorization", token.authorization()));
            headers.extend(config.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        }
        headers.extend(
            request
                .headers
                .iter()
                .filter(|(name, _)| !(body_dropped && describes_body(name)))
                .filter(|(name, _)| !left || survives_foreign_redirect(name, body.is_some()))
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        let outcome = sender
            .transport
            .execute(&Outgoing {
                method: &method,
                url: &url,
                headers: &headers,
                body: body.as_deref(),
                deadline,
                body_limit: config.max_response_bytes,
                peer: "API",
            })
            .map_err(|e| e.map_message(|m| redactor.scrub(m)));
        let reply = match outcome {
            Ok(reply) => reply,
            Err(e)
                if e.is_transient()
                    && request.is_idempotent()
                    && attempt < config.retry.max_attempts =>
            {
                let delay = backoff(&config.retry, attempt, None).unwrap_or_default();
                if Instant::now() + delay >= deadline {
                    return Err(e);
                }
                std::thread::sleep(delay);
                attempt += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        if let (true, Some(token)) = (rejects_token(config, reply.status, &reply.body), &token) {
            if refreshed {
                return Err(unauthorized(
                    &reply,
                    redactor.quote(&url).as_str(),
                    &redactor,
                ));
            }
            // Evict exactly the token this request carried; others may already have.
            if let Err(since) = sender.tokens.rejected(token) {
                return Err(rejected_fresh(
                    &reply,
                    Some(redactor.quote(&url).as_str()),
                    since,
                    &redactor,
                ));
            }
            refreshed = true;
            continue;
        }
        if reply.status == 403 && token.is_some() {
            return Err(forbidden(&reply, redactor.quote(&url).as_str(), &redactor));
        }
        if matches!(reply.status, 429 | 502 | 503 | 504)
            && request.is_idempotent()
            && attempt < config.retry.max_attempts
        {
            // No delay: the server asked for longer than max_delay; its answer is returned.
            let delay = backoff(
                &config.retry,
                attempt,
                reply.header("retry-after").and_then(parse_retry_after),
            );
            if let Some(delay) = delay.filter(|d| Instant::now() + *d < deadline) {
                std::thread::sleep(delay);
                attempt += 1;
                continue;
            }
        }
        if matches!(reply.status, 301 | 302 | 303 | 307 | 308) && !config.api_origins.is_empty() {
            if let Some(location) = reply.header("location") {
                if redirects >= MAX_REDIRECTS {
                    return Err(Error::new(
                        ErrorKind::BadResponse,
                        format!(
                            "The API at {} redirected more than {MAX_REDIRECTS} times.",
                            request.url
                        ),
                    ));
                }
                let resolved = resolve(&url, location).ok_or_else(|| {
                    Error::new(
                        ErrorKind::BadResponse,
                        format!(
                            "The API at {} redirected to an invalid Location (\"{}\").",
                            redactor.quote(&url),
                            redactor.quote(location)
                        ),
                    )
                })?;
                // The fragment is the client's own business (RFC 9110 §10.2.2); never sent.
                url = match resolved.split_once('#') {
                    Some((without, _)) => without.to_string(),
                    None => resolved,
                };
                // RFC 9110 §15.4: 303 always, and 301/302 after POST, continue as GET.
                if reply.status == 303 || (matches!(reply.status, 301 | 302) && method == "POST") {
                    method = "GET".into();
                    body_dropped = body_dropped || body.is_some();
                    body = None;
                }
                redirects += 1;
                continue;
            }
        }
        return Ok(Response {
            status: reply.status,
            headers: reply.headers,
            body: reply.body,
        });
    }
}
