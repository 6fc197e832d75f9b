//! The command line of the NATS sink (`--sink nats://...` and its
//! `--nats-*` flags) and of `msglog-server export`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::Args;
use msglog_server::nats::{
    default_front_end, valid_front_end_char, ExportConfig, ExportStart, NatsAuth, NatsConnection,
    NatsSink, DEFAULT_STREAM, DEFAULT_SUBJECT,
};
use msglog_server::Sink;
use msglog_std::Zero;

/// How to reach NATS, for the sink and for `export`.
#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
pub struct NatsConnectionArgs {
    /// NATS credentials file (user JWT and NKey seed, as `nsc` writes them).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["nats_user", "nats_token_file", "nats_nkey_file"])]
    pub nats_creds: Option<PathBuf>,

    /// NATS user name (its password from --nats-password-file).
    #[arg(long, value_name = "USER", requires = "nats_password_file", conflicts_with_all = ["nats_token_file", "nats_nkey_file"])]
    pub nats_user: Option<String>,

    /// File whose first line is the --nats-user's password.
    #[arg(long, value_name = "FILE", requires = "nats_user")]
    pub nats_password_file: Option<PathBuf>,

    /// File whose first line is a NATS token.
    #[arg(long, value_name = "FILE", conflicts_with = "nats_nkey_file")]
    pub nats_token_file: Option<PathBuf>,

    /// File whose first line is an NKey seed.
    #[arg(long, value_name = "FILE")]
    pub nats_nkey_file: Option<PathBuf>,

    /// CA certificate (PEM) to trust for the NATS servers' TLS certificates.
    #[arg(long, value_name = "FILE")]
    pub nats_ca: Option<PathBuf>,

    /// Client certificate (PEM) for NATS servers that verify clients (with --nats-key).
    #[arg(long, value_name = "FILE", requires = "nats_key")]
    pub nats_cert: Option<PathBuf>,

    /// The --nats-cert's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "nats_cert")]
    pub nats_key: Option<PathBuf>,

    /// Refuse NATS connections without TLS (implied by tls:// URLs).
    #[arg(long)]
    pub nats_tls: bool,
}

impl NatsConnectionArgs {
    fn is_default(&self) -> bool {
        *self == NatsConnectionArgs::default()
    }

    fn connection(&self, servers: Vec<String>) -> NatsConnection {
        let require_tls = self.nats_tls || servers.iter().any(|s| s.starts_with("tls://"));
        NatsConnection {
            auth: match (
                &self.nats_creds,
                &self.nats_user,
                &self.nats_password_file,
                &self.nats_token_file,
                &self.nats_nkey_file,
            ) {
                (Some(creds), ..) => NatsAuth::Credentials(creds.clone()),
                (_, Some(user), Some(password_file), ..) => NatsAuth::UserPassword {
                    user: user.clone(),
                    password_file: password_file.clone(),
                },
                (.., Some(token), _) => NatsAuth::Token(token.clone()),
                (.., Some(nkey)) => NatsAuth::Nkey(nkey.clone()),
                _ => NatsAuth::None,
            },
            ca: self.nats_ca.clone(),
            client_cert: self.nats_cert.clone().zip(self.nats_key.clone()),
            require_tls,
            servers,
        }
    }
}

/// The sink flags of the framed server.
#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Where acknowledged records go: `file` (messages.log in --dir), or a
    /// NATS JetStream stream: `nats://HOST:PORT[,HOST:PORT...]` (or `tls://`).
    /// A MESSAGE is then answered 0x00 once JetStream has stored it with the
    /// stream's replication and its transactions.log line is written.
    #[arg(long, value_name = "SINK", default_value = "file", value_parser = parse_sink, conflicts_with = "raw")]
    pub sink: SinkChoice,

    /// The stream records go to (it must capture --nats-subject).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_STREAM)]
    pub nats_stream: String,

    /// The subject records are published on.
    #[arg(long, value_name = "SUBJECT", default_value = DEFAULT_SUBJECT)]
    pub nats_subject: String,

    /// Create the stream (subject --nats-subject, file storage) with this many
    /// replicas if it does not exist.
    #[arg(long, value_name = "REPLICAS", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_create_stream: Option<u8>,

    /// This front end's name in the records (a random boot id is appended at
    /// each start) [default: the host name].
    #[arg(long, value_name = "NAME", value_parser = parse_front_end)]
    pub nats_front_end: Option<String>,

    /// Answer 0xFF for a record JetStream has not acknowledged this long after
    /// it arrived (retries included).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub nats_ack_timeout: Duration,

    /// With a NATS sink, also append every acknowledged record to
    /// messages.log in --dir (this front end's own copy).
    #[arg(long)]
    pub keep_messages_log: bool,

    #[command(flatten)]
    pub connection: NatsConnectionArgs,
}

/// `--sink`'s value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkChoice {
    File,
    Nats(Vec<String>),
}

fn parse_duration(text: &str) -> Result<Duration, msglog_std::DurationError> {
    msglog_std::parse_duration(text, Zero::Rejected)
}

/// `file`, or NATS URLs: the first with its scheme, the others may omit it.
fn parse_sink(text: &str) -> Result<SinkChoice, String> {
    if text == "file" {
        return Ok(SinkChoice::File);
    }
    parse_servers(text).map(SinkChoice::Nats)
}

/// NATS server URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Servers(pub Vec<String>);

fn parse_server_list(text: &str) -> Result<Servers, String> {
    parse_servers(text).map(Servers)
}

