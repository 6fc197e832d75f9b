//! The server loop: one connection, start to end. The sans-I/O part both
//! fronts share ([`Serving`]: which transactions to answer with which
//! status bytes, and how the connection ended), and the blocking front over
//! `embedded_io` ([`serve`], [`serve_with_timer`]).

use embedded_io::{Error as _, ErrorKind, Read, Write};

use crate::decode::Decoded;
use crate::io::{write_all, WriteError};
use crate::session::{Authenticator, Outcome, Reject, Session, Sink};
use crate::time::Instant;
use crate::timer::{NoTimer, Timer};
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
    /// a timeout was also sent one 0xFF that answers no transaction.
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
const REPLIES: usize = 64;

/// One connection being served, without its I/O: what was served so far,
/// and the status bytes not yet sent ([`Replies`], kept apart so that a
/// small target zeroes them as bytes). A front reads into its buffer,
/// calls [`answer`](Self::answer), sends the replies, and repeats.
pub(crate) struct Serving {
    served: Served,
}

/// The status bytes of one round of [`Serving::answer`].
pub(crate) struct Replies {
    bytes: [u8; REPLIES],
    len: usize,
}

impl Replies {
    pub(crate) const fn new() -> Self {
        Replies {
            bytes: [0; REPLIES],
            len: 0,
        }
    }

    /// The status bytes to send.
    pub(crate) fn pending(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// They were sent.
    pub(crate) fn sent(&mut self) {
        self.len = 0;
    }

    fn is_full(&self) -> bool {
        self.len == REPLIES
    }

    fn push(&mut self, status: Status) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = status.as_byte();
            self.len += 1;
        }
    }
}

/// What [`Serving::answer`] did with the bytes buffered.
pub(crate) struct Answered {
    /// Bytes of complete transactions, now answered.
    pub(crate) consumed: usize,
    /// The session ended: send the replies and stop.
    pub(crate) ended: bool,
}

impl Serving {
    pub(crate) const fn new() -> Self {
        Serving {
            served: Served {
                ended: Ended::Eof { partial: 0 },
                transactions: 0,
                messages: 0,
            },
        }
    }

    /// Answer the complete transactions at the start of `pending`, whose
    /// last bytes arrived at `now`, into `replies`, until one is unfinished,
    /// the session ends, or the replies are full (send them, then call again).
    pub(crate) fn answer<A, S, const NAME: usize, const PASSWORD: usize, const MESSAGE: usize, I>(
        &mut self,
        session: &mut Session<NAME, PASSWORD, MESSAGE, I>,
        pending: &[u8],
        now: I,
        (auth, sink): (&mut A, &mut S),
        replies: &mut Replies,
    ) -> Answered
    where
        A: Authenticator + ?Sized,
        S: Sink + ?Sized,
        I: Instant,
    {
        let mut consumed = 0;
        while !replies.is_full() {
            let Some(input) = pending.get(consumed..).filter(|rest| !rest.is_empty()) else {
                break;
            };
            let outcome = match session.decode_at(input, now) {
                Ok(Decoded::Partial { .. }) => break,
                Ok(Decoded::Complete {
                    transaction,
                    consumed: used,
                }) => {
                    consumed += used;
                    session.handle(transaction, auth, sink)
                }
                Err(reject) => Outcome::Rejected(reject),
            };
            self.served.transactions += 1;
            if outcome == Outcome::Logged {
                self.served.messages += 1;
            }
            replies.push(outcome.status());
            if self.end_with(outcome) {
                debug!("connection ended: {}", self.served.ended);
                return Answered {
                    consumed,
                    ended: true,
                };
            }
        }
        Answered {
            consumed,
            ended: false,
        }
    }

    /// The session timed out (its own timeout, or the transport's): its
    /// 0xFF answers no transaction.
    pub(crate) fn time_out(&mut self, outcome: Outcome, replies: &mut Replies) {
        replies.push(outcome.status());
        self.end_with(outcome);
    }

    /// The peer closed the connection with `partial` bytes of an unfinished
    /// transaction buffered.
    pub(crate) fn eof(&mut self, partial: usize) {
        self.served.ended = Ended::Eof { partial };
    }

    pub(crate) fn served(&self) -> Served {
        self.served
    }

