//! Where each configuration key came from — the JSON document, one of its named
//! environments, or an environment variable — so a diagnosis can say why a value is what it
//! is. Keys with no recorded source were set in code or left at their default.

use std::fmt;

/// The origin of one configuration key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// The base of a JSON configuration.
    Json,
    /// `environments.<name>` of a JSON configuration, merged over the base.
    Environment(String),
    /// An environment variable (its full name).
    Var(String),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Json => f.write_str("JSON"),
            KeySource::Environment(name) => write!(f, "JSON environments.{name}"),
            KeySource::Var(name) => write!(f, "${name}"),
        }
    }
}

/// Configuration key → source, in the order the keys were read. A key read twice (e.g. a
/// named environment overriding the base) keeps its last source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sources(Vec<(String, KeySource)>);

impl Sources {
    pub(crate) fn record(&mut self, key: &str, source: KeySource) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = source,
            None => self.0.push((key.to_string(), source)),
        }
    }

    /// The source of `key`; a sub-key such as `tls.ca_file` falls back to its parent
    /// (`tls`) when only the parent was recorded.
    pub(crate) fn get(&self, key: &str) -> Option<&KeySource> {
        let find = |k: &str| self.0.iter().find(|(have, _)| have == k).map(|(_, s)| s);
        find(key).or_else(|| find(key.split('.').next().unwrap_or(key)))
    }
}

/// The configuration key an environment variable name (without prefix) sets.
pub(crate) fn key_of_var(name: &str) -> &'static str {
    match name {
        "TOKEN_URL" | "AUTH_URL" => "token_url",
        "ISSUER" => "issuer",
        "CLIENT_ID" => "client_id",
        "CLIENT_SECRET" => "client_secret",
        "CLIENT_SECRET_FILE" => "client_secret_file",
        "CLIENT_SECRET_ENV" => "client_secret_env",
        "AUTH_METHOD" => "auth_method",
        "PRIVATE_KEY_FILE" => "private_key_file",
        "SCOPE" => "scope",
        "AUDIENCE" => "audience",
        "RESOURCE" => "resource",
        "TENANT_CODE" => "headers.tenant-code",
        "API_VERSION" | "VERSION" => "headers.api-version",
        "HEADERS" => "headers",
        "API_BASE_URL" | "BASE_URL" => "api_base_urls",
        "CA_FILE" => "tls.ca_file",
        "ALLOW_HTTP" => "allow_http",
        "ENVIRONMENT" => "environment",
        _ => "",
    }
}

/// Every variable name (without prefix) the environment source reads.
pub(crate) const VAR_NAMES: &[&str] = &[
    "TOKEN_URL",
    "AUTH_URL",
    "ISSUER",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CLIENT_SECRET_FILE",
    "CLIENT_SECRET_ENV",
    "AUTH_METHOD",
    "PRIVATE_KEY_FILE",
    "SCOPE",
    "AUDIENCE",
    "RESOURCE",
    "TENANT_CODE",
    "API_VERSION",
    "VERSION",
    "HEADERS",
    "API_BASE_URL",
    "BASE_URL",
    "CA_FILE",
    "ALLOW_HTTP",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_source_wins_and_sub_keys_fall_back_to_their_parent() {
        let mut s = Sources::default();
        s.record("token_url", KeySource::Json);
        s.record("tls", KeySource::Json);
        s.record("token_url", KeySource::Environment("staging".into()));
        assert_eq!(
            s.get("token_url"),
            Some(&KeySource::Environment("staging".into()))
        );
        assert_eq!(s.get("tls.ca_file"), Some(&KeySource::Json));
        assert_eq!(s.get("scope"), None);
        assert_eq!(
            KeySource::Var("API_CLIENT_ID".into()).to_string(),
            "$API_CLIENT_ID"
        );
    }

    #[test]
    fn every_variable_sets_a_key() {
        for name in VAR_NAMES {
            assert!(!key_of_var(name).is_empty(), "{name}");
        }
    }
}
