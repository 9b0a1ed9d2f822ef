//! What a token says about itself: [`JwtClaims`] and [`TokenInfo`] (for `tokenward inspect`),
//! and the `token_sanity` check comparing them with what was asked for.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT;
use base64::Engine as _;
use serde_json::{json, Value};

use super::exchange::CLOCK_TOLERANCE_SECS;
use super::{Check, Findings};
use crate::config::Config;
use crate::http::origin_of;
use crate::oauth::AccessToken;

/// The claims of a JWT access token that matter to a client. Read from the payload only:
/// the signature is the API's business, and tokenward does not verify it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwtClaims {
    /// `iss`: who issued it.
    pub iss: Option<String>,
    /// `sub`: whom it is about (for client credentials, usually the client).
    pub sub: Option<String>,
    /// `aud`: the audiences (a string or a list in the token), in order.
    pub aud: Vec<String>,
    /// `scope`, or `scp` (a string or a list), space-separated.
    pub scope: Option<String>,
    /// `client_id` (or Entra's `azp`/`appid`).
    pub client_id: Option<String>,
    /// `exp`, Unix seconds.
    pub exp: Option<i64>,
    /// `iat`, Unix seconds.
    pub iat: Option<i64>,
    /// `nbf`, Unix seconds.
    pub nbf: Option<i64>,
}

impl JwtClaims {
    /// The claims of `token` if it is a JWT (three base64url segments with a JSON object in
    /// the middle); `None` for an opaque token.
    pub fn parse(token: &str) -> Option<JwtClaims> {
        let mut parts = token.split('.');
        let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD_INDIFFERENT.decode(payload).ok()?;
        let claims: Value = serde_json::from_slice(&bytes).ok()?;
        let claims = claims.as_object()?;
        let text = |key: &str| claims.get(key).and_then(Value::as_str).map(str::to_string);
        let list = |key: &str| -> Vec<String> {
            match claims.get(key) {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let time = |key: &str| claims.get(key).and_then(Value::as_f64).map(|t| t as i64);
        let scope = text("scope").or_else(|| {
            let scp = list("scp");
            (!scp.is_empty()).then(|| scp.join(" "))
        });
        Some(JwtClaims {
            iss: text("iss"),
            sub: text("sub"),
            aud: list("aud"),
            scope,
            client_id: text("client_id")
                .or_else(|| text("azp"))
                .or_else(|| text("appid")),
            exp: time("exp"),
            iat: time("iat"),
            nbf: time("nbf"),
        })
    }

    fn to_value(&self) -> Value {
        json!({
            "iss": self.iss, "sub": self.sub, "aud": self.aud, "scope": self.scope,
            "client_id": self.client_id, "exp": self.exp, "iat": self.iat, "nbf": self.nbf,
        })
    }
}

/// What can be said about a token without showing it: for `tokenward inspect` and logs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenInfo {
    /// 8 hex digits of the token's SHA-256, to tell tokens apart.
    pub fingerprint: String,
    /// Always `"Bearer"`.
    pub token_type: &'static str,
    /// The lifetime granted (from `expires_in`, the JWT, or the configured default).
    pub lifetime: Duration,
    /// How long it may still be handed out.
    pub remaining: Duration,
    /// How long until it is refreshed ahead of expiry (zero: due).
    pub refresh_in: Duration,
    /// The scope the token endpoint said it granted, if it said.
    pub granted_scope: Option<String>,
    /// The JWT claims, when the token is a JWT.
    pub claims: Option<JwtClaims>,
}

impl TokenInfo {
    /// Describe `token` (never including the token itself).
    pub fn of(token: &AccessToken) -> TokenInfo {
        TokenInfo {
            fingerprint: token.fingerprint().to_string(),
            token_type: token.token_type(),
            lifetime: token.lifetime(),
            remaining: token.remaining(),
            refresh_in: token
                .fresh_until()
                .saturating_duration_since(Instant::now()),
            granted_scope: token.granted_scope().map(str::to_string),
            claims: JwtClaims::parse(token.as_str()),
        }
    }

