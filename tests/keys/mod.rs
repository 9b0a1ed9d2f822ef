//! Keys, JWTs and DPoP proofs for the tests, built with ring independently of tokenward's
//! own signing code; and files in a per-test temporary directory.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde_json::{json, Value};

/// A fixed 2048-bit RSA test key (ring cannot generate RSA keys). Never used outside tests.
pub const RSA_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7V52uyt2VjCFm\niEQ1VV5ciyj5oiXkSCbhZkgas+Mi3mIqxPbWusReM1+iXgJ3NjjqX50XrkWexOUb\nmypOjt06U7D+Qe0u94JenQKstu1ZM1Bs+S9/qLSqnNXc+9wAFW6p3RD4CCx4FZAu\nMgnyysioAibGvMgz4ksjllmHgqDN7MXFFcQEkRIXM896Xhik5lHl6nYd0ZG0hoF+\nnunvf+9+90ql7RNf15LT8AFtSfwKHCcLn2yfmfKiPgVXvAm3gwqqVB9pNDJr580B\njF/F6G8qiLVu7uCbLEbwigFS4f1vPJ3B0Ul0qYxuVezXxeGSjkwCd5lp0GmbzfmQ\naNhHCvPDAgMBAAECggEAI+3szu4XSywh58Ewm63wt/z0cdP4QmzYEBiGsaBYaoKN\n/zfhQ1N0f8CIkeJHxMdAaSrHPRhuP8HxUrcSiRh7M0mDw2+vZnePqEeikK9Qm+/s\nd8neozQe2i3UElq3WcjCfY9pRriCltFD4qg0Ij1j+FzZRPpFxzWaRYv7RbL21idD\np4IcbCPhl9cI8HeVIh6fjtYb+lnqLNIrlPqJ/dk/dnMvMF0N1sbOnoVzU1Gx0Aah\nBfsoutU3Lf2ekzgeBY4QB3ouA+7yao3KwGNzmnTznzdXuPQcMZnDAIFCkIIRflT8\nIsqSdrDxXlUQwDkNVmbYB001cM235zADwTW75+yIwQKBgQDpQbSn1xI7mYUFNjqK\nEvvlHoOAsRpCiXFSBsaPj3Ubkqh8mgrj1ExTX+rJ8AweD199tjo9OJzMnrDdvGT3\nQ7mQTXapsFAMITN8LODneV2DQCfBlLznrX3hqXXm1Chfjtw4iXxIVxxor5uIQAWL\nvpm+RtOs79ko2wyLSaSprDEVYQKBgQDNm9h3J4/zuV4JhIKZorlTRPRlFzcVrQ/C\nasl8PRD49R0ivnYhstcWsOXK70y2XsYCWQmOrpT9DOyv/chppwzsaP/5DM5uPYB+\nkpfgYQ/WtaCfcW2GLvXP+lk6yEejxmC2NMDYb5/V+d3fHkNEV+SJNVojJIp+/4e1\n0rjqmsK3owKBgQCXzT4f+PURupB6WtdwIniynNAiQaAAa2hHZMd2iHtDTYe/R5UM\nvo5JuGOZtlJ8ga64po5yZ1SMSj56n+/ph7bNNcyjFG6T5kuWZbKckjyMfYUiE4V5\nFUyWPu3PIoV/4v5pAPjUL3T6oEaNPnUdhBaUYY3Cv3lJgH1CbNPv5HMxIQKBgDej\nz+1WyG7VH+yFbm4zCeHNzDE7Gg4EmjorecDkKZ6lfi/zyLYP1oLudhD3txO3C/CA\ntcRl3C2qfLaXf8+PhEDJnVOBMq/EduxJsU3oFkgtOH1NTa09MgoJHnJ41mIsgels\n1y767g8SogcKAnwRKOg0huLxtYTuk4QRtTbPkJfvAoGAbW4fk50AE3bSC+63lc8V\nMdOxvnica5Ir0XUodTb7fc8rerKc/bfHHIHK9KWOD+MKex1Q7WQwi4RyBUJPkg8n\n1jt+En/i2AiA76SZCRfCeVkY5ucfDASuRdn6Wt6ERZRmtngxPt9Kws+q0j8tkV7z\nyzb7/C1kcxAnIAO54Rc/tfQ=\n-----END PRIVATE KEY-----";
/// Its public half (SubjectPublicKeyInfo).
pub const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1edrsrdlYwhZohENVVe\nXIso+aIl5Egm4WZIGrPjIt5iKsT21rrEXjNfol4CdzY46l+dF65FnsTlG5sqTo7d\nOlOw/kHtLveCXp0CrLbtWTNQbPkvf6i0qpzV3PvcABVuqd0Q+AgseBWQLjIJ8srI\nqAImxrzIM+JLI5ZZh4KgzezFxRXEBJESFzPPel4YpOZR5ep2HdGRtIaBfp7p73/v\nfvdKpe0TX9eS0/ABbUn8ChwnC59sn5nyoj4FV7wJt4MKqlQfaTQya+fNAYxfxehv\nKoi1bu7gmyxG8IoBUuH9bzydwdFJdKmMblXs18Xhko5MAneZadBpm835kGjYRwrz\nwwIDAQAB\n-----END PUBLIC KEY-----";

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
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

/// The header and claims of a compact JWS (not verified).
pub fn decode_jwt(jwt: &str) -> (Value, Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    let decode = |p: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("base64url")).expect("JSON")
    };
    (decode(parts[0]), decode(parts[1]))
}

/// RFC 7638 thumbprint of a public JWK (EC or RSA), written out by hand.
pub fn thumbprint(jwk: &Value) -> String {
    let s = |k: &str| jwk[k].as_str().unwrap().to_string();
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv"),
            s("x"),
            s("y")
        ),
        Some("RSA") => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n")),
        other => panic!("unexpected kty {other:?}"),
    };
    sha256_b64url(canonical.as_bytes())
}

/// A P-256 key signing ES256.
pub struct TestKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl TestKey {
    pub fn new() -> TestKey {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        TestKey {
            pair: EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap(),
            pkcs8: pkcs8.as_ref().to_vec(),
        }
    }

    /// The private key as PKCS#8 PEM (for `dpop.key_file`).
    pub fn private_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }

    /// The public key as SubjectPublicKeyInfo PEM (for the mock's `assertion_keys`).
    pub fn public_pem(&self) -> String {
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(self.pair.public_key().as_ref());
        pem("PUBLIC KEY", &spki)
    }

    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({ "kty": "EC", "crv": "P-256", "x": b64url(&point[1..33]), "y": b64url(&point[33..]) })
    }

    /// A compact JWS of `header` and `claims`, signed with this key.
    pub fn jwt(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64url(sig.as_ref()))
    }

    /// A valid DPoP proof by this key for `method` `htu`, bound to `token` if given.
    pub fn proof(&self, method: &str, htu: &str, token: Option<&str>) -> String {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut claims = json!({ "jti": format!("test-proof-{}-{n}", std::process::id()),
                                 "htm": method, "htu": htu, "iat": unix_now() });
        if let Some(token) = token {
            claims["ath"] = json!(sha256_b64url(token.as_bytes()));
        }
        self.jwt(
            &json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk() }),
            &claims,
        )
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A fresh directory for one test's files (removed when dropped).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "tokenward-{name}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Write `contents` to `name` in this directory, atomically (write and rename, as
    /// platforms rotating credential files do).
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
