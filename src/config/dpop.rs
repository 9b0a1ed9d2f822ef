//! The `dpop` setting: which key proves possession of DPoP-bound tokens (RFC 9449), and
//! with which algorithm. A key file is read at build time, so a missing or unusable key is a
//! configuration error; a generated key is made when a client is created.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::ConfigBuilder;
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{Error, Result};
use crate::oauth::dpop::{Dpop, DpopAlg, DpopKey};

/// What the builder recorded for `dpop`.
#[derive(Debug, Default)]
pub(super) struct DpopChoice {
    key_file: Option<PathBuf>,
    generate: Option<bool>,
    alg: Option<DpopAlg>,
}

/// The validated `dpop` setting of a [`super::Config`].
#[derive(Clone)]
pub(crate) enum DpopSetting {
    /// A key read from `dpop.key_file`, shared by every client built from the config.
    Key(Arc<DpopKey>),
    /// `dpop.generate`: each client makes its own P-256 key, kept in memory only.
    Generate,
}

impl DpopSetting {
    /// A client's DPoP state: the key (read with the configuration, or generated now) and an
    /// empty nonce memory. Errors: [`ErrorKind::Config`] when no key can be generated.
    pub(crate) fn start(&self) -> Result<Arc<Dpop>> {
        let key = match self {
            DpopSetting::Key(key) => Arc::clone(key),
            DpopSetting::Generate => Arc::new(DpopKey::generate().map_err(|why| {
                Error::config(format!("configuration rejected: `dpop.generate`: {why}."))
            })?),
        };
        Ok(Arc::new(Dpop::new(key)))
    }
}

impl std::fmt::Debug for DpopSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DpopSetting::Key(key) => write!(
                f,
                "key_file({}, thumbprint {})",
                key.alg().as_str(),
                key.thumbprint()
            ),
            DpopSetting::Generate => f.write_str("generate(ES256)"),
        }
    }
}

impl ConfigBuilder {
    fn dpop_choice(&mut self) -> &mut DpopChoice {
        self.dpop.get_or_insert_with(DpopChoice::default)
    }

