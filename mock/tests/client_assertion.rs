//! Client assertions (`private_key_jwt` and federated credentials, RFC 7523) verified
//! against a registered public key.

mod support;

use serde_json::{json, Value};
use support::jose::{unique, unix_now, TestKey};
use support::*;
use tokenward_mock::{decode_claims, MockServer};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn register(mock: &MockServer, id: &str, key: Value) {
    let reply = post_json(
        mock,
        "/admin/config",
        &json!({ "assertion_keys": { id: key } }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
}

fn claims_for(mock: &MockServer, iss: &str, sub: &str) -> Value {
    json!({ "iss": iss, "sub": sub, "aud": mock.token_url(), "jti": unique("assertion"),
            "iat": unix_now(), "exp": unix_now() + 60 })
}

fn assertion(key: &TestKey, claims: &Value) -> String {
    key.jwt(&json!({ "alg": key.alg(), "typ": "JWT" }), claims)
}

/// A token request authenticated by `assertion` (with `client_id` in the form if given).
fn token_by_assertion(mock: &MockServer, client_id: Option<&str>, assertion: &str) -> Reply {
    let mut form = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={}",
        form_encode(JWT_BEARER),
        form_encode(assertion)
    );
    if let Some(id) = client_id {
        form.push_str(&format!("&client_id={}", form_encode(id)));
    }
    token_request(mock, "/oauth/token", &form, &[])
}

fn assert_refused(reply: &Reply, why: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.json()["error"], "invalid_client");
    let description = reply.json()["error_description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(description.contains(why), "{description:?} lacks {why:?}");
    assert!(
        reply.header("www-authenticate").is_none(),
        "no Basic challenge"
    );
}

#[test]
fn assertions_signed_with_the_registered_key_authenticate_the_client() {
    for key in [
        TestKey::es256(),
        TestKey::rsa("RS256"),
        TestKey::rsa("PS256"),
    ] {
        let mock = MockServer::start();
        register(&mock, "jwt-client", json!(key.public_pem()));
        let signed = assertion(&key, &claims_for(&mock, "jwt-client", "jwt-client"));
        let reply = token_by_assertion(&mock, Some("jwt-client"), &signed);
        assert_eq!(reply.status, 200, "{}: {}", key.alg(), reply.text());
        let token = reply.json()["access_token"].as_str().unwrap().to_string();
        let claims = decode_claims(&token).unwrap();
        assert_eq!(claims["client_id"], "jwt-client");
        assert_eq!(
            claims["extra"],
            json!({}),
            "the assertion is not copied into the token"
        );
        // Without a form client_id the assertion's `sub` names the client.
        let signed = assertion(&key, &claims_for(&mock, "jwt-client", "jwt-client"));
        assert_eq!(token_by_assertion(&mock, None, &signed).status, 200);
    }
}

#[test]
fn pkcs1_rsa_public_keys_work_too() {
    let mock = MockServer::start();
    let key = TestKey::rsa("PS256");
    register(&mock, "c", json!(support::jose::RSA_PUBLIC_PKCS1_PEM));
    let signed = assertion(&key, &claims_for(&mock, "c", "c"));
    assert_eq!(token_by_assertion(&mock, Some("c"), &signed).status, 200);
}

#[test]
fn every_rule_is_checked() {
    let mock = MockServer::start();
    let key = TestKey::es256();
    register(
        &mock,
        "jwt-client",
        json!({ "public_key_pem": key.public_pem() }),
    );
    let good = || claims_for(&mock, "jwt-client", "jwt-client");
    let with = |mutate: &dyn Fn(&mut Value)| {
        let mut claims = good();
        mutate(&mut claims);
        assertion(&key, &claims)
    };
    let other_key = assertion(&TestKey::es256(), &good());
    let rsa_signed = assertion(&TestKey::rsa("RS256"), &good());
    let unsigned = format!(
        "{}.{}.",
        support::jose::b64url(br#"{"alg":"none"}"#),
        support::jose::b64url(good().to_string().as_bytes())
    );
    let cases: Vec<(String, &str)> = vec![
        (other_key, "signature does not verify"),
        (rsa_signed, "does not fit the key"),
        (unsigned, "`none` is not accepted"),
        ("garbage".into(), "three dot-separated"),
        (with(&|c| c["iss"] = json!("someone-else")), "`iss`"),
        (with(&|c| c["sub"] = json!("someone-else")), "`sub`"),
        (
            with(&|c| c["aud"] = json!("https://elsewhere.example/token")),
            "`aud`",
        ),
        (with(&|c| c["aud"] = json!([])), "`aud`"),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            "`aud`",
        ),
        (with(&|c| c["exp"] = json!(unix_now() - 1)), "expired"),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "`exp`",
        ),
        (with(&|c| c["nbf"] = json!(unix_now() + 600)), "`nbf`"),
    ];
    for (signed, why) in &cases {
        assert_refused(&token_by_assertion(&mock, Some("jwt-client"), signed), why);
    }
    let wrong_type = format!(
        "grant_type=client_credentials&client_id=jwt-client&client_assertion_type=urn%3Ax&client_assertion={}",
        form_encode(&assertion(&key, &good()))
    );
    assert_refused(
        &token_request(&mock, "/oauth/token", &wrong_type, &[]),
        "client_assertion_type",
    );
    // An issuer in a list of audiences is accepted, and so is the URL the request used.
    let issuer_aud = with(&|c| c["aud"] = json!(["x", mock.url()]));
    assert_eq!(
        token_by_assertion(&mock, Some("jwt-client"), &issuer_aud).status,
        200
    );
    let by_path = with(&|c| c["aud"] = json!(format!("{}/connect/token", mock.url())));
    let form = format!(
        "grant_type=client_credentials&client_id=jwt-client&client_assertion_type={}&client_assertion={}",
        form_encode(JWT_BEARER),
        form_encode(&by_path)
    );
    assert_eq!(
        token_request(&mock, "/connect/token", &form, &[]).status,
        200
    );
    assert_eq!(mock.stats().tokens_issued, 2);
}

