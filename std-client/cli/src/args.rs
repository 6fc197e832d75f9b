//! The command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use clap::Parser;

use crate::exit::Exit;
use crate::tls_args::TlsArgs;

/// Most transactions in flight `--window` accepts: the unacknowledged
/// messages are kept for `--retry`, up to 64 KiB each.
pub const MAX_WINDOW: usize = 1024;

const ABOUT: &str = "Send stdin to a msglog server: raw bytes, or one message per line.";

const MODES: &str = "\
Raw mode (no --user) sends stdin's bytes exactly as read, in fixed-size \
chunks, then shuts down its side of the connection and waits until the \
server closes it: that confirms the server took every byte. A reset does \
not (exit 10), and a raw server never sends a byte: one that does is \
probably a framed server (exit 12; use --user).

Framed mode (--user NAME) logs in and sends each line of stdin (without its \
\\n or \\r\\n; empty lines are skipped), or each --message, as one message, \
with up to --window in flight, then ends with CLOSE. Exit status 0 means the \
server acknowledged every message. Otherwise the client names the first \
message not acknowledged and how many were not.

The password comes from --password-file FILE (its content without a \
trailing line ending) or the MSGLOG_PASSWORD environment variable, never \
from an argument.

--retry N makes delivery at-least-once: after a lost connection (refused, \
reset, closed, timed out) the client reconnects, up to N times with pauses \
growing from 0.1 s to 5 s, and resends every message not yet acknowledged. \
A message the server wrote just before the connection broke is then logged \
twice; the client reports how many may be duplicates. A rejection (0xFF) is \
never retried.

--tls speaks TLS in either mode. The server's certificate must chain to a CA \
of --ca FILE (else of the system's store) and be valid for --tls-server-name \
(else HOST); a failure names the reason (unknown issuer, name mismatch, \
expired) and exits 13. There is no way to skip that check: for a server with \
a self-signed certificate, give that certificate as --ca. --cert and --key \
present a client certificate. In raw mode over TLS the client ends its \
stream with close_notify, and only the server's close_notify followed by its \
close confirms that it took every byte.";

static AFTER_HELP: LazyLock<String> = LazyLock::new(|| {
    let mut help = format!("{MODES}\n\nExit codes:\n   0  success\n");
    for (exit, description) in Exit::ALL {
        help.push_str(&format!("  {:>2}  {description}\n", exit as u8));
    }
    help
});

#[derive(Debug, Parser)]
#[command(name = "msglog-client", version, about = ABOUT, after_help = AFTER_HELP.as_str())]
pub struct Args {
    /// Server: an IPv4 or IPv6 address, or a host name.
    pub host: String,

    /// Server port.
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Framed mode: log in as NAME and send messages.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Read the password from FILE (framed mode; default: $MSGLOG_PASSWORD).
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,

    /// Send TEXT as one message instead of reading stdin (repeatable).
    #[arg(long = "message", short = 'm', value_name = "TEXT", requires = "user")]
    pub messages: Vec<OsString>,

    /// Messages in flight before waiting for a status.
    #[arg(long, value_name = "N", default_value_t = 64, requires = "user",
          value_parser = parse_window)]
    pub window: usize,

    /// Reconnect up to N times after a lost connection and resend what was not acknowledged.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "user")]
    pub retry: u32,

    /// Show messages sent and acknowledged, and throughput, when stderr is a terminal.
    #[arg(long, requires = "user")]
    pub progress: bool,

    /// Seconds allowed for connecting and for each read or write to make progress (0: no limit).
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_timeout)]
    pub timeout: Timeout,

    #[command(flatten)]
    pub tls: TlsArgs,
}

/// `--timeout`: `None` for no limit.
#[derive(Debug, Clone, Copy)]
pub struct Timeout(pub Option<Duration>);

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(0.0..=1e9).contains(&seconds) {
        return Err(format!("'{text}' is not between 0 and 1e9 seconds"));
    }
    Ok(Timeout(
        Some(Duration::from_secs_f64(seconds)).filter(|d| !d.is_zero()),
    ))
}

fn parse_window(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_WINDOW).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}' is not a window between 1 and {MAX_WINDOW}"
        )),
    }
}

/// A clap error (other than --help and --version) as one line.
pub fn one_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let before_usage = text.split("\nUsage:").next().unwrap_or_default();
    let parts: Vec<&str> = before_usage
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
        .collect();
    let line = parts.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    format!("{line} (see --help)")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn help_lists_every_exit_code() {
        let help = Args::command().render_long_help().to_string();
        for (exit, description) in Exit::ALL {
            assert!(help.contains(&format!("{:>2}  {description}", exit as u8)));
        }
        assert!(help.contains("at-least-once"));
    }

    #[test]
    fn usage_errors_are_one_line() {
        for argv in [
            &["msglog-client"][..],
            &["msglog-client", "host"],
            &["msglog-client", "host", "0"],
            &["msglog-client", "host", "5555", "--bogus"],
            &["msglog-client", "host", "5555", "--window", "4"],
            &[
                "msglog-client",
                "host",
                "5555",
                "--user",
                "u",
                "--window",
                "0",
            ],
            &["msglog-client", "host", "5555", "--timeout", "soon"],
        ] {
            let error = Args::try_parse_from(argv).unwrap_err();
            let line = one_line(&error);
            assert!(!line.contains('\n'), "{line}");
            assert!(line.len() > 20, "{line}");
        }
    }
}
