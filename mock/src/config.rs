//! The mock's run-time settings (`POST /admin/config`): how tokens look and what is checked.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::jose::PublicKey;

/// How `expires_in` is rendered in token responses; the odd shapes are what real (or badly
/// proxied) identity providers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresIn {
    /// `3600`
    Number,
    /// `"3600"`
    String,
    /// `3600.0`
    Float,
    /// omitted
    Missing,
    /// `0`
    Zero,
    /// `-1`
    Negative,
}

impl ExpiresIn {
    const ALL: [(&'static str, ExpiresIn); 6] = [
        ("number", ExpiresIn::Number),
        ("string", ExpiresIn::String),
        ("float", ExpiresIn::Float),
        ("missing", ExpiresIn::Missing),
        ("zero", ExpiresIn::Zero),
        ("negative", ExpiresIn::Negative),
    ];

    fn parse(name: &str) -> Option<ExpiresIn> {
        ExpiresIn::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, mode)| *mode)
    }

    fn name(self) -> &'static str {
        ExpiresIn::ALL
            .iter()
            .find(|(_, mode)| *mode == self)
            .map_or("number", |(n, _)| n)
    }

    /// The JSON value for a token living `ttl_secs`, `None` when the field is left out.
    pub fn render(self, ttl_secs: u64) -> Option<Value> {
        match self {
            ExpiresIn::Number => Some(json!(ttl_secs)),
            ExpiresIn::String => Some(json!(ttl_secs.to_string())),
            ExpiresIn::Float => Some(json!(ttl_secs as f64)),
            ExpiresIn::Missing => None,
            ExpiresIn::Zero => Some(json!(0)),
            ExpiresIn::Negative => Some(json!(-1)),
        }
    }
}

/// How the mock decides that a token has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Exactly `ttl_secs` after issue, on the mock's monotonic clock.
    Monotonic,
    /// Like real providers: once the wall clock reaches the whole-second `exp`
    /// (`floor(now) + ttl_secs`), so up to a second before `ttl_secs` have passed.
    WallClock,
}

impl Expiry {
    fn name(self) -> &'static str {
        match self {
            Expiry::Monotonic => "monotonic",
            Expiry::WallClock => "wall_clock",
        }
    }
}

/// Which server certificate TLS mode presents (all signed by the same CA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsCertificate {
    Valid,
    /// Its validity ended in 2021.
    Expired,
    /// Its validity starts in 2048.
    NotYetValid,
}

impl TlsCertificate {
    const ALL: [(&'static str, TlsCertificate); 3] = [
        ("valid", TlsCertificate::Valid),
        ("expired", TlsCertificate::Expired),
        ("not_yet_valid", TlsCertificate::NotYetValid),
    ];

    fn name(self) -> &'static str {
        TlsCertificate::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("valid", |(n, _)| n)
    }
}

/// Whether the token endpoint takes DPoP proofs (RFC 9449).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopMode {
    /// The `DPoP` header is ignored (a server without DPoP support): Bearer tokens.
    Off,
    /// A valid proof gets a DPoP-bound token, no proof a Bearer token; a bad proof is refused.
    Allowed,
    /// Every token request needs a valid proof.
    Required,
}

impl DpopMode {
    const ALL: [(&'static str, DpopMode); 3] = [
        ("off", DpopMode::Off),
        ("allowed", DpopMode::Allowed),
        ("required", DpopMode::Required),
    ];

    fn name(self) -> &'static str {
        DpopMode::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("off", |(n, _)| n)
    }
}

/// A client's registered key for `private_key_jwt` / federated client assertions.
#[derive(Debug, Clone)]
pub struct AssertionKey {
    /// As configured, reported back by `GET /admin/config`.
    pub public_key_pem: String,
    pub key: PublicKey,
    /// The `iss` an assertion must have (default: the client id).
    pub issuer: Option<String>,
    /// The `sub` an assertion must have (default: the client id).
    pub subject: Option<String>,
    /// An `aud` accepted besides the token endpoint URL and the issuer (base URL).
    pub audience: Option<String>,
}

