//! DPoP (RFC 9449): proofs at the token endpoint, bound tokens at the API, nonces, and
//! every refusal. Proofs are built here with ring, independently of the mock's checks.

mod support;

use serde_json::{json, Value};
use support::jose::{unique, unix_now, TestKey};
use support::*;
use tokenward_mock::{decode_claims, MockServer};

const DEMO_FORM: &str =
    "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn dpop_mock(mode: &str) -> MockServer {
    let mock = MockServer::start();
    mock.configure(json!({ "dpop": mode }));
    mock
}

/// A token request carrying `proofs` as DPoP headers.
fn token_with(mock: &MockServer, proofs: &[&str]) -> Reply {
    let mut headers = vec![FORM];
    headers.extend(proofs.iter().map(|p| ("DPoP", *p)));
    request(mock, "POST", "/oauth/token", &headers, DEMO_FORM.as_bytes())
}

fn bound_token(mock: &MockServer, key: &TestKey) -> String {
    let proof = key.proof("POST", &mock.token_url(), None, None);
    let reply = token_with(mock, &[&proof]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["token_type"], "DPoP");
    reply.json()["access_token"].as_str().unwrap().to_string()
}

/// A GET /api/items presenting `token` with `scheme` and, if given, a proof.
fn api_with(mock: &MockServer, scheme: &str, token: &str, proof: Option<&str>) -> Reply {
    let auth = format!("{scheme} {token}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("tenant-code", "T1"),
        ("api-version", "2"),
    ];
    if let Some(proof) = proof {
        headers.push(("DPoP", proof));
    }
    request(mock, "GET", "/api/items", &headers, b"")
}

fn api_url(mock: &MockServer) -> String {
    format!("{}/api/items", mock.url())
}

fn assert_token_refusal(reply: &Reply, error: &str, description_part: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["error"], error, "{}", reply.text());
    let description = reply.json()["error_description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        description.contains(description_part),
        "{description:?} lacks {description_part:?}"
    );
}

fn assert_api_refusal(reply: &Reply, error: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.json(), json!({ "error": error }));
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with(&format!("DPoP error=\"{error}\"")),
        "{challenge}"
    );
    assert!(
        challenge.contains("algs=\"ES256 PS256 RS256\""),
        "{challenge}"
    );
}

#[test]
fn a_proven_key_gets_a_bound_token_that_works_only_with_proofs() {
    for key in [
        TestKey::es256(),
        TestKey::rsa("RS256"),
        TestKey::rsa("PS256"),
    ] {
        let mock = dpop_mock("allowed");
        let token = bound_token(&mock, &key);
        let claims = decode_claims(&token).unwrap();
        assert_eq!(
            claims["cnf"],
            json!({ "jkt": key.thumbprint() }),
            "{}",
            key.alg()
        );

        let proof = key.proof("GET", &api_url(&mock), Some(&token), None);
        let ok = api_with(&mock, "DPoP", &token, Some(&proof));
        assert_eq!(ok.status, 200, "{}: {}", key.alg(), ok.text());
        assert_eq!(ok.json()["jti"], claims["jti"]);

        let as_bearer = api_with(&mock, "Bearer", &token, None);
        assert_api_refusal(&as_bearer, "invalid_token");
        assert!(as_bearer
            .header("www-authenticate")
            .unwrap()
            .contains("DPoP-bound"));
        let no_proof = api_with(&mock, "DPoP", &token, None);
        assert_api_refusal(&no_proof, "invalid_dpop_proof");
        // GraphQL answers its own way, but refuses the same presentations.
        let auth = format!("Bearer {token}");
        let gql = request(
            &mock,
            "POST",
            "/graphql",
            &[("Authorization", &auth)],
            b"{}",
        );
        assert_eq!(
            gql.json()["errors"][0]["extensions"]["code"],
            "UNAUTHENTICATED"
        );
    }
}

