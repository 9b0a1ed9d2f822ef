//! Configuration: one schema from a builder, JSON or the environment, validated once.
//! Every problem is reported in one message that names the key.
//!
//! - this file: the validated [`Config`] and the public policy types;
//! - `builder`: [`ConfigBuilder`] and its setters;
//! - `json`, `env`: the two text sources, feeding the same builder;
//! - `validate`: [`ConfigBuilder::build`], the one place a configuration is checked;
//! - `files`: the credential (secret or signing key) read at build time; TLS files are
//!   checked there too, but only their paths are kept (the transport loads them);
//! - `dpop`: the DPoP key (read from a file at build time, or generated per client);
//! - `hints`: the key list and "did you mean" suggestions.

#![forbid(unsafe_code)]

mod builder;
mod dpop;
mod env;
mod files;
mod hints;
mod json;
#[cfg(test)]
mod tests;
mod validate;

pub use crate::http::retry::RetryPolicy;
pub use crate::oauth::credential::AuthMethod;
pub use crate::oauth::dpop::DpopAlg;
pub use builder::ConfigBuilder;
pub(crate) use dpop::DpopSetting;

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{Origin, TlsFiles};
use crate::oauth::TokenRequest;
pub(crate) use crate::oauth::{Credential, TokenLocation};

/// Who performs the early refresh when a token enters its refresh window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// A short-lived library thread refreshes while callers keep the current token (default).
    Background,
    /// The caller that notices refreshes inline, for hosts that forbid library threads.
    Inline,
}

/// A client-side rate limit for `send`: at most `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window (the bucket size).
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

/// A validated configuration. Build one with [`Config::builder`], [`Config::from_json`] or
/// [`Config::from_env`]; once built it is never re-validated.
#[derive(Clone)]
pub struct Config {
    pub(crate) location: TokenLocation,
    pub(crate) client_id: String,
    pub(crate) auth_method: AuthMethod,
    pub(crate) credential: Credential,
    /// DPoP (RFC 9449): the key that proves possession of bound tokens, when configured.
    pub(crate) dpop: Option<DpopSetting>,
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
    pub(crate) tls: TlsFiles,
    pub(crate) proxy: Option<String>,
    pub(crate) allow_http: bool,
    pub(crate) graphql_auth_errors: bool,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) max_response_bytes: u64,
    /// Delivered once, as `Warning` events, to the first event hook of a client built from
    /// this configuration.
    pub(crate) warnings: Vec<String>,
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
            .field("dpop", &self.dpop)
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

    /// Parse and validate a JSON configuration (the keys are listed in the README). Unknown keys are
    /// an error, so a typo such as `client_secert` is never silently ignored.
    pub fn from_json(text: &str) -> Result<Config> {
        let entries = match serde_json::from_str::<Value>(text) {
            Err(e) => {
                return Err(Error::config(format!(
                    "configuration is not valid JSON: {e}"
                )))
            }
            Ok(Value::Object(_)) => json::ordered_object(text)
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
