//! Failures at the command-line edge: one line each, and a distinct exit code.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::dir_lock::LockError;
use crate::listen::BindError;
use crate::log_file::OpenError;
use crate::users::UsersError;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The port is taken, invalid for this host, or not ours to use.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The log directory or a log file cannot be opened.
    #[error("cannot open {path}: {source}")]
    Log { path: PathBuf, source: io::Error },
    /// A log cannot be opened or repaired; or the unfinished last line of
    /// one cannot be saved in its side file (then nothing was changed).
    #[error(transparent)]
    Journal(#[from] OpenError),
    /// The log directory cannot be locked, or another server holds it.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The users file cannot be read or is invalid.
    #[error(transparent)]
    Users(#[from] UsersError),
    /// `hash-password` got no usable password.
    #[error("{0}")]
    Password(String),
    /// Raw mode or hash-password cannot write to stdout.
    #[error("writing to stdout failed: {0}")]
    Stdout(io::Error),
    /// Anything else the operating system refused.
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        source: io::Error,
    },
}

impl Failure {
    pub fn io(context: &'static str, source: io::Error) -> Failure {
        Failure::Io { context, source }
    }

    /// Exit codes: 1 runtime error, 2 usage, 3 cannot listen, 4 cannot open
    /// logs, 5 bad users file, 6 no password, 7 stdout failed, 8 a torn
    /// last line cannot be saved in its side file, 9 another server holds
    /// the log directory.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Io { .. } => 1,
            Failure::Bind(_) => 3,
            Failure::Log { .. } => 4,
            Failure::Journal(OpenError::SideFile { .. }) => 8,
            Failure::Journal(_) => 4,
            Failure::Lock(LockError::Held { .. }) => 9,
            Failure::Lock(_) => 4,
            Failure::Users(_) => 5,
            Failure::Password(_) => 6,
            Failure::Stdout(_) => 7,
        })
    }
}