#[test]
fn modes_off_allowed_and_required() {
    let key = TestKey::es256();
    let off = MockServer::start();
    assert_eq!(off.config()["dpop"], "off");
    let proof = key.proof("POST", &off.token_url(), None, None);
    let reply = token_with(&off, &[&proof]);
    assert_eq!(
        reply.json()["token_type"],
        "Bearer",
        "a server without DPoP ignores it"
    );
    let token = reply.json()["access_token"].as_str().unwrap().to_string();
    assert!(decode_claims(&token).unwrap().get("cnf").is_none());
    assert_eq!(api_with(&off, "Bearer", &token, None).status, 200);
    assert_api_refusal(&api_with(&off, "DPoP", &token, None), "invalid_token");

    let allowed = dpop_mock("allowed");
    assert_eq!(token_with(&allowed, &[]).json()["token_type"], "Bearer");

    let required = dpop_mock("required");
    assert_token_refusal(
        &token_with(&required, &[]),
        "invalid_dpop_proof",
        "required",
    );
    let proof = key.proof("POST", &required.token_url(), None, None);
    assert_eq!(token_with(&required, &[&proof]).status, 200);
}

#[test]
fn the_token_endpoint_refuses_every_kind_of_bad_proof() {
    let mock = dpop_mock("required");
    let key = TestKey::es256();
    let url = mock.token_url();
    let header = key.proof_header();
    let claims = || key.proof_claims("POST", &url, None, None);
    let with = |mutate: &dyn Fn(&mut Value, &mut Value)| {
        let (mut h, mut c) = (header.clone(), claims());
        mutate(&mut h, &mut c);
        key.jwt(&h, &c)
    };
    let tampered = {
        let proof = key.proof("POST", &url, None, None);
        let parts: Vec<&str> = proof.split('.').collect();
        let other = key.proof_claims("POST", &url, None, None);
        format!(
            "{}.{}.{}",
            parts[0],
            support::jose::b64url(other.to_string().as_bytes()),
            parts[2]
        )
    };
    let other_key_sig = {
        let other = TestKey::es256();
        let proof = other.proof("POST", &url, None, None);
        let mine = key.proof("POST", &url, None, None);
        let (a, b) = (
            mine.rsplit_once('.').unwrap().0,
            proof.rsplit_once('.').unwrap().1,
        );
        format!("{a}.{b}")
    };
    let now = unix_now() as i64;
    let cases: Vec<(String, &str)> = vec![
        ("not-a-jwt".into(), "three dot-separated"),
        (with(&|h, _| h["typ"] = json!("JWT")), "typ"),
        (
            with(&|h, _| h["alg"] = json!("none")),
            "`none` is not accepted",
        ),
        (
            with(&|h, _| h["alg"] = json!("HS256")),
            "`HS256` is not accepted",
        ),
        (
            with(&|h, _| h["alg"] = json!("RS256")),
            "does not fit the key",
        ),
        (
            with(&|h, _| {
                h.as_object_mut().unwrap().remove("jwk");
            }),
            "jwk",
        ),
        (
            with(&|h, _| h["jwk"]["d"] = json!("AAAA")),
            "private member `d`",
        ),
        (tampered, "signature does not verify"),
        (other_key_sig, "signature does not verify"),
        (
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            "no `jti`",
        ),
        (with(&|_, c| c["htm"] = json!("GET")), "`htm`"),
        (
            with(&|_, c| c["htu"] = json!("http://127.0.0.1:1/oauth/token")),
            "`htu` does not match",
        ),
        (
            with(&|_, c| c["htu"] = json!(format!("{url}?x=1"))),
            "query or fragment",
        ),
        (
            with(&|_, c| c["htu"] = json!(format!("{url}#f"))),
            "query or fragment",
        ),
        (with(&|_, c| c["iat"] = json!(now - 600)), "`iat`"),
        (with(&|_, c| c["iat"] = json!(now + 600)), "`iat`"),
        (with(&|_, c| c["iat"] = json!("now")), "`iat`"),
    ];
    for (proof, why) in &cases {
        assert_token_refusal(&token_with(&mock, &[proof]), "invalid_dpop_proof", why);
    }
    let proof = key.proof("POST", &url, None, None);
    let other = key.proof("POST", &url, None, None);
    assert_token_refusal(
        &token_with(&mock, &[&proof, &other]),
        "invalid_dpop_proof",
        "More than one",
    );
    assert_eq!(token_with(&mock, &[&proof]).status, 200);
    assert_token_refusal(
        &token_with(&mock, &[&proof]),
        "invalid_dpop_proof",
        "used before",
    );
    assert_eq!(mock.stats().tokens_issued, 1);
}

