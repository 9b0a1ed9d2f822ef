//! The little JOSE the mock needs to check signed JWTs (DPoP proofs, client assertions):
//! compact JWS parsing, public keys from a JWK or a PEM, ES256/RS256/PS256 signature checks
//! with ring, and RFC 7638 thumbprints.

use ring::{digest, signature};
use serde_json::{json, Value};

use crate::codec;

/// The signature algorithms accepted (asymmetric only: `none` and HMAC never).
pub const ALGS: [&str; 3] = ["ES256", "PS256", "RS256"];

/// A public key a JWT may be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// P-256: the affine coordinates, 32 bytes each.
    P256 { x: Vec<u8>, y: Vec<u8> },
    /// RSA: modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

fn strip_zeros(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

impl PublicKey {
    /// A public JWK: `{"kty":"EC","crv":"P-256","x","y"}` or `{"kty":"RSA","n","e"}`.
    /// A JWK with private members is refused (a proof must never carry a private key).
    pub fn from_jwk(jwk: &Value) -> Result<PublicKey, String> {
        let Value::Object(map) = jwk else {
            return Err("the jwk is not a JSON object".into());
        };
        if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| map.contains_key(**m)) {
            return Err(format!("the jwk contains the private member `{member}`"));
        }
        let bytes = |name: &str| {
            map.get(name)
                .and_then(Value::as_str)
                .and_then(codec::b64_decode)
                .ok_or_else(|| format!("the jwk has no base64url `{name}`"))
        };
        match map.get("kty").and_then(Value::as_str) {
            Some("EC") => {
                if map.get("crv").and_then(Value::as_str) != Some("P-256") {
                    return Err("only the EC curve P-256 is supported".into());
                }
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("P-256 coordinates must be 32 bytes".into());
                }
                Ok(PublicKey::P256 { x, y })
            }
            Some("RSA") => Ok(PublicKey::Rsa {
                n: strip_zeros(&bytes("n")?),
                e: strip_zeros(&bytes("e")?),
            }),
            _ => Err("the jwk `kty` must be \"EC\" or \"RSA\"".into()),
        }
    }

    /// A PEM `PUBLIC KEY` (SubjectPublicKeyInfo: RSA or P-256) or `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<PublicKey, String> {
        let (label, der) = pem_decode(pem)?;
        match label.as_str() {
            "PUBLIC KEY" => from_spki(&der),
            "RSA PUBLIC KEY" => rsa_from_pkcs1(&der),
            other => Err(format!(
                "a `{other}` PEM is not a public key (expected PUBLIC KEY or RSA PUBLIC KEY)"
            )),
        }
    }

    /// RFC 7638 thumbprint: base64url(SHA-256(the required members, sorted, compact)).
    pub fn thumbprint(&self) -> String {
        let canonical = match self {
            PublicKey::P256 { x, y } => json!({
                "crv": "P-256", "kty": "EC",
                "x": codec::b64url_encode(x), "y": codec::b64url_encode(y),
            }),
            PublicKey::Rsa { n, e } => json!({
                "e": codec::b64url_encode(e), "kty": "RSA", "n": codec::b64url_encode(n),
            }),
        };
        // serde_json's map keeps keys sorted and writes no whitespace: RFC 7638's form.
        sha256_b64url(canonical.to_string().as_bytes())
    }

    /// Checks a JWS signature; the algorithm must suit the key type.
    pub fn verify(&self, alg: &str, message: &[u8], sig: &[u8]) -> Result<(), String> {
        let verified = match (self, alg) {
            (PublicKey::P256 { x, y }, "ES256") => {
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
            }
            (PublicKey::Rsa { n, e }, "RS256" | "PS256") => {
                let params = if alg == "RS256" {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                signature::RsaPublicKeyComponents { n, e }.verify(params, message, sig)
            }
            (_, alg) if ALGS.contains(&alg) => {
                return Err(format!("the algorithm {alg} does not fit the key type"))
            }
            (_, alg) => return Err(format!("the algorithm `{alg}` is not accepted")),
        };
        verified.map_err(|_| "the signature does not verify".to_string())
    }
}

/// base64url(SHA-256(data)), no padding (DPoP `ath`, thumbprints).
pub fn sha256_b64url(data: &[u8]) -> String {
    codec::b64url_encode(digest::digest(&digest::SHA256, data).as_ref())
}

