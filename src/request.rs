//! Authorized requests (DESIGN.md §4): `Client::send` injects the headers, binds the token
//! to the configured API origins, recovers from one 401 (or a GraphQL `UNAUTHENTICATED`),
//! maps 403, retries idempotent requests on transient failures, and applies the client-side
//! rate limit.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sync::Mutex;

use crate::client::Shared;
use crate::config::RateLimit;
use crate::error::{quote_body, Error, ErrorKind, Result};
use crate::retry::{backoff, parse_retry_after};
use crate::transport::{Outgoing, Reply};
use crate::url::{check_url, is_header_name, is_header_value, Origin};

/// Redirects followed per `send` at most.
const MAX_REDIRECTS: u32 = 5;

/// An API request for [`crate::Client::send`]. The body is kept so it can be re-sent
/// intact when the request is retried.
#[derive(Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    /// A request with any method (e.g. `"PATCH"`).
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// `GET url`.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// `POST url`.
    pub fn post(url: &str) -> Request {
        Request::new("POST", url)
    }

    /// Add a header. `Authorization` is refused at `send`: tokenward sets it.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    fn is_idempotent(&self) -> bool {
        // RFC 9110 §9.2.2
        matches!(
            self.method.as_str(),
            "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
        )
    }

    fn validate(&self) -> Result<()> {
        if !is_header_name(&self.method) {
            return Err(invalid(format!(
                "`{}` is not a valid HTTP method",
                self.method.escape_debug()
            )));
        }
        for (name, value) in &self.headers {
            if !is_header_name(name) {
                return Err(invalid(format!(
                    "header name `{}` is not a valid HTTP token",
                    name.escape_debug()
                )));
            }
            if !is_header_value(value) {
                return Err(invalid(format!(
                    "header `{name}` has CR, LF, NUL or another control character in its value"
                )));
            }
            if name.eq_ignore_ascii_case("authorization") {
                return Err(invalid(
                    "requests must not set Authorization; tokenward sets it".into(),
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// The API's answer: status, headers (names lower-cased) and the whole body.
#[derive(Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A header's value (case-insensitive); repeated headers are joined with `", "`.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// All headers in the order received, names lower-cased.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

fn invalid(message: String) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("The request was not sent: {message}."),
    )
}

/// A token bucket: `requests` per `per`, starting full. Callers wait for a permit.
pub(crate) struct RateLimiter {
    state: Mutex<(f64, Instant)>,
    capacity: f64,
    per_second: f64,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> RateLimiter {
        let capacity = f64::from(limit.requests);
        RateLimiter {
            state: Mutex::new((capacity, Instant::now())),
            capacity,
            per_second: capacity / limit.per.as_secs_f64(),
        }
    }

    /// Take one permit, sleeping (never holding the lock) until one is free or `deadline`.
    fn acquire(&self, deadline: Instant) -> Result<()> {
        loop {
            let wait = {
                let mut state = self.state.lock();
                let now = Instant::now();
                let refill = now.saturating_duration_since(state.1).as_secs_f64() * self.per_second;
                state.0 = (state.0 + refill).min(self.capacity);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return Ok(());
                }
                Duration::from_secs_f64((1.0 - state.0) / self.per_second)
            };
            if Instant::now() + wait > deadline {
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    "The request was not sent: the client-side rate limit (`rate_limit`) allows no request before the request deadline.",
                ));
            }
            std::thread::sleep(wait);
        }
    }

    /// # Safety
    /// Only from the `pthread_atfork` prepare handler; paired with `fork_unlock`.
    pub(crate) unsafe fn fork_lock(&self) {
        // SAFETY: paired with `fork_unlock` on this thread.
        unsafe { self.state.fork_lock() };
    }

    /// # Safety
    /// Only from the `pthread_atfork` parent/child handler, after `fork_lock`.
    pub(crate) unsafe fn fork_unlock(&self) {
        // SAFETY: locked by `fork_lock` on this thread.
        unsafe { self.state.fork_unlock() };
    }
}

