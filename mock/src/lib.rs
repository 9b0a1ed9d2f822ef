//! A mock OAuth 2.0 identity provider and API for tokenward's tests (in every language) and
//! its quick-start demo. Loopback only, programmable (token TTLs, `expires_in` shapes,
//! faults, delays, revocation), with counters and a request log. See `docs/mock.md`.

mod codec;
mod http;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use http::{read_request, HttpRequest, HttpResponse, ReadOutcome};

const TOKEN_PATHS: &[&str] = &["/oauth/token", "/connect/token", "/oauth2/token", "/token"];
const MAX_CONNECTIONS: usize = 512;
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const LOG_LIMIT: usize = 1000;
const MAX_HANG: Duration = Duration::from_secs(60);

/// How to start a mock.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// The registered client id (default `demo-client`).
    pub client_id: String,
    /// Its secret (default `demo-secret`).
    pub client_secret: String,
    /// Serve TLS (leaf certificate for `localhost`), writing the CA to `<dir>/ca.pem`.
    pub tls_dir: Option<PathBuf>,
    /// Stop by itself after this long.
    pub lifetime: Option<Duration>,
    /// Port to bind on 127.0.0.1 (0 = any free port).
    pub port: u16,
}

impl Default for MockOptions {
    fn default() -> MockOptions {
        MockOptions {
            client_id: "demo-client".into(),
            client_secret: "demo-secret".into(),
            tls_dir: None,
            lifetime: None,
            port: 0,
        }
    }
}

/// Counters since start (or the last reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockStats {
    /// Requests that reached a token path, faulted ones included.
    pub token_requests: u64,
    /// Tokens issued.
    pub tokens_issued: u64,
    /// Requests to `/api/...` and `/graphql`.
    pub api_requests: u64,
}

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Lower-cased header names (repeated headers joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// Body as UTF-8 (lossy).
    pub body: String,
}

impl RecordedRequest {
    fn to_json(&self) -> Value {
        json!({ "method": self.method, "path": self.path, "headers": self.headers, "body": self.body })
    }
}

#[derive(Clone)]
struct Settings {
    ttl_secs: u64,
    expires_in: String,
    token_type: Option<String>,
    token_format: String,
    token_delay_ms: u64,
    require_scope: bool,
    allowed_scopes: Option<Vec<String>>,
    clients: BTreeMap<String, String>,
    require_headers: Vec<String>,
}

