//! The HTTP transport: ureq agents over rustls with the client's TLS setting, timeouts and
//! proxy; bodies read with a size cap; redirects never followed here.
//!
//! Creating a transport reads only the files its configuration names: the trust roots are
//! loaded, and the TLS configuration shared with equal settings (`trust`), when the first
//! `https` connection needs them. A client that speaks plain `http` never reads them.
//!
//! Exchanges with the identity provider (token endpoint, discovery) and with APIs use two
//! agents, created on first use: a connection's buffers are allocated and zeroed when it
//! opens, and ureq's defaults (128 KiB each way, for downloads) were most of the instructions
//! of a cold token fetch, whose request and response are a few kilobytes.

use std::fmt;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::unversioned::transport::Connector;
use ureq::RequestExt;

use super::connector::{LiteralFirstResolver, TlsConnector};
use super::failure::map_error;
use super::tls::{TlsFiles, TlsMaterial};
use super::trust::TlsSetting;
use super::url::clip;
use crate::error::{Error, ErrorKind, Result};
use crate::sync::{fork, ForkLock, Mutex};

/// Who answers an exchange: named in error messages, and deciding the buffers it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// The token endpoint: a form of a few hundred bytes, a JSON answer of a few kilobytes.
    TokenEndpoint,
    /// The issuer's OpenID discovery document: as small.
    Discovery,
    /// An API called through `send`: any size.
    Api,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Peer::TokenEndpoint => "token endpoint",
            Peer::Discovery => "OpenID discovery document",
            Peer::Api => "API",
        })
    }
}

/// The buffers of one agent's connections.
#[derive(Debug, Clone, Copy)]
struct Sizing {
    /// The longest response head (status line and headers) accepted.
    max_head: usize,
    /// Bytes read at a time: a whole head plus the start of its body, so that an over-long
    /// head is reported as such.
    input: usize,
    /// Bytes written at a time; ureq writes each request line and header line whole, so
    /// this is also the longest line a request may have.
    output: usize,
}

impl Peer {
    fn sizing(self) -> Sizing {
        match self {
            // Identity providers answer with ~0.5-2 KiB of headers (cookies and security
            // headers included); the longest request line is a DPoP proof or a Basic header.
            // The input buffer also lends ureq 10 KiB of scratch space to send a request body
            // through, and shrinks to that when it is smaller: 10 KiB avoids a re-zeroing.
            Peer::TokenEndpoint | Peer::Discovery => Sizing {
                max_head: 8 * 1024,
                input: 10 * 1024,
                output: 4 * 1024,
            },
            // ureq's defaults: an API may send large heads and take large tokens.
            Peer::Api => Sizing {
                max_head: 64 * 1024,
                input: 128 * 1024,
                output: 128 * 1024,
            },
        }
    }

    fn is_identity_provider(self) -> bool {
        !matches!(self, Peer::Api)
    }
}

/// One HTTP exchange to perform.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a str,
    pub(crate) url: &'a str,
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) body: Option<&'a [u8]>,
    /// The whole exchange, connect to last body byte, must end by then.
    pub(crate) deadline: Instant,
    pub(crate) body_limit: u64,
    /// The far end, for messages and buffer sizes.
    pub(crate) peer: Peer,
}

/// A complete response; header names are lower-cased.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type MakeAgent = Box<dyn Fn(Sizing) -> ureq::Agent + Send + Sync>;

/// Builds and owns the client's agents. After `fork()` the child builds fresh agents on
/// first use: pooled connections are shared with the parent and must not be reused.
pub(crate) struct Transport {
    agents: Mutex<Agents>,
    make_agent: MakeAgent,
    tls: Arc<TlsSetting>,
}

struct Agents {
    epoch: u64,
    identity_provider: Option<ureq::Agent>,
    api: Option<ureq::Agent>,
}

