//! `msglog-server export`: a NATS stream's records as messages.log lines.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::process::ExitCode;

use msglog_server::nats::{export, ExportError};

use crate::nats_args::ExportArgs;
use crate::stderr_log;

/// Exit codes: 0 done, 1 reading failed midway, 7 the output cannot be
/// written, 14 NATS refused us or cannot be reached, 15 no such stream.
pub fn run(args: &ExportArgs) -> ExitCode {
    let config = args.config();
    let result = match &args.output {
        Some(path) => match OpenOptions::new().append(true).create(true).open(path) {
            Ok(file) => export(&config, io::BufWriter::new(file)),
            Err(e) => {
                stderr_log::error(format_args!("cannot open {}: {e}", path.display()));
                return ExitCode::from(7);
            }
        },
        None => export(&config, io::stdout().lock()),
    };
    match result {
        Ok(summary) => {
            let _ = io::stdout().flush();
            log::info!(
                "exported {} records of stream {}{}{}",
                summary.records,
                config.stream,
                summary
                    .last_sequence
                    .map_or_else(String::new, |s| format!(" up to sequence {s}")),
                if summary.skipped > 0 {
                    format!(
                        " ({} messages that are not msglog records skipped)",
                        summary.skipped
                    )
                } else {
                    String::new()
                }
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            stderr_log::error(format_args!("{error}"));
            ExitCode::from(match &error {
                ExportError::Nats(e) => crate::nats_exit_code(e),
                ExportError::Output(_) => 7,
                _ => 1,
            })
        }
    }
}
