//! A hostile HTTP/1.1 server for security tests: every answer is whatever bytes the test
//! wants (malformed, huge, CRLF-injected, slow, endless), and every request is recorded
//! exactly as it arrived.
//!
//! ```no_run
//! use tokenward_mock::hostile::{HostileServer, RawResponse};
//!
//! let api = HostileServer::start(|_request| RawResponse::json(200, &serde_json::json!({"ok": true})));
//! let evil = HostileServer::start(|_request| RawResponse::json(200, &serde_json::json!({})));
//! let hop = evil.url_for("/steal");
//! let redirector = HostileServer::start(move |_request| RawResponse::redirect(302, &hop));
//! // ... send a request to redirector.url_for("/x"), then:
//! assert!(evil.requests().iter().all(|r| r.header("authorization").is_none()));
//! # drop(api);
//! ```
//!
//! Each server binds `127.0.0.1:0` (a free port), so two servers are two origins. It stops
//! by itself after [`HostileOptions::lifetime`], and on drop; stopping closes every open
//! connection, including one in the middle of a slow or endless answer. Its port closes
//! after [`HostileOptions::max_connections`] accepted connections.
//!
//! Reading is lenient on purpose (the client under test is what is being examined): the
//! head ends at the first empty line (CRLF or bare LF), and a body is read when
//! `Content-Length` or `Transfer-Encoding: chunked` frames it. `Expect: 100-continue` gets
//! `HTTP/1.1 100 Continue` before the body is read.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Largest request head recorded; a longer head is recorded truncated and the connection
/// closed.
pub const MAX_HEAD: usize = 1024 * 1024;
/// Largest request body read.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Requests kept by [`HostileServer::requests`]; beyond it the oldest are dropped.
pub const MAX_RECORDED: usize = 10_000;
/// Bytes an endless body sends at most (a client that never stops reading still ends).
pub const MAX_ENDLESS: u64 = 4 * 1024 * 1024 * 1024;
/// How long [`RawResponse::hang`] holds a connection at most.
pub const MAX_HANG: Duration = Duration::from_secs(60);
/// Connections served at once; more are closed on accept.
const MAX_CONCURRENT: usize = 64;
/// Requests read on one kept-open connection at most.
const MAX_REQUESTS_PER_CONNECTION: usize = 1000;
/// Sleeps are cut into slices this long so that a stop ends them.
const SLICE: Duration = Duration::from_millis(20);
const DROP_GRACE: Duration = Duration::from_secs(2);

/// One request exactly as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Which accepted connection carried it (1 for the first); equal numbers mean reuse.
    pub connection: u64,
    /// The request line without its line ending, e.g. `GET /a HTTP/1.1`.
    pub request_line: Vec<u8>,
    /// The header lines in arrival order, each without its line ending, exactly as sent
    /// (name case, spacing, duplicates).
    pub header_lines: Vec<Vec<u8>>,
    /// Every byte of the head, from the request line through the empty line that ends it.
    pub raw_head: Vec<u8>,
    /// The body (de-chunked when it was sent chunked; empty when none was framed).
    pub body: Vec<u8>,
    /// The head was cut at [`MAX_HEAD`] or by the peer closing; no body was read.
    pub truncated: bool,
}

impl RecordedRequest {
    /// The first word of the request line (lossy UTF-8).
    pub fn method(&self) -> String {
        self.word(0)
    }

    /// The second word of the request line: path and query as sent.
    pub fn target(&self) -> String {
        self.word(1)
    }

    /// [`target`](Self::target) without the query.
    pub fn path(&self) -> String {
        let target = self.target();
        target.split('?').next().unwrap_or_default().to_string()
    }

    fn word(&self, n: usize) -> String {
        String::from_utf8_lossy(&self.request_line)
            .split(' ')
            .nth(n)
            .unwrap_or_default()
            .to_string()
    }

