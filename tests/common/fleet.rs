//! Fleets of worker processes for the shared-cache tests.
//!
//! A worker is this test binary run again with only its ignored `worker` test selected and a
//! job in `TOKENWARD_FLEET_WORKER` (JSON). It builds a client from the job's configuration,
//! prints `FLEET-READY`, waits for a line on stdin (so a fleet starts together), does the job,
//! and prints `FLEET-RESULT <json>`. Jobs may stop at `FLEET-AT <n>` and wait for another line.
//! Every wait on a worker is bounded; a worker is killed when its handle drops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokenward::{Client, Config, EventKind};

use super::Recorder;

const JOB: &str = "TOKENWARD_FLEET_WORKER";

/// Fleet tests start many processes: one at a time per test binary on a 2-core machine.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Worker {
    /// Start a worker for `job`, and wait (bounded) until it is ready.
    pub fn spawn(job: &Value) -> Worker {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                "worker",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(JOB, job.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("a worker process starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut worker = Worker {
            stdin: child.stdin.take(),
            child,
            lines,
        };
        worker.expect_line("FLEET-READY", Duration::from_secs(20));
        worker
    }

    /// The rest of the next line starting with `prefix`.
    pub fn expect_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // libtest may have printed `test worker ... ` on the same line.
                Ok(line) => {
                    if let Some(at) = line.find(prefix) {
                        return line[at + prefix.len()..].trim().to_string();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("a worker did not print {prefix} within {timeout:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!("a worker exited ({status:?}) before printing {prefix}")
                }
            }
        }
    }

    /// Let the worker go on (start, or past a `FLEET-AT`).
    pub fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let _ = stdin.write_all(b"go\n").and_then(|()| stdin.flush());
    }

    pub fn result(&mut self, timeout: Duration) -> Value {
        let text = self.expect_line("FLEET-RESULT", timeout);
        let _ = self.child.wait();
        serde_json::from_str(&text).expect("a JSON result")
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Start `n` workers on `job`, let them go at once, and collect their results.
pub fn run(n: usize, job: &Value, timeout: Duration) -> Vec<Value> {
    let mut workers: Vec<Worker> = (0..n).map(|_| Worker::spawn(job)).collect();
    for worker in &mut workers {
        worker.go();
    }
    workers.iter_mut().map(|w| w.result(timeout)).collect()
}

/// A job: `mode` is `once` (every thread asks once), `invalidate` (every thread asks, stops at
/// `FLEET-AT 1`, then invalidates that token and asks again), `run` (every thread asks every
/// 2 ms for `duration_ms`, checking each token at the mock's API every `check_ms`), `hold`
/// (one thread asks, for a fetch that is killed mid-way) or `hold_fork` (as `hold`, then at
/// the next line forks a child that lives 20 s and prints `FLEET-CHILD <pid>`).
pub fn job(mode: &str, config: &str, threads: usize) -> Value {
    json!({ "mode": mode, "config": config, "threads": threads })
}

/// The entry point of a worker process (see the module docs).
pub fn worker_main() {
    let job: Value = match std::env::var(JOB) {
        Ok(text) => serde_json::from_str(&text).expect("a JSON job"),
        Err(_) => panic!("`worker` runs only as a fleet worker started by the fleet tests"),
    };
    let config = Config::from_json(job["config"].as_str().expect("config")).expect("valid config");
    let client = Client::new(config).expect("client");
    let events = Recorder::attach(&client);
    let threads = job["threads"].as_u64().unwrap_or(1) as usize;
    println!("FLEET-READY");
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).expect("the go line");

    let all = |f: &(dyn Fn(usize) -> Value + Sync)| -> Vec<Value> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|i| s.spawn(move || f(i))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a worker thread"))
                .collect()
        })
    };
    let token = |c: &Client| match c.token() {
        Ok(t) => json!(t.as_str()),
        Err(e) => json!({ "error": e.kind().as_str(), "message": e.message() }),
    };
    let mut result = json!({});
    match job["mode"].as_str().expect("mode") {
        "once" => result["tokens"] = json!(all(&|_| token(&client))),
        "invalidate" => {
            let first = all(&|_| token(&client));
            println!("FLEET-AT 1");
            line.clear();
            stdin.read_line(&mut line).expect("the second go line");
            let again = all(&|i| {
                client.invalidate(first[i].as_str());
                token(&client)
            });
            result["first"] = json!(first);
            result["tokens"] = json!(again);
        }
        "hold" => {
            println!("FLEET-AT 1");
            result["tokens"] = json!([token(&client)]);
        }
        "hold_fork" => {
            // A fetch under way on another thread, then a fork: the child shares this
            // process's open files, its lock file included.
            let fetching = client.clone();
            std::thread::spawn(move || fetching.token().map(drop));
            println!("FLEET-AT 1");
            line.clear();
            stdin.read_line(&mut line).expect("the second go line");
            let child = super::process::fork_child(|| {
                std::thread::sleep(Duration::from_secs(20));
                true
            });
            println!("FLEET-CHILD {child}");
            std::thread::sleep(Duration::from_secs(60));
        }
        "run" => {
            let api = job["api"].as_str().expect("api").to_string();
            let duration = Duration::from_millis(job["duration_ms"].as_u64().expect("duration_ms"));
            let check = Duration::from_millis(job["check_ms"].as_u64().unwrap_or(50));
            let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
            let per_thread = all(&|_| run_thread(&client, &api, duration, check, &seen));
            result["threads"] = json!(per_thread);
            result["distinct_tokens"] = json!(seen.lock().unwrap().len());
        }
        other => panic!("unknown mode {other}"),
    }
    let stats = client.stats();
    result["stats"] = serde_json::from_str(&stats.to_json()).expect("stats JSON");
    result["events"] = json!(events
        .kinds()
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>());
    result["event_messages"] = json!(events.messages());
    println!("FLEET-RESULT {result}");
}

