//! An HTTP/1.1 response and how it is written to the wire.

use std::io::{self, Write};

use serde_json::Value;

/// What follows the head.
#[derive(Debug, Clone)]
pub enum Body {
    Bytes(Vec<u8>),
    /// `{"access_token":"xxx…"}` padded to exactly this many bytes, generated while writing
    /// so that a 100 MiB "oversized" fault does not need 100 MiB of memory.
    Oversized(u64),
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }

    pub fn json(status: u16, value: &Value) -> Response {
        Response::new(status)
            .header("Content-Type", "application/json")
            .body(value.to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = Body::Bytes(body.into());
        self
    }

    fn body_len(&self) -> u64 {
        match &self.body {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Oversized(len) => *len,
        }
    }

    /// Writes head and body. `head_only` for HEAD requests (same head, no body).
    pub fn write_to(
        &self,
        out: &mut impl Write,
        keep_alive: bool,
        head_only: bool,
    ) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            // Values come from code or validated admin input; this is the last line of
            // defence against a CR/LF splitting the response.
            let value: String = value
                .chars()
                .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
                .collect();
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n", self.body_len()));
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut head = head.into_bytes();
        if head_only {
            out.write_all(&head)?;
            return out.flush();
        }
        match &self.body {
            Body::Bytes(bytes) => {
                // One write for small answers: fewer packets, no Nagle/delayed-ACK stalls.
                head.extend_from_slice(bytes);
                out.write_all(&head)?;
            }
            Body::Oversized(len) => {
                out.write_all(&head)?;
                write_oversized(out, *len)?;
            }
        }
        out.flush()
    }
}

fn write_oversized(out: &mut impl Write, len: u64) -> io::Result<()> {
    const PREFIX: &[u8] = br#"{"access_token":""#;
    const SUFFIX: &[u8] = br#""}"#;
    let framing = (PREFIX.len() + SUFFIX.len()) as u64;
    if len < framing {
        let filler = vec![b' '; len as usize];
        return out.write_all(&filler);
    }
    out.write_all(PREFIX)?;
    let block = vec![b'x'; 64 * 1024];
    let mut left = len - framing;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.write_all(SUFFIX)
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(response: &Response, keep_alive: bool, head_only: bool) -> String {
        let mut out = Vec::new();
        response.write_to(&mut out, keep_alive, head_only).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_head_and_body() {
        let r = Response::new(503).header("Retry-After", "1").body("down");
        assert_eq!(
            wire(&r, false, false),
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown"
        );
        assert_eq!(
            wire(&r, true, true),
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\n"
        );
    }

    #[test]
    fn header_values_cannot_split_the_response() {
        let r = Response::new(302).header("Location", "/a\r\nSet-Cookie: x");
        assert!(wire(&r, true, false).contains("Location: /a  Set-Cookie: x\r\n"));
    }

    #[test]
    fn oversized_bodies_have_the_exact_size() {
        for len in [0u64, 5, 19, 20, 100_000] {
            let r = Response {
                body: Body::Oversized(len),
                ..Response::new(200)
            };
            let text = wire(&r, true, false);
            let body = text.split_once("\r\n\r\n").unwrap().1;
            assert_eq!(body.len() as u64, len);
            assert!(text.contains(&format!("Content-Length: {len}\r\n")));
        }
    }
}
