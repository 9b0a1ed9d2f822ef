//! The per-request cost of DPoP: `Client::headers_for` with a cached token, which makes a
//! new proof (a JSON object, the SHA-256 of the token for `ath`, one signature) for every
//! call, against the same call without DPoP. Run: `cargo bench --bench dpop`.

#[path = "../tests/keys/mod.rs"]
mod keys;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use tokenward::{Client, Config};
use tokenward_mock::MockServer;

fn client(mock: &MockServer, dpop: Option<Value>) -> Client {
    let mut config = json!({
        "token_url": mock.token_url(),
        "client_id": "demo-client",
        "client_secret": "demo-secret",
        "allow_http": true,
        "headers": { "tenant-code": "T1", "api-version": "2" },
    });
    if let Some(dpop) = dpop {
        config["dpop"] = dpop;
    }
    let client = Client::new(Config::from_json(&config.to_string()).unwrap()).unwrap();
    client.token().unwrap();
    client
}

fn headers_for(c: &mut Criterion) {
    let mock = MockServer::start();
    mock.configure(json!({ "dpop": "allowed" }));
    let dir = keys::TempDir::new("bench-dpop");
    let rsa = dir.write("rsa.pem", keys::RSA_PRIVATE_PEM);
    let url = format!("{}/api/items?page=2", mock.url());
    let cases = [
        ("bearer_no_dpop", None),
        ("dpop_es256", Some(json!({ "generate": true }))),
        (
            "dpop_rs256_2048",
            Some(json!({ "key_file": rsa, "alg": "RS256" })),
        ),
        (
            "dpop_ps256_2048",
            Some(json!({ "key_file": rsa, "alg": "PS256" })),
        ),
    ];
    let mut group = c.benchmark_group("headers_for");
    group
        .throughput(Throughput::Elements(1))
        .measurement_time(Duration::from_secs(5));
    for (name, dpop) in cases {
        let client = client(&mock, dpop);
        group.bench_function(name, |b| {
            b.iter(|| std::hint::black_box(client.headers_for("GET", &url).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, headers_for);
criterion_main!(benches);