/// Ask for a token every 2 ms for `duration`; every `check` show the token to the mock's API.
fn run_thread(
    client: &Client,
    api: &str,
    duration: Duration,
    check: Duration,
    seen: &Mutex<std::collections::BTreeSet<String>>,
) -> Value {
    let end = Instant::now() + duration;
    let mut next_check = Instant::now();
    let (mut calls, mut errors, mut refused, mut late, mut unusable) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut messages = Vec::new();
    while Instant::now() < end {
        calls += 1;
        match client.token() {
            Ok(token) => {
                if token.remaining().is_zero() {
                    unusable += 1;
                }
                seen.lock().unwrap().insert(token.fingerprint().to_string());
                if Instant::now() >= next_check {
                    next_check = Instant::now() + check;
                    if api_status(api, token.as_str()) != 200 {
                        // Refused while our own clock still gave it its margin: a token the
                        // client should never have handed out. Refused only after this
                        // thread was held up past that margin: inconclusive.
                        if token.remaining().is_zero() {
                            late += 1;
                        } else {
                            refused += 1;
                        }
                    }
                }
            }
            Err(e) => {
                errors += 1;
                if messages.len() < 5 {
                    messages.push(e.message().to_string());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    json!({ "calls": calls, "errors": errors, "refused": refused, "late": late,
            "unusable": unusable, "messages": messages })
}

/// The status the mock's API answers for `token` (0 if it could not be asked).
pub fn api_status(url: &str, token: &str) -> u16 {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut stream) = TcpStream::connect(host) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         tenant-code: T1\r\napi-version: 2\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut answer = String::new();
    let _ = stream.take(64 * 1024).read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The tokens in `results[i][field]`, all of them (panics on a failed call).
pub fn tokens(results: &[Value], field: &str) -> Vec<String> {
    results
        .iter()
        .flat_map(|r| r[field].as_array().expect("tokens").clone())
        .map(|t| match t.as_str() {
            Some(t) => t.to_string(),
            None => panic!("a worker's token call failed: {t}"),
        })
        .collect()
}

/// How many events of `kind` a worker result lists.
pub fn count_events(result: &Value, kind: EventKind) -> usize {
    result["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|k| k.as_str() == Some(kind.as_str()))
                .count()
        })
        .unwrap_or(0)
}

/// The sum of `stats[key]` over all workers.
pub fn sum_stat(results: &[Value], key: &str) -> u64 {
    results
        .iter()
        .map(|r| r["stats"][key].as_u64().unwrap_or(0))
        .sum()
}
