//! Named environments: one configuration holding, say, `dev`, `test`, `sandbox` and `prod`,
//! each with its own endpoints, and a name choosing one.
//!
//! - JSON: `environments: {"<name>": {…any keys…}}` is merged over the base as a JSON Merge
//!   Patch (RFC 7396: objects such as `headers` or `tls` merge key by key, `null` removes a
//!   key, anything else replaces it). The name comes from the `environment` key, else from
//!   the `{prefix}ENVIRONMENT` variable; with neither, the base alone is used.
//! - Environment variables: `{prefix}ENVIRONMENT=<name>` makes every `{prefix}<NAME>_<VAR>`
//!   take precedence over `{prefix}<VAR>` (`<NAME>` upper-cased, `-` and `.` as `_`), e.g.
//!   `TOKENWARD_ENVIRONMENT=sandbox` with `TOKENWARD_SANDBOX_TOKEN_URL`.
//!
//! A name that is not defined is an error listing the names that are.

use serde_json::value::RawValue;

use super::json::ordered_object;
use super::sources::{KeySource, VAR_NAMES};
use super::ConfigBuilder;

/// Ordered JSON object members, values left unparsed.
pub(super) type Entries = Vec<(String, Box<RawValue>)>;

/// The configuration to apply once an environment is chosen.
pub(super) struct Selected {
    pub(super) entries: Entries,
    /// The chosen environment, if one was.
    pub(super) name: Option<String>,
    /// The top-level keys the chosen environment set or removed.
    pub(super) overridden: Vec<String>,
}

/// Take `environment` and `environments` out of `entries` and merge the chosen environment
/// over the rest. `fallback` is the `{prefix}ENVIRONMENT` variable's value, if set.
pub(super) fn select_json(
    mut entries: Entries,
    fallback: Option<String>,
) -> Result<Selected, String> {
    let take = |entries: &mut Entries, key: &str| {
        let at = entries.iter().position(|(k, _)| k == key)?;
        Some(entries.remove(at).1)
    };
    let named = take(&mut entries, "environment");
    let defined = take(&mut entries, "environments");
    let named = match named {
        None => None,
        Some(raw) => match serde_json::from_str::<serde_json::Value>(raw.get()) {
            Ok(serde_json::Value::String(name)) => Some(name),
            Ok(serde_json::Value::Null) => None,
            _ => return Err("`environment` must be a string naming one of `environments`".into()),
        },
    };
    let environments = match defined {
        None => Vec::new(),
        Some(raw) if raw.get().trim() == "null" => Vec::new(),
        Some(raw) => ordered_object(raw.get())
            .map_err(|_| "`environments` must be an object of objects".to_string())?,
    };
    for (name, env) in &environments {
        if name.trim().is_empty() {
            return Err("`environments` has an entry with an empty name".into());
        }
        if !is_object(env) {
            return Err(format!("`environments.{name}` must be an object"));
        }
    }
    // The variable only chooses among environments the document defines: without any, it
    // belongs to some other configuration and is left alone.
    let name = match named {
        Some(name) => Some(name),
        None if !environments.is_empty() => fallback.filter(|n| !n.trim().is_empty()),
        None => None,
    };
    let Some(name) = name else {
        return Ok(Selected {
            entries,
            name: None,
            overridden: Vec::new(),
        });
    };
    let Some((_, patch)) = environments.iter().find(|(n, _)| *n == name) else {
        return Err(unknown(
            &name,
            environments.iter().map(|(n, _)| n.as_str()),
            "in `environments`",
        ));
    };
    let patch = ordered_object(patch.get())
        .map_err(|_| format!("`environments.{name}` must be an object"))?;
    if let Some((key, _)) = patch
        .iter()
        .find(|(k, _)| k == "environment" || k == "environments")
    {
        return Err(format!(
            "`environments.{name}.{key}`: environments cannot be nested"
        ));
    }
    let overridden = patch.iter().map(|(k, _)| k.clone()).collect();
    let entries = merge(entries, patch).map_err(|e| format!("`environments.{name}`: {e}"))?;
    Ok(Selected {
        entries,
        name: Some(name),
        overridden,
    })
}

impl ConfigBuilder {
    /// Record the chosen environment and the keys it set (after `apply_json`).
    pub(super) fn note_environment(&mut self, name: Option<String>, overridden: &[String]) {
        if let Some(name) = &name {
            for key in overridden {
                self.sources
                    .record(key, KeySource::Environment(name.clone()));
            }
        }
        self.environment = name;
    }
}

fn unknown<'a>(name: &str, known: impl Iterator<Item = &'a str>, place: &str) -> String {
    let mut known: Vec<&str> = known.collect();
    known.sort_unstable();
    known.dedup();
    if known.is_empty() {
        format!("environment `{name}` is not defined: no environments are defined {place}")
    } else {
        format!(
            "environment `{name}` is not defined {place}; known environments: {}",
            known.join(", ")
        )
    }
}

