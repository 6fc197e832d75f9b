//! The command line.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use msglog_server::{Auth, Config, HashCost, RawConfig, Timeouts};
use msglog_std::{DurationError, Generate, Zero};

/// More event loops than this make no sense (each is a thread, an epoll
/// instance and a 256 KiB buffer), and a mistyped count would only fail
/// later for want of descriptors.
pub const MAX_WORKERS: usize = 1024;
/// Each connection holds a descriptor; past this the kernel's limits bind.
pub const MAX_CONNECTIONS: usize = 10_000_000;
/// Argon2 memory beyond 4 GiB per check would exhaust a server.
pub const MAX_M_COST: u32 = 4 * 1024 * 1024;
/// Argon2 passes and lanes beyond these only slow every login down.
pub const MAX_T_COST: u32 = 1000;
pub const MAX_P_COST: u32 = 64;

use crate::nats_args::{ExportArgs, SinkArgs};
use crate::tls_args::TlsArgs;

/// The msglog server: appends authenticated clients' messages to
/// messages.log (framed mode), or copies raw client streams to stdout (--raw).
#[derive(Debug, Parser)]
#[command(
    name = "msglog-server",
    version,
    args_conflicts_with_subcommands = true,
    after_long_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Write shell completions or the man page to stdout and exit
    /// (e.g. `--generate complete-bash > /usr/share/bash-completion/completions/msglog-server`).
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    pub generate: Option<Generate>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

const AFTER_HELP: &str = "\
Files (framed mode, in --dir): messages.log, one `[name]: message` record per
accepted message (created with mode 0644); transactions.log, one line per
connection event and transaction, never a password, its length or a message
body (created with mode 0640). Both are appended to; no 0x00 is sent before
the transaction's line (and record) is written. msglog-server.lock holds the
running server's PID: one server per directory. Bytes after a log's last
newline (a record torn by a crash) are moved at start-up to
messages.log.torn or transactions.log.torn, never deleted.

Signals: SIGINT/SIGTERM stop accepting, let connections finish the
transaction in progress for up to --grace, then exit 0 (a second signal stops
at once); SIGHUP reopens both logs (for logrotate) and re-reads --users.
On Windows, Ctrl-C, Ctrl-Break and closing the console stop as SIGTERM does,
and `msglog-server reload --dir DIR` reloads (it sends SIGHUP on Unix).

Raw mode (--raw): one client at a time. A client's connection is closed
cleanly only after every byte it sent is written to stdout; it is reset if
stdout fails (then exit 7), if the client breaks a limit (--raw-min-rate over
--raw-rate-window, --raw-max-session, --idle-timeout), or on SIGINT/SIGTERM
before its end of stream. With TLS, the client ends its stream with
close_notify and the server confirms with its own close_notify before the FIN;
a TCP close without close_notify is reset.

systemd: READY=1, RELOADING=1 and STOPPING=1 go to $NOTIFY_SOCKET when it is
set (Type=notify); a listening socket passed by socket activation
(LISTEN_FDS) is used instead of binding PORT. Units: dist/ in the repository.

TLS (--tls-cert, --tls-key): the port speaks TLS 1.2 and 1.3 only, or, with
--tls-port, TLS is served on a port of its own beside the plaintext one. In
transactions.log a TLS connection's event=open line is written once its
handshake completed, with tls=1.3 (the version) and the client certificate's
subject; a failed handshake is one event=close reason=tls line. SIGHUP also
reloads the certificate, key and client CA (a broken file is reported and the
old ones stay in use).

