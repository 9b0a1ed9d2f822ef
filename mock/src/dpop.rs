//! DPoP (RFC 9449): checking proofs at the token endpoint and the API, and remembering
//! their `jti`s so that a proof cannot be replayed.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clock;
use crate::jose::{self, Jws, PublicKey};
use crate::request::Request;

/// What a proof must match.
pub struct Expected<'a> {
    /// The request's method (`htm`).
    pub method: &'a str,
    /// URLs the request may be known by (`htu`), already normalised.
    pub urls: Vec<String>,
    /// The server nonce the proof must carry, if one is required.
    pub nonce: Option<&'a str>,
    /// At the API: the access token, whose hash the proof must carry (`ath`).
    pub access_token: Option<&'a str>,
    /// How far `iat` may be from the mock's clock, either way.
    pub window_secs: u64,
    pub skew_secs: i64,
}

/// Why a proof is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ProofError {
    /// `invalid_dpop_proof`, with a description.
    Invalid(String),
    /// Everything else is right but the server nonce is missing or stale:
    /// `use_dpop_nonce`.
    UseNonce,
}

fn invalid(why: impl Into<String>) -> ProofError {
    ProofError::Invalid(why.into())
}

/// A checked proof: the thumbprint of its key (`jkt`) and its `jti`.
#[derive(Debug)]
pub struct Proof {
    pub jkt: String,
    pub jti: String,
}

/// The one `DPoP` header value; more than one is refused (RFC 9449 §4.3 check 1).
pub fn proof_header(request: &Request) -> Result<Option<&str>, String> {
    let mut values = request
        .headers
        .iter()
        .filter(|(name, _)| name == "dpop")
        .map(|(_, v)| v.as_str());
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(one), None) => Ok(Some(one)),
        (Some(_), Some(_)) => Err("More than one DPoP header was sent.".into()),
    }
}

/// RFC 9449 §4.3: every check but the `jti` replay, which needs the server's memory.
pub fn verify(proof: &str, expected: &Expected) -> Result<Proof, ProofError> {
    let jws = Jws::parse(proof).map_err(|e| invalid(format!("The DPoP proof is {e}.")))?;
    if jws.header["typ"].as_str() != Some("dpop+jwt") {
        return Err(invalid("The DPoP proof `typ` must be \"dpop+jwt\"."));
    }
    jws.alg()
        .map_err(|e| invalid(format!("DPoP proof: {e}.")))?;
    let key = PublicKey::from_jwk(&jws.header["jwk"])
        .map_err(|e| invalid(format!("DPoP proof header `jwk`: {e}.")))?;
    jws.verify_with(&key)
        .map_err(|e| invalid(format!("DPoP proof: {e}.")))?;
    let claims = &jws.claims;
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or_else(|| invalid("The DPoP proof has no `jti`."))?;
    if claims["htm"].as_str() != Some(expected.method) {
        return Err(invalid(format!(
            "The DPoP proof `htm` does not match the method {}.",
            expected.method
        )));
    }
    let htu = claims["htu"]
        .as_str()
        .ok_or_else(|| invalid("The DPoP proof has no `htu`."))?;
    if htu.contains(['?', '#']) {
        return Err(invalid(
            "The DPoP proof `htu` must not have a query or fragment.",
        ));
    }
    if !normalise_url(htu).is_some_and(|htu| expected.urls.contains(&htu)) {
        return Err(invalid(
            "The DPoP proof `htu` does not match the request URL.",
        ));
    }
    let iat = claims["iat"]
        .as_f64()
        .ok_or_else(|| invalid("The DPoP proof has no numeric `iat`."))?;
    let now = clock::unix_now(expected.skew_secs);
    if (now - iat).abs() > expected.window_secs as f64 {
        return Err(invalid(format!(
            "The DPoP proof `iat` is more than {} s away from the server's clock.",
            expected.window_secs
        )));
    }
    if let Some(token) = expected.access_token {
        if claims["ath"].as_str() != Some(jose::sha256_b64url(token.as_bytes()).as_str()) {
            return Err(invalid(
                "The DPoP proof `ath` is not the hash of the access token.",
            ));
        }
    }
    if let Some(nonce) = expected.nonce {
        if claims["nonce"].as_str() != Some(nonce) {
            return Err(ProofError::UseNonce);
        }
    }
    Ok(Proof {
        jkt: key.thumbprint(),
        jti: jti.to_string(),
    })
}

