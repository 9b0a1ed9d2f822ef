//! `tokenward doctor` against the mock, one broken setup per test: the verdict line names the
//! broken step, and the exit status its error family.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use tokenward_mock::{MockOptions, MockServer};

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tw-doctor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port nothing listens on (bound a moment ago, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

fn config_for(token_url: &str, extra: Value) -> Value {
    let mut config = json!({
        "token_url": token_url,
        "client_id": "demo-client",
        "client_secret": "demo-secret",
        "allow_http": true,
        "headers": { "tenant-code": "T1", "api-version": "2" },
        "timeouts": { "connect_ms": 3000, "request_ms": 10000 },
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            config.as_object_mut().unwrap().remove(k);
        } else {
            config[k] = v.clone();
        }
    }
    config
}

struct Outcome {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn verdict(&self) -> &str {
        self.stdout
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("verdict: "))
            .unwrap_or_else(|| panic!("no verdict line in:\n{}{}", self.stdout, self.stderr))
    }

    fn expect(&self, verdict: &str, status: i32) {
        assert!(
            self.verdict().starts_with(verdict),
            "verdict `{}` does not start with `{verdict}`:\n{}",
            self.verdict(),
            self.stdout
        );
        assert_eq!(
            self.status, status,
            "exit status:\n{}{}",
            self.stdout, self.stderr
        );
    }
}

fn run_doctor(name: &str, config: &Value, args: &[&str]) -> Outcome {
    let dir = scratch(name);
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokenward"));
    command.arg("doctor").arg("--config").arg(&path).args(args);
    for var in [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "TOKENWARD_ENVIRONMENT",
    ] {
        command.env_remove(var);
    }
    let output = command.output().expect("the tokenward binary runs");
    let _ = std::fs::remove_dir_all(&dir);
    let outcome = Outcome {
        status: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(
        !outcome.stdout.contains("demo-secret") && !outcome.stdout.contains("wr0ng-s3cret"),
        "a secret was printed:\n{}",
        outcome.stdout
    );
    outcome
}

fn doctor(name: &str, mock: &MockServer, extra: Value, args: &[&str]) -> Outcome {
    run_doctor(name, &config_for(&mock.token_url(), extra), args)
}

#[test]
fn a_working_setup_passes_every_check() {
    let mock = MockServer::start();
    let probe = format!("{}/api/items", mock.url());
    let o = doctor(
        "ok",
        &mock,
        json!({ "scope": "EventsApi" }),
        &["--probe", &probe],
    );
    o.expect("✓ all 8 checks passed", 0);
    for line in [
        "✓ config:",
        "✓ DNS:",
        "✓ TCP connect:",
        "✓ proxy:",
        "- TLS:",
        "✓ clock:",
        "✓ token request:",
        "✓ token sanity:",
        "✓ API probe:",
    ] {
        assert!(o.stdout.contains(line), "{line} missing:\n{}", o.stdout);
    }
    assert!(
        o.stdout
            .contains("client_secret = ******** (secret)  (JSON)"),
        "{}",
        o.stdout
    );
}

#[test]
fn wrong_secret() {
    let mock = MockServer::start();
    let o = doctor(
        "secret",
        &mock,
        json!({ "client_secret": "wr0ng-s3cret" }),
        &[],
    );
    o.expect("✗ token request: ", 6);
    assert!(
        o.verdict()
            .contains("refused the client id or secret (HTTP 401 `invalid_client`)"),
        "{}",
        o.verdict()
    );
    assert!(
        o.stdout
            .contains("both client_secret_post and client_secret_basic were refused"),
        "{}",
        o.stdout
    );
    assert_eq!(
        mock.token_requests(),
        2,
        "one request per authentication method"
    );
}

#[test]
fn right_secret_with_the_wrong_auth_method() {
    let mock = MockServer::start();
    mock.configure(json!({ "secret_auth_methods": ["client_secret_basic"] }));
    let o = doctor("method", &mock, json!({}), &[]);
    o.expect("✗ token request: the secret is right, but ", 6);
    assert!(
        o.verdict()
            .ends_with("wants client_secret_basic, not client_secret_post"),
        "{}",
        o.verdict()
    );
    assert!(
        o.stdout
            .contains("fix: set `auth_method` to `client_secret_basic`"),
        "{}",
        o.stdout
    );

    mock.configure(json!({ "secret_auth_methods": ["client_secret_post"] }));
    let o = doctor(
        "method-basic",
        &mock,
        json!({ "auth_method": "client_secret_basic" }),
        &[],
    );
    assert!(
        o.verdict()
            .ends_with("wants client_secret_post, not client_secret_basic"),
        "{}",
        o.verdict()
    );
}

#[test]
fn unknown_scope_lists_the_supported_ones() {
    let mock = MockServer::start();
    mock.configure(json!({ "allowed_scopes": ["EventsApi", "read"] }));
    let o = doctor("scope", &mock, json!({ "scope": "EventApi read" }), &[]);
    o.expect("✗ token request: ", 7);
    assert!(
        o.verdict()
            .contains("refused the scope (HTTP 400 `invalid_scope`)"),
        "{}",
        o.verdict()
    );
    assert!(
        o.stdout.contains("not offered by the provider: `EventApi`"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("Its scopes_supported: EventsApi read"),
        "{}",
        o.stdout
    );
}

#[test]
fn grant_not_enabled() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "status": 400, "body": { "error": "unauthorized_client" } }));
    let o = doctor("grant", &mock, json!({}), &[]);
    o.expect("✗ token request: ", 6);
    assert!(
        o.verdict()
            .contains("does not allow this client the client_credentials grant"),
        "{}",
        o.verdict()
    );
}

