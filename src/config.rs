//! Configuration: one schema from a builder, JSON or the environment, validated once
//! (DESIGN.md §5). Every problem is reported in one message that names the key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::assertion::SigningKey;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::token::TokenRequest;
use crate::url::{check_url, is_header_name, is_header_value, Origin};

/// How the client authenticates to the token endpoint (RFC 6749 §2.3, RFC 7523, RFC 8705).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `client_id` and `client_secret` in the form body (the default).
    ClientSecretPost,
    /// HTTP Basic with the form-urlencoded id and secret.
    ClientSecretBasic,
    /// A signed JWT assertion (RS256 or ES256) made with `private_key_file`.
    PrivateKeyJwt,
    /// Mutual TLS with `tls.client_cert_file` / `tls.client_key_file`; no secret.
    TlsClientAuth,
}

impl AuthMethod {
    fn parse(s: &str) -> Option<AuthMethod> {
        Some(match s {
            "client_secret_post" => AuthMethod::ClientSecretPost,
            "client_secret_basic" => AuthMethod::ClientSecretBasic,
            "private_key_jwt" => AuthMethod::PrivateKeyJwt,
            "tls_client_auth" => AuthMethod::TlsClientAuth,
            _ => return None,
        })
    }
}

/// Who performs the early refresh when a token enters its refresh window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// A short-lived library thread refreshes while callers keep the current token (default).
    Background,
    /// The caller that notices refreshes inline, for hosts that forbid library threads.
    Inline,
}

/// Retry policy for transient failures: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per fetch, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff ceiling; doubled per attempt.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
}

/// A client-side rate limit for `send`: at most `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window (the bucket size).
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

/// Where tokens come from: a fixed URL or an issuer to discover it from.
#[derive(Debug, Clone)]
pub(crate) enum TokenLocation {
    Url(String),
    Issuer(String),
}

/// How the client proves its identity, with what it needs to do so.
#[derive(Clone)]
pub(crate) enum Credential {
    Secret(Secret),
    Key(std::sync::Arc<SigningKey>),
    Certificate,
}

/// A validated configuration. Build one with [`Config::builder`], [`Config::from_json`] or
/// [`Config::from_env`]; once built it is never re-validated.
#[derive(Clone)]
pub struct Config {
    pub(crate) location: TokenLocation,
    pub(crate) client_id: String,
    pub(crate) auth_method: AuthMethod,
    pub(crate) credential: Credential,
    pub(crate) request: TokenRequest,
    pub(crate) extra_params: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) api_origins: Vec<Origin>,
    pub(crate) refresh_before: Duration,
    pub(crate) default_lifetime: Duration,
    pub(crate) error_cooldown: Duration,
    pub(crate) refresh_mode: RefreshMode,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) tls: TlsMaterial,
    pub(crate) proxy: Option<String>,
    pub(crate) allow_http: bool,
    pub(crate) graphql_auth_errors: bool,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) max_response_bytes: u64,
}

/// Certificates and keys read from the `tls` files at construction.
#[derive(Clone, Default)]
pub(crate) struct TlsMaterial {
    pub(crate) extra_roots: Vec<ureq::tls::Certificate<'static>>,
    pub(crate) client_cert: Option<ureq::tls::ClientCert>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = match &self.location {
            TokenLocation::Url(u) => format!("token_url={u}"),
            TokenLocation::Issuer(u) => format!("issuer={u}"),
        };
        f.debug_struct("Config")
            .field("location", &location)
            .field("client_id", &self.client_id)
            .field("auth_method", &self.auth_method)
            .field("credential", &"***")
            .field("request", &self.request)
            .field("headers", &self.headers)
            .field("refresh_before", &self.refresh_before)
            .field("refresh_mode", &self.refresh_mode)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Start a configuration in code.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Parse and validate a JSON configuration (the keys of DESIGN.md §5). Unknown keys are
    /// an error, so a typo such as `client_secert` is never silently ignored.
    pub fn from_json(text: &str) -> Result<Config> {
        let entries = match serde_json::from_str::<Value>(text) {
            Err(e) => {
                return Err(Error::config(format!(
                    "configuration is not valid JSON: {e}"
                )))
            }
            Ok(Value::Object(_)) => ordered_object(text)
                .map_err(|e| Error::config(format!("configuration is not valid JSON: {e}")))?,
            Ok(_) => return Err(Error::config("configuration must be a JSON object")),
        };
        let mut b = ConfigBuilder::default();
        b.apply_json(entries);
        b.build()
    }

    /// Read the configuration from environment variables named `{prefix}TOKEN_URL`,
    /// `{prefix}CLIENT_ID`, ... (`prefix` defaults to `TOKENWARD_`; `API_` makes the
    /// common `API_CLIENT_ID` / `API_BASE_URL` names work).
    pub fn from_env(prefix: Option<&str>) -> Result<Config> {
        Config::from_vars(prefix.unwrap_or("TOKENWARD_"), |name| {
            std::env::var(name).ok()
        })
    }

    pub(crate) fn from_vars(prefix: &str, var: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let mut b = ConfigBuilder::default();
        b.apply_env(prefix, var);
        b.build()
    }