impl Settings {
    fn new(opts: &MockOptions) -> Settings {
        Settings {
            ttl_secs: 3600,
            expires_in: "number".into(),
            token_type: Some("Bearer".into()),
            token_format: "jwt".into(),
            token_delay_ms: 0,
            require_scope: false,
            allowed_scopes: None,
            clients: BTreeMap::from([(opts.client_id.clone(), opts.client_secret.clone())]),
            require_headers: vec!["tenant-code".into(), "api-version".into()],
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "ttl_secs": self.ttl_secs, "expires_in": self.expires_in, "token_type": self.token_type,
            "token_format": self.token_format, "token_delay_ms": self.token_delay_ms,
            "require_scope": self.require_scope, "allowed_scopes": self.allowed_scopes,
            "clients": self.clients.keys().collect::<Vec<_>>(), "require_headers": self.require_headers,
        })
    }

    /// Merge a patch; unknown keys and wrong types are errors (a typo in a test must fail).
    fn apply(&mut self, patch: &Value) -> Result<(), String> {
        let Value::Object(map) = patch else {
            return Err("config patch must be a JSON object".into());
        };
        for (key, v) in map {
            let bad = || format!("bad value for `{key}`: {v}");
            match key.as_str() {
                "ttl_secs" => self.ttl_secs = v.as_u64().ok_or_else(bad)?,
                "expires_in" => {
                    let mode = v.as_str().ok_or_else(bad)?;
                    if !["number", "string", "float", "missing", "zero", "negative"].contains(&mode)
                    {
                        return Err(bad());
                    }
                    self.expires_in = mode.into();
                }
                "token_type" => {
                    self.token_type = if v.is_null() {
                        None
                    } else {
                        Some(v.as_str().ok_or_else(bad)?.into())
                    }
                }
                "token_format" => {
                    let f = v.as_str().ok_or_else(bad)?;
                    if f != "jwt" && f != "opaque" {
                        return Err(bad());
                    }
                    self.token_format = f.into();
                }
                "token_delay_ms" => self.token_delay_ms = v.as_u64().ok_or_else(bad)?,
                "require_scope" => self.require_scope = v.as_bool().ok_or_else(bad)?,
                "allowed_scopes" => {
                    self.allowed_scopes = if v.is_null() {
                        None
                    } else {
                        Some(strings(v).ok_or_else(bad)?)
                    }
                }
                "clients" => {
                    let Value::Object(clients) = v else {
                        return Err(bad());
                    };
                    for (id, secret) in clients {
                        self.clients
                            .insert(id.clone(), secret.as_str().ok_or_else(bad)?.into());
                    }
                }
                "require_headers" => self.require_headers = strings(v).ok_or_else(bad)?,
                _ => return Err(format!("unknown mock config key `{key}`")),
            }
        }
        Ok(())
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[derive(Clone)]
struct Fault {
    remaining: u64,
    kind: String,
    status: u16,
    body: String,
    content_type: String,
    retry_after: Option<String>,
    delay: Duration,
    size: usize,
}

impl Fault {
    fn parse(v: &Value) -> Result<(String, Fault), String> {
        let Value::Object(map) = v else {
            return Err("fault must be a JSON object".into());
        };
        for key in map.keys() {
            if ![
                "target",
                "count",
                "status",
                "body",
                "content_type",
                "retry_after",
                "delay_ms",
                "kind",
                "size",
            ]
            .contains(&key.as_str())
            {
                return Err(format!("unknown fault key `{key}`"));
            }
        }
        let target = v
            .get("target")
            .and_then(Value::as_str)
            .unwrap_or("token")
            .to_string();
        if target != "token" && target != "api" {
            return Err(format!("fault target must be token or api, not {target}"));
        }
        let kind = v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("status")
            .to_string();
        if !["status", "hang", "close", "oversized"].contains(&kind.as_str()) {
            return Err(format!("unknown fault kind {kind}"));
        }
        let retry_after = match v.get("retry_after") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => return Err(format!("bad retry_after {other}")),
        };
        Ok((
            target,
            Fault {
                remaining: v.get("count").and_then(Value::as_u64).unwrap_or(1),
                kind,
                status: v
                    .get("status")
                    .and_then(Value::as_u64)
                    .unwrap_or(503)
                    .clamp(100, 599) as u16,
                body: v
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                content_type: v
                    .get("content_type")
                    .and_then(Value::as_str)
                    .unwrap_or("application/json")
                    .to_string(),
                retry_after,
                delay: Duration::from_millis(
                    v.get("delay_ms").and_then(Value::as_u64).unwrap_or(0),
                ),
                size: v
                    .get("size")
                    .and_then(Value::as_u64)
                    .unwrap_or(10 << 20)
                    .min(64 << 20) as usize,
            },
        ))
    }
}

struct Issued {
    at: Instant,
    ttl: Duration,
    revoked: bool,
    claims: Value,
}

struct State {
    settings: Settings,
    faults: HashMap<String, VecDeque<Fault>>,
    tokens: HashMap<String, Issued>,
    stats: MockStats,
    token_log: VecDeque<RecordedRequest>,
    api_log: VecDeque<RecordedRequest>,
    serial: u64,
}

impl State {
    fn new(opts: &MockOptions) -> State {
        State {
            settings: Settings::new(opts),
            faults: HashMap::new(),
            tokens: HashMap::new(),
            stats: MockStats::default(),
            token_log: VecDeque::new(),
            api_log: VecDeque::new(),
            serial: 0,
        }
    }

    fn take_fault(&mut self, target: &str) -> Option<Fault> {
        let queue = self.faults.get_mut(target)?;
        let front = queue.front_mut()?;
        front.remaining = front.remaining.saturating_sub(1);
        let fault = front.clone();
        if front.remaining == 0 {
            queue.pop_front();
        }
        Some(fault)
    }

    fn valid(&self, token: &str) -> Option<&Issued> {
        self.tokens
            .get(token)
            .filter(|t| !t.revoked && t.at.elapsed() < t.ttl)
    }
}

struct Inner {
    opts: MockOptions,
    base_url: String,
    addr: SocketAddr,
    state: Mutex<State>,
    stop: AtomicBool,
    connections: AtomicUsize,
    tls: Option<Arc<rustls::ServerConfig>>,
    ca_pem_path: Option<PathBuf>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking handler thread must not take the whole mock down with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running mock. Dropping it stops the server.
pub struct MockServer {
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Start on `http://127.0.0.1:<free port>` with the default client.
    pub fn start() -> MockServer {
        MockServer::start_with(MockOptions::default())
    }

