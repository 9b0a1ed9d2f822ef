//! The hostile-server toolkit: exact recording, raw answers, helpers, limits and stopping.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::Conn;
use tokenward_mock::hostile::{HostileOptions, HostileServer, RawResponse};

fn connect(server: &HostileServer) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Writes `raw`, then reads until the server closes.
fn exchange(server: &HostileServer, raw: &[u8]) -> Vec<u8> {
    let mut stream = connect(server);
    stream.write_all(raw).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    answer
}

#[test]
fn requests_are_recorded_exactly_as_received() {
    let server = HostileServer::start(|_| RawResponse::json(200, &json!({ "ok": true })));
    let raw = b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nx-Weird-CASE:   spaced  \r\nX-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 5\r\n\r\nhello";
    let answer = exchange(&server, raw);
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(answer.ends_with(br#"{"ok":true}"#));
    let recorded = server.requests();
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert_eq!(r.request_line, b"POST /p?q=1 HTTP/1.1");
    assert_eq!(
        r.header_lines,
        [
            &b"Host: h"[..],
            b"x-Weird-CASE:   spaced  ",
            b"X-Dup: 1",
            b"X-Dup: 2",
            b"Content-Length: 5"
        ]
    );
    assert_eq!(r.raw_head, &raw[..raw.len() - 5]);
    assert_eq!(r.body, b"hello");
    assert_eq!(
        (r.method(), r.target(), r.path()),
        ("POST".into(), "/p?q=1".into(), "/p".into())
    );
    assert_eq!(r.header("X-WEIRD-case").as_deref(), Some("spaced"));
    assert_eq!(r.header_values("x-dup"), ["1", "2"]);
    assert!(!r.truncated);
    assert_eq!(r.connection, 1);
}

#[test]
fn chunked_bodies_bare_lf_heads_and_expect_continue() {
    let server =
        HostileServer::start(|r| RawResponse::http(200, &[], format!("{} bytes", r.body.len())));
    let answer = exchange(
        &server,
        b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
    );
    assert!(
        answer.ends_with(b"5 bytes"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let answer = exchange(&server, b"GET /lf HTTP/1.1\nHost: h\n\n");
    assert!(answer.ends_with(b"0 bytes"));

    let mut stream = connect(&server);
    stream
        .write_all(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        .unwrap();
    let mut interim = [0; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hi").unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.ends_with(b"2 bytes"));

    let recorded = server.requests();
    assert_eq!(recorded[0].body, b"abcde");
    assert_eq!(recorded[1].header_lines, [&b"Host: h"[..]]);
    assert_eq!(recorded[1].raw_head, b"GET /lf HTTP/1.1\nHost: h\n\n");
    assert_eq!(recorded[2].body, b"hi");
}

#[test]
fn raw_answers_go_out_byte_for_byte() {
    let evil: &[u8] =
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a\r\n\r\nInjected: yes\r\nX: \x00\xff\r\n\r\n";
    let server = HostileServer::start(move |_| RawResponse::bytes(evil));
    assert_eq!(exchange(&server, b"GET / HTTP/1.1\r\n\r\n"), evil);

    let huge = HostileServer::start(|_| {
        let mut line = b"HTTP/1.1 200 ".to_vec();
        line.extend(std::iter::repeat_n(b'A', 1 << 20));
        RawResponse::bytes(line).then_bytes(&b"\r\n\r\n"[..])
    });
    assert_eq!(
        exchange(&huge, b"GET / HTTP/1.1\r\n\r\n").len(),
        13 + (1 << 20) + 4
    );
}

#[test]
fn json_redirect_and_header_injection_helpers() {
    let server = HostileServer::start(|r| match r.path().as_str() {
        "/json" => RawResponse::json(429, &json!({ "error": "slow_down" })),
        "/redirect" => RawResponse::redirect(308, "http://127.0.0.1:1/elsewhere"),
        _ => RawResponse::http(200, &[("X-Evil", "a\r\nSet-Cookie: injected=1")], "body"),
    });
    let mut conn = Conn::over(connect(&server));
    let reply = conn.request("GET", "/json", &[], b"");
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json(), json!({ "error": "slow_down" }));
    assert_eq!(reply.header("connection"), Some("close"));

    let reply = Conn::over(connect(&server)).request("GET", "/redirect", &[], b"");
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("http://127.0.0.1:1/elsewhere")
    );
    assert!(reply.body.is_empty());

    let reply = Conn::over(connect(&server)).request("GET", "/inject", &[], b"");
    assert_eq!(
        reply.header("set-cookie"),
        Some("injected=1"),
        "written as given"
    );
}

#[test]
fn two_servers_are_two_origins_for_cross_origin_redirects() {
    let target = HostileServer::start(|_| RawResponse::json(200, &json!({ "landed": true })));
    assert_ne!(
        target.origin(),
        HostileServer::start(|_| RawResponse::close()).origin()
    );
    let hop = target.url_for("/landing?x=1");
    let origin = HostileServer::start(move |_| RawResponse::redirect(302, &hop));
    assert!(origin.url().starts_with("http://127.0.0.1:"));
    assert_eq!(origin.origin(), origin.url());
    assert_ne!(origin.origin(), target.origin());

    // Follow the redirect by hand, as a client would, without the secret header.
    let first = Conn::over(connect(&origin)).request(
        "GET",
        "/start",
        &[("Authorization", "Bearer secret")],
        b"",
    );
    let location = first.header("location").unwrap().to_string();
    let path = location.strip_prefix(&target.url()).expect("same server");
    let second = Conn::over(connect(&target)).request("GET", path, &[], b"");
    assert_eq!(second.json()["landed"], true);
    assert_eq!(
        origin.requests()[0].header("authorization").as_deref(),
        Some("Bearer secret")
    );
    let landed = &target.requests()[0];
    assert_eq!(landed.target(), "/landing?x=1");
    assert_eq!(landed.header("authorization"), None);
}

#[test]
fn slow_and_trickled_answers() {
    let server = HostileServer::start(|r| match r.path().as_str() {
        "/slow" => RawResponse::slow(
            Duration::from_millis(300),
            RawResponse::http(200, &[], "late"),
        ),
        "/slower" => RawResponse::slow(Duration::from_secs(5), RawResponse::http(200, &[], "")),
        _ => RawResponse::trickle(
            &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
            Duration::from_millis(5),
        ),
    });
    let started = Instant::now();
    let reply = Conn::over(connect(&server)).request("GET", "/slow", &[], b"");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.text(), "late");

    let stream = connect(&server);
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut conn = Conn::over(stream);
    conn.send("GET", "/slower", &[], b"");
    assert!(
        conn.read_reply().is_err(),
        "nothing within 100 ms of a 5 s pause"
    );

    let answer = exchange(&server, b"GET /trickle HTTP/1.1\r\n\r\n");
    assert_eq!(answer, b"HTTP/1.1 204 No Content\r\n\r\n");
}

#[test]
fn never_ending_bodies_keep_coming_until_the_client_leaves() {
    let server = HostileServer::start(|_| RawResponse::never_ending_body(200, "application/json"));
    let mut stream = connect(&server);
    stream.write_all(b"POST /token HTTP/1.1\r\n\r\n").unwrap();
    let mut received = vec![0; 8 * 1024 * 1024];
    stream.read_exact(&mut received).unwrap();
    let text = String::from_utf8_lossy(&received[..200]);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"));
    assert!(!text.to_ascii_lowercase().contains("content-length"));
    assert!(text.contains("\r\n\r\n{\"access_token\":\"aaaa"));
    drop(stream);
    // The server notices the client left and is ready for more.
    let mut again = connect(&server);
    again.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut head = [0; 12];
    again.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
}

#[test]
fn close_hang_and_drop() {
    let server = HostileServer::start(|r| match r.path().as_str() {
        "/close" => RawResponse::close(),
        _ => RawResponse::hang(),
    });
    assert!(exchange(&server, b"GET /close HTTP/1.1\r\n\r\n").is_empty());

    let mut hanging = connect(&server);
    hanging
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    hanging.write_all(b"GET /hang HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = [0; 1];
    assert!(hanging.read(&mut buf).is_err(), "no answer while hanging");
    assert!(server.wait_for_requests(2, Duration::from_secs(10)));
    let port = server.port();
    drop(server);
    hanging
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        hanging.read(&mut buf).unwrap_or(0),
        0,
        "the drop ended the hang"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port closed"
    );
}

#[test]
fn keep_open_serves_several_requests_on_one_connection() {
    let server = HostileServer::start(|r| {
        RawResponse::bytes(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
            r.path().len(),
            r.path()
        ))
        .keep_open()
    });
    let mut conn = Conn::over(connect(&server));
    assert_eq!(conn.request("GET", "/one", &[], b"").text(), "/one");
    assert_eq!(conn.request("GET", "/two", &[], b"").text(), "/two");
    let connections: Vec<u64> = server.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [1, 1]);
    assert_eq!(server.connections(), 1);
}

#[test]
fn the_port_closes_after_max_connections_and_the_lifetime_stops_it() {
    let opts = HostileOptions {
        max_connections: 2,
        ..HostileOptions::default()
    };
    let server = HostileServer::try_start(opts, |_| RawResponse::http(200, &[], "x")).unwrap();
    for _ in 0..2 {
        assert!(exchange(&server, b"GET / HTTP/1.1\r\n\r\n").ends_with(b"x"));
    }
    // The accept thread closes the listener right after handing off the last connection.
    let mut refused = false;
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", server.port())).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(refused);
    assert_eq!(server.connections(), 2);

    let short = HostileServer::try_start(
        HostileOptions {
            lifetime: Duration::from_millis(200),
            ..HostileOptions::default()
        },
        |_| RawResponse::hang(),
    )
    .unwrap();
    let mut hanging = connect(&short);
    hanging.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = [0; 1];
    assert_eq!(
        hanging.read(&mut buf).unwrap_or(0),
        0,
        "the lifetime ended the hang"
    );
    assert!(short.is_stopped());
}

#[test]
fn a_panicking_handler_still_leaves_the_request_recorded() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let server = HostileServer::start(move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("handler bug (expected in this test)");
        }
        RawResponse::http(200, &[], "ok")
    });
    assert!(exchange(&server, b"GET /first HTTP/1.1\r\n\r\n").is_empty());
    assert!(exchange(&server, b"GET /second HTTP/1.1\r\n\r\n").ends_with(b"ok"));
    let paths: Vec<String> = server.requests().iter().map(|r| r.path()).collect();
    assert_eq!(paths, ["/first", "/second"]);
}

#[test]
fn truncated_heads_are_recorded_as_such() {
    let server = HostileServer::start(|_| RawResponse::http(200, &[], "never sent"));
    let mut stream = connect(&server);
    stream.write_all(b"GET /half HTTP/1.1\r\nHost: h").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "no answer to a request that never ended");
    assert!(server.wait_for_requests(1, Duration::from_secs(10)));
    let r = &server.requests()[0];
    assert!(r.truncated);
    assert_eq!(r.raw_head, b"GET /half HTTP/1.1\r\nHost: h");
    assert_eq!(r.request_line, b"GET /half HTTP/1.1");
}
