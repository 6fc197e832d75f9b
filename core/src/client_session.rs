//! The client side of one connection as a sans-I/O state machine:
//! [`ClientSession`], whose documentation holds the contract.

use crate::encode::{EncodeError, Header};
use crate::time::{deadline, Instant};
use crate::wire::{Status, Tag, Transaction};

/// Which transaction a status answered (or failed to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stage {
    /// The NAME transaction.
    Name,
    /// The PASSWORD transaction.
    Password,
    /// The message with this index (0 for the first message of the session).
    Message(u64),
    /// The CLOSE transaction.
    Close,
}

impl core::fmt::Display for Stage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Stage::Name => f.write_str("name"),
            Stage::Password => f.write_str("password"),
            Stage::Message(i) => write!(f, "message {}", i + 1),
            Stage::Close => f.write_str("close"),
        }
    }
}

/// How a client session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClientEnd {
    /// CLOSE was answered: by 0x00, 0xFF or any other byte, by the
    /// connection closing or failing, or not within the timeout. A clean
    /// end (PROTOCOL.md: any answer to CLOSE ends a clean session).
    Closed,
    /// The server answered 0xFF.
    Rejected {
        /// The transaction it rejected.
        stage: Stage,
    },
    /// The server sent a byte that is not a status.
    InvalidStatus {
        /// The byte received.
        byte: u8,
        /// The transaction it was meant to answer.
        stage: Stage,
    },
    /// The server sent a byte while no transaction awaited an answer.
    Unsolicited {
        /// The byte received.
        byte: u8,
    },
    /// The connection closed while this transaction awaited its status.
    Disconnected {
        /// The oldest transaction left unanswered.
        stage: Stage,
    },
    /// The connection closed while no transaction awaited an answer (the
    /// server ended an idle session).
    Hangup,
    /// No status arrived within the timeout.
    TimedOut {
        /// The oldest transaction left unanswered.
        stage: Stage,
    },
    /// The transport failed (reported with
    /// [`handle_error`](ClientSession::handle_error) or
    /// [`write_failed`](ClientSession::write_failed)); the driver has the error.
    Failed,
}

impl ClientEnd {
    /// Whether this is the clean end of a session (CLOSE answered).
    pub const fn is_clean(&self) -> bool {
        matches!(self, ClientEnd::Closed)
    }
}

impl core::fmt::Display for ClientEnd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ClientEnd::Closed => f.write_str("closed"),
            ClientEnd::Rejected { stage } => write!(f, "server rejected the {stage}"),
            ClientEnd::InvalidStatus { byte, stage } => {
                write!(f, "invalid status byte 0x{byte:02x} for the {stage}")
            }
            ClientEnd::Unsolicited { byte } => {
                write!(
                    f,
                    "byte 0x{byte:02x} received with no transaction in flight"
                )
            }
            ClientEnd::Disconnected { stage } => {
                write!(f, "connection closed before the {stage} was acknowledged")
            }
            ClientEnd::Hangup => f.write_str("connection closed by the server"),
            ClientEnd::TimedOut { stage } => write!(f, "no answer to the {stage} in time"),
            ClientEnd::Failed => f.write_str("the transport failed"),
        }
    }
}

/// Why a transaction cannot be submitted now; nothing was submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SubmitError {
    /// The payload cannot be sent (empty, or longer than 65535).
    Encode(EncodeError),
    /// `window` transactions are in flight: feed their answers first.
    WindowFull,
    /// A MESSAGE before NAME and PASSWORD were submitted, or a PASSWORD before NAME.
    NotLoggedIn,
    /// A NAME or PASSWORD after the login was submitted.
    AlreadyLoggedIn,
    /// The session ended, CLOSE was submitted, or a write failed (or,
    /// after 2^64 - 1 transactions, the counters are used up).
    Ended,
}

