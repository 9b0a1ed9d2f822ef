//! Fleets sharing tokens through Redis (`shared_cache = "redis://…"`), against a real
//! `redis-server`: the suite's (`TOKENWARD_TEST_REDIS`, one database per test) or a private
//! one. Multi-process tests run this binary again as worker processes (`common::fleet`); they
//! run one at a time. In-process tests cover TLS, hostile and failing servers, corrupt
//! entries and redaction.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::fleet::{self, count_events, sum_stat, tokens, Worker};
use common::redis::{self, RedisServer};
use serde_json::{json, Value};
use tokenward::{Client, Config, EventKind};
use tokenward_mock::MockServer;

#[test]
#[ignore = "a fleet worker process, started by the other tests"]
fn worker() {
    fleet::worker_main();
}

fn config(mock: &MockServer, url: &str, extra: Value) -> String {
    let mut extra = extra;
    extra["shared_cache"] = json!(url);
    common::config_json(mock, extra)
}

fn client(config: &str) -> Client {
    Client::new(Config::from_json(config).expect("valid config")).expect("client")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_cold_fleet_makes_one_token_request() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    let (url, _server) = redis::shared(1);
    let config = config(&mock, &url, json!({}));

    let results = fleet::run(8, &fleet::job("once", &config, 4), Duration::from_secs(60));

    let tokens = tokens(&results, "tokens");
    assert_eq!(tokens.len(), 32);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert_eq!(
        mock.stats().token_requests,
        1,
        "8 processes x 4 threads, one request"
    );
    assert_eq!(sum_stat(&results, "shared_misses"), 1);
    assert_eq!(sum_stat(&results, "shared_hits"), 7);
    assert_eq!(sum_stat(&results, "shared_errors"), 0);
    assert_eq!(sum_stat(&results, "token_requests"), 1);
    assert!(mock.is_token_valid(&tokens[0]));
    let keys = redis::keys(&url);
    assert_eq!(keys.len(), 1, "one entry and no lock left: {keys:?}");
}

/// The bound one process keeps on its own: a refresh about every half lifetime (less the
/// jitter), plus the first fetch and one refresh under way at the end.
fn single_process_bound(run: Duration, ttl: Duration) -> u64 {
    (run.as_secs_f64() / (ttl.as_secs_f64() / 2.0 * 0.9)).ceil() as u64 + 2
}

fn run_job(mock: &MockServer, config: &str, duration: Duration) -> Value {
    let mut job = fleet::job("run", config, 4);
    job["api"] = json!(format!("{}/api/items", mock.url()));
    job["duration_ms"] = json!(duration.as_millis() as u64);
    job["check_ms"] = json!(50);
    job
}

/// No call failed, no token the mock refused while the client still counted it usable, and
/// no token handed out past its usable time.
fn assert_every_call_served(results: &[Value]) {
    for result in results {
        for thread in result["threads"].as_array().expect("threads") {
            assert!(thread["calls"].as_u64().unwrap() > 100, "{thread}");
            assert_eq!(thread["errors"], 0, "{thread}");
            assert_eq!(
                thread["refused"], 0,
                "an expired token was handed out: {thread}"
            );
            assert_eq!(thread["unusable"], 0, "{thread}");
        }
    }
}

#[test]
fn a_running_fleet_refreshes_once_per_lifetime_not_once_per_process() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    // Long enough that the refresh window outlasts the 1 s expiry margin.
    let ttl = Duration::from_secs(4);
    mock.configure(json!({ "ttl_secs": ttl.as_secs() }));
    let (url, _server) = redis::shared(2);
    let config = config(&mock, &url, json!({}));
    let run = Duration::from_secs(10);

    let results = fleet::run(8, &run_job(&mock, &config, run), Duration::from_secs(60));

    assert_every_call_served(&results);
    let requests = mock.stats().token_requests;
    let bound = single_process_bound(run, ttl);
    assert!(
        requests <= bound,
        "{requests} token requests in {run:?} with {ttl:?} tokens: more than one process alone ({bound})"
    );
    assert!(requests >= 4, "the tokens were refreshed: {requests}");
    assert!(
        sum_stat(&results, "shared_hits") >= 7 * (requests - 1) / 2,
        "processes adopted"
    );
}