    /// `(name, value)` for every header line with a colon: the name as sent, the value with
    /// surrounding spaces and tabs removed (lossy UTF-8).
    pub fn headers(&self) -> Vec<(String, String)> {
        self.header_lines
            .iter()
            .filter_map(|line| {
                let colon = line.iter().position(|b| *b == b':')?;
                let name = String::from_utf8_lossy(&line[..colon]).into_owned();
                let value = String::from_utf8_lossy(&line[colon + 1..])
                    .trim_matches([' ', '\t'])
                    .to_string();
                Some((name, value))
            })
            .collect()
    }

    /// Every value of the header `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers()
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_values(name).into_iter().next()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Write(Vec<u8>),
    /// Writes the bytes one at a time with this pause between them.
    Trickle(Vec<u8>, Duration),
    Sleep(Duration),
    /// Repeats the filler until the peer stops reading, the server stops, or
    /// [`MAX_ENDLESS`] bytes went out.
    Endless(Vec<u8>),
    Hang,
}

/// What the server does with one request: a sequence of writes and pauses, then it closes
/// the connection (unless [`keep_open`](RawResponse::keep_open)). Nothing is added or checked:
/// the bytes go out exactly as given.
#[derive(Debug, Clone)]
pub struct RawResponse {
    steps: Vec<Step>,
    keep_open: bool,
}