/// Perform `request` for `shared` (see [`crate::Client::send`]).
pub(crate) fn send(shared: &Arc<Shared>, request: Request) -> Result<Response> {
    request.validate()?;
    let config = &shared.config;
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
    if let Some(limiter) = shared.limiter() {
        limiter.acquire(deadline)?;
    }

    let mut method = request.method.clone();
    let mut body = request.body.clone();
    let mut url = request.url.clone();
    let mut attempt = 1;
    let mut refreshed = false;
    let mut redirects = 0;
    loop {
        let target = crate::url::origin_of(&url, "redirect target")
            .map_err(|e| invalid(e.message().into()))?;
        // The token goes only to allowed origins; a redirect elsewhere loses it.
        let token = if allowed(&target) {
            Some(shared.token(None)?)
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
        let outcome = shared.transport.execute(&Outgoing {
            method: &method,
            url: &url,
            headers: &headers,
            body: body.as_deref(),
            deadline,
            body_limit: config.max_response_bytes,
            peer: "API",
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
                shared.invalidate(Some(token.as_str()));
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

fn is_graphql_unauthenticated(reply: &Reply) -> bool {
    if reply.status != 200 {
        return false;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&reply.body) else {
        return false;
    };
    json.get("errors")
        .and_then(|e| e.as_array())
        .is_some_and(|errors| {
            errors.iter().any(|e| {
                e.pointer("/extensions/code")
                    .and_then(|c| c.as_str())
                    .is_some_and(|c| c.eq_ignore_ascii_case("UNAUTHENTICATED"))
            })
        })
}

/// The auth-params of a `WWW-Authenticate: Bearer ...` challenge (RFC 6750 §3).
fn bearer_params(reply: &Reply) -> Vec<(String, String)> {
    let Some(header) = reply.header("www-authenticate") else {
        return Vec::new();
    };
    let rest = header.trim_start();
    let rest = match rest.get(..6) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer") => &rest[6..],
        _ => return Vec::new(),
    };
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',' && !c.is_whitespace()))
                .collect();
        if name.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
            value = value.trim().to_string();
        }
        params.push((name.to_ascii_lowercase(), value));
    }
    params
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn unauthorized(reply: &Reply, url: &str) -> Error {
    let params = bearer_params(reply);
    let code = param(&params, "error").map(str::to_string);
    let description = param(&params, "error_description").map(str::to_string);
    let detail = match (&code, &description) {
        (Some(c), Some(d)) => format!(" ({c}: \"{}\")", quote_body(d.as_bytes(), 200)),
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
            "The API at {url} answered {what}{detail} again after one token refresh; check that the token's \
             scope/audience is what this API expects."
        ),
    )
    .with_status(reply.status)
    .with_oauth(code, description)
}

fn forbidden(reply: &Reply, url: &str) -> Error {
    let params = bearer_params(reply);
    let code = param(&params, "error").map(str::to_string);
    let scope = param(&params, "scope").map(str::to_string);
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
    .with_oauth(code, param(&params, "error_description").map(str::to_string))
    .with_scope(scope)
}

/// Resolve a `Location` against the request URL (absolute, scheme-relative, absolute-path
/// or relative-path references).
fn resolve(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.contains("://") {
        return Some(location.to_string());
    }
    let scheme_end = base.find("://")? + 3;
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{}{rest}", &base[..scheme_end]));
    }
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        return Some(format!("{}{location}", &base[..path_start]));
    }
    let path = base[path_start..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Some(format!("{}{dir}{location}", &base[..path_start]))
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
        );
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        assert_eq!(e.required_scope(), Some("admin:write"));
    }

    #[test]
    fn location_resolution() {
        let base = "https://api.example.com/v1/items?x=1";
        assert_eq!(
            resolve(base, "https://other/x").as_deref(),
            Some("https://other/x")
        );
        assert_eq!(
            resolve(base, "//cdn.example.com/a").as_deref(),
            Some("https://cdn.example.com/a")
        );
        assert_eq!(
            resolve(base, "/v2/items").as_deref(),
            Some("https://api.example.com/v2/items")
        );
        assert_eq!(
            resolve(base, "other").as_deref(),
            Some("https://api.example.com/v1/other")
        );
        assert_eq!(resolve("https://h", "p").as_deref(), Some("https://h/p"));
    }

    #[test]
    fn graphql_unauthenticated_detection() {
        let mk = |status, body: &str| Reply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        assert!(is_graphql_unauthenticated(&mk(
            200,
            r#"{"data":null,"errors":[{"extensions":{"code":"UNAUTHENTICATED"}}]}"#
        )));
        assert!(!is_graphql_unauthenticated(&mk(
            200,
            r#"{"data":{},"errors":[{"extensions":{"code":"FORBIDDEN"}}]}"#
        )));
        assert!(!is_graphql_unauthenticated(&mk(200, "not json")));
        assert!(!is_graphql_unauthenticated(&mk(
            500,
            r#"{"errors":[{"extensions":{"code":"UNAUTHENTICATED"}}]}"#
        )));
    }

    #[test]
    fn requests_with_bad_headers_are_refused() {
        assert!(Request::get("https://x")
            .header("a", "b\r\nc: d")
            .validate()
            .is_err());
        assert!(Request::get("https://x")
            .header("Authorization", "Bearer x")
            .validate()
            .is_err());
        assert!(Request::get("https://x")
            .header("bad name", "v")
            .validate()
            .is_err());
        assert!(Request::new("GE T", "https://x").validate().is_err());
        assert!(Request::post("https://x")
            .header("content-type", "application/json")
            .validate()
            .is_ok());
    }

    #[test]
    fn token_bucket_starts_full_then_paces() {
        let limiter = RateLimiter::new(RateLimit {
            requests: 2,
            per: Duration::from_millis(100),
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let started = Instant::now();
        for _ in 0..4 {
            limiter.acquire(deadline).unwrap();
        }
        assert!(
            started.elapsed() >= Duration::from_millis(90),
            "{:?}",
            started.elapsed()
        );
        let e = limiter.acquire(Instant::now()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
    }
}
