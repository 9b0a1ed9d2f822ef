//! A mock OAuth 2.0 identity provider and protected API for tokenward's tests — in Rust,
//! C, Python and C# alike — and for its quick-start demo.
//!
//! ```no_run
//! use tokenward_mock::MockServer;
//!
//! let mock = MockServer::start(); // http://127.0.0.1:<free port>, client demo-client/demo-secret
//! mock.configure(serde_json::json!({ "ttl_secs": 5, "expires_in": "string" }));
//! mock.push_fault(serde_json::json!({ "target": "token", "status": 503, "retry_after": "1" }));
//! // ... point a client at mock.token_url() and mock.url() + "/api/items" ...
//! println!("{:?} {:?}", mock.stats(), mock.token_log());
//! ```
//!
//! What it does, in the order a test meets it:
//! - **Token endpoint** (`POST /oauth/token`, also `/connect/token`, `/oauth2/token`,
//!   `/token`): client credentials with `client_secret_post`, `client_secret_basic`, or
//!   signed client assertions (`private_key_jwt`, federated) checked against a registered
//!   RSA or P-256 public key;
//!   issues unsigned JWTs whose payload records the scope, audience and resource asked for
//!   ([`decode_claims`] reads it back). TTL, the shape of `expires_in`, `token_type` and
//!   the token format are configurable; `expiry: "wall_clock"` expires tokens at their
//!   whole-second `exp` by the wall clock, as real providers do.
//! - **API** (`/api/...`, `POST /graphql`): checks the bearer token against what the mock
//!   issued (not revoked, not expired on the mock's monotonic clock) and the required
//!   headers (`tenant-code`, `api-version`); special paths answer 403, always 401, or
//!   redirect.
//! - **DPoP** (RFC 9449, opt-in): proofs checked at the token endpoint and the API
//!   (signature, `htm`, `htu`, `iat`, `jti` replay, `ath`, key thumbprint), bound tokens
//!   with `cnf.jkt`, and server nonces.
//! - **Diagnosis aids**: a `Date` header on every answer, a configurable clock skew
//!   (`Date`, `iat`, `exp`), `Retry-After` as seconds or a date, in TLS mode an expired
//!   or not-yet-valid server certificate on demand, clients held to one way of presenting
//!   their secret (post or Basic), and `scopes_supported` in discovery.
//! - **Faults**: the next N token or API requests answer a status (with `Retry-After`),
//!   hang, close the connection, or send an oversized body; optional delays; a fault can
//!   wait for N successes first and last forever (every refresh after the first fails).
//! - **Inspection**: counters and a log of every request, over `/admin/...` or the methods
//!   of [`MockServer`].
//! - **Hostile servers** ([`hostile`]): a tiny raw HTTP/1.1 server whose every answer is
//!   bytes from a closure and which records requests exactly as received, for security
//!   tests (redirects across origins, malformed or endless answers).
//!
//! The full protocol, for test writers in every language, is `docs/mock.md`. Other
//! languages run the same server as a program (`examples/mock_idp.rs` calls
//! [`cli_main`]), which prints its base URL as its only line on stdout.
//!
//! Plumbing: std threads and sockets only — one thread per connection (at most 512),
//! HTTP/1.1 keep-alive, bounded heads (64 KiB) and bodies (32 MiB), chunked request bodies,
//! and rustls for the optional TLS mode. Loopback only.

mod admin;
mod api;
mod cli;
mod clock;
mod codec;
mod config;
mod connection;
mod dpop;
mod fault;
pub mod hostile;
mod jose;
mod request;
mod response;
mod router;
mod server;
mod state;
mod tls;
mod token;

use serde_json::Value;

pub use cli::{cli_main, cli_run};

/// Unix seconds as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7), the
/// form of the mock's `Date` and `Retry-After` headers.
pub fn http_date(unix_secs: u64) -> String {
    clock::http_date(unix_secs)
}
pub use router::TOKEN_PATHS;
pub use server::{MockOptions, MockServer};
pub use state::{MockStats, RecordedRequest};

/// The payload of a JWT (the mock's tokens, or any other JWT such as a client assertion),
/// base64url-decoded from the middle segment; `None` when `token` is not a JWT with a JSON
/// object payload (e.g. an opaque token).
pub fn decode_claims(token: &str) -> Option<Value> {
    let mut segments = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    let claims: Value = serde_json::from_slice(&codec::b64_decode(payload)?).ok()?;
    claims.is_object().then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_claims_reads_jwt_payloads_only() {
        let jwt = format!(
            "{}.{}.sig",
            codec::b64url_encode(b"{}"),
            codec::b64url_encode(br#"{"sub":"x"}"#)
        );
        assert_eq!(decode_claims(&jwt).unwrap()["sub"], "x");
        assert_eq!(decode_claims("opaque-1-abc"), None);
        assert_eq!(decode_claims("a.b"), None);
        assert_eq!(decode_claims("a.%%%.c"), None);
        let array = format!("a.{}.c", codec::b64url_encode(b"[1]"));
        assert_eq!(decode_claims(&array), None);
    }
}
