//! Exit codes, and the command line's error: an exit code and one line.

use std::fmt;
use std::process::ExitCode;

/// Why the client failed; each reason has its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Bad arguments, or an invalid user name.
    Usage = 2,
    /// No password, or the password file cannot be read or is unusable.
    Password = 3,
    /// HOST cannot be resolved.
    Resolve = 4,
    /// No address of HOST accepted the connection.
    Connect = 5,
    /// Reading stdin failed.
    Input = 6,
    /// An input line is longer than a message can be.
    TooLong = 7,
    /// The server rejected the user name or password.
    Auth = 8,
    /// The server rejected a message.
    Rejected = 9,
    /// The connection was lost before everything was confirmed.
    Lost = 10,
    /// No progress within the timeout.
    Timeout = 11,
    /// The server sent something that is not a status byte (raw mode: any byte).
    Protocol = 12,
    /// TLS failed: the server's certificate was not accepted, the server
    /// refused ours, or the TLS files cannot be used.
    Tls = 13,
}

impl Exit {
    /// Every code, in order, with its `--help` description.
    pub const ALL: [(Exit, &'static str); 12] = [
        (Exit::Usage, "bad arguments, or an invalid user name"),
        (
            Exit::Password,
            "no password given, or the password file cannot be read",
        ),
        (Exit::Resolve, "HOST cannot be resolved"),
        (
            Exit::Connect,
            "cannot connect (refused, unreachable, timed out)",
        ),
        (Exit::Input, "reading stdin failed"),
        (Exit::TooLong, "an input line is longer than 65535 bytes"),
        (Exit::Auth, "the server rejected the user name or password"),
        (Exit::Rejected, "the server rejected a message"),
        (
            Exit::Lost,
            "the connection was lost (raw mode: reset) before everything was confirmed",
        ),
        (Exit::Timeout, "no progress within --timeout"),
        (
            Exit::Protocol,
            "the server answered with a byte that is not a status (raw mode: with any byte)",
        ),
        (
            Exit::Tls,
            "TLS failed (unknown issuer, name mismatch, expired, client certificate refused, not a TLS server) or the TLS files cannot be used",
        ),
    ];

    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// Why the command line failed: its exit code and the line printed on stderr.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Print one line on stderr. A closed stderr is not worth a panic.
pub fn say(line: impl fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "msglog-client: {line}");
}
