//! Fork safety under contention: a pre-fork server forks while its other threads are busy
//! with the client, so at the moment of `fork()` threads may be queued on the client's
//! locks. Those threads do not exist in the child; the child (and its own new threads) must
//! still get tokens without deadlocking. (With `parking_lot` locks this hung within a few
//! forks: its userspace wait queue kept the ghosts and handed the lock to one of them.)
//! One test per binary: forking while other tests' threads run would muddy the result.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokenward_mock::MockServer;

const FORKS: usize = 40;

#[test]
fn children_forked_while_threads_contend_for_the_client_never_deadlock() {
    let mock = MockServer::start();
    let c = common::client(&mock, json!({ "timeouts": { "request_ms": 5000 } }));
    let token = c.token().unwrap().as_str().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let busy: Vec<_> = (0..3)
        .map(|_| {
            let (c, stop, calls) = (c.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = c.token().unwrap();
                    let _ = c.stats();
                    c.invalidate(Some("not-the-current-token"));
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    for round in 0..FORKS {
        std::thread::sleep(Duration::from_millis(5));
        let pid = common::process::fork_child(|| {
            // Several threads in the child, so its locks are contended again.
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let c = c.clone();
                    std::thread::spawn(move || (0..2000).all(|_| c.token().is_ok()))
                })
                .collect();
            let mut ok = (0..2000).all(|_| c.token().is_ok_and(|t| t.as_str() == token));
            for worker in workers {
                ok &= worker.join().unwrap_or(false);
            }
            ok
        });
        let Some(status) = common::process::wait_child(pid, Duration::from_secs(10)) else {
            stop.store(true, Ordering::Relaxed);
            panic!("child {round} deadlocked on a lock inherited from the parent");
        };
        assert_eq!(status, 0, "child {round} failed (wait status {status})");
    }

    stop.store(true, Ordering::Relaxed);
    for thread in busy {
        thread.join().unwrap();
    }
    assert!(calls.load(Ordering::Relaxed) > 0);
    assert_eq!(
        c.token().unwrap().as_str(),
        token,
        "the parent keeps its cache"
    );
    assert_eq!(
        mock.stats().tokens_issued,
        1,
        "children use the inherited token"
    );
}
