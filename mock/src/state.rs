//! Everything the mock remembers, behind one lock: settings, queued faults, issued tokens,
//! counters and the request log.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::clock;
use crate::config::{Expiry, MockConfig};
use crate::dpop::JtiCache;
use crate::fault::{Fault, Target};
use crate::request::Request;

/// Requests kept per log ("token" and "api").
const LOG_LIMIT: usize = 1000;
/// Tokens remembered; beyond this the oldest are forgotten (and so become invalid). Far more
/// than any test issues, small enough that a runaway client cannot exhaust memory.
const MAX_TOKENS: usize = 100_000;

/// Counters since start (or the last reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockStats {
    /// Requests that reached a token path, faulted and refused ones included.
    pub token_requests: u64,
    /// Tokens issued.
    pub tokens_issued: u64,
    /// Requests to `/api/...` and `/graphql`, faulted and refused ones included.
    pub api_requests: u64,
}

impl MockStats {
    pub(crate) fn to_json(self) -> Value {
        json!({
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "api_requests": self.api_requests,
        })
    }
}

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/api/items?page=2`.
    pub path: String,
    /// Lower-cased header names; a repeated header's values are joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as UTF-8 (invalid bytes replaced with U+FFFD).
    pub body: String,
}

impl RecordedRequest {
    fn new(request: &Request) -> RecordedRequest {
        let mut headers = BTreeMap::new();
        for (name, value) in &request.headers {
            headers
                .entry(name.clone())
                .and_modify(|v: &mut String| {
                    v.push_str(", ");
                    v.push_str(value);
                })
                .or_insert_with(|| value.clone());
        }
        RecordedRequest {
            method: request.method.clone(),
            path: request.target.clone(),
            headers,
            body: String::from_utf8_lossy(&request.body).into_owned(),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({ "method": self.method, "path": self.path, "headers": self.headers, "body": self.body })
    }
}

/// A token the mock issued.
#[derive(Debug)]
pub struct Issued {
    /// On the mock's monotonic clock: wall-clock jumps must not change validity.
    at: Instant,
    ttl: Duration,
    /// The rule in force when it was issued; `exp` is its whole-second wall-clock expiry.
    expiry: Expiry,
    exp: u64,
    revoked: bool,
    /// The JWT payload (also kept for opaque tokens, so `/api` can echo jti and scope).
    pub claims: Value,
}

impl Issued {
    /// `skew_secs`: the mock's clock skew now (a server checks `exp` on its own clock).
    fn is_expired(&self, skew_secs: i64) -> bool {
        match self.expiry {
            Expiry::Monotonic => self.at.elapsed() >= self.ttl,
            Expiry::WallClock => clock::unix_now(skew_secs) >= self.exp as f64,
        }
    }
}

/// Why a bearer token is not accepted; the text goes into `WWW-Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Missing,
    Unknown,
    Expired,
    Revoked,
}

impl Invalid {
    pub fn description(self) -> &'static str {
        match self {
            Invalid::Missing => "No bearer token was sent.",
            Invalid::Unknown => "The access token was not issued by this server.",
            Invalid::Expired => "The access token expired.",
            Invalid::Revoked => "The access token was revoked.",
        }
    }
}

/// xorshift64* — token noise only needs to differ, not to be unpredictable.
#[derive(Debug)]
struct Noise(u64);

