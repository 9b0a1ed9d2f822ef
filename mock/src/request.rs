//! Reading one HTTP/1.x request from a connection: strict, and bounded in every dimension,
//! because test clients in four languages (and deliberately broken ones) talk to it.

use std::io::{self, BufRead, BufReader, Read, Write};

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (after de-chunking).
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// More header lines than any real client sends.
const MAX_HEADERS: usize = 200;
/// A chunk-size line (size plus extensions) longer than this is an attack, not a client.
const MAX_CHUNK_LINE: usize = 4096;
/// Empty lines tolerated before a request line (RFC 9112 §2.2: robustness after a body).
const MAX_LEADING_EMPTY_LINES: usize = 4;

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Origin-form path and query (absolute-form targets are reduced to this).
    pub target: String,
    /// HTTP/1.0 rather than 1.1: keep-alive must be asked for.
    pub http10: bool,
    /// Lower-cased names, in arrival order; values trimmed, UTF-8 (lossy).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Both Transfer-Encoding and Content-Length were sent: RFC 9112 §6.1 says to close after.
    pub must_close: bool,
}

impl Request {
    /// The first value of a header (names are matched lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        match self.target.split_once('?') {
            Some((path, _)) => path,
            None => &self.target,
        }
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// Whether the client allows the connection to stay open after the response.
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let has = |word: &str| connection.split(',').any(|t| t.trim() == word);
        if self.http10 {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The transport failed (reset, idle timeout, TLS error): close without answering.
    Io,
    /// The request is malformed or too large: answer with this status, then close.
    Reject(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> ReadError {
        ReadError::Io
    }
}

fn bad(why: &'static str) -> ReadError {
    ReadError::Reject(400, why)
}

/// Reads the next request. `Ok(None)`: the peer closed cleanly between requests.
///
/// The stream is `Write` too because `Expect: 100-continue` needs an interim answer before
/// the body arrives (libcurl waits a second for it otherwise).
pub fn read_request<S: Read + Write>(
    reader: &mut BufReader<S>,
) -> Result<Option<Request>, ReadError> {
    let mut budget = MAX_HEAD;
    let mut line = None;
    for _ in 0..=MAX_LEADING_EMPTY_LINES {
        match read_line(reader, &mut budget, 431)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => {
                line = Some(l);
                break;
            }
        }
    }
    let line = line.ok_or(bad("no request line"))?;
    let line = String::from_utf8(line).map_err(|_| bad("request line is not ASCII"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("request line must be `METHOD target HTTP/1.x`"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(bad("bad method"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => {
            return Err(ReadError::Reject(
                505,
                "only HTTP/1.0 and HTTP/1.1 are spoken",
            ))
        }
    };
    let target = origin_form(target).ok_or(bad("bad request target"))?;
    let headers = read_headers(reader, &mut budget)?;
    let mut request = Request {
        method: method.to_string(),
        target,
        http10,
        headers,
        body: Vec::new(),
        must_close: false,
    };
    let framing = body_framing(&request)?;
    if !matches!(framing, Framing::None) && wants_continue(&request) {
        let stream = reader.get_mut();
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        stream.flush()?;
    }
    match framing {
        Framing::None => {}
        Framing::Length(len) => {
            let mut body = vec![0; len];
            reader.read_exact(&mut body)?;
            request.body = body;
        }
        Framing::Chunked { must_close } => {
            request.body = read_chunked(reader)?;
            request.must_close = must_close;
        }
    }
    Ok(Some(request))
}

/// Origin-form (`/path?q`) as is; absolute-form (`http://host/path`, RFC 9112 §3.2.2, which
/// servers must accept) reduced to its path. Only visible ASCII is allowed.
fn origin_form(target: &str) -> Option<String> {
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    if target.starts_with('/') {
        return Some(target.to_string());
    }
    let lower = target.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        &target[8..]
    } else {
        return None;
    };
    Some(match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => rest[i..].to_string(),
        Some(i) => format!("/{}", &rest[i..]),
        None => "/".to_string(),
    })
}

/// RFC 9110 §5.6.2 token characters (header names, methods).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn read_headers(
    reader: &mut impl BufRead,
    budget: &mut usize,
) -> Result<Vec<(String, String)>, ReadError> {
    let mut headers = Vec::new();
    loop {
        let line =
            read_line(reader, budget, 431)?.ok_or(bad("connection closed inside the head"))?;
        if line.is_empty() {
            return Ok(headers);
        }
        if headers.len() == MAX_HEADERS {
            return Err(ReadError::Reject(431, "too many header fields"));
        }
        headers.push(parse_header(&line)?);
    }
}

fn parse_header(line: &[u8]) -> Result<(String, String), ReadError> {
    if line[0] == b' ' || line[0] == b'\t' {
        return Err(bad("obsolete header line folding"));
    }
    let colon = line
        .iter()
        .position(|b| *b == b':')
        .ok_or(bad("header line without a colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // RFC 9112 §5.1: no whitespace between name and colon, ever (request smuggling).
    if name.is_empty() || !name.iter().all(|b| is_tchar(*b)) {
        return Err(bad("bad header name"));
    }
    if value.iter().any(|b| *b == 0 || *b == b'\r' || *b == b'\n') {
        return Err(bad("control character in a header value"));
    }
    let value = String::from_utf8_lossy(value);
    Ok((
        String::from_utf8_lossy(name).to_ascii_lowercase(),
        value.trim_matches([' ', '\t']).to_string(),
    ))
}

enum Framing {
    None,
    Length(usize),
    Chunked { must_close: bool },
}

/// RFC 9112 §6.3: chunked wins over Content-Length; anything ambiguous is refused.
fn body_framing(request: &Request) -> Result<Framing, ReadError> {
    let all = |name: &str| -> Vec<String> {
        request
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let codings = all("transfer-encoding");
    let lengths = all("content-length");
    if !codings.is_empty() {
        if request.http10 || codings.iter().any(|c| c != "chunked") || codings.len() > 1 {
            return Err(ReadError::Reject(
                501,
                "only `Transfer-Encoding: chunked` is understood",
            ));
        }
        return Ok(Framing::Chunked {
            must_close: !lengths.is_empty(),
        });
    }
    let Some(first) = lengths.first() else {
        return Ok(Framing::None);
    };
    if lengths.iter().any(|l| l != first) || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("bad Content-Length"));
    }
    match first.parse::<usize>() {
        Ok(0) => Ok(Framing::None),
        Ok(len) if len <= MAX_BODY => Ok(Framing::Length(len)),
        _ => Err(ReadError::Reject(413, "request body larger than 32 MiB")),
    }
}

fn wants_continue(request: &Request) -> bool {
    !request.http10
        && request
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    // Every chunk but the last carries at least one byte, so the body cap bounds this loop;
    // the explicit bound is a second guard.
    for _ in 0..=MAX_BODY {
        let mut budget = MAX_CHUNK_LINE;
        let line =
            read_line(reader, &mut budget, 400)?.ok_or(bad("connection closed inside a chunk"))?;
        let size = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .unwrap_or("")
            .trim_matches([' ', '\t']);
        if size.is_empty() || size.len() > 8 {
            return Err(bad("bad chunk size"));
        }
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            skip_trailers(reader)?;
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Reject(413, "request body larger than 32 MiB"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut budget = 2;
        match read_line(reader, &mut budget, 400)? {
            Some(rest) if rest.is_empty() => {}
            _ => return Err(bad("chunk data not followed by CRLF")),
        }
    }
    Err(bad("too many chunks"))
}

fn skip_trailers(reader: &mut impl BufRead) -> Result<(), ReadError> {
    let mut budget = MAX_HEAD;
    for _ in 0..=MAX_HEADERS {
        match read_line(reader, &mut budget, 431)? {
            Some(line) if line.is_empty() => return Ok(()),
            Some(_) => continue,
            None => return Err(bad("connection closed inside the trailers")),
        }
    }
    Err(ReadError::Reject(431, "too many trailer fields"))
}

/// One line without its CRLF (a bare LF is tolerated, RFC 9112 §2.2), charged against
/// `budget`; `too_long` is the status to answer when the budget runs out.
/// `Ok(None)` only when the stream ended before the first byte.
fn read_line(
    reader: &mut impl BufRead,
    budget: &mut usize,
    too_long: u16,
) -> Result<Option<Vec<u8>>, ReadError> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget {
        return Err(ReadError::Reject(
            too_long,
            "request head or line too large",
        ));
    }
    *budget -= n;
    if line.pop() != Some(b'\n') {
        return Err(bad("connection closed inside a line"));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.contains(&b'\r') {
        return Err(bad("bare CR inside a line"));
    }
    Ok(Some(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A fake connection: reads from `input`, records what is written.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn reader(raw: &[u8]) -> BufReader<Duplex> {
        BufReader::new(Duplex {
            input: Cursor::new(raw.to_vec()),
            output: Vec::new(),
        })
    }

    fn parse(raw: &[u8]) -> Result<Option<Request>, ReadError> {
        read_request(&mut reader(raw))
    }

    fn status(raw: &[u8]) -> u16 {
        match parse(raw) {
            Err(ReadError::Reject(status, _)) => status,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_simple_request_and_the_next_one() {
        let mut r = reader(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Two:  v \r\n\r\nPOST /c HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc");
        let first = read_request(&mut r).unwrap().unwrap();
        assert_eq!(first.method, "GET");
        assert_eq!(first.path(), "/a");
        assert_eq!(first.query(), "b=1");
        assert_eq!(first.header("x-two"), Some("v"));
        assert!(first.keep_alive());
        let second = read_request(&mut r).unwrap().unwrap();
        assert_eq!(second.body, b"abc");
        assert!(read_request(&mut r).unwrap().is_none());
    }

    #[test]
    fn chunked_bodies_with_extensions_and_trailers() {
        let req = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(req.body, b"abcde");
        assert!(!req.must_close);
    }

    #[test]
    fn expect_continue_gets_an_interim_response() {
        let mut r =
            reader(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
        let req = read_request(&mut r).unwrap().unwrap();
        assert_eq!(req.body, b"hi");
        assert_eq!(r.get_ref().output, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn absolute_form_targets_become_paths() {
        assert_eq!(origin_form("http://h:1/p?q").as_deref(), Some("/p?q"));
        assert_eq!(origin_form("HTTPS://h").as_deref(), Some("/"));
        assert_eq!(origin_form("http://h?q").as_deref(), Some("/?q"));
        assert_eq!(origin_form("*"), None);
    }

    #[test]
    fn http10_closes_unless_asked() {
        let req = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!req.keep_alive());
        let req = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(req.keep_alive());
    }

    #[test]
    fn malformed_requests_are_rejected() {
        assert_eq!(status(b"GARBAGE\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status(b"GET /\x01 HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nNo colon\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nName : v\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n"), 400);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            413
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            501
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"),
            400
        );
    }

    #[test]
    fn oversized_heads_are_431() {
        let mut raw = b"GET / HTTP/1.1\r\nX: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        raw.extend(b"\r\n\r\n");
        assert_eq!(status(&raw), 431);
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            raw.extend(format!("h{i}: v\r\n").as_bytes());
        }
        raw.extend(b"\r\n");
        assert_eq!(status(&raw), 431);
    }

    #[test]
    fn truncated_bodies_are_transport_errors() {
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
            Err(ReadError::Io)
        ));
    }
}
