//! Sessions on a serial line that cannot see connections.
//!
//! QEMU's `-serial tcp:...,server,nowait` accepts one TCP client at a time
//! (others wait in the listen backlog) and feeds its bytes into UART0. When
//! the client disconnects QEMU accepts the next one, whose bytes follow in
//! the same byte stream, as soon as a millisecond after the previous
//! session's last status byte (measured with clients started back to back).
//! Status bytes the firmware sends go to whichever client is connected at
//! that moment. Nothing on the UART marks where one connection ends and the
//! next begins, so the firmware delimits sessions itself:
//!
//! - A session ends when the protocol ends it: CLOSE (answered 0x00) or a
//!   rejection (answered 0xFF). Bytes in the same read as the ending
//!   transaction are dropped with it.
//! - Between sessions, a session starts only with a NAME header that a
//!   fresh session accepts (tag, and a length within its limits); bytes
//!   before one are ignored without an answer. They can only be leftovers
//!   of the connection that just ended (transactions pipelined after its
//!   CLOSE or after a rejected transaction, which a TCP server would drop by
//!   closing the connection), and answering them would send status bytes to
//!   the next client. The next session never inherits the previous one's
//!   name or authentication.
//! - A session that has started is timed by the core's session (its frame
//!   and idle timeouts, PROTOCOL.md decision 6): a transaction left
//!   unfinished, or no next transaction, is rejected as timed out (0xFF, to
//!   nobody if the client is gone). That is how a client that vanished
//!   without CLOSE is noticed. Until then the firmware is still in that
//!   session, and a new client's bytes are read as its continuation (its
//!   NAME is refused as an unexpected tag). Before the session starts
//!   there is nothing to time: [`LineTimer`] bounds only a started
//!   session's reads.
//!
//! There is deliberately no "discard until the line is quiet" step: the next
//! client's first bytes can arrive within a millisecond, and any quiet
//! window long enough to catch leftovers would swallow them.

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use msglog_board::polled_uart::{LineError, Uart};
use msglog_core::{Timer, HEADER_LEN};

use crate::clock::Clock;

/// Whether a transaction header may begin a session.
pub type SessionStart = fn(&[u8; HEADER_LEN]) -> bool;

/// Why reading or writing a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnectionError {
    /// The session had started and nothing arrived by its deadline.
    TimedOut,
    /// The UART reported a receive error.
    Line(LineError),
}

impl core::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConnectionError::TimedOut => f.write_str("nothing arrived in time"),
            ConnectionError::Line(e) => write!(f, "receive error: {e:?}"),
        }
    }
}

impl core::error::Error for ConnectionError {}

impl embedded_io::Error for ConnectionError {
    fn kind(&self) -> ErrorKind {
        match self {
            // `LineTimer::timed_out`: the session's deadline passed.
            ConnectionError::TimedOut => ErrorKind::TimedOut,
            ConnectionError::Line(_) => ErrorKind::InvalidData,
        }
    }
}

/// UART0 and the clock that times it.
pub struct Line<'c> {
    uart: Uart,
    clock: &'c Clock,
}

impl<'c> Line<'c> {
    /// A line over `uart`, timed by `clock`.
    pub fn new(uart: Uart, clock: &'c Clock) -> Self {
        Line { uart, clock }
    }

    /// The next session's I/O. Its first read waits, for as long as it takes,
    /// for a header that `is_start` accepts, ignoring the bytes before it;
    /// after that, a read that waits past the deadline [`LineTimer`] set
    /// fails with [`ConnectionError::TimedOut`].
    pub fn connection(&mut self, is_start: SessionStart) -> Connection<'_, 'c> {
        Connection {
            line: self,
            deadline: None,
            is_start,
            header: [0; HEADER_LEN],
            header_len: 0,
            header_sent: 0,
            started: false,
            ignored: 0,
            deferred: None,
        }
    }

    /// Wait until a byte is readable, until `deadline` (milliseconds of
    /// the clock) at most, if given.
    fn wait_readable(&mut self, deadline: Option<u64>) -> Result<(), ConnectionError> {
        loop {
            self.uart.clear_wakeup();
            if self.uart.readable() {
                return Ok(());
            }
            if deadline.is_some_and(|deadline| self.clock.now() >= deadline) {
                return Err(ConnectionError::TimedOut);
            }
            self.clock.sleep();
        }
    }
}