impl core::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SubmitError::Encode(e) => write!(f, "{e}"),
            SubmitError::WindowFull => f.write_str("the window is full"),
            SubmitError::NotLoggedIn => f.write_str("not logged in"),
            SubmitError::AlreadyLoggedIn => f.write_str("already logged in"),
            SubmitError::Ended => f.write_str("the session has ended"),
        }
    }
}

impl core::error::Error for SubmitError {}

/// Index of the first MESSAGE: NAME is transaction 0, PASSWORD 1.
const FIRST_MESSAGE: u64 = 2;

/// The client side of one connection as a sans-I/O state machine: what
/// was submitted, what was answered, and how the session ended.
///
/// It is fed the transactions the caller sends, the bytes it
/// receives, the end of the stream, transport failures and the time; it
/// says which transaction each status byte answered, what is in flight,
/// whether another transaction may be sent now, and how the session ended.
/// It never performs I/O and never holds a payload.
///
/// ```text
///           NAME            PASSWORD           MESSAGE
///   Fresh ------> Named ------------> LoggedIn ------> LoggedIn ...
///     |             |                    |
///     +-------------+---- CLOSE ---------+-----------> Closing
///
///   every state: 0xFF, a byte that is not a status, a byte with nothing
///     in flight, EOF, a transport failure, a timeout ---> Ended(reason)
///   Closing: any answer to CLOSE (0x00, 0xFF, any byte, EOF, a reset,
///     a timeout) ---> Ended(Closed)
/// ```
///
/// The states advance on [`submit`](ClientSession::submit); statuses
/// ([`handle_input`](ClientSession::handle_input)) are matched to the
/// transactions in flight in the order they were submitted. A transaction
/// is in flight from its submission until its status arrives, so at most
/// [`window`](ClientSession::window) transactions are written ahead of
/// their answers. After the session ended nothing may be submitted and
/// further input is ignored: a driver reads and writes nothing more.
///
/// # Driving it
///
/// 1. [`submit`](ClientSession::submit) a transaction (with the time); on
///    `Ok(header)` write the header's bytes, then the payload, from the
///    caller's own buffer (one vectored write, or after other frames in one
///    coalesced write). If the write fails, call
///    [`write_failed`](ClientSession::write_failed).
/// 2. Feed every byte read to [`handle_input`](ClientSession::handle_input),
///    end of stream to [`handle_eof`](ClientSession::handle_eof), a read
///    error to [`handle_error`](ClientSession::handle_error).
/// 3. After each call, bound the next wait by
///    [`poll_timeout`](ClientSession::poll_timeout); when it passes without
///    input, call [`handle_timeout`](ClientSession::handle_timeout).
///
/// The `handle_*` calls return the [`ClientEnd`] when that call ended the
/// session (also kept in [`end`](ClientSession::end)); the counters
/// ([`in_flight`](ClientSession::in_flight),
/// [`messages_acknowledged`](ClientSession::messages_acknowledged), ...)
/// say what was answered. The blocking [`Client`](crate::Client) is such a
/// driver.
///
/// # No panics
///
/// No method panics, allocates or reads outside its arguments, whatever the
/// bytes received and in whatever order the methods are called (the
/// `client` fuzz target checks this). A call that does not fit the state
/// is refused with a [`SubmitError`] or ignored (input after the end).
/// Counters are `u64`; a session that submitted 2^64 - 1 transactions
/// refuses more ([`SubmitError::Ended`]) rather than overflow.
///
/// `I` is the caller's clock ([`Instant`]); a session without a timeout
/// never looks at it.
///
/// # Example
///
/// ```
/// use msglog_core::{ClientEnd, ClientSession, Stage, Transaction};
///
/// let mut session = ClientSession::<u64>::new(16); // window 16; the clock in ms
/// session.set_timeout(Some(30_000));
///
/// // Submit, then write the header and the payload (here into one buffer).
/// let mut wire = Vec::new();
/// let message: &[u8] = b"hello";
/// for transaction in [
///     Transaction::Name(b"alice"),
///     Transaction::Password(b"secret"),
///     Transaction::Message(message),
///     Transaction::Close,
/// ] {
///     let header = session.submit(&transaction, 0).unwrap();
///     wire.extend_from_slice(header.as_bytes());
///     wire.extend_from_slice(transaction.payload());
/// }
/// assert_eq!(wire, b"\x01\x05\x00alice\x02\x06\x00secret\x03\x05\x00hello\x04");
/// assert_eq!(session.poll_timeout(), Some(30_000));
///
/// // The server answers NAME, PASSWORD and the message, then closes
/// // instead of answering CLOSE: a clean end all the same.
/// assert_eq!(session.handle_input(&[0x00, 0x00, 0x00], 12), None);
/// assert_eq!(session.messages_acknowledged(), 1);
/// assert_eq!(session.oldest(), Some(Stage::Close));
/// assert_eq!(session.handle_eof(), Some(ClientEnd::Closed));
/// ```
#[derive(Debug, Clone)]
pub struct ClientSession<I: Instant = u64> {
    window: usize,
    timeout: Option<I::Duration>,
    /// Transactions submitted: the index of the next one (0 NAME, 1 PASSWORD, 2.. messages).
    submitted: u64,
    /// Transactions answered: the index of the oldest one in flight.
    answered: u64,
    /// The index of the CLOSE, once submitted.
    close: Option<u64>,
    /// A write failed: nothing more may be submitted.
    write_failed: bool,
    /// When the current wait for an answer began (the first submission with
    /// nothing in flight, or the last status); `None` with nothing in flight.
    waiting_since: Option<I>,
    end: Option<ClientEnd>,
}