#[test]
fn invalidating_the_same_token_everywhere_makes_one_request() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    let (url, _server) = redis::shared(3);
    let config = config(&mock, &url, json!({}));
    let job = fleet::job("invalidate", &config, 4);

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

    let first = tokens(&results, "first");
    let again = tokens(&results, "tokens");
    assert!(first.iter().all(|t| *t == first[0]));
    assert!(
        again.iter().all(|t| *t == again[0]),
        "one new token for all"
    );
    assert_ne!(again[0], first[0]);
    assert_eq!(mock.stats().token_requests, 2, "one refresh fleet-wide");
    assert_eq!(
        sum_stat(&results, "invalidations"),
        8,
        "each process evicted it once"
    );
}

#[test]
fn a_redis_outage_falls_back_to_direct_fetches_and_recovers() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    // Long enough that the refresh window outlasts the 1 s expiry margin.
    let ttl = Duration::from_secs(4);
    mock.configure(json!({ "ttl_secs": ttl.as_secs() }));
    let mut server = RedisServer::start(&[]);
    let config = config(&mock, &server.url(0), json!({}));
    let job = run_job(&mock, &config, Duration::from_secs(16));

    let mut workers: Vec<Worker> = (0..8).map(|_| Worker::spawn(&job)).collect();
    for w in &mut workers {
        w.go();
    }
    std::thread::sleep(Duration::from_secs(3));
    server.kill();
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    // A process fails at most about once per refresh (every two seconds) in the outage, so
    // its back-off is short of 4 s when the server returns; then the fleet shares again.
    std::thread::sleep(Duration::from_secs(6));
    let before = mock.stats().token_requests;
    let window_start = Instant::now();
    let results: Vec<Value> = workers
        .iter_mut()
        .map(|w| w.result(Duration::from_secs(60)))
        .collect();
    let window = window_start.elapsed();
    let in_window = mock.stats().token_requests - before;

    assert_every_call_served(&results);
    for result in &results {
        assert!(
            count_events(result, EventKind::SharedStoreUnavailable) >= 1,
            "{result}"
        );
        assert!(
            count_events(result, EventKind::SharedStoreRecovered) >= 1,
            "{result}"
        );
        assert!(result["stats"]["shared_errors"].as_u64().unwrap() >= 1);
        let messages = result["event_messages"].to_string();
        assert!(messages.contains("is unavailable"), "{messages}");
    }
    let bound = single_process_bound(window, ttl);
    assert!(
        in_window <= bound,
        "after the restart the fleet shares again: {in_window} requests in {window:?} (bound {bound})"
    );
}

#[test]
fn a_second_credential_never_sees_the_first_ones_entries() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    let (url, _server) = redis::shared(5);
    let first_config = config(&mock, &url, json!({}));
    let first = tokens(
        &fleet::run(
            2,
            &fleet::job("once", &first_config, 2),
            Duration::from_secs(60),
        ),
        "tokens",
    );
    assert_eq!(mock.stats().token_requests, 1);

    // The same client with another secret: the server only knows the new one now.
    mock.configure(json!({ "clients": { "demo-client": "second-secret" } }));
    let second_config = config(&mock, &url, json!({ "client_secret": "second-secret" }));
    let second = tokens(
        &fleet::run(
            2,
            &fleet::job("once", &second_config, 2),
            Duration::from_secs(60),
        ),
        "tokens",
    );
    assert_eq!(
        mock.stats().token_requests,
        2,
        "the second credential fetched its own"
    );
    assert!(second.iter().all(|t| *t == second[0]));
    assert_ne!(second[0], first[0]);

    let keys = redis::keys(&url);
    assert_eq!(keys.len(), 2, "one entry per credential: {keys:?}");
    let clear: [&[u8]; 5] = [
        first[0].as_bytes(),
        second[0].as_bytes(),
        b"demo-secret",
        b"second-secret",
        b"demo-client",
    ];
    for key in &keys {
        assert!(key.starts_with("tokenward:v1:"), "{key}");
        let value = redis::cli(&url, &["GET", key]);
        assert!(value.len() > 100, "a sealed token");
        for needle in clear {
            assert!(
                !key.as_bytes().windows(needle.len()).any(|w| w == needle)
                    && !value.windows(needle.len()).any(|w| w == needle),
                "{key} shows a token, secret or client id in clear"
            );
        }
    }
}

