//! When trust roots are read and TLS configurations built, seen through the process-wide
//! counters. The counters belong to the whole process, so this file holds one test: nothing
//! else in this test binary may open a TLS connection.

use tokenward::{tls_counters, CheckStatus, Client, Config, DiagnoseOptions, TlsCounters};
use tokenward_mock::MockServer;

fn client(url: &str, ca: Option<&std::path::Path>) -> Client {
    let mut builder = Config::builder()
        .token_url(url)
        .client_id("demo-client")
        .client_secret("demo-secret")
        .allow_http(true);
    if let Some(ca) = ca {
        builder = builder.ca_file(ca);
    }
    Client::new(builder.build().unwrap()).unwrap()
}

#[test]
fn trust_roots_are_read_once_on_the_first_tls_connection_and_configurations_are_shared() {
    let nothing = TlsCounters::default();
    assert_eq!(tls_counters(), nothing);

    // Plain http, from construction to token: no trust store read, no TLS configuration.
    let http = MockServer::start();
    client(&http.token_url(), None).token().unwrap();
    assert_eq!(tls_counters(), nothing);

    let dir = std::env::temp_dir().join(format!("tokenward-tls-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let https = MockServer::start_tls(&dir);
    let ca = https.ca_pem_path().unwrap();
    let first = client(&https.token_url(), Some(&ca));
    let second = client(&https.token_url(), Some(&ca));
    assert_eq!(tls_counters(), nothing, "building a client reads nothing");
    first.token().unwrap();
    second.token().unwrap();
    let shared = TlsCounters {
        os_store_reads: 1,
        configs_built: 1,
    };
    assert_eq!(
        tls_counters(),
        shared,
        "two clients, one setting: one configuration"
    );

    // The diagnosis's own handshake verifies against the process's parsed roots (no second
    // read of the store), and its token request uses the live configuration.
    let diagnosis = first.diagnose(&DiagnoseOptions::new());
    let tls = diagnosis.checks().iter().find(|c| c.id() == "tls").unwrap();
    assert_eq!(tls.status(), CheckStatus::Pass, "{}", diagnosis.to_json());
    assert!(diagnosis.is_ok(), "{}", diagnosis.to_json());
    assert_eq!(tls_counters(), shared);

    // Once no client uses a setting, its configuration goes; the parsed roots stay.
    drop((first, second));
    client(&https.token_url(), Some(&ca)).token().unwrap();
    assert_eq!(
        tls_counters(),
        TlsCounters {
            os_store_reads: 1,
            configs_built: 2,
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}