impl AssertionKey {
    fn parse(v: &Value) -> Result<AssertionKey, String> {
        let (pem, options) = match v {
            Value::String(pem) => (pem.as_str(), None),
            Value::Object(map) => {
                if let Some(key) = map.keys().find(|k| {
                    !["public_key_pem", "issuer", "subject", "audience"].contains(&k.as_str())
                }) {
                    return Err(format!("unknown assertion key member `{key}`"));
                }
                let pem = map
                    .get("public_key_pem")
                    .and_then(Value::as_str)
                    .ok_or("an assertion key needs `public_key_pem`")?;
                (pem, Some(map))
            }
            _ => return Err("an assertion key is a PEM string or an object".into()),
        };
        let key = PublicKey::from_pem(pem).map_err(|e| format!("assertion key: {e}"))?;
        let member = |name: &str| -> Result<Option<String>, String> {
            match options.and_then(|m| m.get(name)) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(other) => Err(format!(
                    "assertion key `{name}` must be a string, not {other}"
                )),
            }
        };
        Ok(AssertionKey {
            public_key_pem: pem.to_string(),
            key,
            issuer: member("issuer")?,
            subject: member("subject")?,
            audience: member("audience")?,
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "public_key_pem": self.public_key_pem,
            "issuer": self.issuer,
            "subject": self.subject,
            "audience": self.audience,
        })
    }
}

/// Opaque tokens exercise the library's "no `expires_in`, not a JWT" fallbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    Jwt,
    Opaque,
}

#[derive(Debug, Clone)]
pub struct MockConfig {
    pub ttl_secs: u64,
    pub expires_in: ExpiresIn,
    /// `None` leaves `token_type` out of the response.
    pub token_type: Option<String>,
    pub token_format: TokenFormat,
    pub expiry: Expiry,
    /// Seconds added to the machine's clock for everything the mock says or checks in wall
    /// time (`Date`, `iat`, `exp`, wall-clock expiry, `Retry-After` dates).
    pub clock_skew_secs: i64,
    pub tls_certificate: TlsCertificate,
    pub dpop: DpopMode,
    /// The nonce DPoP proofs must carry at the token endpoint.
    pub dpop_nonce: Option<String>,
    /// The nonce DPoP proofs must carry at the API.
    pub dpop_api_nonce: Option<String>,
    /// How far a proof's `iat` may be from the mock's clock.
    pub dpop_iat_window_secs: u64,
    pub token_delay_ms: u64,
    pub require_scope: bool,
    pub allowed_scopes: Option<Vec<String>>,
    /// How clients may present their secret: `client_secret_post`, `client_secret_basic`.
    pub secret_auth_methods: Vec<String>,
    /// Registered clients: id → secret.
    pub clients: BTreeMap<String, String>,
    /// Clients that authenticate with a signed assertion: id → key.
    pub assertion_keys: BTreeMap<String, AssertionKey>,
    /// Lower-cased header names every `/api/...` request must carry.
    pub require_headers: Vec<String>,
}

/// The ways a client may present its secret (RFC 6749 §2.3.1), by their registered names.
pub const SECRET_AUTH_METHODS: [&str; 2] = ["client_secret_post", "client_secret_basic"];

/// Longest token lifetime accepted: ten years keeps every `Instant` and `exp` sum in range.
const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;
/// Longest configurable token delay; a test needing more is better served by a `hang` fault.
const MAX_DELAY_MS: u64 = 600_000;