Exit codes: 0 clean stop (check: the configuration is good; users verify:
the password is right); 1 runtime error; 2 bad command line; 3 cannot listen
(port taken, invalid address, a privileged port, --metrics, socket
activation); 4 cannot create or open the log directory or a log; 5 bad users
file; 6 no usable password (hash-password, users add/verify); 7 cannot write
to stdout (raw mode, hash-password, users list, --generate); 8 a log's
unfinished last line cannot be saved in its side file (nothing changed);
9 another server holds the log directory (its PID is named); 10 cannot write
--pid-file or the users file; 11 users remove/verify: no such user; 12 users
verify: wrong password; 13 the TLS certificate, key or client CA cannot be
loaded; 14 NATS (--sink nats://..., export) cannot be reached, refused us, or
a NATS secret file cannot be read; 15 the NATS stream does not exist or does
not capture the subject.

With --sink nats://..., a MESSAGE is answered 0x00 only once JetStream
acknowledged its record (stored with the stream's replication) and its
transactions.log line is written; see `export` to read a stream back.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a `--users` file line (`NAME:$argon2id$...`) for a password read
    /// from stdin (without echo on a terminal; one line when piped).
    HashPassword(HashPasswordArgs),
    /// Manage a users file in the manner of htpasswd: add, remove, verify, list.
    Users(UsersArgs),
    /// Check a configuration (the same flags as serving) without serving:
    /// every flag, the users file, the log directory; print what the server
    /// would do; exit 0, or with the code the server would exit with.
    Check(Box<ServeArgs>),
    /// Write a NATS stream's records as messages.log lines (`[name]: message`,
    /// escaped as the server escapes them), from a sequence or a time, to
    /// stdout or --output; --follow keeps reading.
    Export(Box<ExportArgs>),
    /// Ask the server logging to DIR to reopen its logs and re-read its
    /// users file and TLS files, as SIGHUP does (the way to do it on
    /// Windows, which has no SIGHUP). Exit 0 once asked, 1 if no server
    /// runs there.
    Reload(ReloadArgs),
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// The running server's --dir.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct HashPasswordArgs {
    /// The user name the line is for.
    pub name: String,

    #[command(flatten)]
    pub cost: CostArgs,
}

/// The Argon2id cost of a new password hash.
#[derive(Debug, Clone, Copy, Args)]
pub struct CostArgs {
    /// Argon2 memory cost in KiB (at least 8 per lane).
    #[arg(long, value_name = "KIB", default_value_t = HashCost::DEFAULT.m_cost,
          value_parser = |text: &str| bounded(text, HashCost::MIN_M_COST_PER_LANE, MAX_M_COST))]
    pub m_cost: u32,

    /// Argon2 iterations.
    #[arg(long, value_name = "N", default_value_t = HashCost::DEFAULT.t_cost,
          value_parser = |text: &str| bounded(text, 1, MAX_T_COST))]
    pub t_cost: u32,

    /// Argon2 parallelism (lanes).
    #[arg(long, value_name = "N", default_value_t = HashCost::DEFAULT.p_cost,
          value_parser = |text: &str| bounded(text, 1, MAX_P_COST))]
    pub p_cost: u32,
}

impl CostArgs {
    /// Argon2's rule across the flags: memory of at least 8 KiB per lane.
    pub fn check(&self) -> Result<(), String> {
        let least = HashCost::MIN_M_COST_PER_LANE.saturating_mul(self.p_cost);
        if self.m_cost < least {
            return Err(format!(
                "--m-cost {} is less than Argon2's 8 KiB per lane ({least} KiB for --p-cost {})",
                self.m_cost, self.p_cost
            ));
        }
        Ok(())
    }

    pub fn cost(&self) -> HashCost {
        HashCost {
            m_cost: self.m_cost,
            t_cost: self.t_cost,
            p_cost: self.p_cost,
        }
    }
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub action: UsersAction,
}

