//! What differs between Unix and Windows, in one place: a peek that does
//! not wait, and the socket a caller may wait for in its own poll.

use std::io;
use std::mem::MaybeUninit;
use std::net::TcpStream;

use socket2::SockRef;

use crate::Connection;

/// Peeks at what has arrived on `stream` without waiting: `WouldBlock` when
/// nothing has.
#[cfg(unix)]
pub(crate) fn peek_now(stream: &TcpStream, buffer: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    SockRef::from(stream).recv_with_flags(buffer, libc::MSG_PEEK | libc::MSG_DONTWAIT)
}

/// Peeks at what has arrived on `stream` without waiting: `WouldBlock` when
/// nothing has. Winsock has no per-call MSG_DONTWAIT, so the socket is
/// non-blocking for the one call (the drivers never share it with a thread).
#[cfg(windows)]
pub(crate) fn peek_now(stream: &TcpStream, buffer: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    stream.set_nonblocking(true)?;
    let peeked = SockRef::from(stream).peek(buffer);
    let restored = stream.set_nonblocking(false);
    let peeked = peeked?;
    restored.map(|()| peeked)
}

/// The socket, e.g. to wait for it to become readable (a status, a goodbye
/// or a close) in a poll of the caller's; read it only through the
/// connection, and [`flush`](Connection::flush) queued messages first.
#[cfg(unix)]
impl std::os::fd::AsFd for Connection {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.stream().as_ref().as_fd()
    }
}

/// The socket, e.g. to wait for it to become readable (a status, a goodbye
/// or a close) in a poll of the caller's; read it only through the
/// connection, and [`flush`](Connection::flush) queued messages first.
#[cfg(windows)]
impl std::os::windows::io::AsSocket for Connection {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        self.stream().as_ref().as_socket()
    }
}
