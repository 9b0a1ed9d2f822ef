//! The commands: each loads the configuration, asks the library, prints, and returns the
//! exit status. Results go to standard output, messages and errors to standard error.

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokenward::{
    CheckStatus, Client, Config, DiagnoseOptions, Diagnosis, Error, ErrorKind, Request, TokenInfo,
};

use crate::args::{Command, Invocation, RequestArgs, Source, USAGE};
use crate::exit;

/// Write to standard output; a closed pipe (`tokenward token | head -c 10`) is not an error
/// worth a panic.
fn out(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

fn out_line(text: &str) {
    out(format!("{text}\n").as_bytes());
}

fn err_line(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

pub fn report_usage(message: &str, json: bool) {
    if json {
        err_line(
            &json!({ "error": { "kind": "usage", "message": message, "exit_status": exit::USAGE } })
                .to_string(),
        );
    } else {
        err_line(&format!("tokenward: {message}\nTry `tokenward --help`."));
    }
}

/// Why a command could not finish.
enum Failure {
    /// The library said no.
    Library(Error),
    /// Something the library never saw: a body file named on the command line, say.
    Local {
        kind: &'static str,
        status: u8,
        message: String,
    },
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Library(error)
    }
}

/// Report `failure` on standard error and return its exit status.
fn fail(failure: &Failure, json: bool) -> u8 {
    let (kind, status, message, http_status) = match failure {
        Failure::Library(error) => (
            error.kind().as_str(),
            exit::of_kind(error.kind()),
            error.message(),
            error.http_status(),
        ),
        Failure::Local {
            kind,
            status,
            message,
        } => (*kind, *status, message.as_str(), None),
    };
    if json {
        err_line(
            &json!({ "error": {
                "kind": kind,
                "message": message,
                "http_status": http_status,
                "exit_status": status,
            } })
            .to_string(),
        );
    } else {
        err_line(&format!("tokenward: {message}"));
    }
    status
}

fn load(source: &Source) -> Result<Config, Error> {
    match source {
        Source::File(path) => Config::from_json_file(path),
        Source::Env(prefix) => Config::from_env(prefix.as_deref()),
    }
}

fn client(source: &Source) -> Result<Client, Failure> {
    Ok(Client::new(load(source)?)?)
}

pub fn run(invocation: &Invocation) -> u8 {
    let json = invocation.json;
    let source = &invocation.source;
    let result = match &invocation.command {
        Command::Help => {
            out(USAGE.as_bytes());
            return exit::OK;
        }
        Command::Version => {
            let version = env!("CARGO_PKG_VERSION");
            if json {
                out_line(&json!({ "version": version }).to_string());
            } else {
                out_line(&format!("tokenward {version}"));
            }
            return exit::OK;
        }
        Command::Doctor { probe } => return doctor(source, probe.as_deref(), json),
        Command::Token => token(source, json),
        Command::Headers => headers(source, json),
        Command::Inspect => inspect(source, json),
        Command::Request(args) => request(source, args, json),
    };
    match result {
        Ok(status) => status,
        Err(error) => fail(&error, json),
    }
}

fn token(source: &Source, json: bool) -> Result<u8, Failure> {
    let token = client(source)?.token()?;
    if json {
        out_line(
            &json!({
                "access_token": token.as_str(),
                "token_type": token.token_type(),
                "expires_in": token.remaining().as_secs(),
                "scope": token.granted_scope(),
            })
            .to_string(),
        );
    } else {
        out_line(token.as_str());
    }
    Ok(exit::OK)
}

/// A JSON object from ordered pairs (serde_json's map would sort them; header order is
/// what the API receives).
fn ordered_object<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> String {
    let members: Vec<String> = pairs
        .into_iter()
        .map(|(name, value)| format!("{}:{value}", Value::from(name)))
        .collect();
    format!("{{{}}}", members.join(","))
}

fn headers(source: &Source, json: bool) -> Result<u8, Failure> {
    let headers = client(source)?.headers()?;
    if json {
        out_line(&ordered_object(
            headers
                .iter()
                .map(|(n, v)| (n.as_str(), Value::from(v.as_str()))),
        ));
    } else {
        let text: String = headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
        out(text.as_bytes());
    }
    Ok(exit::OK)
}

fn body(data: &str) -> Result<Vec<u8>, Failure> {
    let usage = |message: String| Failure::Local {
        kind: "usage",
        status: exit::USAGE,
        message,
    };
    match data.strip_prefix('@') {
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| usage(format!("the body cannot be read from standard input: {e}")))?;
            Ok(bytes)
        }
        Some(path) => std::fs::read(path)
            .map_err(|e| usage(format!("the body file {path} cannot be read: {e}"))),
        None => Ok(data.as_bytes().to_vec()),
    }
}

