//! The command line: its clap definition (the one place it is written,
//! so that help, completions and man pages come from it) and the password.

use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use msglog_core::{DEFAULT_PORT, MAX_PAYLOAD};
use msglog_std::{read_password_file, Zero};

/// Raw mode's default stream size: 1 GiB.
pub const DEFAULT_RAW_BYTES: u64 = 1 << 30;

#[derive(Debug, Parser)]
#[command(
    name = "msglog-bench",
    version,
    about = "Load generator for msglog-server: msgs/s, MB/s and status latency",
    after_help = "Examples:\n  \
        msglog-bench -c 50 -n 100000 -s 64 -w 16      # 5,000,000 messages in all\n  \
        msglog-bench -c 10000 -w 16 --duration 10s --json\n  \
        msglog-bench -c 1 -w 64 -q --histogram run.hgrm --plot run.svg\n  \
        msglog-bench --raw --bytes 1G -p 6000\n  \
        msglog-bench --tls --ca ca.pem --host localhost -c 1000 -n 1\n\n\
        Before the run, one connection checks the address and (framed mode) the\n\
        login: a closed port or a refused login ends the benchmark at once.\n\n\
        The password: --password-file FILE (its content without a trailing line\n\
        ending), else --password (visible in ps), else $MSGLOG_PASSWORD, else `bench`.\n\n\
        Exit status: 0 when every message was acknowledged and no error happened,\n\
        1 otherwise, 2 for a usage error, 3 when the benchmark could not start\n\
        (the address, the login, the event loops)."
)]
pub struct Args {
    /// Server host name or address (an IPv6 address with or without brackets).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Server port.
    #[arg(short, long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 50, value_parser = parse_connections)]
    pub connections: usize,

    /// Messages per connection, not in all: -c 50 -n 1000 sends 50,000 (framed mode; exclusive with --duration).
    #[arg(
        short = 'n',
        long,
        default_value_t = 10_000,
        conflicts_with = "duration"
    )]
    pub messages: u64,

    /// Message payload size in bytes (1..=65535).
    #[arg(short = 's', long, default_value_t = 64, value_parser = parse_message_size)]
    pub size: usize,

    /// MESSAGE transactions in flight per connection.
    #[arg(short = 'w', long, default_value_t = 1, value_parser = parse_window)]
    pub window: usize,

    /// Event-loop threads [default: number of CPUs].
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,

    /// Send for this long instead of -n messages (e.g. 10s, 500ms, 2m; a bare number is seconds).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// User name sent in NAME.
    #[arg(long, default_value = "bench")]
    pub user: String,

    /// Password sent in PASSWORD; visible in ps: prefer --password-file or $MSGLOG_PASSWORD [default: bench].
    #[arg(long, conflicts_with = "password_file")]
    pub password: Option<String>,

    /// Read the password from FILE (its content without a trailing line ending).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Print one summary line instead of the table (as redis-benchmark -q does).
    #[arg(short, long, conflicts_with = "json")]
    pub quiet: bool,

    /// Write the latency distribution to FILE in HdrHistogram's percentile format (.hgrm, milliseconds).
    #[arg(long, value_name = "FILE")]
    pub histogram: Option<PathBuf>,

    /// Draw the latency by percentile into FILE, an SVG picture.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Raw stream mode: send --bytes to `msglog-server --raw`.
    #[arg(long)]
    pub raw: bool,

    /// Raw mode: total bytes to stream, split over the connections (suffixes K, M, G: powers of 1024) [default: 1G].
    #[arg(long, requires = "raw", value_parser = parse_bytes)]
    pub bytes: Option<u64>,

    /// Give up when no connection makes progress for this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Connections being opened or authenticated at once (keeps the server's accept backlog from overflowing).
    #[arg(long, default_value_t = 256, value_parser = parse_connections)]
    pub connect_batch: usize,

    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    /// Write shell completions or the man page to stdout and exit.
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    pub generate: Option<msglog_std::Generate>,
}

impl Args {
    /// Parse the process arguments; `Err` for `--help`, `--version` and usage errors.
    pub fn from_command_line() -> Result<Args, clap::Error> {
        let args = <Args as Parser>::try_parse()?;
        if args.user.is_empty() || args.password.as_deref() == Some("") {
            return Err(Args::command().error(
                ErrorKind::InvalidValue,
                "--user and --password must not be empty",
            ));
        }
        Ok(args)
    }

    /// The password: --password-file, --password, $MSGLOG_PASSWORD, or `bench`.
    pub fn password(&self) -> Result<Vec<u8>, String> {
        let password = match (&self.password_file, &self.password) {
            (Some(path), _) => read_password_file(path)
                .map_err(|e| format!("cannot read password file '{}': {e}", path.display()))?,
            (None, Some(password)) => password.clone().into_bytes(),
            (None, None) => match std::env::var_os("MSGLOG_PASSWORD") {
                Some(password) => password.into_encoded_bytes(),
                None => b"bench".to_vec(),
            },
        };
        if password.is_empty() {
            return Err("the password is empty".to_owned());
        }
        if password.len() > MAX_PAYLOAD {
            return Err(format!("the password is longer than {MAX_PAYLOAD} bytes"));
        }
        Ok(password)
    }
}

/// One event loop per CPU. Measured on the 2-core machine against
/// msglog-server on the same cores (medians of 3, load < 0.5): 2 threads gave
/// the server more throughput than 1 in every issue-5 scenario (window 1:
/// 250k vs 183k msgs/s; 1,000 connections: 2.6M vs 2.3M; 10,000: 1.45M vs
/// 1.34M; 50 connections window 16: equal), because a single client thread
/// serializes round trips; the server's CPU share stayed the same.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn parse_message_size(text: &str) -> Result<usize, String> {
    let size: usize = text.parse().map_err(|e| format!("{e}"))?;
    if (1..=MAX_PAYLOAD).contains(&size) {
        Ok(size)
    } else {
        Err(format!("must be 1..={MAX_PAYLOAD}"))
    }
}

fn parse_connections(text: &str) -> Result<usize, String> {
    let count: usize = text.parse().map_err(|e| format!("{e}"))?;
    if (1..=1_000_000).contains(&count) {
        Ok(count)
    } else {
        Err("must be 1..=1000000".into())
    }
}

fn parse_window(text: &str) -> Result<usize, String> {
    let window: usize = text.parse().map_err(|e| format!("{e}"))?;
    if (1..=65_536).contains(&window) {
        Ok(window)
    } else {
        Err("must be 1..=65536".into())
    }
}

fn parse_threads(text: &str) -> Result<usize, String> {
    let threads: usize = text.parse().map_err(|e| format!("{e}"))?;
    if (1..=1024).contains(&threads) {
        Ok(threads)
    } else {
        Err("must be 1..=1024".into())
    }
}

/// A duration as every msglog program takes it (msglog-std): `10`, `10s`,
/// `1.5s`, `500ms`, `250us`, `2m`; seconds unless a unit is given.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    msglog_std::parse_duration(text, Zero::Allowed).map_err(|e| e.to_string())
}

/// `1000`, `64K`, `16M`, `1G` (powers of 1024; a trailing `B` or `iB` is allowed).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a byte count (e.g. 1000, 64K, 1G)"))?;
    let shift = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("unknown unit `{unit}` (use K, M, G or T)")),
    };
    value
        .checked_mul(1 << shift)
        .filter(|&bytes| bytes > 0)
        .ok_or_else(|| format!("`{text}` must be between 1 byte and 2^64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("16MB"), Ok(16 << 20));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("1X").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }

    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
