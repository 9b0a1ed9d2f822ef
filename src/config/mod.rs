//! Configuration: one schema from a builder, JSON or the environment, validated once.
//! Every problem is reported in one message that names the key.
//!
//! - this file: the validated [`Config`] and the public policy types;
//! - `builder`: [`ConfigBuilder`] and its setters;
//! - `json`, `env`: the two text sources, feeding the same builder;
//! - `validate`: [`ConfigBuilder::build`], the one place a configuration is checked;
//! - `files`: the credential (secret or signing key) read at build time; TLS files are
//!   checked there too, but only their paths are kept (the transport loads them);
//! - `hints`: the key list and "did you mean" suggestions.

#![forbid(unsafe_code)]

mod builder;
mod env;
mod environments;
mod files;
mod hints;
mod json;
pub(crate) mod sources;
#[cfg(test)]
mod tests;
mod validate;

pub use crate::http::retry::RetryPolicy;
pub use crate::oauth::credential::AuthMethod;
pub use builder::ConfigBuilder;

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{Origin, TlsFiles};
use crate::oauth::TokenRequest;
pub(crate) use crate::oauth::{Credential, TokenLocation};
use sources::Sources;

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
    /// Where each key was read, for diagnosis.
    pub(crate) sources: Sources,
    pub(crate) environment: Option<String>,
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

    /// Parse and validate a JSON configuration (the keys are listed in the README). Unknown keys are
    /// an error, so a typo such as `client_secert` is never silently ignored.
    ///
    /// A configuration with `environments` is merged with the one named by its `environment`
    /// key, else by the `TOKENWARD_ENVIRONMENT` variable (with neither, the base alone is
    /// used); a name that is not defined is an error listing the defined ones.
    pub fn from_json(text: &str) -> Result<Config> {
        Config::from_json_with(text, "TOKENWARD_", &|name| std::env::var(name).ok())
    }

    /// [`Config::from_json`] on the contents of a file. Errors: [`crate::ErrorKind::Config`]
    /// when the file cannot be read, or for what is wrong inside it.
    pub fn from_json_file(path: impl AsRef<std::path::Path>) -> Result<Config> {
        let path = path.as_ref();
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!(
                "configuration rejected: the file {} cannot be read: {e}.",
                path.display()
            ))
        })?);
        Config::from_json(&text)
    }

    pub(crate) fn from_json_with(
        text: &str,
        prefix: &str,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config> {
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
        let selected = environments::select_json(entries, var(&format!("{prefix}ENVIRONMENT")))
            .map_err(|problem| Error::config(format!("configuration rejected: {problem}.")))?;
        let mut b = ConfigBuilder::default();
        b.apply_json(selected.entries);
        b.note_environment(selected.name, &selected.overridden);
        b.build()
    }

    /// Read the configuration from environment variables named `{prefix}TOKEN_URL`,
    /// `{prefix}CLIENT_ID`, ... (`prefix` defaults to `TOKENWARD_`; `API_` makes the
    /// common `API_CLIENT_ID` / `API_BASE_URL` names work, and with it a bare `AUTH_URL`
    /// is read when neither `API_TOKEN_URL` nor `API_AUTH_URL` is set).
    ///
    /// `{prefix}ENVIRONMENT=<name>` chooses a named environment: each `{prefix}<NAME>_<VAR>`
    /// then takes precedence over `{prefix}<VAR>` (e.g. `TOKENWARD_SANDBOX_TOKEN_URL`); a
    /// name for which no such variable is set is an error listing the names that have some.
    pub fn from_env(prefix: Option<&str>) -> Result<Config> {
        let names = || {
            std::env::vars_os()
                .filter_map(|(k, _)| k.into_string().ok())
                .collect()
        };
        Config::from_vars_listed(
            prefix.unwrap_or("TOKENWARD_"),
            &|name| std::env::var(name).ok(),
            &names,
        )
    }

    #[cfg(test)]
    pub(crate) fn from_vars(prefix: &str, var: impl Fn(&str) -> Option<String>) -> Result<Config> {
        Config::from_vars_listed(prefix, &var, &Vec::new)
    }

    /// [`Config::from_env`] over any variables: `var` looks one up, `names` lists them all.
    pub(crate) fn from_vars_listed(
        prefix: &str,
        var: &dyn Fn(&str) -> Option<String>,
        names: &dyn Fn() -> Vec<String>,
    ) -> Result<Config> {
        let mut b = ConfigBuilder::default();
        b.apply_env(prefix, var, names);
        b.build()
    }

    /// Where `key` (e.g. `"token_url"`, `"tls.ca_file"`, `"headers.tenant-code"`) was read:
    /// `"JSON"`, `"JSON environments.<name>"` or `"$<VARIABLE>"`; `None` when it was set in
    /// code or left at its default.
    pub fn source_of(&self, key: &str) -> Option<String> {
        self.sources.get(key).map(ToString::to_string)
    }

    /// The named environment this configuration was chosen from, if any.
    pub fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
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
