//! The running server: options, the in-process handle, the accept loop, and stopping.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::MockConfig;
use crate::connection;
use crate::fault::Fault;
use crate::state::{MockStats, RecordedRequest, State};
use crate::tls;

/// Live connections served at once; more are closed on accept (bounds threads and sockets).
const MAX_CONNECTIONS: usize = 512;
/// Sleeps (delays, hangs, waits) are cut into slices this long so that a stop ends them.
const SLICE: Duration = Duration::from_millis(20);
/// How long `Drop` waits for the accept thread and connections to finish.
const DROP_GRACE: Duration = Duration::from_secs(2);

/// How to start a mock. `MockOptions::default()` is the demo client on a free port.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// The registered client id (default `demo-client`).
    pub client_id: String,
    /// Its secret (default `demo-secret`).
    pub client_secret: String,
    /// Serve TLS on `https://localhost:<port>`, writing the CA certificate to `<dir>/ca.pem`.
    pub tls_dir: Option<PathBuf>,
    /// Stop by itself after this long (`None`: only on shutdown or drop).
    pub lifetime: Option<Duration>,
    /// Port to bind on 127.0.0.1 (0, the default, picks a free one).
    pub port: u16,
    /// A config patch (as `POST /admin/config`) applied at start; a reset returns to it.
    /// `Value::Null` (the default) keeps the defaults.
    pub config: Value,
}

impl Default for MockOptions {
    fn default() -> MockOptions {
        MockOptions {
            client_id: "demo-client".into(),
            client_secret: "demo-secret".into(),
            tls_dir: None,
            lifetime: None,
            port: 0,
            config: Value::Null,
        }
    }
}

/// Open sockets, so that a stop can end connections blocked in a read.
#[derive(Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, TcpStream>,
}

/// What the accept thread, the connection threads and the handle share.
pub(crate) struct Shared {
    pub base_url: String,
    /// Settings at start, restored by a reset.
    initial: MockConfig,
    state: Mutex<State>,
    stopped: AtomicBool,
    addr: SocketAddr,
    /// Separate from `state`: plumbing, never held together with it.
    registry: Mutex<Registry>,
    pub tls: Option<tls::TlsConfigs>,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take the whole mock down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reset(&self) {
        self.state().reset(self.initial.clone());
    }

    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Idempotent. Wakes the blocking accept with a connection to itself and shuts down
    /// every open socket, so no thread stays blocked in a read.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        for stream in self.registry().open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }

    /// Sleeps `total` unless stopped first; `false` when the stop cut it short.
    pub fn sleep(&self, total: Duration) -> bool {
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

    /// Admits a connection unless stopped or full. Checked under the registry lock, which
    /// `stop` also takes after setting the flag, so no connection escapes the sweep.
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let mut registry = self.registry();
        if self.stopped() || registry.open.len() >= MAX_CONNECTIONS {
            return None;
        }
        let clone = stream.try_clone().ok()?;
        registry.next_id += 1;
        let id = registry.next_id;
        registry.open.insert(id, clone);
        Some(id)
    }

    fn unregister(&self, id: u64) {
        self.registry().open.remove(&id);
    }

    fn open_connections(&self) -> usize {
        self.registry().open.len()
    }
}

/// A running mock identity provider + API on 127.0.0.1. Dropping it stops the server.
///
/// Every method may be called from any thread (the type is `Send + Sync`; share it in an
/// `Arc`).
pub struct MockServer {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    ca_pem_path: Option<PathBuf>,
}

impl MockServer {
    /// Starts on `http://127.0.0.1:<free port>` with client `demo-client` / `demo-secret`.
    ///
    /// # Panics
    /// If loopback cannot be bound (a broken test machine).
    pub fn start() -> MockServer {
        MockServer::start_with(MockOptions::default())
    }

    /// Starts serving TLS on `https://localhost:<free port>`; the CA certificate that
    /// signed the server's `localhost` certificate is written to `<dir>/ca.pem`.
    ///
    /// # Panics
    /// If loopback cannot be bound or the directory cannot be written.
    pub fn start_tls(dir: &Path) -> MockServer {
        MockServer::start_with(MockOptions {
            tls_dir: Some(dir.to_path_buf()),
            ..MockOptions::default()
        })
    }

    /// Starts with `opts`.
    ///
    /// # Panics
    /// Where [`MockServer::try_start`] would return an error.
    pub fn start_with(opts: MockOptions) -> MockServer {
        match MockServer::try_start(opts) {
            Ok(server) => server,
            Err(e) => panic!("the mock identity provider could not start: {e}"),
        }
    }

