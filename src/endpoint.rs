//! The token endpoint: builds the client-credentials request (RFC 6749 §4.4), authenticates
//! the client, parses success and error responses (§5.1, §5.2), and retries transient
//! failures. It keeps no token state; the cache decides when to call it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::sync::RwLock;
use serde_json::Value;

use crate::config::{AuthMethod, Config, Credential, RetryPolicy, TokenLocation};
use crate::error::{quote_body, Error, ErrorKind, Result};
use crate::retry::{backoff, parse_retry_after};
use crate::secret::Secret;
use crate::token::{jwt_lifetime, TokenRequest};
use crate::transport::{Outgoing, Reply, Transport};
use crate::url::{base64, check_url, percent_encode, Form};

/// Token responses larger than this are refused (DESIGN.md §10).
const TOKEN_BODY_LIMIT: u64 = 1 << 20;

/// A token as the server issued it, before the cache gives it a schedule.
pub(crate) struct Fetched {
    pub(crate) value: String,
    pub(crate) lifetime: Duration,
    /// Taken before the request that produced the token was sent.
    pub(crate) issued: Instant,
    pub(crate) granted_scope: Option<String>,
}

pub(crate) struct TokenEndpoint {
    transport: Arc<Transport>,
    location: TokenLocation,
    discovered: OnceLock<String>,
    client_id: String,
    auth_method: AuthMethod,
    credential: RwLock<Credential>,
    extra_params: Vec<(String, String)>,
    retry: RetryPolicy,
    default_lifetime: Duration,
    allow_http: bool,
    requests: AtomicU64,
}

impl TokenEndpoint {
    pub(crate) fn new(config: &Config, transport: Arc<Transport>) -> TokenEndpoint {
        TokenEndpoint {
            transport,
            location: config.location.clone(),
            discovered: OnceLock::new(),
            client_id: config.client_id.clone(),
            auth_method: config.auth_method,
            credential: RwLock::new(config.credential.clone()),
            extra_params: config.extra_params.clone(),
            retry: config.retry,
            default_lifetime: config.default_lifetime,
            allow_http: config.allow_http,
            requests: AtomicU64::new(0),
        }
    }

    /// HTTP requests sent to the token endpoint so far (every attempt counts).
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Where tokens come from, for messages (the issuer until discovery has run).
    pub(crate) fn describe(&self) -> &str {
        match (&self.location, self.discovered.get()) {
            (TokenLocation::Url(url), _) => url,
            (TokenLocation::Issuer(_), Some(url)) => url,
            (TokenLocation::Issuer(issuer), None) => issuer,
        }
    }

    /// Replace the client secret. Only meaningful for the secret-based methods.
    pub(crate) fn replace_secret(&self, secret: Secret) -> Result<()> {
        if !matches!(
            self.auth_method,
            AuthMethod::ClientSecretPost | AuthMethod::ClientSecretBasic
        ) {
            return Err(Error::config(
                "set_client_secret needs auth_method client_secret_post or client_secret_basic",
            ));
        }
        if secret.is_empty() {
            return Err(Error::config("the new client secret is empty"));
        }
        *self.credential.write() = Credential::Secret(secret);
        Ok(())
    }

    /// Hold the credential lock across a fork (see `fork.rs`), so that no thread that is
    /// gone in the child can be holding it there.
    ///
    /// # Safety
    /// Only from the `pthread_atfork` prepare handler; paired with `fork_unlock`.
    pub(crate) unsafe fn fork_lock(&self) {
        // SAFETY: paired with `fork_unlock` on this thread.
        unsafe { self.credential.fork_lock() };
    }

    /// # Safety
    /// Only from the `pthread_atfork` parent/child handler, after `fork_lock`.
    pub(crate) unsafe fn fork_unlock(&self) {
        // SAFETY: locked by `fork_lock` on this thread.
        unsafe { self.credential.fork_unlock() };
    }

    /// Fetch one token, retrying transient failures with backoff until `max_attempts` or
    /// `deadline`. `on_retry(error, delay, attempt)` is told before each wait.
    pub(crate) fn fetch(
        &self,
        request: &TokenRequest,
        deadline: Instant,
        on_retry: &dyn Fn(&Error, Duration, u32),
    ) -> Result<Fetched> {
        let mut attempt = 1;
        loop {
            let error = match self.attempt(request, deadline) {
                Ok(fetched) => return Ok(fetched),
                Err(e) => e,
            };
            if !error.is_transient() || attempt >= self.retry.max_attempts {
                return Err(error);
            }
            let delay = backoff(&self.retry, attempt, error.retry_after());
            if Instant::now() + delay >= deadline {
                return Err(error);
            }
            on_retry(&error, delay, attempt);
            std::thread::sleep(delay);
            attempt += 1;
        }
    }