impl<I: Instant> ClientSession<I> {
    /// A session for a new connection, with at most `window` (at least 1)
    /// transactions in flight and no timeout.
    pub const fn new(window: usize) -> Self {
        ClientSession {
            window: if window == 0 { 1 } else { window },
            timeout: None,
            submitted: 0,
            answered: 0,
            close: None,
            write_failed: false,
            waiting_since: None,
            end: None,
        }
    }

    /// The longest wait for a status while a transaction is in flight:
    /// from the submission that found nothing in flight, and again from
    /// every status received. `None`: wait forever.
    pub fn set_timeout(&mut self, timeout: Option<I::Duration>) {
        self.timeout = timeout;
    }

    /// The timeout (see [`set_timeout`](Self::set_timeout)).
    pub fn timeout(&self) -> Option<I::Duration> {
        self.timeout
    }

    /// Change the window (at least 1) for the transactions submitted from now on.
    pub fn set_window(&mut self, window: usize) {
        self.window = window.max(1);
    }

    /// The most transactions in flight at once.
    pub const fn window(&self) -> usize {
        self.window
    }

    /// Check that `transaction` may be submitted now, window aside, and
    /// return its header; submits nothing.
    pub fn check(&self, transaction: &Transaction<'_>) -> Result<Header, SubmitError> {
        if self.end.is_some() || self.close.is_some() || self.write_failed {
            return Err(SubmitError::Ended);
        }
        // A session that used up its u64 of transactions takes no more.
        if self.submitted == u64::MAX {
            return Err(SubmitError::Ended);
        }
        let order = match transaction.tag() {
            Tag::Name if self.submitted != 0 => Err(SubmitError::AlreadyLoggedIn),
            Tag::Password if self.submitted == 0 => Err(SubmitError::NotLoggedIn),
            Tag::Password if self.submitted != 1 => Err(SubmitError::AlreadyLoggedIn),
            Tag::Message if self.submitted < FIRST_MESSAGE => Err(SubmitError::NotLoggedIn),
            _ => Ok(()),
        };
        order?;
        transaction.header().map_err(SubmitError::Encode)
    }

    /// Check that a login (NAME `name`, then PASSWORD `password`) may be
    /// submitted now, window aside: both are sendable, or neither goes out.
    pub fn check_login(&self, name: &[u8], password: &[u8]) -> Result<(), SubmitError> {
        self.check(&Transaction::Name(name))?;
        Transaction::Password(password)
            .header()
            .map_err(SubmitError::Encode)?;
        Ok(())
    }

