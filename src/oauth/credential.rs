//! How the client proves its identity to the token endpoint (RFC 6749 §2.3, RFC 7523,
//! RFC 8705).

use std::sync::Arc;

use super::assertion_file::AssertionFile;
use super::SigningKey;
use crate::secret::Secret;

/// How the client authenticates to the token endpoint (RFC 6749 §2.3, RFC 7523, RFC 8705).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `client_id` and `client_secret` in the form body (the default).
    ClientSecretPost,
    /// HTTP Basic with the form-urlencoded id and secret.
    ClientSecretBasic,
    /// A signed JWT assertion (RS256 or ES256) made with `private_key_file`.
    PrivateKeyJwt,
    /// Mutual TLS with `tls.client_cert_file` / `tls.client_key_file`; no secret.
    TlsClientAuth,
    /// A client assertion someone else signs (RFC 7523 §2.2): the JWT in
    /// `client_assertion_file`, which a platform such as Kubernetes or a cloud's workload
    /// identity writes and rotates. Read anew for every token request; an expired one is
    /// refused before anything is sent.
    ClientAssertionFile,
}

impl AuthMethod {
    pub(crate) fn parse(s: &str) -> Option<AuthMethod> {
        Some(match s {
            "client_secret_post" => AuthMethod::ClientSecretPost,
            "client_secret_basic" => AuthMethod::ClientSecretBasic,
            "private_key_jwt" => AuthMethod::PrivateKeyJwt,
            "tls_client_auth" => AuthMethod::TlsClientAuth,
            "client_assertion_file" => AuthMethod::ClientAssertionFile,
            _ => return None,
        })
    }
}

/// How the client proves its identity, with what it needs to do so.
#[derive(Clone)]
pub(crate) enum Credential {
    Secret(Secret),
    Key(Arc<SigningKey>),
    Certificate,
    AssertionFile(AssertionFile),
}
