//! The configuration check: every key in effect with its value (secrets redacted) and where
//! it came from, and the mistakes a valid configuration can still hide.

use super::Check;
use crate::config::sources::KeySource;
use crate::config::{Config, RefreshMode, TokenLocation};
use crate::error::{Error, ErrorKind};
use crate::oauth::Credential;
use crate::AuthMethod;

const REDACTED: &str = "********";

/// The `config` check of a configuration that was built.
pub(super) fn report(config: &Config) -> Check {
    let mut lines = Vec::new();
    let mut line = |key: &str, value: String, default: bool| {
        let origin = match config.sources.get(key) {
            Some(source) => source.to_string(),
            None if default => "default".to_string(),
            None => "set in code".to_string(),
        };
        lines.push(format!("{key} = {value}  ({origin})"));
    };
    if let Some(name) = &config.environment {
        line("environment", name.clone(), false);
    }
    let endpoint = match &config.location {
        TokenLocation::Url(url) => {
            line("token_url", url.clone(), false);
            url.clone()
        }
        TokenLocation::Issuer(issuer) => {
            line("issuer", issuer.clone(), false);
            format!("{issuer} (discovery)")
        }
    };
    line("client_id", config.client_id.clone(), false);
    line(
        "auth_method",
        auth_method_name(config.auth_method).into(),
        config.auth_method == AuthMethod::ClientSecretPost,
    );
    let mut problems: Vec<(String, String)> = Vec::new();
    match &config.credential {
        Credential::Secret(secret) => {
            let key = ["client_secret_file", "client_secret_env", "client_secret"]
                .into_iter()
                .find(|k| config.sources.get(k).is_some())
                .unwrap_or("client_secret");
            line(key, format!("{REDACTED} (secret)"), false);
            let text = secret.expose();
            if text.trim() != text {
                problems.push((
                    "the client secret starts or ends with whitespace (a stray space or \\r from an editor or a .env file)".into(),
                    format!("remove the whitespace around the value of `{key}`"),
                ));
            }
            let quoted = |q: char| text.len() >= 2 && text.starts_with(q) && text.ends_with(q);
            if quoted('"') || quoted('\'') {
                problems.push((
                    "the client secret is wrapped in quotes, which are then sent as part of it".into(),
                    format!("remove the quotes around the value of `{key}` (a .env file or a JSON string needs none)"),
                ));
            }
        }
        Credential::Key(_) => line(
            "private_key_file",
            "(a private key, read at start)".into(),
            false,
        ),
        Credential::Certificate => line(
            "tls.client_cert_file",
            "(client certificate, read at start)".into(),
            false,
        ),
    }
    let request = &config.request;
    if let Some(scope) = request.scope_param() {
        line("scope", scope, false);
    }
    if let Some(audience) = request.audience_param() {
        line("audience", audience.into(), false);
    }
    if let Some(resource) = request.resource_param() {
        line("resource", resource.into(), false);
    }
    for (name, value) in &config.extra_params {
        line(&format!("extra_params.{name}"), value.clone(), false);
    }
    for (name, value) in &config.headers {
        let shown = if looks_secret(name) {
            REDACTED.to_string()
        } else {
            value.clone()
        };
        line(&format!("headers.{name}"), shown, false);
    }
    if !config.api_origins.is_empty() {
        let origins: Vec<String> = config.api_origins.iter().map(ToString::to_string).collect();
        line("api_base_urls", origins.join(", "), false);
    }
    line(
        "refresh_before_secs",
        config.refresh_before.as_secs().to_string(),
        config.refresh_before.as_secs() == 300,
    );
    line(
        "refresh_mode",
        match config.refresh_mode {
            RefreshMode::Background => "background",
            RefreshMode::Inline => "inline",
        }
        .into(),
        config.refresh_mode == RefreshMode::Background,
    );
    line(
        "timeouts.connect_ms",
        config.connect_timeout.as_millis().to_string(),
        config.connect_timeout.as_secs() == 10,
    );
    line(
        "timeouts.request_ms",
        config.request_timeout.as_millis().to_string(),
        config.request_timeout.as_secs() == 30,
    );
    line(
        "retry.max_attempts",
        config.retry.max_attempts.to_string(),
        config.retry.max_attempts == 3,
    );
    for (key, path) in [
        ("tls.ca_file", &config.tls.ca_file),
        ("tls.client_cert_file", &config.tls.client_cert_file),
        ("tls.client_key_file", &config.tls.client_key_file),
    ] {
        if let Some(path) = path {
            line(key, path.display().to_string(), false);
        }
    }
    if let Some(proxy) = &config.proxy {
        line("proxy", redact_userinfo(proxy), false);
    }
    if config.allow_http {
        line(
            "allow_http",
            "true (plain http to loopback hosts only)".into(),
            false,
        );
    }

    if let TokenLocation::Url(url) = &config.location {
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("");
        if path.is_empty() || path == "/" {
            problems.push((
                format!("`token_url` {url} has no path; a token endpoint has one (`/oauth2/token`, `/oauth/token`, `/connect/token`, …)"),
                "use the full token endpoint URL from the provider's documentation or its discovery document".into(),
            ));
        } else if path.contains("/.well-known/") {
            problems.push((
                format!("`token_url` {url} is a discovery document, not the token endpoint"),
                "set `issuer` to the part before `/.well-known/` instead of `token_url`".into(),
            ));
        } else if path.trim_end_matches('/').ends_with("/authorize") {
            problems.push((
                format!("`token_url` {url} is an authorization endpoint; client credentials use the token endpoint"),
                "use the provider's token endpoint (often the same path ending in `/token`)".into(),
            ));
        }
    }

    let summary = format!(
        "{} keys; token endpoint {endpoint}; client `{}`{}",
        lines.len(),
        config.client_id,
        config
            .environment
            .as_ref()
            .map(|e| format!("; environment `{e}`"))
            .unwrap_or_default()
    );
    let check = if problems.is_empty() {
        Check::pass("config", summary)
    } else {
        let (causes, fixes): (Vec<String>, Vec<String>) = problems.into_iter().unzip();
        Check::warn("config", summary, causes.join("; "), fixes.join("; "))
    };
    lines.into_iter().fold(check, Check::detail)
}

