//! What differs between Unix and Windows, in one place: the stop requests
//! the summary is printed on (SIGINT/SIGTERM; Ctrl-C, Ctrl-Break or the
//! console closing), stdin as a file, and watching the connection's socket.

use std::fs::File;
use std::io;
use std::time::Duration;

use mio::{Registry, Token};
use msglog_client::Connection;

/// How the user asked the client to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT; on Windows Ctrl-C, Ctrl-Break or the console closing.
    Interrupted,
    /// SIGTERM (Unix only).
    #[cfg_attr(windows, allow(dead_code))]
    Terminated,
}

pub use imp::*;

#[cfg(unix)]
mod imp {
    use std::os::fd::{AsFd, AsRawFd};

    use mio::unix::SourceFd;
    use mio::Interest;
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;

    use super::*;

    /// The socket is in the poll: a wait need not wake up to look at it.
    pub const SOCKET_LOOK_INTERVAL: Option<Duration> = None;

    /// Call `on_stop` (from a thread of its own) on the first SIGINT or SIGTERM.
    pub fn on_stop(on_stop: impl FnOnce(Stop) + Send + 'static) -> io::Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    on_stop(match signal {
                        SIGTERM => Stop::Terminated,
                        _ => Stop::Interrupted,
                    });
                }
            })?;
        Ok(())
    }

    /// Stdin as an unbuffered file (a duplicate of descriptor 0).
    pub fn stdin() -> io::Result<File> {
        Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?))
    }

    /// Watch `connection`'s socket for readability under `token` (again, if
    /// a socket of the same number was registered before).
    pub fn watch_socket(
        registry: &Registry,
        token: Token,
        connection: &Connection,
    ) -> io::Result<()> {
        let fd = connection.as_fd().as_raw_fd();
        match registry.register(&mut SourceFd(&fd), token, Interest::READABLE) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                registry.reregister(&mut SourceFd(&fd), token, Interest::READABLE)
            }
            other => other,
        }
    }
}

#[cfg(windows)]
mod imp {
    use std::os::windows::io::AsHandle;

    use super::*;

    /// mio polls only sockets it owns on Windows, and the connection's is
    /// a blocking std one: a wait wakes up this often to look at it.
    pub const SOCKET_LOOK_INTERVAL: Option<Duration> = Some(Duration::from_millis(100));

    /// Call `on_stop` (from a thread of its own) on the first Ctrl-C,
    /// Ctrl-Break or console close (`ctrlc` does not tell them apart: all
    /// are an interruption).
    pub fn on_stop(on_stop: impl FnOnce(Stop) + Send + 'static) -> io::Result<()> {
        let mut on_stop = Some(on_stop);
        ctrlc::set_handler(move || {
            if let Some(on_stop) = on_stop.take() {
                on_stop(Stop::Interrupted);
            }
        })
        .map_err(io::Error::other)
    }

    /// Stdin as an unbuffered file (a duplicate of its handle; reads are
    /// binary, no newline translation).
    pub fn stdin() -> io::Result<File> {
        Ok(File::from(io::stdin().as_handle().try_clone_to_owned()?))
    }

    /// Nothing to register: see [`SOCKET_LOOK_INTERVAL`].
    pub fn watch_socket(
        _registry: &Registry,
        _token: Token,
        _connection: &Connection,
    ) -> io::Result<()> {
        Ok(())
    }
}
