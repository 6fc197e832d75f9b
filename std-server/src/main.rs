//! `msglog-server`: the msglog server for std hosts. See `--help`.

#[macro_use]
mod report;

mod auth;
mod backoff;
mod cli;
mod connection;
mod dir_lock;
mod error;
mod hash_password;
mod journal;
mod listen;
mod log_file;
mod mailbox;
mod raw;
mod server;
mod shared;
mod slab;
mod system;
mod text;
mod timers;
mod timestamp;
mod transaction_log;
mod users;
mod verify_queue;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::shared::Limits;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let serve = &cli.serve;
    report::set_verbosity(serve.quiet, serve.verbose);
    let result = match &cli.command {
        Some(Command::HashPassword(args)) => hash_password::run(args),
        None if serve.raw => raw::run(
            serve.bind,
            serve.port,
            raw::Limits {
                min_rate: serve.raw_min_rate,
                window: serve.raw_rate_window,
                max_session: serve.raw_max_session,
                idle_timeout: serve.idle_timeout,
            },
        ),
        None => server::run(server::Config {
            bind: serve.bind,
            port: serve.port,
            dir: serve.dir.clone(),
            fsync: serve.fsync,
            workers: serve
                .workers
                .map(|n| n.get())
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            users: serve.users.clone(),
            auth: serve.auth,
            limits: Limits {
                frame_timeout: serve.frame_timeout,
                idle_timeout: serve.idle_timeout,
            },
            grace: serve.grace,
            max_connections: serve.max_connections,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            error!("{failure}");
            failure.exit_code()
        }
    }
}

/// `--help` and `--version` as clap prints them; any other command-line
/// error as one line, exit code 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("msglog-server: {first} (see --help)");
    ExitCode::from(2)
}
