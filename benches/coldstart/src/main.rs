//! Cold start: what a process pays for its first token, and for each further new client,
//! with tokenward and with the `oauth2` crate over ureq 3 (the blocking stack a Rust user
//! would otherwise pick), over loopback `http` and `https` against the mock identity
//! provider; `curl` makes the same request for scale.
//!
//!     cargo run --release --manifest-path benches/coldstart/Cargo.toml            # everything below
//!     cargo run --release --manifest-path benches/coldstart/Cargo.toml -- wall    # wall clock only
//!     cargo run --release --manifest-path benches/coldstart/Cargo.toml -- instr   # callgrind only
//!
//! Instruction counts come from `valgrind --tool=callgrind` run on this same binary in its
//! `fetch` mode (one process that builds `N` clients one after another, each fetching one
//! token); the mock runs in this driver process, so none of its work is counted:
//!
//! - whole process: start, one client, one token (`fetch IMPL URL 1`);
//! - first fetch: the same process, counting only inside `cold_fetch`;
//! - per further cold fetch: (`fetch IMPL URL 11` − `fetch IMPL URL 1`) / 10.
//!
//! Wall clock: the median of in-process cold fetches (a new client and its first token,
//! after one warm-up client), of first fetches in fresh processes (timed inside the child)
//! and of `curl -w %{time_total}` for the same POST.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, TokenResponse, TokenUrl};
use tokenward_mock::MockServer;
use ureq::tls::{PemItem, RootCerts, TlsConfig};

const CLIENT_ID: &str = "demo-client";
const CLIENT_SECRET: &str = "demo-secret";
/// In-process cold fetches per implementation and scheme.
const RUNS: usize = 200;
/// Fresh processes per implementation and scheme.
const PROCESSES: usize = 30;
/// Clients in the "further clients" process, besides the first.
const FURTHER: u64 = 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    Tokenward,
    Oauth2,
    Oauth2Ureq2,
}

const IMPLS: [Impl; 3] = [Impl::Tokenward, Impl::Oauth2, Impl::Oauth2Ureq2];

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Tokenward => "tokenward",
            Impl::Oauth2 => "oauth2+ureq",
            Impl::Oauth2Ureq2 => "oauth2+ureq2",
        }
    }

    fn parse(text: &str) -> Option<Impl> {
        match text {
            "tokenward" => Some(Impl::Tokenward),
            "oauth2" | "oauth2+ureq" => Some(Impl::Oauth2),
            "oauth2+ureq2" => Some(Impl::Oauth2Ureq2),
            _ => None,
        }
    }
}

/// One new client and its first token; the length of the token, so nothing is optimised out.
#[inline(never)]
fn cold_fetch(which: Impl, url: &str, ca: Option<&Path>) -> usize {
    match which {
        Impl::Tokenward => tokenward_fetch(url, ca),
        Impl::Oauth2 => oauth2_fetch(url, ca),
        Impl::Oauth2Ureq2 => oauth2_ureq2_fetch(url, ca),
    }
}

fn tokenward_fetch(url: &str, ca: Option<&Path>) -> usize {
    let mut builder = tokenward::Config::builder()
        .token_url(url)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .allow_http(true);
    if let Some(ca) = ca {
        builder = builder.ca_file(ca);
    }
    let client =
        tokenward::Client::new(builder.build().expect("valid configuration")).expect("client");
    client.token().expect("token").as_str().len()
}

/// The oauth2 crate's client-credentials exchange over a ureq 3 agent configured as its
/// documentation advises (no redirects, error statuses returned as responses).
fn oauth2_fetch(url: &str, ca: Option<&Path>) -> usize {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0);
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).expect("CA file");
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        config = config.tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&certs))
                .build(),
        );
    }
    let agent = config.build().new_agent();
    let http = |request: oauth2::HttpRequest| -> Result<oauth2::HttpResponse, ureq::Error> {
        let mut response = agent.run(request)?;
        let mut out = oauth2::http::Response::builder().status(response.status());
        if let Some(value) = response.headers().get(oauth2::http::header::CONTENT_TYPE) {
            out = out.header(oauth2::http::header::CONTENT_TYPE, value.clone());
        }
        let body = response.body_mut().read_to_vec()?;
        Ok(out
            .body(body)
            .expect("status and header come from a response"))
    };
    let client = BasicClient::new(ClientId::new(CLIENT_ID.into()))
        .set_client_secret(ClientSecret::new(CLIENT_SECRET.into()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(url.into()).expect("token URL"));
    let token = client
        .exchange_client_credentials()
        .request(&http)
        .expect("token");
    token.access_token().secret().len()
}

