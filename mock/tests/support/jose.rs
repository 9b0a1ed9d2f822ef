//! Signing for tests: ES256/RS256/PS256 keys (ring), compact JWTs, DPoP proofs and client
//! assertions, built independently of the mock's own verification code.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivatePkcs8KeyDer;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fixed 2048-bit RSA test key (ring cannot generate RSA keys). Never used outside tests.
pub const RSA_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7V52uyt2VjCFm\niEQ1VV5ciyj5oiXkSCbhZkgas+Mi3mIqxPbWusReM1+iXgJ3NjjqX50XrkWexOUb\nmypOjt06U7D+Qe0u94JenQKstu1ZM1Bs+S9/qLSqnNXc+9wAFW6p3RD4CCx4FZAu\nMgnyysioAibGvMgz4ksjllmHgqDN7MXFFcQEkRIXM896Xhik5lHl6nYd0ZG0hoF+\nnunvf+9+90ql7RNf15LT8AFtSfwKHCcLn2yfmfKiPgVXvAm3gwqqVB9pNDJr580B\njF/F6G8qiLVu7uCbLEbwigFS4f1vPJ3B0Ul0qYxuVezXxeGSjkwCd5lp0GmbzfmQ\naNhHCvPDAgMBAAECggEAI+3szu4XSywh58Ewm63wt/z0cdP4QmzYEBiGsaBYaoKN\n/zfhQ1N0f8CIkeJHxMdAaSrHPRhuP8HxUrcSiRh7M0mDw2+vZnePqEeikK9Qm+/s\nd8neozQe2i3UElq3WcjCfY9pRriCltFD4qg0Ij1j+FzZRPpFxzWaRYv7RbL21idD\np4IcbCPhl9cI8HeVIh6fjtYb+lnqLNIrlPqJ/dk/dnMvMF0N1sbOnoVzU1Gx0Aah\nBfsoutU3Lf2ekzgeBY4QB3ouA+7yao3KwGNzmnTznzdXuPQcMZnDAIFCkIIRflT8\nIsqSdrDxXlUQwDkNVmbYB001cM235zADwTW75+yIwQKBgQDpQbSn1xI7mYUFNjqK\nEvvlHoOAsRpCiXFSBsaPj3Ubkqh8mgrj1ExTX+rJ8AweD199tjo9OJzMnrDdvGT3\nQ7mQTXapsFAMITN8LODneV2DQCfBlLznrX3hqXXm1Chfjtw4iXxIVxxor5uIQAWL\nvpm+RtOs79ko2wyLSaSprDEVYQKBgQDNm9h3J4/zuV4JhIKZorlTRPRlFzcVrQ/C\nasl8PRD49R0ivnYhstcWsOXK70y2XsYCWQmOrpT9DOyv/chppwzsaP/5DM5uPYB+\nkpfgYQ/WtaCfcW2GLvXP+lk6yEejxmC2NMDYb5/V+d3fHkNEV+SJNVojJIp+/4e1\n0rjqmsK3owKBgQCXzT4f+PURupB6WtdwIniynNAiQaAAa2hHZMd2iHtDTYe/R5UM\nvo5JuGOZtlJ8ga64po5yZ1SMSj56n+/ph7bNNcyjFG6T5kuWZbKckjyMfYUiE4V5\nFUyWPu3PIoV/4v5pAPjUL3T6oEaNPnUdhBaUYY3Cv3lJgH1CbNPv5HMxIQKBgDej\nz+1WyG7VH+yFbm4zCeHNzDE7Gg4EmjorecDkKZ6lfi/zyLYP1oLudhD3txO3C/CA\ntcRl3C2qfLaXf8+PhEDJnVOBMq/EduxJsU3oFkgtOH1NTa09MgoJHnJ41mIsgels\n1y767g8SogcKAnwRKOg0huLxtYTuk4QRtTbPkJfvAoGAbW4fk50AE3bSC+63lc8V\nMdOxvnica5Ir0XUodTb7fc8rerKc/bfHHIHK9KWOD+MKex1Q7WQwi4RyBUJPkg8n\n1jt+En/i2AiA76SZCRfCeVkY5ucfDASuRdn6Wt6ERZRmtngxPt9Kws+q0j8tkV7z\nyzb7/C1kcxAnIAO54Rc/tfQ=\n-----END PRIVATE KEY-----";
/// Its public half as PKCS#1 (`openssl rsa -RSAPublicKey_out`).
pub const RSA_PUBLIC_PKCS1_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEAu1edrsrdlYwhZohENVVeXIso+aIl5Egm4WZIGrPjIt5iKsT21rrE\nXjNfol4CdzY46l+dF65FnsTlG5sqTo7dOlOw/kHtLveCXp0CrLbtWTNQbPkvf6i0\nqpzV3PvcABVuqd0Q+AgseBWQLjIJ8srIqAImxrzIM+JLI5ZZh4KgzezFxRXEBJES\nFzPPel4YpOZR5ep2HdGRtIaBfp7p73/vfvdKpe0TX9eS0/ABbUn8ChwnC59sn5ny\noj4FV7wJt4MKqlQfaTQya+fNAYxfxehvKoi1bu7gmyxG8IoBUuH9bzydwdFJdKmM\nblXs18Xhko5MAneZadBpm835kGjYRwrzwwIDAQAB\n-----END RSA PUBLIC KEY-----";
/// Its public half, as `openssl pkey -pubout` writes it (SubjectPublicKeyInfo).
pub const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1edrsrdlYwhZohENVVe\nXIso+aIl5Egm4WZIGrPjIt5iKsT21rrEXjNfol4CdzY46l+dF65FnsTlG5sqTo7d\nOlOw/kHtLveCXp0CrLbtWTNQbPkvf6i0qpzV3PvcABVuqd0Q+AgseBWQLjIJ8srI\nqAImxrzIM+JLI5ZZh4KgzezFxRXEBJESFzPPel4YpOZR5ep2HdGRtIaBfp7p73/v\nfvdKpe0TX9eS0/ABbUn8ChwnC59sn5nyoj4FV7wJt4MKqlQfaTQya+fNAYxfxehv\nKoi1bu7gmyxG8IoBUuH9bzydwdFJdKmMblXs18Xhko5MAneZadBpm835kGjYRwrz\nwwIDAQAB\n-----END PUBLIC KEY-----";

