//! Named environments and the environment-variable sources, end to end against the mock:
//! the chosen environment's endpoint is the one asked, and the Cognito-style `.env` works
//! with `from_env("API_")` as it is.

mod common;

use serde_json::json;
use tokenward::{Client, Config, ErrorKind};
use tokenward_mock::MockServer;

#[test]
fn the_chosen_environment_is_the_one_asked() {
    let sandbox = MockServer::start();
    let prod = MockServer::start();
    let doc = |environment: &str| {
        json!({
            "client_id": "demo-client", "client_secret": "demo-secret", "allow_http": true,
            "token_url": "https://unused.example.com/oauth/token",
            "environment": environment,
            "environments": {
                "sandbox": { "token_url": sandbox.token_url() },
                "prod": { "token_url": prod.token_url(), "scope": "EventsApi" },
            },
        })
        .to_string()
    };
    let client = Client::new(Config::from_json(&doc("prod")).unwrap()).unwrap();
    assert_eq!(client.config().environment(), Some("prod"));
    let source = |key: &str| client.config().source_of(key);
    assert_eq!(
        source("token_url").as_deref(),
        Some("JSON environments.prod")
    );
    assert_eq!(source("client_id").as_deref(), Some("JSON"));
    assert_eq!(source("refresh_before_secs"), None);
    let token = client.token().unwrap();
    assert_eq!(common::claims(token.as_str())["scope"], "EventsApi");
    assert_eq!((sandbox.token_requests(), prod.token_requests()), (0, 1));

    let client = Client::new(Config::from_json(&doc("sandbox")).unwrap()).unwrap();
    client.token().unwrap();
    assert_eq!((sandbox.token_requests(), prod.token_requests()), (1, 1));

    let e = Config::from_json(&doc("staging")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message().contains("known environments: prod, sandbox"),
        "{e}"
    );
}

/// The one test of this binary that changes the process environment (tests run on threads
/// of one process, so no other test here reads these variables).
#[test]
fn a_cognito_env_file_works_unchanged_with_the_api_prefix() {
    let cognito_url = "https://my-pool.auth.eu-west-1.amazoncognito.com/oauth2/token";
    // The guide's `.env`, as a shell would export it.
    let dot_env = format!(
        "API_CLIENT_ID=demo-client\n\
         API_CLIENT_SECRET=demo-secret\n\
         API_SCOPE=EventsApi\n\
         API_BASE_URL=https://api.example.com\n\
         AUTH_URL={cognito_url}\n"
    );
    let export = |text: &str| {
        for line in text.lines() {
            let (name, value) = line.split_once('=').unwrap();
            std::env::set_var(name, value);
        }
    };
    export(&dot_env);
    let config = Config::from_env(Some("API_")).unwrap();
    assert!(format!("{config:?}").contains(cognito_url), "{config:?}");
    assert_eq!(
        config.default_request().scope_param().as_deref(),
        Some("EventsApi")
    );

    // The same file pointing at the mock, which speaks plain http on loopback only.
    let mock = MockServer::start();
    export(
        &dot_env
            .replace(cognito_url, &mock.token_url())
            .replace("https://api.example.com", &mock.url()),
    );
    std::env::set_var("API_ALLOW_HTTP", "true");
    let client = Client::new(Config::from_env(Some("API_")).unwrap()).unwrap();
    let token = client.token().unwrap();
    assert_eq!(common::claims(token.as_str())["scope"], "EventsApi");
    assert_eq!(
        mock.token_log()[0].path,
        "/oauth/token",
        "AUTH_URL is the token endpoint"
    );

    // A named environment chosen by a variable, with its own token endpoint.
    let other = MockServer::start();
    std::env::set_var("API_ENVIRONMENT", "sandbox");
    std::env::set_var("API_SANDBOX_TOKEN_URL", other.token_url());
    let client = Client::new(Config::from_env(Some("API_")).unwrap()).unwrap();
    assert_eq!(client.config().environment(), Some("sandbox"));
    assert_eq!(
        client.config().source_of("token_url").as_deref(),
        Some("$API_SANDBOX_TOKEN_URL")
    );
    client.token().unwrap();
    assert_eq!((mock.token_requests(), other.token_requests()), (1, 1));
    std::env::set_var("API_ENVIRONMENT", "sandbx");
    let e = Config::from_env(Some("API_")).unwrap_err();
    assert!(e.message().contains("known environments: sandbox"), "{e}");
    for name in [
        "API_CLIENT_ID",
        "API_CLIENT_SECRET",
        "API_SCOPE",
        "API_BASE_URL",
        "AUTH_URL",
        "API_ALLOW_HTTP",
        "API_ENVIRONMENT",
        "API_SANDBOX_TOKEN_URL",
    ] {
        std::env::remove_var(name);
    }
}
