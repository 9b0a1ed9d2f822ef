//! [`ConfigBuilder`]: records settings; `validate` turns them into a [`Config`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::sources::Sources;
#[cfg(doc)]
use super::Config;
use super::{AuthMethod, RateLimit, RefreshMode, RetryPolicy};
use crate::http::TlsFiles;
use crate::oauth::TokenRequest;
use crate::secret::Secret;

/// Builds a [`Config`]; every setter records, [`ConfigBuilder::build`] validates.
#[derive(Default)]
pub struct ConfigBuilder {
    pub(super) token_url: Option<String>,
    pub(super) issuer: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<Secret>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) client_secret_env: Option<String>,
    pub(super) auth_method: Option<AuthMethod>,
    pub(super) private_key_file: Option<PathBuf>,
    pub(super) private_key_id: Option<String>,
    pub(super) request: TokenRequest,
    pub(super) extra_params: Vec<(String, String)>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) api_base_urls: Vec<String>,
    pub(super) refresh_before: Option<Duration>,
    pub(super) default_lifetime: Option<Duration>,
    pub(super) error_cooldown: Option<Duration>,
    pub(super) refresh_mode: Option<RefreshMode>,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) request_timeout: Option<Duration>,
    pub(super) max_attempts: Option<u64>,
    pub(super) base_delay: Option<Duration>,
    pub(super) max_delay: Option<Duration>,
    pub(super) max_retry_after: Option<Duration>,
    pub(super) tls: TlsFiles,
    pub(super) proxy: Option<String>,
    pub(super) allow_http: bool,
    pub(super) graphql_auth_errors: bool,
    pub(super) rate_limit: Option<(u64, Duration)>,
    pub(super) max_response_bytes: Option<u64>,
    pub(super) problems: Vec<String>,
    /// Things worth telling the user that do not stop the configuration.
    pub(super) warnings: Vec<String>,
    /// Where the text sources read each key (see `sources`).
    pub(super) sources: Sources,
    /// The named environment chosen (see `environments`).
    pub(super) environment: Option<String>,
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
        self.auth_method = Some(method);
        self
    }

    /// An extra CA certificate file (PEM) trusted besides the OS store.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Client certificate chain (PEM) for mutual TLS.
    pub fn client_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.client_cert_file = Some(path.into());
        self
    }

    /// Client private key (PEM) for mutual TLS.
    pub fn client_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.client_key_file = Some(path.into());
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
        self.refresh_mode = Some(mode);
        self
    }

    /// Retry policy for transient failures (start from `RetryPolicy::default()`).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.max_attempts = Some(policy.max_attempts.into());
        self.base_delay = Some(policy.base_delay);
        self.max_delay = Some(policy.max_delay);
        self.max_retry_after = Some(policy.max_retry_after);
        self
    }

    /// The longest a transient failure is remembered, whatever the server's `Retry-After`
    /// asks (default 120 s): one `Retry-After: 86400` cannot lock the client out for a day.
    pub fn max_retry_after(mut self, limit: Duration) -> Self {
        self.max_retry_after = Some(limit);
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

    pub(super) fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    /// `auth_method` as the text sources spell it.
    pub(super) fn auth_method_text(&mut self, text: &str) {
        match AuthMethod::parse(text) {
            Some(method) => self.auth_method = Some(method),
            None => self.problem(format!(
                "`auth_method` `{text}` is not one of client_secret_post, client_secret_basic, \
                 private_key_jwt, tls_client_auth"
            )),
        }
    }

    /// `refresh_mode` as the text sources spell it.
    pub(super) fn refresh_mode_text(&mut self, text: &str) {
        match text {
            "background" => self.refresh_mode = Some(RefreshMode::Background),
            "inline" => self.refresh_mode = Some(RefreshMode::Inline),
            other => self.problem(format!(
                "`refresh_mode` `{other}` is not `background` or `inline`"
            )),
        }
    }
}