    fn attempt(&self, request: &TokenRequest, deadline: Instant) -> Result<Fetched> {
        let url = self.token_url(deadline)?;
        let credential = self.credential.read().clone();
        let mut form = Form::default();
        form.push("grant_type", "client_credentials");
        if let Some(scope) = request.scope_param() {
            form.push("scope", &scope);
        }
        if let Some(audience) = request.audience_param() {
            form.push("audience", audience);
        }
        if let Some(resource) = request.resource_param() {
            form.push("resource", resource);
        }
        for (name, value) in &self.extra_params {
            form.push(name, value);
        }
        let mut basic = None;
        match (&credential, self.auth_method) {
            (Credential::Secret(secret), AuthMethod::ClientSecretBasic) => {
                // RFC 6749 §2.3.1: form-urlencode id and secret, then base64 the pair.
                let mut pair = zeroize::Zeroizing::new(String::new());
                percent_encode(&self.client_id, &mut pair);
                pair.push(':');
                percent_encode(secret.expose(), &mut pair);
                basic = Some(Secret::new(format!(
                    "Basic {}",
                    base64(pair.as_bytes(), false)
                )));
            }
            (Credential::Secret(secret), _) => {
                form.push("client_id", &self.client_id);
                form.push("client_secret", secret.expose());
            }
            (Credential::Key(key), _) => {
                let assertion = key.assertion(&self.client_id, url)?;
                form.push("client_id", &self.client_id);
                form.push(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                );
                form.push("client_assertion", assertion.expose());
            }
            (Credential::Certificate, _) => form.push("client_id", &self.client_id),
        }
        let mut headers = vec![
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
        ];
        if let Some(value) = &basic {
            headers.push(("authorization", value.expose()));
        }
        let issued = Instant::now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let reply = self.transport.execute(&Outgoing {
            method: "POST",
            url,
            headers: &headers,
            body: Some(form.as_str().as_bytes()),
            deadline,
            body_limit: TOKEN_BODY_LIMIT,
            peer: "token endpoint",
        })?;
        let secret = match &credential {
            Credential::Secret(s) => Some(s),
            _ => None,
        };
        self.parse(reply, url, issued, secret)
    }

