//! The diagnosis: a setup walked check by check, in the order a token request depends on
//! it — configuration → DNS → TCP → proxy → TLS → clock → token request → token sanity →
//! (optionally) one API call — each check passing, warning or failing with the most likely
//! cause and the fix. [`Client::diagnose`] runs it; the `tokenward doctor` command prints it;
//! `tw_client_diagnose` returns it as JSON.
//!
//! - this file: [`Diagnosis`], [`Check`], the driver;
//! - `settings`: the configuration report (each key's source, redacted values, problems);
//! - `network`: DNS, TCP and the proxy in effect;
//! - `tls`: the handshake against the configured roots, and what a failure means;
//! - `x509`: just enough certificate reading to name subjects, issuers and dates;
//! - `exchange`: OpenID discovery (for the server's `Date` and supported scopes), the clock,
//!   and the token request with its outcome classified;
//! - `claims`: JWT claims, the token's sanity, and [`TokenInfo`] for `inspect`;
//! - `probe`: one API call read for what the API says about the token.
//!
//! Nothing here changes the client: the diagnosis builds its own transport and token
//! endpoint from the configuration, sends one token request per authentication method it
//! tries (no retries), and never prints a secret or a token.

#![forbid(unsafe_code)]

mod claims;
mod exchange;
mod network;
mod probe;
mod settings;
mod tls;
mod x509;

pub use claims::{JwtClaims, TokenInfo};

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::Client;
use crate::config::Config;
use crate::error::{Error, ErrorKind};

/// What [`Client::diagnose`] does besides the standard checks.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DiagnoseOptions {
    /// An API URL to call once (GET) with the token and the configured headers; its answer
    /// is read for what the API thinks of the token.
    pub probe: Option<String>,
}

impl DiagnoseOptions {
    /// No probe.
    pub fn new() -> DiagnoseOptions {
        DiagnoseOptions::default()
    }

    /// Call `url` once with the token (see [`DiagnoseOptions::probe`]).
    pub fn probe(mut self, url: impl Into<String>) -> DiagnoseOptions {
        self.probe = Some(url.into());
        self
    }
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    /// Fine (`✓`).
    Pass,
    /// Works, but something is likely to bite (`!`): see the cause and the fix.
    Warn,
    /// Broken (`✗`): see the cause and the fix.
    Fail,
    /// Not run, because it does not apply or an earlier check failed (`-`).
    Skip,
}

impl CheckStatus {
    /// `"pass"`, `"warn"`, `"fail"` or `"skip"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
        }
    }

    /// `✓`, `!`, `✗` or `-`.
    pub fn symbol(self) -> &'static str {
        match self {
            CheckStatus::Pass => "✓",
            CheckStatus::Warn => "!",
            CheckStatus::Fail => "✗",
            CheckStatus::Skip => "-",
        }
    }
}

/// One step of a [`Diagnosis`].
#[derive(Debug, Clone)]
pub struct Check {
    id: &'static str,
    status: CheckStatus,
    summary: String,
    details: Vec<String>,
    cause: Option<String>,
    fix: Option<String>,
    error_kind: Option<ErrorKind>,
    http_status: Option<u16>,
    elapsed: Option<Duration>,
    facts: Vec<(&'static str, Value)>,
}

impl Check {
    fn new(id: &'static str, status: CheckStatus, summary: impl Into<String>) -> Check {
        Check {
            id,
            status,
            summary: summary.into(),
            details: Vec::new(),
            cause: None,
            fix: None,
            error_kind: None,
            http_status: None,
            elapsed: None,
            facts: Vec::new(),
        }
    }

    pub(crate) fn pass(id: &'static str, summary: impl Into<String>) -> Check {
        Check::new(id, CheckStatus::Pass, summary)
    }

    pub(crate) fn skip(id: &'static str, summary: impl Into<String>) -> Check {
        Check::new(id, CheckStatus::Skip, summary)
    }

    pub(crate) fn warn(
        id: &'static str,
        summary: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        let mut check = Check::new(id, CheckStatus::Warn, summary);
        check.cause = Some(cause.into());
        check.fix = Some(fix.into());
        check
    }

