//! The coalescing driver of one framed session over a [`Transport`]: frames
//! submitted to the core's [`ClientSession`] wait in one buffer and go out
//! together, in as few writes as the window allows; statuses are read in
//! bulk. Which transaction a status answers is the session's to say.
//!
//! The original server reads the frames of its buffer one after another
//! but mishandles a frame that arrives in two pieces, so a frame is never
//! split across two writes unless the kernel takes only part of one (a
//! short write, which is continued). A write carries at most
//! [`WRITE_BATCH`] bytes of whole frames, or one larger frame alone.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use msglog_core::{decode, ClientEnd, ClientSession, Decoded, Limits, SubmitError, Transaction};
use msglog_std::retry_interrupted;

use crate::transport::{BoxedTransport, Peeked, ReadDeadline};
use crate::Error;

/// Bytes of whole frames gathered into one write: what loopback carries
/// as one segment, so the server receives each batch at once.
pub(crate) const WRITE_BATCH: usize = 64 * 1024;

/// Status bytes read at once.
const INBOX: usize = 4096;

/// One framed session on a transport, coalescing its writes.
#[derive(Debug)]
pub(crate) struct Pipeline {
    stream: BoxedTransport,
    /// The protocol; its clock is nanoseconds since `epoch`.
    session: ClientSession<u64>,
    epoch: Instant,
    deadline: ReadDeadline,
    /// Whole frames submitted to the session and not yet written.
    queued: Vec<u8>,
    /// MESSAGE frames in `queued`.
    queued_messages: u64,
    /// Bytes read and not yet fed to the session: statuses read ahead, or
    /// bytes the server sent unasked (a goodbye).
    inbox: Box<[u8]>,
    inbox_start: usize,
    inbox_end: usize,
}

impl Pipeline {
    /// A session on `stream` with at most `window` transactions in flight;
    /// a status awaited longer than `timeout` ends it. The socket's receive
    /// timeout is `read_timeout` now.
    pub(crate) fn new(
        stream: BoxedTransport,
        window: usize,
        timeout: Option<Duration>,
        read_timeout: Option<Duration>,
    ) -> Self {
        let mut session = ClientSession::new(window);
        session.set_timeout(timeout.map(nanos));
        Pipeline {
            stream,
            session,
            epoch: Instant::now(),
            deadline: ReadDeadline::new(read_timeout),
            queued: Vec::new(),
            queued_messages: 0,
            inbox: vec![0; INBOX].into_boxed_slice(),
            inbox_start: 0,
            inbox_end: 0,
        }
    }

    /// The session: what was answered, what is in flight, how it ended.
    pub(crate) fn session(&self) -> &ClientSession<u64> {
        &self.session
    }

    /// The transport.
    pub(crate) fn stream(&self) -> &BoxedTransport {
        &self.stream
    }

    /// Without waiting: what the server has sent (over TLS this reads
    /// records, hence `&mut`).
    pub(crate) fn peek(&mut self) -> Peeked {
        Peeked::from_result(self.stream.peek_byte())
    }

