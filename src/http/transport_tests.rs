use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenward_mock::MockServer;

use super::*;
use crate::http::scripted::Script;

fn token_request<'a>(url: &'a str, headers: &'a [(&'a str, &'a str)]) -> Outgoing<'a> {
    Outgoing {
        method: "POST",
        url,
        headers,
        body: Some(
            b"grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret",
        ),
        deadline: Instant::now() + Duration::from_secs(10),
        body_limit: 1 << 20,
        peer: Peer::TokenEndpoint,
    }
}

const FORM: &[(&str, &str)] = &[("content-type", "application/x-www-form-urlencoded")];

/// A directory of its own under the system temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("tokenward-transport-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ca_files(ca: &Path) -> TlsFiles {
    TlsFiles {
        ca_file: Some(ca.to_path_buf()),
        ..TlsFiles::default()
    }
}

/// A self-signed certificate for `localhost` and its key, as PEM.
fn certificate() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn a_refused_connection_is_a_network_error_that_keeps_its_cause() {
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let transport = Transport::new(&TlsFiles::default(), None, Duration::from_secs(2)).unwrap();
    let url = format!("http://127.0.0.1:{port}/token");
    let error = transport.execute(&token_request(&url, FORM)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Network, "{error}");
    assert!(error.message().contains(&url), "{error}");
    assert!(error.message().contains("token endpoint"), "{error}");
    let source = std::error::Error::source(&error).expect("the ureq error is kept");
    assert!(source.downcast_ref::<ureq::Error>().is_some(), "{source:?}");
}

#[test]
fn a_plain_http_exchange_builds_no_tls_configuration() {
    let mock = MockServer::start();
    let transport = Transport::new(&TlsFiles::default(), None, Duration::from_secs(5)).unwrap();
    let reply = transport
        .execute(&token_request(&mock.token_url(), FORM))
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(transport.tls().loaded().is_none());
}

#[test]
fn transports_with_equal_tls_settings_share_one_configuration() {
    let dir = TempDir::new("share");
    let mock = MockServer::start_tls(&dir.0);
    let ca = mock.ca_pem_path().unwrap();
    let first = Transport::new(&ca_files(&ca), None, Duration::from_secs(5)).unwrap();
    let second = Transport::new(&ca_files(&ca), None, Duration::from_secs(5)).unwrap();
    assert!(
        first.tls().loaded().is_none(),
        "nothing is loaded before a TLS connection"
    );
    for transport in [&first, &second] {
        let reply = transport
            .execute(&token_request(&mock.token_url(), FORM))
            .unwrap();
        assert_eq!(reply.status, 200);
    }
    let (a, b) = (
        first.tls().loaded().unwrap(),
        second.tls().loaded().unwrap(),
    );
    assert!(Arc::ptr_eq(&a, &b), "one configuration for one setting");

    // The same CA with a client certificate is another setting.
    let (cert, key) = certificate();
    let files = TlsFiles {
        client_cert_file: Some(dir.write("client.pem", &cert)),
        client_key_file: Some(dir.write("client.key", &key)),
        ..ca_files(&ca)
    };
    let third = Transport::new(&files, None, Duration::from_secs(5)).unwrap();
    let reply = third
        .execute(&token_request(&mock.token_url(), FORM))
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(!Arc::ptr_eq(&a, &third.tls().loaded().unwrap()));
}

#[test]
fn a_client_key_of_another_certificate_is_a_configuration_error() {
    let dir = TempDir::new("mismatch");
    let (cert, _) = certificate();
    let (_, other_key) = certificate();
    let files = TlsFiles {
        client_cert_file: Some(dir.write("client.pem", &cert)),
        client_key_file: Some(dir.write("other.key", &other_key)),
        ca_file: None,
    };
    let error = match Transport::new(&files, None, Duration::from_secs(5)) {
        Ok(_) => panic!("a key that does not match its certificate was accepted"),
        Err(e) => e,
    };
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(
        error
            .message()
            .contains("cannot be used with `tls.client_cert_file`"),
        "{error}"
    );
    let problems = TlsMaterial::load(&TlsFiles {
        client_key_file: Some(dir.write("empty.key", "")),
        ..files
    })
    .err()
    .unwrap();
    assert!(
        problems[0].contains("contains no PEM private key"),
        "{problems:?}"
    );
}