    /// Whether `outcome` ends the connection; if so, it says how.
    fn end_with(&mut self, outcome: Outcome) -> bool {
        self.served.ended = match outcome {
            Outcome::Closed => Ended::Closed,
            Outcome::Rejected(reject) => Ended::Rejected(reject),
            _ => return false,
        };
        true
    }
}

/// The smallest receive buffer for `session`, if `buffer` is smaller.
pub(crate) fn check_buffer<const NAME: usize, const PASSWORD: usize, const MESSAGE: usize, I>(
    _session: &Session<NAME, PASSWORD, MESSAGE, I>,
    buffer: &[u8],
) -> Result<(), usize>
where
    I: Instant,
{
    let needed = Session::<NAME, PASSWORD, MESSAGE, I>::MAX_FRAME;
    if buffer.len() < needed {
        return Err(needed);
    }
    Ok(())
}

/// Serve one connection to its end: read into `buffer`, decode every
/// complete transaction in it, answer each with one status byte (all the
/// answers to one read in one write), and read again.
///
/// `buffer` must hold the session's largest transaction
/// ([`Session::MAX_FRAME`]); transactions split across reads and several
/// transactions in one read are both handled. A read that fails with
/// `ErrorKind::TimedOut` (a transport-level timeout) ends the connection as
/// [`Reject::Timeout`], answered 0xFF. The session's own timeouts need a
/// clock: [`serve_with_timer`].
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
    serve_with_timer(io, buffer, session, auth, sink, &mut NoTimer)
}

/// [`serve`], with the session's frame and idle timeouts
/// ([`Session::set_frame_timeout`], [`Session::set_idle_timeout`]) on
/// `timer`'s clock: every read is bounded by [`Session::poll_timeout`], and
/// a connection whose deadline passes is answered 0xFF and ended as
/// [`Reject::Timeout`]. The idle timeout runs from [`Session::start`] if
/// the caller called it (when it accepted the connection), else from here.
pub fn serve_with_timer<
    T,
    A,
    S,
    M,
    const NAME: usize,
    const PASSWORD: usize,
    const MESSAGE: usize,
>(
    io: &mut T,
    buffer: &mut [u8],
    session: &mut Session<NAME, PASSWORD, MESSAGE, M::Instant>,
    auth: &mut A,
    sink: &mut S,
    timer: &mut M,
) -> Result<Served, ServeError<T::Error>>
where
    T: Read + Write + ?Sized,
    A: Authenticator + ?Sized,
    S: Sink + ?Sized,
    M: Timer<T> + ?Sized,
{
    check_buffer(session, buffer).map_err(|needed| ServeError::BufferTooSmall { needed })?;
    let mut serving = Serving::new();
    let mut replies = Replies::new();
    let mut now = timer.now();
    session.start(now);
    let mut filled = 0;
    loop {
        let mut start = 0;
        loop {
            let pending = buffer.get(start..filled).unwrap_or_default();
            let answered = serving.answer(session, pending, now, (auth, sink), &mut replies);
            start += answered.consumed;
            send(io, &mut replies).map_err(ServeError::Write)?;
            if answered.ended {
                return Ok(serving.served());
            }
            if answered.consumed == 0 {
                break;
            }
        }
        buffer.copy_within(start..filled, 0);
        filled -= start;
        let free = buffer.get_mut(filled..).unwrap_or_default();
        let deadline = session.poll_timeout();
        let read = timer.bound_read(io, deadline).and_then(|()| io.read(free));
        let outcome = match read {
            Ok(0) => {
                serving.eof(filled);
                return Ok(serving.served());
            }
            Ok(n) => {
                filled += n.min(free.len());
                now = timer.now();
                continue;
            }
            Err(e) if deadline.is_some() && timer.timed_out(&e) => {
                match session.handle_timeout(timer.now()) {
                    Some(outcome) => outcome,
                    // Woken before the deadline: read again.
                    None => continue,
                }
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => session.fail(Reject::Timeout),
            Err(e) => return Err(ServeError::Read(e)),
        };
        serving.time_out(outcome, &mut replies);
        // Best effort: the peer may be gone.
        let _ = send(io, &mut replies);
        return Ok(serving.served());
    }
}

/// Send the replies with one write, and flush.
fn send<T: Write + ?Sized>(io: &mut T, replies: &mut Replies) -> Result<(), WriteError<T::Error>> {
    if !replies.pending().is_empty() {
        write_all(io, replies.pending())?;
        replies.sent();
        io.flush().map_err(WriteError::Io)?;
    }
    Ok(())
}
