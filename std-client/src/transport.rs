//! [`Transport`], what a connection runs over, and the adapters from it
//! to the `embedded_io` traits the core's drivers are written against.

use std::fmt;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use msglog_core::{Timer, MAX_FRAME};
use socket2::SockRef;

/// A byte stream to a msglog server: what a [`Connection`](crate::Connection)
/// and [`send_raw`](crate::send_raw) run over. Implemented for a
/// `TcpStream`, for [`TlsStream`](crate::TlsStream) (feature `tls`), and
/// for a caller's own stream (a Unix socket, a tunnel, another TLS
/// library) with a descriptor to wait on.
pub trait Transport: Read + Write + AsFd + Send + fmt::Debug {
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

impl<T: Transport + ?Sized> Transport for &mut T {
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
}

impl<T: Transport + ?Sized> Transport for Box<T> {
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
}

/// The transport a [`Connection`](crate::Connection) holds.
pub(crate) type BoxedTransport = Box<dyn Transport>;

/// Capacity of [`GatherStream`]'s write buffer: the largest transaction
/// (header and a 65535-byte payload), so every transaction fits whole.
pub(crate) const WRITE_BUFFER: usize = MAX_FRAME;

/// An `embedded_io` view of a `std::io` reader or writer. Reads and writes
/// interrupted by a signal (`EINTR`) are retried.
#[derive(Debug)]
pub(crate) struct Std<T>(pub(crate) T);

impl<T> embedded_io::ErrorType for Std<T> {
    type Error = io::Error;
}

impl<T: Read> embedded_io::Read for Std<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        retry_interrupted(|| self.0.read(buf))
    }
}

impl<T: Write> embedded_io::Write for Std<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        retry_interrupted(|| self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A stream whose writes are gathered until `flush`, which sends them with
/// as few `write(2)` calls as the kernel allows (one, on a blocking socket).
///
/// The core's [`Client`](msglog_core::Client) writes a transaction's header,
/// then its payload, then flushes; through this adapter each transaction
/// reaches the socket in one write, as the original server requires. Unlike
/// `std::io::BufWriter`, dropping it never writes: a failed connection is
/// not written to again.
#[derive(Debug)]
pub(crate) struct GatherStream<S> {
    stream: S,
    pending: Vec<u8>,
}

impl<S> GatherStream<S> {
    /// Gather writes to `stream` in a buffer of [`WRITE_BUFFER`] bytes.
    pub(crate) fn new(stream: S) -> Self {
        GatherStream {
            stream,
            pending: Vec::with_capacity(WRITE_BUFFER),
        }
    }

    /// The stream.
    pub(crate) fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, to peek at.
    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Give back the stream; bytes not yet flushed are discarded.
    #[cfg(test)]
    fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: Write> GatherStream<S> {
    /// Send every gathered byte. On failure the buffer is emptied anyway: the
    /// stream is in an unknown state and the session over.
    fn send_pending(&mut self) -> io::Result<()> {
        let result = write_all(&mut self.stream, &self.pending);
        self.pending.clear();
        result
    }
}

impl<S> embedded_io::ErrorType for GatherStream<S> {
    type Error = io::Error;
}

impl<S: Read> embedded_io::Read for GatherStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        retry_interrupted(|| self.stream.read(buf))
    }
}

impl<S: Transport + ?Sized> embedded_io::ReadReady for GatherStream<Box<S>> {
    fn read_ready(&mut self) -> io::Result<bool> {
        Ok(!matches!(self.stream.peek_byte(), Ok(None)))
    }
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
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
    loop {
        match SockRef::from(stream).recv_with_flags(&mut probe, flags) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Peeked::Nothing,
            Err(e) => return Peeked::Closed(e),
            Ok(0) => {
                return Peeked::Closed(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ))
            }
            // A byte is there, so this peek returns at once.
            Ok(_) => {
                let mut byte = [0u8; 1];
                return match stream.peek(&mut byte) {
                    Ok(1) => Peeked::Byte(byte[0]),
                    Ok(_) => Peeked::Closed(io::ErrorKind::UnexpectedEof.into()),
                    Err(e) => Peeked::Closed(e),
                };
            }
        }
    }
}

impl<S: Write> embedded_io::Write for GatherStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pending.len() + buf.len() > WRITE_BUFFER {
            self.send_pending()?;
        }
        if buf.len() > WRITE_BUFFER {
            return retry_interrupted(|| self.stream.write(buf));
        }
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()?;
        self.stream.flush()
    }
}

/// How late a bounded read may wake up after the session's deadline: while
/// statuses stream in, the receive timeout already set is close enough and
/// no `setsockopt` is needed per read.
const TIMEOUT_SLACK: Duration = Duration::from_millis(10);

