//! Fleets on one host sharing tokens through a directory (`shared_cache = "file:///dir"`):
//! single flight, refresh-ahead and invalidation across processes, lock owners that die (or
//! fork first), permissions; and in one process: the hit path never touching the store,
//! unusable directories, corrupt entries, secret rotation, DPoP keys, the configuration key.
//! Multi-process tests run this binary again as worker processes (`common::fleet`).

#![cfg(target_os = "linux")]

mod common;
mod keys;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fleet::{self, sum_stat, tokens, Worker};
use serde_json::{json, Value};
use tokenward::{Client, Config, ErrorKind, EventKind};
use tokenward_mock::MockServer;

#[test]
#[ignore = "a fleet worker process, started by the other tests"]
fn worker() {
    fleet::worker_main();
}

/// A directory for one test's store (not created: the client creates it), removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("tokenward-fleet-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Dir(path)
    }

    fn store(&self) -> PathBuf {
        self.0.join("store")
    }

    fn url(&self) -> String {
        format!("file://{}", self.store().display())
    }

    fn files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.store())
            .map(|entries| entries.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions(self.store(), std::fs::Permissions::from_mode(0o700));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(mock: &MockServer, dir: &Dir, extra: Value) -> String {
    let mut extra = extra;
    extra["shared_cache"] = json!(dir.url());
    common::config_json(mock, extra)
}

fn client(config: &str) -> Client {
    Client::new(Config::from_json(config).expect("valid config")).expect("client")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_cold_fleet_makes_one_token_request_through_a_private_directory() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    let dir = Dir::new("cold");
    let config = config(&mock, &dir, json!({}));

    let results = fleet::run(8, &fleet::job("once", &config, 4), Duration::from_secs(60));

    let tokens = tokens(&results, "tokens");
    assert_eq!(tokens.len(), 32);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert_eq!(mock.stats().token_requests, 1);
    assert_eq!(sum_stat(&results, "shared_hits"), 7);
    assert_eq!(sum_stat(&results, "shared_errors"), 0);

    assert_eq!(mode(&dir.store()), 0o700, "the directory is private");
    let files = dir.files();
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "entry")),
        "{files:?}"
    );
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let contents = std::fs::read(file).unwrap();
        for clear in [tokens[0].as_str(), "demo-secret", "demo-client"] {
            assert!(!name.contains(clear), "{name}");
            assert!(
                !contents.windows(clear.len()).any(|w| w == clear.as_bytes()),
                "{name} shows `{clear}` in clear"
            );
        }
        assert!(!name.ends_with(".tmp"), "no temporary file is left: {name}");
    }
}

#[test]
fn a_running_fleet_on_one_host_refreshes_once_per_lifetime() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    // Long enough that the refresh window outlasts the 1 s expiry margin.
    let ttl = Duration::from_secs(4);
    mock.configure(json!({ "ttl_secs": ttl.as_secs() }));
    let dir = Dir::new("run");
    let run = Duration::from_secs(10);
    let mut job = fleet::job("run", &config(&mock, &dir, json!({})), 4);
    job["api"] = json!(format!("{}/api/items", mock.url()));
    job["duration_ms"] = json!(run.as_millis() as u64);

    let results = fleet::run(8, &job, Duration::from_secs(60));

    for result in &results {
        for thread in result["threads"].as_array().unwrap() {
            assert_eq!(thread["errors"], 0, "{thread}");
            assert_eq!(
                thread["refused"], 0,
                "an expired token was handed out: {thread}"
            );
            assert_eq!(thread["unusable"], 0, "{thread}");
        }
    }
    let requests = mock.stats().token_requests;
    let bound = (run.as_secs_f64() / (ttl.as_secs_f64() / 2.0 * 0.9)).ceil() as u64 + 2;
    assert!(
        requests <= bound,
        "{requests} requests: more than one process alone ({bound})"
    );
    assert!(requests >= 4, "the tokens were refreshed: {requests}");
}

#[test]
fn invalidating_the_same_token_on_every_process_of_a_host_makes_one_request() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    let dir = Dir::new("invalidate");
    let job = fleet::job("invalidate", &config(&mock, &dir, json!({})), 4);
    let mut workers: Vec<Worker> = (0..8).map(|_| Worker::spawn(&job)).collect();
    for w in &mut workers {
        w.go();
    }
    for w in &mut workers {
        w.expect_line("FLEET-AT 1", Duration::from_secs(30));
    }
    assert_eq!(mock.stats().token_requests, 1);
    for w in &mut workers {
        w.go();
    }
    let results: Vec<Value> = workers
        .iter_mut()
        .map(|w| w.result(Duration::from_secs(60)))
        .collect();
    let again = tokens(&results, "tokens");
    assert!(again.iter().all(|t| *t == again[0]));
    assert_ne!(again[0], tokens(&results, "first")[0]);
    assert_eq!(
        mock.stats().token_requests,
        2,
        "one refresh for the whole host"
    );
}

