//! Blocking client driver over `embedded_io`: a thin loop around
//! [`ClientSession`], which does all the matching of statuses, the stage
//! labels and the window accounting.

use embedded_io::{ErrorType, Read, ReadReady, Write};

use crate::client_session::{ClientEnd, ClientSession, Stage, SubmitError};
use crate::encode::EncodeError;
use crate::io::{write_all, WriteError};
use crate::time::Instant;
use crate::timer::{NoTimer, Timer};
use crate::wire::Transaction;

/// Why a client operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClientError<E> {
    /// The transport failed.
    Io(E),
    /// The transport accepted zero bytes (closed or full).
    WriteZero,
    /// The server answered 0xFF.
    Rejected {
        /// The transaction it rejected.
        stage: Stage,
    },
    /// The connection closed while this transaction awaited its status.
    Disconnected {
        /// The transaction left unanswered.
        stage: Stage,
    },
    /// The server sent a byte that is not a status.
    InvalidStatus {
        /// The byte received.
        byte: u8,
        /// The transaction it was meant to answer.
        stage: Stage,
    },
    /// No status arrived within the timeout (see [`Client::with_timer`]).
    TimedOut {
        /// The oldest transaction left unanswered.
        stage: Stage,
    },
    /// The payload cannot be sent (empty, or longer than 65535); nothing was sent.
    Encode(EncodeError),
    /// The session already ended (closed, rejected, or failed).
    SessionEnded,
    /// `login` was called after the session started.
    AlreadyLoggedIn,
    /// `send` was called before `login`; nothing was sent.
    NotLoggedIn,
}

impl<E: core::fmt::Display> core::fmt::Display for ClientError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::WriteZero => f.write_str("connection accepted no bytes"),
            ClientError::Rejected { stage } => write!(f, "server rejected the {stage}"),
            ClientError::Disconnected { stage } => {
                write!(f, "connection closed before the {stage} was acknowledged")
            }
            ClientError::InvalidStatus { byte, stage } => {
                write!(f, "invalid status byte 0x{byte:02x} for the {stage}")
            }
            ClientError::TimedOut { stage } => write!(f, "no answer to the {stage} in time"),
            ClientError::Encode(e) => write!(f, "{e}"),
            ClientError::SessionEnded => f.write_str("the session has ended"),
            ClientError::AlreadyLoggedIn => f.write_str("already logged in"),
            ClientError::NotLoggedIn => f.write_str("not logged in"),
        }
    }
}

impl<E: core::fmt::Debug + core::fmt::Display> core::error::Error for ClientError<E> {}

impl<E> From<WriteError<E>> for ClientError<E> {
    fn from(e: WriteError<E>) -> Self {
        match e {
            WriteError::Io(e) => ClientError::Io(e),
            WriteError::WriteZero => ClientError::WriteZero,
            WriteError::Encode(e) => ClientError::Encode(e),
        }
    }
}

impl<E> ClientError<E> {
    /// The error that reports a session's end, if it is not a clean one.
    pub(crate) fn from_end(end: Option<ClientEnd>) -> Result<(), Self> {
        let Some(end) = end else {
            return Ok(());
        };
        Err(match end {
            ClientEnd::Closed => return Ok(()),
            ClientEnd::Rejected { stage } => ClientError::Rejected { stage },
            ClientEnd::InvalidStatus { byte, stage } => ClientError::InvalidStatus { byte, stage },
            ClientEnd::Disconnected { stage } => ClientError::Disconnected { stage },
            ClientEnd::TimedOut { stage } => ClientError::TimedOut { stage },
            // `Failed` is reported with the transport's error by the caller;
            // the client reads only while an answer is awaited and feeds no
            // more bytes than are awaited, so the others do not occur.
            ClientEnd::Failed | ClientEnd::Hangup | ClientEnd::Unsolicited { .. } => {
                ClientError::SessionEnded
            }
        })
    }

    pub(crate) fn from_submit(error: SubmitError) -> Self {
        match error {
            SubmitError::Encode(e) => ClientError::Encode(e),
            SubmitError::NotLoggedIn => ClientError::NotLoggedIn,
            SubmitError::AlreadyLoggedIn => ClientError::AlreadyLoggedIn,
            // A full window is waited out before a submission, never reported.
            SubmitError::WindowFull | SubmitError::Ended => ClientError::SessionEnded,
        }
    }
}

/// Status bytes read at once.
const INBOX: usize = 64;

/// Bytes read from the transport and not yet fed to the session; shared
/// by the blocking and the async client.
#[derive(Debug)]
pub(crate) struct Inbox {
    bytes: [u8; INBOX],
    start: usize,
    end: usize,
}