    /// Submit `transaction` at time `now`: it is in flight from now on, and
    /// the caller writes the returned header and then the payload. NAME
    /// comes first, PASSWORD second, then MESSAGEs; CLOSE at any time.
    pub fn submit(&mut self, transaction: &Transaction<'_>, now: I) -> Result<Header, SubmitError> {
        let header = self.check(transaction)?;
        if self.in_flight() >= self.window {
            return Err(SubmitError::WindowFull);
        }
        if self.submitted == self.answered {
            self.waiting_since = Some(now);
        }
        if transaction.tag() == Tag::Close {
            self.close = Some(self.submitted);
        }
        self.submitted += 1;
        Ok(header)
    }

    /// The last transaction submitted could not be written whole (the
    /// write failed or took no bytes): the server will never answer it. It
    /// is withdrawn, and nothing more may be submitted. Answers to the
    /// transactions before it are still matched (a 0xFF among them
    /// explains the failure); the session ends with [`ClientEnd::Failed`]
    /// once they are all answered, at once if there are none.
    #[must_use = "the session may have ended"]
    pub fn write_failed(&mut self) -> Option<ClientEnd> {
        if self.end.is_some() {
            return None;
        }
        self.write_failed = true;
        if self.submitted > self.answered {
            self.submitted -= 1;
            if self.close == Some(self.submitted) {
                self.close = None;
            }
        }
        if self.submitted == self.answered {
            return self.finish(ClientEnd::Failed);
        }
        None
    }

    /// Match the status bytes `received` at time `now` to the transactions
    /// in flight, oldest first. Returns how the session ended if this input
    /// ended it; bytes after the end are ignored, and so is input once the
    /// session has ended.
    #[must_use = "the session may have ended"]
    pub fn handle_input(&mut self, received: &[u8], now: I) -> Option<ClientEnd> {
        if self.end.is_some() || received.is_empty() {
            return None;
        }
        // Transactions in flight before the CLOSE (all of them without one):
        // each takes a 0x00, and stops at any other byte.
        let plain = self.close.unwrap_or(self.submitted) - self.answered;
        let span = usize::try_from(plain).map_or(received.len(), |p| p.min(received.len()));
        let accepted = received
            .get(..span)
            .unwrap_or_default()
            .iter()
            .take_while(|&&byte| byte == Status::Accepted.as_byte())
            .count();
        self.answered += accepted as u64;
        if let Some(&byte) = received.get(accepted) {
            let end = if accepted < span {
                let stage = self.stage(self.answered);
                match Status::from_byte(byte) {
                    Some(Status::Rejected) => ClientEnd::Rejected { stage },
                    _ => ClientEnd::InvalidStatus { byte, stage },
                }
            } else if self.close == Some(self.answered) {
                ClientEnd::Closed
            } else {
                ClientEnd::Unsolicited { byte }
            };
            return self.finish(end);
        }
        if self.submitted == self.answered {
            self.waiting_since = None;
            if self.write_failed {
                return self.finish(ClientEnd::Failed);
            }
        } else if accepted > 0 {
            self.waiting_since = Some(now);
        }
        None
    }

    /// The connection closed (end of stream): a clean end if CLOSE is the
    /// oldest transaction in flight.
    #[must_use = "the session may have ended"]
    pub fn handle_eof(&mut self) -> Option<ClientEnd> {
        let end = match self.oldest() {
            Some(Stage::Close) => ClientEnd::Closed,
            Some(stage) => ClientEnd::Disconnected { stage },
            None => ClientEnd::Hangup,
        };
        self.finish_once(end)
    }

    /// The transport failed (a reset, a read error): a clean end if CLOSE
    /// is the oldest transaction in flight, else [`ClientEnd::Failed`].
    #[must_use = "the session may have ended"]
    pub fn handle_error(&mut self) -> Option<ClientEnd> {
        let end = match self.oldest() {
            Some(Stage::Close) => ClientEnd::Closed,
            _ => ClientEnd::Failed,
        };
        self.finish_once(end)
    }

