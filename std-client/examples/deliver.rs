//! Deliver each line of stdin to a msglog server at least once, through
//! restarts of the server.
//!
//! ```text
//! printf 'one\ntwo\n' | MSGLOG_PASSWORD=secret cargo run -p msglog-client --example deliver -- 127.0.0.1:5555
//! ```
//!
//! Each non-empty line is one message from user `example`. A lost
//! connection is replaced up to ten times, and what was not acknowledged
//! is sent again; at the end the program says how many messages were
//! acknowledged and how many records may be duplicates. After an error it
//! lists the messages not acknowledged on stderr, to be sent again.

use std::env;
use std::io::{self, BufRead};
use std::process::ExitCode;

use msglog_client::{Credentials, Delivery, Options, RetryPolicy};

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let (Some(server), None) = (args.next(), args.next()) else {
        eprintln!("usage: deliver HOST:PORT < lines");
        return ExitCode::from(2);
    };
    let Ok(password) = env::var("MSGLOG_PASSWORD") else {
        eprintln!("deliver: set MSGLOG_PASSWORD");
        return ExitCode::from(2);
    };
    let credentials = Credentials::new("example", password);
    let retry = RetryPolicy::attempts(10);
    let mut delivery = Delivery::new(server, credentials, Options::default(), retry);

    let mut delivered = Ok(());
    for line in io::stdin().lock().lines() {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                eprintln!("deliver: reading stdin failed: {error}");
                return ExitCode::FAILURE;
            }
        };
        if !line.is_empty() {
            delivered = delivery.submit(line.as_bytes());
            if delivered.is_err() {
                break;
            }
        }
    }
    match delivered.and_then(|()| delivery.finish()) {
        Ok(stats) => {
            println!(
                "acknowledged: {}, retries: {}, maybe logged twice: {}",
                stats.acknowledged, stats.retries, stats.maybe_duplicates
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("deliver: {error}; not acknowledged:");
            for message in delivery.unacknowledged() {
                eprintln!("{}", String::from_utf8_lossy(message));
            }
            ExitCode::FAILURE
        }
    }
}
