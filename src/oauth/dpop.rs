//! DPoP (RFC 9449): the key a client proves possession of, the per-request proofs it
//! signs, and the server nonces it must echo.
//!
//! A proof is a small JWS: the header carries the public key (`jwk`), the claims bind it to
//! one request (`htm` method, `htu` URL without query and fragment, `iat`, a random `jti`)
//! and, at an API, to the access token (`ath`). The encoded header is made once per key, so
//! a proof costs one JSON object, one SHA-256 for `ath`, and one signature.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::rsa::PublicKeyComponents;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, RsaEncoding, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256, RSA_PSS_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use super::token::{Fetched, TokenType};
use crate::error::{Error, ErrorKind, Result};
use crate::http::url::origin_of;
use crate::http::{Origin, Reply};
use crate::secret::Secret;
use crate::sync::{ForkLock, Mutex};

/// The signature algorithm of DPoP proofs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopAlg {
    /// ECDSA P-256 with SHA-256: the default, and the only choice for a generated key.
    Es256,
    /// RSASSA-PSS with SHA-256 (an RSA key of 2048 bits or more).
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (an RSA key of 2048 bits or more); the default for
    /// RSA keys, as the RSA algorithm identity providers accept most widely.
    Rs256,
}

impl DpopAlg {
    /// The JOSE name, e.g. `"ES256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DpopAlg::Es256 => "ES256",
            DpopAlg::Ps256 => "PS256",
            DpopAlg::Rs256 => "RS256",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<DpopAlg> {
        Some(match text {
            "ES256" => DpopAlg::Es256,
            "PS256" => DpopAlg::Ps256,
            "RS256" => DpopAlg::Rs256,
            _ => return None,
        })
    }
}