impl Noise {
    fn seeded() -> Noise {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Noise(nanos ^ (u64::from(std::process::id()) << 32) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[derive(Debug)]
pub struct State {
    pub config: MockConfig,
    pub stats: MockStats,
    token_faults: VecDeque<Fault>,
    api_faults: VecDeque<Fault>,
    tokens: HashMap<String, Issued>,
    /// Issue order, to forget the oldest first.
    token_order: VecDeque<String>,
    pub token_log: VecDeque<RecordedRequest>,
    pub api_log: VecDeque<RecordedRequest>,
    /// DPoP proof `jti`s seen recently (token endpoint and API alike).
    pub dpop_jtis: JtiCache,
    /// The last `jti`; never reset, so no two tokens of one process share a jti.
    serial: u64,
    noise: Noise,
}

impl State {
    pub fn new(config: MockConfig) -> State {
        State {
            config,
            stats: MockStats::default(),
            token_faults: VecDeque::new(),
            api_faults: VecDeque::new(),
            tokens: HashMap::new(),
            token_order: VecDeque::new(),
            token_log: VecDeque::new(),
            api_log: VecDeque::new(),
            dpop_jtis: JtiCache::default(),
            serial: 0,
            noise: Noise::seeded(),
        }
    }

    /// Back to `config`: no faults, counters 0, tokens forgotten, logs cleared.
    pub fn reset(&mut self, config: MockConfig) {
        let serial = self.serial;
        let noise = Noise(self.noise.next() | 1);
        *self = State {
            serial,
            noise,
            ..State::new(config)
        };
    }

    fn faults(&mut self, target: Target) -> &mut VecDeque<Fault> {
        match target {
            Target::Token => &mut self.token_faults,
            Target::Api => &mut self.api_faults,
        }
    }

    pub fn push_fault(&mut self, target: Target, fault: Fault) {
        self.faults(target).push_back(fault);
    }

    /// The fault for this request, if one is queued (oldest first; each serves `count`).
    /// A fault still waiting for successes (`after`) lets the request through, and so do
    /// the faults queued behind it.
    pub fn take_fault(&mut self, target: Target) -> Option<Fault> {
        let queue = self.faults(target);
        let front = queue.front_mut().filter(|f| f.after == 0)?;
        let fault = front.clone();
        if let Some(remaining) = &mut front.remaining {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                queue.pop_front();
            }
        }
        Some(fault)
    }

    /// A normal (unfaulted) answer to `target` succeeded: a waiting fault comes closer.
    pub fn note_success(&mut self, target: Target) {
        if let Some(front) = self.faults(target).front_mut() {
            front.after = front.after.saturating_sub(1);
        }
    }

    pub fn record(&mut self, target: Target, request: &Request) {
        let log = match target {
            Target::Token => &mut self.token_log,
            Target::Api => &mut self.api_log,
        };
        if log.len() == LOG_LIMIT {
            log.pop_front();
        }
        log.push_back(RecordedRequest::new(request));
    }

    /// The next `jti` and some noise for the token's unguessable-looking part.
    pub fn next_serial(&mut self) -> (u64, [u8; 16]) {
        self.serial += 1;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let a = self.noise.next() ^ self.serial.rotate_left(32);
        let b = self.noise.next() ^ u64::from(nanos);
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&a.to_be_bytes());
        bytes[8..].copy_from_slice(&b.to_be_bytes());
        (self.serial, bytes)
    }

    /// Stores an issued token; `claims["exp"]` (Unix seconds) is its wall-clock expiry.
    pub fn remember(&mut self, token: String, ttl: Duration, expiry: Expiry, claims: Value) {
        if self.token_order.len() == MAX_TOKENS {
            if let Some(oldest) = self.token_order.pop_front() {
                self.tokens.remove(&oldest);
            }
        }
        self.token_order.push_back(token.clone());
        self.tokens.insert(
            token,
            Issued {
                at: Instant::now(),
                ttl,
                expiry,
                exp: claims["exp"].as_u64().unwrap_or(0),
                revoked: false,
                claims,
            },
        );
        self.stats.tokens_issued += 1;
    }

    /// The mock's own view of a bearer token.
    pub fn check(&self, token: Option<&str>) -> Result<&Issued, Invalid> {
        let token = token.filter(|t| !t.is_empty()).ok_or(Invalid::Missing)?;
        let issued = self.tokens.get(token).ok_or(Invalid::Unknown)?;
        if issued.revoked {
            Err(Invalid::Revoked)
        } else if issued.is_expired(self.config.clock_skew_secs) {
            Err(Invalid::Expired)
        } else {
            Ok(issued)
        }
    }

    /// Revokes every token issued so far; returns how many there were.
    pub fn revoke_all(&mut self) -> usize {
        for issued in self.tokens.values_mut() {
            issued.revoked = true;
        }
        self.tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MockConfig;

    fn state() -> State {
        State::new(MockConfig::new("a", "b"))
    }

    #[test]
    fn validity_follows_issue_revocation_and_ttl() {
        let mut s = state();
        s.remember(
            "t1".into(),
            Duration::from_secs(60),
            Expiry::Monotonic,
            json!({}),
        );
        s.remember("t0".into(), Duration::ZERO, Expiry::Monotonic, json!({}));
        let now = clock::unix_secs(0);
        let wall = |exp: u64| json!({ "exp": exp });
        s.remember(
            "w1".into(),
            Duration::ZERO,
            Expiry::WallClock,
            wall(now + 60),
        );
        s.remember(
            "w0".into(),
            Duration::from_secs(60),
            Expiry::WallClock,
            wall(now),
        );
        assert!(
            s.check(Some("w1")).is_ok(),
            "wall clock: exp decides, not ttl"
        );
        assert_eq!(s.check(Some("w0")).unwrap_err(), Invalid::Expired);
        assert!(s.check(Some("t1")).is_ok());
        assert_eq!(s.check(Some("t0")).unwrap_err(), Invalid::Expired);
        assert_eq!(s.check(Some("nope")).unwrap_err(), Invalid::Unknown);
        assert_eq!(s.check(None).unwrap_err(), Invalid::Missing);
        assert_eq!(s.revoke_all(), 4);
        assert_eq!(s.check(Some("t1")).unwrap_err(), Invalid::Revoked);
        assert_eq!(s.stats.tokens_issued, 4);
    }

    #[test]
    fn faults_are_served_in_order_each_count_times() {
        let mut s = state();
        let fault = |v| Fault::parse(&v).unwrap().1;
        s.push_fault(Target::Token, fault(json!({ "status": 500, "count": 2 })));
        s.push_fault(Target::Token, fault(json!({ "status": 502 })));
        let statuses: Vec<_> = (0..4)
            .map(|_| s.take_fault(Target::Token).map(|f| f.status))
            .collect();
        assert_eq!(statuses, [Some(500), Some(500), Some(502), None]);
        assert!(s.take_fault(Target::Api).is_none());
    }

    #[test]
    fn waiting_and_endless_faults() {
        let mut s = state();
        let fault = |v| Fault::parse(&v).unwrap().1;
        s.push_fault(
            Target::Token,
            fault(json!({ "after": 2, "count": "forever", "status": 500 })),
        );
        assert!(s.take_fault(Target::Token).is_none());
        s.note_success(Target::Api);
        s.note_success(Target::Token);
        assert!(s.take_fault(Target::Token).is_none(), "one success so far");
        s.note_success(Target::Token);
        for _ in 0..1000 {
            assert_eq!(s.take_fault(Target::Token).map(|f| f.status), Some(500));
        }
    }

    #[test]
    fn reset_forgets_but_serials_and_noise_move_on() {
        let mut s = state();
        let (first, noise) = s.next_serial();
        s.remember(
            "t".into(),
            Duration::from_secs(60),
            Expiry::Monotonic,
            json!({}),
        );
        s.stats.api_requests = 3;
        s.reset(MockConfig::new("a", "b"));
        assert_eq!(s.stats, MockStats::default());
        assert_eq!(s.check(Some("t")).unwrap_err(), Invalid::Unknown);
        let (second, other) = s.next_serial();
        assert!(second > first);
        assert_ne!(noise, other);
    }

    #[test]
    fn logs_are_bounded() {
        let mut s = state();
        let request = Request {
            method: "GET".into(),
            target: "/x".into(),
            http10: false,
            headers: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            body: vec![0xff],
            must_close: false,
        };
        for _ in 0..LOG_LIMIT + 5 {
            s.record(Target::Api, &request);
        }
        assert_eq!(s.api_log.len(), LOG_LIMIT);
        assert_eq!(s.api_log[0].headers["a"], "1, 2");
        assert_eq!(s.api_log[0].body, "\u{fffd}");
    }
}