    /// The configured static headers, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The token request used by [`crate::Client::token`].
    pub fn default_request(&self) -> &TokenRequest {
        &self.request
    }

    /// The request deadline for a token fetch (all attempts included).
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// Builds a [`Config`]; every setter records, [`ConfigBuilder::build`] validates.
#[derive(Default)]
pub struct ConfigBuilder {
    token_url: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_secret_file: Option<PathBuf>,
    client_secret_env: Option<String>,
    auth_method: Option<String>,
    private_key_file: Option<PathBuf>,
    private_key_id: Option<String>,
    request: TokenRequest,
    extra_params: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    api_base_urls: Vec<String>,
    refresh_before: Option<Duration>,
    default_lifetime: Option<Duration>,
    error_cooldown: Option<Duration>,
    refresh_mode: Option<String>,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    max_attempts: Option<u64>,
    base_delay: Option<Duration>,
    max_delay: Option<Duration>,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    proxy: Option<String>,
    allow_http: bool,
    graphql_auth_errors: bool,
    rate_limit: Option<(u64, Duration)>,
    max_response_bytes: Option<u64>,
    problems: Vec<String>,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("token_url", &self.token_url)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $field:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.$field = Some(value.into());
            self
        }
    };
}

impl ConfigBuilder {
    setter!(/// The token endpoint, e.g. `https://idp.example.com/oauth/token`.
        token_url, token_url, String);
    setter!(/// An OpenID issuer; the token endpoint is discovered from its
        /// `/.well-known/openid-configuration` on first use.
        issuer, issuer, String);
    setter!(/// The OAuth client id (required).
        client_id, client_id, String);
    setter!(/// Read the client secret from this file (trailing newline removed).
        client_secret_file, client_secret_file, PathBuf);
    setter!(/// Read the client secret from this environment variable.
        client_secret_env, client_secret_env, String);
    setter!(/// The PEM private key (PKCS#8 RSA or P-256, or PKCS#1 RSA) for `private_key_jwt`.
        private_key_file, private_key_file, PathBuf);
    setter!(/// The `kid` header of client assertions.
        private_key_id, private_key_id, String);
    setter!(/// An extra CA certificate file (PEM) trusted besides the OS store.
        ca_file, ca_file, PathBuf);
    setter!(/// Client certificate chain (PEM) for mutual TLS.
        client_cert_file, client_cert_file, PathBuf);
    setter!(/// Client private key (PEM) for mutual TLS.
        client_key_file, client_key_file, PathBuf);
    setter!(/// Proxy URL, e.g. `http://proxy:3128`; default: `HTTPS_PROXY`/`NO_PROXY`.
        proxy, proxy, String);
    setter!(/// Start early refreshes this long before expiry (default 300 s; at most half the lifetime).
        refresh_before, refresh_before, Duration);
    setter!(/// Lifetime assumed when the server gives none and the token is no JWT (default 3600 s).
        default_lifetime, default_lifetime, Duration);
    setter!(/// How long a hard failure (e.g. `invalid_client`) is answered from memory (default 5 s).
        error_cooldown, error_cooldown, Duration);
    setter!(/// TCP/TLS connect timeout (default 10 s).
        connect_timeout, connect_timeout, Duration);
    setter!(/// Deadline for one token fetch, retries included (default 30 s).
        request_timeout, request_timeout, Duration);

