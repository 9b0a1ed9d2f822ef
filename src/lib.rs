//! tokenward — OAuth 2.0 client-credentials tokens, done once and correctly.
//!
//! ```no_run
//! let config = tokenward::Config::from_json(r#"{
//!     "token_url": "https://idp.example.com/connect/token",
//!     "client_id": "my-service",
//!     "client_secret_env": "MY_SERVICE_SECRET",
//!     "scope": "EventsApi",
//!     "headers": { "tenant-code": "T1", "api-version": "2" }
//! }"#)?;
//! let client = tokenward::Client::new(config)?;       // Clone + Send + Sync; share it
//! for (name, value) in client.headers()? {            // Authorization first
//!     println!("{name}: {}", if name == "Authorization" { "Bearer …" } else { &value });
//! }
//! # Ok::<(), tokenward::Error>(())
//! ```
//!
//! # Concepts, in the order you meet them
//!
//! - [`Config`] — one schema from [`Config::builder`], [`Config::from_json`] or
//!   [`Config::from_env`]; validated once, every problem named by its key. `https` is
//!   required except for loopback hosts with `allow_http`.
//! - [`Client`] — [`Client::token`], [`Client::authorization`], [`Client::headers`]. The
//!   first call fetches; later calls are cache hits (one lock, one compare, one `Arc` clone).
//! - Refresh-ahead — from `refresh_at` (default 300 s before expiry, at most half the
//!   lifetime, minus jitter) one refresh runs in the background while callers keep the
//!   current token; no caller waits on the network while a usable token is cached. A token
//!   is never handed out within `min(30 s, lifetime/10)` of its expiry. Only the monotonic
//!   clock is used.
//! - Single flight — however many threads find the cache empty, one request is sent and
//!   all share its result, token or error.
//! - Failures — transient ones (network, timeout, 5xx, 429) are retried with exponential
//!   backoff and full jitter, honouring `Retry-After`; hard ones (`invalid_client`, …) are
//!   remembered for `error_cooldown` so a misconfigured fleet cannot lock its client out.
//!   Every failure is an [`Error`] with a stable [`ErrorKind`].
//! - [`Client::invalidate`] — after an API answers 401, evict exactly the token you sent.
//! - [`Client::token_for`] — other scope/audience/resource combinations, each in its own slot.
//! - [`Client::set_client_secret`] — rotation clears every slot and remembered error at once.
//! - [`Client::set_event_hook`] — redacted [`Event`]s for logs; [`Client::stats`] for metrics.
//! - Fork safety — a client created before `fork()` keeps working in the child.
//!
//! The C ABI (`include/tokenward.h`) exposes the same client to C, C++, .NET and Python.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod assertion;
mod cache;
mod client;
mod clock;
mod config;
mod endpoint;
mod error;
mod events;
mod fork;
mod request;
mod retry;
mod secret;
mod sync;
mod token;
mod transport;
mod url;

#[cfg(feature = "ffi")]
pub mod ffi;

pub use client::{Client, Stats};
pub use config::{AuthMethod, Config, ConfigBuilder, RateLimit, RefreshMode, RetryPolicy};
pub use error::{Error, ErrorKind, Result};
pub use events::{Event, EventKind};
pub use request::{Request, Response};
pub use token::{AccessToken, TokenRequest};
