//! The public settings of the NATS sink ([`NatsSink`]) and of `export`
//! ([`ExportConfig`]), and the connection both use ([`NatsConnection`]).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How to reach NATS: servers, credentials, TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConnection {
    /// Server URLs (`nats://HOST:PORT`, `tls://HOST:PORT`); the client picks
    /// one, fails over to the others and to the servers the cluster announces.
    pub servers: Vec<String>,
    /// Who the server is talking to.
    pub auth: NatsAuth,
    /// Root certificates to trust (PEM), besides the system's.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), for servers that verify clients.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Refuse a connection without TLS (implied by `tls://` URLs).
    pub require_tls: bool,
}

impl NatsConnection {
    /// `servers`, without credentials or TLS.
    pub fn new(servers: Vec<String>) -> Self {
        NatsConnection {
            servers,
            auth: NatsAuth::None,
            ca: None,
            client_cert: None,
            require_tls: false,
        }
    }
}

/// How to authenticate to NATS. Secrets are read from files (never from
/// the command line, where `ps` shows them) when the sink starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatsAuth {
    /// No credentials.
    None,
    /// A `.creds` file (user JWT and NKey seed), as `nsc` writes them.
    Credentials(PathBuf),
    /// A user name and a file holding its password (first line).
    UserPassword {
        /// The user.
        user: String,
        /// A file whose first line is the password.
        password_file: PathBuf,
    },
    /// A file whose first line is the token.
    Token(PathBuf),
    /// A file whose first line is an NKey seed (`SU...`).
    Nkey(PathBuf),
}

/// The NATS JetStream sink: each MESSAGE is a message of a stream, answered
/// 0x00 once JetStream acknowledged it (stored with the stream's
/// replication) and its `transactions.log` line is written. See README.md,
/// "Beyond one host", and PROTOCOL.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSink {
    /// How to reach NATS.
    pub connection: NatsConnection,
    /// The stream the records must land in (`Nats-Expected-Stream`).
    pub stream: String,
    /// The subject records are published on; the stream must capture it.
    pub subject: String,
    /// Create the stream with this many replicas if it does not exist.
    pub create_replicas: Option<usize>,
    /// This front end's name in the records; a random boot id is appended,
    /// so that it is unique per start. Letters, digits, `-` and `_`.
    pub front_end: String,
    /// A record not acknowledged this long after it was received (retries
    /// included) is answered 0xFF. Must be shorter than the stream's
    /// duplicate window.
    pub ack_timeout: Duration,
    /// Also append every acknowledged record to `messages.log` (a local copy
    /// of what this front end acknowledged).
    pub keep_messages_log: bool,
}

impl NatsSink {
    /// The sink for `stream` on `servers`, with the command line's defaults.
    pub fn new(servers: Vec<String>, stream: &str) -> Self {
        NatsSink {
            connection: NatsConnection::new(servers),
            stream: stream.to_owned(),
            subject: DEFAULT_SUBJECT.to_owned(),
            create_replicas: None,
            front_end: default_front_end(),
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            keep_messages_log: false,
        }
    }
}

/// The stream's default name.
pub const DEFAULT_STREAM: &str = "msglog";
/// The default subject of records.
pub const DEFAULT_SUBJECT: &str = "msglog";
/// How long a record may wait for its acknowledgement by default: longer
/// than a JetStream leader election, shorter than clients' 30 s status timeouts.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(20);

/// The host name, as a front end name (characters outside `[A-Za-z0-9_-]`
/// become `_`), or `msglog`.
pub fn default_front_end() -> String {
    match crate::platform::host_name() {
        Some(name) => name
            .chars()
            .map(|c| if valid_front_end_char(c) { c } else { '_' })
            .collect(),
        None => "msglog".to_owned(),
    }
}

/// Whether `c` may be in a front end name (it goes into `Nats-Msg-Id`).
pub fn valid_front_end_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Where `export` starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStart {
    /// The stream's first message.
    First,
    /// The message with this stream sequence, or the next one.
    Sequence(u64),
    /// The first message stored at or after this time.
    Time(SystemTime),
}

/// What `export` reads and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// How to reach NATS.
    pub connection: NatsConnection,
    /// The stream to read.
    pub stream: String,
    /// Only messages of this subject (may have wildcards); `None`: all.
    pub subject: Option<String>,
    /// Where to start.
    pub start: ExportStart,
    /// Keep reading new messages until SIGINT or SIGTERM.
    pub follow: bool,
}
