//! The command line, parsed by hand: a handful of options do not justify a dependency that
//! every user of the library would download with the package.

use std::fmt;

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--config FILE`: a JSON file.
    File(String),
    /// Environment variables with this prefix (`--prefix`, default `TOKENWARD_`).
    Env(Option<String>),
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Token,
    Headers,
    Request(RequestArgs),
    Doctor { probe: Option<String> },
    Inspect,
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestArgs {
    pub method: Option<String>,
    pub headers: Vec<(String, String)>,
    /// `-d`: the body text, or `@FILE` (`@-` for standard input) to read it from.
    pub data: Option<String>,
    /// `-i`: print the status line and the response headers before the body.
    pub include: bool,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub source: Source,
    pub json: bool,
    pub command: Command,
}

/// A command line that cannot be run, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const USAGE: &str = "\
tokenward — OAuth 2.0 client-credentials tokens from the command line

Usage: tokenward [OPTIONS] <COMMAND>

Commands:
  token                 print the access token
                        (curl -H \"Authorization: Bearer $(tokenward token)\" …)
  headers               print Authorization and the configured headers, one
                        \"Name: value\" line each
  request [-X METHOD] [-H 'Name: value']… [-d BODY|@FILE|@-] [-i] URL
                        send an API request with the token (a 401 refreshes the
                        token and retries once); print the response body
  doctor [--probe URL]  check the setup step by step: configuration, DNS, TCP,
                        proxy, TLS, clock, token request, token sanity, and with
                        --probe one API call
  inspect               describe the current token (lifetime, scope, JWT claims)
                        without printing it

Options (anywhere on the line):
  --config FILE         read the configuration from a JSON file
  --prefix PREFIX       read it from PREFIX* environment variables (default
                        TOKENWARD_; e.g. --prefix API_ for API_CLIENT_ID, …)
  --json                machine-readable output (errors too, on standard error)
  -h, --help            this help
  -V, --version         the version

Exit status: 0 success; 1 internal error; 2 usage; 3 configuration; 4 network or
timeout; 5 TLS; 6 client authentication refused (invalid_client, grant not
allowed); 7 scope or other OAuth error; 8 identity provider unavailable (429,
5xx, malformed answer); 9 the API refused the token (401 after a refresh, 403);
request only: 10 HTTP 3xx, 11 HTTP 4xx, 12 HTTP 5xx.
";

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Invocation, UsageError> {
    let mut args = args.into_iter().peekable();
    let mut config = None;
    let mut prefix = None;
    let mut json = false;
    let mut command: Option<String> = None;
    let mut probe = None;
    let mut request = RequestArgs::default();
    let mut positional: Vec<String> = Vec::new();
    let mut help = false;
    let mut version = false;
    let mut options_done = false;
    while let Some(arg) = args.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            match command {
                None => command = Some(arg),
                Some(_) => positional.push(arg),
            }
            continue;
        }
        // `--name=value` and `--name value` both work.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, UsageError> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => Err(UsageError(format!("{name} needs {what}"))),
            }
        };
        match name.as_str() {
            "--" => options_done = true,
            "--config" => config = Some(value("a file name")?),
            "--prefix" => prefix = Some(value("a prefix such as API_")?),
            "--json" => json = true,
            "-h" | "--help" => help = true,
            "-V" | "--version" => version = true,
            "--probe" => probe = Some(value("a URL")?),
            "-X" | "--request" => request.method = Some(value("a method")?),
            "-H" | "--header" => {
                let line = value("a header such as 'Name: value'")?;
                let Some((n, v)) = line.split_once(':') else {
                    return Err(UsageError(format!(
                        "-H `{line}` is not a header; write it as 'Name: value'"
                    )));
                };
                request
                    .headers
                    .push((n.trim().to_string(), v.trim().to_string()));
            }
            "-d" | "--data" => request.data = Some(value("a body, @FILE or @-")?),
            "-i" | "--include" => request.include = true,
            other => {
                return Err(UsageError(format!(
                    "unknown option `{other}` (see tokenward --help)"
                )))
            }
        }
    }
    if let (Some(_), Some(_)) = (&config, &prefix) {
        return Err(UsageError(
            "--config and --prefix choose two different sources; give one".into(),
        ));
    }
    let source = match config {
        Some(file) => Source::File(file),
        None => Source::Env(prefix),
    };
    let command = if help {
        Command::Help
    } else if version {
        Command::Version
    } else {
        let name = command.ok_or_else(|| {
            UsageError("a command is needed: token, headers, request, doctor or inspect".into())
        })?;
        let takes_request_options = name == "request";
        if !takes_request_options
            && (request.method.is_some()
                || !request.headers.is_empty()
                || request.data.is_some()
                || request.include)
        {
            return Err(UsageError(format!(
                "-X, -H, -d and -i belong to `request`, not `{name}`"
            )));
        }
        if name != "doctor" && probe.is_some() {
            return Err(UsageError(format!(
                "--probe belongs to `doctor`, not `{name}`"
            )));
        }
        let no_arguments = |command: Command| {
            if positional.is_empty() {
                Ok(command)
            } else {
                Err(UsageError(format!(
                    "`{name}` takes no argument (got `{}`)",
                    positional.join(" ")
                )))
            }
        };
        match name.as_str() {
            "token" => no_arguments(Command::Token)?,
            "headers" => no_arguments(Command::Headers)?,
            "inspect" => no_arguments(Command::Inspect)?,
            "doctor" => no_arguments(Command::Doctor { probe })?,
            "help" => Command::Help,
            "request" => match positional.as_slice() {
                [url] => {
                    request.url = url.clone();
                    Command::Request(request)
                }
                [] => return Err(UsageError("`request` needs a URL".into())),
                more => {
                    return Err(UsageError(format!(
                        "`request` takes one URL (got `{}`)",
                        more.join(" ")
                    )))
                }
            },
            other => {
                return Err(UsageError(format!(
                    "unknown command `{other}`: use token, headers, request, doctor or inspect"
                )))
            }
        }
    };
    Ok(Invocation {
        source,
        json,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Invocation, UsageError> {
        parse(line.split_whitespace().map(str::to_string))
    }

    #[test]
    fn options_go_anywhere_in_either_form() {
        let a = parse_line("--prefix API_ token --json").unwrap();
        assert_eq!(a.source, Source::Env(Some("API_".into())));
        assert!(a.json);
        assert_eq!(a.command, Command::Token);
        let a = parse_line("doctor --config=c.json --probe https://api/x").unwrap();
        assert_eq!(a.source, Source::File("c.json".into()));
        assert_eq!(
            a.command,
            Command::Doctor {
                probe: Some("https://api/x".into())
            }
        );
        assert_eq!(parse_line("inspect").unwrap().source, Source::Env(None));
    }

    #[test]
    fn request_takes_curl_like_options() {
        let a = parse(
            [
                "request",
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/json",
                "-H",
                "x-a:1",
                "-d",
                "@body.json",
                "-i",
                "https://api/x",
            ]
            .map(str::to_string),
        )
        .unwrap();
        let Command::Request(r) = a.command else {
            panic!()
        };
        assert_eq!(r.method.as_deref(), Some("PUT"));
        assert_eq!(
            r.headers,
            [
                ("Content-Type".to_string(), "application/json".to_string()),
                ("x-a".into(), "1".into())
            ]
        );
        assert_eq!(r.data.as_deref(), Some("@body.json"));
        assert!(r.include);
        assert_eq!(r.url, "https://api/x");
        // After `--`, a URL may start with a dash.
        let a = parse_line("request -- -odd").unwrap();
        let Command::Request(r) = a.command else {
            panic!()
        };
        assert_eq!(r.url, "-odd");
    }

    #[test]
    fn mistakes_are_usage_errors_that_say_what_is_wrong() {
        for (line, expect) in [
            ("", "a command is needed"),
            ("tokens", "unknown command `tokens`"),
            ("token --jsno", "unknown option `--jsno`"),
            ("token extra", "takes no argument"),
            ("request", "needs a URL"),
            ("request a b", "takes one URL"),
            ("token -H a:b", "belong to `request`"),
            ("token --probe x", "belongs to `doctor`"),
            ("request -H nocolon https://x", "'Name: value'"),
            ("token --config", "--config needs a file name"),
            ("token --config a --prefix B_", "give one"),
        ] {
            let e = parse_line(line).unwrap_err();
            assert!(e.0.contains(expect), "{line}: {e}");
        }
        assert_eq!(parse_line("--help").unwrap().command, Command::Help);
        assert_eq!(parse_line("token -V").unwrap().command, Command::Version);
    }
}
