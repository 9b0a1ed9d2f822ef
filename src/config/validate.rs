//! [`ConfigBuilder::build`]: every check, once; one error lists every problem.

use std::time::Duration;

use super::hints::RESERVED_PARAMS;
use super::{
    AuthMethod, Config, ConfigBuilder, RateLimit, RefreshMode, RetryPolicy, TokenLocation,
};
use crate::error::{Error, Result};
use crate::http::{check_proxy, check_url, is_header_name, is_header_value, TlsMaterial};

impl ConfigBuilder {
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
        let auth_method = self.auth_method.unwrap_or(AuthMethod::ClientSecretPost);
        // The files are read here only to report problems now; the transport reads them
        // again when a client is built.
        let tls = std::mem::take(&mut self.tls);
        let has_client_cert = match TlsMaterial::load(&tls) {
            Ok(material) => material.client_cert.is_some(),
            Err(problems) => {
                self.problems.extend(problems);
                tls.client_cert_file.is_some() && tls.client_key_file.is_some()
            }
        };
        let credential = self.credential(auth_method, has_client_cert);

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
        let refresh_mode = self.refresh_mode.unwrap_or(RefreshMode::Background);
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
        let defaults = RetryPolicy::default();
        let base_delay = self.base_delay.unwrap_or(defaults.base_delay);
        let max_delay = self.max_delay.unwrap_or(defaults.max_delay);
        let max_retry_after = self.max_retry_after.unwrap_or(defaults.max_retry_after);
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
            if let Err(e) = check_proxy(proxy) {
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
                max_retry_after,
            },
            tls,
            proxy: self.proxy,
            allow_http,
            graphql_auth_errors: self.graphql_auth_errors,
            rate_limit,
            max_response_bytes,
            warnings: self.warnings,
            sources: self.sources,
            environment: self.environment,
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
}
