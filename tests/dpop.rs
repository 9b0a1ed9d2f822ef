//! DPoP (RFC 9449) against the mock IdP: bound tokens, proofs at the token endpoint,
//! server nonces, the token-type rule, and secrecy of proofs.

mod common;
mod keys;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{claims, client, Recorder};
use keys::{decode_jwt, thumbprint, TempDir, TestKey, RSA_PRIVATE_PEM};
use serde_json::{json, Value};
use tokenward::{Client, Config, ErrorKind};
use tokenward_mock::hostile::{HostileServer, RawResponse};
use tokenward_mock::MockServer;

fn dpop_mock() -> MockServer {
    let mock = MockServer::start();
    mock.configure(json!({ "dpop": "required" }));
    mock
}

fn generated(mock: &MockServer) -> Client {
    client(mock, json!({ "dpop": { "generate": true } }))
}

/// The DPoP proofs of the token requests the mock received, decoded.
fn token_proofs(mock: &MockServer) -> Vec<(Value, Value)> {
    mock.token_log()
        .iter()
        .map(|r| decode_jwt(r.headers.get("dpop").expect("a DPoP header")))
        .collect()
}

#[test]
fn a_dpop_client_gets_a_token_bound_to_its_key() {
    let mock = dpop_mock();
    let c = generated(&mock);
    let token = c.token().expect("a DPoP-bound token");
    assert_eq!(token.token_type(), "DPoP");
    assert!(token.is_dpop());
    assert!(token.authorization().starts_with("DPoP "));
    let jkt = c.dpop_thumbprint().expect("DPoP is configured");
    assert_eq!(claims(token.as_str())["cnf"]["jkt"], jkt);

    let proofs = token_proofs(&mock);
    assert_eq!(proofs.len(), 1);
    let (header, proof) = &proofs[0];
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(
        thumbprint(&header["jwk"]),
        jkt,
        "the header carries the public key"
    );
    assert!(header["jwk"].get("d").is_none());
    assert_eq!(proof["htm"], "POST");
    assert_eq!(proof["htu"], mock.token_url());
    assert!(proof.get("ath").is_none(), "no access token yet");
    assert!(proof["jti"].as_str().is_some_and(|j| j.len() >= 22));
    assert!(proof["iat"]
        .as_u64()
        .is_some_and(|iat| iat.abs_diff(keys::unix_now()) < 60));

    // Another client made from the same configuration generates its own key.
    let other = generated(&mock);
    assert_ne!(other.dpop_thumbprint(), Some(jkt));
}

#[test]
fn key_files_p256_and_rsa_with_either_rsa_algorithm() {
    let mock = dpop_mock();
    let dir = TempDir::new("dpop-keys");
    let p256 = TestKey::new();
    let p256_file = dir.write("p256.pem", &p256.private_pem());
    let rsa_file = dir.write("rsa.pem", RSA_PRIVATE_PEM);
    for (file, alg, expected) in [
        (&p256_file, None, "ES256"),
        (&rsa_file, None, "RS256"),
        (&rsa_file, Some("PS256"), "PS256"),
        (&rsa_file, Some("RS256"), "RS256"),
    ] {
        mock.reset();
        mock.configure(json!({ "dpop": "required" }));
        let mut dpop = json!({ "key_file": file });
        if let Some(alg) = alg {
            dpop["alg"] = json!(alg);
        }
        let c = client(&mock, json!({ "dpop": dpop }));
        let token = c.token().unwrap_or_else(|e| panic!("{expected}: {e}"));
        assert_eq!(token.token_type(), "DPoP");
        let (header, _) = &token_proofs(&mock)[0];
        assert_eq!(header["alg"], expected);
        let jkt = c.dpop_thumbprint().unwrap();
        assert_eq!(claims(token.as_str())["cnf"]["jkt"], jkt);
        if file == &p256_file {
            assert_eq!(thumbprint(&p256.jwk()), jkt, "the key in the file is used");
        }
    }
    // One key file, two clients: one key.
    let a = client(&mock, json!({ "dpop": { "key_file": &p256_file } }));
    let b = client(&mock, json!({ "dpop": { "key_file": &p256_file } }));
    assert_eq!(a.dpop_thumbprint(), b.dpop_thumbprint());
}

#[test]
fn a_token_endpoint_nonce_challenge_is_answered_once_with_the_nonce() {
    let mock = dpop_mock();
    mock.configure(json!({ "dpop_nonce": "n-1" }));
    let c = generated(&mock);
    let token = c.token().expect("token after one nonce retry");
    assert_eq!(token.token_type(), "DPoP");
    let proofs = token_proofs(&mock);
    assert_eq!(proofs.len(), 2, "the challenge, then the retry");
    assert!(proofs[0].1.get("nonce").is_none());
    assert_eq!(proofs[1].1["nonce"], "n-1");
    assert_ne!(proofs[0].1["jti"], proofs[1].1["jti"], "a new proof");
    assert_eq!(c.stats().failures, 0);

    // The nonce is remembered: the next fetch sends it at once.
    c.invalidate(None);
    c.token().unwrap();
    let proofs = token_proofs(&mock);
    assert_eq!(proofs.len(), 3);
    assert_eq!(proofs[2].1["nonce"], "n-1");

    // A rotated nonce: one more challenge, one more retry.
    mock.configure(json!({ "dpop_nonce": "n-2" }));
    c.invalidate(None);
    c.token().unwrap();
    let proofs = token_proofs(&mock);
    assert_eq!(proofs.len(), 5);
    assert_eq!(proofs[3].1["nonce"], "n-1");
    assert_eq!(proofs[4].1["nonce"], "n-2");
}

