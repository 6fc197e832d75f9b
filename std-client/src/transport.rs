//! [`Transport`], what a connection runs over (TCP, TLS, a caller's own
//! stream), and what the drivers need of it beyond `Read` and `Write`: a
//! look at what has arrived without reading it, and reads bounded by the
//! session's deadline.

use std::fmt;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::fd::AsFd as OsSocket;
#[cfg(windows)]
use std::os::windows::io::AsSocket as OsSocket;
use std::time::Duration;

use msglog_std::retry_interrupted;

use crate::platform::peek_now;

/// A byte stream to a msglog server: what a [`Connection`](crate::Connection)
/// and [`send_raw`](crate::send_raw) run over. Implemented for a
/// `TcpStream`, for [`TlsStream`](crate::TlsStream) (feature `tls`), and
/// for a caller's own stream (a Unix socket, a tunnel, another TLS
/// library) with a socket to wait on (`AsFd` on Unix, `AsSocket` on
/// Windows).
pub trait Transport: Read + Write + OsSocket + Send + fmt::Debug {
    /// Bound each blocking read by `timeout` (`None`: no bound); a read
    /// that times out fails with `WouldBlock` or `TimedOut`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Without waiting: the next byte if one has arrived (`Ok(Some)`, and
    /// the next read returns it), `Ok(None)` if nothing has, or the error
    /// the next read would return (`UnexpectedEof` when the server closed
    /// the connection).
    fn peek_byte(&mut self) -> io::Result<Option<u8>>;

    /// End the sending side (raw mode's end of stream): a TCP shutdown;
    /// over TLS, close_notify first.
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// The server's address.
    fn peer_addr(&self) -> io::Result<SocketAddr>;

    /// After [`shutdown_write`](Self::shutdown_write), read until the
    /// server closes: `Ok(0)` only for a clean close (over TLS: its
    /// close_notify, then the TCP close), a byte count if it sent bytes,
    /// the error otherwise (a reset, a close without close_notify).
    fn read_to_close(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.read(buffer)
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn peek_byte(&mut self) -> io::Result<Option<u8>> {
        peek(self).into_result()
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr(self)
    }
}

impl Transport for &TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn peek_byte(&mut self) -> io::Result<Option<u8>> {
        peek(self).into_result()
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr(self)
    }
}

/// The methods of a [`Transport`] that forwards to the one it points to.
macro_rules! forward_transport {
    () => {
        fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            (**self).set_read_timeout(timeout)
        }

        fn peek_byte(&mut self) -> io::Result<Option<u8>> {
            (**self).peek_byte()
        }

        fn shutdown_write(&mut self) -> io::Result<()> {
            (**self).shutdown_write()
        }

        fn peer_addr(&self) -> io::Result<SocketAddr> {
            (**self).peer_addr()
        }

        fn read_to_close(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            (**self).read_to_close(buffer)
        }
    };
}

// Unix's `AsFd` is implemented for `&mut T` and `Box<T>` of unsized `T`,
// so these forward for `dyn Transport` too.
#[cfg(unix)]
impl<T: Transport + ?Sized> Transport for &mut T {
    forward_transport!();
}

#[cfg(unix)]
impl<T: Transport + ?Sized> Transport for Box<T> {
    forward_transport!();
}

// Windows's `AsSocket` is implemented for `&mut T` and `Box<T>` of sized `T`
// only; `Box<dyn Transport>` gets its own.
#[cfg(windows)]
impl<T: Transport> Transport for &mut T {
    forward_transport!();
}

#[cfg(windows)]
impl<T: Transport> Transport for Box<T> {
    forward_transport!();
}

#[cfg(windows)]
impl std::os::windows::io::AsSocket for Box<dyn Transport> {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        (**self).as_socket()
    }
}

#[cfg(windows)]
impl Transport for Box<dyn Transport> {
    forward_transport!();
}

/// The transport a [`Connection`](crate::Connection) holds.
pub(crate) type BoxedTransport = Box<dyn Transport>;

/// What the peer has sent, seen without reading it or waiting.
#[derive(Debug)]
pub(crate) enum Peeked {
    /// Nothing yet.
    Nothing,
    /// The next byte.
    Byte(u8),
    /// End of stream (`UnexpectedEof`), a reset, or another error the next
    /// read would report.
    Closed(io::Error),
}

impl Peeked {
    fn into_result(self) -> io::Result<Option<u8>> {
        match self {
            Peeked::Nothing => Ok(None),
            Peeked::Byte(byte) => Ok(Some(byte)),
            Peeked::Closed(error) => Err(error),
        }
    }

    /// What [`Transport::peek_byte`] said.
    pub(crate) fn from_result(result: io::Result<Option<u8>>) -> Peeked {
        match result {
            Ok(None) => Peeked::Nothing,
            Ok(Some(byte)) => Peeked::Byte(byte),
            Err(error) => Peeked::Closed(error),
        }
    }
}

/// One non-blocking peek (and a second, to learn the byte, when there is one).
pub(crate) fn peek(stream: &TcpStream) -> Peeked {
    let mut probe = [MaybeUninit::<u8>::uninit()];
    match retry_interrupted(|| peek_now(stream, &mut probe)) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Peeked::Nothing,
        Err(e) => Peeked::Closed(e),
        Ok(0) => Peeked::Closed(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        )),
        // A byte is there, so this peek returns at once.
        Ok(_) => {
            let mut byte = [0u8; 1];
            match retry_interrupted(|| stream.peek(&mut byte)) {
                Ok(1) => Peeked::Byte(byte[0]),
                Ok(_) => Peeked::Closed(io::ErrorKind::UnexpectedEof.into()),
                Err(e) => Peeked::Closed(e),
            }
        }
    }
}

/// How late a bounded read may wake up after the session's deadline: while
/// statuses stream in, the receive timeout already set is close enough and
/// no `setsockopt` is needed per read.
const TIMEOUT_SLACK: Duration = Duration::from_millis(10);

/// The shortest receive timeout set (zero would mean none).
const MIN_READ_TIMEOUT: Duration = Duration::from_millis(1);

/// Bounds each blocking read by the session's deadline with the socket's
/// receive timeout, changing it only when the one set is far off.
#[derive(Debug)]
pub(crate) struct ReadDeadline {
    /// The socket's receive timeout as last set (`None`: none).
    read_timeout: Option<Duration>,
}

impl ReadDeadline {
    /// For a socket whose receive timeout is `read_timeout`.
    pub(crate) fn new(read_timeout: Option<Duration>) -> Self {
        ReadDeadline { read_timeout }
    }

    /// Make the next read on `stream` return about `left` from now if
    /// nothing arrives (`None`: no deadline; the timeout set stays).
    pub(crate) fn bound<T: Transport + ?Sized>(
        &mut self,
        stream: &T,
        left: Option<Duration>,
    ) -> io::Result<()> {
        let Some(left) = left else {
            return Ok(());
        };
        let left = left.max(MIN_READ_TIMEOUT);
        // Neither much later than the deadline nor many early wake-ups.
        let close_enough = self
            .read_timeout
            .is_some_and(|set| set <= left + TIMEOUT_SLACK && set >= left / 2);
        if !close_enough {
            stream.set_read_timeout(Some(left))?;
            self.read_timeout = Some(left);
        }
        Ok(())
    }
}
