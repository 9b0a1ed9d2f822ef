//! The tokenward quick start: runs a mock identity provider and API on loopback (no
//! credentials, no network) and walks through what the library does for you.
//!
//!     cargo run --release --example quickstart

use std::time::{Duration, Instant};

use tokenward::{Client, Config, Request};
use tokenward_mock::MockServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = MockServer::start();
    mock.configure(serde_json::json!({ "ttl_secs": 8 }));
    println!("mock identity provider + API on {}\n", mock.url());

    let config = Config::from_json(&format!(
        r#"{{
            "token_url": "{token_url}",
            "client_id": "demo-client",
            "client_secret": "demo-secret",
            "scope": "EventsApi",
            "headers": {{ "tenant-code": "T1", "api-version": "2" }},
            "api_base_urls": ["{api}"],
            "refresh_before_secs": 4,
            "allow_http": true
        }}"#,
        token_url = mock.token_url(),
        api = mock.url()
    ))?;
    let client = Client::new(config)?;
    client.set_event_hook(Some(|e: &tokenward::Event| {
        println!("  event  {:<16} {}", e.kind.as_str(), e.message)
    }));

    println!("1. first call fetches a token:");
    let started = Instant::now();
    let token = client.token()?;
    println!(
        "  got token {} (lifetime {} s) in {:?}",
        token.fingerprint(),
        token.lifetime().as_secs(),
        started.elapsed()
    );

    println!("\n2. later calls are cache hits:");
    let n = 1_000_000;
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(client.token()?);
    }
    let per_hit = started.elapsed() / n;
    println!(
        "  {n} calls in {:?}: {per_hit:?} per call, token requests so far: {}",
        started.elapsed(),
        mock.token_requests()
    );

    println!("\n3. headers for your HTTP client, Authorization first:");
    for (name, value) in client.headers()? {
        let shown = if name == "Authorization" {
            format!("Bearer <token {}>", token.fingerprint())
        } else {
            value
        };
        println!("  {name}: {shown}");
    }

    println!("\n4. refresh ahead: from 4 s before expiry one background refresh runs,");
    println!("   while every caller keeps getting the current token without waiting:");
    std::thread::sleep(Duration::from_millis(4300));
    let during = client.token()?;
    std::thread::sleep(Duration::from_millis(300));
    let after = client.token()?;
    println!(
        "  during the window: {} (served at once), after: {}",
        during.fingerprint(),
        after.fingerprint()
    );

    println!("\n5. the API revokes every token; send() sees 401, refreshes once and retries:");
    mock.revoke_all();
    let response = client.send(Request::get(&format!("{}/api/items", mock.url())))?;
    println!(
        "  GET /api/items -> HTTP {} {}",
        response.status(),
        response.text().chars().take(60).collect::<String>()
    );

    println!("\n6. stats:");
    let stats = client.stats();
    println!(
        "  token requests {}, cache hits {}, background refreshes {}, invalidations {}, failures {}",
        stats.token_requests, stats.cache_hits, stats.background_refreshes, stats.invalidations, stats.failures
    );
    Ok(())
}