    pub(crate) fn fail(
        id: &'static str,
        kind: ErrorKind,
        summary: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        let mut check = Check::new(id, CheckStatus::Fail, summary);
        check.error_kind = Some(kind);
        check.cause = Some(cause.into());
        check.fix = Some(fix.into());
        check
    }

    pub(crate) fn detail(mut self, line: impl Into<String>) -> Check {
        self.details.push(line.into());
        self
    }

    pub(crate) fn fact(mut self, name: &'static str, value: impl Into<Value>) -> Check {
        self.facts.push((name, value.into()));
        self
    }

    pub(crate) fn http(mut self, status: u16) -> Check {
        self.http_status = Some(status);
        self
    }

    pub(crate) fn took(mut self, elapsed: Duration) -> Check {
        self.elapsed = Some(elapsed);
        self
    }

    /// The check's stable identifier: `config`, `dns`, `tcp`, `proxy`, `tls`, `clock`,
    /// `token`, `token_sanity` or `probe`.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// A human title for the identifier (`token request` for `token`, …).
    pub fn title(&self) -> &'static str {
        match self.id {
            "dns" => "DNS",
            "tcp" => "TCP connect",
            "tls" => "TLS",
            "token" => "token request",
            "token_sanity" => "token sanity",
            "probe" => "API probe",
            other => other,
        }
    }

    /// Pass, warn, fail or skip.
    pub fn status(&self) -> CheckStatus {
        self.status
    }

    /// One line saying what was found.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// Further lines (for the configuration: one per key, with its source).
    pub fn details(&self) -> &[String] {
        &self.details
    }

    /// For a warning or failure: the most likely cause.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    /// For a warning or failure: what to do about it.
    pub fn fix(&self) -> Option<&str> {
        self.fix.as_deref()
    }

    /// For a failure: the error family it belongs to (what the same failure would be as an
    /// [`Error`]).
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.error_kind
    }

    /// The HTTP status the check saw, when it made a request that was answered.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// How long the check took, for the ones that touch the network.
    pub fn elapsed(&self) -> Option<Duration> {
        self.elapsed
    }

    fn to_value(&self) -> Value {
        let facts: serde_json::Map<String, Value> = self
            .facts
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        json!({
            "id": self.id,
            "title": self.title(),
            "status": self.status.as_str(),
            "summary": self.summary,
            "details": self.details,
            "cause": self.cause,
            "fix": self.fix,
            "error_kind": self.error_kind.map(ErrorKind::as_str),
            "http_status": self.http_status,
            "elapsed_ms": self.elapsed.map(|d| d.as_millis() as u64),
            "facts": facts,
        })
    }
}

impl fmt::Display for Check {
    /// `✓ title: summary`, then the details, cause and fix indented by four spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.symbol(),
            self.title(),
            self.summary
        )?;
        for line in &self.details {
            write!(f, "\n    {line}")?;
        }
        if let Some(cause) = &self.cause {
            write!(f, "\n    cause: {cause}")?;
        }
        if let Some(fix) = &self.fix {
            write!(f, "\n    fix: {fix}")?;
        }
        Ok(())
    }
}

/// The result of [`Client::diagnose`]: every check in order, and a verdict.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    checks: Vec<Check>,
}

impl Diagnosis {
    /// The checks, in the order they ran.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The check that explains the outcome: the first failure, else the first warning;
    /// `None` when every check passed (or was skipped).
    pub fn verdict(&self) -> Option<&Check> {
        let first = |status| self.checks.iter().find(|c| c.status == status);
        first(CheckStatus::Fail).or_else(|| first(CheckStatus::Warn))
    }

    /// Whether no check failed (warnings allowed).
    pub fn is_ok(&self) -> bool {
        !self.checks.iter().any(|c| c.status == CheckStatus::Fail)
    }

