//! HTTP plumbing, lifecycle, TLS and the command line.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use tokenward_mock::{MockOptions, MockServer};

const DEMO_FORM: &str =
    "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";

#[test]
fn keep_alive_carries_several_requests() {
    let mock = MockServer::start();
    let mut conn = Conn::open(&mock);
    let form_headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let first = conn.request("POST", "/oauth/token", &form_headers, DEMO_FORM.as_bytes());
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), None);
    let token = first.json()["access_token"].as_str().unwrap().to_string();
    let auth = format!("Bearer {token}");
    let second = conn.request(
        "GET",
        "/api/items",
        &[
            ("Authorization", &auth),
            ("tenant-code", "T1"),
            ("api-version", "2"),
        ],
        b"",
    );
    assert_eq!(second.status, 200);
    let third = conn.request("GET", "/admin/stats", &[("Connection", "close")], b"");
    assert_eq!(third.header("connection"), Some("close"));
    assert_eq!(third.json()["tokens_issued"], 1);
    assert!(conn.is_closed_by_peer());
}

#[test]
fn http10_closes_after_each_answer() {
    let mock = MockServer::start();
    let mut conn = Conn::open(&mock);
    conn.write_raw(b"GET /admin/stats HTTP/1.0\r\n\r\n");
    let reply = conn.read_reply().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(conn.is_closed_by_peer());
}

#[test]
fn chunked_request_bodies() {
    let mock = MockServer::start();
    let token = demo_token(&mock);
    let mut conn = Conn::open(&mock);
    conn.write_raw(
        format!(
            "POST /api/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\ntenant-code: T1\r\n\
             api-version: 2\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    let reply = conn.read_reply().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["body"], "hello, world");

    // A chunked token request on the same connection.
    let mut raw = b"POST /oauth/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in DEMO_FORM.as_bytes().chunks(10) {
        raw.extend(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend(piece);
        raw.extend(b"\r\n");
    }
    raw.extend(b"0\r\n\r\n");
    conn.write_raw(&raw);
    assert_eq!(conn.read_reply().unwrap().status, 200);
}

#[test]
fn expect_100_continue_is_honoured() {
    let mock = MockServer::start();
    let mut conn = Conn::open(&mock);
    conn.write_raw(
        format!(
            "POST /oauth/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            DEMO_FORM.len()
        )
        .as_bytes(),
    );
    let interim = conn.read_head_reply().unwrap();
    assert_eq!(interim.status, 100);
    conn.write_raw(DEMO_FORM.as_bytes());
    assert_eq!(conn.read_reply().unwrap().status, 200);
}

#[test]
fn garbage_gets_400_and_a_closed_connection() {
    let mock = MockServer::start();
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n"[..],
        b"HELLO\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
        b"POST /oauth/token HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
    ] {
        let mut conn = Conn::open(&mock);
        conn.write_raw(garbage);
        let reply = conn.read_reply().unwrap();
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(garbage));
        assert_eq!(reply.json()["error"], "invalid_request");
        assert_eq!(reply.header("connection"), Some("close"));
        assert!(conn.is_closed_by_peer());
    }
    // Binary noise without a newline runs into the head cap; the server serves on.
    let mut conn = Conn::open(&mock);
    conn.write_raw(&[0u8; 70 * 1024]);
    let reply = conn.read_reply().unwrap();
    assert_eq!(reply.status, 431);
    assert_eq!(get(&mock, "/admin/stats").status, 200);
    assert_eq!(
        mock.token_requests(),
        0,
        "nothing malformed reached a handler"
    );
}

#[test]
fn oversized_heads_and_bodies_are_refused() {
    let mock = MockServer::start();
    let mut conn = Conn::open(&mock);
    let big = "a".repeat(65 * 1024);
    conn.write_raw(format!("GET /api/x HTTP/1.1\r\nX-Big: {big}\r\n\r\n").as_bytes());
    assert_eq!(conn.read_reply().unwrap().status, 431);
    assert!(conn.is_closed_by_peer());

    let mut conn = Conn::open(&mock);
    conn.write_raw(b"POST /api/x HTTP/1.1\r\nContent-Length: 33554433\r\n\r\n");
    assert_eq!(conn.read_reply().unwrap().status, 413);
}

#[test]
fn head_requests_get_no_body() {
    let mock = MockServer::start();
    let mut conn = Conn::open(&mock);
    conn.send("HEAD", "/.well-known/openid-configuration", &[], b"");
    let head = conn.read_head_reply().unwrap();
    assert_eq!(head.status, 200);
    let len: usize = head.header("content-length").unwrap().parse().unwrap();
    assert!(len > 0);
    // The next answer on the connection starts right after the head.
    let next = conn.request("GET", "/admin/stats", &[], b"");
    assert_eq!(next.status, 200);
}