fn is_object(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with('{')
}

/// RFC 7396 JSON Merge Patch on ordered members: the base keeps its order, new keys follow
/// in the patch's order (header order is what the API receives).
fn merge(mut base: Entries, patch: Entries) -> serde_json::Result<Entries> {
    for (key, value) in patch {
        let at = base.iter().position(|(k, _)| *k == key);
        if value.get().trim() == "null" {
            if let Some(at) = at {
                base.remove(at);
            }
            continue;
        }
        match at {
            Some(at) if is_object(&base[at].1) && is_object(&value) => {
                let merged = merge(
                    ordered_object(base[at].1.get())?,
                    ordered_object(value.get())?,
                )?;
                base[at].1 = to_raw(&merged)?;
            }
            Some(at) => base[at].1 = value,
            None => base.push((key, value)),
        }
    }
    Ok(base)
}

fn to_raw(entries: &Entries) -> serde_json::Result<Box<RawValue>> {
    let mut text = String::from("{");
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(key)?);
        text.push(':');
        text.push_str(value.get());
    }
    text.push('}');
    RawValue::from_string(text)
}

/// The environment-variable form: which prefixes to look under, most specific first.
pub(super) struct EnvOverlay {
    /// `{prefix}<NAME>_` when an environment is chosen.
    pub(super) specific: Option<String>,
    pub(super) name: Option<String>,
}

impl EnvOverlay {
    /// Read `{prefix}ENVIRONMENT`; `names` lists the variables that exist, to check that the
    /// chosen environment has any and to list the ones that do.
    pub(super) fn new(
        prefix: &str,
        var: &dyn Fn(&str) -> Option<String>,
        names: &dyn Fn() -> Vec<String>,
    ) -> Result<EnvOverlay, String> {
        let Some(name) = var(&format!("{prefix}ENVIRONMENT")).filter(|n| !n.trim().is_empty())
        else {
            return Ok(EnvOverlay {
                specific: None,
                name: None,
            });
        };
        let specific = format!("{prefix}{}_", var_segment(&name));
        if !VAR_NAMES
            .iter()
            .any(|v| var(&format!("{specific}{v}")).is_some_and(|value| !value.is_empty()))
        {
            let known = env_names(prefix, &names());
            return Err(unknown(
                &name,
                known.iter().map(String::as_str),
                &format!("(no {specific}TOKEN_URL, {specific}CLIENT_ID, … variable is set)"),
            ));
        }
        Ok(EnvOverlay {
            specific: Some(specific),
            name: Some(name),
        })
    }
}

