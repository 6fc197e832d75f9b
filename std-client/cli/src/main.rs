//! `msglog-client`: send stdin to a msglog server, raw or one message per
//! line. Run with `--help` for the modes, options and exit codes.

#![forbid(unsafe_code)]

mod args;
mod exit;
mod explain;
mod framed;
mod input;
mod lines;
mod progress;
mod raw;
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
