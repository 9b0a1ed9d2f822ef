//! The DPoP key: a P-256 or RSA private key, its public JWK and RFC 7638 thumbprint, and the
//! proofs it signs.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::rsa::PublicKeyComponents;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, RsaEncoding, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256,
};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use crate::error::{Error, ErrorKind, Result};
use crate::oauth::assertion::KeyPair as Pair;
use crate::secret::Secret;

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
        let pair = Pair::from_der(der, &rng)?;
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
    pub(super) fn proof(
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

pub(super) fn sha256_b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, data))
}

fn proof_error(what: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("The DPoP proof could not be signed: {what}."),
    )
}
