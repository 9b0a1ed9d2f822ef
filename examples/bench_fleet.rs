//! A fleet against the mock identity provider: P processes x T threads asking for short-lived
//! tokens, without a shared cache, with `file:///…` and with Redis; token requests per token
//! lifetime for each. Then, in this process: the cost of a cache hit with and without
//! `shared_cache` set, and of a miss answered by the shared cache versus one fetched from
//! the identity provider. Numbers go to BENCHMARKS.md.
//!
//!     cargo run --release --example bench_fleet --features redis -- \
//!         [--processes 32] [--threads 4] [--ttl 5] [--seconds 60] [--redis redis://127.0.0.1:6379/0]
//!
//! Without `--redis`, `TOKENWARD_TEST_REDIS` is used if set; without either the Redis rows are
//! left out. Workers are this program run again with `--worker`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokenward::{Client, Config};
use tokenward_mock::MockServer;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        worker(&args[1]);
        return;
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: u64| flag(name).map_or(default, |v| v.parse().expect(name));
    let processes = number("--processes", 32) as usize;
    let threads = number("--threads", 4);
    let ttl = number("--ttl", 5);
    let seconds = number("--seconds", 60);
    let redis = flag("--redis").or_else(|| std::env::var("TOKENWARD_TEST_REDIS").ok());

    let mock = MockServer::start();
    let dir = std::env::temp_dir().join(format!("tokenward-bench-fleet-{}", std::process::id()));
    let file_url = format!("file://{}", dir.join("store").display());
    let mut stores: Vec<(&str, Option<String>)> =
        vec![("none", None), ("file", Some(file_url.clone()))];
    if let Some(url) = &redis {
        stores.push(("redis", Some(url.clone())));
    }

    println!(
        "fleet: {processes} processes x {threads} threads, each thread asking every 1 ms for {seconds} s; \
         tokens live {ttl} s (refresh window: the second half)"
    );
    for (name, store) in &stores {
        mock.reset();
        mock.configure(json!({ "ttl_secs": ttl }));
        if let Some(url) = store.as_deref().filter(|u| u.starts_with("redis")) {
            flush_redis(url);
        }
        let config = config(&mock, store.as_deref());
        let job = json!({ "config": config, "threads": threads, "seconds": seconds });
        let results = run_fleet(processes, &job);
        let requests = mock.stats().token_requests;
        let calls: u64 = results.iter().map(|r| r["calls"].as_u64().unwrap()).sum();
        let errors: u64 = results.iter().map(|r| r["errors"].as_u64().unwrap()).sum();
        let hits: u64 = results
            .iter()
            .map(|r| r["shared_hits"].as_u64().unwrap_or(0))
            .sum();
        println!(
            "  shared_cache {name:5}: {requests:4} token requests = {:6.2} per token lifetime \
             ({calls} calls, {errors} errors, {hits} tokens adopted from the store)",
            requests as f64 / (seconds as f64 / ttl as f64)
        );
    }

    println!("hit path in this process (median of 9 runs x 2 000 000 calls, 1 thread, the clients taking turns):");
    let clients: Vec<Client> = stores
        .iter()
        .map(|(_, store)| {
            let client =
                Client::new(Config::from_json(&config(&mock, store.as_deref())).unwrap()).unwrap();
            client.token().unwrap();
            client
        })
        .collect();
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); clients.len()];
    for _ in 0..9 {
        for (i, client) in clients.iter().enumerate() {
            runs[i].push(hit_ns(client));
        }
    }
    for ((name, _), mut runs) in stores.iter().zip(runs) {
        runs.sort_by(f64::total_cmp);
        println!(
            "  shared_cache {name:5}: {:6.1} ns per token() (runs {:.1}-{:.1})",
            runs[4], runs[0], runs[8]
        );
    }

    println!("a miss in a new client (median of 200; the shared entry is in place):");
    mock.reset();
    for (name, store) in &stores {
        let config = config(&mock, store.as_deref());
        Client::new(Config::from_json(&config).unwrap())
            .unwrap()
            .token()
            .unwrap();
        let before = mock.stats().token_requests;
        let times: Vec<Duration> = (0..200)
            .map(|_| {
                let client = Client::new(Config::from_json(&config).unwrap()).unwrap();
                let started = Instant::now();
                client.token().unwrap();
                started.elapsed()
            })
            .collect();
        let fetched = mock.stats().token_requests - before;
        let source = if store.is_none() {
            "fetched from the IdP"
        } else {
            "adopted from the store"
        };
        println!(
            "  shared_cache {name:5}: {:?} per first token() ({source}; {fetched} IdP requests in 200)",
            median(times)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn config(mock: &MockServer, store: Option<&str>) -> String {
    let mut config = json!({
        "token_url": mock.token_url(),
        "client_id": "demo-client",
        "client_secret": "demo-secret",
        "allow_http": true,
    });
    if let Some(url) = store {
        config["shared_cache"] = json!(url);
    }
    config.to_string()
}

fn flush_redis(url: &str) {
    let _ = Command::new("redis-cli")
        .args(["-u", url, "FLUSHDB"])
        .stdout(Stdio::null())
        .status();
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Nanoseconds per cached `token()` over 2 000 000 calls.
fn hit_ns(client: &Client) -> f64 {
    let calls = 2_000_000u32;
    let started = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(client.token().unwrap());
    }
    started.elapsed().as_nanos() as f64 / calls as f64
}

/// Start the workers, let them go together, and collect what each one counted.
fn run_fleet(processes: usize, job: &Value) -> Vec<Value> {
    let exe = std::env::current_exe().unwrap();
    let mut workers: Vec<_> = (0..processes)
        .map(|_| {
            let mut child = Command::new(&exe)
                .args(["--worker", &job.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("a worker");
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "ready");
            (child, out)
        })
        .collect();
    for (child, _) in &mut workers {
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    workers
        .into_iter()
        .map(|(mut child, mut out)| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            child.wait().unwrap();
            serde_json::from_str(&line).expect("a worker result")
        })
        .collect()
}

fn worker(job: &str) {
    let job: Value = serde_json::from_str(job).unwrap();
    let client = Client::new(Config::from_json(job["config"].as_str().unwrap()).unwrap()).unwrap();
    let seconds = job["seconds"].as_u64().unwrap();
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let end = Instant::now() + Duration::from_secs(seconds);
    let (calls, errors) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for _ in 0..job["threads"].as_u64().unwrap() {
            s.spawn(|| {
                while Instant::now() < end {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if client.token().is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
    });
    let stats = client.stats();
    println!(
        "{}",
        json!({
            "calls": calls.into_inner(),
            "errors": errors.into_inner(),
            "requests": stats.token_requests,
            "shared_hits": stats.shared.map(|s| s.hits),
        })
    );
}
