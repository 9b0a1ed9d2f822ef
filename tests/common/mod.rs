//! Shared helpers for the integration tests: clients wired to the in-process mock IdP.
#![allow(dead_code)]

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
