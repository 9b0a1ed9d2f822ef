//! Unit tests of validation, sources and hints.

use super::*;

const BASE: &str =
    r#""token_url":"https://idp.example.com/oauth/token","client_id":"c","client_secret":"s""#;

fn json(extra: &str) -> Result<Config> {
    let sep = if extra.is_empty() { "" } else { "," };
    Config::from_json(&format!("{{{BASE}{sep}{extra}}}"))
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = json("").unwrap();
    assert_eq!(c.auth_method, AuthMethod::ClientSecretPost);
    assert_eq!(c.refresh_before, Duration::from_secs(300));
    assert_eq!(c.default_lifetime, Duration::from_secs(3600));
    assert_eq!(c.error_cooldown, Duration::from_secs(5));
    assert_eq!(c.refresh_mode, RefreshMode::Background);
    assert_eq!(c.retry.max_attempts, 3);
}

#[test]
fn unknown_key_is_named_with_a_hint() {
    let e = Config::from_json(r#"{"token_url":"https://i/t","client_id":"c","client_secert":"s"}"#)
        .unwrap_err();
    assert!(e.message().contains("`client_secert`"), "{e}");
    assert!(e.message().contains("did you mean `client_secret`"), "{e}");
    let e = json(r#""timeouts":{"request":5}"#).unwrap_err();
    assert!(e.message().contains("`timeouts.request`"), "{e}");
}

#[test]
fn every_problem_is_reported_once() {
    let e =
        Config::from_json(r#"{"refresh_before_secs":-1,"headers":{"x":"a\r\nb"}}"#).unwrap_err();
    let m = e.message();
    assert!(
        m.contains("`refresh_before_secs` must be a whole number"),
        "{m}"
    );
    assert!(m.contains("`token_url`"), "{m}");
    assert!(m.contains("`client_id` is required"), "{m}");
    assert!(m.contains("CR, LF"), "{m}");
}

#[test]
fn scope_string_or_list() {
    let c = json(r#""scope":["a","b a"],"audience":"aud"}"#.trim_end_matches('}')).unwrap();
    assert_eq!(c.request.scope_param().as_deref(), Some("a b"));
    assert_eq!(c.request.audience_param(), Some("aud"));
}

#[test]
fn headers_keep_document_order() {
    let c = json(r#""headers":{"tenant-code":"T1","api-version":"2","X-A":"3"}"#).unwrap();
    let names: Vec<&str> = c.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["tenant-code", "api-version", "X-A"]);
    let e = json(r#""headers":{"x":1}"#).unwrap_err();
    assert!(e.message().contains("`headers.x` must be a string"), "{e}");
    let e = json(r#""headers":[1]"#).unwrap_err();
    assert!(e.message().contains("`headers` must be an object"), "{e}");
}

#[test]
fn header_rules() {
    assert!(json(r#""headers":{"tenant-code":"T1","api-version":"2"}"#).is_ok());
    for bad in [
        r#""headers":{"bad name":"x"}"#,
        r#""headers":{"x":"a\u0000b"}"#,
        r#""headers":{"Authorization":"Basic x"}"#,
    ] {
        assert_eq!(
            json(bad).unwrap_err().kind(),
            crate::ErrorKind::Config,
            "{bad}"
        );
    }
}

#[test]
fn secret_sources_conflict_and_file_is_read() {
    let e = Config::from_json(r#"{"token_url":"https://i/t","client_id":"c","client_secret":"s","client_secret_env":"X"}"#)
        .unwrap_err();
    assert!(e.message().contains("only one of"), "{e}");
    let dir = std::env::temp_dir().join(format!("tw-secret-{}", std::process::id()));
    std::fs::write(&dir, "from-file\n").unwrap();
    let c = Config::builder()
        .token_url("https://i/t")
        .client_id("c")
        .client_secret_file(dir.clone())
        .build()
        .unwrap();
    std::fs::remove_file(&dir).unwrap();
    match &c.credential {
        Credential::Secret(s) => assert_eq!(s.expose(), "from-file"),
        _ => panic!("expected a secret"),
    }
    let e = Config::builder()
        .token_url("https://i/t")
        .client_id("c")
        .build()
        .unwrap_err();
    assert!(e.message().contains("client secret is required"), "{e}");
}

#[test]
fn debug_never_shows_the_secret() {
    let c = Config::builder()
        .token_url("https://i/t")
        .client_id("c")
        .client_secret("top-secret-value")
        .build()
        .unwrap();
    assert!(!format!("{c:?}").contains("top-secret-value"));
    let b = Config::builder().client_secret("top-secret-value");
    assert!(!format!("{b:?}").contains("top-secret-value"));
}

#[test]
fn env_with_api_prefix_uses_seed_style_names() {
    let vars = [
        ("API_AUTH_URL", "https://idp.example.com/oauth2/token"),
        ("API_CLIENT_ID", "id"),
        ("API_CLIENT_SECRET", "sec"),
        ("API_SCOPE", "EventsApi other"),
        ("API_BASE_URL", "https://api.example.com"),
        ("API_TENANT_CODE", "T1"),
        ("API_VERSION", "2"),
    ];
    let c = Config::from_vars("API_", |n| {
        vars.iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    assert!(matches!(&c.location, TokenLocation::Url(u) if u.ends_with("/oauth2/token")));
    assert_eq!(c.request.scope_param().as_deref(), Some("EventsApi other"));
    assert_eq!(c.api_origins[0].host, "api.example.com");
    assert_eq!(
        c.headers,
        vec![
            ("tenant-code".to_string(), "T1".to_string()),
            ("api-version".to_string(), "2".to_string())
        ]
    );
    let e = Config::from_vars("NOPE_", |_| None).unwrap_err();
    assert!(e.message().contains("NOPE_TOKEN_URL"), "{e}");
}

#[test]
fn reserved_extra_params_are_refused() {
    let e = json(r#""extra_params":{"grant_type":"password"}"#).unwrap_err();
    assert!(e.message().contains("extra_params.grant_type"), "{e}");
    assert!(json(r#""extra_params":{"tenant":"x"}"#).is_ok());
}

#[test]
fn builder_enums_are_kept_as_given_and_text_sources_are_checked() {
    let c = Config::builder()
        .token_url("https://i/t")
        .client_id("c")
        .client_secret("s")
        .auth_method(AuthMethod::ClientSecretBasic)
        .refresh_mode(RefreshMode::Inline)
        .build()
        .unwrap();
    assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
    assert_eq!(c.refresh_mode, RefreshMode::Inline);
    let c = json(r#""auth_method":"client_secret_basic","refresh_mode":"inline""#).unwrap();
    assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
    assert_eq!(c.refresh_mode, RefreshMode::Inline);
    let e = json(r#""refresh_mode":"lazy""#).unwrap_err();
    assert!(e.message().contains("`refresh_mode` `lazy`"), "{e}");
}

#[test]
fn tls_files_are_checked_at_build_and_kept_as_paths() {
    let e = Config::builder()
        .token_url("https://i/t")
        .client_id("c")
        .client_secret("s")
        .client_cert_file("/nonexistent-cert.pem")
        .build()
        .unwrap_err();
    assert!(e.message().contains("or neither"), "{e}");
    let e = json(
        r#""tls":{"client_cert_file":"/nonexistent-c.pem","client_key_file":"/nonexistent-k.pem"}"#,
    )
    .unwrap_err();
    assert!(
        e.message()
            .contains("`tls.client_cert_file` /nonexistent-c.pem cannot be read"),
        "{e}"
    );
}

#[test]
fn max_retry_after_from_every_source() {
    assert_eq!(
        json("").unwrap().retry.max_retry_after,
        Duration::from_secs(120)
    );
    let c = json(r#""retry":{"max_retry_after_ms":2500}"#).unwrap();
    assert_eq!(c.retry.max_retry_after, Duration::from_millis(2500));
    assert_eq!(
        c.retry.max_delay,
        Duration::from_secs(10),
        "the others keep their defaults"
    );
    let e = json(r#""retry":{"max_retry_after_s":1}"#).unwrap_err();
    assert!(
        e.message().contains("did you mean `max_retry_after_ms`"),
        "{e}"
    );

    let vars = |extra: &'static str| {
        move |n: &str| match n {
            "T_TOKEN_URL" => Some("https://idp.example.com/t".to_string()),
            "T_CLIENT_ID" => Some("c".to_string()),
            "T_CLIENT_SECRET" => Some("s".to_string()),
            "T_MAX_RETRY_AFTER_MS" => Some(extra.to_string()),
            _ => None,
        }
    };
    let c = Config::from_vars("T_", vars("750")).unwrap();
    assert_eq!(c.retry.max_retry_after, Duration::from_millis(750));
    let e = Config::from_vars("T_", vars("soon")).unwrap_err();
    assert!(e.message().contains("T_MAX_RETRY_AFTER_MS"), "{e}");

    let c = Config::builder()
        .token_url("https://idp.example.com/t")
        .client_id("c")
        .client_secret("s")
        .max_retry_after(Duration::from_secs(7))
        .build()
        .unwrap();
    assert_eq!(c.retry.max_retry_after, Duration::from_secs(7));
    let c = Config::builder()
        .token_url("https://idp.example.com/t")
        .client_id("c")
        .client_secret("s")
        .retry(RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    assert_eq!(
        c.retry,
        RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        }
    );
}
