//! Exit codes, and the command line's error: an exit code and one line.

use std::fmt;
use std::process::ExitCode;

/// Why the client failed; each reason has its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Bad arguments, or an invalid user name.
    Usage = msglog_std::USAGE_EXIT_CODE as isize,
    /// No password, or the password file cannot be read or is unusable.
    Password = 3,
    /// HOST cannot be resolved.
    Resolve = 4,
    /// No address of HOST accepted the connection.
    Connect = 5,
    /// A FILE cannot be opened, or reading the input failed.
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
    /// SIGINT (Ctrl-C): 128 + 2, as shells report it.
    Interrupted = 130,
    /// SIGTERM: 128 + 15.
    Terminated = 143,
}

impl Exit {
    /// Every code, in order, with its `--help` description.
    pub const ALL: [(Exit, &'static str); 14] = [
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
        (
            Exit::Input,
            "a FILE cannot be opened, or reading the input failed",
        ),
        (
            Exit::TooLong,
            "an input line is longer than 65535 bytes (--long-lines fail)",
        ),
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
        (
            Exit::Interrupted,
            "interrupted by SIGINT (Ctrl-C); the summary says what was acknowledged",
        ),
        (Exit::Terminated, "stopped by SIGTERM; the summary likewise"),
    ];

    /// The exit status.
    pub fn code_number(self) -> u8 {
        self as u8
    }

    pub fn code(self) -> ExitCode {
        ExitCode::from(self.code_number())
    }

    /// Whether running the command again later may succeed: the name
    /// service, the network or the server was unavailable, or the server
    /// could not store a message (msglog-server refuses one only when its
    /// disk fails), rather than the command, the password or the input
    /// being wrong. A retry resends what was acknowledged too, unless the
    /// input is cut at the line the error names. (With --retry the client
    /// retries lost connections itself first.)
    pub fn is_worth_a_retry(self) -> bool {
        matches!(
            self,
            Exit::Resolve | Exit::Connect | Exit::Rejected | Exit::Lost | Exit::Timeout
        )
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