    /// The session's clock: nanoseconds since the pipeline began.
    pub(crate) fn now(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    /// MESSAGE transactions written whole to the socket.
    pub(crate) fn messages_written(&self) -> u64 {
        self.session.messages_submitted() - self.queued_messages
    }

    /// Bytes read and not fed to the session (see [`Pipeline::inbox`]).
    pub(crate) fn buffered(&self) -> usize {
        self.inbox_end - self.inbox_start
    }

    /// Send NAME and PASSWORD in one write and wait until both are
    /// answered; either both can be sent or neither is.
    pub(crate) fn login(&mut self, name: &[u8], password: &[u8]) -> Result<(), Error> {
        self.session
            .check_login(name, password)
            .map_err(submit_error)?;
        self.queue(&Transaction::Name(name))?;
        self.queue(&Transaction::Password(password))?;
        self.wait()
    }

    /// Submit `transaction` and queue its frame for the next write. A full
    /// window is written and waited for first (statuses read in bulk), a
    /// full batch written first. Invalid transactions are refused before
    /// anything is sent.
    pub(crate) fn queue(&mut self, transaction: &Transaction<'_>) -> Result<(), Error> {
        let header = self.session.check(transaction).map_err(submit_error)?;
        let frame = header.as_bytes().len() + transaction.payload().len();
        if !self.queued.is_empty() && self.queued.len() + frame > WRITE_BATCH {
            self.flush()?;
        }
        let header = loop {
            // The session looks at the time of a submission only when it
            // starts a wait (nothing in flight): the clock is read then only.
            let now = if self.session.in_flight() == 0 {
                self.now()
            } else {
                0
            };
            match self.session.submit(transaction, now) {
                Ok(header) => break header,
                Err(SubmitError::WindowFull) => {
                    self.flush()?;
                    self.receive()?;
                }
                Err(e) => return Err(submit_error(e)),
            }
        };
        self.queued.extend_from_slice(header.as_bytes());
        self.queued.extend_from_slice(transaction.payload());
        if matches!(transaction, Transaction::Message(_)) {
            self.queued_messages += 1;
        }
        Ok(())
    }

    /// Write every queued frame, in one write unless the kernel takes less.
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let written = write_all(&mut self.stream, &self.queued);
        let Err((error, sent)) = written else {
            self.queued.clear();
            self.queued_messages = 0;
            return Ok(());
        };
        // The frames not written whole will never be answered: withdrawn.
        for _ in 0..unwritten_frames(&self.queued, sent) {
            let _ = self.session.write_failed();
        }
        self.queued.clear();
        self.queued_messages = 0;
        let error = Error::from_io(error);
        if matches!(error, Error::Timeout) {
            return Err(error);
        }
        // The server may have rejected an earlier transaction and closed:
        // its 0xFF, if still readable, explains the failed write.
        while !self.session.is_ended() {
            if let Err(reason @ Error::Rejected { .. }) = self.receive() {
                return Err(reason);
            }
        }
        Err(error)
    }

    /// Write what is queued, then wait until every transaction in flight is answered.
    pub(crate) fn wait(&mut self) -> Result<(), Error> {
        self.flush()?;
        while self.session.in_flight() > 0 {
            if self.session.is_ended() {
                return Err(Error::SessionEnded);
            }
            self.receive()?;
        }
        Ok(())
    }

    /// Write what is queued, then read the statuses that have arrived
    /// without waiting for more, and act on the time (an overdue status
    /// ends the session with [`Error::Timeout`]).
    pub(crate) fn poll(&mut self) -> Result<(), Error> {
        self.flush()?;
        while self.session.in_flight() > 0 {
            if self.session.is_ended() {
                return Err(Error::SessionEnded);
            }
            if self.inbox_start == self.inbox_end {
                match self.peek() {
                    Peeked::Nothing => break,
                    // The read returns at once, with the byte or the end.
                    Peeked::Byte(_) | Peeked::Closed(_) => {}
                }
            }
            self.receive()?;
        }
        let now = self.now();
        end_result(self.session.handle_timeout(now))
    }

    /// The driver found the connection gone (closed, reset, or spoken to
    /// unasked) while it watched the socket: the session ends here.
    pub(crate) fn transport_ended(&mut self) {
        let _ = self.session.handle_error();
    }

    /// Feed the session the statuses it awaits, reading first if none is
    /// buffered; the read waits at most until the session's deadline.
    fn receive(&mut self) -> Result<(), Error> {
        if self.inbox_start == self.inbox_end {
            self.read()?;
            if self.session.is_ended() {
                return Ok(());
            }
        }
        let awaited = self.session.in_flight();
        let end = self.inbox_end.min(self.inbox_start.saturating_add(awaited));
        let statuses = self.inbox.get(self.inbox_start..end).unwrap_or_default();
        self.inbox_start = end;
        let now = self.now();
        end_result(self.session.handle_input(statuses, now))
    }