#[test]
fn tls_without_the_ca_and_with_it() {
    let dir = scratch("tls-mock");
    let mock = MockServer::start_tls(&dir);
    let o = doctor("tls-no-ca", &mock, json!({ "allow_http": null }), &[]);
    o.expect(
        "✗ TLS: `CN=localhost` is signed by `CN=tokenward mock CA`, which is not trusted here",
        5,
    );
    assert!(
        o.stdout
            .contains("`tls.ca_file` fixes it if `CN=tokenward mock CA` is a CA you trust"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("- token request: skipped: the TLS check failed"),
        "{}",
        o.stdout
    );

    let ca = mock.ca_pem_path().unwrap();
    let o = doctor(
        "tls-ca",
        &mock,
        json!({ "allow_http": null, "tls": { "ca_file": ca } }),
        &[],
    );
    o.expect("✓ all 8 checks passed", 0);
    assert!(o.stdout.contains("✓ TLS: TLS 1.3"), "{}", o.stdout);
    assert!(o.stdout.contains("names localhost"), "{}", o.stdout);
    drop(mock);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_expired_server_certificate() {
    let dir = scratch("tls-expired-mock");
    let mock = MockServer::start_with(MockOptions {
        tls_dir: Some(dir.clone()),
        config: json!({ "tls_certificate": "expired" }),
        ..MockOptions::default()
    });
    let ca = mock.ca_pem_path().unwrap();
    let o = doctor(
        "expired",
        &mock,
        json!({ "allow_http": null, "tls": { "ca_file": ca } }),
        &[],
    );
    o.expect("✗ TLS: `CN=localhost` expired on 2021-01-01 (", 5);
    assert!(
        o.stdout.contains("`tls.ca_file` would not fix it"),
        "{}",
        o.stdout
    );
    drop(mock);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_host_that_does_not_resolve() {
    let o = run_doctor(
        "dns",
        &config_for("https://idp.tokenward-test.invalid/oauth2/token", json!({})),
        &[],
    );
    o.expect("✗ DNS: idp.tokenward-test.invalid does not resolve", 4);
    assert!(
        o.stdout
            .contains("- TCP connect: skipped: the DNS check failed"),
        "{}",
        o.stdout
    );
}

#[test]
fn a_port_that_refuses() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/oauth/token");
    let o = run_doctor("refused", &config_for(&url, json!({})), &[]);
    o.expect(
        &format!("✗ TCP connect: 127.0.0.1:{port} refused the connection"),
        4,
    );
}

#[test]
fn a_proxy_that_refuses() {
    let mock = MockServer::start();
    let port = free_port();
    let proxy = format!("http://127.0.0.1:{port}");
    let o = doctor("proxy", &mock, json!({ "proxy": proxy }), &[]);
    o.expect(
        &format!("✗ proxy: {proxy} (from config `proxy`) refused the connection"),
        4,
    );
    assert!(
        o.stdout
            .contains("- TCP connect: connections go through the proxy"),
        "{}",
        o.stdout
    );
}

#[test]
fn a_server_clock_ten_minutes_off() {
    let mock = MockServer::start();
    mock.configure(json!({ "clock_skew_secs": 600 }));
    let o = doctor("clock", &mock, json!({}), &[]);
    o.expect("! clock: the server's clock is ", 0);
    assert!(
        o.verdict().ends_with("s ahead of this machine's"),
        "{}",
        o.verdict()
    );
    assert!(
        o.stdout.contains("private_key_jwt client assertions"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("the token's iat is "),
        "token sanity sees it too:\n{}",
        o.stdout
    );
}

#[test]
fn a_token_endpoint_answering_429() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "status": 429, "retry_after": "7", "body": { "error": "slow_down" } }));
    let o = doctor("429", &mock, json!({}), &[]);
    o.expect("✗ token request: ", 8);
    assert!(
        o.verdict()
            .contains("is rate-limiting this client (HTTP 429 `slow_down`; Retry-After 7 s)"),
        "{}",
        o.verdict()
    );
    assert_eq!(mock.token_requests(), 1, "no retries");
}

#[test]
fn a_token_endpoint_answering_503() {
    let mock = MockServer::start();
    mock.push_fault(json!({ "status": 503, "retry_after": "30", "body": "down for maintenance" }));
    let o = doctor("503", &mock, json!({}), &[]);
    o.expect("✗ token request: ", 8);
    assert!(
        o.verdict()
            .ends_with("is failing (HTTP 503; Retry-After 30 s)"),
        "{}",
        o.verdict()
    );
    assert!(o.stdout.contains("retry after 30 s"), "{}", o.stdout);
}

