//! The HTTP layer: one blocking exchange at a time over rustls ([`transport`], connecting
//! through `connector`) with its TLS files ([`tls`]) and the trust roots and TLS
//! configurations shared across the process ([`trust`]), the URL rules every request obeys
//! ([`url`]), the rules for caller headers ([`headers`]), backoff and `Retry-After`
//! ([`retry`]) and redirect targets ([`location`]). It knows nothing of OAuth, of the
//! configuration or of the cache. Tests answer requests from memory through `scripted`.

#![forbid(unsafe_code)]

pub(crate) mod challenge;
mod connector;
mod failure;
pub(crate) mod headers;
pub(crate) mod location;
pub(crate) mod retry;
#[cfg(test)]
pub(crate) mod scripted;
pub(crate) mod tls;
pub(crate) mod transport;
pub(crate) mod trust;
pub(crate) mod url;

pub(crate) use retry::{
    backoff, failure_memory, parse_http_date, parse_retry_after, random_unit, reseed_random,
    RetryPolicy,
};
pub(crate) use tls::{TlsFiles, TlsMaterial};
pub(crate) use transport::{check_proxy, Outgoing, Peer, Reply, Transport};
pub(crate) use url::{
    check_url, is_header_name, is_header_value, origin_of, percent_encode, Form, Origin,
};