    /// The error family of the first failure, if any.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.checks
            .iter()
            .find(|c| c.status == CheckStatus::Fail)
            .and_then(|c| c.error_kind)
    }

    /// The verdict as one line: `✗ token request: …`, `! clock: …`, or
    /// `✓ all N checks passed`.
    pub fn verdict_line(&self) -> String {
        match self.verdict() {
            Some(check) => format!(
                "{} {}: {}",
                check.status.symbol(),
                check.title(),
                check.summary
            ),
            None => format!(
                "✓ all {} checks passed",
                self.checks
                    .iter()
                    .filter(|c| c.status == CheckStatus::Pass)
                    .count()
            ),
        }
    }

    /// The diagnosis as JSON (the C ABI's `tw_client_diagnose` format):
    /// `{"ok":bool,"error_kind":"…"|null,"verdict":"<line>","checks":[{"id","title",
    /// "status":"pass"|"warn"|"fail"|"skip","summary","details":[…],"cause","fix",
    /// "error_kind","http_status","elapsed_ms","facts":{…}}]}`.
    pub fn to_json(&self) -> String {
        json!({
            "ok": self.is_ok(),
            "error_kind": self.error_kind().map(ErrorKind::as_str),
            "verdict": self.verdict_line(),
            "checks": self.checks.iter().map(Check::to_value).collect::<Vec<_>>(),
        })
        .to_string()
    }

    /// The diagnosis of a configuration that could not be built: one failed `config` check
    /// listing every problem (for `tokenward doctor` when loading fails).
    pub fn config_error(error: &Error) -> Diagnosis {
        Diagnosis {
            checks: vec![settings::rejected(error)],
        }
    }
}

impl fmt::Display for Diagnosis {
    /// One block per check (see [`Check`]'s `Display`), then `verdict: <line>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        write!(f, "verdict: {}", self.verdict_line())
    }
}

impl Client {
    /// Walk the setup and say what is wrong with it: configuration → DNS → TCP → proxy →
    /// TLS → clock → token request → token sanity → (with [`DiagnoseOptions::probe`]) one
    /// API call. Meant for a command line (`tokenward doctor`) or a program's start-up
    /// self-test.
    ///
    /// Blocks while it talks to the network (each step bounded by the configured timeouts).
    /// It does not touch this client's cache: it sends its own token request (a second
    /// one with the other of `client_secret_post`/`client_secret_basic` when the first is
    /// refused as `invalid_client`), without retries. Never fails: every problem is a check.
    pub fn diagnose(&self, options: &DiagnoseOptions) -> Diagnosis {
        run(self.config(), options)
    }
}

/// What the checks learn, for the checks after them.
#[derive(Default)]
pub(crate) struct Findings {
    /// Why there is no point in asking the server again (the first failed check's title),
    /// `None` while the way to it works.
    pub(crate) blocked: Option<&'static str>,
    pub(crate) token: Option<exchange::Obtained>,
    pub(crate) discovery: Option<exchange::Discovery>,
    pub(crate) clock_skew: Option<i64>,
}

fn run(config: &Config, options: &DiagnoseOptions) -> Diagnosis {
    let mut checks = vec![settings::report(config)];
    let mut findings = Findings::default();
    let target = match network::Target::of(config) {
        Ok(target) => target,
        Err(check) => {
            checks.push(*check);
            return Diagnosis { checks };
        }
    };
    let route = network::Route::of(config, &target);
    let mut step = |check: Check, findings: &mut Findings| {
        if check.status == CheckStatus::Fail && findings.blocked.is_none() {
            findings.blocked = Some(check.title());
        }
        checks.push(check);
    };
    step(network::dns(&target, &route), &mut findings);
    let tcp = match findings.blocked {
        None => network::tcp(config, &target, &route),
        Some(failed) => Check::skip("tcp", format!("skipped: the {failed} check failed")),
    };
    step(tcp, &mut findings);
    step(
        network::proxy(config, &target, &route, findings.blocked),
        &mut findings,
    );
    step(
        tls::check(config, &target, &route, findings.blocked),
        &mut findings,
    );
    checks.extend(exchange::run(config, &target, &mut findings));
    checks.push(claims::sanity(config, &findings));
    if let Some(url) = &options.probe {
        checks.push(probe::check(config, url, &findings));
    }
    Diagnosis { checks }
}

/// Milliseconds for a summary line.
pub(crate) fn ms(elapsed: Duration) -> String {
    format!("{} ms", elapsed.as_millis())
}
