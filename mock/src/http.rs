//! A small, strict HTTP/1.1 reader and writer: enough for the mock, bounded everywhere.

use std::io::{self, BufRead, Read, Write};

/// Largest request head (request line + headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Lower-cased names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or("")
    }

    pub fn keep_alive(&self) -> bool {
        !self
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

pub enum ReadOutcome {
    Request(HttpRequest),
    /// The peer closed the connection cleanly between requests.
    Closed,
    /// Malformed or oversized: answer 400 and close.
    Bad(&'static str),
}

fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
    }
    *budget -= n;
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

pub fn read_request(reader: &mut impl BufRead) -> io::Result<ReadOutcome> {
    let mut budget = MAX_HEAD;
    let line = match read_line(reader, &mut budget) {
        Ok(Some(line)) => line,
        Ok(None) => return Ok(ReadOutcome::Closed),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Ok(ReadOutcome::Bad("bad request line"))
        }
        Err(e) => return Err(e),
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(ReadOutcome::Bad("bad request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Ok(ReadOutcome::Bad("bad request line"));
    }
    let mut headers = Vec::new();
    loop {
        let line = match read_line(reader, &mut budget) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(ReadOutcome::Bad("truncated head")),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Ok(ReadOutcome::Bad("bad header"))
            }
            Err(e) => return Err(e),
        };
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Ok(ReadOutcome::Bad("bad header"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        if headers.len() > 200 {
            return Ok(ReadOutcome::Bad("too many headers"));
        }
    }
    let mut request = HttpRequest {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        match read_chunked(reader)? {
            Some(body) => request.body = body,
            None => return Ok(ReadOutcome::Bad("bad chunked body")),
        }
    } else if let Some(len) = request.header("content-length") {
        let Ok(len) = len.parse::<usize>() else {
            return Ok(ReadOutcome::Bad("bad content-length"));
        };
        if len > MAX_BODY {
            return Ok(ReadOutcome::Bad("body too large"));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(ReadOutcome::Request(request))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    for _ in 0..100_000 {
        let mut budget = 1024;
        let Some(line) = read_line(reader, &mut budget)? else {
            return Ok(None);
        };
        let size = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size, 16) else {
            return Ok(None);
        };
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut budget = 8192;
                match read_line(reader, &mut budget)? {
                    Some(l) if l.is_empty() => return Ok(Some(body)),
                    Some(_) => continue,
                    None => return Ok(None),
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Ok(None);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Ok(None);
        }
    }
    Ok(None)
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> HttpResponse {
        HttpResponse::new(status)
            .header("content-type", "application/json")
            .body(value.to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }

    pub fn write_to(&self, out: &mut impl Write, keep_alive: bool) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        if !keep_alive {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        out.write_all(&self.body)?;
        out.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