#[test]
fn htu_may_name_the_mock_by_its_host_header_and_in_any_case() {
    // The Host header says `localhost`; the proof names it in upper case.
    let mock = dpop_mock("required");
    let key = TestKey::es256();
    let by_host = format!("http://LOCALHOST:{}/oauth/token", mock.port());
    let with_host_only = {
        let mut conn = Conn::open(&mock);
        let raw = format!(
            "POST /oauth/token HTTP/1.1\r\nHost: localhost:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nDPoP: {}\r\nContent-Length: {}\r\n\r\n{DEMO_FORM}",
            mock.port(),
            key.proof("POST", &by_host, None, None),
            DEMO_FORM.len()
        );
        conn.write_raw(raw.as_bytes());
        conn.read_reply().unwrap()
    };
    assert_eq!(with_host_only.status, 200, "{}", with_host_only.text());
}

#[test]
fn token_endpoint_nonces_are_demanded_then_accepted_and_can_rotate() {
    let mock = dpop_mock("required");
    let reply = post_json(&mock, "/admin/config", &json!({ "dpop_nonce": "n-1" }));
    assert_eq!(reply.json()["dpop_nonce"], "n-1");
    let key = TestKey::es256();
    let url = mock.token_url();
    let first = token_with(&mock, &[&key.proof("POST", &url, None, None)]);
    assert_token_refusal(&first, "use_dpop_nonce", "nonce");
    assert_eq!(first.header("dpop-nonce"), Some("n-1"));
    let nonce = first.header("dpop-nonce").unwrap().to_string();
    let second = token_with(&mock, &[&key.proof("POST", &url, None, Some(&nonce))]);
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.header("dpop-nonce"), Some("n-1"));

    mock.configure(json!({ "dpop_nonce": "n-2" }));
    let stale = token_with(&mock, &[&key.proof("POST", &url, None, Some("n-1"))]);
    assert_token_refusal(&stale, "use_dpop_nonce", "nonce");
    assert_eq!(stale.header("dpop-nonce"), Some("n-2"));
    // A proof that is wrong in another way is invalid, not a nonce matter.
    let mut claims = key.proof_claims("POST", &url, None, None);
    claims["htm"] = json!("PUT");
    let wrong = token_with(&mock, &[&key.jwt(&key.proof_header(), &claims)]);
    assert_token_refusal(&wrong, "invalid_dpop_proof", "htm");
    assert!(wrong.header("dpop-nonce").is_none());
}

