//! `msglog-client`: send stdin to a msglog server, raw or one message per
//! line. Run with `--help` for the modes, options and exit codes.
//!
//! The protocol, the connection and at-least-once delivery (`--retry`) are
//! the `msglog-client` library's; this binary owns what a command line
//! adds:
//!
//! | module | owns |
//! |---|---|
//! | `args` | the command line (clap) |
//! | `raw` | raw mode: stdin through the library's `send_raw` |
//! | `framed` | framed mode: input to the library's `Delivery`, and the report of an early stop |
//! | `input` | where messages come from: stdin lines or `--message`, and counting what was left |
//! | `lines` | splitting stdin into lines in bounded memory |
//! | `watch` | the stdin thread, and waiting for stdin and the connection at once (mio) |
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
mod progress;
mod raw;
mod tls_args;
mod watch;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use args::Args;
use exit::{say, Exit};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            say(args::one_line(&error));
            return Exit::Usage.code();
        }
    };
    let result = match args.user.as_deref() {
        Some(user) => framed::run(&args, user),
        None => raw::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            say(&error);
            error.exit.code()
        }
    }
}
