//! A deliberately tiny HTTP/1.1 client over `std::net`, so the tests see exactly the bytes
//! the mock sends (no client library smoothing anything over).
#![allow(dead_code)]

pub mod jose;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use tokenward_mock::MockServer;

pub const SPECIAL_SECRET: &str = "xY9#mK2$pL8@nQ5 +/%";

/// One response as received.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A connection that can carry several requests (keep-alive).
pub struct Conn<S: Read + Write> {
    reader: BufReader<S>,
}

impl Conn<TcpStream> {
    pub fn open(mock: &MockServer) -> Conn<TcpStream> {
        let stream = TcpStream::connect(("127.0.0.1", mock.port())).expect("connect to the mock");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Conn::over(stream)
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .expect("timeout");
    }
}

impl<S: Read + Write> Conn<S> {
    pub fn over(stream: S) -> Conn<S> {
        Conn {
            reader: BufReader::new(stream),
        }
    }

    pub fn write_raw(&mut self, raw: &[u8]) {
        let stream = self.reader.get_mut();
        stream.write_all(raw).expect("write");
        stream.flush().expect("flush");
    }

    /// Sends a request with Content-Length framing.
    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(body);
        self.write_raw(&raw);
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        self.send(method, path, headers, body);
        self.read_reply().expect("a response")
    }

    /// Reads one response (Content-Length framed, or to EOF without one).
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        self.read_reply_inner(false)
    }

    /// Reads the head of a response to a HEAD request (no body follows).
    pub fn read_head_reply(&mut self) -> io::Result<Reply> {
        self.read_reply_inner(true)
    }

    fn read_reply_inner(&mut self, head_only: bool) -> io::Result<Reply> {
        let status_line = self.line()?;
        if status_line.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a response",
            ));
        }
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header colon");
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only {
            return Ok(reply);
        }
        match reply.header("content-length") {
            Some(len) => {
                let mut body = vec![0; len.parse().expect("length")];
                self.reader.read_exact(&mut body)?;
                reply.body = body;
            }
            None => {
                self.reader.read_to_end(&mut reply.body)?;
            }
        }
        Ok(reply)
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Reads whatever bytes are available (0 at EOF), without parsing.
    pub fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }

    /// True when the server closed the connection: EOF with no further bytes.
    pub fn is_closed_by_peer(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }
}

/// One request on a fresh connection.
pub fn request(
    mock: &MockServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    Conn::open(mock).request(method, path, headers, body)
}

pub fn get(mock: &MockServer, path: &str) -> Reply {
    request(mock, "GET", path, &[], b"")
}

/// POST a JSON body (for /admin/...).
pub fn post_json(mock: &MockServer, path: &str, body: &Value) -> Reply {
    request(
        mock,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

/// POST a form to a token path.
pub fn token_request(
    mock: &MockServer,
    path: &str,
    form: &str,
    extra_headers: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    headers.extend_from_slice(extra_headers);
    request(mock, "POST", path, &headers, form.as_bytes())
}

/// A token for the demo client (client_secret_post).
pub fn demo_token(mock: &MockServer) -> String {
    let reply = token_request(
        mock,
        "/oauth/token",
        "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret&scope=EventsApi",
        &[],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// A request to the API with the demo headers and the token.
pub fn api_request(mock: &MockServer, method: &str, path: &str, token: &str, body: &[u8]) -> Reply {
    let auth = format!("Bearer {token}");
    request(
        mock,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("tenant-code", "T1"),
            ("api-version", "2"),
        ],
        body,
    )
}

/// RFC 6749 §2.3.1 / appendix B: form-urlencode every byte but the unreserved ones.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                TABLE[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// `Basic base64(urlenc(id) ":" urlenc(secret))`.
pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64(format!("{}:{}", form_encode(id), form_encode(secret)).as_bytes())
    )
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tokenward-mock-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A rustls client trusting only `ca_pem`, sending SNI `server_name`, to the mock's port.
pub fn tls_conn(
    mock: &MockServer,
    ca_pem: &std::path::Path,
    server_name: &str,
) -> std::io::Result<Conn<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let client = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", mock.port()))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = rustls::StreamOwned::new(client, tcp);
    // Drive the handshake now so that a certificate error surfaces here.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(Conn::over(stream))
}