/// A token endpoint that answers every request with `use_dpop_nonce`.
fn nonce_challenger(new_nonce_each_time: bool) -> HostileServer {
    let n = AtomicUsize::new(0);
    HostileServer::start(move |_req| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        let nonce = if new_nonce_each_time {
            format!("nonce-{i}")
        } else {
            "same".into()
        };
        RawResponse::http(
            400,
            &[("Content-Type", "application/json"), ("DPoP-Nonce", &nonce)],
            r#"{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof."}"#,
        )
    })
}

fn hostile_client(server: &HostileServer, extra: Value) -> Client {
    let mut config = json!({
        "token_url": server.url_for("/token"),
        "client_id": "demo-client",
        "client_secret": "demo-secret",
        "allow_http": true,
        "error_cooldown_ms": 0,
        "dpop": { "generate": true },
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    Client::new(Config::from_json(&config.to_string()).unwrap()).unwrap()
}

#[test]
fn a_server_that_keeps_challenging_gets_one_retry_per_attempt() {
    let server = nonce_challenger(true);
    let c = hostile_client(&server, json!({}));
    let err = c.token().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OAuth, "{err}");
    assert_eq!(err.oauth_error(), Some("use_dpop_nonce"));
    assert_eq!(server.request_count(), 2, "one retry, not a loop");
    let nonces: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| {
            decode_jwt(&r.header("dpop").unwrap()).1["nonce"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(nonces, [None, Some("nonce-0".to_string())]);
}

#[test]
fn a_challenge_without_a_new_nonce_is_not_retried() {
    let server = nonce_challenger(false);
    let c = hostile_client(&server, json!({}));
    assert_eq!(c.token().unwrap_err().oauth_error(), Some("use_dpop_nonce"));
    assert_eq!(
        server.request_count(),
        2,
        "the first challenge brings a nonce"
    );
    // The nonce it gives is the one already sent: no retry this time.
    assert_eq!(c.token().unwrap_err().oauth_error(), Some("use_dpop_nonce"));
    assert_eq!(server.request_count(), 3);
}

#[test]
fn a_bearer_answer_to_a_dpop_request_is_refused() {
    // A server that ignores DPoP answers with a Bearer token.
    let mock = MockServer::start();
    let c = generated(&mock);
    let err = c.token().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadResponse, "{err}");
    assert!(err.message().contains("not DPoP-bound"), "{err}");
    assert!(err.message().contains("remove `dpop`"), "{err}");
    assert_eq!(mock.stats().tokens_issued, 1);
}

#[test]
fn a_dpop_token_without_dpop_configured_is_refused() {
    let server = HostileServer::start(|_req| {
        RawResponse::json(
            200,
            &json!({ "access_token": "abc.def.ghi", "token_type": "DPoP", "expires_in": 60 }),
        )
    });
    let c = hostile_client(&server, json!({ "dpop": null }));
    let err = c.token().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadResponse, "{err}");
    assert!(err.message().contains("configure `dpop`"), "{err}");
    assert!(server.requests()[0].header("dpop").is_none());
}

#[test]
fn token_type_dpop_is_accepted_in_any_case() {
    let server = HostileServer::start(|_req| {
        RawResponse::json(
            200,
            &json!({ "access_token": "abc.def.ghi", "token_type": "dpop", "expires_in": 60 }),
        )
    });
    let c = hostile_client(&server, json!({}));
    let token = c.token().unwrap();
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(token.authorization(), "DPoP abc.def.ghi");
}

#[test]
fn a_proof_echoed_by_the_server_never_reaches_a_message_or_an_event() {
    let server = HostileServer::start(|req| {
        let proof = req.header("dpop").unwrap_or_default();
        RawResponse::json(
            400,
            &json!({ "error": "invalid_dpop_proof", "error_description": format!("bad proof {proof}") }),
        )
    });
    let c = hostile_client(&server, json!({}));
    let events = Recorder::attach(&c);
    let err = c.token().unwrap_err();
    let proof = server.requests()[0].header("dpop").unwrap();
    assert!(proof.len() > 100);
    assert_eq!(err.oauth_error(), Some("invalid_dpop_proof"));
    for text in [err.to_string(), format!("{err:?}"), format!("{c:?}")]
        .into_iter()
        .chain(events.messages())
    {
        assert!(!text.contains(&proof), "{text}");
        let signature = proof.rsplit('.').next().unwrap();
        assert!(!text.contains(signature), "{text}");
    }
    assert!(err.message().contains("bad proof [redacted]"), "{err}");
}

#[test]
fn many_threads_fetching_share_one_proofed_request() {
    let mock = dpop_mock();
    mock.configure(json!({ "token_delay_ms": 100 }));
    let c = Arc::new(generated(&mock));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || c.token().unwrap().as_str().to_string())
        })
        .collect();
    let tokens: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(mock.stats().token_requests, 1);
}

#[test]
fn dpop_config_through_the_builder() {
    let mock = dpop_mock();
    let c = Client::new(
        Config::builder()
            .token_url(mock.token_url())
            .client_id("demo-client")
            .client_secret("demo-secret")
            .allow_http(true)
            .dpop_generate()
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(c.token().unwrap().token_type(), "DPoP");
    assert!(format!("{:?}", c.config()).contains("generate(ES256)"));
}
