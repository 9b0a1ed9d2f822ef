//! The JSON source: keys applied to the builder in document order, each value type-checked
//! with a message naming its key.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::hints::{suggest, KNOWN_KEYS};
use super::sources::KeySource;
use super::ConfigBuilder;
use crate::secret::Secret;

impl ConfigBuilder {
    pub(super) fn apply_json(&mut self, entries: Vec<(String, Box<RawValue>)>) {
        for (key, raw) in entries {
            let k = key.as_str();
            self.sources.record(k, KeySource::Json);
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
                "auth_method" => {
                    if let Some(text) = self.json_string(k, &value) {
                        self.auth_method_text(&text);
                    }
                }
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
                "refresh_mode" => {
                    if let Some(text) = self.json_string(k, &value) {
                        self.refresh_mode_text(&text);
                    }
                }
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
                        &[
                            "max_attempts",
                            "base_delay_ms",
                            "max_delay_ms",
                            "max_retry_after_ms",
                        ],
                    ) {
                        let n = self.json_u64(&format!("retry.{sub}"), &v);
                        match sub.as_str() {
                            "max_attempts" => self.max_attempts = n,
                            "base_delay_ms" => self.base_delay = n.map(Duration::from_millis),
                            "max_delay_ms" => self.max_delay = n.map(Duration::from_millis),
                            _ => self.max_retry_after = n.map(Duration::from_millis),
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
                            "ca_file" => self.tls.ca_file = path,
                            "client_cert_file" => self.tls.client_cert_file = path,
                            _ => self.tls.client_key_file = path,
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

    pub(super) fn json_string(&mut self, key: &str, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            _ => {
                self.problem(format!("`{key}` must be a string"));
                None
            }
        }
    }

    pub(super) fn json_u64(&mut self, key: &str, value: &Value) -> Option<u64> {
        match value.as_u64() {
            Some(n) => Some(n),
            None if value.is_null() => None,
            None => {
                self.problem(format!("`{key}` must be a whole number ≥ 0 (got {value})"));
                None
            }
        }
    }

    pub(super) fn json_bool(&mut self, key: &str, value: &Value) -> bool {
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
    pub(super) fn json_string_map(&mut self, key: &str, raw: &RawValue) -> Vec<(String, String)> {
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

    pub(super) fn json_object(
        &mut self,
        key: &str,
        value: Value,
        allowed: &[&str],
    ) -> Vec<(String, Value)> {
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
}

/// The members of a JSON object in document order, values left unparsed.
pub(super) fn ordered_object(text: &str) -> serde_json::Result<Vec<(String, Box<RawValue>)>> {
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
