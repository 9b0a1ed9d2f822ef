//! Credentials and TLS material read from files (and the environment) at build time, so a
//! missing or malformed file is a configuration error, not a failure at first use.

use std::path::Path;

use super::{AuthMethod, ConfigBuilder, Credential, TlsMaterial};
use crate::oauth::SigningKey;
use crate::secret::Secret;

impl ConfigBuilder {
    pub(super) fn credential(
        &mut self,
        method: AuthMethod,
        has_client_cert: bool,
    ) -> Option<Credential> {
        let sources = [
            self.client_secret.is_some(),
            self.client_secret_file.is_some(),
            self.client_secret_env.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        match method {
            AuthMethod::ClientSecretPost | AuthMethod::ClientSecretBasic => {
                if sources > 1 {
                    self.problem(
                        "set only one of `client_secret`, `client_secret_file`, `client_secret_env`".into(),
                    );
                    return None;
                }
                let secret = if let Some(secret) = self.client_secret.take() {
                    secret
                } else if let Some(path) = self.client_secret_file.take() {
                    match read_secret_file(&path) {
                        Ok(s) => s,
                        Err(msg) => {
                            self.problem(msg);
                            return None;
                        }
                    }
                } else if let Some(name) = self.client_secret_env.take() {
                    match std::env::var(&name) {
                        Ok(v) => Secret::new(v),
                        Err(_) => {
                            self.problem(format!(
                                "`client_secret_env` names `{name}`, which is not set (or not UTF-8)"
                            ));
                            return None;
                        }
                    }
                } else {
                    self.problem(
                        "a client secret is required: set `client_secret`, `client_secret_file` or `client_secret_env`"
                            .into(),
                    );
                    return None;
                };
                if secret.is_empty() {
                    self.problem("the client secret is empty".into());
                    return None;
                }
                Some(Credential::Secret(secret))
            }
            AuthMethod::PrivateKeyJwt => {
                if sources > 0 {
                    self.problem(
                        "private_key_jwt uses `private_key_file`, not a client secret".into(),
                    );
                }
                let Some(path) = self.private_key_file.take() else {
                    self.problem("auth_method private_key_jwt needs `private_key_file`".into());
                    return None;
                };
                match SigningKey::from_pem_file(&path, self.private_key_id.take()) {
                    Ok(key) => Some(Credential::Key(std::sync::Arc::new(key))),
                    Err(msg) => {
                        self.problem(msg);
                        None
                    }
                }
            }
            AuthMethod::TlsClientAuth => {
                if sources > 0 {
                    self.problem("tls_client_auth authenticates with the client certificate; remove the client secret".into());
                }
                if !has_client_cert {
                    self.problem("auth_method tls_client_auth needs `tls.client_cert_file` and `tls.client_key_file`".into());
                    return None;
                }
                Some(Credential::Certificate)
            }
        }
    }

    pub(super) fn tls_material(&mut self) -> TlsMaterial {
        let mut tls = TlsMaterial::default();
        if let Some(path) = self.ca_file.take() {
            match read_pem(&path, "tls.ca_file") {
                Ok(items) => {
                    tls.extra_roots = items
                        .into_iter()
                        .filter_map(|item| match item {
                            ureq::tls::PemItem::Certificate(c) => Some(c),
                            _ => None,
                        })
                        .collect();
                    if tls.extra_roots.is_empty() {
                        self.problem(format!(
                            "`tls.ca_file` {} contains no PEM certificate",
                            path.display()
                        ));
                    }
                }
                Err(msg) => self.problem(msg),
            }
        }
        match (self.client_cert_file.take(), self.client_key_file.take()) {
            (None, None) => {}
            (Some(cert_path), Some(key_path)) => {
                let certs: Vec<_> = match read_pem(&cert_path, "tls.client_cert_file") {
                    Ok(items) => items
                        .into_iter()
                        .filter_map(|i| match i {
                            ureq::tls::PemItem::Certificate(c) => Some(c),
                            _ => None,
                        })
                        .collect(),
                    Err(msg) => {
                        self.problem(msg);
                        return tls;
                    }
                };
                let key = match read_pem(&key_path, "tls.client_key_file") {
                    Ok(items) => items.into_iter().find_map(|i| match i {
                        ureq::tls::PemItem::PrivateKey(k) => Some(k),
                        _ => None,
                    }),
                    Err(msg) => {
                        self.problem(msg);
                        return tls;
                    }
                };
                match (certs.is_empty(), key) {
                    (false, Some(key)) => {
                        tls.client_cert = Some(ureq::tls::ClientCert::new_with_certs(&certs, key))
                    }
                    (true, _) => {
                        self.problem("`tls.client_cert_file` contains no PEM certificate".into())
                    }
                    (_, None) => {
                        self.problem("`tls.client_key_file` contains no PEM private key".into())
                    }
                }
            }
            _ => self.problem(
                "set both `tls.client_cert_file` and `tls.client_key_file`, or neither".into(),
            ),
        }
        tls
    }
}

fn read_secret_file(path: &Path) -> std::result::Result<Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "`client_secret_file` {} cannot be read: {e}",
            path.display()
        )
    })?;
    let secret = Secret::new(text.trim_end_matches(['\r', '\n']));
    drop(zeroize::Zeroizing::new(text));
    Ok(secret)
}

fn read_pem(
    path: &Path,
    key: &str,
) -> std::result::Result<Vec<ureq::tls::PemItem<'static>>, String> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| format!("`{key}` {} cannot be read: {e}", path.display()))?,
    );
    ureq::tls::parse_pem(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("`{key}` {} is not valid PEM: {e}", path.display()))
}
