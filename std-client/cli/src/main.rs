//! `msglog-client`: send stdin or files to a msglog server, raw or one
//! message per line. Run with `--help` for the modes, options and exit codes.
//!
//! The protocol, the connection and at-least-once delivery (`--retry`) are
//! the `msglog-client` library's; this binary owns what a command line
//! adds:
//!
//! | module | owns |
//! |---|---|
//! | `args` | the command line (clap, its one definition), HOST and PORT, the inputs |
//! | `raw` | raw mode: the inputs through the library's `send_raw` |
//! | `framed` | framed mode: input to the library's `Delivery`, and the report of an early stop |
//! | `input` | where messages come from: lines of stdin or FILEs, or `--message`; counting what was left |
//! | `lines` | splitting input into lines or NUL-terminated records in bounded memory; `--long-lines` |
//! | `watch` | the input thread, and waiting for input and the connection at once (mio) |
//! | `summary` | the summary line, on completion and on SIGINT/SIGTERM |
//! | `progress` | `--progress` (indicatif) |
//! | `exit` | exit codes and `CliError`, the one line printed on failure |
//! | `explain` | library errors as `CliError`s |
//! | `tls_args` | `--tls`, `--ca`, `--tls-server-name`, `--cert`, `--key`: the library's `TlsConnector` |

#![forbid(unsafe_code)]

mod args;
mod exit;
mod explain;
mod framed;
mod input;
mod lines;
mod platform;
mod progress;
mod raw;
mod summary;
mod tls_args;
mod watch;

use std::process::ExitCode;

use args::Settings;
use exit::say;

fn main() -> ExitCode {
    if let Some(kind) = msglog_std::Generate::requested() {
        return kind.print(<args::Args as clap::CommandFactory>::command());
    }
    let settings = match Settings::parse() {
        Ok(settings) => settings,
        Err(error) => return msglog_std::exit_for_command_line("msglog-client", &error),
    };
    if let Some(kind) = settings.args.generate {
        return kind.print(<args::Args as clap::CommandFactory>::command());
    }
    let result = match settings.args.user.as_deref() {
        Some(user) => framed::run(&settings, user),
        None => raw::run(&settings),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            say(&error);
            error.exit.code()
        }
    }
}