    /// Start serving TLS on `https://localhost:<port>`; the CA goes to `<dir>/ca.pem`.
    pub fn start_tls(dir: &Path) -> MockServer {
        MockServer::start_with(MockOptions {
            tls_dir: Some(dir.to_path_buf()),
            ..MockOptions::default()
        })
    }

    /// Start with options. Panics if it cannot bind loopback or write the CA (test setup).
    pub fn start_with(opts: MockOptions) -> MockServer {
        let listener = TcpListener::bind(("127.0.0.1", opts.port)).expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let (tls, ca_pem_path) = match &opts.tls_dir {
            Some(dir) => {
                let (config, path) = tls_config(dir).expect("TLS setup for the mock");
                (Some(config), Some(path))
            }
            None => (None, None),
        };
        let base_url = match tls {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://127.0.0.1:{}", addr.port()),
        };
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(&opts)),
            opts,
            base_url,
            addr,
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            tls,
            ca_pem_path,
        });
        let accept = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("mock-accept".into())
                .spawn(move || accept_loop(listener, inner))
                .expect("spawn accept thread")
        };
        if let Some(lifetime) = inner.opts.lifetime {
            let weak = Arc::downgrade(&inner);
            std::thread::spawn(move || {
                let until = Instant::now() + lifetime;
                while Instant::now() < until {
                    match weak.upgrade() {
                        Some(inner) if !inner.stop.load(Ordering::SeqCst) => {}
                        _ => return,
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                if let Some(inner) = weak.upgrade() {
                    stop(&inner);
                }
            });
        }
        MockServer {
            inner,
            accept: Some(accept),
        }
    }

    /// Base URL without a trailing slash.
    pub fn url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// `url() + "/oauth/token"`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.inner.base_url)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.inner.addr.port()
    }

    /// Where the CA certificate was written (TLS mode only).
    pub fn ca_pem_path(&self) -> Option<PathBuf> {
        self.inner.ca_pem_path.clone()
    }

    /// Counters.
    pub fn stats(&self) -> MockStats {
        self.inner.state().stats
    }

    /// Requests that reached a token path.
    pub fn token_requests(&self) -> u64 {
        self.stats().token_requests
    }

    /// Merge settings, as `POST /admin/config`. Panics on an unknown key (a test typo).
    pub fn configure(&self, patch: Value) {
        if let Err(e) = self.inner.state().settings.apply(&patch) {
            panic!("mock configure: {e}");
        }
    }

    /// Queue a fault, as `POST /admin/fault`. Panics on a malformed fault.
    pub fn push_fault(&self, fault: Value) {
        let (target, fault) = Fault::parse(&fault).unwrap_or_else(|e| panic!("mock fault: {e}"));
        self.inner
            .state()
            .faults
            .entry(target)
            .or_default()
            .push_back(fault);
    }

    /// Revoke every token issued so far.
    pub fn revoke_all(&self) {
        for t in self.inner.state().tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Back to defaults: settings, faults, counters, tokens, logs.
    pub fn reset(&self) {
        *self.inner.state() = State::new(&self.inner.opts);
    }

    /// Requests to token paths, oldest first (last 1000).
    pub fn token_log(&self) -> Vec<RecordedRequest> {
        self.inner.state().token_log.iter().cloned().collect()
    }

    /// Requests to everything else but /admin, oldest first (last 1000).
    pub fn api_log(&self) -> Vec<RecordedRequest> {
        self.inner.state().api_log.iter().cloned().collect()
    }

    /// Whether the mock would accept `token` now (issued, not revoked, not expired).
    pub fn is_token_valid(&self, token: &str) -> bool {
        self.inner.state().valid(token).is_some()
    }

    /// Stop serving (idempotent).
    pub fn shutdown(&self) {
        stop(&self.inner);
    }

    fn wait(&self) {
        while !self.inner.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        stop(&self.inner);
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

fn stop(inner: &Inner) {
    if !inner.stop.swap(true, Ordering::SeqCst) {
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&inner.addr, Duration::from_secs(1));
    }
}

/// The JWT payload of a token the mock issued (or any JWT); `None` for other strings.
pub fn decode_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let payload = parts.nth(1)?;
    serde_json::from_slice(&codec::b64_decode(payload)?).ok()
}

