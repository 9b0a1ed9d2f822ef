//! Programmed failures (`POST /admin/fault`): what the next requests to a target get instead
//! of a normal answer.

use std::time::Duration;

use serde_json::Value;

use crate::clock;
use crate::config::header_safe;
use crate::response::{Body, Response};

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The token paths.
    Token,
    /// `/api/...` and `/graphql`.
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer `status` with `body`, `content_type` and `retry_after`.
    Status,
    /// Read the request, never answer; hold the socket until `MAX_HANG` or shutdown.
    Hang,
    /// Close the connection without answering.
    Close,
    /// 200 with a JSON-looking body of `size` bytes.
    Oversized,
    /// Write `body` as the whole answer, byte for byte (malformed status lines, injected
    /// headers), then close.
    Raw,
}

#[derive(Debug, Clone)]
pub struct Fault {
    /// Requests still to be hit by this fault; `None`: every request until a reset.
    pub remaining: Option<u64>,
    /// Successful (2xx) normal answers its target must give before the fault starts.
    pub after: u64,
    pub kind: FaultKind,
    pub status: u16,
    pub body: String,
    pub content_type: String,
    pub retry_after: Option<String>,
    /// `Retry-After` as an HTTP date this many seconds ahead on the mock's clock.
    pub retry_after_date_secs: Option<u64>,
    /// Waited before acting (before answering, closing or hanging).
    pub delay: Duration,
    pub size: u64,
}

const KEYS: [&str; 11] = [
    "target",
    "count",
    "after",
    "status",
    "body",
    "content_type",
    "retry_after",
    "retry_after_date_secs",
    "delay_ms",
    "kind",
    "size",
];
const DEFAULT_SIZE: u64 = 10 * 1024 * 1024;
/// Larger than any sane response cap, small enough to write in a few seconds over loopback.
const MAX_SIZE: u64 = 1024 * 1024 * 1024;
const MAX_DELAY_MS: u64 = 600_000;

