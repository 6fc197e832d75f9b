//! Sessions on a serial line that cannot see connections.
//!
//! QEMU's `-serial tcp:...,server,nowait` accepts one TCP client at a time
//! and feeds its bytes into UART0; when the client disconnects QEMU listens
//! again, and the next client's bytes follow in the same byte stream, as
//! soon as one millisecond after the previous session's last status byte
//! (measured with clients started back to back). Nothing on the UART marks
//! where one connection ends and the next begins, so sessions are delimited
//! by the protocol and by time:
//!
//! - A session ends when the protocol ends it: CLOSE (answered 0x00) or a
//!   rejection (answered 0xFF). Bytes that came in the same read as the
//!   ending transaction are dropped with it; the next byte after that
//!   starts a new session in the initial state, which never inherits the
//!   previous session's name or authentication.
//! - A session that has started (received a byte) and then hears nothing
//!   for the silence timeout is rejected as timed out (0xFF, to nobody if
//!   the client is gone): that is how a client that vanished without CLOSE
//!   is noticed. Until then the firmware is still in its session, and a new
//!   client's bytes are read as that session's continuation.
//!
//! There is deliberately no "discard until the line is quiet" step after a
//! session: a new client's first transaction arrives within about a
//! millisecond of the previous client's last status byte, and any quiet
//! window long enough to catch stale bytes would swallow it.

use embedded_io::{ErrorKind, ErrorType, Read, Write};

use crate::clock::Clock;
use crate::uart::{LineError, Uart};

/// Why reading or writing a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnectionError {
    /// The session had started and the line stayed silent for the silence timeout.
    Silent,
    /// The UART reported a receive error.
    Line(LineError),
}

impl core::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConnectionError::Silent => f.write_str("line silent for too long"),
            ConnectionError::Line(e) => write!(f, "receive error: {e:?}"),
        }
    }
}

impl core::error::Error for ConnectionError {}

impl embedded_io::Error for ConnectionError {
    fn kind(&self) -> ErrorKind {
        match self {
            // `serve` answers a timed-out read with 0xFF (`Reject::Timeout`).
            ConnectionError::Silent => ErrorKind::TimedOut,
            ConnectionError::Line(_) => ErrorKind::InvalidData,
        }
    }
}

/// UART0 and the clock that times it.
pub struct Line {
    uart: Uart,
    clock: Clock,
}

impl Line {
    /// A line over `uart`, timed by `clock`.
    pub fn new(uart: Uart, clock: Clock) -> Self {
        Line { uart, clock }
    }

    /// The next session's I/O: its first read waits for as long as it takes;
    /// once a byte has arrived, a read that waits longer than `silence_ms`
    /// fails with [`ConnectionError::Silent`].
    pub fn connection(&mut self, silence_ms: u32) -> Connection<'_> {
        Connection {
            line: self,
            silence_ms,
            started: false,
            deferred: None,
        }
    }

    /// Wait until a byte is readable, for at most `limit_ms` if given.
    fn wait_readable(&mut self, limit_ms: Option<u32>) -> Result<(), ConnectionError> {
        let start = self.clock.now();
        loop {
            self.uart.clear_wakeup();
            if self.uart.readable() {
                return Ok(());
            }
            if limit_ms.is_some_and(|limit| self.clock.elapsed(start) >= limit) {
                return Err(ConnectionError::Silent);
            }
            self.clock.sleep();
        }
    }
}

/// One session's view of the line: `embedded_io` I/O for `msglog_core::serve`.
pub struct Connection<'a> {
    line: &'a mut Line,
    silence_ms: u32,
    started: bool,
    /// A receive error met after some bytes were already read; reported by the next read.
    deferred: Option<LineError>,
}

impl ErrorType for Connection<'_> {
    type Error = ConnectionError;
}

impl Read for Connection<'_> {
    /// Wait for at least one byte, then take what has arrived, up to `buf.len()`.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(error) = self.deferred.take() {
            return Err(ConnectionError::Line(error));
        }
        let limit = self.started.then_some(self.silence_ms);
        self.line.wait_readable(limit)?;
        self.started = true;
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

impl Write for Connection<'_> {
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
