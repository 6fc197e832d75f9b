//! Why a server could not start or had to stop: [`ServerError`], one
//! variant per thing that went wrong, each with the error that caused it.
//! The binary turns them into one line and an exit code.

use std::io;
use std::path::PathBuf;

use crate::activation::ActivationError;
use crate::dir_lock::LockError;
use crate::listen::BindError;
use crate::log_file::LogOpenError;
use crate::pid_file::PidFileError;
use crate::tls::TlsError;
use crate::users::UsersError;

/// Why `msglog_server::run` or `run_raw` returned an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The port is taken, invalid for this host, or not ours to use.
    #[error(transparent)]
    Listen(#[from] BindError),
    /// The socket passed by the service manager cannot be used.
    #[error(transparent)]
    Activation(#[from] ActivationError),
    /// The metrics address cannot be listened on.
    #[error("--metrics: {0}")]
    Metrics(BindError),
    /// The PID file cannot be written.
    #[error(transparent)]
    PidFile(#[from] PidFileError),
    /// The log directory cannot be created or opened.
    #[error("cannot open {path}: {source}")]
    LogDirectory {
        /// The directory as configured.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A log cannot be opened or repaired; or the unfinished last line of
    /// one cannot be saved in its side file (then nothing was changed).
    #[error(transparent)]
    Log(#[from] LogOpenError),
    /// The log directory cannot be locked, or another server holds it.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The users file cannot be read or is invalid.
    #[error(transparent)]
    Users(#[from] UsersError),
    /// The NATS sink cannot start: a secret file is unreadable, or the
    /// stream is missing or cannot take the records.
    #[cfg(feature = "nats")]
    #[error(transparent)]
    Nats(#[from] crate::nats::NatsError),
    /// The TLS certificate, key or client CA cannot be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Raw mode cannot write to stdout.
    #[error("writing to stdout failed: {0}")]
    Stdout(io::Error),
    /// Anything else the operating system refused, or an event loop that
    /// failed while serving.
    #[error("{context}: {source}")]
    Io {
        /// What the server was doing.
        context: &'static str,
        /// What the system said.
        source: io::Error,
    },
}

impl ServerError {
    pub(crate) fn io(context: &'static str, source: io::Error) -> ServerError {
        ServerError::Io { context, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_is_one_line_naming_what_failed() {
        let error = || io::Error::from_raw_os_error(2);
        // The system's words for ENOENT ("No such file or directory" on
        // Linux, "File not found." on Windows).
        let enoent = error().to_string();
        let cases = [
            (
                ServerError::LogDirectory {
                    path: "/nonexistent/dir".into(),
                    source: error(),
                },
                format!("cannot open /nonexistent/dir: {enoent}"),
            ),
            (
                ServerError::Stdout(error()),
                format!("writing to stdout failed: {enoent}"),
            ),
            (
                ServerError::io("cannot watch signals", error()),
                format!("cannot watch signals: {enoent}"),
            ),
        ];
        for (error, says) in cases {
            assert_eq!(error.to_string(), says);
        }
    }
}