/// The URLs a request may have been sent to, normalised: by the server's base URL and by
/// its `Host` header (`localhost` and `127.0.0.1` both reach the mock).
pub fn request_urls(base_url: &str, request: &Request) -> Vec<String> {
    let path = request.path();
    let mut urls: Vec<String> = normalise_url(&format!("{base_url}{path}"))
        .into_iter()
        .collect();
    if let (Some(host), Some((scheme, _))) = (request.header("host"), base_url.split_once("://")) {
        urls.extend(normalise_url(&format!("{scheme}://{host}{path}")));
    }
    urls
}

/// `scheme://host[:port]/path` with scheme and host lower-cased, the default port left
/// out and an empty path as `/` (RFC 9449 §4.3 compares URIs after RFC 3986 §6
/// normalisation); `None` when `url` is not absolute http(s).
pub fn normalise_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.to_ascii_lowercase();
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    if authority.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{authority}{path}"))
}

/// Recently seen proof `jti`s. A proof is refused outside the `iat` window, so a `jti`
/// needs remembering only that long; the count is bounded all the same.
#[derive(Debug, Default)]
pub struct JtiCache {
    seen: HashSet<String>,
    order: VecDeque<(Instant, String)>,
}

const MAX_JTIS: usize = 100_000;

impl JtiCache {
    /// Remembers `jti` for `keep`; `false` when it was already seen (a replay).
    pub fn insert(&mut self, jti: &str, keep: Duration) -> bool {
        let now = Instant::now();
        while let Some((at, old)) = self.order.front() {
            if now.duration_since(*at) < keep && self.order.len() < MAX_JTIS {
                break;
            }
            self.seen.remove(old);
            self.order.pop_front();
        }
        if !self.seen.insert(jti.to_string()) {
            return false;
        }
        self.order.push_back((now, jti.to_string()));
        true
    }
}

/// The `WWW-Authenticate` challenge for a DPoP refusal at the API (RFC 9449 §7.1).
pub fn challenge(error: &str, description: &str) -> String {
    format!(
        "DPoP error=\"{error}\", error_description=\"{description}\", algs=\"{}\"",
        jose::ALGS.join(" ")
    )
}

/// The claims' `cnf.jkt`, for a DPoP-bound token.
pub fn bound_jkt(claims: &Value) -> Option<&str> {
    claims.get("cnf")?.get("jkt")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            normalise_url("HTTP://LocalHost:80/Token").as_deref(),
            Some("http://localhost/Token")
        );
        assert_eq!(
            normalise_url("https://h:443").as_deref(),
            Some("https://h/")
        );
        assert_eq!(
            normalise_url("http://127.0.0.1:8080/a").as_deref(),
            Some("http://127.0.0.1:8080/a")
        );
        assert_eq!(normalise_url("ftp://h/"), None);
        assert_eq!(normalise_url("/relative"), None);
        assert_eq!(normalise_url("http:///x"), None);
    }

    #[test]
    fn jtis_are_refused_twice_and_forgotten_later() {
        let mut cache = JtiCache::default();
        assert!(cache.insert("a", Duration::from_secs(60)));
        assert!(!cache.insert("a", Duration::from_secs(60)));
        assert!(cache.insert("b", Duration::ZERO));
        assert!(cache.insert("a", Duration::ZERO), "forgotten after `keep`");
    }
}
