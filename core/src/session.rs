//! The server side of one connection as a sans-I/O state machine.
//!
//! ```text
//! CONNECTED --NAME--> NAMED --PASSWORD (verified)--> READY --MESSAGE--> READY ...
//!    any state --CLOSE--> CLOSED (0x00)      any state --bad--> CLOSED (0xFF)
//! ```
//!
//! The session never performs I/O. [`Session::receive`] turns a transaction
//! into an [`Action`]: either an immediate [`Outcome`], or a request to verify
//! credentials or to log a message, which the caller resolves (at once, or
//! later from another thread) and reports back. [`Session::handle`] does the
//! whole round trip with an [`Authenticator`] and a [`Sink`].
//!
//! The frame and idle timeouts (PROTOCOL.md, decision 6) are the session's
//! too, with the time as an input: see [`Session`]'s "Time".

use heapless::String;

use crate::decode::{decode, Decoded, FrameError, Limits};
use crate::record::max_record_len;
use crate::time::{deadline, Instant};
use crate::unicode::refused_in_names;
use crate::wire::{Status, Tag, Transaction};

/// Where a connection is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Waiting for NAME.
    Connected,
    /// Name accepted; waiting for PASSWORD.
    Named,
    /// PASSWORD received; waiting for the caller's verdict ([`Session::verified`]).
    Verifying,
    /// Authenticated; MESSAGE transactions are logged.
    Ready,
    /// Ended by CLOSE or by a rejection; nothing more is processed.
    Closed,
}

impl State {
    /// The tag this state accepts besides CLOSE (`None` once closed).
    pub const fn expected(self) -> Option<Tag> {
        match self {
            State::Connected => Some(Tag::Name),
            State::Named => Some(Tag::Password),
            State::Verifying | State::Ready => Some(Tag::Message),
            State::Closed => None,
        }
    }
}

/// Why a connection was rejected with 0xFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reject {
    /// The bytes are not a valid transaction.
    Frame(FrameError),
    /// A valid tag, but not the one this state expects.
    UnexpectedTag {
        /// The tag the state machine expected (besides CLOSE).
        expected: Tag,
        /// The tag received.
        received: Tag,
    },
    /// The name is not UTF-8, contains a character [`valid_name`] refuses, or is too long.
    InvalidName,
    /// The authenticator refused the name and password.
    AuthenticationFailed,
    /// The message could not be written to the log.
    SinkFailed,
    /// A transaction did not complete in time, or the connection sat idle too long.
    Timeout,
    /// A transaction arrived after the session ended.
    SessionEnded,
    /// A transaction arrived before the caller reported the password's verdict.
    VerificationPending,
    /// The server had no room for the transaction (e.g. a full password
    /// verification queue); reported by the caller through [`Session::fail`].
    Overload,
}

impl Reject {
    /// A short stable code for logs (`unknown-tag`, `auth-failed`, ...).
    pub const fn code(&self) -> &'static str {
        match self {
            Reject::Frame(FrameError::UnknownTag(_)) => "unknown-tag",
            Reject::Frame(FrameError::ZeroLength(_)) => "zero-length",
            Reject::Frame(FrameError::TooLong { .. }) => "too-long",
            Reject::UnexpectedTag { .. } => "unexpected-tag",
            Reject::InvalidName => "invalid-name",
            Reject::AuthenticationFailed => "auth-failed",
            Reject::SinkFailed => "write-failed",
            Reject::Timeout => "timeout",
            Reject::SessionEnded => "session-ended",
            Reject::VerificationPending => "verification-pending",
            Reject::Overload => "overload",
        }
    }
}

impl core::fmt::Display for Reject {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Reject::Frame(e) => write!(f, "{e}"),
            Reject::UnexpectedTag { expected, received } => {
                write!(f, "expected {expected} or CLOSE, received {received}")
            }
            Reject::InvalidName => f.write_str("invalid name"),
            Reject::AuthenticationFailed => f.write_str("authentication failed"),
            Reject::SinkFailed => f.write_str("message could not be written"),
            Reject::Timeout => f.write_str("timed out"),
            Reject::SessionEnded => f.write_str("transaction after the session ended"),
            Reject::VerificationPending => {
                f.write_str("transaction before the password was verified")
            }
            Reject::Overload => f.write_str("the server is overloaded"),
        }
    }
}

/// What a transaction did; each outcome is answered with [`Outcome::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "every outcome is answered with its status byte"]
pub enum Outcome {
    /// The name was accepted.
    Named,
    /// The password was verified.
    Authenticated,
    /// The message was written by the sink.
    Logged,
    /// CLOSE: the session ended cleanly.
    Closed,
    /// The session ended with a rejection.
    Rejected(Reject),
}

