//! Redis servers for the shared-cache tests: the suite's instance (`TOKENWARD_TEST_REDIS`,
//! started by scripts/test-all.sh) or a private `redis-server` on a free loopback port, with
//! no persistence, that stops when its handle drops.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Whether a Redis answers PING on 127.0.0.1:`port` (`+PONG`, or `-NOAUTH` when it wants a
/// password).
pub fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 5];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && (&reply == b"+PONG" || &reply == b"-NOAU")
}

impl RedisServer {
    /// A private server with `extra` arguments (e.g. `--maxmemory`).
    pub fn start(extra: &[&str]) -> RedisServer {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("tokenward-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the server");
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.to_str().expect("a UTF-8 temp dir"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut server = RedisServer {
            child: None,
            port,
            args,
            dir,
        };
        server.restart();
        server
    }

    /// The server's URL for database `db`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Kill the server (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it (again) on the same port, empty; wait until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server could not be started ({e}); install it (apt-get install redis-server) or set TOKENWARD_TEST_REDIS")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The suite's Redis for database `db` (each test its own database, so tests sharing the
/// server never see each other's keys), or a private server when `TOKENWARD_TEST_REDIS` is
/// not set. Keep the returned server alive for the test.
pub fn shared(db: u32) -> (String, Option<RedisServer>) {
    match std::env::var("TOKENWARD_TEST_REDIS") {
        Ok(url) if !url.is_empty() => {
            let base = url.trim_end_matches('/');
            let base = match base.rsplit_once('/') {
                Some((host, n)) if n.parse::<u32>().is_ok() => host.to_string(),
                _ => base.to_string(),
            };
            let url = format!("{base}/{db}");
            cli(&url, &["FLUSHDB"]);
            (url, None)
        }
        _ => {
            let server = RedisServer::start(&[]);
            (server.url(db), Some(server))
        }
    }
}

/// `redis-cli -u url args…`'s raw output.
pub fn cli(url: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new("redis-cli")
        .args(["-u", url, "--raw"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("redis-cli could not be run ({e}); install redis-tools"));
    assert!(output.status.success(), "redis-cli {args:?} failed");
    output.stdout
}

/// The keys `redis-cli --scan` lists in `url`'s database.
pub fn keys(url: &str) -> Vec<String> {
    String::from_utf8_lossy(&cli(url, &["--scan"]))
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
