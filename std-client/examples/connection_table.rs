//! Send messages to two msglog servers through one `ConnectionTable`.
//!
//! ```text
//! MSGLOG_PASSWORD=secret cargo run -p msglog-client --example connection_table -- \
//!     127.0.0.1:5555 127.0.0.1:5556
//! ```
//!
//! Each server gets three messages from user `example` over one connection
//! (opened and authenticated on first use); dropping the table closes both.

use std::env;
use std::process::ExitCode;

use msglog_client::{ConnectionTable, Credentials, Error, Options};

fn main() -> ExitCode {
    let servers: Vec<String> = env::args().skip(1).collect();
    let Ok(password) = env::var("MSGLOG_PASSWORD") else {
        eprintln!("connection_table: set MSGLOG_PASSWORD");
        return ExitCode::from(2);
    };
    if servers.len() != 2 {
        eprintln!("usage: connection_table HOST:PORT HOST:PORT");
        return ExitCode::from(2);
    }
    match send_rounds(&servers, &Credentials::new("example", password)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("connection_table: {error}");
            ExitCode::FAILURE
        }
    }
}

fn send_rounds(servers: &[String], credentials: &Credentials) -> Result<(), Error> {
    let mut table = ConnectionTable::new(Options::default());
    for round in 1..=3 {
        for server in servers {
            let message = format!("round {round} to {server}");
            table.send(server, credentials, message.as_bytes())?;
        }
    }
    println!("{} connections, every message acknowledged", table.len());
    table.close_all()
}