/// The same exchange through the oauth2 crate's own ureq 2 integration.
fn oauth2_ureq2_fetch(url: &str, ca: Option<&Path>) -> usize {
    let mut builder = oauth2::ureq::AgentBuilder::new().redirects(0);
    if let Some(ca) = ca {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(
            rustls::pki_types::CertificateDer::pem_file_iter(ca)
                .expect("CA file")
                .filter_map(Result::ok),
        );
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        builder = builder.tls_config(std::sync::Arc::new(config));
    }
    let agent = builder.build();
    let client = BasicClient::new(ClientId::new(CLIENT_ID.into()))
        .set_client_secret(ClientSecret::new(CLIENT_SECRET.into()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(url.into()).expect("token URL"));
    let token = client
        .exchange_client_credentials()
        .request(&agent)
        .expect("token");
    token.access_token().secret().len()
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// The endpoints to measure: plain http, and https with the mock's CA.
struct Endpoints {
    http: MockServer,
    https: MockServer,
    _dir: TempDir,
}

impl Endpoints {
    fn start() -> Endpoints {
        let dir = TempDir::new();
        Endpoints {
            http: MockServer::start(),
            https: MockServer::start_tls(&dir.0),
            _dir: dir,
        }
    }

    fn each(&self) -> [(&'static str, String, Option<PathBuf>); 2] {
        [
            ("http", self.http.token_url(), None),
            (
                "https",
                self.https.token_url(),
                Some(self.https.ca_pem_path().expect("TLS mock writes its CA")),
            ),
        ]
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("tokenward-coldstart-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn curl(url: &str, ca: Option<&Path>) -> Option<Duration> {
    let mut command = Command::new("curl");
    command.args(["-s", "-o", "/dev/null", "-w", "%{time_total}"]);
    command.args(["-H", "Accept: application/json"]);
    command.args([
        "-d",
        &format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
        ),
    ]);
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    let out = command.arg(url).output().ok()?;
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    (out.status.success() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

fn self_exe() -> PathBuf {
    std::env::current_exe().expect("own path")
}

fn fetch_command(which: Impl, url: &str, clients: u64, ca: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        "fetch".to_string(),
        which.name().to_string(),
        url.to_string(),
        clients.to_string(),
    ];
    if let Some(ca) = ca {
        args.push(ca.display().to_string());
    }
    args
}

fn wall(endpoints: &Endpoints) {
    println!("## wall clock (median; ratio to curl %{{time_total}} in the same run)");
    for (scheme, url, ca) in endpoints.each() {
        let ca = ca.as_deref();
        let curl_runs: Vec<Duration> = (0..RUNS).filter_map(|_| curl(&url, ca)).collect();
        let curl_median = (!curl_runs.is_empty()).then(|| median(curl_runs));
        match curl_median {
            Some(c) => println!(
                "{scheme:<5} curl                               {:>10}",
                micros(c)
            ),
            None => println!("{scheme:<5} curl not found or failed; no ratios"),
        }
        let ratio = |d: Duration| {
            curl_median
                .map(|c| format!("  ({:.2}x curl)", d.as_secs_f64() / c.as_secs_f64()))
                .unwrap_or_default()
        };
        for which in IMPLS {
            // The first client of a process may load process-wide state; the warm-up pays it.
            cold_fetch(which, &url, ca);
            let runs: Vec<Duration> = (0..RUNS)
                .map(|_| {
                    let started = Instant::now();
                    std::hint::black_box(cold_fetch(which, &url, ca));
                    started.elapsed()
                })
                .collect();
            let further = median(runs);
            let firsts: Vec<Duration> = (0..PROCESSES)
                .filter_map(|_| {
                    let out = Command::new(self_exe())
                        .args(fetch_command(which, &url, 1, ca))
                        .env("COLDSTART_TIME", "1")
                        .output()
                        .ok()?;
                    let nanos: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
                    Some(Duration::from_nanos(nanos))
                })
                .collect();
            let first = median(firsts);
            println!(
                "{scheme:<5} {:<12} further new client {:>10}{}",
                which.name(),
                micros(further),
                ratio(further)
            );
            println!(
                "{scheme:<5} {:<12} first in a process {:>10}{}",
                which.name(),
                micros(first),
                ratio(first)
            );
        }
    }
}

/// Instructions callgrind counted for `args` run under it (optionally only inside `toggle`).
fn callgrind(args: &[String], toggle: Option<&str>) -> Option<u64> {
    let out_file = std::env::temp_dir().join(format!(
        "tokenward-coldstart-{}.callgrind",
        std::process::id()
    ));
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()));
    if let Some(toggle) = toggle {
        command
            .arg("--collect-atstart=no")
            .arg(format!("--toggle-collect={toggle}"));
    }
    let status = command
        .arg(self_exe())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    let text = std::fs::read_to_string(&out_file).ok();
    let _ = std::fs::remove_file(&out_file);
    if !status.success() {
        return None;
    }
    text?.lines().find_map(|line| {
        line.strip_prefix("summary:")
            .or_else(|| line.strip_prefix("totals:"))
            .and_then(|n| n.trim().parse().ok())
    })
}

fn instructions(endpoints: &Endpoints) {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("valgrind not found; no instruction counts");
        return;
    }
    println!("## instructions (callgrind, client process only)");
    let fmt = |n: Option<u64>| match n {
        Some(n) if n >= 1_000_000 => format!("{:.2} M", n as f64 / 1e6),
        Some(n) => format!("{:.1} k", n as f64 / 1e3),
        None => "failed".into(),
    };
    for (scheme, url, ca) in endpoints.each() {
        let ca = ca.as_deref();
        let mut per_further = Vec::new();
        for which in IMPLS {
            let one = fetch_command(which, &url, 1, ca);
            let many = fetch_command(which, &url, 1 + FURTHER, ca);
            let whole = callgrind(&one, None);
            let first = callgrind(&one, Some("*cold_fetch*"));
            let whole_many = callgrind(&many, None);
            let further = match (whole, whole_many) {
                (Some(a), Some(b)) if b > a => Some((b - a) / FURTHER),
                _ => None,
            };
            per_further.push(further);
            println!(
                "{scheme:<5} {:<12} whole process {:>9}   first fetch {:>9}   per further cold fetch {:>9}",
                which.name(),
                fmt(whole),
                fmt(first),
                fmt(further)
            );
        }
        if let [Some(ours), theirs @ ..] = &per_further[..] {
            for (which, theirs) in IMPLS[1..].iter().zip(theirs) {
                if let Some(theirs) = theirs {
                    println!(
                        "{scheme:<5} per further cold fetch: tokenward / {} = {:.2}x",
                        which.name(),
                        *ours as f64 / *theirs as f64
                    );
                }
            }
        }
    }
}

/// `fetch IMPL URL CLIENTS [CA]`: the measured process.
fn fetch(args: &[String]) {
    let usage = "usage: fetch tokenward|oauth2 URL CLIENTS [CA_FILE]";
    let which = args.first().and_then(|s| Impl::parse(s)).expect(usage);
    let url = args.get(1).expect(usage);
    let clients: u64 = args.get(2).and_then(|s| s.parse().ok()).expect(usage);
    let ca = args.get(3).map(PathBuf::from);
    let timed = std::env::var_os("COLDSTART_TIME").is_some();
    let started = Instant::now();
    let mut total = cold_fetch(which, url, ca.as_deref());
    let first = started.elapsed();
    for _ in 1..clients {
        total += cold_fetch(which, url, ca.as_deref());
    }
    if timed {
        println!("{}", first.as_nanos());
    } else {
        std::hint::black_box(total);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fetch") => return fetch(&args[1..]),
        Some("wall") | Some("instr") | None => {}
        Some(other) => {
            eprintln!("unknown mode `{other}`: use wall, instr, or nothing for both");
            std::process::exit(2);
        }
    }
    let endpoints = Endpoints::start();
    println!("tokenward vs oauth2 5 over ureq 3 (and over ureq 2) vs curl, loopback mock");
    if args.first().map(String::as_str) != Some("instr") {
        wall(&endpoints);
    }
    if args.first().map(String::as_str) != Some("wall") {
        instructions(&endpoints);
    }
}