impl Transport {
    /// Read the TLS files; no agent is built, no trust root and no proxy variable read yet
    /// (each agent reads the environment's proxy when it is built, on first use). Errors:
    /// [`ErrorKind::Config`] when a file cannot be read or parsed (they were checked when
    /// the configuration was built, so only a file changed since can fail here) or the proxy
    /// is unusable.
    pub(crate) fn new(
        tls: &TlsFiles,
        proxy: Option<&str>,
        connect_timeout: Duration,
    ) -> Result<Transport> {
        let material = TlsMaterial::load(tls).map_err(|problems| {
            Error::config(format!("configuration rejected: {}.", problems.join("; ")))
        })?;
        let proxy = match proxy {
            Some(p) => ProxySetting::Explicit(
                parse_proxy(p).map_err(|e| Error::config(format!("`proxy` is not usable: {e}")))?,
            ),
            None => ProxySetting::FromEnvironment,
        };
        let tls = Arc::new(TlsSetting::new(material));
        let setting = tls.clone();
        let make_agent = move |sizing| {
            let connector =
                ().chain(ureq::unversioned::transport::ConnectProxyConnector::default())
                    .chain(ureq::unversioned::transport::TcpConnector::default())
                    .chain(TlsConnector {
                        setting: setting.clone(),
                    });
            ureq::Agent::with_parts(
                agent_config(proxy.clone(), connect_timeout, sizing),
                connector,
                LiteralFirstResolver::default(),
            )
        };
        Ok(Transport::assemble(Box::new(make_agent), tls))
    }

    /// A transport whose connections all come from `connector` (none from a socket or
    /// TLS), so that tests can answer requests from memory; otherwise configured as
    /// [`Transport::new`] configures it without TLS files or proxy.
    #[cfg(test)]
    pub(crate) fn with_connector<C: Connector + Clone>(connector: C) -> Transport {
        let make_agent = move |sizing| {
            ureq::Agent::with_parts(
                agent_config(ProxySetting::Direct, Duration::from_secs(10), sizing),
                connector.clone(),
                LiteralFirstResolver::default(),
            )
        };
        let tls = Arc::new(TlsSetting::new(TlsMaterial::default()));
        Transport::assemble(Box::new(make_agent), tls)
    }

    fn assemble(make_agent: MakeAgent, tls: Arc<TlsSetting>) -> Transport {
        Transport {
            agents: Mutex::new(Agents {
                epoch: fork::epoch(),
                identity_provider: None,
                api: None,
            }),
            make_agent,
            tls,
        }
    }

    /// This transport's TLS setting (tests compare configurations through it).
    #[cfg(test)]
    pub(crate) fn tls(&self) -> &TlsSetting {
        &self.tls
    }

    fn agent(&self, peer: Peer) -> ureq::Agent {
        let mut agents = self.agents.lock();
        let epoch = fork::epoch();
        if agents.epoch != epoch {
            // The old pools' sockets belong to the parent too; dropping them could send a
            // TLS close_notify on the parent's live connection, so the child leaks them.
            std::mem::forget(agents.identity_provider.take());
            std::mem::forget(agents.api.take());
            agents.epoch = epoch;
        }
        let slot = if peer.is_identity_provider() {
            &mut agents.identity_provider
        } else {
            &mut agents.api
        };
        slot.get_or_insert_with(|| (self.make_agent)(peer.sizing()))
            .clone()
    }

    /// The TLS files of this transport (a shared cache over TLS trusts the same roots).
    #[cfg(feature = "redis")]
    pub(crate) fn tls_material(&self) -> &TlsMaterial {
        self.tls.material()
    }