#[test]
fn the_api_checks_ath_key_method_replay_and_its_own_nonce() {
    let mock = dpop_mock("allowed");
    let key = TestKey::es256();
    let token = bound_token(&mock, &key);
    let url = api_url(&mock);

    let other_token = bound_token(&mock, &key);
    let for_other = key.proof("GET", &url, Some(&other_token), None);
    assert_api_refusal(
        &api_with(&mock, "DPoP", &token, Some(&for_other)),
        "invalid_dpop_proof",
    );
    let no_ath = key.proof("GET", &url, None, None);
    let reply = api_with(&mock, "DPoP", &token, Some(&no_ath));
    assert_api_refusal(&reply, "invalid_dpop_proof");
    assert!(reply.header("www-authenticate").unwrap().contains("`ath`"));

    let thief = TestKey::es256();
    let stolen = thief.proof("GET", &url, Some(&token), None);
    let reply = api_with(&mock, "DPoP", &token, Some(&stolen));
    assert_api_refusal(&reply, "invalid_dpop_proof");
    assert!(reply
        .header("www-authenticate")
        .unwrap()
        .contains("another key"));

    let post = key.proof("POST", &url, Some(&token), None);
    assert_api_refusal(
        &api_with(&mock, "DPoP", &token, Some(&post)),
        "invalid_dpop_proof",
    );

    let good = key.proof("GET", &url, Some(&token), None);
    assert_eq!(api_with(&mock, "DPoP", &token, Some(&good)).status, 200);
    let replay = api_with(&mock, "DPoP", &token, Some(&good));
    assert_api_refusal(&replay, "invalid_dpop_proof");
    assert!(replay
        .header("www-authenticate")
        .unwrap()
        .contains("used before"));

    mock.configure(json!({ "dpop_api_nonce": "api-n" }));
    let fresh = key.proof("GET", &url, Some(&token), None);
    let reply = api_with(&mock, "DPoP", &token, Some(&fresh));
    assert_api_refusal(&reply, "use_dpop_nonce");
    assert_eq!(reply.header("dpop-nonce"), Some("api-n"));
    let with_nonce = key.proof("GET", &url, Some(&token), Some("api-n"));
    assert_eq!(
        api_with(&mock, "DPoP", &token, Some(&with_nonce)).status,
        200
    );
    // The API nonce is not the token endpoint's.
    assert_eq!(
        token_with(&mock, &[&key.proof("POST", &mock.token_url(), None, None)]).status,
        200
    );

    let unknown = api_with(
        &mock,
        "DPoP",
        "not-a-token",
        Some(&key.proof("GET", &url, Some("not-a-token"), None)),
    );
    assert_api_refusal(&unknown, "invalid_token");
    mock.revoke_all();
    let revoked = api_with(
        &mock,
        "DPoP",
        &token,
        Some(&key.proof("GET", &url, Some(&token), Some("api-n"))),
    );
    assert_api_refusal(&revoked, "invalid_token");
    assert!(revoked
        .header("www-authenticate")
        .unwrap()
        .contains("revoked"));
}

#[test]
fn dpop_settings_over_admin_http_are_checked_and_reset() {
    let mock = MockServer::start();
    for bad in [
        json!({ "dpop": "on" }),
        json!({ "dpop_nonce": "" }),
        json!({ "dpop_nonce": "has space" }),
        json!({ "dpop_iat_window_secs": 0 }),
    ] {
        assert_eq!(post_json(&mock, "/admin/config", &bad).status, 400, "{bad}");
    }
    let reply = post_json(
        &mock,
        "/admin/config",
        &json!({ "dpop": "required", "dpop_iat_window_secs": 5, "dpop_api_nonce": "x" }),
    );
    assert_eq!(reply.status, 200);
    let config = reply.json();
    assert_eq!(
        (
            &config["dpop"],
            &config["dpop_iat_window_secs"],
            &config["dpop_api_nonce"]
        ),
        (&json!("required"), &json!(5), &json!("x"))
    );
    let discovery = get(&mock, "/.well-known/openid-configuration").json();
    assert_eq!(
        discovery["dpop_signing_alg_values_supported"],
        json!(["ES256", "PS256", "RS256"])
    );
    // A tighter window refuses a proof 30 s old.
    let key = TestKey::es256();
    let mut claims = key.proof_claims("POST", &mock.token_url(), None, None);
    claims["iat"] = json!(unix_now() - 30);
    claims["jti"] = json!(unique("old"));
    let reply = token_with(&mock, &[&key.jwt(&key.proof_header(), &claims)]);
    assert_token_refusal(&reply, "invalid_dpop_proof", "5 s");
    mock.reset();
    assert_eq!(mock.config()["dpop"], "off");
    assert!(get(&mock, "/.well-known/openid-configuration")
        .json()
        .get("dpop_signing_alg_values_supported")
        .is_none());
}