fn request(source: &Source, args: &RequestArgs, json: bool) -> Result<u8, Failure> {
    let client = client(source)?;
    let body = args.data.as_deref().map(body).transpose()?;
    let method = args
        .method
        .clone()
        .unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_string());
    let mut request = Request::new(&method, &args.url);
    for (name, value) in &args.headers {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = client.send(request)?;
    let status = response.status();
    if json {
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in response.headers() {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        let headers = ordered_object(
            names
                .iter()
                .map(|n| (*n, Value::from(response.header(n).unwrap_or_default()))),
        );
        let (text, base64) = match std::str::from_utf8(response.body()) {
            Ok(text) => (Value::from(text), Value::Null),
            Err(_) => {
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD.encode(response.body());
                (Value::Null, Value::from(encoded))
            }
        };
        out_line(&format!(
            "{{\"status\":{status},\"headers\":{headers},\"body\":{text},\"body_base64\":{base64}}}"
        ));
    } else {
        if args.include {
            let mut head = format!("HTTP {status}\n");
            for (name, value) in response.headers() {
                head.push_str(&format!("{name}: {value}\n"));
            }
            head.push('\n');
            out(head.as_bytes());
        }
        out(response.body());
    }
    Ok(exit::of_http(status))
}

fn doctor(source: &Source, probe: Option<&str>, json: bool) -> u8 {
    let diagnosis = match client(source) {
        Ok(client) => {
            let mut options = DiagnoseOptions::new();
            if let Some(url) = probe {
                options = options.probe(url);
            }
            client.diagnose(&options)
        }
        Err(Failure::Library(error)) => Diagnosis::config_error(&error),
        Err(local) => return fail(&local, json),
    };
    if json {
        out_line(&diagnosis.to_json());
    } else {
        out_line(&diagnosis.to_string());
    }
    match diagnosis.verdict() {
        Some(check) if check.status() == CheckStatus::Fail => {
            let kind = check.error_kind().unwrap_or(ErrorKind::Panic);
            match (check.id(), kind, check.http_status()) {
                // An API that answers 404 or 5xx is not the identity provider's fault.
                ("probe", ErrorKind::BadResponse | ErrorKind::Server, Some(status)) => {
                    exit::of_http(status)
                }
                _ => exit::of_kind(kind),
            }
        }
        _ => exit::OK,
    }
}

fn inspect(source: &Source, json: bool) -> Result<u8, Failure> {
    let token = client(source)?.token()?;
    let info = TokenInfo::of(&token);
    if json {
        out_line(&info.to_json());
        return Ok(exit::OK);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let relative = |at: i64| {
        let delta = at - now;
        if delta >= 0 {
            format!("{at} (in {delta} s)")
        } else {
            format!("{at} ({} s ago)", -delta)
        }
    };
    let mut lines = vec![
        format!("fingerprint  {} ({})", info.fingerprint, info.token_type),
        format!(
            "lifetime     {} s; usable for {} s more; refreshed in {} s",
            info.lifetime.as_secs(),
            info.remaining.as_secs(),
            info.refresh_in.as_secs()
        ),
        format!(
            "scope        {}",
            info.granted_scope
                .as_deref()
                .unwrap_or("(not stated by the token endpoint)")
        ),
    ];
    match &info.claims {
        None => lines.push("jwt          no: an opaque token".into()),
        Some(claims) => {
            let mut claim = |name: &str, value: Option<String>| {
                if let Some(value) = value {
                    lines.push(format!("{name:<12} {value}"));
                }
            };
            claim("iss", claims.iss.clone());
            claim("sub", claims.sub.clone());
            claim("client_id", claims.client_id.clone());
            claim(
                "aud",
                (!claims.aud.is_empty()).then(|| claims.aud.join(", ")),
            );
            claim("jwt scope", claims.scope.clone());
            claim("iat", claims.iat.map(relative));
            claim("nbf", claims.nbf.map(relative));
            claim("exp", claims.exp.map(relative));
        }
    }
    out_line(&lines.join("\n"));
    Ok(exit::OK)
}
