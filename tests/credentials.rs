//! Credentials at rest and on the wire: secret and key files readable by others are
//! reported once, and client assertions survive an identity provider whose clock is behind.

mod common;

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::Recorder;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use tokenward::{Client, Config, EventKind};
use tokenward_mock::MockServer;

/// A directory of its own for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tw-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn file(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A fresh P-256 key: (PKCS#8 private key PEM, SubjectPublicKeyInfo PEM).
fn p256_key() -> (String, String) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // SubjectPublicKeyInfo: id-ecPublicKey, prime256v1, then the uncompressed point.
    let mut spki = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    spki.extend_from_slice(pair.public_key().as_ref());
    (pem("PRIVATE KEY", pkcs8.as_ref()), pem("PUBLIC KEY", &spki))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key_client(mock: &MockServer, key_file: &Path) -> Client {
    let config = json!({
        "token_url": mock.token_url(), "client_id": "demo-client",
        "auth_method": "private_key_jwt", "private_key_file": key_file,
        "allow_http": true, "retry": { "max_attempts": 1 },
    });
    Client::new(Config::from_json(&config.to_string()).unwrap()).unwrap()
}

#[test]
fn an_assertion_is_accepted_by_a_provider_whose_clock_runs_behind() {
    let dir = TempDir::new("skew");
    let (private, public) = p256_key();
    let key_file = dir.file("key.pem", private.as_bytes(), 0o600);
    let mock = MockServer::start();
    // The provider's clock is 20 s behind ours: an assertion "not before now" is, to it, from
    // the future.
    mock.configure(json!({ "assertion_keys": { "demo-client": public }, "clock_skew_secs": -20 }));
    let c = key_client(&mock, &key_file);
    c.token().expect("the backdated assertion is accepted");
    let body = &mock.token_log()[0].body;
    let assertion = body
        .split('&')
        .find_map(|f| f.strip_prefix("client_assertion="))
        .expect("an assertion");
    let claims = tokenward_mock::decode_claims(assertion).expect("a JWT");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let iat = claims["iat"].as_u64().expect("iat");
    assert_eq!(claims["nbf"].as_u64(), Some(iat), "nbf = iat");
    assert!(iat + 30 <= now, "iat {iat} is backdated 30 s from {now}");
    assert!(
        claims["exp"].as_u64().unwrap() > now,
        "and still expires after now"
    );
}

#[test]
fn a_secret_file_others_can_read_is_reported_once() {
    let dir = TempDir::new("mode");
    let mock = MockServer::start();
    let config = |path: &Path| {
        json!({
            "token_url": mock.token_url(), "client_id": "demo-client",
            "client_secret_file": path, "allow_http": true,
        })
        .to_string()
    };
    let exposed = dir.file("secret-0644", b"demo-secret\n", 0o644);
    let c = Client::new(Config::from_json(&config(&exposed)).unwrap()).unwrap();
    let first = Recorder::attach(&c);
    c.token().expect("not a refusal: the token is fetched");
    let warnings: Vec<String> = first
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::Warning)
        .map(|e| e.message.clone())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("client_secret_file"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("0644"), "{}", warnings[0]);
    assert!(!warnings[0].contains("demo-secret"), "{}", warnings[0]);
    assert_eq!(EventKind::Warning.as_str(), "warning");
    // Once per client: a later hook does not get it again.
    let second = Recorder::attach(&c);
    c.invalidate(None);
    c.token().unwrap();
    assert!(
        !second.kinds().contains(&EventKind::Warning),
        "{:?}",
        second.kinds()
    );

    let private = dir.file("secret-0600", b"demo-secret", 0o600);
    let c = Client::new(Config::from_json(&config(&private)).unwrap()).unwrap();
    let quiet = Recorder::attach(&c);
    c.token().unwrap();
    assert!(
        !quiet.kinds().contains(&EventKind::Warning),
        "{:?}",
        quiet.kinds()
    );
}

#[test]
fn a_key_file_its_group_can_read_is_reported() {
    let dir = TempDir::new("keymode");
    let (private, _) = p256_key();
    let key_file = dir.file("key.pem", private.as_bytes(), 0o640);
    let mock = MockServer::start();
    let c = key_client(&mock, &key_file);
    let events = Recorder::attach(&c);
    let messages = events.messages();
    assert_eq!(events.kinds(), [EventKind::Warning], "{messages:?}");
    assert!(messages[0].contains("private_key_file"), "{}", messages[0]);
    assert!(messages[0].contains("its group"), "{}", messages[0]);
}