    /// Starts with `opts`; an error when the port cannot be bound, TLS cannot be set up,
    /// or `opts.config` is not a valid config patch (`InvalidInput`).
    pub fn try_start(opts: MockOptions) -> io::Result<MockServer> {
        let listener = TcpListener::bind(("127.0.0.1", opts.port))?;
        let addr = listener.local_addr()?;
        let (tls, ca_pem_path) = match &opts.tls_dir {
            Some(dir) => {
                let (configs, path) = tls::server_configs(dir)?;
                (Some(configs), Some(path))
            }
            None => (None, None),
        };
        let base_url = match tls {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://127.0.0.1:{}", addr.port()),
        };
        let mut initial = MockConfig::new(&opts.client_id, &opts.client_secret);
        if !opts.config.is_null() {
            initial
                .apply(&opts.config)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let shared = Arc::new(Shared {
            base_url,
            state: Mutex::new(State::new(initial.clone())),
            initial,
            stopped: AtomicBool::new(false),
            addr,
            registry: Mutex::new(Registry::default()),
            tls,
        });
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("mock-accept".into())
                .spawn(move || accept_loop(listener, shared))?
        };
        if let Some(lifetime) = opts.lifetime {
            let weak = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name("mock-lifetime".into())
                .spawn(move || stop_after(weak, lifetime))?;
        }
        Ok(MockServer {
            shared,
            accept: Some(accept),
            ca_pem_path,
        })
    }

    /// The base URL without a trailing slash: `http://127.0.0.1:PORT` or
    /// `https://localhost:PORT`.
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `url() + "/oauth/token"`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.shared.base_url)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// Where the CA certificate was written (TLS mode only).
    pub fn ca_pem_path(&self) -> Option<PathBuf> {
        self.ca_pem_path.clone()
    }

    /// The counters, as `GET /admin/stats`.
    pub fn stats(&self) -> MockStats {
        self.shared.state().stats
    }

    /// Requests that reached a token path (faulted and refused ones included).
    pub fn token_requests(&self) -> u64 {
        self.stats().token_requests
    }

    /// The current settings, as `POST /admin/config` returns them.
    pub fn config(&self) -> Value {
        self.shared.state().config.to_json()
    }

    /// Merges settings, as `POST /admin/config`.
    ///
    /// # Panics
    /// On an unknown key or a wrong type (a typo in a test must fail the test).
    pub fn configure(&self, patch: Value) {
        if let Err(e) = self.shared.state().config.apply(&patch) {
            panic!("mock configure({patch}): {e}");
        }
    }

    /// Queues a fault, as `POST /admin/fault` (one object, or an array of them).
    ///
    /// # Panics
    /// On a malformed fault (unknown key, wrong type, unknown kind or target).
    pub fn push_fault(&self, fault: Value) {
        let items = match &fault {
            Value::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        let parsed: Vec<_> = items
            .iter()
            .map(|f| Fault::parse(f).unwrap_or_else(|e| panic!("mock push_fault({f}): {e}")))
            .collect();
        let mut state = self.shared.state();
        for (target, fault) in parsed {
            state.push_fault(target, fault);
        }
    }

    /// Revokes every token issued so far, as `POST /admin/revoke`.
    pub fn revoke_all(&self) {
        self.shared.state().revoke_all();
    }

    /// Back to the start settings with no faults, zero counters, no tokens and empty logs,
    /// as `POST /admin/reset`.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Requests to the token paths, oldest first (the last 1000).
    pub fn token_log(&self) -> Vec<RecordedRequest> {
        self.shared.state().token_log.iter().cloned().collect()
    }

    /// Every other request except `/admin/...`, oldest first (the last 1000).
    pub fn api_log(&self) -> Vec<RecordedRequest> {
        self.shared.state().api_log.iter().cloned().collect()
    }

    /// Whether the mock would accept `token` now: issued by it, not revoked, and less than
    /// `ttl_secs` old on the mock's monotonic clock.
    pub fn is_token_valid(&self, token: &str) -> bool {
        self.shared.state().check(Some(token)).is_ok()
    }

    /// Stops serving (idempotent): the port closes, open connections end, hangs return.
    pub fn shutdown(&self) {
        self.shared.stop();
    }

    /// Whether the server has stopped (shutdown, lifetime, `POST /admin/shutdown`).
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped()
    }

    /// Blocks until the server stops.
    pub fn wait(&self) {
        while !self.shared.stopped() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shared.stop();
        let deadline = Instant::now() + DROP_GRACE;
        if let Some(accept) = self.accept.take() {
            // Bounded: if the wake-up connection could not be made, leave the thread be
            // rather than hang the test that dropped us.
            while !accept.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if accept.is_finished() {
                let _ = accept.join();
            }
        }
        while self.shared.open_connections() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stopped() {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors and the like: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Some(id) = shared.register(&stream) else {
            continue; // dropping the stream closes it
        };
        let conn_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("mock-conn".into())
            .spawn(move || {
                connection::serve(&conn_shared, stream);
                conn_shared.unregister(id);
            });
        if spawned.is_err() {
            shared.unregister(id);
        }
    }
}

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
