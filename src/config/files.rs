//! Credentials read from files (and the environment) at build time, so a missing or
//! malformed file is a configuration error, not a failure at first use.

use std::path::Path;

use super::{AuthMethod, ConfigBuilder, Credential};
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
                        Ok(s) => {
                            self.warn_if_exposed(&path, "client_secret_file");
                            s
                        }
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
                    Ok(key) => {
                        self.warn_if_exposed(&path, "private_key_file");
                        Some(Credential::Key(std::sync::Arc::new(key)))
                    }
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
}

impl ConfigBuilder {
    /// Note a credential file that group or others may read. A warning, not a refusal:
    /// Kubernetes mounts secrets 0644 unless told otherwise, and the file is in use there.
    fn warn_if_exposed(&mut self, path: &Path, key: &str) {
        if let Some(mode) = exposed_mode(path) {
            self.warnings.push(format!(
                "`{key}` {} is readable by {} (mode {mode:04o}); restrict it to its owner \
                 (chmod 600, or defaultMode 0400 for a Kubernetes secret volume).",
                path.display(),
                match (mode & 0o040 != 0, mode & 0o004 != 0) {
                    (true, true) => "group and others",
                    (true, false) => "its group",
                    _ => "others",
                }
            ));
        }
    }
}

/// The permission bits of `path` when group or others may read it (Unix only).
#[cfg(unix)]
fn exposed_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o044 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn exposed_mode(_path: &Path) -> Option<u32> {
    None
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