impl Outcome {
    /// The status byte that answers this outcome.
    pub const fn status(&self) -> Status {
        match self {
            Outcome::Rejected(_) => Status::Rejected,
            _ => Status::Accepted,
        }
    }

    /// Whether the connection ends after this outcome's status is sent.
    pub const fn ends_session(&self) -> bool {
        matches!(self, Outcome::Closed | Outcome::Rejected(_))
    }
}

/// What the caller must do for a received transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "the transaction is answered only once its action is resolved"]
pub enum Action<'s, 'i> {
    /// Nothing to do but send `outcome.status()`.
    Reply(Outcome),
    /// Verify the credentials, then call [`Session::verified`] (before the next transaction).
    Verify {
        /// The session's name.
        name: &'s str,
        /// The password as received.
        password: &'i [u8],
    },
    /// Write the message's record. If that succeeds the outcome is
    /// [`Outcome::Logged`] (status 0x00, sent only once the record is
    /// written); if it fails, call [`Session::fail`] with [`Reject::SinkFailed`].
    Log {
        /// The session's name.
        name: &'s str,
        /// The message as received.
        message: &'i [u8],
    },
}

/// Decides whether a name and password may log in.
pub trait Authenticator {
    /// `true` to accept. Implementations should take the same time for an
    /// unknown name as for a wrong password.
    fn verify(&mut self, name: &str, password: &[u8]) -> bool;
}

impl<F: FnMut(&str, &[u8]) -> bool> Authenticator for F {
    fn verify(&mut self, name: &str, password: &[u8]) -> bool {
        self(name, password)
    }
}

/// Where accepted messages go; a sink that fails makes the server answer 0xFF.
pub trait Sink {
    /// Why a message could not be written.
    type Error;

    /// Write (and, if the sink promises durability, persist) one message.
    /// Return `Ok` only once it is written: `Ok` is what lets the server answer 0x00.
    fn append(&mut self, name: &str, message: &[u8]) -> Result<(), Self::Error>;
}

/// `name` as a session name, if it is one: non-empty UTF-8 with no `[` or
/// `]`, so that a record's `[name]: ` prefix always parses back to the same
/// name, and none of the code points that hide, reorder or split text (C0,
/// DEL, C1, U+2028, U+2029, bidi controls, invisible characters), private-use
/// code points or noncharacters, so that a name cannot pass for another
/// (PROTOCOL.md, decision 1).
pub fn valid_name(name: &[u8]) -> Option<&str> {
    let name = core::str::from_utf8(name).ok()?;
    let refused = |c: char| c.is_control() || c == '[' || c == ']' || refused_in_names(c);
    if name.is_empty() || name.chars().any(refused) {
        return None;
    }
    Some(name)
}

/// One connection's protocol state. Capacities are in bytes: `NAME` holds the
/// name for the life of the session; `PASSWORD` and `MESSAGE` bound the
/// fields, which are borrowed from the receive buffer and never copied.
///
/// # Time
///
/// The session also keeps the frame and idle timeouts of PROTOCOL.md,
/// decision 6, both optional: a transaction must be complete within the
/// frame timeout of its first byte, and the next one must begin within the
/// idle timeout of the end of the last one (or of the connection's start).
/// `I` is the caller's clock ([`Instant`]; `u64` milliseconds, say); the
/// session never reads one. A driver that times its connections:
///
/// 1. sets [`set_frame_timeout`](Self::set_frame_timeout) and
///    [`set_idle_timeout`](Self::set_idle_timeout), and calls
///    [`start`](Self::start) when the connection opens (without it, the
///    first timeout is the first transaction's frame timeout);
/// 2. decodes with [`decode_at`](Self::decode_at), giving the time the
///    bytes arrived, and reports a verdict it resolved later with
///    [`verified_at`](Self::verified_at);
/// 3. bounds its next wait for bytes by [`poll_timeout`](Self::poll_timeout)
///    and, when that passes, calls [`handle_timeout`](Self::handle_timeout),
///    whose outcome (a rejection: 0xFF, then close) it answers.
///
/// While a password awaits its verdict nothing is timed: the caller is the
/// one waiting.
#[derive(Debug, Clone)]
pub struct Session<const NAME: usize, const PASSWORD: usize, const MESSAGE: usize, I: Instant = u64>
{
    name: String<NAME>,
    state: State,
    frame_timeout: Option<I::Duration>,
    idle_timeout: Option<I::Duration>,
    /// What the connection waits for and since when; `None` before the first timed call.
    waiting: Option<Waiting<I>>,
}

