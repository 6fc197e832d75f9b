//! What a server is started with: [`Config`] for the framed server,
//! [`RawConfig`] for raw mode. Built by the binary from its command line;
//! the defaults are the command line's.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The framed server's settings. Start from [`Config::default`] and set
/// what differs, so that new settings do not break the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Listen on this address only; `None`: `[::]` dual-stack, or
    /// `0.0.0.0` on a host without IPv6.
    pub bind: Option<IpAddr>,
    /// TCP port; 0 picks a free one (the start-up line shows it).
    pub port: u16,
    /// Directory of `messages.log` and `transactions.log`.
    pub dir: PathBuf,
    /// Answer 0x00 only once a record and its line are on disk (group commit).
    pub fsync: bool,
    /// Event-loop threads (at least one is started).
    pub workers: usize,
    /// Who may log in.
    pub auth: Auth,
    /// The frame and idle timeouts of PROTOCOL.md decision 6.
    pub timeouts: Timeouts,
    /// On SIGINT/SIGTERM, how long connections get to finish the
    /// transaction in progress.
    pub grace: Duration,
    /// Connections served at once; more are accepted and closed at once.
    pub max_connections: usize,
    /// TLS: on `port` itself, or on a port of its own beside the plaintext
    /// `port` (see [`Tls::port`]); `None`: plaintext only.
    pub tls: Option<Tls>,
    /// Write the server's PID here once it serves; removed at a clean stop.
    pub pid_file: Option<PathBuf>,
    /// Serve Prometheus metrics on `http://ADDR/metrics`.
    pub metrics: Option<SocketAddr>,
    /// Where acknowledged records go: `messages.log` in `dir`, or a NATS
    /// JetStream stream (feature `nats`).
    pub sink: Sink,
}

/// Where a framed server commits its records. `transactions.log` stays in
/// [`Config::dir`] whatever the sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sink {
    /// `messages.log` in [`Config::dir`].
    #[default]
    File,
    /// A NATS JetStream stream.
    #[cfg(feature = "nats")]
    Nats(Box<crate::nats::NatsSink>),
}

impl Default for Config {
    /// The command line's defaults: port 5555 on every address, logs in the
    /// current directory, one event loop per CPU, any password accepted.
    fn default() -> Self {
        Config {
            bind: None,
            port: msglog_core::DEFAULT_PORT,
            dir: PathBuf::from("."),
            fsync: false,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            auth: Auth::AcceptAny,
            timeouts: Timeouts::default(),
            grace: Duration::from_secs(10),
            max_connections: 10_000,
            tls: None,
            pid_file: None,
            metrics: None,
            sink: Sink::File,
        }
    }
}

/// TLS for a listener (README.md, "TLS"): rustls, TLS 1.2 and 1.3, session
/// tickets; the files are read again on SIGHUP (framed mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// PEM certificate chain: the server's certificate first, then the
    /// intermediates.
    pub cert: PathBuf,
    /// PEM private key (RSA, ECDSA or Ed25519; PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Require a client certificate chained to a CA of this PEM file.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: a session's NAME must be one the client
    /// certificate proves (a DNS or URI subject alternative name, or the
    /// subject's CN, exactly); another NAME is refused like a wrong password.
    pub require_cert_name: bool,
    /// Serve TLS on this port beside the plaintext [`Config::port`]
    /// (framed mode only); `None`: `port` itself speaks TLS, and only TLS.
    pub port: Option<u16>,
}

impl Tls {
    /// TLS on the server's port with this certificate chain and key, no
    /// client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Tls {
        Tls {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            require_cert_name: false,
            port: None,
        }
    }
}

/// How passwords are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// Any name with any non-empty password (trusted networks only; the
    /// server warns at start-up).
    AcceptAny,
    /// The original C server's rule: the first password byte must be odd.
    LegacyParity,
    /// The Argon2 users file at this path, read again on SIGHUP.
    Users(PathBuf),
}

/// The frame and idle timeouts (PROTOCOL.md, decision 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest time a transaction may take from its first byte to its last.
    pub frame: Duration,
    /// Longest silence between transactions.
    pub idle: Duration,
}

impl Default for Timeouts {
    /// 30 s per transaction, 600 s of silence.
    fn default() -> Self {
        Timeouts {
            frame: Duration::from_secs(30),
            idle: Duration::from_secs(600),
        }
    }
}

/// Raw mode's settings: every byte of each client, one client after
/// another, to stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawConfig {
    /// As [`Config::bind`].
    pub bind: Option<IpAddr>,
    /// As [`Config::port`].
    pub port: u16,
    /// Longest time between two reads from a client.
    pub idle_timeout: Duration,
    /// Least bytes per second a client must average over each
    /// `rate_window` of waiting for it, or it is reset so the next client is
    /// served; 0: no minimum.
    pub min_rate: u64,
    /// The window `min_rate` is checked over.
    pub rate_window: Duration,
    /// Longest a client may be served, whatever its rate; `None`: no limit.
    pub max_session: Option<Duration>,
    /// TLS on `port` (its [`Tls::port`] must be `None`; the TLS handshake
    /// is held to the limits above like the stream).
    pub tls: Option<Tls>,
}

impl Default for RawConfig {
    /// The command line's defaults: port 5555 on every address, 600 s
    /// idle, at least 1 KiB/s over 30 s windows, no session limit.
    fn default() -> Self {
        RawConfig {
            bind: None,
            port: msglog_core::DEFAULT_PORT,
            idle_timeout: Timeouts::default().idle,
            min_rate: 1024,
            rate_window: Duration::from_secs(30),
            max_session: None,
            tls: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let config = Config::default();
        assert_eq!((config.bind, config.port), (None, 5555));
        assert_eq!(config.dir, PathBuf::from("."));
        assert!(!config.fsync && config.workers >= 1);
        assert_eq!(config.auth, Auth::AcceptAny);
        assert_eq!(
            config.timeouts,
            Timeouts {
                frame: Duration::from_secs(30),
                idle: Duration::from_secs(600),
            }
        );
        assert_eq!(config.grace, Duration::from_secs(10));
        assert_eq!(config.max_connections, 10_000);
        assert_eq!((config.pid_file, config.metrics), (None, None));
        let raw = RawConfig::default();
        assert_eq!(
            (raw.bind, raw.port, raw.idle_timeout),
            (None, 5555, config.timeouts.idle)
        );
    }
}