/// Each rewrite of FILE is atomic (temporary file, fsync, rename) and keeps
/// its comments; a running server uses the new file after SIGHUP.
#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// Add NAME with a password read from stdin (as hash-password reads
    /// it), or give NAME a new one; FILE is created if missing (mode 0640).
    Add {
        /// The users file.
        file: PathBuf,
        /// The user.
        name: String,
        #[command(flatten)]
        cost: CostArgs,
    },
    /// Remove NAME's line.
    Remove {
        /// The users file.
        file: PathBuf,
        /// The user.
        name: String,
    },
    /// Check a password read from stdin against NAME's: exit 0 if it is
    /// NAME's, 12 if not, 11 if there is no NAME.
    Verify {
        /// The users file.
        file: PathBuf,
        /// The user.
        name: String,
    },
    /// Print the names in FILE, one per line.
    List {
        /// The users file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TCP port to listen on; 0 picks a free port (the start-up line shows it).
    #[arg(default_value_t = msglog_core::DEFAULT_PORT)]
    pub port: u16,

    /// Raw stream mode: write every byte of each client, one client after
    /// another, to stdout (no framing, no status bytes, no logs).
    #[arg(long)]
    pub raw: bool,

    /// Listen on this address only (default: [::] dual-stack, or 0.0.0.0 without IPv6).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<IpAddr>,

    /// Directory of messages.log and transactions.log.
    #[arg(long, value_name = "DIR", default_value = ".", conflicts_with = "raw")]
    pub dir: PathBuf,

    /// Acknowledge a message only once its record is on disk (fdatasync,
    /// one sync for every record written meanwhile).
    #[arg(long, conflicts_with = "raw")]
    pub fsync: bool,

    /// Event-loop threads, at most 1024 [default: number of CPUs].
    #[arg(long, value_name = "N", conflicts_with = "raw", value_parser = parse_workers)]
    pub workers: Option<NonZeroUsize>,

    /// Users file: lines `name:$argon2id$...` (see `msglog-server users add`) or
    /// `name:$2y$...` (htpasswd -B); `#` comments, blank lines and a leading UTF-8
    /// byte order mark are ignored.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["raw", "auth"])]
    pub users: Option<PathBuf>,

    /// Authentication without --users: `any` accepts any non-empty password;
    /// `legacy-parity` is the original server's rule (first password byte odd).
    #[arg(long, value_enum, value_name = "MODE", conflicts_with = "raw")]
    pub auth: Option<AuthMode>,

    /// Longest time a transaction may take from its first byte to its last.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, conflicts_with = "raw")]
    pub frame_timeout: Duration,

    /// Longest time a connection may sit idle between transactions (in raw
    /// mode: between two reads from a client).
    #[arg(long, value_name = "DURATION", default_value = "600s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Raw mode: reset a client that sends less than RATE on average over a
    /// --raw-rate-window of waiting for it, so that the next client is
    /// served. RATE is bytes per second: 512, 1KiB/s, 2MB/s, ...; 0: no minimum.
    #[arg(long, value_name = "RATE", default_value = "1KiB/s", value_parser = parse_rate, requires = "raw")]
    pub raw_min_rate: u64,

    /// Raw mode: the window --raw-min-rate is checked over (time spent
    /// writing to stdout does not count).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, requires = "raw")]
    pub raw_rate_window: Duration,

    /// Raw mode: reset a client served this long, whatever its rate [default: no limit].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "raw")]
    pub raw_max_session: Option<Duration>,

    /// On SIGINT/SIGTERM, how long connections get to finish the transaction in progress.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, conflicts_with = "raw")]
    pub grace: Duration,

    /// Connections served at once; more are accepted and closed at once (logged as overload).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        conflicts_with = "raw",
        value_parser = |text: &str| bounded(text, 1, MAX_CONNECTIONS)
    )]
    pub max_connections: usize,

    /// Write the server's PID to FILE once it serves (for logrotate and
    /// scripts); removed at a clean stop.
    #[arg(long, value_name = "FILE", conflicts_with = "raw")]
    pub pid_file: Option<PathBuf>,

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9555).
    #[arg(long, value_name = "ADDR", conflicts_with = "raw")]
    pub metrics: Option<SocketAddr>,

    /// More operator output on stderr (-v: statistics every 10 s; -vv: debugging).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(flatten)]
    pub sink: SinkArgs,

    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Any name with any non-empty password (trusted networks only).
    Any,
    /// The original C server's rule: the first password byte must be odd.
    LegacyParity,
}