    /// As JSON: `{"fingerprint","token_type","lifetime_secs","remaining_secs",
    /// "refresh_in_secs","granted_scope","jwt":{"iss","sub","aud":[…],"scope","client_id",
    /// "exp","iat","nbf"}|null}`.
    pub fn to_json(&self) -> String {
        json!({
            "fingerprint": self.fingerprint,
            "token_type": self.token_type,
            "lifetime_secs": self.lifetime.as_secs(),
            "remaining_secs": self.remaining.as_secs(),
            "refresh_in_secs": self.refresh_in.as_secs(),
            "granted_scope": self.granted_scope,
            "jwt": self.claims.as_ref().map(JwtClaims::to_value),
        })
        .to_string()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The `token_sanity` check: the token against what was configured and this machine's clock.
pub(super) fn sanity(config: &Config, findings: &Findings) -> Check {
    let Some(obtained) = &findings.token else {
        return Check::skip("token_sanity", "skipped: no token was obtained");
    };
    let token = &obtained.token;
    let lifetime = token.lifetime().as_secs();
    let claims = JwtClaims::parse(token.as_str());
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut details = Vec::new();

    let window = config.refresh_before.min(token.lifetime() / 2).as_secs();
    details.push(format!(
        "lifetime {lifetime} s: refreshed about {window} s before it expires{}",
        if config.refresh_before.as_secs() > lifetime / 2 {
            format!(
                " (refresh_before_secs {} is capped at half the lifetime)",
                config.refresh_before.as_secs()
            )
        } else {
            String::new()
        }
    ));
    if lifetime == 0 {
        problems.push((
            "the provider says the token expires at once (expires_in 0 or less): each call fetches a new token".into(),
            "ask the provider's administrator for a positive token lifetime; check what `expires_in` it sends".into(),
        ));
    } else if lifetime < 60 {
        problems.push((
            format!("the token lives only {lifetime} s: a token request every ~{} s per process", lifetime.saturating_sub(window).max(1)),
            "raise the token lifetime at the provider if you can; tokenward copes, but the provider sees the load".into(),
        ));
    }

    let requested = config.request.scope_list();
    let granted = token
        .granted_scope()
        .map(str::to_string)
        .or_else(|| claims.as_ref().and_then(|c| c.scope.clone()));
    match &granted {
        Some(granted) => {
            details.push(format!("granted scope: {granted}"));
            let have: Vec<&str> = granted.split_whitespace().collect();
            let missing: Vec<&String> = requested
                .iter()
                // `…/.default` (Entra) expands to the API's permissions; it is never echoed.
                .filter(|s| !s.ends_with("/.default") && !have.contains(&s.as_str()))
                .collect();
            if !missing.is_empty() {
                let missing = missing
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                problems.push((
                    format!("the token was granted less than asked: {missing} is missing (granted: {granted})"),
                    format!("grant {missing} to this client at the provider; the API will answer 403 where it needs it"),
                ));
            }
        }
        None if !requested.is_empty() => {
            details.push("the provider did not say which scope it granted".into())
        }
        None => {}
    }

    match &claims {
        None => details.push("opaque token (not a JWT): its claims cannot be read here".into()),
        Some(claims) => {
            if !claims.aud.is_empty() {
                details.push(format!("aud: {}", claims.aud.join(", ")));
            }
            if let Some(iss) = &claims.iss {
                details.push(format!("iss: {iss}"));
            }
            for (param, wanted) in [
                ("audience", config.request.audience_param()),
                ("resource", config.request.resource_param()),
            ] {
                if let Some(wanted) = wanted {
                    if !claims.aud.iter().any(|a| a == wanted) {
                        problems.push((
                            format!(
                                "the token's aud ({}) does not include the requested {param} `{wanted}`: the provider ignored it or maps it to another identifier",
                                if claims.aud.is_empty() { "none".to_string() } else { claims.aud.join(", ") }
                            ),
                            "check the API's identifier at the provider; some providers take `audience`, others `resource` or a scope ending in `/.default`".into(),
                        ));
                    }
                }
            }
            let url_audiences: Vec<String> = claims
                .aud
                .iter()
                .filter_map(|a| origin_of(a, "aud").ok().map(|o| o.host))
                .collect();
            if !config.api_origins.is_empty()
                && !url_audiences.is_empty()
                && url_audiences.len() == claims.aud.len()
                && !config
                    .api_origins
                    .iter()
                    .any(|o| url_audiences.contains(&o.host))
            {
                problems.push((
                    format!(
                        "the token is for {} but the API is {}: an API that checks aud will answer 401 invalid_token",
                        claims.aud.join(", "),
                        config.api_origins.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    ),
                    "request the token for this API (`audience`, `resource` or `scope`, as the provider documents)".into(),
                ));
            }
            let now = unix_now();
            let skew_note = match findings.clock_skew {
                Some(skew) if skew.abs() > CLOCK_TOLERANCE_SECS => {
                    " (the clock check found the same skew)"
                }
                _ => "",
            };
            for (claim, at) in [("iat", claims.iat), ("nbf", claims.nbf)] {
                if let Some(at) = at {
                    if at - now > CLOCK_TOLERANCE_SECS {
                        problems.push((
                            format!("the token's {claim} is {} s in the future by this machine's clock{skew_note}: APIs that check it refuse the token as not yet valid until then", at - now),
                            "synchronise the clocks (NTP) of this machine and the provider".into(),
                        ));
                    }
                }
            }
            if let Some(exp) = claims.exp {
                if exp < now && lifetime > 0 {
                    problems.push((
                        format!("the token's exp is {} s in the past by this machine's clock{skew_note}, though the provider granted {lifetime} s: tokenward still uses it for its granted lifetime (it trusts expires_in and its monotonic clock), but an API on a clock like this one refuses it", now - exp),
                        "synchronise the clocks (NTP) of this machine and the provider".into(),
                    ));
                }
                if let Some(iat) = claims.iat {
                    let claimed = exp - iat;
                    if (claimed - lifetime as i64).abs() > 60 {
                        details.push(format!("exp - iat is {claimed} s but expires_in said {lifetime} s; tokenward uses expires_in"));
                    }
                }
            }
        }
    }

    let summary = format!(
        "lifetime {lifetime} s{}{}",
        granted
            .map(|g| format!(", scope `{g}`"))
            .unwrap_or_default(),
        match &claims {
            Some(c) if !c.aud.is_empty() => format!(", aud {}", c.aud.join(" ")),
            Some(_) => String::new(),
            None => ", opaque".into(),
        }
    );
    let check = if problems.is_empty() {
        Check::pass("token_sanity", summary)
    } else {
        let (causes, fixes): (Vec<String>, Vec<String>) = problems.into_iter().unzip();
        Check::warn("token_sanity", summary, causes.join("; "), fixes.join("; "))
    };
    details.into_iter().fold(check, Check::detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn claims_in_their_common_shapes() {
        let c = JwtClaims::parse(&jwt(
            r#"{"iss":"https://idp","aud":["a","b"],"scp":["read","write"],"azp":"app","exp":2,"iat":1.5}"#,
        ))
        .unwrap();
        assert_eq!(c.aud, ["a", "b"]);
        assert_eq!(c.scope.as_deref(), Some("read write"));
        assert_eq!(c.client_id.as_deref(), Some("app"));
        assert_eq!((c.exp, c.iat, c.nbf), (Some(2), Some(1), None));
        let c = JwtClaims::parse(&jwt(r#"{"aud":"api","scope":"x y","scp":"z"}"#)).unwrap();
        assert_eq!(
            (c.aud, c.scope.as_deref()),
            (vec!["api".to_string()], Some("x y"))
        );
        assert_eq!(JwtClaims::parse("opaque-token"), None);
        assert_eq!(JwtClaims::parse(&jwt("[1]")), None);
        assert_eq!(JwtClaims::parse("a.b.c.d"), None);
    }
}
