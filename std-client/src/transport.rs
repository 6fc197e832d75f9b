//! What the drivers need of a TCP socket beyond `Read` and `Write`: a
//! look at what has arrived without reading it, and reads bounded by the
//! session's deadline.

use std::io;
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::time::Duration;

use msglog_std::retry_interrupted;
use socket2::SockRef;

/// Whether a read from `stream` would return at once: bytes have arrived,
/// the peer closed, or the socket has an error to report (which the read
/// will return).
pub(crate) fn read_ready(stream: &TcpStream) -> bool {
    !matches!(peek(stream), Peeked::Nothing)
}

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

/// One non-blocking peek (and a second, to learn the byte, when there is one).
pub(crate) fn peek(stream: &TcpStream) -> Peeked {
    let mut probe = [MaybeUninit::<u8>::uninit()];
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
    match retry_interrupted(|| SockRef::from(stream).recv_with_flags(&mut probe, flags)) {
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
    pub(crate) fn bound(&mut self, stream: &TcpStream, left: Option<Duration>) -> io::Result<()> {
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