impl Cli {
    /// What clap cannot check flag by flag: a usage error (exit 2) too.
    pub fn check(&self) -> Result<(), clap::Error> {
        use clap::CommandFactory;
        let cost = match &self.command {
            Some(Command::HashPassword(args)) => Some(&args.cost),
            Some(Command::Users(UsersArgs {
                action: UsersAction::Add { cost, .. },
            })) => Some(cost),
            _ => None,
        };
        let invalid =
            |message| Cli::command().error(clap::error::ErrorKind::ValueValidation, message);
        if let Some(Err(message)) = cost.map(CostArgs::check) {
            return Err(invalid(message));
        }
        // The sink's flags, for the server and for `check` alike.
        let serve: &ServeArgs = match &self.command {
            Some(Command::Check(args)) => args,
            _ => &self.serve,
        };
        serve.sink.sink().map(drop).map_err(invalid)
    }
}

impl ServeArgs {
    /// The framed server's configuration.
    pub fn config(&self) -> Config {
        Config {
            bind: self.bind,
            port: self.port,
            dir: self.dir.clone(),
            fsync: self.fsync,
            workers: self
                .workers
                .map_or_else(|| Config::default().workers, NonZeroUsize::get),
            auth: match (&self.users, self.auth) {
                (Some(path), _) => Auth::Users(path.clone()),
                (None, Some(AuthMode::LegacyParity)) => Auth::LegacyParity,
                (None, Some(AuthMode::Any) | None) => Auth::AcceptAny,
            },
            timeouts: Timeouts {
                frame: self.frame_timeout,
                idle: self.idle_timeout,
            },
            grace: self.grace,
            max_connections: self.max_connections,
            tls: self.tls.tls(),
            pid_file: self.pid_file.clone(),
            metrics: self.metrics,
            // A bad combination of sink flags is a usage error (`Cli::check`).
            sink: self.sink.sink().unwrap_or_default(),
        }
    }

    /// Raw mode's configuration.
    pub fn raw_config(&self) -> RawConfig {
        RawConfig {
            bind: self.bind,
            port: self.port,
            idle_timeout: self.idle_timeout,
            min_rate: self.raw_min_rate,
            rate_window: self.raw_rate_window,
            max_session: self.raw_max_session,
            tls: self.tls.tls(),
        }
    }
}

/// A number in `min..=max`.
fn bounded<T>(text: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let value: T = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if value < min || value > max {
        return Err(format!("must be from {min} to {max}"));
    }
    Ok(value)
}

fn parse_workers(text: &str) -> Result<NonZeroUsize, String> {
    let workers = bounded(text, 1, MAX_WORKERS)?;
    NonZeroUsize::new(workers).ok_or_else(|| "must be at least 1".to_owned())
}

/// A duration such as `250ms`, `2s`, `5m`, `1h`, or a plain number of seconds; never zero.
fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    msglog_std::parse_duration(text, Zero::Rejected)
}