/// An environment name as it appears inside variable names.
fn var_segment(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            '-' | '.' | ' ' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// The environments that variables `{prefix}<NAME>_<VAR>` define, lower-cased.
fn env_names(prefix: &str, names: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for full in names {
        let Some(rest) = full.strip_prefix(prefix) else {
            continue;
        };
        if VAR_NAMES.contains(&rest) || rest == "ENVIRONMENT" {
            continue;
        }
        // The longest variable suffix wins: `STAGING_API_BASE_URL` is STAGING + API_BASE_URL.
        let env = VAR_NAMES
            .iter()
            .filter_map(|v| rest.strip_suffix(v)?.strip_suffix('_'))
            .filter(|env| !env.is_empty())
            .min_by_key(|env| env.len());
        if let Some(env) = env {
            let env = env.to_ascii_lowercase();
            if !found.contains(&env) {
                found.push(env);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Entries {
        ordered_object(text).unwrap()
    }

    fn text(entries: &Entries) -> String {
        to_raw(entries).unwrap().get().to_string()
    }

    #[test]
    fn merge_patch_keeps_order_merges_objects_and_removes_nulls() {
        let base = entries(r#"{"a":1,"headers":{"x":"1","y":"2"},"b":[1],"c":true}"#);
        let patch = entries(r#"{"headers":{"y":"3","z":"4"},"b":[2],"c":null,"d":"new"}"#);
        let merged = merge(base, patch).unwrap();
        assert_eq!(
            text(&merged),
            r#"{"a":1,"headers":{"x":"1","y":"3","z":"4"},"b":[2],"d":"new"}"#
        );
    }

    #[test]
    fn the_key_wins_over_the_variable_and_unknown_names_list_the_known_ones() {
        let doc = r#"{"token_url":"https://base/t","environment":"b",
                      "environments":{"a":{"token_url":"https://a/t"},"b":{"token_url":"https://b/t"}}}"#;
        let s = select_json(entries(doc), Some("a".into())).unwrap();
        assert_eq!(s.name.as_deref(), Some("b"));
        assert_eq!(s.overridden, ["token_url"]);
        assert_eq!(text(&s.entries), r#"{"token_url":"https://b/t"}"#);

        let doc = r#"{"token_url":"https://base/t",
                      "environments":{"prod":{},"dev":{"token_url":"https://a/t"}}}"#;
        let s = select_json(entries(doc), Some("dev".into())).unwrap();
        assert_eq!(text(&s.entries), r#"{"token_url":"https://a/t"}"#);
        let s = select_json(entries(doc), None).unwrap();
        assert_eq!(
            (s.name, text(&s.entries).as_str()),
            (None, r#"{"token_url":"https://base/t"}"#)
        );
        let e = select_json(entries(doc), Some("stage".into()))
            .err()
            .unwrap();
        assert!(e.contains("`stage` is not defined"), "{e}");
        assert!(e.contains("known environments: dev, prod"), "{e}");
    }

    #[test]
    fn malformed_environments_are_explained() {
        for (doc, expect) in [
            (r#"{"environments":[1]}"#, "must be an object of objects"),
            (
                r#"{"environments":{"a":1}}"#,
                "`environments.a` must be an object",
            ),
            (r#"{"environment":3}"#, "`environment` must be a string"),
            (r#"{"environment":"x"}"#, "no environments are defined"),
            (
                r#"{"environment":"a","environments":{"a":{"environment":"b"}}}"#,
                "cannot be nested",
            ),
        ] {
            let e = select_json(entries(doc), None).err().unwrap();
            assert!(e.contains(expect), "{doc}: {e}");
        }
        // Without `environments`, the variable is somebody else's: ignored.
        let s = select_json(entries(r#"{"a":1}"#), Some("prod".into())).unwrap();
        assert_eq!(s.name, None);
    }

    #[test]
    fn variable_environments_are_found_by_their_variables() {
        let vars = [
            "API_ENVIRONMENT",
            "API_CLIENT_ID",
            "API_BASE_URL",
            "API_SANDBOX_TOKEN_URL",
            "API_SANDBOX_API_BASE_URL",
            "API_PROD_CLIENT_SECRET_FILE",
            "OTHER_DEV_TOKEN_URL",
        ];
        let names: Vec<String> = vars.iter().map(|s| s.to_string()).collect();
        assert_eq!(env_names("API_", &names), ["sandbox", "prod"]);
        assert_eq!(var_segment("us-east.prod"), "US_EAST_PROD");
        let var = |n: &str| (n == "API_ENVIRONMENT").then(|| "staging".to_string());
        let e = EnvOverlay::new("API_", &var, &|| names.clone())
            .err()
            .unwrap();
        assert!(e.contains("known environments: prod, sandbox"), "{e}");
        let var = |n: &str| match n {
            "API_ENVIRONMENT" => Some("sandbox".to_string()),
            "API_SANDBOX_TOKEN_URL" => Some("https://sandbox/t".to_string()),
            _ => None,
        };
        let overlay = EnvOverlay::new("API_", &var, &Vec::new).unwrap();
        assert_eq!(overlay.specific.as_deref(), Some("API_SANDBOX_"));
    }

    mod config {
        use crate::config::sources::KeySource;
        use crate::config::{Config, TokenLocation};
        use crate::ErrorKind;

        const DOC: &str = r#"{
            "client_id": "svc", "client_secret": "s", "scope": "EventsApi",
            "headers": {"tenant-code": "T1", "api-version": "2"},
            "token_url": "https://idp.example.com/connect/token",
            "environments": {
                "sandbox": {"token_url": "https://sandbox.example.com/connect/token",
                            "headers": {"tenant-code": "SANDBOX"}},
                "prod": {"client_secret": null, "client_secret_env": "PROD_SECRET_NOT_SET"}
            }
        }"#;

        fn url(c: &Config) -> &str {
            match &c.location {
                TokenLocation::Url(u) => u,
                TokenLocation::Issuer(u) => u,
            }
        }

        #[test]
        fn json_environments_merge_over_the_base() {
            let none = |_: &str| None;
            let base = Config::from_json_with(DOC, "TOKENWARD_", &none).unwrap();
            assert_eq!(base.environment(), None);
            assert_eq!(url(&base), "https://idp.example.com/connect/token");

            let chosen = DOC.replacen('{', r#"{"environment":"sandbox","#, 1);
            let c = Config::from_json_with(&chosen, "TOKENWARD_", &none).unwrap();
            assert_eq!(c.environment(), Some("sandbox"));
            assert_eq!(url(&c), "https://sandbox.example.com/connect/token");
            assert_eq!(
                c.headers,
                [
                    ("tenant-code".into(), "SANDBOX".into()),
                    ("api-version".into(), "2".into())
                ]
            );
            assert_eq!(
                c.sources.get("token_url"),
                Some(&KeySource::Environment("sandbox".into()))
            );
            assert_eq!(c.sources.get("client_id"), Some(&KeySource::Json));

            let by_var = |n: &str| (n == "API_ENVIRONMENT").then(|| "sandbox".to_string());
            let c = Config::from_json_with(DOC, "API_", &by_var).unwrap();
            assert_eq!(c.environment(), Some("sandbox"));

            // `null` removed the base secret; the environment's own source is then checked.
            let prod = |n: &str| (n == "TOKENWARD_ENVIRONMENT").then(|| "prod".to_string());
            let e = Config::from_json_with(DOC, "TOKENWARD_", &prod).unwrap_err();
            assert!(e.message().contains("PROD_SECRET_NOT_SET"), "{e}");

            let typo = |n: &str| (n == "TOKENWARD_ENVIRONMENT").then(|| "sandbx".to_string());
            let e = Config::from_json_with(DOC, "TOKENWARD_", &typo).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(
                e.message().contains("known environments: prod, sandbox"),
                "{e}"
            );
            let e = Config::from_json(r#"{"enviroment":"x"}"#).unwrap_err();
            assert!(e.message().contains("did you mean `environment`"), "{e}");
        }

        fn from(vars: &[(&str, &str)], prefix: &str) -> crate::Result<Config> {
            let var = |n: &str| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            };
            let names = || vars.iter().map(|(k, _)| k.to_string()).collect();
            Config::from_vars_listed(prefix, &var, &names)
        }

        #[test]
        fn variable_environments_take_precedence_and_record_their_source() {
            let vars = [
                ("TOKENWARD_ENVIRONMENT", "sandbox"),
                ("TOKENWARD_TOKEN_URL", "https://idp.example.com/t"),
                ("TOKENWARD_CLIENT_ID", "svc"),
                ("TOKENWARD_CLIENT_SECRET", "s"),
                (
                    "TOKENWARD_SANDBOX_TOKEN_URL",
                    "https://sandbox.example.com/t",
                ),
                ("TOKENWARD_PROD_TOKEN_URL", "https://prod.example.com/t"),
            ];
            let c = from(&vars, "TOKENWARD_").unwrap();
            assert_eq!(c.environment(), Some("sandbox"));
            assert_eq!(url(&c), "https://sandbox.example.com/t");
            assert_eq!(
                c.sources.get("token_url"),
                Some(&KeySource::Var("TOKENWARD_SANDBOX_TOKEN_URL".into()))
            );
            assert_eq!(
                c.sources.get("client_id"),
                Some(&KeySource::Var("TOKENWARD_CLIENT_ID".into()))
            );
            let mut typo = vars;
            typo[0].1 = "sandbx";
            let e = from(&typo, "TOKENWARD_").unwrap_err();
            assert!(
                e.message().contains("known environments: prod, sandbox"),
                "{e}"
            );
        }

        #[test]
        fn the_cognito_env_file_works_unchanged_with_the_api_prefix() {
            let vars = [
                ("API_CLIENT_ID", "4lr1d6m9example"),
                ("API_CLIENT_SECRET", "cognito-secret"),
                ("API_SCOPE", "https://api.example.com/read"),
                ("API_BASE_URL", "https://api.example.com"),
                (
                    "AUTH_URL",
                    "https://my-pool.auth.eu-west-1.amazoncognito.com/oauth2/token",
                ),
            ];
            let c = from(&vars, "API_").unwrap();
            assert_eq!(url(&c), vars[4].1);
            assert_eq!(c.client_id, "4lr1d6m9example");
            assert_eq!(c.request.scope_param().as_deref(), Some(vars[2].1));
            assert_eq!(c.api_origins[0].host, "api.example.com");
            assert_eq!(
                c.sources.get("token_url"),
                Some(&KeySource::Var("AUTH_URL".into()))
            );
            // A prefixed name wins over the bare one; other prefixes never read it.
            let mut both = vars.to_vec();
            both.push(("API_TOKEN_URL", "https://idp.example.com/oauth2/token"));
            assert_eq!(
                url(&from(&both, "API_").unwrap()),
                "https://idp.example.com/oauth2/token"
            );
            let renamed: Vec<(String, &str)> = vars
                .iter()
                .map(|(k, v)| (k.replacen("API_", "SVC_", 1), *v))
                .collect();
            let renamed: Vec<(&str, &str)> =
                renamed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let e = from(&renamed, "SVC_").unwrap_err();
            assert!(
                e.message()
                    .contains("`token_url` (or `issuer` for discovery) is required"),
                "{e}"
            );
        }
    }
}
