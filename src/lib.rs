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
//!   first call fetches; later calls are cache hits. A hit takes no shared lock: the calling
//!   thread keeps a private copy of the current token (of up to four clients; hits on
//!   others take the cache lock) and checks it against the cache's published serial and a
//!   coarse monotonic clock. Hits never allocate after that copy.
//! - Refresh-ahead — from `refresh_at` (default 300 s before expiry, at most half the
//!   lifetime, minus jitter) one refresh runs while callers keep the current token. With
//!   `refresh_mode` `background` (the default) it runs on a short-lived library thread, so no
//!   caller waits on the network while a usable token is cached; with `inline` the caller
//!   that notices runs it before returning (and still gets the current token if it fails).
//!   A token is never handed out within `min(30 s, lifetime/10)` of its expiry, nor within
//!   1 s (identity providers round `exp` to whole seconds); a JWT's own `exp − iat` caps a
//!   longer `expires_in`. Only the monotonic clock is used.
//! - Single flight — however many threads find the cache empty, one request is sent and
//!   all share its result, token or error.
//! - Failures — transient ones (network, timeout, 5xx, 429) are retried with exponential
//!   backoff and full jitter, honouring `Retry-After` (waits capped by `retry.max_delay`, the
//!   memory of a failure by `retry.max_retry_after`); hard ones (`invalid_client`, …) are
//!   remembered for `error_cooldown` so a misconfigured fleet cannot lock its client out.
//!   Every failure is an [`Error`] with a stable [`ErrorKind`]; server text in it is clipped
//!   and scrubbed of the secret, the assertion and tokens.
//! - [`Client::invalidate`] — after an API answers 401, evict exactly the token you sent.
//! - [`Client::token_for`] — other scope/audience/resource combinations, each in its own slot.
//! - [`Client::set_client_secret`] — rotation clears every slot and remembered error at once.
//! - DPoP (`dpop`) — tokens bound to a key; [`Client::send`] and [`Client::headers_for`] add
//!   a fresh proof for each request, and the request-independent [`Client::headers`] and
//!   [`Client::authorization`] refuse ([`ErrorKind::NeedsRequest`]). A federated client
//!   assertion (`client_assertion_file`) is read from its file for every fetch.
//! - [`Client::set_event_hook`] — redacted [`Event`]s for logs; [`Client::stats`] for metrics.
//! - [`Client::health`] — ok / degraded / failing from memory, for readiness probes.
//! - [`Client::diagnose`] — the setup walked check by check (configuration, DNS, TCP, proxy,
//!   TLS, clock, token request, token sanity, an optional API call), each failure with its
//!   cause and fix: a start-up self-test, and the `tokenward doctor` command.
//! - Named environments — `environments: {"prod": {…}, "sandbox": {…}}` in one
//!   configuration, chosen by `environment` or `TOKENWARD_ENVIRONMENT`.
//! - Fork safety — a client created before `fork()` keeps working in the child, and draws
//!   refresh points of its own.
//! - Fleets — with `shared_cache` (`redis://…`, `rediss://…` with the cargo feature `redis`,
//!   or `file:///dir` on one host) the processes of a service share one token per lifetime:
//!   misses and refresh points adopt the token another process fetched, one process fetches
//!   while the others wait, invalidations are shared, and a failing store never fails a call.
//!   Hits never touch the store. [`Stats::shared`] counts what it did.
//!
//! The C ABI (`include/tokenward.h`) exposes the same client to C, C++, .NET and Python.
//!
//! # Module map
//!
//! The source tree is layered; each layer imports only layers listed above it, so data flows
//! one way: the client asks the cache, runs the fetches it decides on through the OAuth
//! layer, which speaks HTTP. `unsafe` is allowed only in `sync`, `cache::clock`,
//! `store::file` (flock and the boot clock) and `ffi`.
//!
//! | module | what it holds |
//! |---|---|
//! | `error`, `secret`, `redact` | the one [`Error`]; secrets that never print and are wiped on drop; server text scrubbed and clipped before it is quoted |
//! | `sync/` | `std::sync` locks that can be held across `fork()`; the `pthread_atfork` hooks |
//! | `http/` | one HTTP exchange over rustls (`transport`) and its connections (`connector`), `WWW-Authenticate` challenges (`challenge`), TLS files (`tls`), trust roots and TLS configurations shared across clients (`trust`), failures as typed errors (`failure`), URL rules (`url`), the rules for caller headers (`headers`), backoff and `Retry-After` (`retry`), redirect targets by RFC 3986 (`location`), a socket-free test transport (`scripted`) |
//! | `oauth/` | tokens and token requests (`token`), client authentication (`credential`, `assertion`, `assertion_file`), DPoP keys, proofs and nonces (`dpop`), the token endpoint (`endpoint`), its responses (`response`), OpenID discovery |
//! | `store/` | the shared token stores a fleet of processes uses (`shared_cache`): Redis (feature `redis`) or a private directory (`file`), sealed entries named after the credential (`seal`), the redacted URL (`url`) |
//! | `config/` | the schema: [`Config`] (paths and typed enums, no transport objects), [`ConfigBuilder`], the JSON and environment sources, named environments, where each key came from, secrets and keys read at build time, the DPoP key, validation, typo hints |
//! | `cache/` | per-request slots, single flight, refresh-ahead, serve-stale (`mod`, `slot`), the lock-free hit path (`hit`), the coarse clock |
//! | `client/` | the [`Client`] façade, the fetch driver (`shared`), the fleet protocol over a shared store (`fleet`), [`Client::send`] and its parts (request types, rate limit, `WWW-Authenticate`, GraphQL, the rejection guard), [`Client::headers_for`] and [`Client::recover`] for other HTTP clients, events, [`Client::health`] |
//! | `diagnose/` | [`Client::diagnose`]: the configuration report, DNS/TCP/proxy, a recorded TLS handshake, discovery and the clock, the token request classified, token sanity, the API probe; [`TokenInfo`] |
//! | `ffi/` | the C ABI: tagged handles (`handle`), status codes, buffers, the panic boundary |

// `unsafe` is confined to `ffi`, `sync` (the fork hooks), `cache::clock` and `store::file`
// (flock, CLOCK_BOOTTIME), which allow it
// explicitly; the other layers forbid it.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(missing_docs)]
// Builds without `fork()` leave the fork hooks out, so the plumbing that hands them every
// lock is unused there: non-Unix targets (Windows), and the model-checking test build
// (`--cfg loom`, see `cache::loom_model`), since nothing forks in a model.
#![cfg_attr(any(all(loom, test), not(unix)), allow(dead_code))]

mod cache;
mod client;
mod config;
mod diagnose;
mod error;
mod http;
mod oauth;
mod redact;
mod secret;
mod store;
mod sync;

#[cfg(feature = "ffi")]
pub mod ffi;

pub use client::events::{Event, EventKind};
pub use client::{Client, Health, HealthState, Request, Response, SharedStats, Stats};
pub use config::{AuthMethod, Config, ConfigBuilder, DpopAlg, RateLimit, RefreshMode, RetryPolicy};
pub use diagnose::{Check, CheckStatus, DiagnoseOptions, Diagnosis, JwtClaims, TokenInfo};
pub use error::{Error, ErrorKind, Result};
pub use oauth::token::{AccessToken, TokenRequest};

// Process-wide TLS counters for tests that check when trust roots are read; not a stable API.
#[doc(hidden)]
pub use http::trust::{tls_counters, TlsCounters};