impl MockConfig {
    pub fn new(client_id: &str, client_secret: &str) -> MockConfig {
        MockConfig {
            ttl_secs: 3600,
            expires_in: ExpiresIn::Number,
            token_type: Some("Bearer".into()),
            token_format: TokenFormat::Jwt,
            expiry: Expiry::Monotonic,
            clock_skew_secs: 0,
            tls_certificate: TlsCertificate::Valid,
            dpop: DpopMode::Off,
            dpop_nonce: None,
            dpop_api_nonce: None,
            dpop_iat_window_secs: 60,
            token_delay_ms: 0,
            require_scope: false,
            allowed_scopes: None,
            secret_auth_methods: SECRET_AUTH_METHODS.iter().map(|m| m.to_string()).collect(),
            clients: BTreeMap::from([(client_id.to_string(), client_secret.to_string())]),
            assertion_keys: BTreeMap::new(),
            require_headers: vec!["tenant-code".into(), "api-version".into()],
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ttl_secs": self.ttl_secs,
            "expires_in": self.expires_in.name(),
            "token_type": self.token_type,
            "token_format": match self.token_format {
                TokenFormat::Jwt => "jwt",
                TokenFormat::Opaque => "opaque",
            },
            "expiry": self.expiry.name(),
            "clock_skew_secs": self.clock_skew_secs,
            "tls_certificate": self.tls_certificate.name(),
            "dpop": self.dpop.name(),
            "dpop_nonce": self.dpop_nonce,
            "dpop_api_nonce": self.dpop_api_nonce,
            "dpop_iat_window_secs": self.dpop_iat_window_secs,
            "token_delay_ms": self.token_delay_ms,
            "require_scope": self.require_scope,
            "allowed_scopes": self.allowed_scopes,
            "secret_auth_methods": self.secret_auth_methods,
            "clients": self.clients,
            "assertion_keys": self
                .assertion_keys
                .iter()
                .map(|(id, key)| (id.clone(), key.to_json()))
                .collect::<serde_json::Map<String, Value>>(),
            "require_headers": self.require_headers,
        })
    }

    /// Merges a patch. All or nothing: unknown keys and wrong types are errors (a typo in a
    /// test must fail loudly, not be ignored), and on error nothing changes.
    pub fn apply(&mut self, patch: &Value) -> Result<(), String> {
        let Value::Object(map) = patch else {
            return Err("the config patch must be a JSON object".into());
        };
        let mut next = self.clone();
        for (key, v) in map {
            let bad = |expected: &str| format!("config `{key}` must be {expected}, not {v}");
            match key.as_str() {
                "ttl_secs" => {
                    next.ttl_secs = v
                        .as_u64()
                        .filter(|t| *t <= MAX_TTL_SECS)
                        .ok_or_else(|| bad("a whole number of seconds up to ten years"))?
                }
                "expires_in" => {
                    next.expires_in = v.as_str().and_then(ExpiresIn::parse).ok_or_else(|| {
                        bad("one of \"number\", \"string\", \"float\", \"missing\", \"zero\", \"negative\"")
                    })?
                }
                "token_type" => {
                    next.token_type = match v {
                        Value::Null => None,
                        Value::String(s) => Some(header_safe(s).ok_or_else(|| bad("printable"))?),
                        _ => return Err(bad("a string or null")),
                    }
                }
                "token_format" => {
                    next.token_format = match v.as_str() {
                        Some("jwt") => TokenFormat::Jwt,
                        Some("opaque") => TokenFormat::Opaque,
                        _ => return Err(bad("\"jwt\" or \"opaque\"")),
                    }
                }
                "expiry" => {
                    next.expiry = match v.as_str() {
                        Some("monotonic") => Expiry::Monotonic,
                        Some("wall_clock") => Expiry::WallClock,
                        _ => return Err(bad("\"monotonic\" or \"wall_clock\"")),
                    }
                }
                "clock_skew_secs" => {
                    next.clock_skew_secs = v
                        .as_i64()
                        .filter(|s| s.unsigned_abs() <= MAX_TTL_SECS)
                        .ok_or_else(|| bad("whole seconds, at most ten years either way"))?
                }
                "tls_certificate" => {
                    next.tls_certificate = v
                        .as_str()
                        .and_then(|name| {
                            TlsCertificate::ALL
                                .iter()
                                .find(|(n, _)| *n == name)
                                .map(|(_, c)| *c)
                        })
                        .ok_or_else(|| bad("\"valid\", \"expired\" or \"not_yet_valid\""))?
                }
                "dpop" => {
                    next.dpop = v
                        .as_str()
                        .and_then(|name| {
                            DpopMode::ALL
                                .iter()
                                .find(|(n, _)| *n == name)
                                .map(|(_, m)| *m)
                        })
                        .ok_or_else(|| bad("\"off\", \"allowed\" or \"required\""))?
                }
                "dpop_nonce" | "dpop_api_nonce" => {
                    let nonce = match v {
                        Value::Null => None,
                        // RFC 9449 §8.1: NQCHAR, so it fits in a header and a JSON string.
                        Value::String(n)
                            if !n.is_empty() && n.bytes().all(|b| b == b'!' || (0x23..=0x7e).contains(&b) && b != b'\\') =>
                        {
                            Some(n.clone())
                        }
                        _ => return Err(bad("null or a non-empty string of visible ASCII without `\"` or `\\`")),
                    };
                    if key == "dpop_nonce" {
                        next.dpop_nonce = nonce;
                    } else {
                        next.dpop_api_nonce = nonce;
                    }
                }
                "dpop_iat_window_secs" => {
                    next.dpop_iat_window_secs = v
                        .as_u64()
                        .filter(|w| (1..=3600).contains(w))
                        .ok_or_else(|| bad("seconds from 1 to 3600"))?
                }
                "token_delay_ms" => {
                    next.token_delay_ms = v
                        .as_u64()
                        .filter(|d| *d <= MAX_DELAY_MS)
                        .ok_or_else(|| bad("milliseconds up to 600000"))?
                }
                "require_scope" => next.require_scope = v.as_bool().ok_or_else(|| bad("a boolean"))?,
                "allowed_scopes" => {
                    next.allowed_scopes = match v {
                        Value::Null => None,
                        _ => Some(strings(v).ok_or_else(|| bad("null or a list of strings"))?),
                    }
                }
                "secret_auth_methods" => {
                    next.secret_auth_methods = strings(v)
                        .filter(|methods| {
                            methods.iter().all(|m| SECRET_AUTH_METHODS.contains(&m.as_str()))
                        })
                        .ok_or_else(|| {
                            bad("a list of \"client_secret_post\" and/or \"client_secret_basic\"")
                        })?
                }
                "clients" => {
                    let Value::Object(clients) = v else {
                        return Err(bad("an object of client id to secret"));
                    };
                    for (id, secret) in clients {
                        let secret = secret
                            .as_str()
                            .ok_or_else(|| bad("an object of client id to secret (strings)"))?;
                        next.clients.insert(id.clone(), secret.to_string());
                    }
                }
                "assertion_keys" => {
                    let Value::Object(keys) = v else {
                        return Err(bad("an object of client id to key"));
                    };
                    for (id, key) in keys {
                        if key.is_null() {
                            next.assertion_keys.remove(id);
                        } else {
                            let key = AssertionKey::parse(key)
                                .map_err(|e| format!("config `assertion_keys.{id}`: {e}"))?;
                            next.assertion_keys.insert(id.clone(), key);
                        }
                    }
                }
                "require_headers" => {
                    next.require_headers = strings(v)
                        .ok_or_else(|| bad("a list of header names"))?
                        .into_iter()
                        .map(|h| h.to_ascii_lowercase())
                        .collect()
                }
                _ => return Err(format!("unknown mock config key `{key}`")),
            }
        }
        *self = next;
        Ok(())
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// The value unchanged if it can go into a header or JSON field without control characters.
pub fn header_safe(value: &str) -> Option<String> {
    (!value.chars().any(|c| c.is_control() && c != '\t')).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_reports_everything() {
        let mut c = MockConfig::new("demo-client", "demo-secret");
        c.apply(
            &json!({ "ttl_secs": 5, "expires_in": "string", "token_type": null,
                         "clients": { "other": "s" }, "require_headers": ["Tenant-Code"] }),
        )
        .unwrap();
        let j = c.to_json();
        assert_eq!(j["ttl_secs"], 5);
        assert_eq!(j["expires_in"], "string");
        assert_eq!(j["token_type"], Value::Null);
        assert_eq!(
            j["clients"],
            json!({ "demo-client": "demo-secret", "other": "s" })
        );
        assert_eq!(j["require_headers"], json!(["tenant-code"]));
        assert_eq!(j["token_format"], "jwt");
    }

    #[test]
    fn rejects_typos_and_wrong_types_atomically() {
        let mut c = MockConfig::new("a", "b");
        assert!(c.apply(&json!({ "ttl_secs": 9, "ttl_sec": 1 })).is_err());
        assert_eq!(c.ttl_secs, 3600, "nothing applied");
        for patch in [
            json!({ "ttl_secs": "60" }),
            json!({ "ttl_secs": -1 }),
            json!({ "expires_in": "weird" }),
            json!({ "token_format": "paseto" }),
            json!({ "expiry": "exp" }),
            json!({ "clock_skew_secs": 1.5 }),
            json!({ "clock_skew_secs": i64::MIN }),
            json!({ "tls_certificate": "revoked" }),
            json!({ "dpop": true }),
            json!({ "dpop_nonce": "" }),
            json!({ "dpop_nonce": "a b" }),
            json!({ "dpop_api_nonce": "q\"" }),
            json!({ "dpop_iat_window_secs": 0 }),
            json!({ "assertion_keys": { "c": "not a pem" } }),
            json!({ "assertion_keys": { "c": { "public_key_pem": 1 } } }),
            json!({ "assertion_keys": [] }),
            json!({ "token_type": "a\r\nb" }),
            json!({ "allowed_scopes": [1] }),
            json!({ "secret_auth_methods": ["private_key_jwt"] }),
            json!({ "secret_auth_methods": "client_secret_basic" }),
            json!({ "clients": { "x": 1 } }),
            json!([]),
        ] {
            assert!(c.apply(&patch).is_err(), "{patch}");
        }
    }

    #[test]
    fn expires_in_shapes() {
        assert_eq!(ExpiresIn::Number.render(3600), Some(json!(3600)));
        assert_eq!(ExpiresIn::String.render(3600), Some(json!("3600")));
        assert_eq!(ExpiresIn::Float.render(3600).unwrap().to_string(), "3600.0");
        assert_eq!(ExpiresIn::Missing.render(3600), None);
        assert_eq!(ExpiresIn::Zero.render(3600), Some(json!(0)));
        assert_eq!(ExpiresIn::Negative.render(3600), Some(json!(-1)));
    }
}
