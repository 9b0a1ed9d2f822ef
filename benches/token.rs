//! Cache-hit latency (1 thread, 2 threads contending, 1 thread over 8 clients) and
//! cold-fetch cost against the mock IdP over loopback. Run: `cargo bench --bench token`.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokenward::{Client, Config};
use tokenward_mock::MockServer;

fn client(mock: &MockServer) -> Client {
    let json = format!(
        r#"{{"token_url":"{}","client_id":"demo-client","client_secret":"demo-secret","allow_http":true}}"#,
        mock.token_url()
    );
    Client::new(Config::from_json(&json).unwrap()).unwrap()
}

fn cache_hit(c: &mut Criterion) {
    let mock = MockServer::start();
    let client = client(&mock);
    client.token().unwrap();
    let mut group = c.benchmark_group("token");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hit_1_thread", |b| {
        b.iter(|| std::hint::black_box(client.token().unwrap()))
    });
    // Two threads hammering one client: time per call as seen by each thread.
    group.bench_function("hit_2_threads", |b| {
        b.iter_custom(|iters| {
            let barrier = Arc::new(Barrier::new(2));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (client, barrier) = (client.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        let started = Instant::now();
                        for _ in 0..iters {
                            std::hint::black_box(client.token().unwrap());
                        }
                        started.elapsed()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .max()
                .unwrap()
        })
    });
    group.finish();
}

/// One thread using eight clients in turn: it keeps token copies for four, and serves the
/// others through their cache lock (no copy, no allocation). One iteration is 8 calls.
fn cache_hit_many_clients(c: &mut Criterion) {
    let mock = MockServer::start();
    let clients: Vec<Client> = (0..8).map(|_| client(&mock)).collect();
    for client in &clients {
        client.token().unwrap();
    }
    let mut group = c.benchmark_group("token");
    group.throughput(Throughput::Elements(clients.len() as u64));
    group.bench_function("hit_8_clients", |b| {
        b.iter(|| {
            for client in &clients {
                std::hint::black_box(client.token().unwrap());
            }
        })
    });
    group.finish();
}

fn cold_fetch(c: &mut Criterion) {
    let mock = MockServer::start();
    let mut group = c.benchmark_group("cold");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("new_client_first_token", |b| {
        b.iter(|| client(&mock).token().unwrap())
    });
    group.finish();
}

criterion_group!(benches, cache_hit, cache_hit_many_clients, cold_fetch);
criterion_main!(benches);