#[test]
fn a_lock_owner_killed_mid_fetch_frees_its_lock_at_once() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    mock.configure(json!({ "token_delay_ms": 20_000 }));
    let dir = Dir::new("killed");
    let config = config(&mock, &dir, json!({ "timeouts": { "request_ms": 5000 } }));

    let mut owner = Worker::spawn(&fleet::job("hold", &config, 1));
    owner.go();
    owner.expect_line("FLEET-AT 1", Duration::from_secs(20));
    wait_for("the owner's token request", || {
        mock.stats().token_requests == 1
    });
    owner.kill();
    mock.configure(json!({ "token_delay_ms": 0 }));

    let results = fleet::run(4, &fleet::job("once", &config, 2), Duration::from_secs(60));
    let tokens = tokens(&results, "tokens");
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    // Had the dead owner's lock stayed, each would have waited out the request timeout and
    // then fetched for itself.
    assert_eq!(
        mock.stats().token_requests,
        2,
        "the dead owner's, and one more"
    );
}

#[test]
fn a_lock_owners_forked_child_does_not_keep_its_lock() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    mock.configure(json!({ "token_delay_ms": 20_000 }));
    let dir = Dir::new("forked");
    let config = config(&mock, &dir, json!({ "timeouts": { "request_ms": 5000 } }));

    let mut owner = Worker::spawn(&fleet::job("hold_fork", &config, 1));
    owner.go();
    owner.expect_line("FLEET-AT 1", Duration::from_secs(20));
    wait_for("the owner's token request", || {
        mock.stats().token_requests == 1
    });
    owner.go();
    let child = owner.expect_line("FLEET-CHILD", Duration::from_secs(20));
    owner.kill();
    mock.configure(json!({ "token_delay_ms": 0 }));

    // The owner's child lives on with copies of the owner's files: the lock must not.
    let results = fleet::run(2, &fleet::job("once", &config, 2), Duration::from_secs(60));
    let _ = std::process::Command::new("kill")
        .args(["-9", &child])
        .status();
    let tokens = tokens(&results, "tokens");
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(
        mock.stats().token_requests,
        2,
        "the dead owner's, and one more"
    );
}

// ---- one process ----------------------------------------------------------------------------

#[test]
fn the_hit_path_never_touches_the_store() {
    let mock = MockServer::start();
    let dir = Dir::new("hits");
    let c = client(&config(&mock, &dir, json!({})));
    let recorded = common::Recorder::attach(&c);
    c.token().unwrap();
    // From now on every store operation fails: the directory is no longer private.
    std::fs::set_permissions(dir.store(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for _ in 0..10_000 {
        c.token().unwrap();
    }
    assert_eq!(
        c.stats().shared.unwrap().errors,
        0,
        "no hit asked the store"
    );
    assert!(!recorded
        .kinds()
        .contains(&EventKind::SharedStoreUnavailable));

    // A miss does ask it, finds it unusable, says so once and fetches directly.
    c.invalidate(None);
    let before = mock.stats().token_requests;
    c.token().unwrap();
    assert_eq!(mock.stats().token_requests, before + 1);
    let messages = recorded.messages().join("\n");
    assert!(
        messages.contains("is not private") && messages.contains("chmod 700"),
        "{messages}"
    );
    assert_eq!(c.stats().shared.unwrap().errors, 1);
}

#[test]
fn a_directory_that_cannot_be_made_never_fails_a_token_call() {
    let mock = MockServer::start();
    let dir = Dir::new("unusable");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("plain-file"), b"x").unwrap();
    let url = format!("file://{}/plain-file/store", dir.0.display());
    let c = client(&common::config_json(&mock, json!({ "shared_cache": url })));
    let recorded = common::Recorder::attach(&c);
    for _ in 0..3 {
        c.token().unwrap();
        c.invalidate(None);
    }
    let unavailable = recorded
        .kinds()
        .iter()
        .filter(|k| **k == EventKind::SharedStoreUnavailable)
        .count();
    assert_eq!(
        unavailable,
        1,
        "one event per episode: {:?}",
        recorded.messages()
    );
    assert_eq!(mock.stats().token_requests, 3);
}

#[test]
fn corrupt_entries_are_ignored_and_overwritten() {
    let mock = MockServer::start();
    let dir = Dir::new("corrupt");
    let config = config(&mock, &dir, json!({}));
    client(&config).token().unwrap();
    let entry = dir
        .files()
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "entry"))
        .expect("an entry");
    let mut bytes = std::fs::read(&entry).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55; // a flipped bit in the tag: it no longer opens
    std::fs::write(&entry, &bytes).unwrap();

    let token = client(&config).token().unwrap();
    assert_eq!(
        mock.stats().token_requests,
        2,
        "the corrupt entry was not used"
    );
    assert_eq!(
        client(&config).token().unwrap().as_str(),
        token.as_str(),
        "it was replaced"
    );
    assert_eq!(mock.stats().token_requests, 2);
}