    /// The client secret (for `client_secret_post` / `client_secret_basic`).
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(Secret::new(secret));
        self
    }

    /// The authentication method: `client_secret_post` (default), `client_secret_basic`,
    /// `private_key_jwt` or `tls_client_auth`.
    pub fn auth_method(mut self, method: AuthMethod) -> Self {
        self.auth_method = Some(
            match method {
                AuthMethod::ClientSecretPost => "client_secret_post",
                AuthMethod::ClientSecretBasic => "client_secret_basic",
                AuthMethod::PrivateKeyJwt => "private_key_jwt",
                AuthMethod::TlsClientAuth => "tls_client_auth",
            }
            .to_string(),
        );
        self
    }

    /// Add scopes (a string is split on whitespace).
    pub fn scope(mut self, scope: &str) -> Self {
        self.request = self.request.scope(scope);
        self
    }

    /// The `audience` parameter.
    pub fn audience(mut self, audience: &str) -> Self {
        self.request = self.request.audience(audience);
        self
    }

    /// The `resource` parameter.
    pub fn resource(mut self, resource: &str) -> Self {
        self.request = self.request.resource(resource);
        self
    }

    /// An extra form parameter for the token request.
    pub fn extra_param(mut self, name: &str, value: &str) -> Self {
        self.extra_params
            .push((name.to_string(), value.to_string()));
        self
    }

    /// A static header sent with every API request (e.g. `tenant-code`).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// An API origin the token may be sent to (by `send`).
    pub fn api_base_url(mut self, url: &str) -> Self {
        self.api_base_urls.push(url.to_string());
        self
    }

    /// Background (default) or inline early refresh.
    pub fn refresh_mode(mut self, mode: RefreshMode) -> Self {
        self.refresh_mode = Some(match mode {
            RefreshMode::Background => "background".into(),
            RefreshMode::Inline => "inline".into(),
        });
        self
    }

    /// Retry policy for transient token-endpoint failures.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.max_attempts = Some(policy.max_attempts.into());
        self.base_delay = Some(policy.base_delay);
        self.max_delay = Some(policy.max_delay);
        self
    }

    /// Allow plain http — honoured only for loopback hosts (tests, local mocks).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Treat an HTTP 200 GraphQL answer with `errors[].extensions.code == "UNAUTHENTICATED"`
    /// as a 401 in `send`.
    pub fn graphql_auth_errors(mut self, on: bool) -> Self {
        self.graphql_auth_errors = on;
        self
    }

    /// Client-side rate limit for `send`.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some((limit.requests.into(), limit.per));
        self
    }

    /// Largest API response body `send` reads (default 16 MiB).
    pub fn max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = Some(bytes);
        self
    }

    fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    fn apply_json(&mut self, entries: Vec<(String, Box<RawValue>)>) {
        for (key, raw) in entries {
            let k = key.as_str();
            if k == "headers" || k == "extra_params" {
                let pairs = self.json_string_map(k, &raw);
                if k == "headers" {
                    self.headers = pairs;
                } else {
                    self.extra_params = pairs;
                }
                continue;
            }
            let value: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            match k {
                "token_url" => self.token_url = self.json_string(k, &value),
                "issuer" => self.issuer = self.json_string(k, &value),
                "client_id" => self.client_id = self.json_string(k, &value),
                "client_secret" => {
                    self.client_secret = self.json_string(k, &value).map(Secret::new)
                }
                "client_secret_file" => {
                    self.client_secret_file = self.json_string(k, &value).map(PathBuf::from)
                }
                "client_secret_env" => self.client_secret_env = self.json_string(k, &value),
                "auth_method" => self.auth_method = self.json_string(k, &value),
                "private_key_file" => {
                    self.private_key_file = self.json_string(k, &value).map(PathBuf::from)
                }
                "private_key_id" => self.private_key_id = self.json_string(k, &value),
                "scope" => match &value {
                    Value::String(s) => self.request = std::mem::take(&mut self.request).scope(s),
                    Value::Array(items) => {
                        for item in items {
                            match item.as_str() {
                                Some(s) => {
                                    self.request = std::mem::take(&mut self.request).scope(s)
                                }
                                None => self.problem(
                                    "`scope` must be a string or a list of strings".into(),
                                ),
                            }
                        }
                    }
                    Value::Null => {}
                    _ => self.problem("`scope` must be a string or a list of strings".into()),
                },
                "audience" => {
                    if let Some(s) = self.json_string(k, &value) {
                        self.request = std::mem::take(&mut self.request).audience(&s);
                    }
                }
                "resource" => {
                    if let Some(s) = self.json_string(k, &value) {
                        self.request = std::mem::take(&mut self.request).resource(&s);
                    }
                }
                "api_base_urls" => match value {
                    Value::String(s) => self.api_base_urls = vec![s],
                    Value::Array(items) => {
                        for item in items {
                            match item {
                                Value::String(s) => self.api_base_urls.push(s),
                                _ => self.problem(
                                    "`api_base_urls` must be a list of URL strings".into(),
                                ),
                            }
                        }
                    }
                    _ => self.problem("`api_base_urls` must be a list of URL strings".into()),
                },
                "refresh_before_secs" => {
                    self.refresh_before = self.json_u64(k, &value).map(Duration::from_secs)
                }
                "default_lifetime_secs" => {
                    self.default_lifetime = self.json_u64(k, &value).map(Duration::from_secs)
                }
                "error_cooldown_ms" => {
                    self.error_cooldown = self.json_u64(k, &value).map(Duration::from_millis)
                }
                "refresh_mode" => self.refresh_mode = self.json_string(k, &value),
                "timeouts" => {
                    for (sub, v) in self.json_object(k, value, &["connect_ms", "request_ms"]) {
                        let ms = self
                            .json_u64(&format!("timeouts.{sub}"), &v)
                            .map(Duration::from_millis);
                        match sub.as_str() {
                            "connect_ms" => self.connect_timeout = ms,
                            _ => self.request_timeout = ms,
                        }
                    }
                }
                "retry" => {
                    for (sub, v) in self.json_object(
                        k,
                        value,
                        &["max_attempts", "base_delay_ms", "max_delay_ms"],
                    ) {
                        let n = self.json_u64(&format!("retry.{sub}"), &v);
                        match sub.as_str() {
                            "max_attempts" => self.max_attempts = n,
                            "base_delay_ms" => self.base_delay = n.map(Duration::from_millis),
                            _ => self.max_delay = n.map(Duration::from_millis),
                        }
                    }
                }
                "tls" => {
                    for (sub, v) in self.json_object(
                        k,
                        value,
                        &["ca_file", "client_cert_file", "client_key_file"],
                    ) {
                        let path = self
                            .json_string(&format!("tls.{sub}"), &v)
                            .map(PathBuf::from);
                        match sub.as_str() {
                            "ca_file" => self.ca_file = path,
                            "client_cert_file" => self.client_cert_file = path,
                            _ => self.client_key_file = path,
                        }
                    }
                }
                "rate_limit" => {
                    let mut requests = None;
                    let mut per = None;
                    for (sub, v) in self.json_object(k, value, &["requests", "per_ms"]) {
                        let n = self.json_u64(&format!("rate_limit.{sub}"), &v);
                        match sub.as_str() {
                            "requests" => requests = n,
                            _ => per = n.map(Duration::from_millis),
                        }
                    }
                    match (requests, per) {
                        (Some(r), Some(p)) => self.rate_limit = Some((r, p)),
                        _ => self.problem("`rate_limit` needs both `requests` and `per_ms`".into()),
                    }
                }
                "proxy" => self.proxy = self.json_string(k, &value),
                "allow_http" => self.allow_http = self.json_bool(k, &value),
                "graphql_auth_errors" => self.graphql_auth_errors = self.json_bool(k, &value),
                "max_response_bytes" => self.max_response_bytes = self.json_u64(k, &value),
                unknown => {
                    let hint = suggest(unknown, KNOWN_KEYS)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    self.problem(format!("unknown configuration key `{unknown}`{hint}"));
                }
            }
        }
    }

    fn json_string(&mut self, key: &str, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            _ => {
                self.problem(format!("`{key}` must be a string"));
                None
            }
        }
    }

    fn json_u64(&mut self, key: &str, value: &Value) -> Option<u64> {
        match value.as_u64() {
            Some(n) => Some(n),
            None if value.is_null() => None,
            None => {
                self.problem(format!("`{key}` must be a whole number ≥ 0 (got {value})"));
                None
            }
        }
    }

    fn json_bool(&mut self, key: &str, value: &Value) -> bool {
        match value {
            Value::Bool(b) => *b,
            Value::Null => false,
            _ => {
                self.problem(format!("`{key}` must be true or false"));
                false
            }
        }
    }

    /// An object of strings, in document order (header order is what the API receives).
    fn json_string_map(&mut self, key: &str, raw: &RawValue) -> Vec<(String, String)> {
        if raw.get().trim() == "null" {
            return Vec::new();
        }
        let Ok(entries) = ordered_object(raw.get()) else {
            self.problem(format!("`{key}` must be an object of string values"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, v) in entries {
            match serde_json::from_str::<Value>(v.get()) {
                Ok(Value::String(s)) => out.push((name, s)),
                _ => self.problem(format!("`{key}.{name}` must be a string")),
            }
        }
        out
    }

    fn json_object(&mut self, key: &str, value: Value, allowed: &[&str]) -> Vec<(String, Value)> {
        let Value::Object(map) = value else {
            if !value.is_null() {
                self.problem(format!("`{key}` must be an object"));
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        for (sub, v) in map {
            if allowed.contains(&sub.as_str()) {
                out.push((sub, v));
            } else {
                let hint = suggest(&sub, allowed)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                self.problem(format!("unknown configuration key `{key}.{sub}`{hint}"));
            }
        }
        out
    }

    fn apply_env(&mut self, prefix: &str, var: impl Fn(&str) -> Option<String>) {
        let get = |names: &[&str], me: &mut ConfigBuilder| -> Option<String> {
            let mut found: Option<(String, String)> = None;
            for name in names {
                let full = format!("{prefix}{name}");
                if let Some(v) = var(&full).filter(|v| !v.is_empty()) {
                    match &found {
                        Some((other, seen)) if *seen != v => me.problem(format!(
                            "environment variables {other} and {full} disagree; set only one"
                        )),
                        Some(_) => {}
                        None => found = Some((full, v)),
                    }
                }
            }
            found.map(|(_, v)| v)
        };
        self.token_url = get(&["TOKEN_URL", "AUTH_URL"], self);
        self.issuer = get(&["ISSUER"], self);
        self.client_id = get(&["CLIENT_ID"], self);
        self.client_secret = get(&["CLIENT_SECRET"], self).map(Secret::new);
        self.client_secret_file = get(&["CLIENT_SECRET_FILE"], self).map(PathBuf::from);
        self.client_secret_env = get(&["CLIENT_SECRET_ENV"], self);
        self.auth_method = get(&["AUTH_METHOD"], self);
        self.private_key_file = get(&["PRIVATE_KEY_FILE"], self).map(PathBuf::from);
        if let Some(scope) = get(&["SCOPE"], self) {
            self.request = std::mem::take(&mut self.request).scope(&scope);
        }
        if let Some(audience) = get(&["AUDIENCE"], self) {
            self.request = std::mem::take(&mut self.request).audience(&audience);
        }
        if let Some(resource) = get(&["RESOURCE"], self) {
            self.request = std::mem::take(&mut self.request).resource(&resource);
        }
        if let Some(tenant) = get(&["TENANT_CODE"], self) {
            self.headers.push(("tenant-code".into(), tenant));
        }
        // With prefix `API_`, `API_VERSION` and `API_BASE_URL` are the seed-style names.
        if let Some(version) = get(&["API_VERSION", "VERSION"], self) {
            self.headers.push(("api-version".into(), version));
        }
        if let Some(headers) = get(&["HEADERS"], self) {
            for pair in headers.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some((n, v)) => self
                        .headers
                        .push((n.trim().to_string(), v.trim().to_string())),
                    None => {
                        self.problem(format!("{prefix}HEADERS entry `{pair}` is not name=value"))
                    }
                }
            }
        }
        if let Some(url) = get(&["API_BASE_URL", "BASE_URL"], self) {
            self.api_base_urls.push(url);
        }
        self.ca_file = get(&["CA_FILE"], self).map(PathBuf::from);
        if let Some(flag) = get(&["ALLOW_HTTP"], self) {
            match flag.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => self.allow_http = true,
                "0" | "false" | "no" | "off" => self.allow_http = false,
                _ => self.problem(format!(
                    "{prefix}ALLOW_HTTP must be true or false (got `{flag}`)"
                )),
            }
        }
        if self.token_url.is_none() && self.issuer.is_none() && self.client_id.is_none() {
            self.problem(format!(
                "no configuration found in the environment: set {prefix}TOKEN_URL (or {prefix}ISSUER), \
                 {prefix}CLIENT_ID and {prefix}CLIENT_SECRET"
            ));
        }
    }

    /// Validate everything and produce the [`Config`]; one error lists every problem.
    pub fn build(mut self) -> Result<Config> {
        let allow_http = self.allow_http;
        let location = match (self.token_url.take(), self.issuer.take()) {
            (Some(url), None) => self
                .url_ok(&url, "token_url", allow_http)
                .then_some(TokenLocation::Url(url)),
            (None, Some(issuer)) => {
                let issuer = issuer.trim_end_matches('/').to_string();
                self.url_ok(&issuer, "issuer", allow_http)
                    .then_some(TokenLocation::Issuer(issuer))
            }
            (Some(_), Some(_)) => {
                self.problem("set either `token_url` or `issuer`, not both".into());
                None
            }
            (None, None) => {
                self.problem("`token_url` (or `issuer` for discovery) is required".into());
                None
            }
        };
        let client_id = self.client_id.take().unwrap_or_default();
        if client_id.trim().is_empty() {
            self.problem("`client_id` is required".into());
        }
        let auth_method = match self.auth_method.take() {
            None => AuthMethod::ClientSecretPost,
            Some(m) => AuthMethod::parse(&m).unwrap_or_else(|| {
                self.problem(format!(
                    "`auth_method` `{m}` is not one of client_secret_post, client_secret_basic, \
                     private_key_jwt, tls_client_auth"
                ));
                AuthMethod::ClientSecretPost
            }),
        };
        let tls = self.tls_material();
        let credential = self.credential(auth_method, tls.client_cert.is_some());

        for (name, _) in &self.extra_params {
            if RESERVED_PARAMS.contains(&name.as_str()) {
                self.problems.push(format!(
                    "`extra_params.{name}` is set by tokenward itself; use the dedicated key instead"
                ));
            }
        }
        let headers = std::mem::take(&mut self.headers);
        for (i, (name, value)) in headers.iter().enumerate() {
            if !is_header_name(name) {
                self.problem(format!(
                    "header name `{}` is not a valid HTTP token",
                    name.escape_debug()
                ));
            } else if name.eq_ignore_ascii_case("authorization") {
                self.problem("`headers` must not set Authorization; tokenward sets it".into());
            } else if headers[..i]
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                self.problem(format!("header `{name}` is set twice"));
            }
            if !is_header_value(value) {
                self.problem(format!(
                    "header `{}` has a value with CR, LF, NUL or another control character",
                    name.escape_debug()
                ));
            }
        }
        let mut api_origins = Vec::new();
        for url in std::mem::take(&mut self.api_base_urls) {
            match check_url(&url, "api_base_urls entry", allow_http) {
                Ok(origin) => api_origins.push(origin),
                Err(e) => self.problem(e.message().to_string()),
            }
        }
        let refresh_mode = match self.refresh_mode.as_deref() {
            None | Some("background") => RefreshMode::Background,
            Some("inline") => RefreshMode::Inline,
            Some(other) => {
                self.problem(format!(
                    "`refresh_mode` `{other}` is not `background` or `inline`"
                ));
                RefreshMode::Background
            }
        };
        let nonzero =
            |me: &mut ConfigBuilder, d: Option<Duration>, key: &str, default: Duration| match d {
                Some(d) if d.is_zero() => {
                    me.problem(format!("`{key}` must be greater than 0"));
                    default
                }
                Some(d) => d,
                None => default,
            };
        let (self_default_lifetime, self_connect_timeout, self_request_timeout) = (
            self.default_lifetime,
            self.connect_timeout,
            self.request_timeout,
        );
        let default_lifetime = nonzero(
            &mut self,
            self_default_lifetime,
            "default_lifetime_secs",
            Duration::from_secs(3600),
        );
        let connect_timeout = nonzero(
            &mut self,
            self_connect_timeout,
            "timeouts.connect_ms",
            Duration::from_secs(10),
        );
        let request_timeout = nonzero(
            &mut self,
            self_request_timeout,
            "timeouts.request_ms",
            Duration::from_secs(30),
        );
        let max_attempts = match self.max_attempts {
            None => 3,
            Some(n @ 1..=20) => n as u32,
            Some(n) => {
                self.problem(format!(
                    "`retry.max_attempts` must be between 1 and 20 (got {n})"
                ));
                3
            }
        };
        let base_delay = self.base_delay.unwrap_or(Duration::from_millis(250));
        let max_delay = self.max_delay.unwrap_or(Duration::from_secs(10));
        if base_delay > max_delay {
            self.problem("`retry.base_delay_ms` must not exceed `retry.max_delay_ms`".into());
        }
        let rate_limit = match self.rate_limit {
            None => None,
            Some((requests, per))
                if requests == 0 || per.is_zero() || requests > u32::MAX as u64 =>
            {
                self.problem(
                    "`rate_limit.requests` and `rate_limit.per_ms` must be greater than 0".into(),
                );
                None
            }
            Some((requests, per)) => Some(RateLimit {
                requests: requests as u32,
                per,
            }),
        };
        if let Some(proxy) = &self.proxy {
            if let Err(e) = ureq::Proxy::new(proxy) {
                let shown = proxy.split('@').next_back().unwrap_or_default();
                self.problems
                    .push(format!("`proxy` `…{shown}` is not a valid proxy URL: {e}"));
            }
        }
        let max_response_bytes = match self.max_response_bytes {
            Some(0) => {
                self.problem("`max_response_bytes` must be greater than 0".into());
                0
            }
            Some(n) => n,
            None => 16 << 20,
        };
        if !self.problems.is_empty() {
            return Err(Error::config(format!(
                "configuration rejected: {}.",
                self.problems.join("; ")
            )));
        }
        Ok(Config {
            location: location.expect("a missing location is reported as a problem"),
            client_id,
            auth_method,
            credential: credential.expect("a missing credential is reported as a problem"),
            request: self.request,
            extra_params: self.extra_params,
            headers,
            api_origins,
            refresh_before: self.refresh_before.unwrap_or(Duration::from_secs(300)),
            default_lifetime,
            error_cooldown: self.error_cooldown.unwrap_or(Duration::from_secs(5)),
            refresh_mode,
            connect_timeout,
            request_timeout,
            retry: RetryPolicy {
                max_attempts,
                base_delay,
                max_delay,
            },
            tls,
            proxy: self.proxy,
            allow_http,
            graphql_auth_errors: self.graphql_auth_errors,
            rate_limit,
            max_response_bytes,
        })
    }

    fn url_ok(&mut self, url: &str, key: &str, allow_http: bool) -> bool {
        match check_url(url, &format!("`{key}`"), allow_http) {
            Ok(_) => true,
            Err(e) => {
                self.problem(e.message().to_string());
                false
            }
        }
    }

    fn credential(&mut self, method: AuthMethod, has_client_cert: bool) -> Option<Credential> {
        let sources = [
            self.client_secret.is_some(),
            self.client_secret_file.is_some(),
            self.client_secret_env.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        match method {
            AuthMethod::ClientSecretPost | AuthMethod::ClientSecretBasic => {
                if sources > 1 {
                    self.problem(
                        "set only one of `client_secret`, `client_secret_file`, `client_secret_env`".into(),
                    );
                    return None;
                }
                let secret = if let Some(secret) = self.client_secret.take() {
                    secret
                } else if let Some(path) = self.client_secret_file.take() {
                    match read_secret_file(&path) {
                        Ok(s) => s,
                        Err(msg) => {
                            self.problem(msg);
                            return None;
                        }
                    }
                } else if let Some(name) = self.client_secret_env.take() {
                    match std::env::var(&name) {
                        Ok(v) => Secret::new(v),
                        Err(_) => {
                            self.problem(format!(
                                "`client_secret_env` names `{name}`, which is not set (or not UTF-8)"
                            ));
                            return None;
                        }
                    }
                } else {
                    self.problem(
                        "a client secret is required: set `client_secret`, `client_secret_file` or `client_secret_env`"
                            .into(),
                    );
                    return None;
                };
                if secret.is_empty() {
                    self.problem("the client secret is empty".into());
                    return None;
                }
                Some(Credential::Secret(secret))
            }
            AuthMethod::PrivateKeyJwt => {
                if sources > 0 {
                    self.problem(
                        "private_key_jwt uses `private_key_file`, not a client secret".into(),
                    );
                }
                let Some(path) = self.private_key_file.take() else {
                    self.problem("auth_method private_key_jwt needs `private_key_file`".into());
                    return None;
                };
                match SigningKey::from_pem_file(&path, self.private_key_id.take()) {
                    Ok(key) => Some(Credential::Key(std::sync::Arc::new(key))),
                    Err(msg) => {
                        self.problem(msg);
                        None
                    }
                }
            }
            AuthMethod::TlsClientAuth => {
                if sources > 0 {
                    self.problem("tls_client_auth authenticates with the client certificate; remove the client secret".into());
                }
                if !has_client_cert {
                    self.problem("auth_method tls_client_auth needs `tls.client_cert_file` and `tls.client_key_file`".into());
                    return None;
                }
                Some(Credential::Certificate)
            }
        }
    }

    fn tls_material(&mut self) -> TlsMaterial {
        let mut tls = TlsMaterial::default();
        if let Some(path) = self.ca_file.take() {
            match read_pem(&path, "tls.ca_file") {
                Ok(items) => {
                    tls.extra_roots = items
                        .into_iter()
                        .filter_map(|item| match item {
                            ureq::tls::PemItem::Certificate(c) => Some(c),
                            _ => None,
                        })
                        .collect();
                    if tls.extra_roots.is_empty() {
                        self.problem(format!(
                            "`tls.ca_file` {} contains no PEM certificate",
                            path.display()
                        ));
                    }
                }
                Err(msg) => self.problem(msg),
            }
        }
        match (self.client_cert_file.take(), self.client_key_file.take()) {
            (None, None) => {}
            (Some(cert_path), Some(key_path)) => {
                let certs: Vec<_> = match read_pem(&cert_path, "tls.client_cert_file") {
                    Ok(items) => items
                        .into_iter()
                        .filter_map(|i| match i {
                            ureq::tls::PemItem::Certificate(c) => Some(c),
                            _ => None,
                        })
                        .collect(),
                    Err(msg) => {
                        self.problem(msg);
                        return tls;
                    }
                };
                let key = match read_pem(&key_path, "tls.client_key_file") {
                    Ok(items) => items.into_iter().find_map(|i| match i {
                        ureq::tls::PemItem::PrivateKey(k) => Some(k),
                        _ => None,
                    }),
                    Err(msg) => {
                        self.problem(msg);
                        return tls;
                    }
                };
                match (certs.is_empty(), key) {
                    (false, Some(key)) => {
                        tls.client_cert = Some(ureq::tls::ClientCert::new_with_certs(&certs, key))
                    }
                    (true, _) => {
                        self.problem("`tls.client_cert_file` contains no PEM certificate".into())
                    }
                    (_, None) => {
                        self.problem("`tls.client_key_file` contains no PEM private key".into())
                    }
                }
            }
            _ => self.problem(
                "set both `tls.client_cert_file` and `tls.client_key_file`, or neither".into(),
            ),
        }
        tls
    }
}

