//! The token endpoint: builds the client-credentials request (RFC 6749 §4.4), authenticates
//! the client, and retries transient failures. It keeps no token state; the cache decides
//! when to call it. Responses are read by `response`, the issuer by `discovery`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::credential::{AuthMethod, Credential};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::discovery::discover;
use super::response::parse_token_response;
use super::token::{Fetched, TokenRequest};
use crate::error::{Error, Result};
use crate::http::{backoff, percent_encode, Form, Outgoing, RetryPolicy, Transport};
use crate::redact::Redactor;
use crate::secret::Secret;
use crate::sync::{ForkLock, RwLock};

/// Token responses larger than this are refused: a real one is a few kilobytes, and the
/// cap keeps a hostile or confused server from exhausting memory.
pub(super) const TOKEN_BODY_LIMIT: u64 = 1 << 20;

/// Where tokens come from: a fixed URL or an issuer to discover it from.
#[derive(Debug, Clone)]
pub(crate) enum TokenLocation {
    Url(String),
    Issuer(String),
}

/// What the token endpoint needs from the configuration.
pub(crate) struct EndpointSettings {
    pub(crate) location: TokenLocation,
    pub(crate) client_id: String,
    pub(crate) auth_method: AuthMethod,
    pub(crate) credential: Credential,
    pub(crate) extra_params: Vec<(String, String)>,
    pub(crate) retry: RetryPolicy,
    /// Assumed when the server states no lifetime and the token is no JWT.
    pub(crate) default_lifetime: Duration,
    /// Whether a discovered endpoint may be plain http (loopback only).
    pub(crate) allow_http: bool,
}

/// A token endpoint read from a discovery document: the URL, and how messages show it (it
/// is server text, so quoted).
struct Discovered {
    url: String,
    shown: String,
}

pub(crate) struct TokenEndpoint {
    transport: Arc<Transport>,
    location: TokenLocation,
    discovered: OnceLock<Discovered>,
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
    pub(crate) fn new(settings: EndpointSettings, transport: Arc<Transport>) -> TokenEndpoint {
        TokenEndpoint {
            transport,
            location: settings.location,
            discovered: OnceLock::new(),
            client_id: settings.client_id,
            auth_method: settings.auth_method,
            credential: RwLock::new(settings.credential),
            extra_params: settings.extra_params,
            retry: settings.retry,
            default_lifetime: settings.default_lifetime,
            allow_http: settings.allow_http,
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
            (TokenLocation::Issuer(_), Some(found)) => &found.shown,
            (TokenLocation::Issuer(issuer), None) => issuer,
        }
    }

    /// A redactor for answers to requests made with the current credential: it knows the
    /// secret (and the `Basic` value it is sent in). A client assertion is made per request;
    /// `attempt` adds it to its own redactor.
    pub(crate) fn redactor(&self) -> Redactor {
        let mut redactor = Redactor::new();
        if let Credential::Secret(secret) = &*self.credential.read() {
            let basic = (self.auth_method == AuthMethod::ClientSecretBasic)
                .then(|| basic_authorization(&self.client_id, secret));
            redactor.secret(
                &self.client_id,
                secret.expose(),
                basic.as_ref().map(Secret::expose),
            );
        }
        redactor
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

    /// The credential lock, for the fork hooks (`crate::sync::fork`): held across a fork so
    /// that no thread that is gone in the child can be holding it there.
    pub(crate) fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.credential);
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
            // `None`: the server asked for a longer wait than a call makes; the cache
            // remembers the failure (capped) instead.
            let Some(delay) = backoff(&self.retry, attempt, error.retry_after()) else {
                return Err(error);
            };
            if Instant::now()
                .checked_add(delay)
                .is_none_or(|resume| resume >= deadline)
            {
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
        let mut redactor = Redactor::new();
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
                let value = basic_authorization(&self.client_id, secret);
                redactor.secret(&self.client_id, secret.expose(), Some(value.expose()));
                basic = Some(value);
            }
            (Credential::Secret(secret), _) => {
                redactor.secret(&self.client_id, secret.expose(), None);
                form.push("client_id", &self.client_id);
                form.push("client_secret", secret.expose());
            }
            (Credential::Key(key), _) => {
                let assertion = key.assertion(&self.client_id, url)?;
                redactor.assertion(assertion.expose());
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
        parse_token_response(reply, url, issued, redactor, self.default_lifetime)
    }

    fn token_url(&self, deadline: Instant) -> Result<&str> {
        let issuer = match &self.location {
            TokenLocation::Url(url) => return Ok(url),
            TokenLocation::Issuer(issuer) => issuer,
        };
        if let Some(found) = self.discovered.get() {
            return Ok(&found.url);
        }
        let redactor = self.redactor();
        let url = discover(
            &self.transport,
            issuer,
            self.allow_http,
            deadline,
            &redactor,
        )?;
        let shown = redactor.quote(&url).into_string();
        Ok(&self
            .discovered
            .get_or_init(|| Discovered { url, shown })
            .url)
    }
}

/// The `Authorization` value for `client_secret_basic` (RFC 6749 §2.3.1): the
/// form-urlencoded id and secret joined by `:`, in base64.
fn basic_authorization(client_id: &str, secret: &Secret) -> Secret {
    let mut pair = zeroize::Zeroizing::new(String::new());
    percent_encode(client_id, &mut pair);
    pair.push(':');
    percent_encode(secret.expose(), &mut pair);
    let mut value = String::with_capacity(6 + pair.len().div_ceil(3) * 4);
    value.push_str("Basic ");
    STANDARD.encode_string(pair.as_bytes(), &mut value);
    Secret::new(value)
}