pub fn b64url(bytes: &[u8]) -> String {
    super::base64(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

pub fn sha256_b64url(data: &[u8]) -> String {
    b64url(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A unique string per call (proof and assertion `jti`s).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

pub enum TestKey {
    Es256(EcdsaKeyPair),
    Rsa(RsaKeyPair, &'static str),
}

impl TestKey {
    pub fn es256() -> TestKey {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        TestKey::Es256(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap())
    }

    /// The fixed RSA key, signing with `alg` (`RS256` or `PS256`).
    pub fn rsa(alg: &'static str) -> TestKey {
        let der = PrivatePkcs8KeyDer::from_pem_slice(RSA_PRIVATE_PEM.as_bytes()).unwrap();
        TestKey::Rsa(RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap(), alg)
    }

    pub fn alg(&self) -> &'static str {
        match self {
            TestKey::Es256(_) => "ES256",
            TestKey::Rsa(_, alg) => alg,
        }
    }

    pub fn jwk(&self) -> Value {
        match self {
            TestKey::Es256(pair) => {
                let point = pair.public_key().as_ref();
                json!({ "kty": "EC", "crv": "P-256",
                        "x": b64url(&point[1..33]), "y": b64url(&point[33..]) })
            }
            TestKey::Rsa(pair, _) => {
                let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
                json!({ "kty": "RSA", "n": b64url(&public.n), "e": b64url(&public.e) })
            }
        }
    }

    /// RFC 7638, written out by hand.
    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let canonical = match self {
            TestKey::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                jwk["x"].as_str().unwrap(),
                jwk["y"].as_str().unwrap()
            ),
            TestKey::Rsa(..) => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                jwk["e"].as_str().unwrap(),
                jwk["n"].as_str().unwrap()
            ),
        };
        sha256_b64url(canonical.as_bytes())
    }

    /// The P-256 public key as a PEM SubjectPublicKeyInfo; the RSA one for RSA keys.
    pub fn public_pem(&self) -> String {
        match self {
            TestKey::Es256(pair) => {
                let mut spki = vec![
                    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
                ];
                spki.extend_from_slice(pair.public_key().as_ref());
                let body = super::base64(&spki);
                let lines: Vec<&str> = body
                    .as_bytes()
                    .chunks(64)
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect();
                format!(
                    "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                    lines.join("\n")
                )
            }
            TestKey::Rsa(..) => RSA_PUBLIC_PEM.to_string(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            TestKey::Es256(pair) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
            TestKey::Rsa(pair, alg) => {
                let padding: &dyn signature::RsaEncoding = if *alg == "PS256" {
                    &signature::RSA_PSS_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA256
                };
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
        }
    }

    /// A compact JWS of `header` and `claims`, signed with this key.
    pub fn jwt(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64url(&sig))
    }

    /// The header a DPoP proof by this key carries.
    pub fn proof_header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk() })
    }

    /// The claims of a fresh proof for `method` `htu` (optionally bound to `token` and
    /// carrying `nonce`).
    pub fn proof_claims(
        &self,
        method: &str,
        htu: &str,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> Value {
        let mut claims = json!({ "jti": unique("proof"), "htm": method, "htu": htu,
                                 "iat": unix_now() });
        if let Some(token) = token {
            claims["ath"] = json!(sha256_b64url(token.as_bytes()));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        claims
    }

    /// A fresh, valid proof.
    pub fn proof(
        &self,
        method: &str,
        htu: &str,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        self.jwt(
            &self.proof_header(),
            &self.proof_claims(method, htu, token, nonce),
        )
    }
}