/// The `mock_idp` command line: `[--port N] [--tls DIR] [--lifetime-secs N]
/// [--client-id ID] [--client-secret S]`. Prints the base URL as the only stdout line.
pub fn cli_main() {
    let mut opts = MockOptions {
        lifetime: Some(Duration::from_secs(600)),
        ..MockOptions::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--port" => {
                opts.port = value("--port")
                    .parse()
                    .unwrap_or_else(|_| usage("--port takes a number"))
            }
            "--tls" => opts.tls_dir = Some(PathBuf::from(value("--tls"))),
            "--lifetime-secs" => {
                let secs: u64 = value("--lifetime-secs")
                    .parse()
                    .unwrap_or_else(|_| usage("--lifetime-secs takes a number"));
                opts.lifetime = Some(Duration::from_secs(secs));
            }
            "--client-id" => opts.client_id = value("--client-id"),
            "--client-secret" => opts.client_secret = value("--client-secret"),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if let Some(dir) = &opts.tls_dir {
        let _ = std::fs::create_dir_all(dir);
    }
    let server = MockServer::start_with(opts);
    println!("{}", server.url());
    let _ = std::io::stdout().flush();
    eprintln!(
        "mock_idp: serving {} (POST /admin/shutdown to stop)",
        server.url()
    );
    server.wait();
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("mock_idp: {problem}");
    }
    eprintln!("usage: mock_idp [--port N] [--tls DIR] [--lifetime-secs N] [--client-id ID] [--client-secret S]");
    std::process::exit(2)
}

fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    for stream in listener.incoming() {
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if inner.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            inner.connections.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let inner = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("mock-conn".into())
            .spawn(move || {
                let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
                let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
                let _ = stream.set_nodelay(true);
                match inner.tls.clone() {
                    Some(config) => {
                        if let Ok(conn) = rustls::ServerConnection::new(config) {
                            serve(rustls::StreamOwned::new(conn, stream), &inner);
                        }
                    }
                    None => serve(stream, &inner),
                }
                inner.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            // The closure (and its connection count) was dropped with the failed spawn.
        }
    }
}

enum Action {
    Respond(HttpResponse),
    Hang,
    Close,
}

fn serve<S: Read + Write>(stream: S, inner: &Inner) {
    let mut reader = BufReader::new(stream);
    for _ in 0..100_000 {
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
        let request = match read_request(&mut reader) {
            Ok(ReadOutcome::Request(r)) => r,
            Ok(ReadOutcome::Bad(why)) => {
                let _ = HttpResponse::json(
                    400,
                    &json!({ "error": "invalid_request", "error_description": why }),
                )
                .write_to(reader.get_mut(), false);
                return;
            }
            Ok(ReadOutcome::Closed) | Err(_) => return,
        };
        let keep_alive = request.keep_alive();
        match handle(inner, &request) {
            Action::Respond(response) => {
                if response.write_to(reader.get_mut(), keep_alive).is_err() || !keep_alive {
                    return;
                }
            }
            Action::Hang => {
                sleep_unless_stopped(inner, MAX_HANG);
                return;
            }
            Action::Close => return,
        }
    }
}

fn sleep_unless_stopped(inner: &Inner, total: Duration) {
    let until = Instant::now() + total;
    while Instant::now() < until && !inner.stop.load(Ordering::SeqCst) {
        std::thread::sleep(
            Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())),
        );
    }
}

fn record(log: &mut VecDeque<RecordedRequest>, request: &HttpRequest) {
    let mut headers = BTreeMap::new();
    for (name, value) in &request.headers {
        headers
            .entry(name.clone())
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(value)
            })
            .or_insert_with(|| value.clone());
    }
    if log.len() >= LOG_LIMIT {
        log.pop_front();
    }
    log.push_back(RecordedRequest {
        method: request.method.clone(),
        path: request.target.clone(),
        headers,
        body: String::from_utf8_lossy(&request.body).into_owned(),
    });
}