/// A compact JWS, split and decoded but not yet verified.
#[derive(Debug)]
pub struct Jws {
    pub header: Value,
    pub claims: Value,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

impl Jws {
    pub fn parse(token: &str) -> Result<Jws, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a compact JWS (three dot-separated parts)".into());
        };
        let object = |part: &str, what: &str| {
            codec::b64_decode(part)
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .filter(Value::is_object)
                .ok_or_else(|| format!("the JWT {what} is not base64url JSON object"))
        };
        Ok(Jws {
            header: object(header, "header")?,
            claims: object(payload, "payload")?,
            signing_input: format!("{header}.{payload}"),
            signature: codec::b64_decode(sig).ok_or("the JWT signature is not base64url")?,
        })
    }

    /// The header's `alg`, if it is one of [`ALGS`].
    pub fn alg(&self) -> Result<&str, String> {
        match self.header["alg"].as_str() {
            Some(alg) if ALGS.contains(&alg) => Ok(alg),
            Some(alg) => Err(format!(
                "the algorithm `{alg}` is not accepted (use {})",
                ALGS.join(", ")
            )),
            None => Err("the JWT header has no `alg`".into()),
        }
    }

    pub fn verify_with(&self, key: &PublicKey) -> Result<(), String> {
        key.verify(self.alg()?, self.signing_input.as_bytes(), &self.signature)
    }
}

fn pem_decode(pem: &str) -> Result<(String, Vec<u8>), String> {
    let pem = pem.trim();
    let label = pem
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.split_once("-----"))
        .map(|(label, _)| label.to_string())
        .ok_or("not a PEM (no -----BEGIN line)")?;
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = codec::b64_decode(&body).ok_or("the PEM body is not base64")?;
    Ok((label, der))
}

/// One DER TLV: (tag, contents, rest).
fn der(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "malformed DER in the public key".to_string();
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(bad());
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn from_spki(spki: &[u8]) -> Result<PublicKey, String> {
    let (0x30, spki, _) = der(spki)? else {
        return Err("SubjectPublicKeyInfo is not a SEQUENCE".into());
    };
    let (0x30, algorithm, rest) = der(spki)? else {
        return Err("AlgorithmIdentifier is not a SEQUENCE".into());
    };
    let (0x03, bits, _) = der(rest)? else {
        return Err("subjectPublicKey is not a BIT STRING".into());
    };
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err("subjectPublicKey has unused bits".into()),
    };
    let (0x06, oid, params) = der(algorithm)? else {
        return Err("the key algorithm is not an OID".into());
    };
    if oid == OID_RSA {
        return rsa_from_pkcs1(key);
    }
    if oid == OID_EC {
        let curve = der(params).ok().map(|(_, curve, _)| curve);
        if curve != Some(OID_P256) {
            return Err("only the EC curve P-256 is supported".into());
        }
        return match key {
            [4, point @ ..] if point.len() == 64 => Ok(PublicKey::P256 {
                x: point[..32].to_vec(),
                y: point[32..].to_vec(),
            }),
            _ => Err("the P-256 point is not uncompressed".into()),
        };
    }
    Err("the public key is neither RSA nor EC".into())
}

fn rsa_from_pkcs1(der_bytes: &[u8]) -> Result<PublicKey, String> {
    let (0x30, seq, _) = der(der_bytes)? else {
        return Err("RSAPublicKey is not a SEQUENCE".into());
    };
    let (0x02, n, rest) = der(seq)? else {
        return Err("RSA modulus is not an INTEGER".into());
    };
    let (0x02, e, _) = der(rest)? else {
        return Err("RSA exponent is not an INTEGER".into());
    };
    Ok(PublicKey::Rsa {
        n: strip_zeros(n),
        e: strip_zeros(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let key = PublicKey::from_jwk(&jwk).unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn es256_round_trip_and_refusals() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let key = PublicKey::P256 {
            x: point[1..33].to_vec(),
            y: point[33..].to_vec(),
        };
        let sig = pair.sign(&rng, b"msg").unwrap();
        assert!(key.verify("ES256", b"msg", sig.as_ref()).is_ok());
        assert!(key.verify("ES256", b"other", sig.as_ref()).is_err());
        assert!(key.verify("RS256", b"msg", sig.as_ref()).is_err());
        assert!(key.verify("HS256", b"msg", sig.as_ref()).is_err());

        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(point);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            codec::b64url_encode(&spki)
        );
        assert_eq!(PublicKey::from_pem(&pem).unwrap(), key);
    }

    #[test]
    fn bad_keys_are_refused() {
        let with_private = json!({ "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA" });
        assert!(PublicKey::from_jwk(&with_private)
            .unwrap_err()
            .contains("private"));
        assert!(PublicKey::from_jwk(&json!({ "kty": "oct", "k": "AA" })).is_err());
        assert!(PublicKey::from_jwk(&json!({ "kty": "EC", "crv": "P-384" })).is_err());
        assert!(PublicKey::from_pem("not a pem").is_err());
        assert!(PublicKey::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        )
        .is_err());
        assert!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----")
                .is_err()
        );
        assert!(Jws::parse("a.b").is_err());
        assert!(Jws::parse("e30.e30.***").is_err());
        let jws = Jws::parse(&format!(
            "{}.e30.",
            codec::b64url_encode(br#"{"alg":"none"}"#)
        ))
        .unwrap();
        assert!(jws.alg().unwrap_err().contains("none"));
    }
}
