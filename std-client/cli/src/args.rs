//! The command line: its clap definition (the one place it is written,
//! so that help, completions and man pages come from it), and what the
//! positional arguments mean once parsed.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};
use msglog_core::DEFAULT_PORT;
use msglog_std::{parse_duration, Zero};

use crate::exit::Exit;
use crate::tls_args::TlsArgs;

/// Most transactions in flight `--window` accepts: the unacknowledged
/// messages are kept for `--retry`, up to 64 KiB each.
pub const MAX_WINDOW: usize = 1024;

const ABOUT: &str = "Send input to a msglog server: raw bytes, or one message per line.";

const MODES: &str = "\
Input is stdin, or each FILE in turn (`-` is stdin), as with cat, nc or \
logger -f.

Raw mode (no --user) sends the input's bytes exactly as read, in fixed-size \
chunks, then shuts down its side of the connection and waits until the \
server closes it: that confirms the server took every byte. A reset does \
not (exit 10), and a raw server never sends a byte: one that does is \
probably a framed server (exit 12; use --user).

Framed mode (--user NAME) logs in and sends each line of the input \
(without its \\n or \\r\\n; empty lines are skipped; with -z, each \
NUL-terminated record), or each --message, as one message, with up to \
--window in flight, then ends with CLOSE. Exit status 0 means the server \
acknowledged every message. Otherwise the client names the first message \
not acknowledged and how many were not. Lines longer than 65535 bytes, the \
most a message carries, stop the client (--long-lines fail), are cut \
(truncate) or become several messages (split); truncate and split cut \
before a UTF-8 character that would not fit whole.

HOST is a host name or an IPv4 or IPv6 address (`::1` or `[::1]`), \
optionally with the port (`[::1]:5555`, `localhost:5555`); otherwise PORT, \
or 5555. A second argument that is not a port number is the first FILE \
(write a FILE named like a number as ./NUMBER). Every address of HOST is \
tried, IPv6 and IPv4 alternating, a new attempt every 250 ms while the \
earlier ones go on (RFC 8305); --timeout bounds each attempt.

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
close confirms that it took every byte.

On completion, and on SIGINT (Ctrl-C) or SIGTERM, one summary line on \
stderr says what was read, acknowledged, rejected and not sent, the time \
and the rate (-q: no summary).";

static AFTER_HELP: LazyLock<String> = LazyLock::new(|| {
    let mut help = format!("{MODES}\n\nExit codes (R: worth a retry later):\n   0     success\n");
    for (exit, description) in Exit::ALL {
        let retry = if exit.is_worth_a_retry() { "R" } else { " " };
        help.push_str(&format!(
            "  {:>2}  {retry}  {description}\n",
            exit.code_number()
        ));
    }
    help
});

#[derive(Debug, Parser)]
#[command(name = "msglog-client", version, about = ABOUT, after_help = AFTER_HELP.as_str())]
pub struct Args {
    /// Server: a host name, an IPv4 or IPv6 address (`::1` or `[::1]`), or HOST:PORT.
    pub host: String,

    /// Server port [default: 5555].
    pub port: Option<OsString>,

    /// Read FILE instead of stdin (`-`: stdin); several are read in order.
    #[arg(value_name = "FILE")]
    pub files: Vec<OsString>,

    /// Read FILE, like a FILE argument (as logger -f does; repeatable, read before FILE arguments).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file_options: Vec<OsString>,

    /// Framed mode: log in as NAME and send messages.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Read the password from FILE (framed mode; default: $MSGLOG_PASSWORD).
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,

    /// Send TEXT as one message instead of reading input (repeatable).
    #[arg(long = "message", short = 'm', value_name = "TEXT", requires = "user",
          conflicts_with_all = ["files", "file_options"])]
    pub messages: Vec<OsString>,

    /// Records end with NUL instead of a line ending (framed mode).
    #[arg(short = 'z', long = "null", requires = "user")]
    pub null: bool,

    /// What to do with a line longer than 65535 bytes (framed mode).
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = LongLines::Fail,
          requires = "user")]
    pub long_lines: LongLines,

    /// Messages in flight before waiting for a status (256: a round trip
    /// costs about 0.1 ms, so 64 in flight would cap one connection near
    /// 500,000 lines/s; the client holds at most this many unacknowledged).
    #[arg(long, value_name = "N", default_value_t = 256, requires = "user",
          value_parser = parse_window)]
    pub window: usize,

    /// Reconnect up to N times after a lost connection and resend what was not acknowledged.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "user")]
    pub retry: u32,

    /// Show messages sent and acknowledged, and throughput, when stderr is a terminal.
    #[arg(long, requires = "user")]
    pub progress: bool,

    /// No summary line (errors are still reported).
    #[arg(short, long)]
    pub quiet: bool,

    /// Time allowed for each connection attempt and for each read or
    /// write to make progress: 2s, 500ms, 1m, a bare number of seconds (0: no limit).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Timeout,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Write shell completions or the man page to stdout and exit.
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    pub generate: Option<msglog_std::Generate>,
}