fn handle(inner: &Inner, request: &HttpRequest) -> Action {
    let path = request.path();
    if let Some(admin) = path.strip_prefix("/admin/") {
        return Action::Respond(admin_endpoint(inner, admin, request));
    }
    if path == "/.well-known/openid-configuration" {
        let base = &inner.base_url;
        return Action::Respond(HttpResponse::json(
            200,
            &json!({
                "issuer": base,
                "token_endpoint": format!("{base}/oauth/token"),
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            }),
        ));
    }
    let is_token = TOKEN_PATHS.contains(&path);
    let (fault, delay) = {
        let mut state = inner.state();
        if is_token {
            state.stats.token_requests += 1;
            record(&mut state.token_log, request);
        } else {
            state.stats.api_requests += 1;
            record(&mut state.api_log, request);
        }
        let fault = state.take_fault(if is_token { "token" } else { "api" });
        let delay = if is_token && fault.is_none() {
            Duration::from_millis(state.settings.token_delay_ms)
        } else {
            Duration::ZERO
        };
        (fault, delay)
    };
    if let Some(fault) = fault {
        sleep_unless_stopped(inner, fault.delay);
        return match fault.kind.as_str() {
            "hang" => Action::Hang,
            "close" => Action::Close,
            "oversized" => {
                let filler = "x".repeat(fault.size.saturating_sub(20));
                Action::Respond(
                    HttpResponse::new(200)
                        .header("content-type", "application/json")
                        .body(format!("{{\"access_token\":\"{filler}\"}}")),
                )
            }
            _ => {
                let mut r = HttpResponse::new(fault.status)
                    .header("content-type", &fault.content_type)
                    .body(fault.body);
                if let Some(ra) = fault.retry_after {
                    r = r.header("retry-after", &ra);
                }
                Action::Respond(r)
            }
        };
    }
    // Sleep before issuing, so a slow answer still carries a full-lifetime token.
    sleep_unless_stopped(inner, delay);
    Action::Respond(if is_token {
        token_endpoint(inner, request)
    } else {
        api(inner, request)
    })
}

fn oauth_error(status: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::json(
        status,
        &json!({ "error": error, "error_description": description }),
    )
    .header("cache-control", "no-store")
}

