//! `tokenward`: the library's client on the command line — a token for a shell script, the
//! headers, an authorized request, a description of the token, and `doctor`, which walks a
//! setup and says what is wrong with it. Configured exactly like the library: environment
//! variables (`TOKENWARD_*`, or another prefix) or a JSON file. See docs/cli.md.

#![forbid(unsafe_code)]

mod args;
mod commands;
mod exit;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let invocation = match args::parse(std::env::args().skip(1)) {
        Ok(invocation) => invocation,
        Err(e) => {
            let json = std::env::args().any(|a| a == "--json");
            commands::report_usage(&e.0, json);
            return exit::code(exit::USAGE);
        }
    };
    let status = match std::panic::catch_unwind(|| commands::run(&invocation)) {
        Ok(status) => status,
        Err(_) => {
            let _ = writeln!(
                std::io::stderr(),
                "tokenward: internal error (a bug; please report it)"
            );
            exit::INTERNAL
        }
    };
    exit::code(status)
}
