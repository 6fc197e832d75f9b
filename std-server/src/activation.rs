//! Socket activation (`sd_listen_fds(3)`): a listening socket passed by
//! systemd (or `systemd-socket-activate`) in place of one the server binds.
//! So the server can start on its first connection, and listen on a port
//! below 1024 without being root.
//!
//! The protocol: `LISTEN_PID` is this process's PID and `LISTEN_FDS` the
//! number of descriptors passed, from 3 on. msglog-server takes exactly
//! one, a listening TCP socket (IPv4 or IPv6), for the framed or the raw
//! protocol, whichever mode it runs in. Unix only: on Windows nothing is
//! ever passed (`platform`).

use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, Type};

use crate::listen::Listening;

/// The passed descriptors are taken once per process: a second owner of
/// the same descriptor would close it under the first.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Why the passed socket cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActivationError {
    /// `LISTEN_PID` or `LISTEN_FDS` cannot be read.
    #[error("socket activation: {0}")]
    Environment(io::Error),
    /// Not one socket.
    #[error("socket activation passed {count} sockets; msglog-server takes one (one ListenStream= in the .socket unit)")]
    Count {
        /// How many were passed.
        count: usize,
    },
    /// The descriptor is not a listening TCP socket.
    #[error("socket activation: descriptor {fd} is not a listening TCP socket ({reason})")]
    NotTcpListener {
        /// The descriptor passed.
        fd: i32,
        /// What it is instead.
        reason: String,
    },
}

/// The socket systemd passed to this process, if it passed one.
pub(crate) fn take() -> Result<Option<Listening>, ActivationError> {
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    // Every passed descriptor is ours (closed on drop), the unused ones too.
    let owned = match crate::platform::passed_sockets() {
        Ok(owned) if !owned.is_empty() => owned,
        // Nothing taken: a later call may look again.
        other => {
            TAKEN.store(false, Ordering::SeqCst);
            return other.map(|_| None).map_err(ActivationError::Environment);
        }
    };
    let count = owned.len();
    if count != 1 {
        return Err(ActivationError::Count { count });
    }
    let (fd, socket) = owned.into_iter().next().expect("one descriptor");
    let not = |reason: String| ActivationError::NotTcpListener { fd, reason };
    let kind = socket.r#type().map_err(|e| not(e.to_string()))?;
    if kind != Type::STREAM {
        return Err(not("not a stream socket".into()));
    }
    let domain = socket
        .local_addr()
        .map_err(|e| not(e.to_string()))?
        .domain();
    if domain != Domain::IPV4 && domain != Domain::IPV6 {
        return Err(not("not an IP socket".into()));
    }
    if !crate::platform::is_listener(&socket).map_err(|e| not(e.to_string()))? {
        return Err(not("not listening".into()));
    }
    let dual_stack = domain == Domain::IPV6 && !socket.only_v6().unwrap_or(true);
    let listener = TcpListener::from(socket);
    let addr = listener.local_addr().map_err(|e| not(e.to_string()))?;
    Ok(Some(Listening {
        listener,
        addr,
        dual_stack,
    }))
}