fn parse_servers(text: &str) -> Result<Vec<String>, String> {
    let scheme = ["nats://", "tls://"]
        .into_iter()
        .find(|scheme| text.starts_with(scheme))
        .ok_or_else(|| format!("`{text}` is neither `file` nor nats://HOST:PORT[,HOST:PORT...]"))?;
    text.split(',')
        .map(|server| {
            let server = server.trim();
            if server.is_empty() {
                return Err(format!("an empty server in `{text}`"));
            }
            let url = if server.contains("://") {
                server.to_owned()
            } else {
                format!("{scheme}{server}")
            };
            // As the NATS client will parse it when the server starts.
            url.parse::<async_nats::ServerAddr>()
                .map_err(|e| format!("`{server}` is not a NATS server URL: {e}"))?;
            Ok(url)
        })
        .collect()
}

fn parse_front_end(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 64 || !text.chars().all(valid_front_end_char) {
        return Err("a front end name is 1 to 64 letters, digits, `-` or `_`".into());
    }
    Ok(text.to_owned())
}

impl SinkArgs {
    /// The sink; an error if NATS flags are given without a NATS sink.
    pub fn sink(&self) -> Result<Sink, String> {
        let servers = match &self.sink {
            SinkChoice::Nats(servers) => servers.clone(),
            SinkChoice::File => {
                let nats_flags = self.nats_stream != DEFAULT_STREAM
                    || self.nats_subject != DEFAULT_SUBJECT
                    || self.nats_create_stream.is_some()
                    || self.nats_front_end.is_some()
                    || self.nats_ack_timeout != msglog_server::nats::DEFAULT_ACK_TIMEOUT
                    || self.keep_messages_log
                    || !self.connection.is_default();
                if nats_flags {
                    return Err(
                        "the --nats-* flags and --keep-messages-log need --sink nats://...".into(),
                    );
                }
                return Ok(Sink::File);
            }
        };
        let mut sink = NatsSink::new(servers.clone(), &self.nats_stream);
        sink.connection = self.connection.connection(servers);
        sink.subject = self.nats_subject.clone();
        sink.create_replicas = self.nats_create_stream.map(usize::from);
        sink.front_end = self
            .nats_front_end
            .clone()
            .unwrap_or_else(default_front_end);
        sink.ack_timeout = self.nats_ack_timeout;
        sink.keep_messages_log = self.keep_messages_log;
        Ok(Sink::Nats(Box::new(sink)))
    }
}

/// `msglog-server export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The NATS servers: nats://HOST:PORT[,HOST:PORT...] (or tls://).
    #[arg(long, value_name = "URLS", value_parser = parse_server_list)]
    pub nats: Servers,

    /// The stream to read.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_STREAM)]
    pub nats_stream: String,

    /// Only messages of this subject (wildcards allowed) [default: all].
    #[arg(long, value_name = "SUBJECT")]
    pub nats_subject: Option<String>,

    /// Start at this stream sequence (or the next one still stored).
    #[arg(long, value_name = "SEQ", conflicts_with = "since")]
    pub from_sequence: Option<u64>,

    /// Start at the first record stored at or after TIME: RFC 3339
    /// (`2026-11-23T09:00:00Z`) or a duration ago (`10m`, `2h`).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<SystemTime>,

    /// Keep reading new records until SIGINT or SIGTERM.
    #[arg(long)]
    pub follow: bool,

    /// Append to FILE (created as a shell's `>>` would: mode 0666 less the umask) instead of writing to stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub connection: NatsConnectionArgs,
}

fn parse_since(text: &str) -> Result<SystemTime, String> {
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Ok(at);
    }
    let ago = msglog_std::parse_duration(text, Zero::Allowed).map_err(|_| {
        format!("`{text}` is neither an RFC 3339 time (2026-11-23T09:00:00Z) nor a duration (10m)")
    })?;
    SystemTime::now()
        .checked_sub(ago)
        .ok_or_else(|| format!("`{text}` is too long ago"))
}

impl ExportArgs {
    pub fn config(&self) -> ExportConfig {
        ExportConfig {
            connection: self.connection.connection(self.nats.0.clone()),
            stream: self.nats_stream.clone(),
            subject: self.nats_subject.clone(),
            start: match (self.from_sequence, self.since) {
                (Some(sequence), _) => ExportStart::Sequence(sequence),
                (None, Some(at)) => ExportStart::Time(at),
                (None, None) => ExportStart::First,
            },
            follow: self.follow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_parse() {
        assert_eq!(parse_sink("file"), Ok(SinkChoice::File));
        assert_eq!(
            parse_sink("nats://127.0.0.1:4222,127.0.0.1:4223,tls://h:1"),
            Ok(SinkChoice::Nats(vec![
                "nats://127.0.0.1:4222".into(),
                "nats://127.0.0.1:4223".into(),
                "tls://h:1".into()
            ]))
        );
        assert!(parse_sink("127.0.0.1:4222").is_err());
        assert!(parse_sink("nats://a:1,,b:2").is_err());
        // What the NATS client could not parse at start-up is refused now.
        assert!(parse_sink("nats://127.0.0.1:port").is_err());
        assert!(parse_sink("nats://127.0.0.1:4222,127.0.0.1:99999").is_err());
        assert!(parse_front_end("fe-1_a").is_ok());
        assert!(parse_front_end("fe.1").is_err());
        assert!(parse_front_end("").is_err());
    }

    #[test]
    fn since_takes_a_time_or_a_duration_ago() {
        let at = parse_since("2026-11-23T09:00:00Z").unwrap();
        assert_eq!(
            at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_795_424_400
        );
        let ago = parse_since("10m").unwrap();
        let elapsed = SystemTime::now().duration_since(ago).unwrap();
        assert!(elapsed >= Duration::from_secs(600) && elapsed < Duration::from_secs(660));
        assert!(parse_since("yesterday").is_err());
    }
}
