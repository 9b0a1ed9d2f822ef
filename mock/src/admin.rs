//! `/admin/...`: how tests in every language program and inspect the mock over HTTP.
//! No authentication: the server only ever listens on loopback.

use serde_json::{json, Value};

use crate::fault::Fault;
use crate::request::Request;
use crate::response::Response;
use crate::router::Reply;
use crate::server::Shared;
use crate::state::RecordedRequest;

fn ok(value: Value) -> Reply {
    Reply::Respond(Response::json(200, &value))
}

fn bad_request(message: String) -> Reply {
    Reply::Respond(Response::json(400, &json!({ "error": message })))
}

/// The JSON body; an empty body counts as `{}` (so `curl -X POST` works for the verbs).
fn body(request: &Request) -> Result<Value, Reply> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&request.body)
        .map_err(|e| bad_request(format!("the body is not JSON: {e}")))
}

/// Methods each admin endpoint accepts, for 405 answers.
const ENDPOINTS: [(&str, &str); 7] = [
    ("stats", "GET"),
    ("requests", "GET"),
    ("config", "GET, POST"),
    ("fault", "POST"),
    ("revoke", "POST"),
    ("reset", "POST"),
    ("shutdown", "POST"),
];

pub fn handle(shared: &Shared, request: &Request) -> Reply {
    let name = request
        .path()
        .trim_start_matches("/admin")
        .trim_matches('/');
    let method = match request.method.as_str() {
        "HEAD" => "GET",
        m => m,
    };
    match (method, name) {
        ("GET", "stats") => ok(shared.state().stats.to_json()),
        ("GET", "requests") => {
            let state = shared.state();
            let log = |log: &std::collections::VecDeque<RecordedRequest>| {
                log.iter().map(RecordedRequest::to_json).collect::<Vec<_>>()
            };
            ok(json!({ "token": log(&state.token_log), "api": log(&state.api_log) }))
        }
        ("GET", "config") => ok(shared.state().config.to_json()),
        ("POST", "config") => {
            let patch = match body(request) {
                Ok(patch) => patch,
                Err(reply) => return reply,
            };
            let mut state = shared.state();
            match state.config.apply(&patch) {
                Ok(()) => ok(state.config.to_json()),
                Err(e) => bad_request(e),
            }
        }
        ("POST", "fault") => {
            let items = match body(request) {
                Ok(Value::Array(items)) => items,
                Ok(one) => vec![one],
                Err(reply) => return reply,
            };
            // All or nothing: one bad fault in a list queues none of them.
            let parsed: Result<Vec<_>, String> = items.iter().map(Fault::parse).collect();
            match parsed {
                Ok(parsed) => {
                    let mut state = shared.state();
                    for (target, fault) in parsed {
                        state.push_fault(target, fault);
                    }
                    ok(json!({ "queued": items.len() }))
                }
                Err(e) => bad_request(e),
            }
        }
        ("POST", "revoke") => ok(json!({ "revoked": shared.state().revoke_all() })),
        ("POST", "reset") => {
            shared.reset();
            ok(json!({ "reset": true }))
        }
        ("POST", "shutdown") => {
            Reply::RespondThenStop(Response::json(200, &json!({ "stopping": true })))
        }
        (_, name) => match ENDPOINTS.iter().find(|(n, _)| *n == name) {
            Some((_, allow)) => Reply::Respond(
                Response::json(
                    405,
                    &json!({ "error": format!("/admin/{name} accepts {allow}") }),
                )
                .header("Allow", allow),
            ),
            None => Reply::Respond(Response::json(
                404,
                &json!({
                    "error": format!("no admin endpoint /admin/{name}"),
                    "endpoints": ENDPOINTS.iter().map(|(n, _)| format!("/admin/{n}")).collect::<Vec<_>>(),
                }),
            )),
        },
    }
}