#[test]
fn unregistered_clients_and_mixed_methods_keep_their_old_answers() {
    let mock = MockServer::start();
    let key = TestKey::es256();
    let signed = assertion(&key, &claims_for(&mock, "demo-client", "demo-client"));
    let reply = token_by_assertion(&mock, Some("demo-client"), &signed);
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json()["error_description"],
        "Client authentication failed."
    );
    assert_eq!(mock.token_log().len(), 1, "logged for inspection");

    register(&mock, "demo-client", json!(key.public_pem()));
    let form = format!(
        "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret&client_assertion_type={}&client_assertion={}",
        form_encode(JWT_BEARER),
        form_encode(&signed)
    );
    let both = token_request(&mock, "/oauth/token", &form, &[]);
    assert_eq!(both.status, 400);
    assert_eq!(both.json()["error"], "invalid_request");
    // The secret still works on its own.
    assert!(!demo_token(&mock).is_empty());
}

#[test]
fn federated_credentials_use_the_configured_issuer_subject_and_audience() {
    let mock = MockServer::start();
    let key = TestKey::rsa("RS256");
    register(
        &mock,
        "app-123",
        json!({ "public_key_pem": key.public_pem(),
                "issuer": "https://oidc.cluster.example",
                "subject": "system:serviceaccount:ns:workload",
                "audience": "api://AzureADTokenExchange" }),
    );
    let claims = json!({ "iss": "https://oidc.cluster.example",
                         "sub": "system:serviceaccount:ns:workload",
                         "aud": ["api://AzureADTokenExchange"],
                         "exp": unix_now() + 300 });
    let signed = assertion(&key, &claims);
    let reply = token_by_assertion(&mock, Some("app-123"), &signed);
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Found by its subject when the form has no client_id.
    let reply = token_by_assertion(&mock, None, &signed);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let token = reply.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(decode_claims(&token).unwrap()["client_id"], "app-123");
    // iss = sub = client id is no longer what this client's assertions say.
    let plain = assertion(&key, &claims_for(&mock, "app-123", "app-123"));
    assert_refused(&token_by_assertion(&mock, Some("app-123"), &plain), "`iss`");
}

#[test]
fn assertion_keys_are_reported_removed_validated_and_reset() {
    let mock = MockServer::start();
    let key = TestKey::es256();
    let discovery = || get(&mock, "/.well-known/openid-configuration").json();
    assert_eq!(
        discovery()["token_endpoint_auth_methods_supported"],
        json!(["client_secret_post", "client_secret_basic"])
    );
    register(&mock, "c1", json!(key.public_pem()));
    let config = mock.config();
    assert_eq!(
        config["assertion_keys"]["c1"]["public_key_pem"],
        key.public_pem()
    );
    assert_eq!(config["assertion_keys"]["c1"]["subject"], Value::Null);
    assert!(discovery()["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("private_key_jwt")));
    for bad in [
        json!({ "assertion_keys": { "c2": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" } }),
        json!({ "assertion_keys": { "c2": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----" } }),
        json!({ "assertion_keys": { "c2": { "public_key_pem": key.public_pem(), "subjcet": "x" } } }),
        json!({ "assertion_keys": { "c2": { "public_key_pem": key.public_pem(), "subject": 1 } } }),
    ] {
        let reply = post_json(&mock, "/admin/config", &bad);
        assert_eq!(reply.status, 400, "{bad}");
    }
    assert!(mock.config()["assertion_keys"].get("c2").is_none());
    register(&mock, "c1", Value::Null);
    assert_eq!(mock.config()["assertion_keys"], json!({}));
    register(&mock, "c1", json!(key.public_pem()));
    mock.reset();
    assert_eq!(mock.config()["assertion_keys"], json!({}));
}