/// The session's clock, for `msglog_core::serve_with_timer`: milliseconds
/// of the line's [`Clock`], and a started session's reads bounded by the
/// session's deadline.
pub struct LineTimer<'c> {
    clock: &'c Clock,
}

impl<'c> LineTimer<'c> {
    pub fn new(clock: &'c Clock) -> Self {
        LineTimer { clock }
    }
}

impl Timer<Connection<'_, '_>> for LineTimer<'_> {
    type Instant = u64;

    fn now(&mut self) -> u64 {
        self.clock.now()
    }

    fn bound_read(
        &mut self,
        io: &mut Connection<'_, '_>,
        deadline: Option<u64>,
    ) -> Result<(), ConnectionError> {
        io.deadline = deadline;
        Ok(())
    }
}

/// One session's view of the line: `embedded_io` I/O for `msglog_core::serve_with_timer`.
pub struct Connection<'a, 'c> {
    line: &'a mut Line<'c>,
    /// Reads of a started session fail with [`ConnectionError::TimedOut`] from then on.
    deadline: Option<u64>,
    is_start: SessionStart,
    /// The last bytes seen while waiting for a session start; then that start,
    /// handed to the reader before anything else.
    header: [u8; HEADER_LEN],
    header_len: usize,
    header_sent: usize,
    started: bool,
    ignored: usize,
    /// A receive error met after some bytes were already read; reported by the next read.
    deferred: Option<LineError>,
}

impl Connection<'_, '_> {
    /// Bytes ignored before the session started.
    pub fn ignored(&self) -> usize {
        self.ignored
    }

    /// Slide a header-sized window over the incoming bytes until it holds a session start.
    fn await_start(&mut self) -> Result<(), ConnectionError> {
        loop {
            self.line.wait_readable(None)?;
            loop {
                let byte = match self.line.uart.read_byte() {
                    Ok(Some(byte)) => byte,
                    Ok(None) => break,
                    // A byte lost to a line error cannot be part of a start.
                    Err(_) => {
                        self.ignored += self.header_len + 1;
                        self.header_len = 0;
                        continue;
                    }
                };
                if self.header_len == HEADER_LEN {
                    self.header.copy_within(1.., 0);
                    self.header_len -= 1;
                    self.ignored += 1;
                }
                if let Some(slot) = self.header.get_mut(self.header_len) {
                    *slot = byte;
                    self.header_len += 1;
                }
                if self.header_len == HEADER_LEN && (self.is_start)(&self.header) {
                    self.started = true;
                    return Ok(());
                }
            }
        }
    }

    /// Copy what has arrived into `buf`, without waiting.
    fn take_available(&mut self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        let mut filled = 0;
        for slot in buf.iter_mut() {
            match self.line.uart.read_byte() {
                Ok(Some(byte)) => *slot = byte,
                Ok(None) => break,
                Err(error) if filled == 0 => return Err(ConnectionError::Line(error)),
                Err(error) => {
                    self.deferred = Some(error);
                    break;
                }
            }
            filled += 1;
        }
        Ok(filled)
    }
}

impl ErrorType for Connection<'_, '_> {
    type Error = ConnectionError;
}

impl Read for Connection<'_, '_> {
    /// Wait for at least one byte, then take what has arrived, up to `buf.len()`.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.started {
            self.await_start()?;
        }
        let header = self
            .header
            .get(self.header_sent..self.header_len)
            .unwrap_or_default();
        if !header.is_empty() {
            let n = header.len().min(buf.len());
            let (head, rest) = buf.split_at_mut(n);
            head.copy_from_slice(header.get(..n).unwrap_or_default());
            self.header_sent += n;
            return match self.take_available(rest) {
                Ok(more) => Ok(n + more),
                Err(ConnectionError::Line(error)) => {
                    self.deferred = Some(error);
                    Ok(n)
                }
                Err(error) => Err(error),
            };
        }
        if let Some(error) = self.deferred.take() {
            return Err(ConnectionError::Line(error));
        }
        self.line.wait_readable(self.deadline)?;
        self.take_available(buf)
    }
}

impl Write for Connection<'_, '_> {
    /// Wait for room in the transmit FIFO, then queue what fits.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        while !self.line.uart.writable() {}
        let mut sent = 0;
        for &byte in buf {
            if !self.line.uart.write_byte(byte) {
                break;
            }
            sent += 1;
        }
        Ok(sent)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        while self.line.uart.busy() {}
        Ok(())
    }
}