fn read_secret_file(path: &Path) -> std::result::Result<Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "`client_secret_file` {} cannot be read: {e}",
            path.display()
        )
    })?;
    let secret = Secret::new(text.trim_end_matches(['\r', '\n']));
    drop(zeroize::Zeroizing::new(text));
    Ok(secret)
}

fn read_pem(
    path: &Path,
    key: &str,
) -> std::result::Result<Vec<ureq::tls::PemItem<'static>>, String> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| format!("`{key}` {} cannot be read: {e}", path.display()))?,
    );
    ureq::tls::parse_pem(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("`{key}` {} is not valid PEM: {e}", path.display()))
}

/// The members of a JSON object in document order, values left unparsed.
fn ordered_object(text: &str) -> serde_json::Result<Vec<(String, Box<RawValue>)>> {
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, Box<RawValue>)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = (&mut de).deserialize_map(Entries)?;
    de.end()?;
    Ok(entries)
}

const KNOWN_KEYS: &[&str] = &[
    "token_url",
    "issuer",
    "client_id",
    "client_secret",
    "client_secret_file",
    "client_secret_env",
    "auth_method",
    "private_key_file",
    "private_key_id",
    "scope",
    "audience",
    "resource",
    "extra_params",
    "headers",
    "api_base_urls",
    "refresh_before_secs",
    "default_lifetime_secs",
    "error_cooldown_ms",
    "refresh_mode",
    "timeouts",
    "retry",
    "tls",
    "proxy",
    "allow_http",
    "graphql_auth_errors",
    "rate_limit",
    "max_response_bytes",
];