#[test]
fn a_lock_owner_killed_mid_fetch_holds_the_fleet_up_only_until_its_lock_lapses() {
    let _serial = fleet::serial();
    let mock = MockServer::start();
    mock.configure(json!({ "token_delay_ms": 20_000 }));
    let (url, _server) = redis::shared(6);
    let config = config(
        &mock,
        &url,
        json!({ "timeouts": { "request_ms": 3000 }, "retry": { "max_attempts": 1 } }),
    );

    let mut owner = Worker::spawn(&fleet::job("hold", &config, 1));
    owner.go();
    owner.expect_line("FLEET-AT 1", Duration::from_secs(20));
    wait_for("the owner's token request", || {
        mock.stats().token_requests == 1
    });
    owner.kill();
    mock.configure(json!({ "token_delay_ms": 0 }));
    assert!(
        redis::keys(&url).iter().any(|k| k.ends_with(":lock")),
        "the dead owner's lock is still there"
    );

    let results = fleet::run(4, &fleet::job("once", &config, 2), Duration::from_secs(60));
    let tokens = tokens(&results, "tokens");
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert!(mock.is_token_valid(&tokens[0]));
    assert_eq!(
        mock.stats().token_requests,
        2,
        "the dead owner's, and one more"
    );
    assert!(
        sum_stat(&results, "shared_lock_waits") >= 1,
        "they waited for the lock"
    );
}

// ---- one process ----------------------------------------------------------------------------

#[test]
fn a_second_client_adopts_the_first_ones_token_and_invalidation_is_shared() {
    let mock = MockServer::start();
    let (url, _server) = redis::shared(7);
    let config = config(&mock, &url, json!({}));
    let (a, b) = (client(&config), client(&config));
    let recorded = common::Recorder::attach(&b);

    let token = a.token().unwrap();
    assert_eq!(b.token().unwrap().as_str(), token.as_str());
    assert_eq!(mock.stats().token_requests, 1);
    let stats = b.stats().shared.expect("shared stats");
    assert_eq!((stats.hits, stats.misses, stats.errors), (1, 0, 0));
    assert!(recorded
        .messages()
        .iter()
        .any(|m| m.contains("from the shared cache redis://")));
    let json: Value = serde_json::from_str(&b.stats().to_json()).unwrap();
    assert_eq!(json["shared_hits"], 1);

    // B rejects it: the shared entry goes, A keeps its copy until it is rejected there too.
    assert!(b.invalidate(Some(token.as_str())));
    assert!(redis::keys(&url).is_empty());
    let fresh = b.token().unwrap();
    assert_ne!(fresh.as_str(), token.as_str());
    assert!(a.invalidate(Some(token.as_str())), "A evicts its own copy");
    assert_eq!(
        a.token().unwrap().as_str(),
        fresh.as_str(),
        "and adopts B's"
    );
    assert_eq!(mock.stats().token_requests, 2);
}

#[test]
fn corrupt_and_foreign_entries_are_ignored_and_overwritten() {
    let mock = MockServer::start();
    let (url, _server) = redis::shared(8);
    let config = config(&mock, &url, json!({}));
    client(&config).token().unwrap();
    let keys = redis::keys(&url);
    assert_eq!(keys.len(), 1);
    redis::cli(
        &url,
        &["SET", &keys[0], "not a sealed token", "PX", "60000"],
    );

    let second = client(&config);
    let token = second.token().unwrap();
    assert_eq!(
        mock.stats().token_requests,
        2,
        "the corrupt entry was not used"
    );
    assert_eq!(
        second.stats().shared.unwrap().errors,
        0,
        "a corrupt entry is no store error"
    );
    let third = client(&config);
    assert_eq!(
        third.token().unwrap().as_str(),
        token.as_str(),
        "it was overwritten"
    );
    assert_eq!(mock.stats().token_requests, 2);
}

/// A server that accepts connections and answers each with `answer` (or nothing), for at
/// most `lifetime`.
fn hostile_server(answer: Option<&'static [u8]>, lifetime: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let end = Instant::now() + lifetime;
        let mut held = Vec::new();
        while Instant::now() < end {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf);
                    if let Some(answer) = answer {
                        let _ = stream.write_all(answer);
                    }
                    held.push(stream);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    port
}

