//! Unit tests of keys, proofs, thumbprints, `htu`, nonces and challenges, without HTTP.

use super::key::sha256_b64url;
use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use ring::signature::{
    UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

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