/// The shortest receive timeout set (zero would mean none).
const MIN_READ_TIMEOUT: Duration = Duration::from_millis(1);

/// The clock of a [`Connection`](crate::Connection)'s client: nanoseconds
/// since the connection opened. It bounds each read by the session's
/// deadline with the socket's receive timeout.
#[derive(Debug)]
pub(crate) struct SocketTimer {
    epoch: Instant,
    /// The socket's receive timeout as last set (`None`: none).
    read_timeout: Option<Duration>,
}

impl SocketTimer {
    /// A clock counting from `epoch`, for a socket whose receive timeout
    /// is `read_timeout`.
    pub(crate) fn new(epoch: Instant, read_timeout: Option<Duration>) -> Self {
        SocketTimer {
            epoch,
            read_timeout,
        }
    }
}

/// `duration` in nanoseconds, the unit of [`SocketTimer`]'s instants.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Timer<GatherStream<BoxedTransport>> for SocketTimer {
    type Instant = u64;

    fn now(&mut self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    fn bound_read(
        &mut self,
        io: &mut GatherStream<BoxedTransport>,
        deadline: Option<u64>,
    ) -> io::Result<()> {
        let Some(deadline) = deadline else {
            return Ok(());
        };
        let left = Duration::from_nanos(deadline.saturating_sub(self.now())).max(MIN_READ_TIMEOUT);
        // Neither much later than the deadline nor many early wake-ups.
        let close_enough = self
            .read_timeout
            .is_some_and(|set| set <= left + TIMEOUT_SLACK && set >= left / 2);
        if !close_enough {
            io.get_ref().set_read_timeout(Some(left))?;
            self.read_timeout = Some(left);
        }
        Ok(())
    }

    fn timed_out(&self, error: &io::Error) -> bool {
        matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        )
    }
}

fn write_all<W: Write>(writer: &mut W, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match retry_interrupted(|| writer.write(buf))? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = buf.get(n..).unwrap_or_default(),
        }
    }
    Ok(())
}

fn retry_interrupted(mut op: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use msglog_core::{Client, Transaction, MAX_PAYLOAD};

    use super::*;

    /// A fake connection that records every `write` call and answers with
    /// queued status bytes; `max_write` bounds how much one write accepts.
    struct Recorder {
        writes: Vec<Vec<u8>>,
        statuses: VecDeque<u8>,
        max_write: usize,
    }

    impl Read for Recorder {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.statuses.len());
            for slot in buf.iter_mut().take(n) {
                *slot = self.statuses.pop_front().unwrap();
            }
            Ok(n)
        }
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.max_write);
            self.writes.push(buf[..n].to_vec());
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn session(max_write: usize, messages: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let recorder = Recorder {
            writes: Vec::new(),
            statuses: vec![0u8; messages.len() + 3].into(),
            max_write,
        };
        let name = vec![b'n'; 255];
        let password = vec![b'p'; 255];
        let mut client = Client::new(GatherStream::new(recorder), 64);
        client
            .login(std::str::from_utf8(&name).unwrap(), &password)
            .unwrap();
        for message in messages {
            client.send(message).unwrap();
        }
        client.close().unwrap();
        assert_eq!(client.messages_acknowledged(), messages.len() as u64);

        let mut expected = vec![
            encode(Transaction::Name(&name)),
            encode(Transaction::Password(&password)),
        ];
        expected.extend(messages.iter().map(|m| encode(Transaction::Message(m))));
        expected.push(encode(Transaction::Close));
        (client.into_inner().into_inner().writes, expected)
    }

    fn encode(transaction: Transaction<'_>) -> Vec<u8> {
        let mut out = vec![0; transaction.encoded_len()];
        transaction.encode(&mut out).unwrap();
        out
    }

    fn messages() -> Vec<Vec<u8>> {
        vec![
            b"x".to_vec(),
            vec![0xAB; MAX_PAYLOAD],
            b"hello".to_vec(),
            vec![b'y'; MAX_PAYLOAD - 1],
            vec![b'z'; MAX_PAYLOAD],
            vec![0; 1000],
        ]
    }

    #[test]
    fn every_transaction_is_one_write() {
        let (writes, expected) = session(usize::MAX, &messages());
        assert_eq!(writes.len(), expected.len());
        for (write, transaction) in writes.iter().zip(&expected) {
            assert_eq!(write, transaction);
        }
    }

    #[test]
    fn short_writes_are_continued() {
        let (writes, expected) = session(1000, &messages());
        assert_eq!(writes.concat(), expected.concat());
    }

    #[test]
    fn a_failed_flush_empties_the_buffer() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut stream = GatherStream::new(Broken);
        embedded_io::Write::write(&mut stream, b"abc").unwrap();
        let error = embedded_io::Write::flush(&mut stream).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert!(stream.pending.is_empty());
    }
}