/// `--long-lines`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LongLines {
    /// Stop at the line, naming it (exit 7); what came before is delivered.
    Fail,
    /// Send the first 65535 bytes of the line.
    Truncate,
    /// Send the line as several messages of at most 65535 bytes.
    Split,
}

/// `--timeout`: `None` for no limit.
#[derive(Debug, Clone, Copy)]
pub struct Timeout(pub Option<Duration>);

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    let duration = parse_duration(text, Zero::Allowed).map_err(|e| e.to_string())?;
    Ok(Timeout(Some(duration).filter(|d| !d.is_zero())))
}

fn parse_window(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_WINDOW).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}' is not a window between 1 and {MAX_WINDOW}"
        )),
    }
}

/// Where the input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

/// The command line, its positional arguments sorted out.
#[derive(Debug)]
pub struct Settings {
    pub args: Args,
    /// The server's host, without brackets.
    pub host: String,
    pub port: u16,
    /// The input, in order (stdin when no FILE was given).
    pub inputs: Vec<Source>,
}

impl Settings {
    /// Parse the command line; `Err` for `--help`, `--version` and usage errors.
    pub fn parse() -> Result<Settings, clap::Error> {
        Settings::from_args(Args::try_parse()?)
    }

    #[cfg(test)]
    fn parse_from(argv: &[&str]) -> Result<Settings, clap::Error> {
        Settings::from_args(Args::try_parse_from(argv)?)
    }

    fn from_args(args: Args) -> Result<Settings, clap::Error> {
        let usage = |message: String| Args::command().error(ErrorKind::ValueValidation, message);
        let (host, port_in_host) = split_host(&args.host).map_err(usage)?;
        let mut files: Vec<OsString> = args.file_options.clone();
        let port = match (&args.port, port_in_host) {
            (None, port) => port.unwrap_or(DEFAULT_PORT),
            (Some(second), port) => match (parse_port(second), port) {
                (Some(Ok(_)), Some(_)) => {
                    return Err(usage(format!(
                        "the port is given twice: in HOST '{}' and as PORT '{}'",
                        args.host,
                        second.to_string_lossy()
                    )))
                }
                (Some(Ok(port)), None) => port,
                (Some(Err(message)), _) => return Err(usage(message)),
                // Not a number: the first FILE.
                (None, port) => {
                    files.push(second.clone());
                    port.unwrap_or(DEFAULT_PORT)
                }
            },
        };
        files.extend(args.files.iter().cloned());
        if !args.messages.is_empty() && !files.is_empty() {
            return Err(usage(format!(
                "--message cannot be used with a FILE ('{}'): messages come from one or the other",
                files
                    .first()
                    .map(|f| f.to_string_lossy())
                    .unwrap_or_default()
            )));
        }
        if let Some(empty) = args.messages.iter().position(|m| m.is_empty()) {
            return Err(usage(format!(
                "--message #{} is empty: a message has at least one byte",
                empty + 1
            )));
        }
        let inputs = if files.is_empty() {
            vec![Source::Stdin]
        } else {
            files
                .into_iter()
                .map(|file| match file.to_str() {
                    Some("-") => Source::Stdin,
                    _ => Source::File(file.into()),
                })
                .collect()
        };
        Ok(Settings {
            args,
            host,
            port,
            inputs,
        })
    }
}

/// A port number, or `None` when `text` is not made of digits (then it is a FILE).
fn parse_port(text: &OsStr) -> Option<Result<u16, String>> {
    let text = text.to_str()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("invalid port '{text}': a port is 1 to 65535")),
    })
}