#[test]
fn an_api_answering_401_invalid_token() {
    let mock = MockServer::start();
    let probe = format!("{}/api/always-401", mock.url());
    let o = doctor("401", &mock, json!({}), &["--probe", &probe]);
    o.expect(
        &format!("✗ API probe: GET {probe} → HTTP 401 invalid_token"),
        9,
    );
    assert!(
        o.stdout.contains("the API refuses the token itself"),
        "{}",
        o.stdout
    );
}

#[test]
fn an_api_answering_403_insufficient_scope() {
    let mock = MockServer::start();
    let probe = format!("{}/api/forbidden", mock.url());
    let o = doctor("403", &mock, json!({}), &["--probe", &probe]);
    o.expect(
        &format!(
            "✗ API probe: GET {probe} → HTTP 403 insufficient_scope: requires scope `admin:write`"
        ),
        9,
    );
}

#[test]
fn an_api_answering_400_missing_tenant() {
    let mock = MockServer::start();
    let probe = format!("{}/api/items", mock.url());
    let o = doctor(
        "tenant",
        &mock,
        json!({ "headers": { "api-version": "2" } }),
        &["--probe", &probe],
    );
    o.expect(
        &format!("✗ API probe: GET {probe} → HTTP 400: missing or wrong tenant"),
        3,
    );
    assert!(
        o.stdout
            .contains("fix: set the tenant header (`headers.tenant-code`)"),
        "{}",
        o.stdout
    );
}

#[test]
fn a_rejected_configuration() {
    let o = run_doctor(
        "typo",
        &json!({ "token_url": "https://idp/t", "client_id": "c", "client_secert": "x" }),
        &[],
    );
    o.expect("✗ config: configuration rejected (", 3);
    assert!(
        o.stdout.contains("did you mean `client_secret`"),
        "{}",
        o.stdout
    );
}

#[test]
fn json_output_is_the_diagnosis() {
    let mock = MockServer::start();
    let o = doctor(
        "json",
        &mock,
        json!({ "client_secret": "wr0ng-s3cret" }),
        &["--json"],
    );
    assert_eq!(o.status, 6);
    let diagnosis: Value = serde_json::from_str(&o.stdout).expect("one JSON document");
    assert_eq!(diagnosis["ok"], false);
    assert_eq!(diagnosis["error_kind"], "invalid_client");
    let token = diagnosis["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "token")
        .unwrap();
    assert_eq!(token["status"], "fail");
    assert_eq!(token["http_status"], 401);
}

#[test]
fn a_proxy_that_wants_credentials() {
    use tokenward_mock::hostile::{HostileServer, RawResponse};
    let mock = MockServer::start();
    let proxy = HostileServer::start(|_| {
        RawResponse::bytes(
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n",
        )
    });
    let o = doctor("proxy-407", &mock, json!({ "proxy": proxy.url() }), &[]);
    o.expect(
        &format!(
            "✗ proxy: {} (from config `proxy`) wants credentials (HTTP/1.1 407 Proxy Authentication Required)",
            proxy.url()
        ),
        4,
    );
    let seen = proxy.requests();
    let target = mock.url().trim_start_matches("http://").to_string();
    assert_eq!(seen[0].method(), "CONNECT");
    assert_eq!(seen[0].target(), target, "a tunnel to the token endpoint");
}

#[test]
fn an_issuer_is_diagnosed_through_discovery() {
    let mock = MockServer::start();
    let o = run_doctor(
        "issuer",
        &config_for(
            &mock.token_url(),
            json!({ "token_url": null, "issuer": mock.url() }),
        ),
        &[],
    );
    o.expect("✓ all 7 checks passed", 0);
    assert!(
        o.stdout
            .contains(&format!("issuer = {}  (JSON)", mock.url())),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains(&format!(
            "✓ token request: {}/oauth/token issued",
            mock.url()
        )),
        "{}",
        o.stdout
    );
}

#[test]
fn an_api_that_echoes_the_request_does_not_make_the_doctor_print_the_token() {
    use tokenward_mock::hostile::{HostileServer, RawResponse};
    let mock = MockServer::start();
    let api = HostileServer::start(|request| {
        let echoed = request.header("authorization").unwrap_or_default();
        RawResponse::http(
            400,
            &[(
                "WWW-Authenticate",
                &format!("Bearer error=\"invalid_request\", error_description=\"{echoed}\""),
            )],
            format!("bad request: {echoed}"),
        )
    });
    let probe = api.url_for("/v1/items");
    let o = doctor("echo", &mock, json!({}), &["--probe", &probe]);
    o.expect(&format!("✗ API probe: GET {probe} → HTTP 400"), 11);
    assert!(
        o.stdout.contains("bad request: Bearer [redacted]"),
        "{}",
        o.stdout
    );
    assert!(
        !o.stdout.contains("eyJ"),
        "the token was printed:\n{}",
        o.stdout
    );
    assert_eq!(api.request_count(), 1, "one probe call");
}