#[test]
fn a_rotated_secret_no_longer_finds_the_old_secrets_entries() {
    let mock = MockServer::start();
    let dir = Dir::new("rotate");
    let config = config(&mock, &dir, json!({}));
    let (old, rotated) = (client(&config), client(&config));
    let first = old.token().unwrap();

    mock.configure(json!({ "clients": { "demo-client": "rotated-secret" } }));
    rotated.set_client_secret("rotated-secret").unwrap();
    let second = rotated.token().unwrap();
    assert_ne!(
        second.as_str(),
        first.as_str(),
        "the old secret's token is not adopted"
    );
    assert_eq!(mock.stats().token_requests, 2);

    let fresh = client(&common::config_json(
        &mock,
        json!({ "shared_cache": dir.url(), "client_secret": "rotated-secret" }),
    ));
    assert_eq!(
        fresh.token().unwrap().as_str(),
        second.as_str(),
        "the new secret's is"
    );
    assert_eq!(mock.stats().token_requests, 2);
}

#[test]
fn a_refresh_point_adopts_the_newer_token_another_process_fetched() {
    let mock = MockServer::start();
    mock.configure(json!({ "ttl_secs": 2 }));
    let dir = Dir::new("refresh");
    // Inline: the call that reaches the refresh point runs the refresh before returning.
    let config = config(&mock, &dir, json!({ "refresh_mode": "inline" }));
    let (a, b) = (client(&config), client(&config));
    let first = a.token().unwrap();
    assert_eq!(b.token().unwrap().as_str(), first.as_str());

    // Past both refresh points (at most 1 s into a 2 s lifetime), before either expires.
    std::thread::sleep(Duration::from_millis(1100));
    let second = a.token().unwrap();
    assert_ne!(second.as_str(), first.as_str(), "A refreshed");
    assert_eq!(
        b.token().unwrap().as_str(),
        second.as_str(),
        "B adopted A's token"
    );
    assert_eq!(
        mock.stats().token_requests,
        2,
        "one request per refresh for both"
    );
    let stats = b.stats();
    assert_eq!((stats.token_requests, stats.shared.unwrap().hits), (0, 2));
}

#[test]
fn stats_and_events_say_where_tokens_came_from() {
    let mock = MockServer::start();
    let dir = Dir::new("stats");
    let config = config(&mock, &dir, json!({}));
    let plain = common::client(&mock, json!({}));
    assert!(plain.stats().shared.is_none());
    assert!(
        !plain.stats().to_json().contains("shared_"),
        "unchanged without shared_cache"
    );

    let (a, b) = (client(&config), client(&config));
    let recorded = common::Recorder::attach(&b);
    a.token().unwrap();
    b.token().unwrap();
    let json: Value = serde_json::from_str(&b.stats().to_json()).unwrap();
    assert_eq!(
        (
            &json["shared_hits"],
            &json["shared_misses"],
            &json["shared_errors"],
            &json["shared_lock_waits"]
        ),
        (&json!(1), &json!(0), &json!(0), &json!(0))
    );
    assert_eq!(b.stats().token_requests, 0);
    let messages = recorded.messages().join("\n");
    assert!(
        messages.contains("from the shared cache file:///"),
        "{messages}"
    );
    assert_eq!(a.stats().shared.unwrap().misses, 1);
}