fn token_endpoint(inner: &Inner, request: &HttpRequest) -> HttpResponse {
    if request.method != "POST" {
        return oauth_error(
            405,
            "invalid_request",
            "The token endpoint only accepts POST.",
        )
        .header("allow", "POST");
    }
    if !request.header("content-type").is_some_and(|ct| {
        ct.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    }) {
        return oauth_error(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded.",
        );
    }
    let Some(form) = std::str::from_utf8(&request.body)
        .ok()
        .and_then(codec::parse_form)
    else {
        return oauth_error(400, "invalid_request", "The form body is malformed.");
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            "Only client_credentials is supported.",
        );
    }
    let basic = request.header("authorization").and_then(|h| {
        let (scheme, rest) = h.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("basic")
            .then(|| rest.trim().to_string())
    });
    let (client_id, secret) = match (&basic, field("client_secret")) {
        (Some(_), Some(_)) => {
            return oauth_error(
                400,
                "invalid_request",
                "Use one client authentication method, not several.",
            )
        }
        (Some(b64), None) => {
            // RFC 6749 §2.3.1: form-urlencoded id and secret inside Basic; decode as a
            // strict server does (plain percent-decoding: '+' stays '+').
            let decoded = codec::b64_decode(b64).and_then(|b| String::from_utf8(b).ok());
            let pair = decoded.as_deref().and_then(|d| d.split_once(':'));
            match pair.and_then(|(i, s)| {
                Some((
                    codec::percent_decode(i, false)?,
                    codec::percent_decode(s, false)?,
                ))
            }) {
                Some(pair) => pair,
                None => {
                    return oauth_error(401, "invalid_client", "Malformed Basic credentials.")
                        .header("www-authenticate", "Basic realm=\"mock\"")
                }
            }
        }
        (None, secret) => (
            field("client_id").unwrap_or("").to_string(),
            secret.unwrap_or("").to_string(),
        ),
    };
    let mut state = inner.state();
    let known = state
        .settings
        .clients
        .get(&client_id)
        .is_some_and(|s| *s == secret && !secret.is_empty());
    if !known {
        let mut r = oauth_error(401, "invalid_client", "Client authentication failed.");
        if basic.is_some() {
            r = r.header("www-authenticate", "Basic realm=\"mock\"");
        }
        return r;
    }
    let scope = field("scope").map(str::to_string);
    if state.settings.require_scope && scope.is_none() {
        return oauth_error(400, "invalid_scope", "A scope is required.");
    }
    if let (Some(allowed), Some(scope)) = (&state.settings.allowed_scopes, &scope) {
        if let Some(bad) = scope
            .split_whitespace()
            .find(|s| !allowed.iter().any(|a| a == s))
        {
            return oauth_error(
                400,
                "invalid_scope",
                &format!("The scope {bad} is not allowed for this client."),
            );
        }
    }
    state.serial += 1;
    let serial = state.serial;
    let settings = state.settings.clone();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let extra: serde_json::Map<String, Value> = form
        .iter()
        .filter(|(k, _)| {
            ![
                "grant_type",
                "client_id",
                "client_secret",
                "scope",
                "audience",
                "resource",
            ]
            .contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut claims = json!({
        "iss": inner.base_url, "sub": client_id, "client_id": client_id, "jti": serial.to_string(),
        "iat": now, "exp": now + settings.ttl_secs, "extra": extra,
    });
    for (claim, param) in [
        ("scope", "scope"),
        ("aud", "audience"),
        ("resource", "resource"),
    ] {
        if let Some(v) = field(param) {
            claims[claim] = Value::String(v.to_string());
        }
    }
    let noise = format!("{serial}:{now}:{:?}", Instant::now());
    let token = match settings.token_format.as_str() {
        "opaque" => format!("opaque-{serial}-{}", hex(&noise)),
        _ => format!(
            "{}.{}.{}",
            codec::b64url_encode(br#"{"alg":"none","typ":"JWT"}"#),
            codec::b64url_encode(claims.to_string().as_bytes()),
            codec::b64url_encode(hex(&noise).as_bytes())
        ),
    };
    state.tokens.insert(
        token.clone(),
        Issued {
            at: Instant::now(),
            ttl: Duration::from_secs(settings.ttl_secs),
            revoked: false,
            claims,
        },
    );
    state.stats.tokens_issued += 1;
    let mut body = json!({ "access_token": token });
    if let Some(t) = &settings.token_type {
        body["token_type"] = json!(t);
    }
    let ttl = settings.ttl_secs;
    match settings.expires_in.as_str() {
        "string" => body["expires_in"] = json!(ttl.to_string()),
        "float" => body["expires_in"] = json!(ttl as f64),
        "missing" => {}
        "zero" => body["expires_in"] = json!(0),
        "negative" => body["expires_in"] = json!(-1),
        _ => body["expires_in"] = json!(ttl),
    }
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    HttpResponse::json(200, &body)
        .header("cache-control", "no-store")
        .header("pragma", "no-cache")
}

/// A short hex digest-ish string (FNV-1a) for token noise; not cryptographic.
fn hex(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn api(inner: &Inner, request: &HttpRequest) -> HttpResponse {
    let path = request.path();
    if path == "/api/redirect" {
        let to = request
            .query()
            .split('&')
            .find_map(|p| p.strip_prefix("to="))
            .and_then(|t| codec::percent_decode(t, false));
        return match to {
            Some(to) => HttpResponse::new(302).header("location", &to),
            None => HttpResponse::json(400, &json!({ "error": "missing ?to=" })),
        };
    }
    let state = inner.state();
    let bearer = request.header("authorization").and_then(|h| {
        let (scheme, token) = h.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let issued = bearer.and_then(|t| state.valid(t));
    if path == "/graphql" {
        return match issued {
            Some(i) => HttpResponse::json(
                200,
                &json!({ "data": { "viewer": { "jti": i.claims["jti"] } } }),
            ),
            None => HttpResponse::json(
                200,
                &json!({
                    "data": null,
                    "errors": [{ "message": "Unauthenticated", "extensions": { "code": "UNAUTHENTICATED" } }]
                }),
            ),
        };
    }
    let unauthorized = || {
        HttpResponse::json(401, &json!({ "error": "invalid_token" })).header(
            "www-authenticate",
            "Bearer error=\"invalid_token\", error_description=\"The access token is missing, expired or revoked\"",
        )
    };
    if !path.starts_with("/api/") && path != "/api" {
        return HttpResponse::json(404, &json!({ "error": "not_found", "path": path }));
    }
    let Some(issued) = issued else {
        return unauthorized();
    };
    if path == "/api/always-401" {
        return unauthorized();
    }
    if path == "/api/forbidden" {
        return HttpResponse::json(403, &json!({ "error": "insufficient_scope" })).header(
            "www-authenticate",
            "Bearer error=\"insufficient_scope\", scope=\"admin:write\"",
        );
    }
    for required in &state.settings.require_headers {
        if request.header(required).is_none() {
            let code = match required.as_str() {
                "tenant-code" => "MISSING_TENANT".to_string(),
                "api-version" => "MISSING_API_VERSION".to_string(),
                other => format!("MISSING_{}", other.to_ascii_uppercase().replace('-', "_")),
            };
            return HttpResponse::json(400, &json!({ "error": code }));
        }
    }
    HttpResponse::json(
        200,
        &json!({
            "ok": true,
            "method": request.method,
            "path": path,
            "query": request.query(),
            "tenant_code": request.header("tenant-code"),
            "api_version": request.header("api-version"),
            "jti": issued.claims["jti"],
            "scope": issued.claims.get("scope"),
            "body": String::from_utf8_lossy(&request.body),
        }),
    )
}

fn admin_endpoint(inner: &Inner, name: &str, request: &HttpRequest) -> HttpResponse {
    let body = || -> Result<Value, HttpResponse> {
        if request.body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&request.body)
            .map_err(|e| HttpResponse::json(400, &json!({ "error": format!("bad JSON: {e}") })))
    };
    let bad = |e: String| HttpResponse::json(400, &json!({ "error": e }));
    match (request.method.as_str(), name) {
        ("GET", "stats") => {
            let s = inner.state().stats;
            HttpResponse::json(
                200,
                &json!({ "token_requests": s.token_requests, "tokens_issued": s.tokens_issued, "api_requests": s.api_requests }),
            )
        }
        ("GET", "requests") => {
            let state = inner.state();
            HttpResponse::json(
                200,
                &json!({
                    "token": state.token_log.iter().map(RecordedRequest::to_json).collect::<Vec<_>>(),
                    "api": state.api_log.iter().map(RecordedRequest::to_json).collect::<Vec<_>>(),
                }),
            )
        }
        ("POST", "config") => match body() {
            Ok(patch) => {
                let mut state = inner.state();
                match state.settings.apply(&patch) {
                    Ok(()) => HttpResponse::json(200, &state.settings.to_json()),
                    Err(e) => bad(e),
                }
            }
            Err(r) => r,
        },
        ("POST", "fault") => match body() {
            Ok(v) => {
                let faults = match &v {
                    Value::Array(items) => items.clone(),
                    other => vec![other.clone()],
                };
                let mut parsed = Vec::new();
                for f in &faults {
                    match Fault::parse(f) {
                        Ok(p) => parsed.push(p),
                        Err(e) => return bad(e),
                    }
                }
                let mut state = inner.state();
                for (target, fault) in parsed {
                    state.faults.entry(target).or_default().push_back(fault);
                }
                HttpResponse::json(200, &json!({ "queued": faults.len() }))
            }
            Err(r) => r,
        },
        ("POST", "revoke") => {
            let mut state = inner.state();
            let n = state.tokens.len();
            for t in state.tokens.values_mut() {
                t.revoked = true;
            }
            HttpResponse::json(200, &json!({ "revoked": n }))
        }
        ("POST", "reset") => {
            *inner.state() = State::new(&inner.opts);
            HttpResponse::json(200, &json!({ "reset": true }))
        }
        ("POST", "shutdown") => {
            inner.stop.store(true, Ordering::SeqCst);
            let addr = inner.addr;
            std::thread::spawn(move || {
                let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
            });
            HttpResponse::json(200, &json!({ "stopping": true }))
        }
        _ => HttpResponse::json(
            404,
            &json!({ "error": format!("no admin endpoint {} /admin/{name}", request.method) }),
        ),
    }
}

fn tls_config(dir: &Path) -> Result<(Arc<rustls::ServerConfig>, PathBuf), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let ca_key = KeyPair::generate().map_err(|x| e(&x))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|x| e(&x))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tokenward mock CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|x| e(&x))?;
    let leaf_key = KeyPair::generate().map_err(|x| e(&x))?;
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string()]).map_err(|x| e(&x))?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .map_err(|x| e(&x))?;
    std::fs::create_dir_all(dir).map_err(|x| e(&x))?;
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).map_err(|x| e(&x))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|x| e(&x))?
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
    .map_err(|x| e(&x))?;
    Ok((Arc::new(config), ca_path))
}
