//! One client connection (plain or TLS): read a request, route it, answer, repeat.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::clock;
use crate::request::{read_request, ReadError};
use crate::response::Response;
use crate::router::{route, Reply};
use crate::server::Shared;

/// A keep-alive connection idle this long is closed (and so is a client stalling mid-request).
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests per connection; the last answer says `Connection: close`.
const MAX_REQUESTS: u32 = 100_000;
/// How long a hang fault holds the socket at most.
const MAX_HANG: Duration = Duration::from_secs(60);

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

impl Conn {
    /// Closes politely: TLS close_notify, FIN, then a short drain so that unread request
    /// bytes do not turn the close into a reset that destroys the answer just sent.
    fn close(self) {
        let tcp = match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(mut tls) => {
                tls.conn.send_close_notify();
                let _ = tls.flush();
                tls.sock
            }
        };
        let _ = tcp.shutdown(Shutdown::Write);
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(100)));
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut buf = [0; 8192];
        let mut drained = 0;
        while Instant::now() < deadline && drained < 1 << 20 {
            match (&tcp).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    }
}

pub(crate) fn serve(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let conn = match &shared.tls {
        Some(configs) => {
            let which = shared.state().config.tls_certificate;
            match rustls::ServerConnection::new(configs.get(which)) {
                Ok(tls) => Conn::Tls(Box::new(rustls::StreamOwned::new(tls, stream))),
                Err(_) => return,
            }
        }
        None => Conn::Plain(stream),
    };
    let mut reader = BufReader::with_capacity(16 * 1024, conn);
    let stop_after = exchange(shared, &mut reader);
    reader.into_inner().close();
    if stop_after {
        shared.stop();
    }
}

/// RFC 9110 §6.6.1: a server with a clock sends `Date` — here on the mock's (maybe skewed)
/// clock, which is what clock-skew diagnosis compares with the local one.
fn dated(shared: &Shared, response: Response) -> Response {
    let skew = shared.state().config.clock_skew_secs;
    response.header("Date", &clock::http_date(clock::unix_secs(skew)))
}

/// Serves requests until the connection should close; `true` when the server should stop
/// afterwards (`POST /admin/shutdown`, answered first).
fn exchange(shared: &Shared, reader: &mut BufReader<Conn>) -> bool {
    for served in 1..=MAX_REQUESTS {
        if shared.stopped() {
            return false;
        }
        let request = match read_request(reader) {
            Ok(Some(request)) => request,
            Ok(None) | Err(ReadError::Io) => return false,
            Err(ReadError::Reject(status, why)) => {
                let answer = json!({ "error": "invalid_request", "error_description": why });
                let _ = dated(shared, Response::json(status, &answer)).write_to(
                    reader.get_mut(),
                    false,
                    false,
                );
                return false;
            }
        };
        let keep_alive = request.keep_alive() && !request.must_close && served < MAX_REQUESTS;
        let head_only = request.method == "HEAD";
        match route(shared, &request) {
            Reply::Respond(response) => {
                let written =
                    dated(shared, response).write_to(reader.get_mut(), keep_alive, head_only);
                if written.is_err() || !keep_alive {
                    return false;
                }
            }
            Reply::RespondThenStop(response) => {
                let _ = dated(shared, response).write_to(reader.get_mut(), false, head_only);
                return true;
            }
            Reply::Hang => {
                shared.sleep(MAX_HANG);
                return false;
            }
            Reply::Close => return false,
            Reply::Raw(bytes) => {
                let stream = reader.get_mut();
                let _ = stream.write_all(&bytes).and_then(|()| stream.flush());
                return false;
            }
        }
    }
    false
}