/// Where a connection is between its timed events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting<I> {
    /// Between transactions, since the last one ended (or the connection started).
    Idle(I),
    /// Inside a transaction, since its first byte arrived.
    Frame(I),
}

impl<const NAME: usize, const PASSWORD: usize, const MESSAGE: usize, I: Instant> Default
    for Session<NAME, PASSWORD, MESSAGE, I>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const NAME: usize, const PASSWORD: usize, const MESSAGE: usize, I: Instant>
    Session<NAME, PASSWORD, MESSAGE, I>
{
    /// The decoder limits these capacities imply.
    pub const LIMITS: Limits = Limits::from_capacities(NAME, PASSWORD, MESSAGE);

    /// The smallest receive buffer that holds any transaction this session accepts.
    pub const MAX_FRAME: usize = Self::LIMITS.max_frame();

    /// The longest record a message of this session can produce: what a
    /// driver that buffers records must be able to hold.
    pub const MAX_RECORD_LEN: usize =
        max_record_len(Self::LIMITS.name as usize, Self::LIMITS.message as usize);

    /// A session for a new connection, without timeouts.
    pub const fn new() -> Self {
        Session {
            name: String::new(),
            state: State::Connected,
            frame_timeout: None,
            idle_timeout: None,
            waiting: None,
        }
    }

    /// The longest a transaction may take from its first byte to its last
    /// (`None`: no limit).
    pub fn set_frame_timeout(&mut self, timeout: Option<I::Duration>) {
        self.frame_timeout = timeout;
    }

    /// The longest wait for the next transaction's first byte, from the end
    /// of the last one or from [`start`](Self::start) (`None`: no limit).
    pub fn set_idle_timeout(&mut self, timeout: Option<I::Duration>) {
        self.idle_timeout = timeout;
    }

    /// The frame timeout (see [`set_frame_timeout`](Self::set_frame_timeout)).
    pub fn frame_timeout(&self) -> Option<I::Duration> {
        self.frame_timeout
    }

    /// The idle timeout (see [`set_idle_timeout`](Self::set_idle_timeout)).
    pub fn idle_timeout(&self) -> Option<I::Duration> {
        self.idle_timeout
    }

    /// The connection opened at `now`: the idle timeout runs from here.
    /// Once: a session already timed (started, or fed bytes with
    /// [`decode_at`](Self::decode_at)) keeps its time.
    pub fn start(&mut self, now: I) {
        if self.waiting.is_none() {
            self.waiting = Some(Waiting::Idle(now));
        }
    }

    /// Where the connection is in the protocol.
    pub const fn state(&self) -> State {
        self.state
    }

    /// The accepted name, once NAME has been accepted.
    pub fn name(&self) -> Option<&str> {
        match self.state {
            State::Connected => None,
            _ if self.name.is_empty() => None,
            _ => Some(self.name.as_str()),
        }
    }

    /// Whether the session has ended (CLOSE or rejection).
    pub const fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Decode the next transaction from the bytes received so far, under
    /// this session's limits. A tag this state does not accept is rejected
    /// at its first byte, without waiting for the rest. On error the session
    /// is closed and the caller answers 0xFF.
    pub fn decode<'i>(&mut self, input: &'i [u8]) -> Result<Decoded<'i>, Reject> {
        let Some(expected) = self.state.expected() else {
            return Err(self.close_with(Reject::SessionEnded));
        };
        if let Some(received) = input.first().copied().and_then(Tag::from_byte) {
            if received != expected && received != Tag::Close {
                return Err(self.close_with(Reject::UnexpectedTag { expected, received }));
            }
        }
        decode(input, &Self::LIMITS).map_err(|e| self.close_with(Reject::Frame(e)))
    }

    /// [`decode`](Self::decode) the bytes received so far, the last of which
    /// arrived at `now`: a complete transaction ends its frame timeout and
    /// starts the idle timeout; the first bytes of an unfinished one start
    /// its frame timeout (more bytes of it do not move it).
    pub fn decode_at<'i>(&mut self, input: &'i [u8], now: I) -> Result<Decoded<'i>, Reject> {
        let decoded = self.decode(input)?;
        match decoded {
            Decoded::Complete { .. } => self.waiting = Some(Waiting::Idle(now)),
            Decoded::Partial { .. } if input.is_empty() => {}
            Decoded::Partial { .. } => {
                if !matches!(self.waiting, Some(Waiting::Frame(_))) {
                    self.waiting = Some(Waiting::Frame(now));
                }
            }
        }
        Ok(decoded)
    }

    /// Apply one transaction to the state machine.
    pub fn receive<'s, 'i>(&'s mut self, transaction: Transaction<'i>) -> Action<'s, 'i> {
        let limit_exceeded = |tag: Tag, len: usize| {
            let max = Self::LIMITS.max_len(tag);
            (len > usize::from(max)).then(|| {
                Reject::Frame(FrameError::TooLong {
                    tag,
                    length: u16::try_from(len).unwrap_or(u16::MAX),
                    max,
                })
            })
        };
        if let Some(reject) = limit_exceeded(transaction.tag(), transaction.payload().len()) {
            return Action::Reply(self.fail(reject));
        }
        match (self.state, transaction) {
            (State::Closed, _) => Action::Reply(Outcome::Rejected(Reject::SessionEnded)),
            (State::Verifying, _) => Action::Reply(self.fail(Reject::VerificationPending)),
            (_, Transaction::Close) => {
                self.state = State::Closed;
                Action::Reply(Outcome::Closed)
            }
            (State::Connected, Transaction::Name(name)) => {
                let mut stored = String::new();
                match valid_name(name).map(|n| stored.push_str(n)) {
                    Some(Ok(())) => {
                        self.name = stored;
                        self.state = State::Named;
                        Action::Reply(Outcome::Named)
                    }
                    _ => Action::Reply(self.fail(Reject::InvalidName)),
                }
            }
            (State::Named, Transaction::Password(password)) => {
                self.state = State::Verifying;
                Action::Verify {
                    name: self.name.as_str(),
                    password,
                }
            }
            (State::Ready, Transaction::Message(message)) => Action::Log {
                name: self.name.as_str(),
                message,
            },
            (state, transaction) => {
                let reject = match state.expected() {
                    Some(expected) => Reject::UnexpectedTag {
                        expected,
                        received: transaction.tag(),
                    },
                    None => Reject::SessionEnded,
                };
                Action::Reply(self.fail(reject))
            }
        }
    }

    /// Report the verdict on the credentials of an [`Action::Verify`].
    pub fn verified(&mut self, accepted: bool) -> Outcome {
        match (self.state, accepted) {
            (State::Verifying, true) => {
                self.state = State::Ready;
                Outcome::Authenticated
            }
            (State::Verifying, false) => self.fail(Reject::AuthenticationFailed),
            _ => self.fail(Reject::VerificationPending),
        }
    }

    /// [`verified`](Self::verified), with the verdict reported at `now`:
    /// the idle timeout runs from here.
    pub fn verified_at(&mut self, accepted: bool, now: I) -> Outcome {
        self.waiting = Some(Waiting::Idle(now));
        self.verified(accepted)
    }

    /// When the connection times out unless something happens first: the
    /// frame timeout from a transaction's first byte, or the idle timeout
    /// from the end of the last one. `None` without the timeout that
    /// applies, before the first timed call, while a password awaits its
    /// verdict, and once the session ended.
    pub fn poll_timeout(&self) -> Option<I> {
        match (self.state, self.waiting?) {
            (State::Verifying | State::Closed, _) => None,
            (_, Waiting::Idle(since)) => deadline(Some(since), self.idle_timeout),
            (_, Waiting::Frame(since)) => deadline(Some(since), self.frame_timeout),
        }
    }

    /// Act on the time: once [`poll_timeout`](Self::poll_timeout) has
    /// passed, the session ends with [`Reject::Timeout`], answered 0xFF;
    /// before it, nothing happens (`None`).
    #[must_use = "a timed-out session is answered 0xFF, then closed"]
    pub fn handle_timeout(&mut self, now: I) -> Option<Outcome> {
        if self.poll_timeout().is_none_or(|at| now < at) {
            return None;
        }
        Some(self.fail(Reject::Timeout))
    }

    /// End the session with a rejection (bad bytes, timeout, failed write).
    pub fn fail(&mut self, reject: Reject) -> Outcome {
        Outcome::Rejected(self.close_with(reject))
    }

    /// Receive a transaction and resolve its action at once.
    pub fn handle<A, S>(
        &mut self,
        transaction: Transaction<'_>,
        auth: &mut A,
        sink: &mut S,
    ) -> Outcome
    where
        A: Authenticator + ?Sized,
        S: Sink + ?Sized,
    {
        match self.receive(transaction) {
            Action::Reply(outcome) => outcome,
            Action::Verify { name, password } => {
                let accepted = auth.verify(name, password);
                self.verified(accepted)
            }
            Action::Log { name, message } => match sink.append(name, message) {
                Ok(()) => Outcome::Logged,
                Err(_) => self.fail(Reject::SinkFailed),
            },
        }
    }

    fn close_with(&mut self, reject: Reject) -> Reject {
        self.state = State::Closed;
        reject
    }
}