#[test]
fn absolute_form_targets_are_served() {
    let mock = MockServer::start();
    let mut conn = Conn::open(&mock);
    conn.write_raw(
        format!("GET {}/admin/stats HTTP/1.1\r\nHost: x\r\n\r\n", mock.url()).as_bytes(),
    );
    assert_eq!(conn.read_reply().unwrap().status, 200);
}

#[test]
fn a_lifetime_stops_the_server() {
    let mock = MockServer::start_with(MockOptions {
        lifetime: Some(Duration::from_millis(300)),
        ..MockOptions::default()
    });
    assert_eq!(get(&mock, "/admin/stats").status, 200);
    std::thread::sleep(Duration::from_millis(700));
    assert!(mock.is_stopped());
    assert!(TcpStream::connect(("127.0.0.1", mock.port())).is_err());
}

#[test]
fn drop_stops_the_server_and_its_connections() {
    let mock = MockServer::start();
    let port = mock.port();
    let mut idle = Conn::open(&mock);
    assert_eq!(idle.request("GET", "/admin/stats", &[], b"").status, 200);
    let started = Instant::now();
    drop(mock);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(
        idle.is_closed_by_peer(),
        "the idle keep-alive connection was closed"
    );
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn tls_mode_serves_localhost_with_the_written_ca() {
    let dir = temp_dir("tls");
    let mock = MockServer::start_tls(&dir);
    assert_eq!(mock.url(), format!("https://localhost:{}", mock.port()));
    let ca_path = mock.ca_pem_path().expect("ca path");
    assert_eq!(ca_path, dir.join("ca.pem"));
    let pem = std::fs::read_to_string(&ca_path).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    let mut conn = tls_conn(&mock, &ca_path, "localhost").expect("handshake");
    let reply = conn.request(
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        DEMO_FORM.as_bytes(),
    );
    assert_eq!(reply.status, 200);
    let token = reply.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        tokenward_mock::decode_claims(&token).unwrap()["iss"],
        mock.url()
    );
    let auth = format!("Bearer {token}");
    let api = conn.request(
        "GET",
        "/api/secure",
        &[
            ("Authorization", &auth),
            ("tenant-code", "T1"),
            ("api-version", "2"),
        ],
        b"",
    );
    assert_eq!(api.status, 200, "keep-alive over TLS");

    // The certificate is for `localhost` only.
    assert!(tls_conn(&mock, &ca_path, "example.com").is_err());
    drop(mock);
    let _ = std::fs::remove_dir_all(dir);
}

/// Collects what `cli_run` writes to "stdout".
struct ChannelWriter(mpsc::Sender<Vec<u8>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_cli_prints_one_url_line_and_serves_until_shutdown() {
    let (tx, rx) = mpsc::channel();
    let cli = std::thread::spawn(move || {
        let args = [
            "--port",
            "0",
            "--lifetime-secs",
            "30",
            "--client-id",
            "cli-client",
            "--client-secret=s3",
        ];
        tokenward_mock::cli_run(args.map(String::from), &mut ChannelWriter(tx))
    });
    let mut first = Vec::new();
    while !first.ends_with(b"\n") {
        first.extend(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("the URL line"),
        );
    }
    let line = String::from_utf8(first).unwrap();
    assert!(
        line.starts_with("http://127.0.0.1:") && line.ends_with('\n'),
        "{line:?}"
    );
    let url = line.trim_end();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);

    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut conn = Conn::over(stream);
    let reply = conn.request(
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"grant_type=client_credentials&client_id=cli-client&client_secret=s3",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        conn.request("POST", "/admin/shutdown", &[], b"").json(),
        json!({ "stopping": true })
    );
    assert_eq!(cli.join().unwrap(), 0);
    let rest: Vec<u8> = rx.try_iter().flatten().collect();
    assert!(
        rest.is_empty(),
        "exactly one line on stdout: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn the_cli_refuses_bad_arguments() {
    let mut out = Vec::new();
    assert_eq!(
        tokenward_mock::cli_run(["--port".to_string(), "x".to_string()], &mut out),
        2
    );
    assert!(out.is_empty());
    assert_eq!(tokenward_mock::cli_run(["--help".to_string()], &mut out), 0);
    assert!(String::from_utf8(out).unwrap().contains("--lifetime-secs"));
}