    /// When the oldest answer in flight becomes overdue: `None` with
    /// nothing in flight, without a timeout, or once the session ended.
    pub fn poll_timeout(&self) -> Option<I> {
        if self.end.is_some() {
            return None;
        }
        deadline(self.waiting_since, self.timeout)
    }

    /// Act on the time: once [`poll_timeout`](Self::poll_timeout) has
    /// passed, the session ends with [`ClientEnd::TimedOut`], or cleanly if
    /// only the CLOSE is unanswered. Before it, nothing happens.
    #[must_use = "the session may have ended"]
    pub fn handle_timeout(&mut self, now: I) -> Option<ClientEnd> {
        if self.poll_timeout().is_none_or(|at| now < at) {
            return None;
        }
        let end = match self.oldest() {
            Some(Stage::Close) => ClientEnd::Closed,
            Some(stage) => ClientEnd::TimedOut { stage },
            // Unreachable: a deadline exists only while something is in flight.
            None => return None,
        };
        self.finish(end)
    }

    /// How the session ended, once it has.
    pub const fn end(&self) -> Option<ClientEnd> {
        self.end
    }

    /// Whether the session has ended.
    pub const fn is_ended(&self) -> bool {
        self.end.is_some()
    }

    /// Transactions submitted and not yet answered.
    pub fn in_flight(&self) -> usize {
        usize::try_from(self.submitted - self.answered).unwrap_or(usize::MAX)
    }

    /// How many more transactions may be submitted now: the window's room,
    /// or 0 once the session ended, CLOSE was submitted or a write failed.
    pub fn room(&self) -> usize {
        if self.end.is_some() || self.close.is_some() || self.write_failed {
            return 0;
        }
        self.window.saturating_sub(self.in_flight())
    }

    /// The transaction the next status byte answers, if any is in flight.
    pub fn oldest(&self) -> Option<Stage> {
        (self.answered < self.submitted).then(|| self.stage(self.answered))
    }

    /// Whether NAME and PASSWORD were submitted: MESSAGEs may follow.
    pub const fn is_logged_in(&self) -> bool {
        self.submitted >= FIRST_MESSAGE && !matches!(self.close, Some(c) if c < FIRST_MESSAGE)
    }

    /// Whether NAME and PASSWORD were both answered 0x00 (and stay so after
    /// the session ended).
    pub fn is_authenticated(&self) -> bool {
        self.answered_before_close() >= FIRST_MESSAGE
    }

    /// Whether CLOSE was submitted.
    pub const fn is_closing(&self) -> bool {
        self.close.is_some()
    }

    /// MESSAGE transactions submitted (and not withdrawn).
    pub fn messages_submitted(&self) -> u64 {
        self.close
            .unwrap_or(self.submitted)
            .saturating_sub(FIRST_MESSAGE)
    }

    /// MESSAGE transactions answered 0x00: messages `0..messages_acknowledged()`.
    pub fn messages_acknowledged(&self) -> u64 {
        self.answered_before_close().saturating_sub(FIRST_MESSAGE)
    }

    fn answered_before_close(&self) -> u64 {
        match self.close {
            Some(close) => self.answered.min(close),
            None => self.answered,
        }
    }

    fn stage(&self, index: u64) -> Stage {
        match index {
            // First: CLOSE may be transaction 0 or 1.
            i if Some(i) == self.close => Stage::Close,
            0 => Stage::Name,
            1 => Stage::Password,
            i => Stage::Message(i - FIRST_MESSAGE),
        }
    }

    fn finish_once(&mut self, end: ClientEnd) -> Option<ClientEnd> {
        if self.end.is_some() {
            return None;
        }
        self.finish(end)
    }

    fn finish(&mut self, end: ClientEnd) -> Option<ClientEnd> {
        if end == ClientEnd::Closed {
            self.answered = self.submitted;
        }
        self.waiting_since = None;
        self.end = Some(end);
        debug!("client session ended: {}", end);
        Some(end)
    }
}
