//! `msglog-server`: the command line around the `msglog_server` library.
//! It parses the arguments, builds the library's configuration, runs it,
//! shows the library's log on stderr (`stderr_log`) and turns its errors
//! into one line and an exit code. See `--help`.

mod check;
mod cli;
mod export;
mod hash_password;
mod nats_args;
mod stderr_log;
mod tls_args;
mod users;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use msglog_server::nats::NatsError;
use msglog_server::{LockError, LogOpenError, ServerError};

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse().and_then(|cli| cli.check().map(|()| cli)) {
        Ok(cli) => cli,
        Err(e) => return msglog_std::exit_for_command_line("msglog-server", &e),
    };
    if let Some(kind) = cli.generate {
        return kind.print(Cli::command());
    }
    let serve = &cli.serve;
    stderr_log::install(serve.quiet, serve.verbose);
    match &cli.command {
        Some(Command::HashPassword(args)) => return hash_password::run(args),
        Some(Command::Users(args)) => return users::run(&args.action),
        Some(Command::Check(args)) => return check::run(args),
        Some(Command::Reload(args)) => return reload(&args.dir),
        Some(Command::Export(args)) => return export::run(args),
        None => {}
    }
    let result = if serve.raw {
        msglog_server::run_raw(serve.raw_config())
    } else {
        msglog_server::run(serve.config())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            stderr_log::error(format_args!("{error}"));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// `msglog-server reload --dir DIR`.
fn reload(dir: &std::path::Path) -> ExitCode {
    match msglog_server::request_reload(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            stderr_log::error(format_args!(
                "no msglog-server is running with --dir {}",
                dir.display()
            ));
            ExitCode::from(1)
        }
        Err(e) => {
            stderr_log::error(format_args!(
                "cannot ask the server in {} to reload: {e}",
                dir.display()
            ));
            ExitCode::from(1)
        }
    }
}

/// Exit codes (see `--help`): 1 runtime error, 3 cannot listen, 4 cannot
/// open the logs, 5 bad users file, 7 stdout failed, 8 a torn last line
/// cannot be saved in its side file, 9 another server holds the log
/// directory, 10 the PID file cannot be written, 13 the TLS files cannot be
/// loaded, 14 NATS cannot be reached or refused us or a NATS secret file is
/// unreadable, 15 the NATS stream is missing or cannot take the records. (2
/// is a bad command line, 6 a failed `hash-password`; `users` adds 10, 11
/// and 12.)
pub fn exit_code(error: &ServerError) -> u8 {
    match error {
        ServerError::Listen(_) | ServerError::Metrics(_) | ServerError::Activation(_) => 3,
        ServerError::PidFile(_) => 10,
        ServerError::LogDirectory { .. } => 4,
        ServerError::Log(LogOpenError::SideFile { .. }) => 8,
        ServerError::Log(_) => 4,
        ServerError::Lock(LockError::Held { .. }) => 9,
        ServerError::Lock(_) => 4,
        ServerError::Users(_) => 5,
        ServerError::Stdout(_) => 7,
        ServerError::Tls(_) => 13,
        ServerError::Nats(e) => nats_exit_code(e),
        _ => 1,
    }
}

/// 14: NATS cannot be used as configured; 15: the stream cannot.
pub fn nats_exit_code(error: &NatsError) -> u8 {
    match error {
        NatsError::Secret { .. } | NatsError::Connect { .. } | NatsError::Url { .. } => 14,
        NatsError::Stream { .. } => 15,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn exit_codes() {
        let io = || io::Error::other("x");
        let cases = [
            (
                ServerError::Io {
                    context: "x",
                    source: io(),
                },
                1,
            ),
            (
                ServerError::LogDirectory {
                    path: "/nonexistent".into(),
                    source: io(),
                },
                4,
            ),
            (ServerError::Stdout(io()), 7),
            (
                ServerError::Lock(LockError::Held {
                    dir: "d".into(),
                    lock: "d/l".into(),
                    pid: Some(1),
                }),
                9,
            ),
            (
                ServerError::Lock(LockError::Io {
                    lock: "d/l".into(),
                    source: io(),
                }),
                4,
            ),
            (
                ServerError::Log(LogOpenError::SideFile {
                    log: "l".into(),
                    side: "l.torn".into(),
                    offset: 1,
                    len: 2,
                    source: io(),
                }),
                8,
            ),
            (
                ServerError::Log(LogOpenError::Log {
                    action: "cannot open",
                    path: "l".into(),
                    source: io(),
                }),
                4,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(exit_code(&error), code, "{error}");
        }
    }
}
