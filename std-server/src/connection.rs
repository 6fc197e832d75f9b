//! What an event loop keeps per connection. Small on purpose: an idle
//! connection holds its socket, its session (the name) and a few fields;
//! buffers are only allocated while a transaction is split across reads or
//! status bytes cannot be sent at once.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use msglog_core::Session;

use crate::transaction_log::{connection_fields, CloseReason};

/// The std server's capacities: names and passwords up to 255 bytes, messages up to 65535.
pub type ServerSession = Session<255, 255, 65535>;

/// Where the connection is, as far as the event loop is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and handling transactions.
    Open,
    /// A password is being verified on the pool; nothing is read meanwhile.
    Verifying,
    /// A password waits for its address's back-off to pass.
    VerifyDelayed { at: Instant },
    /// A refused password's 0xFF waits until `at`, so that a cheaply hashed
    /// user is refused no sooner than the costliest (see `users`).
    Refusing { at: Instant },
    /// The session ended: last status bytes are being sent.
    Closing { linger_until: Option<Instant> },
    /// Closed; removed at the end of the iteration.
    Dead,
}

/// Where this iteration's first 0x00 of the connection is (its status byte
/// and its log entry), so a failed commit can take it back with everything
/// that followed it.
#[derive(Debug, Clone, Copy)]
pub struct HeldMark {
    pub status: usize,
    pub entry: usize,
}

#[derive(Debug)]
pub struct Connection {
    pub id: u64,
    pub stream: TcpStream,
    pub ip: IpAddr,
    /// `conn=ID peer=ADDR`, formatted once for every log line.
    pub fields: Box<[u8]>,
    pub session: ServerSession,
    pub phase: Phase,
    /// Bytes received but not yet handled: an unfinished transaction, or
    /// (while a password is verified) everything received after it.
    pub leftover: Vec<u8>,
    /// `leftover` may hold complete transactions: handle it before reading.
    pub resume: bool,
    /// Status bytes not yet sent.
    pub out: Vec<u8>,
    /// Queued for sending at the end of the iteration.
    pub queued: bool,
    pub last_active: Instant,
    /// When the first byte of the unfinished transaction in `leftover` arrived.
    pub partial_since: Option<Instant>,
    /// When this connection's live timer entry is due.
    pub timer_at: Option<Instant>,
    /// A password held while its verification waits for the back-off.
    pub password: Option<Box<[u8]>>,
    /// The first 0x00 held back in this iteration, if any.
    pub held: Option<HeldMark>,
    /// The 0x00 of this iteration's first record, if any.
    pub batch: Option<HeldMark>,
    /// Log entries of iteration `.0` not to be written (answered after a failed write).
    pub cut: Option<(u64, Range<usize>)>,
    pub close_reason: Option<CloseReason>,
    pub close_error: Option<Box<str>>,
}

impl Connection {
    pub fn new(id: u64, stream: TcpStream, peer: SocketAddr, now: Instant) -> Self {
        Connection {
            id,
            stream,
            ip: peer.ip(),
            fields: connection_fields(id, peer),
            session: ServerSession::new(),
            phase: Phase::Open,
            leftover: Vec::new(),
            resume: false,
            out: Vec::new(),
            queued: false,
            last_active: now,
            partial_since: None,
            timer_at: None,
            password: None,
            held: None,
            batch: None,
            cut: None,
            close_reason: None,
            close_error: None,
        }
    }

    /// When this connection must next be looked at, if ever.
    pub fn deadline(&self, frame_timeout: Duration, idle_timeout: Duration) -> Option<Instant> {
        match self.phase {
            Phase::Open => Some(match self.partial_since {
                Some(since) => since + frame_timeout,
                None => self.last_active + idle_timeout,
            }),
            Phase::Verifying | Phase::Dead => None,
            Phase::VerifyDelayed { at } | Phase::Refusing { at } => Some(at),
            Phase::Closing { linger_until } => linger_until,
        }
    }

    /// Forget a held password, overwriting it first.
    pub fn drop_password(&mut self) {
        if let Some(mut password) = self.password.take() {
            password.fill(0);
            std::hint::black_box(&password);
        }
    }
}
