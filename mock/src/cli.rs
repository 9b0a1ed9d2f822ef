//! The `mock_idp` command line, used by the C, Python and C# tests and the demo.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::server::{MockOptions, MockServer};

const USAGE: &str = "\
usage: mock_idp [--port N] [--tls DIR] [--lifetime-secs N] [--client-id ID] [--client-secret S]
                [--config JSON]

  --port N            port on 127.0.0.1 (default 0: any free port)
  --tls DIR           serve https://localhost:PORT; writes the CA certificate to DIR/ca.pem
  --lifetime-secs N   exit after N seconds (default 600; 0: no limit)
  --client-id ID      the registered client (default demo-client)
  --client-secret S   its secret (default demo-secret)
  --config JSON       start settings, as a POST /admin/config patch (a reset returns to them),
                      e.g. '{\"tls_certificate\":\"expired\"}'

Prints the base URL as the only line on stdout once it accepts connections.
Stops on POST /admin/shutdown, after the lifetime, or on SIGTERM. See docs/mock.md.";

/// Default `--lifetime-secs`: a forgotten mock must not outlive a CI job by much.
const DEFAULT_LIFETIME_SECS: u64 = 600;

#[derive(Debug)]
enum Command {
    Serve(MockOptions),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut opts = MockOptions {
        lifetime: Some(Duration::from_secs(DEFAULT_LIFETIME_SECS)),
        ..MockOptions::default()
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Both `--name value` and `--name=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |value: String, what: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{name} takes {what}, not `{value}`"))
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "--port" => {
                let port = number(value()?, "a port number")?;
                opts.port = u16::try_from(port)
                    .map_err(|_| format!("--port takes a port number, not `{port}`"))?;
            }
            "--tls" => opts.tls_dir = Some(PathBuf::from(value()?)),
            "--lifetime-secs" => {
                let secs = number(value()?, "a number of seconds")?;
                opts.lifetime = (secs > 0).then(|| Duration::from_secs(secs));
            }
            "--client-id" => opts.client_id = value()?,
            "--client-secret" => opts.client_secret = value()?,
            "--config" => {
                let patch: serde_json::Value = serde_json::from_str(&value()?)
                    .map_err(|e| format!("--config takes a JSON object: {e}"))?;
                // Checked here so that a typo is a usage error (exit 2), not a startup one.
                crate::config::MockConfig::new("a", "b").apply(&patch)?;
                opts.config = patch;
            }
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    Ok(Command::Serve(opts))
}

/// `mock_idp`: parses the process arguments, serves until stopped, exits non-zero on a
/// usage (2) or startup (1) error.
pub fn cli_main() {
    let code = cli_run(std::env::args().skip(1), &mut std::io::stdout());
    if code != 0 {
        std::process::exit(code);
    }
}

/// [`cli_main`] with explicit arguments (without the program name) and stdout, for tests
/// and embedding: writes the base URL line to `stdout`, serves until the server stops and
/// returns the exit code.
pub fn cli_run(args: impl IntoIterator<Item = String>, stdout: &mut impl Write) -> i32 {
    let opts = match parse_args(args) {
        Ok(Command::Serve(opts)) => opts,
        Ok(Command::Help) => {
            let _ = writeln!(stdout, "{USAGE}");
            return 0;
        }
        Err(problem) => {
            eprintln!("mock_idp: {problem}\n{USAGE}");
            return 2;
        }
    };
    let lifetime = opts.lifetime;
    let server = match MockServer::try_start(opts) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("mock_idp: cannot start: {e}");
            return 1;
        }
    };
    // The one stdout line test harnesses wait for; flushed because stdout is a pipe there.
    if stdout
        .write_all(format!("{}\n", server.url()).as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        eprintln!("mock_idp: could not write the URL to stdout; serving anyway");
    }
    let until = match lifetime {
        Some(l) => format!("after {} s, ", l.as_secs()),
        None => String::new(),
    };
    eprintln!(
        "mock_idp: serving {} (stops {until}on POST /admin/shutdown, or on SIGTERM)",
        server.url()
    );
    server.wait();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    fn serve(args: &[&str]) -> MockOptions {
        match parse(args) {
            Ok(Command::Serve(opts)) => opts,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let opts = serve(&[]);
        assert_eq!(opts.port, 0);
        assert_eq!(opts.lifetime, Some(Duration::from_secs(600)));
        assert_eq!(opts.client_id, "demo-client");
        assert_eq!(opts.client_secret, "demo-secret");
        assert_eq!(opts.tls_dir, None);
    }

    #[test]
    fn every_flag_in_both_spellings() {
        let opts = serve(&[
            "--port",
            "8080",
            "--tls",
            "/tmp/x",
            "--lifetime-secs=5",
            "--client-id",
            "c",
            "--client-secret=s=1 2",
            "--config",
            r#"{"tls_certificate":"expired","ttl_secs":5}"#,
        ]);
        assert_eq!(opts.config["tls_certificate"], "expired");
        assert_eq!(opts.port, 8080);
        assert_eq!(opts.tls_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(opts.lifetime, Some(Duration::from_secs(5)));
        assert_eq!(opts.client_id, "c");
        assert_eq!(opts.client_secret, "s=1 2");
        assert_eq!(serve(&["--lifetime-secs", "0"]).lifetime, None);
    }

    #[test]
    fn mistakes_are_reported() {
        for args in [
            &["--port"][..],
            &["--port", "x"],
            &["--port", "70000"],
            &["--lifetime-secs", "-1"],
            &["--bogus", "1"],
            &["stray"],
            &["--config", "{"],
            &["--config", r#"{"ttl_sec":1}"#],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
        assert_eq!(cli_run(["--nope".to_string()], &mut Vec::new()), 2);
    }
}