/// A DPoP private key with its algorithm, its public JWK and its thumbprint.
pub(crate) struct DpopKey {
    pair: Pair,
    alg: DpopAlg,
    /// `base64url({"typ":"dpop+jwt","alg":…,"jwk":…})`, the first part of every proof.
    header: String,
    /// RFC 7638 SHA-256 thumbprint of the public key: the `cnf.jkt` of bound tokens.
    thumbprint: String,
    rng: SystemRandom,
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl DpopKey {
    /// A new P-256 key that lives only in this process (ES256).
    pub(crate) fn generate() -> std::result::Result<DpopKey, String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "no P-256 key could be generated (no system randomness)".to_string())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| "the generated P-256 key was rejected".to_string())?;
        Ok(DpopKey::new(Pair::Ec(pair), DpopAlg::Es256, rng))
    }

    /// The key in the PEM file at `path` (PKCS#8 P-256 or RSA, or PKCS#1 RSA). `alg` defaults
    /// to ES256 for P-256 keys and RS256 for RSA keys, and must fit the key. Messages name
    /// `dpop.key_file` and the path, never the key.
    pub(crate) fn from_pem_file(
        path: &Path,
        alg: Option<DpopAlg>,
    ) -> std::result::Result<DpopKey, String> {
        let shown = path.display();
        let pem = zeroize::Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| format!("`dpop.key_file` {shown} cannot be read: {e}"))?,
        );
        let der = PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|_| format!("`dpop.key_file` {shown} contains no PEM private key"))?;
        DpopKey::from_der(&der, alg).map_err(|why| format!("`dpop.key_file` {shown}: {why}"))
    }

    pub(crate) fn from_der(
        der: &PrivateKeyDer<'_>,
        alg: Option<DpopAlg>,
    ) -> std::result::Result<DpopKey, String> {
        let rng = SystemRandom::new();
        let pair = match der {
            PrivateKeyDer::Pkcs8(der) => match RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()) {
                Ok(pair) => Pair::Rsa(pair),
                Err(_) => Pair::Ec(
                    EcdsaKeyPair::from_pkcs8(
                        &ECDSA_P256_SHA256_FIXED_SIGNING,
                        der.secret_pkcs8_der(),
                        &rng,
                    )
                    .map_err(|_| {
                        "the PKCS#8 key is neither RSA (2048+ bits) nor EC P-256".to_string()
                    })?,
                ),
            },
            PrivateKeyDer::Pkcs1(der) => Pair::Rsa(
                RsaKeyPair::from_der(der.secret_pkcs1_der())
                    .map_err(|e| format!("the RSA key is not usable: {e}"))?,
            ),
            _ => {
                return Err(
                    "only PKCS#8 (RSA or P-256) and PKCS#1 RSA keys are supported; \
                            convert with `openssl pkcs8 -topk8 -nocrypt`"
                        .into(),
                )
            }
        };
        let alg = match (&pair, alg) {
            (Pair::Ec(_), None | Some(DpopAlg::Es256)) => DpopAlg::Es256,
            (Pair::Rsa(_), None) => DpopAlg::Rs256,
            (Pair::Rsa(_), Some(alg @ (DpopAlg::Ps256 | DpopAlg::Rs256))) => alg,
            (Pair::Ec(_), Some(alg)) => {
                return Err(format!(
                    "`dpop.alg` {} needs an RSA key, but this is a P-256 key (use ES256)",
                    alg.as_str()
                ))
            }
            (Pair::Rsa(_), Some(alg)) => {
                return Err(format!(
                    "`dpop.alg` {} needs a P-256 key, but this is an RSA key (use PS256 or RS256)",
                    alg.as_str()
                ))
            }
        };
        Ok(DpopKey::new(pair, alg, rng))
    }

    fn new(pair: Pair, alg: DpopAlg, rng: SystemRandom) -> DpopKey {
        // The members of each JWK in the lexicographic order RFC 7638 §3.2 hashes them in;
        // the same text serves as the header's `jwk`.
        let jwk = match &pair {
            Pair::Ec(pair) => {
                // An uncompressed point: 0x04, then x and y, 32 bytes each.
                let point = pair.public_key().as_ref();
                format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(&point[1..33]),
                    URL_SAFE_NO_PAD.encode(&point[33..65])
                )
            }
            Pair::Rsa(pair) => {
                let public = PublicKeyComponents::<Vec<u8>>::from(pair.public());
                format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(&public.e),
                    URL_SAFE_NO_PAD.encode(&public.n)
                )
            }
        };
        let thumbprint = sha256_b64url(jwk.as_bytes());
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"typ":"dpop+jwt","alg":"{}","jwk":{jwk}}}"#,
            alg.as_str()
        ));
        DpopKey {
            pair,
            alg,
            header,
            thumbprint,
            rng,
        }
    }

    pub(crate) fn alg(&self) -> DpopAlg {
        self.alg
    }

    pub(crate) fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A proof for one `method` `url` request: `htu` is `url` without query and fragment,
    /// `ath` the hash of `access_token` (for API requests), `nonce` the server's, if any.
    fn proof(
        &self,
        method: &str,
        htu: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<Secret> {
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| proof_error("no randomness for the jti"))?;
        // JWT times are wall-clock by definition (RFC 7519 §4.1.6); only the server reads it.
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut claims = serde_json::json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": htu,
            "iat": iat,
        });
        if let Some(token) = access_token {
            claims["ath"] = sha256_b64url(token.as_bytes()).into();
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        let claims = claims.to_string();
        let mut jwt = String::with_capacity(self.header.len() + claims.len() * 4 / 3 + 400);
        jwt.push_str(&self.header);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.as_bytes(), &mut jwt);
        let signature = match &self.pair {
            Pair::Ec(pair) => pair
                .sign(&self.rng, jwt.as_bytes())
                .map_err(|_| proof_error("ECDSA signing failed"))?
                .as_ref()
                .to_vec(),
            Pair::Rsa(pair) => {
                let padding: &'static dyn RsaEncoding = match self.alg {
                    DpopAlg::Ps256 => &RSA_PSS_SHA256,
                    _ => &RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0u8; pair.public().modulus_len()];
                pair.sign(padding, &self.rng, jwt.as_bytes(), &mut signature)
                    .map_err(|_| proof_error("RSA signing failed"))?;
                signature
            }
        };
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        Ok(Secret::new(jwt))
    }
}

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
    let mut chars = www_authenticate.chars().peekable();
    let mut in_dpop = false;
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let word: String =
            std::iter::from_fn(|| chars.next_if(|c| !matches!(c, '=' | ',') && !c.is_whitespace()))
                .collect();
        if word.is_empty() {
            // Only a stray `=` (of a token68) can stop a word here; skip it.
            if chars.next().is_none() {
                return false;
            }
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            // A word without `=` starts a new challenge: its auth-scheme.
            in_dpop = word.eq_ignore_ascii_case("dpop");
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| {
                chars.next_if(|c| *c != ',' && !c.is_whitespace())
            }));
        }
        if in_dpop && word.eq_ignore_ascii_case("error") && value == "use_dpop_nonce" {
            return true;
        }
    }
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

