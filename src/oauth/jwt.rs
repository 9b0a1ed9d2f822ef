//! What tokenward reads from a JWT access token: only the lifetime it declares, used when
//! the token response states none or states more. The signature is not checked (the token
//! is the resource server's to verify), so nothing here is trusted beyond a lifetime hint.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD_NO_PAD_INDIFFERENT, URL_SAFE_NO_PAD_INDIFFERENT};
use base64::Engine as _;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The lifetime a JWT declares (`exp - iat`), used when the server sends no `expires_in`.
/// Only the payload is read; tokenward does not (and need not) verify the signature.
pub(super) fn jwt_lifetime(token: &str) -> Option<Duration> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    let bytes = base64url_decode(payload)?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    let secs = claims.exp? - claims.iat?;
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(1e10)))
}

/// The `exp` and `iat` of a JWT payload as `serde_json::Value` would give them (the last of
/// repeated members counts; a member that is not a number gives `None`), read without
/// building the payload's tree: the other claims are parsed as strictly but not kept. A
/// payload that is not a JSON object fails to parse, which `jwt_lifetime` reads as no
/// lifetime, as it did a `Value` that is not an object.
#[derive(Default)]
struct Claims {
    exp: Option<f64>,
    iat: Option<f64>,
}

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ClaimsVisitor;
        impl<'de> Visitor<'de> for ClaimsVisitor {
            type Value = Claims;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Claims, A::Error> {
                let mut claims = Claims::default();
                while let Some(name) = map.next_key::<ClaimName>()? {
                    match name {
                        ClaimName::Exp => claims.exp = map.next_value::<AsF64>()?.0,
                        ClaimName::Iat => claims.iat = map.next_value::<AsF64>()?.0,
                        ClaimName::Other => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(claims)
            }
        }
        deserializer.deserialize_any(ClaimsVisitor)
    }
}

/// A member name, compared after JSON unescaping as `Value` compares it.
enum ClaimName {
    Exp,
    Iat,
    Other,
}

impl<'de> Deserialize<'de> for ClaimName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = ClaimName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> std::result::Result<ClaimName, E> {
                Ok(match name {
                    "exp" => ClaimName::Exp,
                    "iat" => ClaimName::Iat,
                    _ => ClaimName::Other,
                })
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// Any JSON value, as `Value::as_f64` reads it: a number, or `None` for anything else.
struct AsF64(Option<f64>);

impl<'de> Deserialize<'de> for AsF64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct NumberVisitor;
        impl<'de> Visitor<'de> for NumberVisitor {
            type Value = AsF64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<AsF64, E> {
                Ok(AsF64(Some(n as f64)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<AsF64, E> {
                Ok(AsF64(Some(n as f64)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> std::result::Result<AsF64, E> {
                Ok(AsF64(Some(n)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<AsF64, E> {
                Ok(AsF64(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<AsF64, E> {
                Ok(AsF64(None))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<AsF64, E> {
                Ok(AsF64(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<AsF64, A::Error> {
                Skip.visit_seq(seq).map(|_| AsF64(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<AsF64, A::Error> {
                Skip.visit_map(map).map(|_| AsF64(None))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

/// Any JSON value, parsed as `Value` parses it (numbers are range-checked, strings must be
/// valid) but kept nowhere.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

/// base64url as JWTs use it (RFC 7515 §2: no padding), tolerating padding and the standard
/// alphabet from servers that get it wrong; this only reads a lifetime hint.
fn base64url_decode(input: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD_INDIFFERENT
        .decode(input)
        .or_else(|_| STANDARD_NO_PAD_INDIFFERENT.decode(input))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn jwt_lifetime_reads_exp_minus_iat() {
        // {"alg":"none"} . {"iat":1000,"exp":1600} . sig
        let token = "eyJhbGciOiJub25lIn0.eyJpYXQiOjEwMDAsImV4cCI6MTYwMH0.c2ln";
        assert_eq!(jwt_lifetime(token), Some(Duration::from_secs(600)));
        assert_eq!(jwt_lifetime("opaque-token"), None);
        assert_eq!(jwt_lifetime("a.b.c"), None);
        // exp before iat is not a lifetime.
        let bad = "eyJhbGciOiJub25lIn0.eyJpYXQiOjE2MDAsImV4cCI6MTAwMH0.c2ln";
        assert_eq!(jwt_lifetime(bad), None);
    }

    /// What the claims reader must give: `exp` and `iat` as a parsed `Value` has them.
    fn by_value(payload: &str) -> Option<(Option<f64>, Option<f64>)> {
        let value: serde_json::Value = serde_json::from_str(payload).ok()?;
        let object = value.as_object()?;
        let number = |name: &str| object.get(name).and_then(serde_json::Value::as_f64);
        Some((number("exp"), number("iat")))
    }

    #[test]
    fn claims_are_read_as_a_parsed_value_reads_them() {
        let payloads = [
            r#"{"iat":1000,"exp":1600}"#,
            r#"{"exp":1600,"iat":1000,"exp":1700}"#,
            r#"{"exp":1600,"iat":1000,"exp":"soon"}"#,
            r#"{"exp":"1600","iat":1000}"#,
            r#"{"e\u0078p":1600.5,"iat":-3,"x":{"exp":1},"y":[1,{"iat":2}]}"#,
            r#"{"exp":18446744073709551616,"iat":0}"#,
            r#"{"exp":1600,"iat":1000,"big":1e400}"#,
            r#"{"exp":1600,"iat":1000,"s":"\ud800"}"#,
            r#"{"exp":1600,"iat":1000} x"#,
            r#"{"exp":1600,"iat":1000,}"#,
            r#"{"exp":null,"iat":true,"n":[null,false,"a",1.5,-2]}"#,
            r#"{"exp":[1600],"iat":{"v":1000}}"#,
            r#"[{"exp":1600,"iat":1000}]"#,
            r#""exp""#,
            "1600",
            "",
        ];
        for payload in payloads {
            let by_claims = serde_json::from_str::<Claims>(payload)
                .ok()
                .map(|c| (c.exp, c.iat));
            let expected = by_value(payload);
            assert_eq!(by_claims, expected, "{payload}");
            let token = format!("h.{}.s", URL_SAFE_NO_PAD.encode(payload));
            let lifetime = expected
                .and_then(|(exp, iat)| Some(exp? - iat?))
                .filter(|secs| secs.is_finite() && *secs > 0.0)
                .map(|secs| Duration::from_secs_f64(secs.min(1e10)));
            assert_eq!(jwt_lifetime(&token), lifetime, "{payload}");
        }
    }
}