#[test]
fn silent_garbage_and_full_stores_never_fail_a_token_call() {
    let mock = MockServer::start();
    let silent = hostile_server(None, Duration::from_secs(20));
    let garbage = hostile_server(
        Some(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        Duration::from_secs(20),
    );
    let full = RedisServer::start(&["--maxmemory", "1"]);
    for url in [
        format!("redis://127.0.0.1:{silent}/0?timeout_ms=100"),
        format!("redis://127.0.0.1:{garbage}/0"),
        full.url(0),
    ] {
        let c = client(&config(&mock, &url, json!({})));
        let recorded = common::Recorder::attach(&c);
        let before = mock.stats().token_requests;
        let token = c.token().unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(mock.is_token_valid(token.as_str()));
        assert_eq!(
            mock.stats().token_requests,
            before + 1,
            "{url}: fetched directly"
        );
        let kinds = recorded.kinds();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == EventKind::SharedStoreUnavailable)
                .count(),
            1,
            "{url}: reported once: {:?}",
            recorded.messages()
        );
        assert!(c.stats().shared.unwrap().errors >= 1);
        // In the back-off the store is left alone: the next fetch asks no store.
        let errors = c.stats().shared.unwrap().errors;
        c.invalidate(None);
        c.token().unwrap();
        assert_eq!(
            c.stats().shared.unwrap().errors,
            errors,
            "{url}: backing off"
        );
    }
}

#[test]
fn passwords_in_the_url_never_show() {
    let mock = MockServer::start();
    let server = RedisServer::start(&["--requirepass", "right-password"]);
    let wrong = format!("redis://:wrong-password@127.0.0.1:{}/0", server.port);
    let parsed = Config::from_json(&config(&mock, &wrong, json!({}))).unwrap();
    assert!(!format!("{parsed:?}").contains("wrong-password"));
    assert!(format!("{parsed:?}").contains(":***@127.0.0.1"));

    let c = Client::new(parsed).unwrap();
    let recorded = common::Recorder::attach(&c);
    c.token().unwrap();
    let messages = recorded.messages().join("\n");
    assert!(messages.contains("is unavailable"), "{messages}");
    assert!(!messages.contains("wrong-password"), "{messages}");
    assert!(!format!("{c:?}").contains("wrong-password"));

    let bad = Config::from_json(&config(
        &mock,
        "redis://:wrong-password@host:99999",
        json!({}),
    ))
    .unwrap_err();
    assert!(bad.message().contains("`shared_cache`"), "{bad}");
    assert!(!bad.message().contains("wrong-password"), "{bad}");

    let right = format!("redis://:right-password@127.0.0.1:{}/0", server.port);
    let c = client(&config(&mock, &right, json!({})));
    c.token().unwrap();
    assert_eq!(c.stats().shared.unwrap().errors, 0);
    assert_eq!(
        redis::keys(&format!(
            "redis://default:right-password@127.0.0.1:{}/0",
            server.port
        ))
        .len(),
        1
    );
}

/// A CA and a `localhost` / 127.0.0.1 server certificate signed by it, written to `dir`.
fn tls_files(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf_cert.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

#[test]
fn rediss_verifies_the_server_with_the_token_endpoints_roots() {
    let mock = MockServer::start();
    let dir = std::env::temp_dir().join(format!("tokenward-rediss-{}", std::process::id()));
    let (ca, cert, key) = tls_files(&dir);
    let tls_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = RedisServer::start(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-ca-cert-file",
        ca.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://localhost:{tls_port}/0");
    let trusted = json!({ "tls": { "ca_file": ca.to_str().unwrap() } });
    let (a, b) = (
        client(&config(&mock, &url, trusted.clone())),
        client(&config(&mock, &url, trusted)),
    );
    let token = a.token().unwrap();
    assert_eq!(b.token().unwrap().as_str(), token.as_str());
    assert_eq!(mock.stats().token_requests, 1, "shared over TLS");
    assert_eq!(b.stats().shared.unwrap().hits, 1);

    // Without the CA the server is not trusted: the token is fetched directly.
    let untrusting = client(&config(&mock, &url, json!({})));
    let recorded = common::Recorder::attach(&untrusting);
    untrusting.token().unwrap();
    assert_eq!(mock.stats().token_requests, 2);
    assert_eq!(untrusting.stats().shared.unwrap().hits, 0);
    let messages = recorded.messages().join("\n");
    assert!(messages.contains("is unavailable"), "{messages}");
    let _ = std::fs::remove_dir_all(&dir);
}