/// The `config` check when no configuration could be built: every problem on its own line.
pub(super) fn rejected(error: &Error) -> Check {
    let message = error.message();
    let body = message
        .strip_prefix("configuration rejected: ")
        .unwrap_or(message)
        .trim_end_matches('.');
    let problems: Vec<&str> = body.split("; ").collect();
    let kind = if error.kind() == ErrorKind::Config {
        ErrorKind::Config
    } else {
        error.kind()
    };
    let check = Check::fail(
        "config",
        kind,
        format!(
            "configuration rejected ({} problem{})",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ),
        "the configuration could not be built; each problem names its key (listed above)",
        "correct the keys named above (unknown keys are refused, so a typo cannot pass unnoticed)",
    );
    problems.into_iter().fold(check, Check::detail)
}

/// How the user sets `key` where their configuration comes from: the variable (`var` after
/// the prefix) for a configuration read from the environment, else the JSON key.
pub(super) fn how_to_set(config: &Config, key: &str, var: &str) -> String {
    match config.sources.get("client_id") {
        Some(KeySource::Var(name)) => match name.strip_suffix("CLIENT_ID") {
            Some(prefix) => format!("`{prefix}{var}`"),
            None => format!("`{key}`"),
        },
        _ => format!("`{key}`"),
    }
}

pub(super) fn auth_method_name(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::ClientSecretPost => "client_secret_post",
        AuthMethod::ClientSecretBasic => "client_secret_basic",
        AuthMethod::PrivateKeyJwt => "private_key_jwt",
        AuthMethod::TlsClientAuth => "tls_client_auth",
    }
}

/// Header names whose values are credentials of their own (API keys and the like).
fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "secret",
        "token",
        "password",
        "auth",
        "cookie",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// A URL with its `user:password@` replaced by `***@`.
pub(super) fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::from_json(&format!(
            r#"{{"token_url":"https://idp.example.com/oauth2/token","client_id":"svc","client_secret":"s3cr3t-value"{extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn every_key_has_a_source_and_no_secret_is_shown() {
        let check = report(&config(
            r#","headers":{"tenant-code":"T1","x-api-key":"k-123456"}"#,
        ));
        assert_eq!(check.status(), super::super::CheckStatus::Pass, "{check}");
        let text = check.to_string();
        assert!(
            !text.contains("s3cr3t-value") && !text.contains("k-123456"),
            "{text}"
        );
        assert!(
            text.contains("token_url = https://idp.example.com/oauth2/token  (JSON)"),
            "{text}"
        );
        assert!(
            text.contains("client_secret = ******** (secret)  (JSON)"),
            "{text}"
        );
        assert!(text.contains("headers.tenant-code = T1  (JSON)"), "{text}");
        assert!(
            text.contains("headers.x-api-key = ********  (JSON)"),
            "{text}"
        );
        assert!(
            text.contains("refresh_before_secs = 300  (default)"),
            "{text}"
        );
    }

    #[test]
    fn quoted_or_padded_secrets_and_odd_token_urls_are_warned_about() {
        let check = report(&config(r#","client_secret":"\"s3cr3t\"""#));
        assert_eq!(check.status(), super::super::CheckStatus::Warn);
        assert!(
            check.cause().unwrap().contains("wrapped in quotes"),
            "{check}"
        );
        assert!(!check.to_string().contains("s3cr3t"));
        let check = report(&config(r#","client_secret":"s3cr3t\r""#));
        assert!(check.cause().unwrap().contains("whitespace"), "{check}");
        for (url, expect) in [
            ("https://x.auth.eu-west-1.amazoncognito.com", "has no path"),
            (
                "https://idp/.well-known/openid-configuration",
                "discovery document",
            ),
            ("https://idp/oauth2/authorize", "authorization endpoint"),
        ] {
            let c = Config::from_json(&format!(
                r#"{{"token_url":"{url}","client_id":"c","client_secret":"s"}}"#
            ))
            .unwrap();
            let check = report(&c);
            assert!(check.cause().unwrap().contains(expect), "{url}: {check}");
        }
    }

    #[test]
    fn a_rejected_configuration_lists_each_problem() {
        let e = Config::from_json(r#"{"client_secert":"x"}"#).unwrap_err();
        let check = rejected(&e);
        assert_eq!(check.error_kind(), Some(ErrorKind::Config));
        assert!(check
            .details()
            .iter()
            .any(|l| l.contains("did you mean `client_secret`")));
        assert!(check
            .details()
            .iter()
            .any(|l| l.contains("`client_id` is required")));
        assert!(check.summary().starts_with("configuration rejected ("));
    }

    #[test]
    fn proxy_credentials_are_redacted() {
        assert_eq!(
            redact_userinfo("http://u:p@proxy:3128/x"),
            "http://***@proxy:3128/x"
        );
        assert_eq!(redact_userinfo("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(redact_userinfo("proxy:3128"), "proxy:3128");
    }
}
