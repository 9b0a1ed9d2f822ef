//! Federated client assertions (RFC 7523 §2.2): a JWT that the platform — Kubernetes
//! projected service-account tokens, cloud workload identity — writes into a file and
//! rotates. The client sends it as its `client_assertion`, read anew for every token
//! request, and refuses to send one that has already expired.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT;
use base64::Engine as _;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

/// A file holding a client assertion; only its path is kept.
#[derive(Debug, Clone)]
pub(crate) struct AssertionFile {
    path: PathBuf,
}

impl AssertionFile {
    /// Check that the file can be read now (a missing file is a configuration error at
    /// build time); its contents are checked when they are used, because they rotate.
    pub(crate) fn open(path: PathBuf) -> std::result::Result<AssertionFile, String> {
        std::fs::metadata(&path)
            .and_then(|m| {
                if m.is_file() {
                    Ok(())
                } else {
                    Err(std::io::Error::other("not a regular file"))
                }
            })
            .map_err(|e| {
                format!(
                    "`client_assertion_file` {} cannot be read: {e}",
                    path.display()
                )
            })?;
        Ok(AssertionFile { path })
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The assertion in the file now. Errors ([`ErrorKind::Config`], naming the file, never
    /// quoting it): the file cannot be read, holds no JWT, its `exp` is missing or has passed.
    pub(crate) fn read(&self) -> Result<Secret> {
        let shown = self.path.display();
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(&self.path).map_err(|e| {
            config(format!(
                "The client assertion file `client_assertion_file` {shown} cannot be read: {e}."
            ))
            .with_source(e)
        })?);
        let assertion = Secret::new(text.trim());
        let exp = expiry(assertion.expose()).map_err(|why| {
            config(format!(
                "The client assertion file `client_assertion_file` {shown} {why}; it must hold \
                 one signed JWT (RFC 7523) with an `exp` claim."
            ))
        })?;
        // `exp` is wall-clock time by definition (RFC 7519 §4.1.4).
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if exp <= now {
            return Err(config(format!(
                "The client assertion in `client_assertion_file` {shown} expired {} s ago \
                 (`exp` {exp}); it was not sent. Check that the platform that writes this file \
                 (projected service-account token, workload identity agent) is rotating it, and \
                 that this machine's clock is right.",
                (now - exp).ceil()
            )));
        }
        Ok(assertion)
    }
}

fn config(message: String) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// The `exp` of a compact JWS, or why there is none. Only the payload is read: the
/// identity provider verifies the signature.
fn expiry(jwt: &str) -> std::result::Result<f64, &'static str> {
    if jwt.is_empty() {
        return Err("is empty");
    }
    let mut parts = jwt.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("does not hold a JWT (three dot-separated parts)");
    };
    let claims: Value = URL_SAFE_NO_PAD_INDIFFERENT
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(Value::is_object)
        .ok_or("holds a JWT whose payload is not a base64url JSON object")?;
    claims
        .get("exp")
        .and_then(Value::as_f64)
        .filter(|exp| exp.is_finite())
        .ok_or("holds a JWT without a numeric `exp` claim")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    fn file(name: &str, contents: &str) -> AssertionFile {
        let dir = std::env::temp_dir().join(format!("tokenward-assertion-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        AssertionFile::open(path).unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_valid_assertion_is_read_and_trimmed() {
        let assertion = jwt(&format!(r#"{{"sub":"x","exp":{}}}"#, now() + 600));
        let f = file("valid", &format!("{assertion}\n"));
        assert_eq!(f.read().unwrap().expose(), assertion);
    }

    #[test]
    fn expired_and_malformed_files_are_config_errors_naming_the_file() {
        let expired = jwt(&format!(r#"{{"exp":{}}}"#, now() - 30));
        let cases = [
            ("expired", expired.as_str(), "expired"),
            ("empty", "\n", "is empty"),
            ("opaque", "not-a-jwt", "three dot-separated"),
            ("payload", "a.!!!.c", "not a base64url JSON object"),
            ("no-exp", &jwt(r#"{"sub":"x"}"#), "without a numeric `exp`"),
        ];
        for (name, contents, why) in cases {
            let f = file(name, contents);
            let err = f.read().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{name}");
            assert!(err.message().contains(why), "{name}: {err}");
            assert!(
                err.message().contains(&f.path().display().to_string()),
                "{name}: {err}"
            );
            if contents.len() > 4 {
                assert!(!err.message().contains(contents.trim()), "{name}: {err}");
            }
        }
    }

    #[test]
    fn a_missing_file_is_refused_when_opened_and_when_read() {
        let f = file("vanishing", &jwt(&format!(r#"{{"exp":{}}}"#, now() + 60)));
        std::fs::remove_file(f.path()).unwrap();
        let err = f.read().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("cannot be read"), "{err}");
        let err = AssertionFile::open(f.path().to_path_buf()).unwrap_err();
        assert!(err.contains("cannot be read"), "{err}");
        let err = AssertionFile::open(std::env::temp_dir()).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