#[test]
fn the_configuration_key_in_json_builder_and_environment() {
    let mock = MockServer::start();
    let dir = Dir::new("config");
    let from_json = Config::from_json(&config(&mock, &dir, json!({}))).unwrap();
    assert!(format!("{from_json:?}").contains(&dir.url()));

    let built = Config::builder()
        .token_url(mock.token_url())
        .client_id("demo-client")
        .client_secret("demo-secret")
        .allow_http(true)
        .shared_cache(format!("{}?timeout_ms=100", dir.url()))
        .build()
        .unwrap();
    let c = Client::new(built).unwrap();
    c.token().unwrap();
    assert!(c.stats().shared.is_some());

    std::env::set_var("TWFLEETTEST_TOKEN_URL", mock.token_url());
    std::env::set_var("TWFLEETTEST_CLIENT_ID", "demo-client");
    std::env::set_var("TWFLEETTEST_CLIENT_SECRET", "demo-secret");
    std::env::set_var("TWFLEETTEST_ALLOW_HTTP", "true");
    std::env::set_var("TWFLEETTEST_SHARED_CACHE", dir.url());
    let from_env = Client::new(Config::from_env(Some("TWFLEETTEST_")).unwrap()).unwrap();
    from_env.token().unwrap();
    assert_eq!(
        from_env.stats().shared.unwrap().hits,
        1,
        "adopted the builder client's token"
    );

    for (bad, says) in [
        ("file://relative/dir", "absolute directory"),
        ("file:///a/../b", "`..`"),
        ("ftp://host/x", "scheme"),
        ("redis://host?ttl=1", "unknown parameter `ttl`"),
        ("redis://host?timeout_ms=0", "timeout_ms"),
        ("redis://:pw-in-url@host:0", "port"),
    ] {
        let e = Config::from_json(&config_with(&mock, bad)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.message().contains("`shared_cache`") && e.message().contains(says),
            "{bad}: {e}"
        );
        assert!(!e.message().contains("pw-in-url"), "{e}");
    }
    let e = Config::from_json(&common::config_json(
        &mock,
        json!({ "shared_cahce": "file:///x" }),
    ))
    .unwrap_err();
    assert!(e.message().contains("did you mean `shared_cache`"), "{e}");
    let redis = Config::from_json(&config_with(&mock, "redis://127.0.0.1:1/0"));
    if cfg!(feature = "redis") {
        assert!(redis.is_ok());
    } else {
        let e = redis.unwrap_err();
        assert!(e.message().contains("cargo feature `redis`"), "{e}");
    }
}

#[test]
fn dpop_bound_tokens_are_shared_only_with_clients_holding_the_same_key() {
    let mock = MockServer::start();
    mock.configure(json!({ "dpop": "allowed" }));
    let dir = Dir::new("dpop");
    let key_dir = keys::TempDir::new("fleet-dpop");
    let one = key_dir.write("one.pem", &keys::TestKey::new().private_pem());
    let other = key_dir.write("other.pem", &keys::TestKey::new().private_pem());
    let with_key = |file: &Path| config(&mock, &dir, json!({ "dpop": { "key_file": file } }));

    let (a, b) = (client(&with_key(&one)), client(&with_key(&one)));
    let token = a.token().unwrap();
    assert!(token.is_dpop());
    let adopted = b.token().unwrap();
    assert_eq!(adopted.as_str(), token.as_str(), "the same key shares");
    assert!(adopted.is_dpop(), "an adopted token keeps its type");
    assert!(adopted.authorization().starts_with("DPoP "));
    assert_eq!(b.stats().shared.unwrap().hits, 1);
    assert_eq!(mock.stats().token_requests, 1);

    // Another key, or no DPoP at all: the entry is not theirs to find.
    let other_key = client(&with_key(&other));
    let bearer = client(&config(&mock, &dir, json!({})));
    for (c, is_dpop) in [(&other_key, true), (&bearer, false)] {
        let own = c.token().unwrap();
        assert_ne!(own.as_str(), token.as_str());
        assert_eq!(own.is_dpop(), is_dpop);
        assert_eq!(c.stats().shared.unwrap().hits, 0);
    }
    assert_eq!(mock.stats().token_requests, 3);
}

#[test]
fn credentials_a_fleet_cannot_share_are_configuration_errors() {
    let mock = MockServer::start();
    let dir = Dir::new("unshareable");
    let generated = Config::from_json(&config(
        &mock,
        &dir,
        json!({ "dpop": { "generate": true } }),
    ))
    .unwrap_err();
    assert_eq!(generated.kind(), ErrorKind::Config);
    assert!(
        generated.message().contains("`dpop.generate`")
            && generated.message().contains("`dpop.key_file`"),
        "{generated}"
    );

    let key_dir = keys::TempDir::new("fleet-assertion");
    let assertion = key_dir.write("token", "header.claims.signature");
    let mut federated: Value = serde_json::from_str(&config(&mock, &dir, json!({}))).unwrap();
    federated["client_assertion_file"] = json!(assertion);
    federated.as_object_mut().unwrap().remove("client_secret");
    let e = Config::from_json(&federated.to_string()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("`client_assertion_file`"), "{e}");
    assert!(
        !dir.store().exists(),
        "nothing was made for a refused configuration"
    );
}

fn config_with(mock: &MockServer, url: &str) -> String {
    common::config_json(mock, json!({ "shared_cache": url }))
}