    /// The agent lock, for the fork hooks (`crate::sync::fork`).
    pub(crate) fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.agents);
        self.tls.fork_locks(visit);
    }

    /// Perform one exchange. Any HTTP status is a successful `Reply`; errors are transport
    /// failures (network, timeout, TLS, oversized body) and requests that cannot be sent.
    pub(crate) fn execute(&self, out: &Outgoing<'_>) -> Result<Reply> {
        let remaining = out.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "The {} at {} was not asked: the request deadline had already passed.",
                    out.peer,
                    clip(out.url)
                ),
            ));
        }
        let longest = out.peer.sizing().output;
        if let Some(line) = overlong_line(out, longest) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "The request to {} was not sent: {line} is longer than {longest} bytes.",
                    clip(out.url)
                ),
            ));
        }
        let mut builder = ureq::http::Request::builder()
            .method(out.method)
            .uri(out.url);
        for (name, value) in out.headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(out.body.unwrap_or_default()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("The request to {} is not valid HTTP: {e}", clip(out.url)),
            )
            .with_source(e)
        })?;
        let agent = self.agent(out.peer);
        let mut response = request
            .with_agent(&agent)
            .configure()
            .timeout_global(Some(remaining))
            .run()
            .map_err(|e| map_error(e, out))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        // Sized from Content-Length (within reason) so that a small body is read in one
        // call rather than grown from a 32-byte probe.
        let expected = response.body().content_length().unwrap_or(0);
        let mut body = Vec::with_capacity(expected.min(out.body_limit).min(64 * 1024) as usize);
        response
            .body_mut()
            .with_config()
            .limit(out.body_limit)
            .reader()
            .read_to_end(&mut body)
            .map_err(|e| map_error(ureq::Error::from(e), out))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// Whether `proxy` is a usable proxy URL; the reason when it is not.
pub(crate) fn check_proxy(proxy: &str) -> std::result::Result<(), String> {
    parse_proxy(proxy).map(drop)
}

fn parse_proxy(proxy: &str) -> std::result::Result<ureq::Proxy, String> {
    use ureq::ProxyProtocol;
    let proxy = ureq::Proxy::new(proxy).map_err(|e| e.to_string())?;
    match proxy.protocol() {
        ProxyProtocol::Http | ProxyProtocol::Https => Ok(proxy),
        other => Err(format!(
            "{other:?} proxies are not supported; use an HTTP CONNECT proxy (http:// or https://)"
        )),
    }
}

/// Where an agent's connections go first.
#[derive(Clone)]
enum ProxySetting {
    /// The proxy the environment names (`ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY`, with
    /// `NO_PROXY`, upper or lower case), read by ureq whenever a configuration is made.
    FromEnvironment,
    /// The configured `proxy`.
    Explicit(ureq::Proxy),
    /// None, whatever the environment says: the scripted transport of the tests.
    #[cfg(test)]
    Direct,
}

fn agent_config(
    proxy: ProxySetting,
    connect_timeout: Duration,
    sizing: Sizing,
) -> ureq::config::Config {
    let builder = ureq::Agent::config_builder();
    let builder = match proxy {
        ProxySetting::FromEnvironment => builder,
        ProxySetting::Explicit(proxy) => builder.proxy(Some(proxy)),
        #[cfg(test)]
        ProxySetting::Direct => builder.proxy(None),
    };
    builder
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_connect(Some(connect_timeout))
        .user_agent(concat!("tokenward/", env!("CARGO_PKG_VERSION")))
        .accept("application/json")
        .max_idle_age(Duration::from_secs(30))
        .max_response_header_size(sizing.max_head)
        .input_buffer_size(sizing.input)
        .output_buffer_size(sizing.output)
        .build()
}

/// The first line of the request longer than `longest` bytes, named for a message.
fn overlong_line(out: &Outgoing<'_>, longest: usize) -> Option<String> {
    // "METHOD target HTTP/1.1\r\n"; the target is at most the whole URL (via a proxy).
    if out.method.len() + out.url.len() + 12 > longest {
        return Some("the request line (method and URL)".into());
    }
    out.headers
        .iter()
        .find(|(name, value)| name.len() + value.len() + 4 > longest)
        .map(|(name, _)| format!("the `{}` header", clip(name)))
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