    fn token_url(&self, deadline: Instant) -> Result<&str> {
        let issuer = match &self.location {
            TokenLocation::Url(url) => return Ok(url),
            TokenLocation::Issuer(issuer) => issuer,
        };
        if let Some(url) = self.discovered.get() {
            return Ok(url);
        }
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let reply = self.transport.execute(&Outgoing {
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
        check_url(&endpoint, "the discovered token_endpoint", self.allow_http)?;
        Ok(self.discovered.get_or_init(|| endpoint))
    }

    fn parse(
        &self,
        reply: Reply,
        url: &str,
        issued: Instant,
        secret: Option<&Secret>,
    ) -> Result<Fetched> {
        // Some servers (IIS-hosted ones in particular) prefix JSON with a UTF-8 BOM.
        let body = reply
            .body
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&reply.body);
        let json = serde_json::from_slice::<Value>(body)
            .ok()
            .filter(Value::is_object);
        let success = (200..300).contains(&reply.status);
        let has_token = json
            .as_ref()
            .is_some_and(|j| j.get("access_token").is_some());
        if !success || (json.as_ref().is_some_and(|j| j.get("error").is_some()) && !has_token) {
            return Err(error_response(&reply, json.as_ref(), url, secret));
        }
        let Some(json) = json else {
            return Err(Error::new(
                ErrorKind::BadResponse,
                format!(
                    "The token endpoint at {url} answered HTTP {} with a body that is not a JSON object \
                     (a proxy or login page?): \"{}\".",
                    reply.status,
                    quote_body(scrub(&String::from_utf8_lossy(&reply.body), secret).as_bytes(), 200)
                ),
            )
            .with_status(reply.status));
        };
        let value = match json.get("access_token") {
            Some(Value::String(token)) if !token.is_empty() => token,
            _ => {
                return Err(Error::new(
                    ErrorKind::BadResponse,
                    format!("The token endpoint at {url} answered HTTP {} without an `access_token` string.", reply.status),
                )
                .with_status(reply.status))
            }
        };
        // The token goes into an HTTP header verbatim; RFC 6750 b64token is a subset of this.
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::new(
                ErrorKind::BadResponse,
                format!("The token endpoint at {url} issued an access_token with spaces, control or non-ASCII characters; it cannot be sent as a Bearer token."),
            ));
        }
        match json.get("token_type") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
            Some(other) => {
                return Err(Error::new(
                    ErrorKind::BadResponse,
                    format!(
                        "The token endpoint at {url} issued a token of type {other}; tokenward only uses Bearer tokens (RFC 6749 §7.1)."
                    ),
                ))
            }
        }
        let lifetime = expires_in(json.get("expires_in"))
            .or_else(|| jwt_lifetime(value))
            .unwrap_or(self.default_lifetime);
        Ok(Fetched {
            value: value.clone(),
            lifetime,
            issued,
            granted_scope: json
                .get("scope")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

/// `expires_in` as a number, a numeric string, or a float; zero and negative mean "already
/// expiring" (usable once, never cached). Missing or unreadable gives `None`.
fn expires_in(value: Option<&Value>) -> Option<Duration> {
    let secs = match value? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !secs.is_finite() {
        return None;
    }
    Some(Duration::from_secs_f64(secs.clamp(0.0, 1e10)))
}

/// Turn a non-success token response into a typed error (RFC 6749 §5.2).
fn error_response(
    reply: &Reply,
    json: Option<&Value>,
    url: &str,
    secret: Option<&Secret>,
) -> Error {
    let status = reply.status;
    let text = |key: &str| {
        json.and_then(|j| j.get(key))
            .and_then(Value::as_str)
            .map(|s| quote_body(scrub(s, secret).as_bytes(), 300))
    };
    let code = text("error");
    let description = text("error_description");
    let retry_after = reply.header("retry-after").and_then(parse_retry_after);
    let lower = code.as_deref().map(|c| c.trim().to_ascii_lowercase());
    let kind = match (status, lower.as_deref()) {
        (429, _) => ErrorKind::RateLimited,
        (_, Some("invalid_client")) => ErrorKind::InvalidClient,
        (_, Some("invalid_scope")) => ErrorKind::InvalidScope,
        (_, Some("unauthorized_client" | "unsupported_grant_type")) => {
            ErrorKind::UnauthorizedClient
        }
        (_, Some("temporarily_unavailable" | "server_error")) => ErrorKind::Server,
        (500.., _) => ErrorKind::Server,
        (401, _) => ErrorKind::InvalidClient,
        (408, _) => ErrorKind::Timeout,
        (_, Some(_)) => ErrorKind::OAuth,
        _ => ErrorKind::BadResponse,
    };
    let hint = match kind {
        ErrorKind::InvalidClient => " Check client_id, the client secret and auth_method (this server may expect client_secret_basic or client_secret_post).",
        ErrorKind::InvalidScope => " Check `scope` against the scopes this client may request.",
        ErrorKind::UnauthorizedClient => " Allow the client_credentials grant for this client at the identity provider.",
        ErrorKind::RateLimited => " The identity provider is rate-limiting this client; tokenward backs off.",
        ErrorKind::Server => " The identity provider is failing; tokenward retries with backoff.",
        _ if (300..400).contains(&status) => " Redirects from the token endpoint are not followed; configure the final token URL.",
        ErrorKind::BadResponse => " Check `token_url`.",
        _ => "",
    };
    let what = match (&code, &description) {
        (Some(c), Some(d)) => format!("{c}: \"{d}\""),
        (Some(c), None) => c.clone(),
        (None, _) if reply.body.is_empty() => "an empty body".to_string(),
        (None, _) => format!(
            "\"{}\"",
            quote_body(
                scrub(&String::from_utf8_lossy(&reply.body), secret).as_bytes(),
                200
            )
        ),
    };
    Error::new(
        kind,
        format!("The token endpoint at {url} answered HTTP {status} with {what}.{hint}"),
    )
    .with_status(status)
    .with_oauth(code, description)
    .with_retry_after(retry_after)
}

/// Remove the client secret (raw or percent-encoded) from server-provided text, in case a
/// misbehaving server echoes the request.
fn scrub(text: &str, secret: Option<&Secret>) -> String {
    let Some(secret) = secret.map(Secret::expose).filter(|s| s.len() >= 4) else {
        return text.to_string();
    };
    let mut encoded = String::new();
    percent_encode(secret, &mut encoded);
    text.replace(secret, "***").replace(&encoded, "***")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_utf8_bom_before_the_json_is_accepted() {
        let config = crate::Config::from_json(
            r#"{"token_url":"http://127.0.0.1:1/t","client_id":"c","client_secret":"s","allow_http":true}"#,
        )
        .unwrap();
        let endpoint = TokenEndpoint::new(&config, Arc::new(Transport::new(&config).unwrap()));
        let body = "\u{feff}{\"access_token\":\"abc\",\"token_type\":\"bearer\",\"expires_in\":60}";
        let fetched = endpoint
            .parse(
                reply(200, body, &[]),
                "http://127.0.0.1:1/t",
                Instant::now(),
                None,
            )
            .unwrap();
        assert_eq!(fetched.value, "abc");
        assert_eq!(fetched.lifetime, Duration::from_secs(60));
    }

    #[test]
    fn expires_in_shapes() {
        assert_eq!(
            expires_in(Some(&json!(3600))),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            expires_in(Some(&json!("3600"))),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            expires_in(Some(&json!(" 60 "))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            expires_in(Some(&json!(3599.5))),
            Some(Duration::from_millis(3_599_500))
        );
        assert_eq!(expires_in(Some(&json!(0))), Some(Duration::ZERO));
        assert_eq!(expires_in(Some(&json!(-5))), Some(Duration::ZERO));
        assert_eq!(expires_in(Some(&json!(null))), None);
        assert_eq!(expires_in(Some(&json!("soon"))), None);
        assert_eq!(expires_in(None), None);
    }

    fn reply(status: u16, body: &str, headers: &[(&str, &str)]) -> Reply {
        Reply {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn classify(status: u16, body: &str) -> ErrorKind {
        let r = reply(status, body, &[]);
        let json = serde_json::from_slice::<Value>(&r.body).ok();
        error_response(&r, json.as_ref(), "https://idp/token", None).kind()
    }

    #[test]
    fn error_codes_map_to_kinds() {
        assert_eq!(
            classify(400, r#"{"error":"invalid_client"}"#),
            ErrorKind::InvalidClient
        );
        assert_eq!(
            classify(401, r#"{"error":"INVALID_CLIENT"}"#),
            ErrorKind::InvalidClient
        );
        assert_eq!(classify(401, "<html>nope</html>"), ErrorKind::InvalidClient);
        assert_eq!(
            classify(400, r#"{"error":"invalid_scope"}"#),
            ErrorKind::InvalidScope
        );
        assert_eq!(
            classify(400, r#"{"error":"unsupported_grant_type"}"#),
            ErrorKind::UnauthorizedClient
        );
        assert_eq!(
            classify(400, r#"{"error":"invalid_request"}"#),
            ErrorKind::OAuth
        );
        assert_eq!(classify(429, ""), ErrorKind::RateLimited);
        assert_eq!(classify(502, "<html>Bad Gateway</html>"), ErrorKind::Server);
        assert_eq!(
            classify(400, r#"{"error":"temporarily_unavailable"}"#),
            ErrorKind::Server
        );
        assert_eq!(
            classify(404, "<html>Not Found</html>"),
            ErrorKind::BadResponse
        );
        assert_eq!(classify(302, ""), ErrorKind::BadResponse);
        assert_eq!(classify(408, ""), ErrorKind::Timeout);
        // A non-string error member (Spring-style) is not an OAuth code.
        assert_eq!(
            classify(400, r#"{"error":{"x":1},"status":400}"#),
            ErrorKind::BadResponse
        );
    }

    #[test]
    fn error_message_has_status_code_description_and_retry_after() {
        let r = reply(
            429,
            r#"{"error":"slow_down","error_description":"Too many"}"#,
            &[("retry-after", "7")],
        );
        let json = serde_json::from_slice::<Value>(&r.body).ok();
        let e = error_response(&r, json.as_ref(), "https://idp/token", None);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.oauth_error(), Some("slow_down"));
        assert!(e.message().contains("HTTP 429"), "{e}");
        assert!(e.message().contains("Too many"), "{e}");
        assert!(e.message().contains("https://idp/token"), "{e}");
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let secret = Secret::new("xY9#mK2$ secret");
        let r = reply(
            400,
            "client_secret=xY9%23mK2%24%20secret rejected; raw xY9#mK2$ secret",
            &[],
        );
        let e = error_response(&r, None, "https://idp/token", Some(&secret));
        assert!(!e.message().contains("xY9"), "{e}");
    }
}
