//! Client assertions for `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

/// How far `iat` and `nbf` of an assertion are set in the past, so that an identity
/// provider whose clock runs up to this much behind ours does not see an assertion "issued
/// in the future" (RFC 7519 §4.1.5 lets it refuse one).
pub(crate) const CLOCK_SKEW_ALLOWANCE_SECS: u64 = 30;

/// How long an assertion is valid after it is made.
const ASSERTION_LIFETIME_SECS: u64 = 60;

/// A private key that signs client assertions: RS256 for RSA keys, ES256 for P-256 keys.
pub(crate) struct SigningKey {
    key: KeyPair,
    key_id: Option<String>,
    rng: SystemRandom,
    /// SHA-256 of the private key: secret material only holders of the key can compute
    /// (the shared token cache derives its keys from it).
    digest: zeroize::Zeroizing<[u8; 32]>,
}

pub(crate) enum KeyPair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl KeyPair {
    /// The signing key in a PEM-decoded private key: PKCS#8 RSA (2048+ bits) or EC P-256, or
    /// PKCS#1 RSA. The error says which forms are accepted and how to convert.
    pub(crate) fn from_der(
        key: &PrivateKeyDer<'_>,
        rng: &SystemRandom,
    ) -> std::result::Result<KeyPair, String> {
        match key {
            PrivateKeyDer::Pkcs8(der) => match RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()) {
                Ok(k) => Ok(KeyPair::Rsa(k)),
                Err(_) => EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    der.secret_pkcs8_der(),
                    rng,
                )
                .map(KeyPair::Ec)
                .map_err(|_| "the PKCS#8 key is neither RSA (2048+ bits) nor EC P-256".to_string()),
            },
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der())
                .map(KeyPair::Rsa)
                .map_err(|e| format!("the RSA key is not usable: {e}")),
            _ => Err(
                "only PKCS#8 (RSA or P-256) and PKCS#1 RSA keys are supported; convert with \
                 `openssl pkcs8 -topk8 -nocrypt`"
                    .into(),
            ),
        }
    }
}

impl SigningKey {
    pub(crate) fn from_pem_file(
        path: &Path,
        key_id: Option<String>,
    ) -> std::result::Result<SigningKey, String> {
        let pem =
            zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
                format!("`private_key_file` {} cannot be read: {e}", path.display())
            })?);
        let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
            format!(
                "`private_key_file` {} contains no PEM private key",
                path.display()
            )
        })?;
        SigningKey::from_der(&key, key_id)
            .map_err(|why| format!("`private_key_file` {}: {why}", path.display()))
    }

    pub(crate) fn from_der(
        key: &PrivateKeyDer<'_>,
        key_id: Option<String>,
    ) -> std::result::Result<SigningKey, String> {
        let rng = SystemRandom::new();
        let mut digest = zeroize::Zeroizing::new([0u8; 32]);
        digest.copy_from_slice(
            ring::digest::digest(&ring::digest::SHA256, key.secret_der()).as_ref(),
        );
        let key = KeyPair::from_der(key, &rng)?;
        Ok(SigningKey {
            key,
            key_id,
            rng,
            digest,
        })
    }

    /// A digest of the private key, as secret as the key itself.
    pub(crate) fn secret_digest(&self) -> &[u8] {
        &self.digest[..]
    }

    /// A fresh assertion for `client_id` addressed to `audience` (the token endpoint URL),
    /// valid for 60 s from now, with `iat` and `nbf` set [`CLOCK_SKEW_ALLOWANCE_SECS`] in
    /// the past, and a random `jti` so it cannot be replayed.
    pub(crate) fn assertion(&self, client_id: &str, audience: &str) -> Result<Secret> {
        let alg = match self.key {
            KeyPair::Rsa(_) => "RS256",
            KeyPair::Ec(_) => "ES256",
        };
        let mut header = serde_json::json!({ "alg": alg, "typ": "JWT" });
        if let Some(kid) = &self.key_id {
            header["kid"] = kid.as_str().into();
        }
        // JWT times are wall-clock by definition (RFC 7519 §4.1.4); they are only read by
        // the server.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| signing_error("no randomness for the jti"))?;
        let issued = now.saturating_sub(CLOCK_SKEW_ALLOWANCE_SECS);
        let claims = serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": audience,
            "jti": URL_SAFE_NO_PAD.encode(jti), "iat": issued, "nbf": issued,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let jwt = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &self.key {
            KeyPair::Rsa(key) => {
                let mut sig = zeroize::Zeroizing::new(vec![0u8; key.public().modulus_len()]);
                key.sign(&RSA_PKCS1_SHA256, &self.rng, jwt.as_bytes(), &mut sig)
                    .map_err(|_| signing_error("RSA signing failed"))?;
                sig
            }
            KeyPair::Ec(key) => zeroize::Zeroizing::new(
                key.sign(&self.rng, jwt.as_bytes())
                    .map_err(|_| signing_error("ECDSA signing failed"))?
                    .as_ref()
                    .to_vec(),
            ),
        };
        // Sized for the signature up front: growing the buffer would leave a copy of the
        // signed assertion behind in the freed one.
        let mut assertion = String::with_capacity(jwt.len() + 1 + signature.len().div_ceil(3) * 4);
        assertion.push_str(&jwt);
        assertion.push('.');
        URL_SAFE_NO_PAD.encode_string(&*signature, &mut assertion);
        Ok(Secret::new(assertion))
    }
}

fn signing_error(what: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("The client assertion could not be signed: {what}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    use rustls_pki_types::PrivatePkcs8KeyDer;

    fn b64url_decode(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(s)
            .expect("assertions are base64url without padding")
    }

    #[test]
    fn es256_assertion_verifies_and_carries_rfc7523_claims() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = SigningKey::from_der(
            &PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec())),
            Some("k1".into()),
        )
        .unwrap();
        let jwt = key.assertion("my-client", "https://idp/token").unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "k1");
        let claims: serde_json::Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
        assert_eq!(claims["iss"], "my-client");
        assert_eq!(claims["sub"], "my-client");
        assert_eq!(claims["aud"], "https://idp/token");
        // iat and nbf are backdated for an identity provider whose clock runs behind.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let iat = claims["iat"].as_u64().unwrap();
        assert_eq!(claims["nbf"].as_u64(), Some(iat));
        assert!(
            iat + CLOCK_SKEW_ALLOWANCE_SECS <= now,
            "iat {iat}, now {now}"
        );
        assert!(
            iat + CLOCK_SKEW_ALLOWANCE_SECS + 2 >= now,
            "iat {iat}, now {now}"
        );
        assert_eq!(
            claims["exp"].as_u64().unwrap() - iat,
            ASSERTION_LIFETIME_SECS + CLOCK_SKEW_ALLOWANCE_SECS
        );
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public = UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_FIXED,
            pair.public_key().as_ref().to_vec(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(signed.as_bytes(), &b64url_decode(parts[2]))
            .expect("signature verifies");
        let again = key.assertion("my-client", "https://idp/token").unwrap();
        assert_ne!(
            jwt.expose(),
            again.expose(),
            "jti makes every assertion unique"
        );
    }

    #[test]
    fn unsupported_keys_are_explained() {
        let err = SigningKey::from_der(
            &PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(b"not a key".to_vec())),
            None,
        )
        .err()
        .unwrap();
        assert!(err.contains("neither RSA"), "{err}");
    }
}
