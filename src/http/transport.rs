//! The HTTP transport: one ureq agent per client over rustls, with the client's trust
//! roots, timeouts and proxy; bodies read with a size cap; redirects never followed here.

use std::time::{Duration, Instant};

use crate::sync::{ForkLock, Mutex};
use ureq::tls::{RootCerts, TlsConfig};

use super::tls::{trust_roots, TlsFiles, TlsMaterial};
use super::url::clip;
use ureq::RequestExt;

use crate::error::{Error, ErrorKind, Result};
use crate::sync::fork;

/// One HTTP exchange to perform.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a str,
    pub(crate) url: &'a str,
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) body: Option<&'a [u8]>,
    /// The whole exchange, connect to last body byte, must end by then.
    pub(crate) deadline: Instant,
    pub(crate) body_limit: u64,
    /// Names the far end in error messages, e.g. "token endpoint".
    pub(crate) peer: &'a str,
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

/// Builds and owns the client's agent. After `fork()` the child builds a fresh agent on
/// first use: pooled connections are shared with the parent and must not be reused.
pub(crate) struct Transport {
    agent: Mutex<(u64, ureq::Agent)>,
    settings: Settings,
}

#[derive(Clone)]
struct Settings {
    roots: RootCerts,
    client_cert: Option<ureq::tls::ClientCert>,
    proxy: Option<ureq::Proxy>,
    connect_timeout: Duration,
}

impl Transport {
    /// Read the TLS files and build the agent. Errors: [`ErrorKind::Config`] when a file
    /// cannot be read or parsed (they were checked when the configuration was built, so
    /// only a file changed since can fail here) or the proxy is unusable.
    pub(crate) fn new(
        tls: &TlsFiles,
        proxy: Option<&str>,
        connect_timeout: Duration,
    ) -> Result<Transport> {
        let material = TlsMaterial::load(tls).map_err(|problems| {
            Error::config(format!("configuration rejected: {}.", problems.join("; ")))
        })?;
        let roots = trust_roots(&material.extra_roots);
        let proxy = match proxy {
            Some(p) => Some(
                ureq::Proxy::new(p)
                    .map_err(|e| Error::config(format!("`proxy` is not usable: {e}")))?,
            ),
            None => ureq::Proxy::try_from_env(),
        };
        let settings = Settings {
            roots,
            client_cert: material.client_cert,
            proxy,
            connect_timeout,
        };
        let agent = build_agent(&settings);
        Ok(Transport {
            agent: Mutex::new((fork::epoch(), agent)),
            settings,
        })
    }

    fn agent(&self) -> ureq::Agent {
        let mut slot = self.agent.lock();
        let epoch = fork::epoch();
        if slot.0 != epoch {
            let old = std::mem::replace(&mut slot.1, build_agent(&self.settings));
            // The old pool's sockets belong to the parent too; dropping them could send a TLS
            // close_notify on the parent's live connection, so the child leaks them instead.
            std::mem::forget(old);
            slot.0 = epoch;
        }
        slot.1.clone()
    }

    /// The agent lock, for the fork hooks (`crate::sync::fork`).
    pub(crate) fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.agent);
    }

    /// Perform one exchange. Any HTTP status is a successful `Reply`; errors are transport
    /// failures (network, timeout, TLS, oversized body).
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
        let agent = self.agent();
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
        let body = response
            .body_mut()
            .with_config()
            .limit(out.body_limit)
            .read_to_vec()
            .map_err(|e| map_error(e, out))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// Whether `proxy` is a usable proxy URL; the reason when it is not.
pub(crate) fn check_proxy(proxy: &str) -> std::result::Result<(), String> {
    ureq::Proxy::new(proxy).map(drop).map_err(|e| e.to_string())
}

fn build_agent(s: &Settings) -> ureq::Agent {
    let tls = TlsConfig::builder()
        .root_certs(s.roots.clone())
        .client_cert(s.client_cert.clone())
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .tls_config(tls)
        .proxy(s.proxy.clone())
        .timeout_connect(Some(s.connect_timeout))
        .user_agent(concat!("tokenward/", env!("CARGO_PKG_VERSION")))
        .accept("application/json")
        .max_idle_age(Duration::from_secs(30))
        .build()
        .new_agent()
}

fn map_error(e: ureq::Error, out: &Outgoing<'_>) -> Error {
    use ureq::Error as U;
    let (peer, url) = (out.peer, clip(out.url));
    let (kind, detail) = match &e {
        U::Timeout(which) => (ErrorKind::Timeout, format!("did not answer in time ({which:?} timeout)")),
        U::HostNotFound => (ErrorKind::Network, "host name could not be resolved; check the URL and DNS".into()),
        U::ConnectionFailed => (ErrorKind::Network, "connection failed; check that the server is up and reachable".into()),
        U::Io(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => (
            ErrorKind::Tls,
            format!(
                "TLS failed: {}; check the server certificate, its host name, and tls.ca_file for private CAs",
                io.get_ref().map(ToString::to_string).unwrap_or_default()
            ),
        ),
        U::Io(io) => match io.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                (ErrorKind::Timeout, format!("did not answer in time ({io})"))
            }
            std::io::ErrorKind::ConnectionRefused => {
                (ErrorKind::Network, "refused the connection; check that the server is up and the port is right".into())
            }
            _ => (ErrorKind::Network, format!("connection failed: {io}")),
        },
        U::Tls(msg) => (ErrorKind::Tls, format!("TLS failed: {msg}")),
        U::Rustls(err) => (
            ErrorKind::Tls,
            format!("TLS failed: {err}; check the server certificate, its host name, and tls.ca_file for private CAs"),
        ),
        U::Pem(err) => (ErrorKind::Tls, format!("certificate could not be read: {err}")),
        U::BodyExceedsLimit(limit) => (
            ErrorKind::BadResponse,
            format!("sent a response body larger than the {limit}-byte limit"),
        ),
        U::ConnectProxyFailed(msg) => (ErrorKind::Network, format!("could not be reached through the proxy: {msg}")),
        U::InvalidProxyUrl => (ErrorKind::Config, "could not be reached: the proxy URL is invalid".into()),
        U::BadUri(msg) => (ErrorKind::InvalidArgument, format!("URL is invalid: {msg}")),
        U::Http(err) => (ErrorKind::InvalidArgument, format!("request is invalid: {err}")),
        U::Protocol(err) => (ErrorKind::Network, format!("spoke invalid HTTP: {err}")),
        U::LargeResponseHeader(_, limit) => {
            (ErrorKind::BadResponse, format!("sent response headers larger than {limit} bytes"))
        }
        U::RequireHttpsOnly(_) | U::TlsRequired => (ErrorKind::Config, "must be reached over https".into()),
        other => (ErrorKind::Network, format!("failed: {other}")),
    };
    Error::new(kind, format!("The {peer} at {url} {}.", clip(&detail))).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_a_network_error_that_keeps_its_cause() {
        // A port that was free a moment ago: nothing listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let transport = Transport::new(&TlsFiles::default(), None, Duration::from_secs(2)).unwrap();
        let url = format!("http://127.0.0.1:{port}/token");
        let error = transport
            .execute(&Outgoing {
                method: "GET",
                url: &url,
                headers: &[],
                body: None,
                deadline: Instant::now() + Duration::from_secs(5),
                body_limit: 1024,
                peer: "token endpoint",
            })
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Network, "{error}");
        assert!(error.message().contains(&url), "{error}");
        let source = std::error::Error::source(&error).expect("the ureq error is kept");
        assert!(source.downcast_ref::<ureq::Error>().is_some(), "{source:?}");
    }
}
