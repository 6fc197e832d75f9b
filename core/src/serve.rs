//! Blocking server driver: one connection, start to end, over `embedded_io`.

use embedded_io::{Error as _, ErrorKind, Read, Write};

use crate::decode::Decoded;
use crate::io::{write_all, WriteError};
use crate::session::{Authenticator, Outcome, Reject, Session, Sink};
use crate::wire::Status;

/// How a served connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Ended {
    /// The client sent CLOSE and was answered 0x00.
    Closed,
    /// The connection was rejected (answered 0xFF, as far as the transport allowed).
    Rejected(Reject),
    /// The peer closed the connection; `partial` bytes of an unfinished transaction were dropped.
    Eof {
        /// Bytes of the dropped, unfinished transaction.
        partial: usize,
    },
}

impl core::fmt::Display for Ended {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Ended::Closed => f.write_str("closed"),
            Ended::Rejected(reject) => write!(f, "rejected: {reject}"),
            Ended::Eof { partial } => write!(f, "end of stream, {partial} bytes dropped"),
        }
    }
}

/// What [`serve`] did on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Served {
    /// How the connection ended.
    pub ended: Ended,
    /// Transactions answered (one status byte each). A connection ended by
    /// a transport timeout was also sent one 0xFF that answers no transaction.
    pub transactions: u64,
    /// Messages written to the sink and acknowledged.
    pub messages: u64,
}

/// Why [`serve`] stopped without the protocol ending the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServeError<E> {
    /// Reading from the connection failed.
    Read(E),
    /// Sending status bytes failed.
    Write(WriteError<E>),
    /// The receive buffer cannot hold the largest transaction the session accepts.
    BufferTooSmall {
        /// The smallest buffer that works ([`Session::MAX_FRAME`]).
        needed: usize,
    },
}

impl<E: core::fmt::Display> core::fmt::Display for ServeError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ServeError::Read(e) => write!(f, "read failed: {e}"),
            ServeError::Write(e) => write!(f, "{e}"),
            ServeError::BufferTooSmall { needed } => {
                write!(f, "receive buffer too small: {needed} bytes needed")
            }
        }
    }
}

impl<E: core::fmt::Debug + core::fmt::Display> core::error::Error for ServeError<E> {}

/// Status bytes answered in one read, sent with one write.
struct Replies {
    bytes: [u8; 64],
    len: usize,
}

impl Replies {
    fn push<W: Write + ?Sized>(
        &mut self,
        io: &mut W,
        status: Status,
    ) -> Result<(), WriteError<W::Error>> {
        if self.len == self.bytes.len() {
            self.send(io)?;
        }
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = status.as_byte();
            self.len += 1;
        }
        Ok(())
    }

    fn send<W: Write + ?Sized>(&mut self, io: &mut W) -> Result<(), WriteError<W::Error>> {
        if self.len > 0 {
            write_all(io, self.bytes.get(..self.len).unwrap_or_default())?;
            self.len = 0;
            io.flush().map_err(WriteError::Io)?;
        }
        Ok(())
    }
}

/// Serve one connection to its end: read into `buffer`, decode every
/// complete transaction in it, answer each with one status byte (all the
/// answers to one read in one write), and read again.
///
/// `buffer` must hold the session's largest transaction
/// ([`Session::MAX_FRAME`]); transactions split across reads and several
/// transactions in one read are both handled. A read that fails with
/// `ErrorKind::TimedOut` (a transport-level timeout) ends the connection as
/// [`Reject::Timeout`], answered 0xFF.
pub fn serve<T, A, S, const NAME: usize, const PASSWORD: usize, const MESSAGE: usize>(
    io: &mut T,
    buffer: &mut [u8],
    session: &mut Session<NAME, PASSWORD, MESSAGE>,
    auth: &mut A,
    sink: &mut S,
) -> Result<Served, ServeError<T::Error>>
where
    T: Read + Write + ?Sized,
    A: Authenticator + ?Sized,
    S: Sink + ?Sized,
{
    let needed = Session::<NAME, PASSWORD, MESSAGE>::MAX_FRAME;
    if buffer.len() < needed {
        return Err(ServeError::BufferTooSmall { needed });
    }
    let mut replies = Replies {
        bytes: [0; 64],
        len: 0,
    };
    let mut served = Served {
        ended: Ended::Eof { partial: 0 },
        transactions: 0,
        messages: 0,
    };
    let mut filled = 0;
    loop {
        let mut start = 0;
        while start < filled {
            let pending = buffer.get(start..filled).unwrap_or_default();
            let outcome = match session.decode(pending) {
                Ok(Decoded::Partial { .. }) => break,
                Ok(Decoded::Complete {
                    transaction,
                    consumed,
                }) => {
                    start += consumed;
                    session.handle(transaction, auth, sink)
                }
                Err(reject) => Outcome::Rejected(reject),
            };
            served.transactions += 1;
            if outcome == Outcome::Logged {
                served.messages += 1;
            }
            replies
                .push(io, outcome.status())
                .map_err(ServeError::Write)?;
            match outcome {
                Outcome::Closed => served.ended = Ended::Closed,
                Outcome::Rejected(reject) => served.ended = Ended::Rejected(reject),
                _ => continue,
            }
            debug!("connection ended: {}", served.ended);
            replies.send(io).map_err(ServeError::Write)?;
            return Ok(served);
        }
        replies.send(io).map_err(ServeError::Write)?;
        buffer.copy_within(start..filled, 0);
        filled -= start;
        let free = buffer.get_mut(filled..).unwrap_or_default();
        match io.read(free) {
            Ok(0) => {
                served.ended = Ended::Eof { partial: filled };
                return Ok(served);
            }
            Ok(n) => filled += n.min(free.len()),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                let outcome = session.fail(Reject::Timeout);
                served.ended = Ended::Rejected(Reject::Timeout);
                // Best effort: the peer may be gone.
                let _ = replies
                    .push(io, outcome.status())
                    .and_then(|()| replies.send(io));
                return Ok(served);
            }
            Err(e) => return Err(ServeError::Read(e)),
        }
    }
}
