//! `Client::send`: injects the headers, binds the token to the configured API origins,
//! recovers from one 401 (or a GraphQL `UNAUTHENTICATED`), maps 403, follows redirects only
//! between allowed origins, retries idempotent requests on transient failures, and applies
//! the client-side rate limit.

use std::time::Instant;

use super::challenge::{forbidden, unauthorized};
use super::graphql::is_graphql_unauthenticated;
use super::limiter::RateLimiter;
use super::request::{invalid, Request, Response};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::http::location::resolve;
use crate::http::{
    backoff, check_url, origin_of, parse_retry_after, Origin, Outgoing, Peer, Transport,
};
use crate::oauth::AccessToken;

/// Redirects followed per `send` at most.
const MAX_REDIRECTS: u32 = 5;

/// Where `send` gets the token to attach, and reports one the API rejected.
pub(super) trait Tokens {
    /// The current default token (from the cache, or fetched).
    fn token(&self) -> Result<AccessToken>;
    /// Evict `token` if it is still the cached one.
    fn invalidate(&self, token: &str);
}

/// What `send` uses of a client, borrowed for one call.
pub(super) struct Sender<'a> {
    pub(super) config: &'a Config,
    pub(super) transport: &'a Transport,
    pub(super) limiter: Option<&'a RateLimiter>,
    pub(super) tokens: &'a dyn Tokens,
}

/// Perform `request` (see [`crate::Client::send`]).
pub(super) fn send(sender: &Sender<'_>, request: Request) -> Result<Response> {
    request.validate()?;
    let config = sender.config;
    let started = Instant::now();
    let deadline = started + config.request_timeout;
    let allowed =
        |origin: &Origin| config.api_origins.is_empty() || config.api_origins.contains(origin);
    let origin = check_url(&request.url, "the request URL", config.allow_http)
        .map_err(|e| invalid(e.message().into()))?;
    if !allowed(&origin) {
        return Err(invalid(format!(
            "{origin} is not one of the configured api_base_urls, so the token is not sent there"
        )));
    }
    if let Some(limiter) = sender.limiter {
        limiter.acquire(deadline)?;
    }

    let mut method = request.method.clone();
    let mut body = request.body.clone();
    let mut url = request.url.clone();
    let mut attempt = 1;
    let mut refreshed = false;
    let mut redirects = 0;
    loop {
        let target = origin_of(&url, "redirect target").map_err(|e| invalid(e.message().into()))?;
        // The token goes only to allowed origins; a redirect elsewhere loses it.
        let token = if allowed(&target) {
            Some(sender.tokens.token()?)
        } else {
            None
        };
        let mut headers: Vec<(&str, &str)> =
            Vec::with_capacity(2 + config.headers.len() + request.headers.len());
        if let Some(token) = &token {
            headers.push(("Authorization", token.authorization()));
        }
        headers.extend(config.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        headers.extend(
            request
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        let outcome = sender.transport.execute(&Outgoing {
            method: &method,
            url: &url,
            headers: &headers,
            body: body.as_deref(),
            deadline,
            body_limit: config.max_response_bytes,
            peer: Peer::Api,
        });
        let reply = match outcome {
            Ok(reply) => reply,
            Err(e)
                if e.is_transient()
                    && request.is_idempotent()
                    && attempt < config.retry.max_attempts =>
            {
                let delay = backoff(&config.retry, attempt, None);
                if Instant::now() + delay >= deadline {
                    return Err(e);
                }
                std::thread::sleep(delay);
                attempt += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let auth_failed = reply.status == 401
            || (config.graphql_auth_errors && is_graphql_unauthenticated(&reply));
        if let (true, Some(token)) = (auth_failed, &token) {
            if !refreshed {
                // Evict exactly the token this request carried; others may already have.
                sender.tokens.invalidate(token.as_str());
                refreshed = true;
                continue;
            }
            return Err(unauthorized(&reply, &url));
        }
        if reply.status == 403 && token.is_some() {
            return Err(forbidden(&reply, &url));
        }
        if matches!(reply.status, 429 | 502 | 503 | 504)
            && request.is_idempotent()
            && attempt < config.retry.max_attempts
        {
            let delay = backoff(
                &config.retry,
                attempt,
                reply.header("retry-after").and_then(parse_retry_after),
            );
            if Instant::now() + delay < deadline {
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
                url = resolve(&url, location).ok_or_else(|| {
                    Error::new(
                        ErrorKind::BadResponse,
                        format!("The API at {url} redirected to an invalid Location."),
                    )
                })?;
                check_url(&url, "the redirect target", config.allow_http)
                    .map_err(|e| invalid(e.message().into()))?;
                // RFC 9110 §15.4: 303 always, and 301/302 after POST, continue as GET.
                if reply.status == 303 || (matches!(reply.status, 301 | 302) && method == "POST") {
                    method = "GET".into();
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
