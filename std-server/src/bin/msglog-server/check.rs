//! `msglog-server check [FLAGS]`: what the server would do with these
//! flags, or the one line and exit code it would fail with.

use std::io::{self, Write};
use std::process::ExitCode;

use crate::cli::ServeArgs;
use crate::{exit_code, stderr_log};

pub fn run(args: &ServeArgs) -> ExitCode {
    let checked = if args.raw {
        msglog_server::check_raw(&args.raw_config())
    } else {
        msglog_server::check(&args.config())
    };
    let report = match checked {
        Ok(report) => report,
        Err(error) => {
            stderr_log::error(format_args!("{error}"));
            return ExitCode::from(exit_code(&error));
        }
    };
    for warning in &report.warnings {
        stderr_log::warning(format_args!("{warning}"));
    }
    let mut text = report.lines.join("\n");
    text.push_str("\nconfiguration OK\n");
    match io::stdout().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            stderr_log::error(format_args!("writing to stdout failed: {e}"));
            ExitCode::from(7)
        }
    }
}