/// A rate in bytes per second: a number, an optional unit (B, kB, KiB, MB,
/// MiB, GB, GiB; any case) and an optional `/s`. Zero is allowed.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let rate = trimmed.strip_suffix("/s").unwrap_or(trimmed).trim_end();
    let split = rate
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rate.len());
    let (number, unit) = rate.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a rate (examples: 0, 512, 1KiB/s, 2MB/s)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit in `{text}` (use B, kB, KiB, MB, MiB, GB or GiB, with an optional /s)"
            ))
        }
    };
    let bytes = (value * scale as f64).round();
    if !(0.0..=1e15).contains(&bytes) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let parse_duration = |text| parse_duration(text).map_err(|e| e.to_string());
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_rate("512"), Ok(512));
        assert_eq!(parse_rate("1KiB/s"), Ok(1024));
        assert_eq!(parse_rate("1 kib/s"), Ok(1024));
        assert_eq!(parse_rate("1.5kB"), Ok(1500));
        assert_eq!(parse_rate("2MB/s"), Ok(2_000_000));
        assert_eq!(parse_rate("1MiB"), Ok(1 << 20));
        assert_eq!(parse_rate("1GiB/s"), Ok(1 << 30));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("1 Mbit/s").is_err());
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("1e30").is_err());
    }

    #[test]
    fn raw_limits_need_raw_mode() {
        let cli = Cli::try_parse_from(["msglog-server", "--raw", "0"]).unwrap();
        assert_eq!(cli.serve.raw_min_rate, 1024);
        assert_eq!(cli.serve.raw_rate_window, Duration::from_secs(30));
        assert_eq!(cli.serve.raw_max_session, None);
        let cli = Cli::try_parse_from([
            "msglog-server",
            "--raw",
            "--raw-min-rate",
            "0",
            "--raw-max-session",
            "1h",
            "0",
        ])
        .unwrap();
        assert_eq!(cli.serve.raw_min_rate, 0);
        assert_eq!(cli.serve.raw_max_session, Some(Duration::from_secs(3600)));
        assert!(Cli::try_parse_from(["msglog-server", "--raw-min-rate", "1", "0"]).is_err());
        assert!(Cli::try_parse_from(["msglog-server", "--raw-max-session", "1s"]).is_err());
    }

    #[test]
    fn the_defaults_are_the_librarys() {
        let cli = Cli::try_parse_from(["msglog-server"]).unwrap();
        assert_eq!(cli.serve.config(), Config::default());
        let cli = Cli::try_parse_from(["msglog-server", "--raw"]).unwrap();
        assert_eq!(cli.serve.raw_config(), RawConfig::default());
        let cli = Cli::try_parse_from(["msglog-server", "hash-password", "a"]).unwrap();
        let Some(Command::HashPassword(args)) = cli.command else {
            panic!("not hash-password");
        };
        assert_eq!(args.cost.cost(), HashCost::default());
    }

    #[test]
    fn flags_reach_the_configuration() {
        let cli = Cli::try_parse_from([
            "msglog-server",
            "--bind",
            "127.0.0.1",
            "--dir",
            "/srv",
            "--fsync",
            "--workers",
            "3",
            "--users",
            "u",
            "--frame-timeout",
            "2s",
            "--idle-timeout",
            "250ms",
            "--grace",
            "1",
            "--max-connections",
            "7",
            "6000",
        ])
        .unwrap();
        let config = cli.serve.config();
        assert_eq!(
            config,
            Config {
                bind: Some("127.0.0.1".parse().unwrap()),
                port: 6000,
                dir: "/srv".into(),
                fsync: true,
                workers: 3,
                auth: Auth::Users("u".into()),
                timeouts: Timeouts {
                    frame: Duration::from_secs(2),
                    idle: Duration::from_millis(250),
                },
                grace: Duration::from_secs(1),
                max_connections: 7,
                tls: None,
                pid_file: None,
                metrics: None,
                sink: msglog_server::Sink::File,
            }
        );
        let cli = Cli::try_parse_from(["msglog-server", "--auth", "legacy-parity"]).unwrap();
        assert_eq!(cli.serve.config().auth, Auth::LegacyParity);
    }

    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn hash_password_is_a_subcommand_not_a_port() {
        let cli = Cli::try_parse_from(["msglog-server", "hash-password", "alice"]).unwrap();
        assert!(matches!(cli.command, Some(Command::HashPassword(ref a)) if a.name == "alice"));
        let cli = Cli::try_parse_from(["msglog-server", "--raw", "6000"]).unwrap();
        assert!(cli.serve.raw && cli.serve.port == 6000 && cli.command.is_none());
        assert!(Cli::try_parse_from(["msglog-server", "--raw", "--fsync", "1"]).is_err());
        assert!(Cli::try_parse_from(["msglog-server", "70000"]).is_err());
    }
}