    /// Read into the empty inbox, or end the session (end of stream, a
    /// failure, the deadline).
    fn read(&mut self) -> Result<(), Error> {
        loop {
            let deadline = self.session.poll_timeout();
            let left = deadline.map(|at| Duration::from_nanos(at.saturating_sub(self.now())));
            if let Err(e) = self.deadline.bound(&*self.stream, left) {
                return self.transport_failed(e);
            }
            let read = retry_interrupted(|| self.stream.read(&mut self.inbox));
            let end = match read {
                Ok(0) => self.session.handle_eof(),
                Ok(n) => {
                    self.inbox_start = 0;
                    self.inbox_end = n.min(self.inbox.len());
                    return Ok(());
                }
                Err(e) if deadline.is_some() && timed_out(&e) => {
                    let now = self.now();
                    match self.session.handle_timeout(now) {
                        // Woken before the deadline: read again.
                        None => continue,
                        end => end,
                    }
                }
                Err(e) => return self.transport_failed(e),
            };
            return end_result(end);
        }
    }

    /// The socket failed: a clean end if only the CLOSE awaited an answer.
    fn transport_failed(&mut self, error: io::Error) -> Result<(), Error> {
        match self.session.handle_error() {
            Some(ClientEnd::Closed) => Ok(()),
            _ => Err(Error::from_io(error)),
        }
    }
}

/// `duration` in nanoseconds, the unit of the session's clock.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn timed_out(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Write all of `bytes` and flush (a TLS stream may hold records back);
/// on failure, the error and how many bytes went out.
fn write_all(stream: &mut BoxedTransport, bytes: &[u8]) -> Result<(), (io::Error, usize)> {
    let mut sent = 0;
    while let Some(rest) = bytes.get(sent..).filter(|rest| !rest.is_empty()) {
        match retry_interrupted(|| stream.write(rest)) {
            Ok(0) => return Err((io::ErrorKind::WriteZero.into(), sent)),
            Ok(n) => sent += n,
            Err(e) => return Err((e, sent)),
        }
    }
    loop {
        match stream.flush() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, sent)),
            Ok(()) => return Ok(()),
        }
    }
}

/// How many of the whole frames in `frames` end after its first `sent` bytes.
fn unwritten_frames(frames: &[u8], sent: usize) -> usize {
    let mut offset = 0;
    let mut unwritten = 0;
    while let Some(rest) = frames.get(offset..).filter(|rest| !rest.is_empty()) {
        let Ok(Decoded::Complete { consumed, .. }) = decode(rest, &Limits::WIRE) else {
            break;
        };
        offset += consumed;
        if offset > sent {
            unwritten += 1;
        }
    }
    unwritten
}

/// The error that reports a session's end, if it is not a clean one.
fn end_result(end: Option<ClientEnd>) -> Result<(), Error> {
    let Some(end) = end else {
        return Ok(());
    };
    Err(match end {
        ClientEnd::Closed => return Ok(()),
        ClientEnd::Rejected { stage } => Error::Rejected { stage },
        ClientEnd::InvalidStatus { byte, stage } => Error::Protocol { byte, stage },
        ClientEnd::Disconnected { stage } => Error::Disconnected { stage },
        ClientEnd::TimedOut { .. } => Error::Timeout,
        // `Failed` is reported with the socket's error by the caller; the
        // pipeline feeds no more bytes than are awaited, so the others do
        // not occur.
        _ => Error::SessionEnded,
    })
}

fn submit_error(error: SubmitError) -> Error {
    match error {
        SubmitError::Encode(e) => Error::Invalid(e),
        SubmitError::NotLoggedIn => Error::NotAuthenticated,
        SubmitError::AlreadyLoggedIn => Error::AlreadyAuthenticated,
        // A full window is waited out before a submission, never reported.
        _ => Error::SessionEnded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(transactions: &[Transaction<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for transaction in transactions {
            let mut frame = vec![0; transaction.encoded_len()];
            transaction.encode(&mut frame).unwrap();
            out.extend(frame);
        }
        out
    }

    #[test]
    fn frames_not_written_whole_are_counted() {
        // 4 + 6 + 1 bytes.
        let bytes = frames(&[
            Transaction::Message(b"a"),
            Transaction::Message(b"abc"),
            Transaction::Close,
        ]);
        assert_eq!(bytes.len(), 11);
        for (sent, unwritten) in [(0, 3), (3, 3), (4, 2), (9, 2), (10, 1), (11, 0)] {
            assert_eq!(unwritten_frames(&bytes, sent), unwritten, "sent {sent}");
        }
    }
}
