//! The library's error type.

use std::io;
use std::net::SocketAddr;

use msglog_core::{EncodeError, Stage};

/// Why a connection, a send or a raw stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server address could not be resolved.
    #[error("cannot resolve the server address: {0}")]
    Resolve(#[source] io::Error),
    /// No address of the server accepted the connection (refused,
    /// unreachable, or the connect timeout expired); this is the last attempt.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address of the last attempt.
        addr: SocketAddr,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// Reading the input (raw mode) failed.
    #[error("reading the input failed: {0}")]
    Input(#[source] io::Error),
    /// The server answered 0xFF.
    #[error("the server rejected the {stage}")]
    Rejected {
        /// The transaction it rejected.
        stage: Stage,
    },
    /// The server closed the connection while this transaction awaited its status.
    #[error("the server closed the connection before the {stage} was acknowledged")]
    Disconnected {
        /// The first transaction left unanswered.
        stage: Stage,
    },
    /// A read or write made no progress within the I/O timeout.
    #[error("timed out: the server did not answer or take data in time")]
    Timeout,
    /// After the end of a raw stream, the server did not close the connection
    /// within the I/O timeout, so it has not confirmed that it took every byte.
    #[error("sent {sent} bytes, but the server did not close the connection in time, so it has not confirmed receiving them")]
    Unconfirmed {
        /// Bytes sent before the end of input.
        sent: u64,
    },
    /// Raw mode: the connection was reset, or closed before the end of the
    /// input, so the server did not confirm that it took every byte.
    #[error("connection lost after {sent} bytes were sent, so the server did not confirm taking them: {source}")]
    Lost {
        /// Bytes handed to the connection before it failed.
        sent: u64,
        /// How it failed.
        #[source]
        source: io::Error,
    },
    /// Raw mode: the server sent a byte. A raw server never does; a framed
    /// server answers the first raw bytes with a status.
    #[error("the server answered with 0x{byte:02x}; a raw server never sends a byte (is it a framed server?)")]
    Answered {
        /// The first byte received.
        byte: u8,
    },
    /// The connection failed (reset, broken pipe, ...).
    #[error("connection failed: {0}")]
    Io(#[source] io::Error),
    /// The server sent a byte that is not a status.
    #[error("protocol error: the server answered the {stage} with 0x{byte:02x}, not a status")]
    Protocol {
        /// The byte received.
        byte: u8,
        /// The transaction it was meant to answer.
        stage: Stage,
    },
    /// The message, user name or password cannot be sent (empty, or too long
    /// for the wire); nothing was sent for it.
    #[error("cannot send: {0}")]
    Invalid(#[source] EncodeError),
    /// The user name is not one [`msglog_core::valid_name`] accepts.
    #[error(
        "invalid user name (it must be non-empty, without brackets or control, invisible or bidi characters)"
    )]
    InvalidName,
    /// A message was sent before the connection was authenticated.
    #[error("the connection is not authenticated")]
    NotAuthenticated,
    /// The connection is already authenticated.
    #[error("the connection is already authenticated")]
    AlreadyAuthenticated,
    /// The session has ended (closed, rejected, or failed before).
    #[error("the session has ended")]
    SessionEnded,
    /// TLS failed: the server's certificate was not accepted (unknown
    /// issuer, name mismatch, expired, ...), the server refused this
    /// client's certificate, or the server does not speak TLS.
    #[cfg(feature = "tls")]
    #[error("TLS: {0}")]
    Tls(#[source] crate::TlsFailure),
}

impl Error {
    /// An I/O error from a socket: timeouts become [`Error::Timeout`].
    pub(crate) fn from_io(error: io::Error) -> Self {
        #[cfg(feature = "tls")]
        if let Some(failure) = crate::tls::TlsFailure::in_io(&error) {
            return Error::Tls(failure);
        }
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
            _ => Error::Io(error),
        }
    }

    /// Whether `error` is a TLS failure (an alert from the server, a bad record).
    pub(crate) fn is_tls(error: &io::Error) -> bool {
        #[cfg(feature = "tls")]
        if crate::tls::TlsFailure::in_io(error).is_some() {
            return true;
        }
        let _ = error;
        false
    }

    /// Whether the connection was lost (closed, reset, broken pipe) rather
    /// than refused by the server: resending on a new connection may succeed.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::Disconnected { .. } | Error::Lost { .. } => true,
            Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::NotConnected
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::WriteZero
            ),
            _ => false,
        }
    }

    /// The transaction this error is about, when the server's answer (or its
    /// absence) identifies one.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Error::Rejected { stage }
            | Error::Disconnected { stage }
            | Error::Protocol { stage, .. } => Some(*stage),
            _ => None,
        }
    }
}