impl RawResponse {
    /// Sends exactly `bytes` (status line, headers, body — or garbage), then closes.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> RawResponse {
        RawResponse {
            steps: vec![Step::Write(bytes.into())],
            keep_open: false,
        }
    }

    /// Closes the connection without sending a byte.
    pub fn close() -> RawResponse {
        RawResponse {
            steps: Vec::new(),
            keep_open: false,
        }
    }

    /// Never answers: holds the connection until the client gives up, the server stops,
    /// or [`MAX_HANG`] passes.
    pub fn hang() -> RawResponse {
        RawResponse::close().then_hang()
    }

    /// A well-formed HTTP/1.1 answer with `Content-Length` and `Connection: close`.
    /// Header names and values are written as given (a value may carry CR LF on purpose).
    pub fn http(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> RawResponse {
        let body = body.into();
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&body);
        RawResponse::bytes(bytes)
    }

    /// `status` with a compact JSON body and `Content-Type: application/json`.
    pub fn json(status: u16, body: &Value) -> RawResponse {
        RawResponse::http(
            status,
            &[("Content-Type", "application/json")],
            body.to_string(),
        )
    }

    /// A redirect (`status` 301, 302, 303, 307 or 308, or any other) to `location`,
    /// written as given, with an empty body.
    pub fn redirect(status: u16, location: &str) -> RawResponse {
        RawResponse::http(status, &[("Location", location)], Vec::new())
    }

    /// `response` after a pause of `delay` (a stop cuts the pause short and closes).
    pub fn slow(delay: Duration, response: RawResponse) -> RawResponse {
        let mut steps = vec![Step::Sleep(delay)];
        steps.extend(response.steps);
        RawResponse {
            steps,
            keep_open: response.keep_open,
        }
    }

    /// `bytes` written one byte at a time, `gap` apart (a slow-loris answer).
    pub fn trickle(bytes: impl Into<Vec<u8>>, gap: Duration) -> RawResponse {
        RawResponse {
            steps: vec![Step::Trickle(bytes.into(), gap)],
            keep_open: false,
        }
    }

    /// A `status` head with `Content-Type` and no length (the body runs to the close),
    /// then a body that never ends: `{"access_token":"aaaa…` until the client stops
    /// reading, the server stops, or [`MAX_ENDLESS`] bytes went out.
    pub fn never_ending_body(status: u16, content_type: &str) -> RawResponse {
        RawResponse::bytes(format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n{{\"access_token\":\"",
            reason(status)
        ))
        .then_endless(b"a".repeat(64 * 1024))
    }

    /// Then sends `bytes`.
    pub fn then_bytes(mut self, bytes: impl Into<Vec<u8>>) -> RawResponse {
        self.steps.push(Step::Write(bytes.into()));
        self
    }

    /// Then pauses for `pause`.
    pub fn then_sleep(mut self, pause: Duration) -> RawResponse {
        self.steps.push(Step::Sleep(pause));
        self
    }

    /// Then repeats `filler` (not empty) without end, as [`never_ending_body`](Self::never_ending_body).
    pub fn then_endless(mut self, filler: impl Into<Vec<u8>>) -> RawResponse {
        let filler = filler.into();
        if !filler.is_empty() {
            self.steps.push(Step::Endless(filler));
        }
        self
    }

    /// Then holds the connection without sending more, as [`hang`](Self::hang).
    pub fn then_hang(mut self) -> RawResponse {
        self.steps.push(Step::Hang);
        self
    }

    /// After the answer, reads the next request on the same connection instead of
    /// closing (the bytes must then frame the answer, e.g. with `Content-Length`, and not
    /// say `Connection: close`).
    pub fn keep_open(mut self) -> RawResponse {
        self.keep_open = true;
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Limits of a [`HostileServer`]; `HostileOptions::default()` suits a test.
#[derive(Debug, Clone)]
pub struct HostileOptions {
    /// The port closes after this many accepted connections (default 1000); the last one
    /// is still served.
    pub max_connections: u64,
    /// The server stops by itself after this long (default 120 s).
    pub lifetime: Duration,
    /// A client silent this long while the server reads a request is disconnected, and a
    /// client that stops reading stalls a write at most this long (default 10 s).
    pub io_timeout: Duration,
}

impl Default for HostileOptions {
    fn default() -> HostileOptions {
        HostileOptions {
            max_connections: 1000,
            lifetime: Duration::from_secs(120),
            io_timeout: Duration::from_secs(10),
        }
    }
}

type Handler = dyn Fn(&RecordedRequest) -> RawResponse + Send + Sync;

struct Shared {
    addr: SocketAddr,
    handler: Box<Handler>,
    opts: HostileOptions,
    stopped: AtomicBool,
    accepted: AtomicU64,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Open sockets (by connection number), so that a stop ends every blocked read/write.
    open: Mutex<HashMap<u64, TcpStream>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not poison the recordings for the test that reads them.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        for stream in lock(&self.open).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wakes the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }

    /// Sleeps `total` unless stopped first; `false` when the stop cut it short.
    fn sleep(&self, total: Duration) -> bool {
        let until = Instant::now() + total;
        loop {
            if self.stopped() {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(SLICE));
        }
    }

    fn record(&self, request: RecordedRequest) {
        let mut requests = lock(&self.requests);
        if requests.len() == MAX_RECORDED {
            requests.remove(0);
        }
        requests.push(request);
    }
}

/// A running hostile server on `127.0.0.1:<free port>`. Dropping it stops it.
/// `Send + Sync`: share it with `Arc` or read its recordings from any thread.
pub struct HostileServer {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl HostileServer {
    /// Starts with default limits; `handler` answers every request (it runs on the
    /// connection's thread, possibly on several threads at once).
    ///
    /// # Panics
    /// If loopback cannot be bound (a broken test machine).
    pub fn start<F>(handler: F) -> HostileServer
    where
        F: Fn(&RecordedRequest) -> RawResponse + Send + Sync + 'static,
    {
        match HostileServer::try_start(HostileOptions::default(), handler) {
            Ok(server) => server,
            Err(e) => panic!("the hostile server could not start: {e}"),
        }
    }

    /// Starts with `opts`; an error when loopback cannot be bound.
    pub fn try_start<F>(opts: HostileOptions, handler: F) -> io::Result<HostileServer>
    where
        F: Fn(&RecordedRequest) -> RawResponse + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            addr,
            handler: Box::new(handler),
            opts,
            stopped: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            open: Mutex::new(HashMap::new()),
        });
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("hostile-accept".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        let weak = Arc::downgrade(&shared);
        let lifetime = shared.opts.lifetime;
        std::thread::Builder::new()
            .name("hostile-lifetime".into())
            .spawn(move || stop_after(weak, lifetime))?;
        Ok(HostileServer {
            shared,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The origin (scheme, host, port) as a browser would write it; the same string as
    /// [`url`](Self::url). Every server has its own port, so its own origin.
    pub fn origin(&self) -> String {
        self.url()
    }

    /// `url() + path` (`path` starts with `/`).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// Every request received so far, oldest first (at most [`MAX_RECORDED`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests are recorded.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests are recorded or `timeout` passes; whether they
    /// were.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.request_count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops now (idempotent): the port closes and every open connection ends.
    pub fn shutdown(&self) {
        self.shared.stop();
    }

    /// Whether the server has stopped (shutdown, drop, lifetime). Reaching
    /// `max_connections` only closes the port.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped()
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.shared.stop();
        let deadline = Instant::now() + DROP_GRACE;
        if let Some(accept) = self.accept.take() {
            while !accept.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if accept.is_finished() {
                let _ = accept.join();
            }
        }
        while !lock(&self.shared.open).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stopped() {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors and the like: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.stopped() {
            break;
        }
        let id = shared.accepted.fetch_add(1, Ordering::SeqCst) + 1;
        // The last connection allowed is still served; the port closes behind it.
        let last = id >= shared.opts.max_connections;
        if !register(shared, id, &stream) {
            if last {
                break;
            }
            continue; // dropping the stream closes it
        }
        let conn_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("hostile-conn".into())
            .spawn(move || {
                serve(&conn_shared, id, stream);
                lock(&conn_shared.open).remove(&id);
            });
        if spawned.is_err() {
            lock(&shared.open).remove(&id);
        }
        if last {
            break;
        }
    }
}

/// Stops the server when its lifetime is over, unless it is gone or stopped first.
fn stop_after(shared: Weak<Shared>, lifetime: Duration) {
    let deadline = Instant::now() + lifetime;
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.stopped() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            shared.stop();
            return;
        }
        drop(shared);
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Admits a connection unless stopped or too many are open (checked under the lock that
/// `stop` sweeps, so none escapes it).
fn register(shared: &Shared, id: u64, stream: &TcpStream) -> bool {
    let mut open = lock(&shared.open);
    if shared.stopped() || open.len() >= MAX_CONCURRENT {
        return false;
    }
    match stream.try_clone() {
        Ok(clone) => open.insert(id, clone).is_none(),
        Err(_) => false,
    }
}

fn serve(shared: &Shared, id: u64, stream: TcpStream) {
    let timeout = Some(shared.opts.io_timeout);
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        if shared.stopped() {
            break;
        }
        let Some(request) = read_request(&mut reader, id) else {
            break;
        };
        // Recorded before the handler runs, so a handler that panics or blocks still
        // leaves the evidence.
        shared.record(request.clone());
        let truncated = request.truncated;
        // A panicking handler (a failed assertion in a test's closure) closes this
        // connection without an answer; the server goes on serving.
        let answered = std::panic::catch_unwind(AssertUnwindSafe(|| (shared.handler)(&request)));
        let Ok(response) = answered else {
            break;
        };
        if truncated || !play(shared, reader.get_mut(), &response) || !response.keep_open {
            break;
        }
    }
    close(reader.into_inner());
}

/// FIN, then a short drain, so unread request bytes do not turn the close into a reset
/// that destroys the answer just sent.
fn close(stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0; 8192];
    let mut drained = 0;
    while Instant::now() < deadline && drained < 1 << 20 {
        match (&stream).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Runs the steps; `false` when the connection is finished (write failed, stop, hang).
fn play(shared: &Shared, out: &mut TcpStream, response: &RawResponse) -> bool {
    for step in &response.steps {
        let ok = match step {
            Step::Write(bytes) => out.write_all(bytes).and_then(|()| out.flush()).is_ok(),
            Step::Trickle(bytes, gap) => bytes
                .iter()
                .enumerate()
                .all(|(i, b)| (i == 0 || shared.sleep(*gap)) && out.write_all(&[*b]).is_ok()),
            Step::Sleep(pause) => shared.sleep(*pause),
            Step::Endless(filler) => {
                let mut sent = 0u64;
                while sent < MAX_ENDLESS && !shared.stopped() && out.write_all(filler).is_ok() {
                    sent += filler.len() as u64;
                }
                false
            }
            Step::Hang => {
                shared.sleep(MAX_HANG);
                false
            }
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Reads one request, leniently; `None` when the peer closed (or timed out) before a byte.
fn read_request(reader: &mut BufReader<TcpStream>, connection: u64) -> Option<RecordedRequest> {
    let mut raw_head = Vec::new();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut truncated = true;
    while raw_head.len() < MAX_HEAD {
        let mut line = Vec::new();
        let budget = (MAX_HEAD - raw_head.len()) as u64;
        match reader.by_ref().take(budget).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        raw_head.extend_from_slice(&line);
        if line.last() != Some(&b'\n') {
            break;
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        // Blank lines before the request line are tolerated, as RFC 9112 §2.2 allows.
        if line.is_empty() && lines.is_empty() {
            continue;
        }
        if line.is_empty() {
            truncated = false;
            break;
        }
        lines.push(line);
    }
    if raw_head.is_empty() {
        return None;
    }
    let mut lines = lines.into_iter();
    let mut request = RecordedRequest {
        connection,
        request_line: lines.next().unwrap_or_default(),
        header_lines: lines.collect(),
        raw_head,
        body: Vec::new(),
        truncated,
    };
    if !truncated {
        if request
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            let _ = reader.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        request.body = read_body(reader, &request);
    }
    Some(request)
}

fn read_body(reader: &mut BufReader<TcpStream>, request: &RecordedRequest) -> Vec<u8> {
    let chunked = request
        .header_values("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return read_chunked(reader);
    }
    let length = request
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut body = Vec::new();
    let _ = reader.by_ref().take(length as u64).read_to_end(&mut body);
    body
}

/// De-chunks as much as arrives well-formed; stops at the last chunk, a malformed size, or
/// [`MAX_BODY`].
fn read_chunked(reader: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut body = Vec::new();
    let mut line = String::new();
    while body.len() < MAX_BODY {
        line.clear();
        if reader.by_ref().take(4096).read_line(&mut line).is_err() {
            break;
        }
        let size = line.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size, 16) else {
            break;
        };
        if size == 0 {
            // Trailers, up to the empty line.
            for _ in 0..100 {
                line.clear();
                match reader.by_ref().take(4096).read_line(&mut line) {
                    Ok(n) if n > 0 && !line.trim().is_empty() => continue,
                    _ => break,
                }
            }
            break;
        }
        let take = size.min(MAX_BODY - body.len());
        let start = body.len();
        body.resize(start + take, 0);
        if reader.read_exact(&mut body[start..]).is_err() {
            body.truncate(start);
            break;
        }
        line.clear();
        let _ = reader.by_ref().take(2).read_line(&mut line);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_write_what_they_say() {
        let Step::Write(bytes) = &RawResponse::redirect(307, "http://x/y").steps[0] else {
            panic!("a write")
        };
        assert_eq!(
            String::from_utf8_lossy(bytes),
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://x/y\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let slow = RawResponse::slow(Duration::from_secs(1), RawResponse::close().keep_open());
        assert!(matches!(slow.steps[..], [Step::Sleep(_)]));
        assert!(slow.keep_open);
        assert!(RawResponse::close()
            .then_endless(Vec::new())
            .steps
            .is_empty());
    }

    #[test]
    fn recorded_requests_parse_leniently() {
        let r = RecordedRequest {
            connection: 1,
            request_line: b"GET /a?b HTTP/1.1".to_vec(),
            header_lines: vec![
                b"X-One:  1 ".to_vec(),
                b"no colon".to_vec(),
                b"x-one:2".to_vec(),
            ],
            raw_head: Vec::new(),
            body: Vec::new(),
            truncated: false,
        };
        assert_eq!(
            (r.method(), r.target(), r.path()),
            ("GET".into(), "/a?b".into(), "/a".into())
        );
        assert_eq!(r.header_values("X-ONE"), ["1", "2"]);
        assert_eq!(r.header("missing"), None);
    }
}
