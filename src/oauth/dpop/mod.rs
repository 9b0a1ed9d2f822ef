//! DPoP (RFC 9449): the key a client proves possession of, the per-request proofs it
//! signs, and the server nonces it must echo.
//!
//! A proof is a small JWS: the header carries the public key (`jwk`), the claims bind it to
//! one request (`htm` method, `htu` URL without query and fragment, `iat`, a random `jti`)
//! and, at an API, to the access token (`ath`). The encoded header is made once per key, so
//! a proof costs one JSON object, one SHA-256 for `ath`, and one signature.
//!
//! - `key`: the key, its JWK and thumbprint, and the signing of one proof;
//! - this file: a client's DPoP state (key and nonce memory), nonce challenges, and the
//!   token-type rule of the token endpoint.

mod key;

pub use key::DpopAlg;
pub(crate) use key::DpopKey;

use super::token::{Fetched, TokenType};
use crate::error::{Error, ErrorKind, Result};
use crate::http::url::origin_of;
use crate::http::{Origin, Reply};
use crate::secret::Secret;
use crate::sync::{ForkLock, Mutex};

/// Server nonces remembered for this many origins at most (the oldest is forgotten first).
const MAX_NONCE_ORIGINS: usize = 32;
/// A longer `DPoP-Nonce` is ignored: nonces are short server tokens, and each is copied
/// into every later proof for its origin.
const MAX_NONCE_LEN: usize = 1024;

/// A client's DPoP state: its key and the last nonce each origin gave it (RFC 9449 §8).
/// Shared by the token endpoint and the API calls of one client; thread-safe.
pub(crate) struct Dpop {
    key: std::sync::Arc<DpopKey>,
    nonces: Mutex<Vec<(Origin, String)>>,
}

impl Dpop {
    pub(crate) fn new(key: std::sync::Arc<DpopKey>) -> Dpop {
        Dpop {
            key,
            nonces: Mutex::new(Vec::new()),
        }
    }

    /// RFC 7638 thumbprint of the public key (what a bound token's `cnf.jkt` names).
    pub(crate) fn thumbprint(&self) -> &str {
        self.key.thumbprint()
    }

    /// A fresh proof for `method` `url`, carrying the nonce last seen from `url`'s origin and,
    /// for API requests, `ath` for `access_token`. Errors: [`ErrorKind::InvalidArgument`]
    /// for a URL that is not absolute http(s); [`ErrorKind::Config`] if signing fails.
    pub(crate) fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<Secret> {
        let (origin, htu) = target(url)?;
        let nonce = self.nonce(&origin);
        self.key.proof(method, &htu, access_token, nonce.as_deref())
    }

    fn nonce(&self, origin: &Origin) -> Option<String> {
        self.nonces
            .lock()
            .iter()
            .find(|(o, _)| o == origin)
            .map(|(_, n)| n.clone())
    }

    /// The nonce remembered for `url`'s origin, if any.
    pub(crate) fn nonce_for(&self, url: &str) -> Option<String> {
        self.nonce(&target(url).ok()?.0)
    }

    /// Remember the `DPoP-Nonce` of `reply` (to a request to `url`) for later proofs to that
    /// origin. Returns whether it differs from the nonce the request could have carried,
    /// i.e. whether re-sending with a new proof can help.
    pub(crate) fn observe(&self, url: &str, reply: &Reply) -> bool {
        self.observe_nonce(url, reply.header("dpop-nonce"))
    }

    /// [`Dpop::observe`] for the value of a `DPoP-Nonce` header, if the answer had one.
    pub(crate) fn observe_nonce(&self, url: &str, nonce: Option<&str>) -> bool {
        let Some(nonce) = nonce.map(str::trim) else {
            return false;
        };
        if !is_nonce(nonce) {
            return false;
        }
        let Ok((origin, _)) = target(url) else {
            return false;
        };
        let mut nonces = self.nonces.lock();
        if let Some(at) = nonces.iter().position(|(o, _)| *o == origin) {
            let (_, old) = nonces.remove(at);
            nonces.push((origin, nonce.to_string()));
            return old != nonce;
        }
        if nonces.len() >= MAX_NONCE_ORIGINS {
            nonces.remove(0);
        }
        nonces.push((origin, nonce.to_string()));
        true
    }

    /// The nonce lock, for the fork hooks.
    pub(crate) fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.nonces);
    }
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("alg", &self.key.alg())
            .field("thumbprint", &self.key.thumbprint())
            .finish_non_exhaustive()
    }
}

/// Whether an API's `WWW-Authenticate` value holds a `DPoP` challenge with
/// `error="use_dpop_nonce"` (RFC 9449 §9). Other challenges may share the header.
pub(crate) fn is_api_nonce_challenge(www_authenticate: &str) -> bool {
    crate::http::challenge::parse(www_authenticate)
        .iter()
        .any(|c| {
            c.scheme.eq_ignore_ascii_case("dpop") && c.param("error") == Some("use_dpop_nonce")
        })
}

/// Whether a token endpoint's error is a `use_dpop_nonce` challenge (RFC 9449 §8).
pub(crate) fn is_nonce_challenge(error: &Error) -> bool {
    error.http_status() == Some(400) && error.oauth_error() == Some("use_dpop_nonce")
}

/// Enforce the rule for the token type a token endpoint answered with: a DPoP-bound token
/// only when the request carried a proof, and with a proof nothing else. A Bearer answer to
/// a DPoP request is refused: the server did not bind the token to the key, and a Bearer
/// token would be usable by whoever holds it, which is what configuring DPoP rules out.
pub(crate) fn check_token_type(fetched: Fetched, dpop: bool, url: &str) -> Result<Fetched> {
    match (fetched.token_type, dpop) {
        (TokenType::Dpop, true) | (TokenType::Bearer, false) => Ok(fetched),
        (TokenType::Bearer, true) => Err(Error::new(
            ErrorKind::BadResponse,
            format!(
                "The token endpoint at {url} answered a request with a DPoP proof with a token \
                 that is not DPoP-bound (token_type is not `DPoP`): the server does not bind \
                 tokens to this client's key. tokenward refuses it, because a Bearer token is \
                 usable by whoever holds it. Enable DPoP for this client at the identity \
                 provider, or remove `dpop` from the configuration."
            ),
        )),
        (TokenType::Dpop, false) => Err(Error::new(
            ErrorKind::BadResponse,
            format!(
                "The token endpoint at {url} issued a DPoP-bound token (token_type `DPoP`) to a \
                 request without a DPoP proof; configure `dpop` to use DPoP tokens."
            ),
        )),
    }
}

/// The origin of `url` (for nonces) and its `htu`: scheme, authority and path, without
/// query and fragment (RFC 9449 §4.2); an empty path is `/`.
fn target(url: &str) -> Result<(Origin, String)> {
    let origin = origin_of(url, "the DPoP request URL").map_err(|e| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("No DPoP proof can be made: {}.", e.message()),
        )
    })?;
    let without_fragment = url.split('#').next().unwrap_or(url);
    let without_query = without_fragment
        .split('?')
        .next()
        .unwrap_or(without_fragment);
    let (scheme, rest) = without_query
        .split_once("://")
        .expect("origin_of accepted an absolute URL");
    let htu = if rest.contains('/') {
        without_query.to_string()
    } else {
        format!("{scheme}://{rest}/")
    };
    Ok((origin, htu))
}

/// RFC 9449 §8.1: `nonce = 1*NQCHAR` (visible ASCII except `"` and `\`).
fn is_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests;
