//! The environment source: `{prefix}TOKEN_URL`, `{prefix}CLIENT_ID`, … applied to the builder.

use std::path::PathBuf;
use std::time::Duration;

use super::environments::EnvOverlay;
use super::sources::{key_of_var, KeySource};
use super::ConfigBuilder;
use crate::secret::Secret;

impl ConfigBuilder {
    pub(super) fn apply_env(
        &mut self,
        prefix: &str,
        var: &dyn Fn(&str) -> Option<String>,
        names: &dyn Fn() -> Vec<String>,
    ) {
        let overlay = match EnvOverlay::new(prefix, var, names) {
            Ok(overlay) => overlay,
            Err(problem) => {
                self.problem(problem);
                EnvOverlay {
                    specific: None,
                    name: None,
                }
            }
        };
        if let Some(name) = &overlay.name {
            self.sources.record(
                "environment",
                KeySource::Var(format!("{prefix}ENVIRONMENT")),
            );
            self.environment = Some(name.clone());
        }
        // The chosen environment's variables first; the base ones only if it sets none.
        let layers: Vec<&str> = overlay
            .specific
            .iter()
            .map(String::as_str)
            .chain([prefix])
            .collect();
        let get = |names: &[&str], me: &mut ConfigBuilder| -> Option<String> {
            for layer in &layers {
                let mut found: Option<(String, String)> = None;
                for name in names {
                    let full = format!("{layer}{name}");
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
                if let Some((full, v)) = found {
                    me.sources
                        .record(key_of_var(names[0]), KeySource::Var(full));
                    return Some(v);
                }
            }
            None
        };
        self.token_url = get(&["TOKEN_URL", "AUTH_URL"], self);
        self.issuer = get(&["ISSUER"], self);
        // The Cognito-style `.env` names the token endpoint `AUTH_URL`, without the prefix.
        if prefix == "API_" && self.token_url.is_none() && self.issuer.is_none() {
            self.token_url = var("AUTH_URL").filter(|v| !v.is_empty());
            if self.token_url.is_some() {
                self.sources
                    .record("token_url", KeySource::Var("AUTH_URL".into()));
            }
        }
        self.client_id = get(&["CLIENT_ID"], self);
        self.client_secret = get(&["CLIENT_SECRET"], self).map(Secret::new);
        self.client_secret_file = get(&["CLIENT_SECRET_FILE"], self).map(PathBuf::from);
        self.client_secret_env = get(&["CLIENT_SECRET_ENV"], self);
        if let Some(method) = get(&["AUTH_METHOD"], self) {
            self.auth_method_text(&method);
        }
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
        self.tls.ca_file = get(&["CA_FILE"], self).map(PathBuf::from);
        if let Some(ms) = get(&["MAX_RETRY_AFTER_MS"], self) {
            match ms.trim().parse::<u64>() {
                Ok(ms) => self.max_retry_after = Some(Duration::from_millis(ms)),
                Err(_) => self.problem(format!(
                    "{prefix}MAX_RETRY_AFTER_MS must be a whole number of milliseconds (got `{ms}`)"
                )),
            }
        }
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
}