/// HOST as written: `name`, `1.2.3.4`, `::1`, `[::1]`, each optionally
/// with `:PORT` (the IPv6 address then in brackets).
fn split_host(text: &str) -> Result<(String, Option<u16>), String> {
    let invalid = |why: &str| format!("invalid HOST '{text}': {why}");
    let port_of = |port: &str| match parse_port(OsStr::new(port)) {
        Some(Ok(port)) => Ok(Some(port)),
        Some(Err(message)) => Err(message),
        None => Err(invalid("what follows the last ':' is not a port number")),
    };
    if let Some(rest) = text.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return Err(invalid("no ']' after '['"));
        };
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid("brackets hold an IPv6 address"));
        }
        return match after {
            "" => Ok((address.to_owned(), None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((address.to_owned(), port_of(port)?)),
                None => Err(invalid("only ':PORT' may follow ']'")),
            },
        };
    }
    match text.matches(':').count() {
        0 if text.is_empty() => Err(invalid("it is empty")),
        0 => Ok((text.to_owned(), None)),
        1 => {
            let (host, port) = text.split_once(':').unwrap_or((text, ""));
            if host.is_empty() {
                return Err(invalid("no host before ':'"));
            }
            Ok((host.to_owned(), port_of(port)?))
        }
        // Two colons or more: an IPv6 address without a port.
        _ if text.parse::<std::net::Ipv6Addr>().is_ok() => Ok((text.to_owned(), None)),
        _ => Err(invalid(
            "not an IPv6 address (with a port, write it as [ADDRESS]:PORT)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn help_lists_every_exit_code() {
        let help = Args::command().render_long_help().to_string();
        for (exit, description) in Exit::ALL {
            assert!(help.contains(description), "{description}");
            assert!(help.contains(&format!("{:>2}  ", exit.code_number())));
        }
        assert!(help.contains("at-least-once"));
    }

    fn target(argv: &[&str]) -> (String, u16, Vec<Source>) {
        let settings = Settings::parse_from(argv).unwrap();
        (settings.host, settings.port, settings.inputs)
    }

    fn file(name: &str) -> Source {
        Source::File(name.into())
    }

    #[test]
    fn host_port_and_files() {
        let c = "msglog-client";
        assert_eq!(target(&[c, "h"]), ("h".into(), 5555, vec![Source::Stdin]));
        assert_eq!(
            target(&[c, "h", "6000"]),
            ("h".into(), 6000, vec![Source::Stdin])
        );
        assert_eq!(
            target(&[c, "h:6000"]),
            ("h".into(), 6000, vec![Source::Stdin])
        );
        assert_eq!(
            target(&[c, "::1"]),
            ("::1".into(), 5555, vec![Source::Stdin])
        );
        assert_eq!(
            target(&[c, "[::1]"]),
            ("::1".into(), 5555, vec![Source::Stdin])
        );
        assert_eq!(
            target(&[c, "[::1]:7"]),
            ("::1".into(), 7, vec![Source::Stdin])
        );
        assert_eq!(
            target(&[c, "::1", "7"]),
            ("::1".into(), 7, vec![Source::Stdin])
        );
        assert_eq!(
            target(&[c, "1.2.3.4:9", "a.log", "-", "./5"]),
            (
                "1.2.3.4".into(),
                9,
                vec![file("a.log"), Source::Stdin, file("./5")]
            )
        );
        assert_eq!(
            target(&[c, "h", "a.log", "b.log"]),
            ("h".into(), 5555, vec![file("a.log"), file("b.log")])
        );
        assert_eq!(
            target(&[c, "h", "8", "-f", "x", "b.log"]),
            ("h".into(), 8, vec![file("x"), file("b.log")])
        );
    }

    #[test]
    fn usage_errors_are_one_line() {
        for argv in [
            &["msglog-client"][..],
            &["msglog-client", "host", "0"],
            &["msglog-client", "host", "70000"],
            &["msglog-client", "host:0"],
            &["msglog-client", "host:5555", "5555"],
            &["msglog-client", "[::1"],
            &["msglog-client", "[nothost]:5"],
            &["msglog-client", "::1:x"],
            &["msglog-client", "host:"],
            &["msglog-client", "host", "5555", "--bogus"],
            &["msglog-client", "host", "5555", "--window", "4"],
            &["msglog-client", "host", "-z"],
            &["msglog-client", "host", "--user", "u", "--window", "0"],
            &["msglog-client", "host", "--timeout", "soon"],
            &["msglog-client", "host", "--user", "u", "-m", ""],
            &["msglog-client", "host", "--user", "u", "-m", "x", "file"],
            &[
                "msglog-client",
                "host",
                "--user",
                "u",
                "--long-lines",
                "wrap",
            ],
        ] {
            let error = Settings::parse_from(argv).unwrap_err();
            let line = msglog_std::usage_error("msglog-client", &error);
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(line.matches("--help").count(), 1, "{line}");
            assert!(line.len() > 40, "{line}");
        }
    }

    #[test]
    fn timeouts_are_durations() {
        let timeout = |text: &str| {
            Settings::parse_from(&["msglog-client", "h", "--timeout", text])
                .unwrap()
                .args
                .timeout
                .0
        };
        assert_eq!(timeout("2s"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(timeout("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(timeout("0"), None);
    }
}
