//! Shared helpers for the integration tests: clients wired to the in-process mock IdP.
#![allow(dead_code)]

pub mod fleet;
pub mod redis;

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokenward::{Client, Config, Event, EventKind};
use tokenward_mock::MockServer;

/// A JSON config for `mock`, with `extra` merged over the defaults.
pub fn config_json(mock: &MockServer, extra: Value) -> String {
    let mut config = json!({
        "token_url": mock.token_url(),
        "client_id": "demo-client",
        "client_secret": "demo-secret",
        "allow_http": true,
        "headers": { "tenant-code": "T1", "api-version": "2" },
        "retry": { "max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 200 },
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut config, extra) {
        for (k, v) in extra {
            base.insert(k, v);
        }
    }
    config.to_string()
}

pub fn client(mock: &MockServer, extra: Value) -> Client {
    Client::new(Config::from_json(&config_json(mock, extra)).expect("valid config"))
        .expect("client")
}

/// Events recorded by a client's hook.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Event>>>);

impl Recorder {
    pub fn attach(client: &Client) -> Recorder {
        let rec = Recorder::default();
        let sink = rec.0.clone();
        client.set_event_hook(Some(move |e: &Event| sink.lock().unwrap().push(e.clone())));
        rec
    }

    pub fn kinds(&self) -> Vec<EventKind> {
        self.0.lock().unwrap().iter().map(|e| e.kind).collect()
    }

    pub fn messages(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.message.clone())
            .collect()
    }
}

/// The claims the mock encoded in a token it issued.
pub fn claims(token: &str) -> Value {
    tokenward_mock::decode_claims(token).expect("the mock issues JWTs")
}

/// Forking helpers for the fork-safety tests.
#[cfg(unix)]
pub mod process {
    extern "C" {
        fn fork() -> i32;
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
        fn _exit(code: i32) -> !;
        fn kill(pid: i32, sig: i32) -> i32;
    }

    const WNOHANG: i32 = 1;
    const SIGKILL: i32 = 9;

    /// Fork; the child runs `child` and exits 0 if it returns true, 1 otherwise (without
    /// running the test harness's teardown). Returns the child's pid in the parent.
    pub fn fork_child(child: impl FnOnce() -> bool) -> i32 {
        // SAFETY: the child only runs `child` (tokenward calls) and then `_exit`.
        let pid = unsafe { fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = child();
            // SAFETY: leave the child without unwinding into the parent's test state.
            unsafe { _exit(if ok { 0 } else { 1 }) }
        }
        pid
    }

    /// The child's wait status, or `None` (after killing it) if it has not exited within
    /// `timeout` — a hang.
    pub fn wait_child(pid: i32, timeout: std::time::Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        let mut status = 0;
        loop {
            // SAFETY: plain waitpid on our own child.
            if unsafe { waitpid(pid, &mut status, WNOHANG) } == pid {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                // SAFETY: kill our own child.
                unsafe { kill(pid, SIGKILL) };
                // SAFETY: reap it so no zombie is left.
                unsafe { waitpid(pid, &mut status, 0) };
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}
