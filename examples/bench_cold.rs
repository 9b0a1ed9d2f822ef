//! Cold fetch (new client, first token, over loopback) compared with `curl` making the same
//! token request, and token requests per hour under short TTLs. Numbers go to BENCHMARKS.md.
//!
//!     cargo run --release --example bench_cold

use std::process::Command;
use std::time::{Duration, Instant};

use tokenward::{Client, Config};
use tokenward_mock::MockServer;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let mock = MockServer::start();
    let json = format!(
        r#"{{"token_url":"{}","client_id":"demo-client","client_secret":"demo-secret","allow_http":true}}"#,
        mock.token_url()
    );
    let runs = 200;
    // Warm-up: the first client of a process pays its one-time setup (fork hooks, page-ins).
    Client::new(Config::from_json(&json).unwrap())
        .unwrap()
        .token()
        .unwrap();
    let ours: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let client = Client::new(Config::from_json(&json).unwrap()).unwrap();
            client.token().unwrap();
            started.elapsed()
        })
        .collect();
    let ours = median(ours);
    println!("tokenward cold fetch (parse config + new client + first token): median {ours:?} over {runs} runs");

    let curl: Vec<Duration> = (0..runs)
        .filter_map(|_| {
            let out = Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{time_total}",
                    "-H",
                    "Accept: application/json",
                ])
                .args([
                    "-d",
                    "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret",
                ])
                .arg(mock.token_url())
                .output()
                .ok()?;
            let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
            Some(Duration::from_secs_f64(secs))
        })
        .collect();
    if curl.is_empty() {
        println!("curl not found; skipped the comparison");
    } else {
        let c = median(curl);
        println!(
            "curl %{{time_total}} for the same request:                       median {c:?} over {runs} runs  (ratio {:.2}x)",
            ours.as_secs_f64() / c.as_secs_f64()
        );
    }

    for ttl in [5u64, 60] {
        mock.reset();
        mock.configure(serde_json::json!({ "ttl_secs": ttl }));
        let client = Client::new(Config::from_json(&json).unwrap()).unwrap();
        let window = Duration::from_secs(if ttl < 10 { 20 } else { 0 });
        if window.is_zero() {
            // A 60 s token refreshes from 30 s on: one request per ~28.5-30 s by construction.
            let t = client.token().unwrap();
            println!("ttl {ttl:>3} s: refresh window starts {} s before expiry -> ~{} token requests/hour",
                t.lifetime().as_secs() / 2, 3600 / (ttl / 2));
            continue;
        }
        let started = Instant::now();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let client = client.clone();
                std::thread::spawn(move || {
                    while started.elapsed() < window {
                        client.token().unwrap();
                        std::thread::sleep(Duration::from_micros(200));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let requests = mock.token_requests();
        println!(
            "ttl {ttl:>3} s: {requests} token requests in {} s with 2 threads calling constantly -> {} per hour",
            window.as_secs(),
            requests * 3600 / window.as_secs()
        );
    }
}
