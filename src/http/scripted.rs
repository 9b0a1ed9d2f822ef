//! A test seam under the transport: a ureq connector that answers from a script instead of
//! a socket. [`Script::transport`] gives a [`Transport`] whose requests are recorded and
//! answered, in order, with the queued raw HTTP responses; the token endpoint and the send
//! loop run on it unchanged, so their parsing and policy are tested without sockets. Each
//! exchange gets a connection of its own (connections report closed, so none is pooled).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport as UreqTransport,
};

use super::Transport;
use crate::sync::Mutex;

/// Queued answers and recorded requests; clones share both.
#[derive(Clone, Default)]
pub(crate) struct Script(Arc<State>);

struct State {
    answers: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<Recorded>>,
}

impl Default for State {
    fn default() -> State {
        State {
            answers: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
        }
    }
}

enum Answer {
    Raw(Vec<u8>),
    Refuse,
}

/// A request as the transport sent it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// The request line, e.g. `POST /oauth/token HTTP/1.1`.
    pub(crate) request_line: String,
    headers: Vec<(String, String)>,
    /// The body bytes after the head.
    pub(crate) body: Vec<u8>,
}

impl Recorded {
    fn parse(bytes: &[u8]) -> Recorded {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(bytes.len());
        let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_string();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Recorded {
            request_line,
            headers,
            body: bytes.get(split + 4..).unwrap_or_default().to_vec(),
        }
    }

    /// The value of header `name` (any case), if sent.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub(crate) fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Script {
    pub(crate) fn new() -> Script {
        Script::default()
    }

    /// Answer the next request with `raw`, a whole HTTP/1.1 response as the server sends it.
    pub(crate) fn raw(&self, raw: impl Into<Vec<u8>>) -> &Script {
        self.0.answers.lock().push_back(Answer::Raw(raw.into()));
        self
    }

    /// Answer the next request with `status`, the `extra` header lines (each ending in
    /// `\r\n`) and a JSON `body`.
    pub(crate) fn json(&self, status: u16, extra: &str, body: &str) -> &Script {
        self.raw(format!(
            "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\n{extra}\
             content-length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    /// Refuse the next connection, as a server that is down does.
    pub(crate) fn refuse(&self) -> &Script {
        self.0.answers.lock().push_back(Answer::Refuse);
        self
    }

    /// A transport whose every connection is answered by this script.
    pub(crate) fn transport(&self) -> Transport {
        Transport::with_connector(self.clone())
    }

    /// The requests sent so far, in order.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.0.requests.lock().clone()
    }

    /// Answers queued but not used yet.
    pub(crate) fn unused(&self) -> usize {
        self.0.answers.lock().len()
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script").finish_non_exhaustive()
    }
}

impl Connector for Script {
    type Out = Connection;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> Result<Option<Connection>, ureq::Error> {
        // An exhausted script refuses too: a test that sends more than it scripted fails.
        let answer = match self.0.answers.lock().pop_front() {
            Some(Answer::Raw(bytes)) => bytes,
            Some(Answer::Refuse) | None => {
                return Err(ureq::Error::Io(
                    std::io::ErrorKind::ConnectionRefused.into(),
                ))
            }
        };
        Ok(Some(Connection {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            script: self.0.clone(),
            sent: Vec::new(),
            recorded: false,
            answer,
            answered: 0,
        }))
    }
}

/// One scripted exchange.
pub(crate) struct Connection {
    buffers: LazyBuffers,
    script: Arc<State>,
    sent: Vec<u8>,
    recorded: bool,
    answer: Vec<u8>,
    answered: usize,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl UreqTransport for Connection {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, _: NextTimeout) -> Result<(), ureq::Error> {
        let output = &self.buffers.output()[..amount];
        self.sent.extend_from_slice(output);
        Ok(())
    }

    fn await_input(&mut self, _: NextTimeout) -> Result<bool, ureq::Error> {
        // ureq sends the whole request before it reads, so the request is complete now.
        if !self.recorded {
            self.recorded = true;
            self.script
                .requests
                .lock()
                .push(Recorded::parse(&self.sent));
        }
        let input = self.buffers.input_append_buf();
        let amount = input.len().min(self.answer.len() - self.answered);
        input[..amount].copy_from_slice(&self.answer[self.answered..self.answered + amount]);
        self.answered += amount;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        false
    }
}