fn sha256_b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, data))
}

fn proof_error(what: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("The DPoP proof could not be signed: {what}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{
        UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256,
        RSA_PSS_2048_8192_SHA256,
    };
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use serde_json::Value;

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn verify(proof: &str, alg: DpopAlg) -> (Value, Value) {
        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3);
        let (header, claims) = (decode(parts[0]), decode(parts[1]));
        let jwk = &header["jwk"];
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        let b = |k: &str| URL_SAFE_NO_PAD.decode(jwk[k].as_str().unwrap()).unwrap();
        match alg {
            DpopAlg::Es256 => {
                let mut point = vec![4u8];
                point.extend(b("x"));
                point.extend(b("y"));
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(input.as_bytes(), &signature)
                    .expect("ES256 signature verifies");
            }
            DpopAlg::Ps256 | DpopAlg::Rs256 => {
                let params = if alg == DpopAlg::Ps256 {
                    &RSA_PSS_2048_8192_SHA256
                } else {
                    &RSA_PKCS1_2048_8192_SHA256
                };
                ring::signature::RsaPublicKeyComponents {
                    n: b("n"),
                    e: b("e"),
                }
                .verify(params, input.as_bytes(), &signature)
                .expect("RSA signature verifies");
            }
        }
        (header, claims)
    }

    /// A fixed 2048-bit RSA test key (ring cannot generate RSA keys).
    const RSA_TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7V52uyt2VjCFm\niEQ1VV5ciyj5oiXkSCbhZkgas+Mi3mIqxPbWusReM1+iXgJ3NjjqX50XrkWexOUb\nmypOjt06U7D+Qe0u94JenQKstu1ZM1Bs+S9/qLSqnNXc+9wAFW6p3RD4CCx4FZAu\nMgnyysioAibGvMgz4ksjllmHgqDN7MXFFcQEkRIXM896Xhik5lHl6nYd0ZG0hoF+\nnunvf+9+90ql7RNf15LT8AFtSfwKHCcLn2yfmfKiPgVXvAm3gwqqVB9pNDJr580B\njF/F6G8qiLVu7uCbLEbwigFS4f1vPJ3B0Ul0qYxuVezXxeGSjkwCd5lp0GmbzfmQ\naNhHCvPDAgMBAAECggEAI+3szu4XSywh58Ewm63wt/z0cdP4QmzYEBiGsaBYaoKN\n/zfhQ1N0f8CIkeJHxMdAaSrHPRhuP8HxUrcSiRh7M0mDw2+vZnePqEeikK9Qm+/s\nd8neozQe2i3UElq3WcjCfY9pRriCltFD4qg0Ij1j+FzZRPpFxzWaRYv7RbL21idD\np4IcbCPhl9cI8HeVIh6fjtYb+lnqLNIrlPqJ/dk/dnMvMF0N1sbOnoVzU1Gx0Aah\nBfsoutU3Lf2ekzgeBY4QB3ouA+7yao3KwGNzmnTznzdXuPQcMZnDAIFCkIIRflT8\nIsqSdrDxXlUQwDkNVmbYB001cM235zADwTW75+yIwQKBgQDpQbSn1xI7mYUFNjqK\nEvvlHoOAsRpCiXFSBsaPj3Ubkqh8mgrj1ExTX+rJ8AweD199tjo9OJzMnrDdvGT3\nQ7mQTXapsFAMITN8LODneV2DQCfBlLznrX3hqXXm1Chfjtw4iXxIVxxor5uIQAWL\nvpm+RtOs79ko2wyLSaSprDEVYQKBgQDNm9h3J4/zuV4JhIKZorlTRPRlFzcVrQ/C\nasl8PRD49R0ivnYhstcWsOXK70y2XsYCWQmOrpT9DOyv/chppwzsaP/5DM5uPYB+\nkpfgYQ/WtaCfcW2GLvXP+lk6yEejxmC2NMDYb5/V+d3fHkNEV+SJNVojJIp+/4e1\n0rjqmsK3owKBgQCXzT4f+PURupB6WtdwIniynNAiQaAAa2hHZMd2iHtDTYe/R5UM\nvo5JuGOZtlJ8ga64po5yZ1SMSj56n+/ph7bNNcyjFG6T5kuWZbKckjyMfYUiE4V5\nFUyWPu3PIoV/4v5pAPjUL3T6oEaNPnUdhBaUYY3Cv3lJgH1CbNPv5HMxIQKBgDej\nz+1WyG7VH+yFbm4zCeHNzDE7Gg4EmjorecDkKZ6lfi/zyLYP1oLudhD3txO3C/CA\ntcRl3C2qfLaXf8+PhEDJnVOBMq/EduxJsU3oFkgtOH1NTa09MgoJHnJ41mIsgels\n1y767g8SogcKAnwRKOg0huLxtYTuk4QRtTbPkJfvAoGAbW4fk50AE3bSC+63lc8V\nMdOxvnica5Ir0XUodTb7fc8rerKc/bfHHIHK9KWOD+MKex1Q7WQwi4RyBUJPkg8n\n1jt+En/i2AiA76SZCRfCeVkY5ucfDASuRdn6Wt6ERZRmtngxPt9Kws+q0j8tkV7z\nyzb7/C1kcxAnIAO54Rc/tfQ=\n-----END PRIVATE KEY-----";

    fn rsa_key(alg: Option<DpopAlg>) -> std::result::Result<DpopKey, String> {
        let der = PrivateKeyDer::from_pem_slice(RSA_TEST_KEY.as_bytes()).unwrap();
        DpopKey::from_der(&der, alg)
    }

    #[test]
    fn es256_proofs_carry_rfc9449_claims_and_verify() {
        let key = DpopKey::generate().unwrap();
        let dpop = Dpop::new(std::sync::Arc::new(key));
        let proof = dpop
            .proof(
                "GET",
                "https://API.example.com:443/v1/items?page=2#top",
                Some("tok"),
            )
            .unwrap();
        let (header, claims) = verify(proof.expose(), DpopAlg::Es256);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert!(
            header["jwk"].get("d").is_none(),
            "the private key stays private"
        );
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://API.example.com:443/v1/items");
        assert_eq!(claims["ath"], sha256_b64url(b"tok"));
        assert!(claims.get("nonce").is_none());
        let iat = claims["iat"].as_u64().unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(iat.abs_diff(now) <= 5);
        assert!(
            claims["jti"].as_str().unwrap().len() >= 22,
            "128 random bits"
        );
        let again = dpop
            .proof("GET", "https://api.example.com/v1/items", None)
            .unwrap();
        let (_, claims2) = verify(again.expose(), DpopAlg::Es256);
        assert_ne!(claims["jti"], claims2["jti"]);
        assert!(claims2.get("ath").is_none());
    }

    #[test]
    fn thumbprint_is_rfc7638_of_the_header_jwk() {
        let dpop = Dpop::new(std::sync::Arc::new(DpopKey::generate().unwrap()));
        let proof = dpop.proof("POST", "https://idp/token", None).unwrap();
        let (header, _) = verify(proof.expose(), DpopAlg::Es256);
        let jwk = &header["jwk"];
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        assert_eq!(dpop.thumbprint(), sha256_b64url(canonical.as_bytes()));
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1: the example RSA key's thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let canonical = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        assert_eq!(
            sha256_b64url(canonical.as_bytes()),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn rsa_keys_sign_rs256_by_default_and_ps256_on_request() {
        let rs = rsa_key(None).unwrap();
        assert_eq!(rs.alg(), DpopAlg::Rs256);
        let dpop = Dpop::new(std::sync::Arc::new(rs));
        let (header, _) = verify(
            dpop.proof("GET", "https://a/b", None).unwrap().expose(),
            DpopAlg::Rs256,
        );
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["jwk"]["kty"], "RSA");
        let ps = rsa_key(Some(DpopAlg::Ps256)).unwrap();
        let dpop = Dpop::new(std::sync::Arc::new(ps));
        let (header, _) = verify(
            dpop.proof("GET", "https://a/b", None).unwrap().expose(),
            DpopAlg::Ps256,
        );
        assert_eq!(header["alg"], "PS256");
        let err = rsa_key(Some(DpopAlg::Es256)).err().unwrap();
        assert!(err.contains("needs a P-256 key"), "{err}");
    }

    #[test]
    fn ec_keys_refuse_rsa_algorithms_and_bad_keys_are_explained() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()));
        assert_eq!(DpopKey::from_der(&der, None).unwrap().alg(), DpopAlg::Es256);
        let err = DpopKey::from_der(&der, Some(DpopAlg::Ps256)).err().unwrap();
        assert!(err.contains("needs an RSA key"), "{err}");
        let junk = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(b"junk".to_vec()));
        let err = DpopKey::from_der(&junk, None).err().unwrap();
        assert!(err.contains("neither RSA"), "{err}");
    }

    #[test]
    fn htu_drops_query_and_fragment_and_keeps_the_rest() {
        let htu = |url: &str| target(url).unwrap().1;
        assert_eq!(htu("https://a.example/x/y?q=1#f"), "https://a.example/x/y");
        assert_eq!(htu("https://a.example"), "https://a.example/");
        assert_eq!(htu("https://a.example?x"), "https://a.example/");
        assert_eq!(
            htu("http://127.0.0.1:8080/t#frag"),
            "http://127.0.0.1:8080/t"
        );
        let err = target("/relative").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    fn reply_with_nonce(nonce: &str) -> Reply {
        Reply {
            status: 400,
            headers: vec![("dpop-nonce".into(), nonce.into())],
            body: Vec::new(),
        }
    }

    #[test]
    fn nonces_are_remembered_per_origin_and_sent_in_proofs() {
        let dpop = Dpop::new(std::sync::Arc::new(DpopKey::generate().unwrap()));
        assert!(dpop.observe("https://idp.example/token", &reply_with_nonce("n-1")));
        assert!(!dpop.observe("https://IDP.example:443/other", &reply_with_nonce("n-1")));
        assert_eq!(
            dpop.nonce_for("https://idp.example/x").as_deref(),
            Some("n-1")
        );
        assert_eq!(dpop.nonce_for("https://api.example/x"), None);
        let proof = dpop
            .proof("POST", "https://idp.example/token", None)
            .unwrap();
        assert_eq!(verify(proof.expose(), DpopAlg::Es256).1["nonce"], "n-1");
        let proof = dpop
            .proof("GET", "https://api.example/x", Some("t"))
            .unwrap();
        assert!(verify(proof.expose(), DpopAlg::Es256)
            .1
            .get("nonce")
            .is_none());
        assert!(dpop.observe("https://idp.example/token", &reply_with_nonce("n-2")));
        assert_eq!(
            dpop.nonce_for("https://idp.example/").as_deref(),
            Some("n-2")
        );
        // Not a nonce: ignored.
        for bad in [
            "",
            "has space",
            "quote\"d",
            "back\\slash",
            &"n".repeat(2000),
        ] {
            assert!(
                !dpop.observe("https://x.example/", &reply_with_nonce(bad)),
                "{bad}"
            );
        }
        assert_eq!(dpop.nonce_for("https://x.example/"), None);
        // Bounded: the oldest origin is forgotten first.
        for i in 0..MAX_NONCE_ORIGINS {
            dpop.observe(&format!("https://h{i}.example/"), &reply_with_nonce("n"));
        }
        assert_eq!(dpop.nonce_for("https://idp.example/"), None);
        assert_eq!(dpop.nonces.lock().len(), MAX_NONCE_ORIGINS);
    }

    #[test]
    fn api_nonce_challenges_are_recognised_among_other_challenges() {
        for yes in [
            r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof.", algs="ES256 PS256 RS256""#,
            r#"dpop error=use_dpop_nonce"#,
            r#"Bearer realm="x", DPoP algs="ES256", error="use_dpop_nonce""#,
            r#"Basic abc==, DPoP error = "use_dpop_nonce""#,
        ] {
            assert!(is_api_nonce_challenge(yes), "{yes}");
        }
        for no in [
            "",
            r#"Bearer error="use_dpop_nonce""#,
            r#"DPoP error="invalid_token", error_description="use_dpop_nonce""#,
            r#"DPoP error="invalid_dpop_proof", Bearer error="use_dpop_nonce""#,
            r#"DPoP error="use_dpop_nonce_not""#,
            "=,=,== DPoP",
        ] {
            assert!(!is_api_nonce_challenge(no), "{no}");
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let dpop = Dpop::new(std::sync::Arc::new(DpopKey::generate().unwrap()));
        let shown = format!("{dpop:?}");
        assert!(shown.contains(dpop.thumbprint()), "{shown}");
        assert!(!shown.contains("\"d\""), "{shown}");
    }
}