impl Inbox {
    pub(crate) const fn new() -> Self {
        Inbox {
            bytes: [0; INBOX],
            start: 0,
            end: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Where the next read goes (the inbox is empty); then [`filled`](Self::filled).
    pub(crate) fn space(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// A read put `n` bytes into [`space`](Self::space).
    pub(crate) fn filled(&mut self, n: usize) {
        self.start = 0;
        self.end = n.min(INBOX);
    }

    /// Feed `session` the statuses it awaits, and no more (the rest answer
    /// transactions not yet sent, or nothing): how the session ended, as
    /// the error that reports it.
    pub(crate) fn feed<I: Instant, E>(
        &mut self,
        session: &mut ClientSession<I>,
        now: I,
    ) -> Result<(), ClientError<E>> {
        let awaited = session.in_flight();
        let end = self.end.min(self.start.saturating_add(awaited));
        let statuses = self.bytes.get(self.start..end).unwrap_or_default();
        self.start = end;
        ClientError::from_end(session.handle_input(statuses, now))
    }
}

/// One client session over a blocking transport: NAME, PASSWORD, any number
/// of MESSAGEs, CLOSE.
///
/// Up to `window` transactions are in flight; the [`ClientSession`] matches
/// the statuses to them in order. Each transaction is written (header, then
/// payload, from the caller's slice) and followed by a `flush`, so a
/// buffering transport sends every transaction in one write, as the
/// original server requires.
///
/// Status bytes are read up to 64 at a time; bytes read ahead of the
/// transactions they answer wait in the client until those are sent.
#[derive(Debug)]
pub struct Client<T: ErrorType, M: Timer<T> = NoTimer> {
    io: T,
    timer: M,
    session: ClientSession<M::Instant>,
    inbox: Inbox,
}

impl<T: Read + Write> Client<T> {
    /// A client over a connected transport, with at most `window` (≥ 1)
    /// transactions in flight and no timeout of its own.
    pub fn new(io: T, window: usize) -> Self {
        Client::with_timer(io, window, NoTimer, None)
    }
}

impl<T: Read + Write, M: Timer<T>> Client<T, M> {
    /// A client whose waits for a status end after `timeout` on `timer`'s
    /// clock, as [`ClientSession::set_timeout`] describes: a status that
    /// does not arrive in time fails with [`ClientError::TimedOut`] (or
    /// ends the session cleanly if only the CLOSE is unanswered).
    pub fn with_timer(
        io: T,
        window: usize,
        timer: M,
        timeout: Option<<M::Instant as Instant>::Duration>,
    ) -> Self {
        let mut session = ClientSession::new(window);
        session.set_timeout(timeout);
        Client {
            io,
            timer,
            session,
            inbox: Inbox::new(),
        }
    }

    /// Send NAME and PASSWORD and wait until both are accepted.
    pub fn login(&mut self, name: &str, password: &[u8]) -> Result<(), ClientError<T::Error>> {
        self.session
            .check_login(name.as_bytes(), password)
            .map_err(ClientError::from_submit)?;
        self.submit(Transaction::Name(name.as_bytes()))?;
        self.submit(Transaction::Password(password))?;
        self.wait()
    }

    /// Send one message, first waiting for a status if the window is full.
    /// An invalid message (empty or over 65535 bytes), or one before
    /// [`login`](Self::login), is refused before anything is sent.
    pub fn send(&mut self, message: &[u8]) -> Result<(), ClientError<T::Error>> {
        self.submit(Transaction::Message(message))
    }

    /// Wait until every transaction sent so far is acknowledged. After the
    /// session ended with transactions unanswered (a rejection or a failure,
    /// already reported), fails with [`ClientError::SessionEnded`].
    pub fn wait(&mut self) -> Result<(), ClientError<T::Error>> {
        while self.session.in_flight() > 0 {
            if self.session.is_ended() {
                return Err(ClientError::SessionEnded);
            }
            self.receive()?;
        }
        Ok(())
    }

    /// Send CLOSE and wait for its answer, after the statuses of the
    /// messages before it. Any answer to CLOSE, including the connection
    /// closing, ends the session cleanly.
    pub fn close(&mut self) -> Result<(), ClientError<T::Error>> {
        self.submit(Transaction::Close)?;
        self.wait()
    }

    /// Messages sent so far.
    pub fn messages_sent(&self) -> u64 {
        self.session.messages_submitted()
    }

    /// Messages the server has acknowledged (0x00) so far.
    pub fn messages_acknowledged(&self) -> u64 {
        self.session.messages_acknowledged()
    }

    /// Transactions sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.session.in_flight()
    }

    /// Bytes read from the transport and not yet fed to the session:
    /// statuses that arrived with an earlier read, before the transactions
    /// they answer were written, or bytes the server sent unasked.
    pub fn buffered(&self) -> usize {
        self.inbox.len()
    }

    /// The session: what was answered, what is in flight, how it ended.
    pub fn session(&self) -> &ClientSession<M::Instant> {
        &self.session
    }

    /// Act on the time without reading or waiting: once the oldest status
    /// in flight is overdue ([`ClientSession::poll_timeout`]), the session
    /// ends as a blocking [`wait`](Self::wait) would end it, with
    /// [`ClientError::TimedOut`] (or cleanly, if only the CLOSE is
    /// unanswered); before that, nothing happens. For a driver that waits
    /// on the transport itself and reads with [`poll`](Self::poll).
    pub fn handle_timeout(&mut self) -> Result<(), ClientError<T::Error>> {
        let now = self.timer.now();
        ClientError::from_end(self.session.handle_timeout(now))
    }

    /// End the session because the driver found the transport gone (the
    /// peer closed or reset it, or spoke unasked) while it watched the
    /// transport itself; see [`ClientSession::handle_error`]. Nothing more is
    /// read or written afterwards.
    pub fn transport_ended(&mut self) -> Option<ClientEnd> {
        self.session.handle_error()
    }

    /// The transport.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The transport, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Give back the transport.
    pub fn into_inner(self) -> T {
        self.io
    }

    /// Submit one transaction (waiting for room in the window) and write it.
    fn submit(&mut self, transaction: Transaction<'_>) -> Result<(), ClientError<T::Error>> {
        let header = loop {
            let now = self.timer.now();
            match self.session.submit(&transaction, now) {
                Ok(header) => break header,
                Err(SubmitError::WindowFull) => self.receive()?,
                Err(e) => return Err(ClientError::from_submit(e)),
            }
        };
        let written = write_all(&mut self.io, header.as_bytes())
            .and_then(|()| write_all(&mut self.io, transaction.payload()))
            .and_then(|()| self.io.flush().map_err(WriteError::Io));
        let Err(error) = written else {
            return Ok(());
        };
        // The server may have rejected an earlier transaction and closed:
        // its 0xFF, if still readable, explains the failed write.
        if self.session.write_failed().is_none() {
            while !self.session.is_ended() {
                if let Err(reason @ ClientError::Rejected { .. }) = self.receive() {
                    return Err(reason);
                }
            }
        }
        Err(error.into())
    }

    /// Feed the session the statuses it awaits, reading first if none is
    /// buffered.
    fn receive(&mut self) -> Result<(), ClientError<T::Error>> {
        if self.inbox.is_empty() {
            self.read()?;
            if self.session.is_ended() {
                return Ok(());
            }
        }
        let now = self.timer.now();
        self.inbox.feed(&mut self.session, now)
    }

    /// Read into the empty inbox, or end the session (end of stream, a
    /// failure, the deadline), bounding the read by the session's deadline.
    fn read(&mut self) -> Result<(), ClientError<T::Error>> {
        loop {
            let deadline = self.session.poll_timeout();
            if let Err(e) = self.timer.bound_read(&mut self.io, deadline) {
                return self.transport_failed(e);
            }
            let end = match self.io.read(self.inbox.space()) {
                Ok(0) => self.session.handle_eof(),
                Ok(n) => {
                    self.inbox.filled(n);
                    return Ok(());
                }
                Err(e) if deadline.is_some() && self.timer.timed_out(&e) => {
                    let now = self.timer.now();
                    match self.session.handle_timeout(now) {
                        // Woken before the deadline: read again.
                        None => continue,
                        end => end,
                    }
                }
                Err(e) => return self.transport_failed(e),
            };
            return ClientError::from_end(end);
        }
    }

    /// The transport failed: a clean end if only the CLOSE awaited an answer.
    fn transport_failed(&mut self, error: T::Error) -> Result<(), ClientError<T::Error>> {
        match self.session.handle_error() {
            Some(ClientEnd::Closed) => Ok(()),
            _ => Err(ClientError::Io(error)),
        }
    }
}

impl<T: Read + Write + ReadReady, M: Timer<T>> Client<T, M> {
    /// Read the statuses that have already arrived, without blocking: a
    /// status is read only while one is buffered or the transport is
    /// [`ReadReady`]. Lets a caller notice acknowledgements, a rejection or
    /// a closed connection before it sends again, e.g. after a pause.
    pub fn poll(&mut self) -> Result<(), ClientError<T::Error>> {
        while self.session.in_flight() > 0 {
            if self.session.is_ended() {
                return Err(ClientError::SessionEnded);
            }
            if self.inbox.is_empty() {
                match self.io.read_ready() {
                    Ok(true) => {}
                    Ok(false) => return Ok(()),
                    Err(e) => return self.transport_failed(e),
                }
            }
            self.receive()?;
        }
        Ok(())
    }
}