#[test]
fn socks_proxies_are_refused_as_unsupported() {
    assert!(check_proxy("http://proxy.example:3128").is_ok());
    assert!(check_proxy("https://proxy.example:3128").is_ok());
    let problem = check_proxy("socks5://proxy.example:1080").unwrap_err();
    assert!(problem.contains("not supported"), "{problem}");
    let error = match Transport::new(
        &TlsFiles::default(),
        Some("socks5://127.0.0.1:1080"),
        Duration::from_secs(1),
    ) {
        Ok(_) => panic!("a SOCKS proxy was accepted"),
        Err(e) => e,
    };
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
}

#[test]
fn an_over_long_request_line_is_refused_before_anything_is_sent() {
    let script = Script::new();
    script.json(200, "", "{}");
    let transport = script.transport();
    let long = "x".repeat(5000);
    let headers = [("dpop", long.as_str())];
    let error = transport
        .execute(&token_request("http://127.0.0.1:9/token", &headers))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
    assert!(
        error.message().contains("the `dpop` header is longer than"),
        "{error}"
    );
    assert!(script.requests().is_empty());
    // An API call may carry it.
    let reply = transport
        .execute(&Outgoing {
            peer: Peer::Api,
            ..token_request("http://127.0.0.1:9/api", &headers)
        })
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(script.requests()[0].header("dpop"), Some(long.as_str()));
}

#[test]
fn a_failed_exchange_names_a_long_url_clipped() {
    // A URL can come from a server (a redirect's `Location`) and be of any length.
    let url = format!("http://127.0.0.1:9/{}", "é".repeat(20_000));
    let script = Script::new();
    script.refuse();
    let error = script
        .transport()
        .execute(&Outgoing {
            peer: Peer::Api,
            ..token_request(&url, FORM)
        })
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Network, "{error}");
    assert!(
        error
            .message()
            .starts_with("The API at http://127.0.0.1:9/é"),
        "{error}"
    );
    assert!(error.message().contains("é…"), "{error}");
    assert!(error.message().chars().count() < 1000, "{error}");

    // Too long to send to the token endpoint: refused, and said as briefly.
    let error = script
        .transport()
        .execute(&token_request(&url, FORM))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
    assert!(error.message().contains("the request line"), "{error}");
    assert!(error.message().chars().count() < 1000, "{error}");
    assert!(script.requests().is_empty());
}

#[test]
fn a_response_head_over_the_limit_is_a_bad_response_for_the_identity_provider_only() {
    let head = format!("x-padding: {}\r\n", "p".repeat(10 * 1024));
    let script = Script::new();
    script.json(200, &head, "{}").json(200, &head, "{}");
    let transport = script.transport();
    let error = transport
        .execute(&token_request("http://127.0.0.1:9/token", FORM))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadResponse, "{error}");
    assert!(
        error.message().contains("response headers larger than"),
        "{error}"
    );
    let reply = transport
        .execute(&Outgoing {
            peer: Peer::Api,
            ..token_request("http://127.0.0.1:9/api", FORM)
        })
        .unwrap();
    assert_eq!(reply.header("x-padding").map(str::len), Some(10 * 1024));
}

#[test]
fn a_body_over_its_limit_is_refused_and_a_scripted_exchange_is_recorded_whole() {
    let script = Script::new();
    script.json(200, "", &format!("\"{}\"", "b".repeat(2000)));
    let error = script
        .transport()
        .execute(&Outgoing {
            body_limit: 1000,
            ..token_request("http://127.0.0.1:9/token", FORM)
        })
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadResponse, "{error}");
    assert!(error.message().contains("1000-byte limit"), "{error}");
    let sent = &script.requests()[0];
    assert_eq!(sent.request_line, "POST /token HTTP/1.1");
    assert_eq!(
        sent.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(sent
        .body_text()
        .starts_with("grant_type=client_credentials&"));
    assert_eq!(script.unused(), 0);
}
