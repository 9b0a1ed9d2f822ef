//! The HTTP layer: one blocking exchange at a time over rustls ([`transport`]) with its
//! trust roots and TLS files ([`tls`]), the URL rules every request obeys ([`url`]), the
//! rules for caller headers ([`headers`]), backoff and `Retry-After` ([`retry`]) and
//! redirect targets ([`location`]).
//! It knows nothing of OAuth, of the configuration or of the cache.

#![forbid(unsafe_code)]

pub(crate) mod headers;
pub(crate) mod location;
pub(crate) mod retry;
pub(crate) mod tls;
pub(crate) mod transport;
pub(crate) mod url;

pub(crate) use retry::{
    backoff, failure_memory, parse_http_date, parse_retry_after, random_unit, RetryPolicy,
};
pub(crate) use tls::{TlsFiles, TlsMaterial};
pub(crate) use transport::{check_proxy, Outgoing, Reply, Transport};
pub(crate) use url::{
    check_url, is_header_name, is_header_value, origin_of, percent_encode, Form, Origin,
};