impl Fault {
    /// Parses one fault object. Unknown keys and wrong types are errors: a typo in a test
    /// must not silently turn into a different fault.
    pub fn parse(v: &Value) -> Result<(Target, Fault), String> {
        let Value::Object(map) = v else {
            return Err(format!("a fault must be a JSON object, not {v}"));
        };
        if let Some(key) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "unknown fault key `{key}` (known: {})",
                KEYS.join(", ")
            ));
        }
        let get = |key: &str| map.get(key).filter(|v| !v.is_null());
        let bad = |key: &str, expected: &str| {
            format!(
                "fault `{key}` must be {expected}, not {}",
                map.get(key).unwrap_or(&Value::Null)
            )
        };
        let target = match get("target").map(Value::as_str) {
            None | Some(Some("token")) => Target::Token,
            Some(Some("api")) => Target::Api,
            _ => return Err(bad("target", "\"token\" or \"api\"")),
        };
        let kind = match get("kind").map(Value::as_str) {
            None | Some(Some("status")) => FaultKind::Status,
            Some(Some("hang")) => FaultKind::Hang,
            Some(Some("close")) => FaultKind::Close,
            Some(Some("oversized")) => FaultKind::Oversized,
            Some(Some("raw")) => FaultKind::Raw,
            _ => {
                return Err(bad(
                    "kind",
                    "one of \"status\", \"hang\", \"close\", \"oversized\", \"raw\"",
                ))
            }
        };
        let count = match get("count") {
            None => Some(1),
            Some(Value::String(s)) if s == "forever" => None,
            Some(c) => Some(
                c.as_u64()
                    .filter(|c| *c >= 1)
                    .ok_or_else(|| bad("count", "a whole number of at least 1, or \"forever\""))?,
            ),
        };
        let after = match get("after") {
            None => 0,
            Some(a) => a
                .as_u64()
                .ok_or_else(|| bad("after", "a whole number of successful answers"))?,
        };
        let status = match get("status") {
            None => 503,
            Some(s) => s
                .as_u64()
                .filter(|s| (200..=599).contains(s))
                .map(|s| s as u16)
                .ok_or_else(|| bad("status", "an HTTP status from 200 to 599"))?,
        };
        // A non-string body is sent as its JSON text, which saves callers an escaping layer.
        let body = match get("body") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let content_type = match get("content_type") {
            None if serde_json::from_str::<Value>(&body).is_ok() => "application/json".into(),
            None => "text/plain; charset=utf-8".into(),
            Some(Value::String(s)) => {
                header_safe(s).ok_or_else(|| bad("content_type", "free of control characters"))?
            }
            Some(_) => return Err(bad("content_type", "a string")),
        };
        let retry_after = match get("retry_after") {
            None => None,
            Some(Value::String(s)) => Some(
                header_safe(s).ok_or_else(|| bad("retry_after", "free of control characters"))?,
            ),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(bad("retry_after", "a string or a number")),
        };
        let retry_after_date_secs = match get("retry_after_date_secs") {
            None => None,
            Some(d) => Some(
                d.as_u64()
                    .filter(|d| *d <= MAX_DELAY_MS / 1000)
                    .ok_or_else(|| bad("retry_after_date_secs", "seconds up to 600"))?,
            ),
        };
        if retry_after.is_some() && retry_after_date_secs.is_some() {
            return Err("a fault takes `retry_after` or `retry_after_date_secs`, not both".into());
        }
        let delay_ms = match get("delay_ms") {
            None => 0,
            Some(d) => d
                .as_u64()
                .filter(|d| *d <= MAX_DELAY_MS)
                .ok_or_else(|| bad("delay_ms", "milliseconds up to 600000"))?,
        };
        let size = match get("size") {
            None => DEFAULT_SIZE,
            Some(s) => s
                .as_u64()
                .filter(|s| *s <= MAX_SIZE)
                .ok_or_else(|| bad("size", "a byte count up to 1 GiB"))?,
        };
        Ok((
            target,
            Fault {
                remaining: count,
                after,
                kind,
                status,
                body,
                content_type,
                retry_after,
                retry_after_date_secs,
                delay: Duration::from_millis(delay_ms),
                size,
            },
        ))
    }

    /// The answer for the kinds that answer; `skew_secs` is the mock's clock skew (for
    /// `Retry-After` dates).
    pub fn response(&self, skew_secs: i64) -> Option<Response> {
        match self.kind {
            FaultKind::Status => {
                let mut r = Response::new(self.status)
                    .header("Content-Type", &self.content_type)
                    .header("Cache-Control", "no-store")
                    .body(self.body.clone());
                if let Some(retry_after) = &self.retry_after {
                    r = r.header("Retry-After", retry_after);
                }
                if let Some(ahead) = self.retry_after_date_secs {
                    let at = clock::unix_secs(skew_secs) + ahead;
                    r = r.header("Retry-After", &clock::http_date(at));
                }
                Some(r)
            }
            FaultKind::Oversized => Some(Response {
                body: Body::Oversized(self.size),
                ..Response::new(200).header("Content-Type", "application/json")
            }),
            FaultKind::Hang | FaultKind::Close | FaultKind::Raw => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults() {
        let (target, f) = Fault::parse(&json!({})).unwrap();
        assert_eq!(target, Target::Token);
        assert_eq!(
            (f.kind, f.status, f.remaining, f.after),
            (FaultKind::Status, 503, Some(1), 0)
        );
        let (_, f) = Fault::parse(&json!({ "count": "forever", "after": 1 })).unwrap();
        assert_eq!((f.remaining, f.after), (None, 1));
        assert_eq!(f.content_type, "text/plain; charset=utf-8");
        assert_eq!(f.size, DEFAULT_SIZE);
        let (_, f) = Fault::parse(&json!({ "body": "{\"error\":\"x\"}" })).unwrap();
        assert_eq!(f.content_type, "application/json");
        let (_, f) = Fault::parse(&json!({ "body": { "error": "x" }, "retry_after": 2 })).unwrap();
        assert_eq!(f.body, r#"{"error":"x"}"#);
        assert_eq!(f.retry_after.as_deref(), Some("2"));
    }

    #[test]
    fn rejects_what_a_typo_would_produce() {
        for bad in [
            json!({ "targte": "api" }),
            json!({ "target": "apis" }),
            json!({ "kind": "slow" }),
            json!({ "count": 0 }),
            json!({ "count": "2" }),
            json!({ "count": "always" }),
            json!({ "after": -1 }),
            json!({ "after": "1" }),
            json!({ "status": 42 }),
            json!({ "status": 100 }),
            json!({ "retry_after": "1\r\nX: y" }),
            json!({ "size": -1 }),
            json!({ "retry_after_date_secs": 601 }),
            json!({ "retry_after": "1", "retry_after_date_secs": 1 }),
            json!("status"),
        ] {
            assert!(Fault::parse(&bad).is_err(), "{bad}");
        }
    }
}