/// Form parameters tokenward sets itself; `extra_params` may not override them.
const RESERVED_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "audience",
    "resource",
];

/// The known key closest to a typo (edit distance ≤ 2), for "did you mean" hints.
fn suggest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + usize::from(ca != *cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }
    known
        .iter()
        .map(|k| (distance(unknown, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        r#""token_url":"https://idp.example.com/oauth/token","client_id":"c","client_secret":"s""#;

    fn json(extra: &str) -> Result<Config> {
        let sep = if extra.is_empty() { "" } else { "," };
        Config::from_json(&format!("{{{BASE}{sep}{extra}}}"))
    }

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let c = json("").unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(c.refresh_before, Duration::from_secs(300));
        assert_eq!(c.default_lifetime, Duration::from_secs(3600));
        assert_eq!(c.error_cooldown, Duration::from_secs(5));
        assert_eq!(c.refresh_mode, RefreshMode::Background);
        assert_eq!(c.retry.max_attempts, 3);
    }

    #[test]
    fn unknown_key_is_named_with_a_hint() {
        let e =
            Config::from_json(r#"{"token_url":"https://i/t","client_id":"c","client_secert":"s"}"#)
                .unwrap_err();
        assert!(e.message().contains("`client_secert`"), "{e}");
        assert!(e.message().contains("did you mean `client_secret`"), "{e}");
        let e = json(r#""timeouts":{"request":5}"#).unwrap_err();
        assert!(e.message().contains("`timeouts.request`"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_once() {
        let e = Config::from_json(r#"{"refresh_before_secs":-1,"headers":{"x":"a\r\nb"}}"#)
            .unwrap_err();
        let m = e.message();
        assert!(
            m.contains("`refresh_before_secs` must be a whole number"),
            "{m}"
        );
        assert!(m.contains("`token_url`"), "{m}");
        assert!(m.contains("`client_id` is required"), "{m}");
        assert!(m.contains("CR, LF"), "{m}");
    }

    #[test]
    fn scope_string_or_list() {
        let c = json(r#""scope":["a","b a"],"audience":"aud"}"#.trim_end_matches('}')).unwrap();
        assert_eq!(c.request.scope_param().as_deref(), Some("a b"));
        assert_eq!(c.request.audience_param(), Some("aud"));
    }

    #[test]
    fn headers_keep_document_order() {
        let c = json(r#""headers":{"tenant-code":"T1","api-version":"2","X-A":"3"}"#).unwrap();
        let names: Vec<&str> = c.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["tenant-code", "api-version", "X-A"]);
        let e = json(r#""headers":{"x":1}"#).unwrap_err();
        assert!(e.message().contains("`headers.x` must be a string"), "{e}");
        let e = json(r#""headers":[1]"#).unwrap_err();
        assert!(e.message().contains("`headers` must be an object"), "{e}");
    }

    #[test]
    fn header_rules() {
        assert!(json(r#""headers":{"tenant-code":"T1","api-version":"2"}"#).is_ok());
        for bad in [
            r#""headers":{"bad name":"x"}"#,
            r#""headers":{"x":"a\u0000b"}"#,
            r#""headers":{"Authorization":"Basic x"}"#,
        ] {
            assert_eq!(
                json(bad).unwrap_err().kind(),
                crate::ErrorKind::Config,
                "{bad}"
            );
        }
    }

    #[test]
    fn secret_sources_conflict_and_file_is_read() {
        let e = Config::from_json(r#"{"token_url":"https://i/t","client_id":"c","client_secret":"s","client_secret_env":"X"}"#)
            .unwrap_err();
        assert!(e.message().contains("only one of"), "{e}");
        let dir = std::env::temp_dir().join(format!("tw-secret-{}", std::process::id()));
        std::fs::write(&dir, "from-file\n").unwrap();
        let c = Config::builder()
            .token_url("https://i/t")
            .client_id("c")
            .client_secret_file(dir.clone())
            .build()
            .unwrap();
        std::fs::remove_file(&dir).unwrap();
        match &c.credential {
            Credential::Secret(s) => assert_eq!(s.expose(), "from-file"),
            _ => panic!("expected a secret"),
        }
        let e = Config::builder()
            .token_url("https://i/t")
            .client_id("c")
            .build()
            .unwrap_err();
        assert!(e.message().contains("client secret is required"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Config::builder()
            .token_url("https://i/t")
            .client_id("c")
            .client_secret("top-secret-value")
            .build()
            .unwrap();
        assert!(!format!("{c:?}").contains("top-secret-value"));
        let b = Config::builder().client_secret("top-secret-value");
        assert!(!format!("{b:?}").contains("top-secret-value"));
    }

    #[test]
    fn env_with_api_prefix_uses_seed_style_names() {
        let vars = [
            ("API_AUTH_URL", "https://idp.example.com/oauth2/token"),
            ("API_CLIENT_ID", "id"),
            ("API_CLIENT_SECRET", "sec"),
            ("API_SCOPE", "EventsApi other"),
            ("API_BASE_URL", "https://api.example.com"),
            ("API_TENANT_CODE", "T1"),
            ("API_VERSION", "2"),
        ];
        let c = Config::from_vars("API_", |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        assert!(matches!(&c.location, TokenLocation::Url(u) if u.ends_with("/oauth2/token")));
        assert_eq!(c.request.scope_param().as_deref(), Some("EventsApi other"));
        assert_eq!(c.api_origins[0].host, "api.example.com");
        assert_eq!(
            c.headers,
            vec![
                ("tenant-code".to_string(), "T1".to_string()),
                ("api-version".to_string(), "2".to_string())
            ]
        );
        let e = Config::from_vars("NOPE_", |_| None).unwrap_err();
        assert!(e.message().contains("NOPE_TOKEN_URL"), "{e}");
    }

    #[test]
    fn reserved_extra_params_are_refused() {
        let e = json(r#""extra_params":{"grant_type":"password"}"#).unwrap_err();
        assert!(e.message().contains("extra_params.grant_type"), "{e}");
        assert!(json(r#""extra_params":{"tenant":"x"}"#).is_ok());
    }
}
