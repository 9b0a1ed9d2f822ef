//! What a failed exchange means to a caller: ureq's errors as typed [`Error`]s whose message
//! names the far end and the likely fix, with ureq's error kept as the source.
//!
//! The URL and the lower layer's text are clipped: either may come from a server (a
//! redirect's `Location`, the names in a certificate, a proxy's answer) and be of any length.

use super::transport::Outgoing;
use super::url::clip;
use crate::error::{Error, ErrorKind};

/// The typed error for a failed exchange, naming the far end (its URL clipped) and keeping
/// ureq's error as the source.
pub(super) fn map_error(e: ureq::Error, out: &Outgoing<'_>) -> Error {
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
