//! Connecting to NATS with the configured credentials and TLS, for the
//! publisher and for `export` alike.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::{ConnectOptions, Event};

use super::config::{NatsAuth, NatsConnection};
use super::NatsError;

/// How long one attempt to reach a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest pause between reconnection attempts: the sink recovers within
/// about this long of NATS coming back.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// The first line of a secret file, without its line end.
fn secret(path: &Path, what: &'static str) -> Result<String, NatsError> {
    let text = std::fs::read_to_string(path).map_err(|source| NatsError::Secret {
        what,
        path: path.to_owned(),
        source,
    })?;
    let line = text.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        return Err(NatsError::Secret {
            what,
            path: path.to_owned(),
            source: std::io::Error::other("it is empty"),
        });
    }
    Ok(line)
}

fn readable(path: &Path, what: &'static str) -> Result<PathBuf, NatsError> {
    std::fs::File::open(path)
        .map(|_| path.to_owned())
        .map_err(|source| NatsError::Secret {
            what,
            path: path.to_owned(),
            source,
        })
}

/// The client options of `connection`, named `name`; each connection event
/// goes to `events`. Secret files are read now.
pub(crate) async fn options(
    connection: &NatsConnection,
    name: &str,
    events: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
) -> Result<ConnectOptions, NatsError> {
    let mut options =
        match &connection.auth {
            NatsAuth::None => ConnectOptions::new(),
            NatsAuth::Credentials(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| NatsError::Secret {
                    what: "credentials file",
                    path: path.clone(),
                    source,
                })?,
            NatsAuth::UserPassword {
                user,
                password_file,
            } => ConnectOptions::with_user_and_password(
                user.clone(),
                secret(password_file, "password file")?,
            ),
            NatsAuth::Token(path) => ConnectOptions::with_token(secret(path, "token file")?),
            NatsAuth::Nkey(path) => ConnectOptions::with_nkey(secret(path, "NKey seed file")?),
        };
    if let Some(ca) = &connection.ca {
        options = options.add_root_certificates(readable(ca, "CA certificate")?);
    }
    if let Some((cert, key)) = &connection.client_cert {
        options = options.add_client_certificate(
            readable(cert, "client certificate")?,
            readable(key, "client key")?,
        );
    }
    if connection.require_tls {
        options = options.require_tls(true);
    }
    options = options
        .name(name)
        .connection_timeout(CONNECT_TIMEOUT)
        .reconnect_delay_callback(|attempts| {
            MAX_RECONNECT_DELAY.min(Duration::from_millis(10 * attempts as u64))
        })
        // Publishes are queued here while a batch is handed over.
        .client_capacity(16 * 1024);
    if let Some(events) = events {
        options = options.event_callback(move |event| {
            let _ = events.send(event);
            async {}
        });
    }
    Ok(options)
}

/// Connect once to one of the servers; the error says why none answered.
pub(crate) async fn connect(
    connection: &NatsConnection,
    options: ConnectOptions,
) -> Result<async_nats::Client, NatsError> {
    options
        .connect(connection.servers.as_slice())
        .await
        .map_err(|source| NatsError::Connect {
            servers: connection.servers.join(","),
            source,
        })
}

/// What `check` can know of a connection without connecting: the server
/// URLs parse and the secret files read (the credentials file parsed) as
/// they will at start-up.
pub(crate) fn check_offline(connection: &NatsConnection) -> Result<(), NatsError> {
    for server in &connection.servers {
        server
            .parse::<async_nats::ServerAddr>()
            .map_err(|source| NatsError::Url {
                url: server.clone(),
                source,
            })?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(NatsError::Runtime)?;
    runtime
        .block_on(options(connection, "msglog-server check", None))
        .map(drop)
}