    /// Use DPoP with the PEM private key (PKCS#8 P-256 or RSA, or PKCS#1 RSA) in this file.
    pub fn dpop_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.dpop_choice().key_file = Some(path.into());
        self
    }

    /// Use DPoP with a P-256 key generated when the client is created and kept in memory
    /// only (every client, and every process, has its own).
    pub fn dpop_generate(mut self) -> Self {
        self.dpop_choice().generate = Some(true);
        self
    }

    /// The DPoP proof algorithm: ES256 (the default; P-256 keys), or PS256 or RS256 for an
    /// RSA key (RS256 is the default for RSA keys). Only meaningful with a DPoP key.
    pub fn dpop_alg(mut self, alg: DpopAlg) -> Self {
        self.dpop_choice().alg = Some(alg);
        self
    }

    /// `dpop.alg` as the text sources spell it.
    pub(super) fn dpop_alg_text(&mut self, key: &str, text: &str) {
        match DpopAlg::parse(text) {
            Some(alg) => self.dpop_choice().alg = Some(alg),
            None => self.problem(format!(
                "`{key}` `{text}` is not one of ES256, PS256, RS256"
            )),
        }
    }

    /// `dpop.key_file` as the text sources give it.
    pub(super) fn dpop_key_file_text(&mut self, path: String) {
        self.dpop_choice().key_file = Some(PathBuf::from(path));
    }

    /// `dpop.generate` as the text sources give it.
    pub(super) fn dpop_generate_flag(&mut self, generate: bool) {
        self.dpop_choice().generate = Some(generate);
    }

    /// The JSON `dpop` object: `{"key_file": PATH}` or `{"generate": true}`, and `alg`.
    pub(super) fn dpop_json(&mut self, value: Value) {
        if value.is_null() {
            return;
        }
        if !value.is_object() {
            self.problem(
                "`dpop` must be an object: {\"key_file\": PATH} or {\"generate\": true}, with an optional \"alg\"".into(),
            );
            return;
        }
        self.dpop_choice();
        for (sub, v) in self.json_object("dpop", value, &["key_file", "generate", "alg"]) {
            let key = format!("dpop.{sub}");
            match sub.as_str() {
                "key_file" => {
                    if let Some(path) = self.json_string(&key, &v) {
                        self.dpop_key_file_text(path);
                    }
                }
                "generate" => {
                    if !v.is_null() {
                        let flag = self.json_bool(&key, &v);
                        self.dpop_generate_flag(flag);
                    }
                }
                _ => {
                    if let Some(alg) = self.json_string(&key, &v) {
                        self.dpop_alg_text(&key, &alg);
                    }
                }
            }
        }
    }

    /// Validate the recorded `dpop` choice; a key file is read now.
    pub(super) fn dpop_setting(&mut self) -> Option<DpopSetting> {
        let choice = self.dpop.take()?;
        match (choice.key_file, choice.generate.unwrap_or(false)) {
            (Some(_), true) => {
                self.problem("set either `dpop.key_file` or `dpop.generate`, not both".into());
                None
            }
            (Some(path), false) => match DpopKey::from_pem_file(&path, choice.alg) {
                Ok(key) => Some(DpopSetting::Key(Arc::new(key))),
                Err(message) => {
                    self.problem(message);
                    None
                }
            },
            (None, true) => match choice.alg {
                None | Some(DpopAlg::Es256) => Some(DpopSetting::Generate),
                Some(alg) => {
                    self.problem(format!(
                        "`dpop.generate` makes a P-256 key, which signs ES256 only; for {} put an \
                         RSA key in `dpop.key_file`",
                        alg.as_str()
                    ));
                    None
                }
            },
            (None, false) => {
                self.problem(
                    "`dpop` needs a key: `dpop.key_file` (a PEM P-256 or RSA private key) or \
                     `dpop.generate: true`"
                        .into(),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{AuthMethod, Config, DpopAlg};
    use crate::error::ErrorKind;

    const BASE: &str = r#""token_url":"https://idp.example.com/oauth/token","client_id":"c""#;

    fn json(extra: &str) -> crate::error::Result<Config> {
        Config::from_json(&format!("{{{BASE},{extra}}}"))
    }

    fn problem(extra: &str) -> String {
        let err = json(extra).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        err.message().to_string()
    }

    fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tokenward-dpop-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn p256_pem() -> String {
        use base64::Engine as _;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        let body = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    }

    fn quoted(path: &Path) -> String {
        serde_json::to_string(&path.display().to_string()).unwrap()
    }

    #[test]
    fn dpop_generate_and_key_file_from_json() {
        let c = json(r#""client_secret":"s","dpop":{"generate":true}"#).unwrap();
        assert!(matches!(c.dpop, Some(super::DpopSetting::Generate)));
        assert!(format!("{c:?}").contains("generate(ES256)"));
        let key = temp_file("p256.pem", p256_pem().as_bytes());
        let c = json(&format!(
            r#""client_secret":"s","dpop":{{"key_file":{},"alg":"ES256"}}"#,
            quoted(&key)
        ))
        .unwrap();
        let Some(super::DpopSetting::Key(k)) = &c.dpop else {
            panic!("a key file setting")
        };
        assert_eq!(k.alg(), DpopAlg::Es256);
        assert!(format!("{c:?}").contains(k.thumbprint()));
        assert!(json(r#""client_secret":"s","dpop":null"#)
            .unwrap()
            .dpop
            .is_none());
    }

    #[test]
    fn dpop_problems_are_named() {
        let m = problem(r#""client_secret":"s","dpop":{}"#);
        assert!(m.contains("`dpop` needs a key"), "{m}");
        let m = problem(r#""client_secret":"s","dpop":{"generate":false}"#);
        assert!(m.contains("`dpop` needs a key"), "{m}");
        let m = problem(r#""client_secret":"s","dpop":true"#);
        assert!(m.contains("`dpop` must be an object"), "{m}");
        let m = problem(r#""client_secret":"s","dpop":{"generate":true,"alg":"HS256"}"#);
        assert!(m.contains("`dpop.alg` `HS256` is not one of"), "{m}");
        let m = problem(r#""client_secret":"s","dpop":{"generate":true,"alg":"PS256"}"#);
        assert!(m.contains("signs ES256 only"), "{m}");
        let m = problem(r#""client_secret":"s","dpop":{"generate":true,"key_file":"/k"}"#);
        assert!(m.contains("not both"), "{m}");
        let m = problem(r#""client_secret":"s","dpop":{"genrate":true}"#);
        assert!(
            m.contains("unknown configuration key `dpop.genrate` (did you mean `generate`?)"),
            "{m}"
        );
        let m = problem(r#""client_secret":"s","dpop":{"key_file":"/no/such/key.pem"}"#);
        assert!(
            m.contains("`dpop.key_file` /no/such/key.pem cannot be read"),
            "{m}"
        );
        let not_pem = temp_file("not.pem", b"hello");
        let m = problem(&format!(
            r#""client_secret":"s","dpop":{{"key_file":{}}}"#,
            quoted(&not_pem)
        ));
        assert!(m.contains("contains no PEM private key"), "{m}");
        let key = temp_file("p256-rsa-alg.pem", p256_pem().as_bytes());
        let m = problem(&format!(
            r#""client_secret":"s","dpop":{{"key_file":{},"alg":"RS256"}}"#,
            quoted(&key)
        ));
        assert!(m.contains("needs an RSA key"), "{m}");
        assert!(!m.contains("PRIVATE KEY"), "{m}");
    }

    #[test]
    fn dpop_from_the_builder_and_the_environment() {
        let c = Config::builder()
            .token_url("https://idp.example.com/t")
            .client_id("c")
            .client_secret("s")
            .dpop_generate()
            .build()
            .unwrap();
        assert!(c.dpop.is_some());
        let key = temp_file("env.pem", p256_pem().as_bytes());
        let key_text = key.display().to_string();
        let vars = [
            ("T_TOKEN_URL", "https://idp.example.com/t"),
            ("T_CLIENT_ID", "c"),
            ("T_CLIENT_SECRET", "s"),
            ("T_DPOP_KEY_FILE", key_text.as_str()),
            ("T_DPOP_ALG", "ES256"),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        };
        let c = Config::from_vars("T_", lookup).unwrap();
        assert!(matches!(c.dpop, Some(super::DpopSetting::Key(_))));
        let c = Config::from_vars("T_", |name| match name {
            "T_DPOP_GENERATE" => Some("yes".into()),
            _ => lookup(name).filter(|_| !name.starts_with("T_DPOP")),
        })
        .unwrap();
        assert!(matches!(c.dpop, Some(super::DpopSetting::Generate)));
        let e = Config::from_vars("T_", |name| match name {
            "T_DPOP_GENERATE" => Some("maybe".into()),
            _ => lookup(name).filter(|_| !name.starts_with("T_DPOP")),
        })
        .unwrap_err();
        assert!(
            e.message()
                .contains("T_DPOP_GENERATE must be true or false"),
            "{e}"
        );
    }

    #[test]
    fn client_assertion_file_is_its_own_auth_method() {
        let file = temp_file("assertion.jwt", b"a.b.c");
        let c = json(&format!(r#""client_assertion_file":{}"#, quoted(&file))).unwrap();
        assert_eq!(
            c.auth_method,
            AuthMethod::ClientAssertionFile,
            "inferred from the file"
        );
        let c = json(&format!(
            r#""auth_method":"client_assertion_file","client_assertion_file":{}"#,
            quoted(&file)
        ))
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientAssertionFile);
        let m = problem(r#""auth_method":"client_assertion_file""#);
        assert!(m.contains("needs `client_assertion_file`"), "{m}");
        let m = problem(&format!(
            r#""client_secret":"s","client_assertion_file":{}"#,
            quoted(&file)
        ));
        assert!(m.contains("remove the client secret"), "{m}");
        let m = problem(&format!(
            r#""auth_method":"client_secret_post","client_secret":"s","client_assertion_file":{}"#,
            quoted(&file)
        ));
        assert!(
            m.contains("used only with auth_method client_assertion_file"),
            "{m}"
        );
        let m = problem(r#""client_assertion_file":"/no/such/assertion""#);
        assert!(
            m.contains("`client_assertion_file` /no/such/assertion cannot be read"),
            "{m}"
        );
        let path = file.display().to_string();
        let c = Config::from_vars("T_", |name| match name {
            "T_TOKEN_URL" => Some("https://idp.example.com/t".into()),
            "T_CLIENT_ID" => Some("c".into()),
            "T_CLIENT_ASSERTION_FILE" => Some(path.clone()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientAssertionFile);
        let c = Config::builder()
            .token_url("https://idp.example.com/t")
            .client_id("c")
            .client_assertion_file(&file)
            .build()
            .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientAssertionFile);
    }
}
