//! The NATS JetStream sink and `export` (feature `nats`).
//!
//! | module | owns | uses |
//! |---|---|---|
//! | `config` | the public [`NatsSink`], [`NatsConnection`], [`NatsAuth`], [`ExportConfig`] | - |
//! | `record` | a record's headers and payload in the stream | - |
//! | `outcome` | what became of a commit's records | - |
//! | `connect` | client options from the configuration; connecting | `config` |
//! | `publisher` | the runtime thread: publishing, retries, outcomes by mail | `config`, `connect`, `outcome`, `record`, `iteration`, `mailbox` |
//! | `commits` | an event loop's deferred commits: parking, finishing | `outcome`, `publisher`, `commit`, `connection`, `iteration`, `journal`, `mailbox` |
//! | `export` | reading a stream back as `messages.log` | `config`, `connect`, `record` |

mod commits;
mod config;
mod connect;
mod export;
mod outcome;
mod publisher;
mod record;

use std::io;
use std::path::PathBuf;

pub(crate) use commits::{Parking, StreamCommits};
pub use config::{
    default_front_end, valid_front_end_char, ExportConfig, ExportStart, NatsAuth, NatsConnection,
    NatsSink, DEFAULT_ACK_TIMEOUT, DEFAULT_STREAM, DEFAULT_SUBJECT,
};
pub(crate) use connect::check_offline;
pub use export::{export, ExportError, ExportSummary};
pub(crate) use outcome::Stored;
pub(crate) use publisher::{PublishHandle, PublishStats, Publisher};

/// Why the NATS sink cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// A credentials, password, token, key or certificate file cannot be read.
    #[error("cannot read the NATS {what} {path}: {source}")]
    Secret {
        /// Which file it is.
        what: &'static str,
        /// Where it is.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// No server could be reached, or one refused us (authentication, TLS).
    #[error("cannot connect to NATS at {servers}: {source}")]
    Connect {
        /// The servers tried.
        servers: String,
        /// What the client said.
        source: async_nats::ConnectError,
    },
    /// The stream is missing or cannot take the records.
    #[error("NATS stream {stream}: {why}")]
    Stream {
        /// Its name.
        stream: String,
        /// What is wrong with it.
        why: String,
    },
    /// A server URL the client cannot parse.
    #[error("`{url}` is not a NATS server URL: {source}")]
    Url {
        /// The URL.
        url: String,
        /// What the client said.
        source: io::Error,
    },
    /// The runtime thread could not be started.
    #[error("cannot start the NATS client's thread: {0}")]
    Runtime(io::Error),
}
