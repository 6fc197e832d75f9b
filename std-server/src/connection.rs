//! One connection as an event loop sees it, without its socket: bytes and
//! verdicts go in; status bytes, log entries and records come out (into
//! the connection's unsent statuses and the [`Iteration`]).
//!
//! The protocol itself is the core's [`Session`](msglog_core::Session);
//! this adds what a server around it needs: the bytes of an unfinished
//! transaction, a password waiting for its verdict, the 0x00s held back
//! until the iteration's commit, the close and its reason, and the one
//! deadline the event loop arms a timer for: the session's frame and idle
//! timeouts while it is open, else the back-off or the linger.
//!
//! Small on purpose: an idle connection holds its session (the name) and a
//! few fields; buffers are only allocated while a transaction is split
//! across reads or status bytes cannot be sent at once.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::{Duration, Instant};

use msglog_core::{
    peek_header, Action, Decoded, FrameError, Outcome, Reject, Status, Tag, Transaction,
};

use crate::capacity::ServerSession;
use crate::config::Timeouts;
use crate::instant::SessionInstant;
use crate::iteration::{Entry, EntryKind, HeldMark, Iteration, NameField};
use crate::mailbox::Decision;
use crate::tls::Established;
use crate::transaction_log::{connection_fields, CloseReason, Line, TlsFields};

/// Unsent status bytes at which a connection is no longer read from.
const MAX_UNSENT: usize = 64 * 1024;
/// How long a closing connection may take to accept its last status bytes.
const LINGER: Duration = Duration::from_secs(5);

/// Where the connection is, as far as the event loop is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
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

/// What answers a PASSWORD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Accepted,
    Refused,
    /// The verification queue had no room for it.
    Overloaded,
}

/// A password to check, for [`Verifier::verify`].
#[derive(Debug)]
pub(crate) struct VerifyRequest<'a> {
    pub(crate) slot: usize,
    pub(crate) connection: u64,
    pub(crate) ip: IpAddr,
    pub(crate) name: &'a str,
    pub(crate) password: &'a [u8],
    pub(crate) now: Instant,
}

/// What became of a password handed to a [`Verifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    /// Answered at once.
    Answered(Answer),
    /// Queued for the verifier pool; its [`Decision`] comes by mail.
    Submitted,
    /// The address's back-off has not passed: ask again at `until`.
    Delayed { until: Instant },
}

/// Checks passwords for connections (the server's policy and verifier
/// pool; a fake in tests).
pub(crate) trait Verifier {
    fn verify(&mut self, request: VerifyRequest<'_>) -> Verification;
}

/// A TLS connection's state as far as the protocol is concerned (the
/// records themselves are the event loop's `TlsLink`'s).
#[derive(Debug)]
struct TlsState {
    /// While the handshake runs: when it must have finished (the frame
    /// timeout from the accept).
    handshake_deadline: Option<Instant>,
    /// What the handshake established, once it has.
    established: Option<Established>,
    /// NAME must be one the client certificate proves.
    require_cert_name: bool,
}

/// What a transaction's line says besides its outcome.
#[derive(Debug, Clone, Copy)]
struct About {
    tag: u8,
    len: Option<u16>,
    name: NameField,
}

#[derive(Debug)]
pub(crate) struct Connection {
    id: u64,
    /// The event loop's key for this connection, in every list of an [`Iteration`].
    slot: usize,
    ip: IpAddr,
    /// `conn=ID peer=ADDR`, formatted once for every log line.
    fields: Box<[u8]>,
    session: ServerSession,
    phase: Phase,
    /// Bytes received but not yet handled: an unfinished transaction, or
    /// (while a password is verified) everything received after it.
    leftover: Vec<u8>,
    /// `leftover` may hold complete transactions: handle it before reading.
    resume: bool,
    /// Status bytes not yet sent.
    out: Vec<u8>,
    /// In [`Iteration::queued`].
    queued: bool,
    /// A password held while its verification waits for the back-off.
    password: Option<Box<[u8]>>,
    /// The first 0x00 held back in this iteration, if any.
    held: Option<HeldMark>,
    /// The 0x00 of this iteration's first record, if any.
    batch: Option<HeldMark>,
    /// MESSAGEs accepted so far (a record's sequence number on its connection).
    messages: u64,
    /// Log entries of iteration `.0` not to be written (answered after a failed write).
    cut: Option<(u64, Range<usize>)>,
    close_reason: Option<CloseReason>,
    close_error: Option<Box<str>>,
    /// On a TLS listener.
    tls: Option<Box<TlsState>>,
}

impl Connection {
    /// A new connection in `slot`, timed by `timeouts` from now on; its
    /// `event=open` line is entered in `iteration`.
    pub(crate) fn open(
        id: u64,
        slot: usize,
        peer: SocketAddr,
        timeouts: &Timeouts,
        iteration: &mut Iteration,
    ) -> Self {
        iteration.entries.push(Entry {
            slot,
            kind: EntryKind::Open,
        });
        let mut conn = Connection::unlogged(id, slot, peer, timeouts);
        conn.session.start(iteration.now.into());
        conn
    }

    /// A connection with nothing logged and its session's clock not started.
    fn unlogged(id: u64, slot: usize, peer: SocketAddr, timeouts: &Timeouts) -> Self {
        let mut session = ServerSession::new();
        session.set_frame_timeout(Some(timeouts.frame));
        session.set_idle_timeout(Some(timeouts.idle));
        Connection {
            id,
            slot,
            ip: peer.ip(),
            fields: connection_fields(id, peer),
            session,
            phase: Phase::Open,
            leftover: Vec::new(),
            resume: false,
            out: Vec::new(),
            queued: false,
            password: None,
            held: None,
            batch: None,
            messages: 0,
            cut: None,
            close_reason: None,
            close_error: None,
            tls: None,
        }
    }

    /// A new connection of a TLS listener in `slot`: nothing is logged until
    /// its handshake completes ([`established`](Self::established)), which
    /// must happen within the frame timeout.
    pub(crate) fn open_tls(
        id: u64,
        slot: usize,
        peer: SocketAddr,
        timeouts: &Timeouts,
        iteration: &mut Iteration,
        require_cert_name: bool,
    ) -> Self {
        // The open line and the session's clock wait for the handshake.
        let mut conn = Connection::unlogged(id, slot, peer, timeouts);
        conn.tls = Some(Box::new(TlsState {
            handshake_deadline: Some(iteration.now + timeouts.frame),
            established: None,
            require_cert_name,
        }));
        conn
    }

    /// Whether a TLS handshake is still running.
    pub(crate) fn handshaking(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|tls| tls.handshake_deadline.is_some())
    }

    /// The TLS handshake completed: the open line is logged with what it
    /// established, and the idle timeout runs from now.
    pub(crate) fn established(&mut self, iteration: &mut Iteration, established: Established) {
        let Some(tls) = self.tls.as_mut() else {
            return;
        };
        tls.handshake_deadline = None;
        tls.established = Some(established);
        self.session.start(iteration.now.into());
        if self.phase == Phase::Open {
            iteration.entries.push(Entry {
                slot: self.slot,
                kind: EntryKind::Open,
            });
        }
    }

    /// TLS failed (a bad handshake or record, an alert): logged as one
    /// `event=close reason=tls` line, then closed.
    pub(crate) fn tls_failed(&mut self, iteration: &mut Iteration, error: impl std::fmt::Display) {
        iteration.counts.rejected += 1;
        self.end(iteration, CloseReason::Tls, Some(error.to_string().into()));
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether bytes should be read for it now: its session is open and its
    /// client is reading its status bytes.
    pub(crate) fn reads(&self) -> bool {
        self.phase == Phase::Open && self.out.len() < MAX_UNSENT
    }

    /// Status bytes not yet sent.
    pub(crate) fn unsent(&self) -> &[u8] {
        &self.out
    }

    /// Whether everything received has been handled: nothing between two
    /// transactions (where a stopping server may close it).
    pub(crate) fn between_transactions(&self) -> bool {
        self.leftover.is_empty() && !self.resume
    }

    /// When this connection must next be looked at, if ever: the one place
    /// the back-off and the linger are applied, and the session's frame and
    /// idle timeouts asked for.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Open if self.handshaking() => {
                self.tls.as_ref().and_then(|tls| tls.handshake_deadline)
            }
            Phase::Open => self.session.poll_timeout().map(Instant::from),
            Phase::Verifying | Phase::Dead => None,
            Phase::VerifyDelayed { at } | Phase::Refusing { at } => Some(at),
            Phase::Closing { linger_until } => linger_until,
        }
    }

    /// Copy the bytes not handled yet to the front of `buffer`, where the
    /// next read appends to them; their length, or `None` if no byte could
    /// be read after them (cannot happen: an unfinished transaction is
    /// shorter than the read buffer).
    pub(crate) fn restore_unhandled(&self, buffer: &mut [u8]) -> Option<usize> {
        let kept = self.leftover.len();
        if kept > buffer.len() || (kept == buffer.len() && !self.resume) {
            return None;
        }
        buffer[..kept].copy_from_slice(&self.leftover);
        Some(kept)
    }

    /// Whether the bytes not handled yet may hold complete transactions
    /// (after a password's verdict): handle them before reading. Asked once.
    pub(crate) fn take_resume(&mut self) -> bool {
        std::mem::take(&mut self.resume)
    }

    /// Handle `input`: the bytes not handled before (see
    /// [`restore_unhandled`](Self::restore_unhandled)) followed by those
    /// just read. Keeps what it cannot handle yet.
    pub(crate) fn receive(
        &mut self,
        input: &[u8],
        iteration: &mut Iteration,
        verifier: &mut impl Verifier,
    ) {
        let consumed = self.process(input, iteration, verifier);
        self.leftover.clear();
        let rest = input.get(consumed..).unwrap_or_default();
        match self.phase {
            Phase::Open
            | Phase::Verifying
            | Phase::VerifyDelayed { .. }
            | Phase::Refusing { .. } => self.leftover.extend_from_slice(rest),
            Phase::Closing { .. } | Phase::Dead => {}
        }
        if self.leftover.is_empty() && self.leftover.capacity() > 4096 {
            self.leftover = Vec::new();
        }
    }

    /// The peer closed its side (end of stream).
    pub(crate) fn peer_closed(&mut self, iteration: &mut Iteration) {
        if self.handshaking() {
            return self.tls_failed(
                iteration,
                "the client closed the connection during the TLS handshake",
            );
        }
        let partial = self.leftover.len();
        self.begin_close(iteration, CloseReason::Eof { partial }, None);
    }

    /// The socket failed.
    pub(crate) fn failed(&mut self, iteration: &mut Iteration, error: io::Error) {
        if self.handshaking() {
            return self.tls_failed(iteration, format_args!("during the TLS handshake: {error}"));
        }
        self.begin_close(iteration, CloseReason::Error, Some(error));
    }

    /// The verifier pool's decision on the password it was given.
    pub(crate) fn decided(&mut self, decision: Decision, iteration: &mut Iteration) {
        if self.phase != Phase::Verifying {
            decision.discard();
            return;
        }
        match decision {
            Decision::Verified {
                accepted: false,
                not_before: Some(at),
            } if at > iteration.now => self.phase = Phase::Refusing { at },
            Decision::Verified { accepted, .. } => {
                let answer = if accepted {
                    Answer::Accepted
                } else {
                    Answer::Refused
                };
                self.finish_verification(iteration, answer);
            }
            Decision::Overloaded => self.finish_verification(iteration, Answer::Overloaded),
            Decision::Deferred { wait, password } => {
                self.password = Some(password);
                self.phase = Phase::VerifyDelayed {
                    at: iteration.now + wait,
                };
            }
        }
    }

    /// Its deadline passed.
    pub(crate) fn expire(&mut self, iteration: &mut Iteration, verifier: &mut impl Verifier) {
        match self.phase {
            Phase::Open if self.handshaking() => {
                iteration.counts.timeouts += 1;
                self.end(
                    iteration,
                    CloseReason::Tls,
                    Some("the TLS handshake did not finish within the frame timeout".into()),
                );
            }
            Phase::Open => {
                // The session's deadline passed: it acts on it as of then.
                let timed_out = self.session.poll_timeout();
                let Some(outcome) = timed_out.and_then(|at| self.session.handle_timeout(at)) else {
                    return;
                };
                match peek_header(&self.leftover) {
                    // Idle: no transaction to log, only the close.
                    None => {
                        iteration.counts.timeouts += 1;
                        self.push_status(iteration, outcome.status());
                        self.begin_close(iteration, CloseReason::Timeout, None);
                    }
                    Some(header) => {
                        let about = About {
                            tag: header.tag,
                            len: header.length,
                            name: NameField::None,
                        };
                        self.reply(iteration, about, outcome);
                    }
                }
            }
            Phase::VerifyDelayed { .. } => {
                // Ask again: parallel attempts of one address take turns
                // (see `Backoff::wait`).
                let mut password = self.password.take().unwrap_or_default();
                let verdict = self.verify(iteration.now, &password, verifier);
                password.fill(0);
                std::hint::black_box(&password);
                if let Some(answer) = verdict {
                    self.finish_verification(iteration, answer);
                }
            }
            Phase::Refusing { .. } => self.finish_verification(iteration, Answer::Refused),
            Phase::Closing { .. } => {
                self.phase = Phase::Dead;
                iteration.dead.push(self.slot);
            }
            Phase::Verifying | Phase::Dead => {}
        }
    }

    /// The server is stopping: end the session at a transaction boundary,
    /// or wherever it is once the grace period is `over`.
    pub(crate) fn stop(&mut self, iteration: &mut Iteration, over: bool) {
        match self.phase {
            Phase::Open if over || self.between_transactions() => {
                self.begin_close(iteration, CloseReason::Shutdown, None);
            }
            Phase::Verifying | Phase::VerifyDelayed { .. } | Phase::Refusing { .. } if over => {
                self.begin_close(iteration, CloseReason::Shutdown, None);
            }
            Phase::Closing { .. } if over => {
                self.phase = Phase::Dead;
                iteration.dead.push(self.slot);
            }
            _ => {}
        }
    }

    /// Put it on the iteration's list of connections with statuses to send.
    pub(crate) fn queue(&mut self, iteration: &mut Iteration) {
        if !self.queued {
            self.queued = true;
            iteration.queued.push(self.slot);
        }
    }

    /// The socket took the first `sent` unsent status bytes, then refused
    /// the rest with `failure` (or would block). True when the socket is to
    /// be closed now (then call [`closed`](Self::closed)); a stop at
    /// `stopping` cuts a linger short.
    pub(crate) fn flushed(
        &mut self,
        sent: usize,
        failure: Option<io::Error>,
        iteration: &mut Iteration,
        stopping: Option<Instant>,
    ) -> bool {
        self.queued = false;
        let was_full = self.out.len() >= MAX_UNSENT;
        if failure.is_some() {
            self.out.clear();
        } else {
            self.out.drain(..sent.min(self.out.len()));
        }
        if self.out.is_empty() && self.out.capacity() > 4096 {
            self.out = Vec::new();
        }
        match self.phase {
            Phase::Closing { linger_until } => {
                if self.out.is_empty() || failure.is_some() {
                    return true;
                }
                if linger_until.is_none() {
                    let mut until = iteration.now + LINGER;
                    if let Some(stop) = stopping {
                        until = until.min(stop);
                    }
                    self.phase = Phase::Closing {
                        linger_until: Some(until),
                    };
                }
                false
            }
            Phase::Dead => false,
            Phase::Open
            | Phase::Verifying
            | Phase::VerifyDelayed { .. }
            | Phase::Refusing { .. } => {
                if let Some(e) = failure {
                    self.begin_close(iteration, CloseReason::Error, Some(e));
                    self.queued = false;
                    return true;
                }
                if was_full && self.out.len() < MAX_UNSENT {
                    // Reading was paused for this client; it reads again.
                    iteration.ready.push(self.slot);
                }
                false
            }
        }
    }

    /// Its socket was closed: remove it at the end of the iteration.
    pub(crate) fn closed(&mut self, iteration: &mut Iteration) {
        self.drop_password();
        self.leftover = Vec::new();
        self.phase = Phase::Dead;
        iteration.dead.push(self.slot);
    }

    /// The 0x00 of this iteration's first record, once (for the commit).
    pub(crate) fn take_batch_mark(&mut self) -> Option<HeldMark> {
        self.batch.take()
    }

    /// The first 0x00 held back this iteration, once (for the commit).
    pub(crate) fn take_held_mark(&mut self) -> Option<HeldMark> {
        self.held.take()
    }

    /// Whether a 0x00 is held back this iteration.
    pub(crate) fn holds(&self) -> bool {
        self.held.is_some()
    }

    /// The records of this iteration were not written: the first MESSAGE
    /// of it is answered 0xFF instead (see [`take_back`](Self::take_back)),
    /// and a 0x00 held from that MESSAGE on goes with it; one held before
    /// it (NAME, PASSWORD) stays held for the lines' commit.
    pub(crate) fn records_lost(&mut self, iteration: &mut Iteration, mark: HeldMark) {
        if self.held.is_some_and(|held| held.status >= mark.status) {
            self.held = None;
        }
        self.take_back(iteration, mark);
    }

    /// The commit holding this connection's 0x00s was not (durably) written:
    /// the first transaction of it answered 0x00 is answered 0xFF instead,
    /// and nothing after it is answered or logged.
    pub(crate) fn take_back(&mut self, iteration: &mut Iteration, mark: HeldMark) {
        self.out.truncate(mark.status);
        self.out.push(Status::Rejected.as_byte());
        if let Some(Entry {
            kind: EntryKind::Transaction { reject, .. },
            ..
        }) = iteration.entries.get_mut(mark.entry)
        {
            *reject = Some(Reject::SinkFailed);
        }
        let again = self
            .cut
            .as_ref()
            .is_some_and(|(at, _)| *at == iteration.number);
        self.cut = Some((iteration.number, mark.entry + 1..iteration.entries.len()));
        // Its 0xFF is the one pushed above, in place of the first 0x00 taken back.
        let _ = self.session.fail(Reject::SinkFailed);
        if !again {
            iteration.counts.rejected += 1;
        }
        // Whatever ended the session before (a pipelined CLOSE, EOF) is superseded.
        if self.phase != Phase::Dead {
            self.phase = Phase::Open;
        }
        self.begin_close(iteration, CloseReason::Rejected, None);
    }

    /// The `conn=ID peer=ADDR` fields of its lines.
    pub(crate) fn fields(&self) -> &[u8] {
        &self.fields
    }

    /// The line of `iteration`'s entry `index` (of kind `kind`), unless a
    /// take-back cut it.
    pub(crate) fn line<'a>(
        &'a self,
        index: usize,
        kind: EntryKind,
        iteration: u64,
        names: &'a [Box<[u8]>],
    ) -> Option<Line<'a>> {
        if let Some((at, cut)) = &self.cut {
            if *at == iteration && cut.contains(&index) {
                return None;
            }
        }
        Some(match kind {
            EntryKind::Open => Line::Open {
                tls: self
                    .tls
                    .as_ref()
                    .and_then(|tls| tls.established.as_ref())
                    .map(|established| TlsFields {
                        version: established.version,
                        subject: established.subject.as_deref(),
                    }),
            },
            EntryKind::Transaction {
                tag,
                len,
                reject,
                name,
            } => Line::Transaction {
                tag,
                len,
                reject,
                name: match name {
                    NameField::None => None,
                    NameField::Session => self.session.name().map(str::as_bytes),
                    NameField::Refused(i) => names.get(i).map(|n| &n[..]),
                },
            },
            EntryKind::Close => Line::Close {
                reason: self.close_reason.unwrap_or(CloseReason::Error),
                error: self.close_error.as_deref(),
            },
        })
    }

    /// Handle every complete transaction at the start of `data`; returns the
    /// bytes consumed. Stops at an unfinished transaction, at the end of the
    /// session, and while a password is being verified.
    fn process(
        &mut self,
        data: &[u8],
        iteration: &mut Iteration,
        verifier: &mut impl Verifier,
    ) -> usize {
        let mut pos = 0;
        let now = SessionInstant::from(iteration.now);
        while self.phase == Phase::Open {
            let Some(input) = data.get(pos..).filter(|rest| !rest.is_empty()) else {
                break;
            };
            let (transaction, consumed) = match self.session.decode_at(input, now) {
                Ok(Decoded::Partial { .. }) => break,
                Ok(Decoded::Complete {
                    transaction,
                    consumed,
                }) => (transaction, consumed),
                Err(reject) => {
                    let about = About {
                        tag: peek_header(input).map_or(0, |header| header.tag),
                        len: rejected_len(&reject),
                        name: NameField::None,
                    };
                    self.reply(iteration, about, Outcome::Rejected(reject));
                    break;
                }
            };
            pos += consumed;
            let about = About {
                tag: transaction.tag().as_byte(),
                len: payload_len(&transaction),
                name: NameField::None,
            };
            let payload = transaction.payload();
            match self.session.receive(transaction) {
                Action::Reply(outcome) => {
                    let unproven = outcome == Outcome::Named && !self.certificate_proves_name();
                    let outcome = if unproven {
                        self.session.fail(Reject::AuthenticationFailed)
                    } else {
                        outcome
                    };
                    let name = match outcome {
                        Outcome::Named => NameField::Session,
                        Outcome::Rejected(Reject::InvalidName | Reject::AuthenticationFailed)
                            if unproven || outcome == Outcome::Rejected(Reject::InvalidName) =>
                        {
                            iteration.names.push(payload.into());
                            NameField::Refused(iteration.names.len() - 1)
                        }
                        _ => NameField::None,
                    };
                    self.reply(iteration, About { name, ..about }, outcome);
                    if unproven {
                        self.close_error =
                            Some("the client certificate does not prove this NAME".into());
                    }
                }
                Action::Log { name, message } => {
                    let mark = HeldMark {
                        status: self.out.len(),
                        entry: iteration.entries.len(),
                    };
                    if self.batch.is_none() {
                        self.batch = Some(mark);
                        iteration.batch_slots.push(self.slot);
                    }
                    self.messages += 1;
                    iteration.push_record(self.slot, self.id, self.messages, mark, name, message);
                    // Held back until the batch is written (see `commit`).
                    self.push_status(iteration, Status::Accepted);
                    iteration.entries.push(Entry {
                        slot: self.slot,
                        kind: EntryKind::Transaction {
                            tag: Tag::Message.as_byte(),
                            len: about.len,
                            reject: None,
                            name: NameField::None,
                        },
                    });
                }
                Action::Verify { password, .. } => {
                    if let Some(answer) = self.verify(iteration.now, password, verifier) {
                        self.finish_verification(iteration, answer);
                    }
                }
            }
        }
        pos
    }

    /// Hand the password to the verifier: its answer if given at once;
    /// `None` while the connection waits (`Phase::Verifying` while the pool
    /// has it, `Phase::VerifyDelayed` with the password held until the
    /// back-off passes).
    fn verify(
        &mut self,
        now: Instant,
        password: &[u8],
        verifier: &mut impl Verifier,
    ) -> Option<Answer> {
        let verification = verifier.verify(VerifyRequest {
            slot: self.slot,
            connection: self.id,
            ip: self.ip,
            name: self.session.name().unwrap_or_default(),
            password,
            now,
        });
        match verification {
            Verification::Answered(answer) => Some(answer),
            Verification::Submitted => {
                self.phase = Phase::Verifying;
                None
            }
            Verification::Delayed { until } => {
                self.password = Some(password.into());
                self.phase = Phase::VerifyDelayed { at: until };
                None
            }
        }
    }

    /// Apply a password verdict and answer the PASSWORD.
    fn finish_verification(&mut self, iteration: &mut Iteration, answer: Answer) {
        let waited = self.phase != Phase::Open;
        self.phase = Phase::Open;
        self.drop_password();
        let now = iteration.now.into();
        let outcome = match answer {
            Answer::Accepted => self.session.verified_at(true, now),
            Answer::Refused => self.session.verified_at(false, now),
            Answer::Overloaded => self.session.fail(Reject::Overload),
        };
        // PASSWORD lines never show the length (see `push_line`).
        let about = About {
            tag: Tag::Password.as_byte(),
            len: None,
            name: NameField::None,
        };
        self.reply(iteration, about, outcome);
        if waited && self.phase == Phase::Open {
            // Handle what was pipelined behind the password, then read on.
            self.resume = !self.leftover.is_empty();
            iteration.ready.push(self.slot);
        }
    }

    /// Queue a status byte and log the transaction; end the session if the outcome does.
    fn reply(&mut self, iteration: &mut Iteration, about: About, outcome: Outcome) {
        self.push_status(iteration, outcome.status());
        let reject = match outcome {
            Outcome::Rejected(reject) => Some(reject),
            _ => None,
        };
        iteration.entries.push(Entry {
            slot: self.slot,
            kind: EntryKind::Transaction {
                tag: about.tag,
                len: about.len,
                reject,
                name: about.name,
            },
        });
        let (reason, count) = match outcome {
            Outcome::Closed => (CloseReason::Close, None),
            Outcome::Rejected(Reject::Timeout) => {
                (CloseReason::Timeout, Some(&mut iteration.counts.timeouts))
            }
            Outcome::Rejected(Reject::Overload) => (
                CloseReason::Overload,
                Some(&mut iteration.counts.overloaded),
            ),
            Outcome::Rejected(_) => (CloseReason::Rejected, Some(&mut iteration.counts.rejected)),
            _ => return,
        };
        if let Some(count) = count {
            *count += 1;
        }
        self.begin_close(iteration, reason, None);
    }

    /// Queue a status byte; a 0x00 is held back until the commit (its entry
    /// must be the next one pushed).
    fn push_status(&mut self, iteration: &mut Iteration, status: Status) {
        if status == Status::Accepted && self.held.is_none() {
            self.held = Some(HeldMark {
                status: self.out.len(),
                entry: iteration.entries.len(),
            });
            iteration.held.push(self.slot);
        }
        self.out.push(status.as_byte());
        self.queue(iteration);
    }

    /// End the session (once): log why, and let the event loop send what
    /// is left and close.
    fn begin_close(
        &mut self,
        iteration: &mut Iteration,
        reason: CloseReason,
        error: Option<io::Error>,
    ) {
        let text = error.map(|e| e.to_string().into_boxed_str());
        self.end(iteration, reason, text);
    }

    /// [`begin_close`](Self::begin_close) with the error as text.
    fn end(&mut self, iteration: &mut Iteration, reason: CloseReason, error: Option<Box<str>>) {
        if matches!(self.phase, Phase::Closing { .. } | Phase::Dead) {
            return;
        }
        if let Some(e) = &error {
            debug!("connection {}: {e}", self.id);
        }
        self.phase = Phase::Closing { linger_until: None };
        self.close_reason = Some(reason);
        self.close_error = error;
        self.drop_password();
        self.leftover = Vec::new();
        iteration.entries.push(Entry {
            slot: self.slot,
            kind: EntryKind::Close,
        });
        self.queue(iteration);
    }

    /// Whether the NAME just accepted may be used: always, unless
    /// `--tls-require-cert-name` asks that the client certificate prove it.
    fn certificate_proves_name(&self) -> bool {
        let Some(tls) = self.tls.as_ref().filter(|tls| tls.require_cert_name) else {
            return true;
        };
        let name = self.session.name().unwrap_or_default();
        tls.established
            .as_ref()
            .is_some_and(|established| established.names.iter().any(|n| **n == *name))
    }

    /// Forget a held password, overwriting it first.
    fn drop_password(&mut self) {
        if let Some(mut password) = self.password.take() {
            password.fill(0);
            std::hint::black_box(&password);
        }
    }
}

/// The announced length a rejection was about, for the log.
fn rejected_len(reject: &Reject) -> Option<u16> {
    match reject {
        Reject::Frame(FrameError::ZeroLength(_)) => Some(0),
        Reject::Frame(FrameError::TooLong { length, .. }) => Some(*length),
        _ => None,
    }
}

fn payload_len(transaction: &Transaction<'_>) -> Option<u16> {
    match transaction {
        Transaction::Close => None,
        other => u16::try_from(other.payload().len()).ok(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::transaction_log::push_line;

    /// NAME "alice", PASSWORD "pw".
    pub(crate) const LOGIN: &[u8] = b"\x01\x05\x00alice\x02\x02\x00pw";
    const SLOT: usize = 3;

    pub(crate) fn message(text: &[u8]) -> Vec<u8> {
        let len = u16::try_from(text.len()).unwrap().to_le_bytes();
        [&[3, len[0], len[1]][..], text].concat()
    }

    /// Answers every password the same way, remembering what it was asked.
    pub(crate) struct Fake {
        pub(crate) answer: Verification,
        pub(crate) asked: Vec<(String, Vec<u8>)>,
    }

    impl Fake {
        pub(crate) fn new(answer: Verification) -> Self {
            Fake {
                answer,
                asked: Vec::new(),
            }
        }
    }

    impl Verifier for Fake {
        fn verify(&mut self, request: VerifyRequest<'_>) -> Verification {
            self.asked
                .push((request.name.to_owned(), request.password.to_vec()));
            self.answer
        }
    }

    pub(crate) fn accepting() -> Fake {
        Fake::new(Verification::Answered(Answer::Accepted))
    }

    fn start() -> (Connection, Iteration) {
        let mut iteration = Iteration::new(Instant::now());
        iteration.start(Instant::now());
        let peer = "127.0.0.1:5000".parse().unwrap();
        let conn = Connection::open(7, SLOT, peer, &Timeouts::default(), &mut iteration);
        (conn, iteration)
    }

    /// What the event loop does with bytes just read.
    pub(crate) fn feed(
        conn: &mut Connection,
        iteration: &mut Iteration,
        bytes: &[u8],
        verifier: &mut impl Verifier,
    ) {
        let mut buffer = vec![0u8; (1 << 18) + bytes.len()];
        let kept = conn.restore_unhandled(&mut buffer).unwrap();
        buffer[kept..kept + bytes.len()].copy_from_slice(bytes);
        conn.receive(&buffer[..kept + bytes.len()], iteration, verifier);
    }

    /// The iteration's lines for this connection, without timestamps.
    fn lines(conn: &Connection, iteration: &Iteration) -> Vec<String> {
        let mut out = Vec::new();
        for (index, entry) in iteration.entries.iter().enumerate() {
            assert_eq!(entry.slot, SLOT);
            if let Some(line) = conn.line(index, entry.kind, iteration.number, &iteration.names) {
                let mut text = Vec::new();
                push_line(&mut text, b"T", conn.fields(), line);
                let text = String::from_utf8(text).unwrap();
                let text = text.strip_prefix("T conn=7 peer=127.0.0.1:5000 ").unwrap();
                out.push(text.trim_end().to_owned());
            }
        }
        out
    }

    #[test]
    fn a_login_messages_and_close_in_one_read() {
        let (mut conn, mut it) = start();
        let input = [LOGIN, &message(b"hi"), &message(b"a\tb"), b"\x04"].concat();
        feed(&mut conn, &mut it, &input, &mut accepting());
        assert_eq!(conn.unsent(), [0, 0, 0, 0, 0]);
        assert_eq!(it.batch, b"[alice]: hi\r\n[alice]: a\\tb\r\n");
        assert_eq!(it.batch_records, 2);
        assert_eq!(
            (&it.held[..], &it.batch_slots[..]),
            (&[SLOT][..], &[SLOT][..])
        );
        assert_eq!(it.queued, [SLOT], "queued once");
        assert_eq!(
            lines(&conn, &it),
            [
                "event=open",
                "tag=NAME len=5 outcome=ok name=\"alice\"",
                "tag=PASSWORD len=- outcome=ok",
                "tag=MESSAGE len=2 outcome=ok",
                "tag=MESSAGE len=3 outcome=ok",
                "tag=CLOSE len=- outcome=ok",
                "event=close reason=close",
            ]
        );
        assert_eq!(conn.phase(), Phase::Closing { linger_until: None });
        assert_eq!(conn.deadline(), None);
    }

    #[test]
    fn any_chunking_gives_the_same_answers() {
        let input = [LOGIN, &message(b"one"), &message(&[b'x'; 300]), b"\x04"].concat();
        let (mut whole, mut whole_it) = start();
        feed(&mut whole, &mut whole_it, &input, &mut accepting());
        for chunk in [1, 2, 3, 7, 100] {
            let (mut conn, mut it) = start();
            for bytes in input.chunks(chunk) {
                feed(&mut conn, &mut it, bytes, &mut accepting());
            }
            assert_eq!(conn.unsent(), whole.unsent(), "chunks of {chunk}");
            assert_eq!(it.batch, whole_it.batch);
            assert_eq!(lines(&conn, &it), lines(&whole, &whole_it));
        }
    }

    #[test]
    fn a_rejection_answers_0xff_logs_what_was_announced_and_closes() {
        for (input, line) in [
            (&b"\x7f\x05\x00"[..], "tag=0x7f len=- outcome=unknown-tag"),
            (b"\x01\x2c\x01", "tag=NAME len=300 outcome=too-long"),
            (b"\x01\x00\x00", "tag=NAME len=0 outcome=zero-length"),
            (b"\x03\x01", "tag=MESSAGE len=- outcome=unexpected-tag"),
            (
                b"\x01\x03\x00a]b",
                "tag=NAME len=3 outcome=invalid-name name=\"a]b\"",
            ),
        ] {
            let (mut conn, mut it) = start();
            feed(&mut conn, &mut it, input, &mut accepting());
            assert_eq!(conn.unsent(), [0xFF]);
            assert_eq!(
                lines(&conn, &it),
                ["event=open", line, "event=close reason=rejected"]
            );
            assert_eq!(it.counts.rejected, 1);
            assert!(it.held.is_empty() && !conn.reads());
        }
    }

    #[test]
    fn the_frame_timeout_runs_from_a_transactions_first_byte_and_logs_its_length() {
        let timeouts = Timeouts::default();
        let (mut conn, mut it) = start();
        let started = it.now;
        feed(&mut conn, &mut it, LOGIN, &mut accepting());
        assert_eq!(conn.deadline(), Some(started + timeouts.idle));
        it.start(started + Duration::from_secs(1));
        feed(&mut conn, &mut it, b"\x03\x05", &mut accepting());
        let since = it.now;
        assert_eq!(conn.deadline(), Some(since + timeouts.frame));
        // More bytes of the same transaction do not move it.
        it.start(since + Duration::from_secs(2));
        feed(&mut conn, &mut it, b"\x00ab", &mut accepting());
        assert_eq!(conn.deadline(), Some(since + timeouts.frame));
        conn.expire(&mut it, &mut accepting());
        assert_eq!(conn.unsent(), [0, 0, 0xFF]);
        assert_eq!(
            &lines(&conn, &it)[3..],
            [
                "tag=MESSAGE len=5 outcome=timeout",
                "event=close reason=timeout"
            ]
        );
        assert_eq!(it.counts.timeouts, 1);
    }

    #[test]
    fn an_idle_timeout_logs_only_the_close() {
        let (mut conn, mut it) = start();
        feed(&mut conn, &mut it, LOGIN, &mut accepting());
        conn.expire(&mut it, &mut accepting());
        assert_eq!(conn.unsent(), [0, 0, 0xFF]);
        assert_eq!(&lines(&conn, &it)[3..], ["event=close reason=timeout"]);
        assert_eq!(it.counts.timeouts, 1);
    }

    #[test]
    fn a_password_on_the_pool_holds_back_what_follows_it() {
        let (mut conn, mut it) = start();
        let mut pool = Fake::new(Verification::Submitted);
        feed(
            &mut conn,
            &mut it,
            &[LOGIN, &message(b"m")].concat(),
            &mut pool,
        );
        assert_eq!(pool.asked, [("alice".to_owned(), b"pw".to_vec())]);
        assert_eq!(conn.phase(), Phase::Verifying);
        assert_eq!(conn.unsent(), [0], "NAME only");
        assert_eq!(conn.deadline(), None);
        assert!(!conn.reads() && !conn.between_transactions());
        let decision = Decision::Verified {
            accepted: true,
            not_before: None,
        };
        conn.decided(decision, &mut it);
        assert_eq!(conn.unsent(), [0, 0]);
        assert_eq!(it.ready, [SLOT], "read again at once");
        assert!(conn.take_resume() && !conn.take_resume());
        feed(&mut conn, &mut it, b"", &mut pool);
        assert_eq!(conn.unsent(), [0, 0, 0]);
        assert_eq!(it.batch, b"[alice]: m\r\n");
    }

    #[test]
    fn a_cheap_refusal_is_answered_no_sooner_than_not_before() {
        let (mut conn, mut it) = start();
        feed(
            &mut conn,
            &mut it,
            LOGIN,
            &mut Fake::new(Verification::Submitted),
        );
        let at = it.now + Duration::from_millis(40);
        let decision = Decision::Verified {
            accepted: false,
            not_before: Some(at),
        };
        conn.decided(decision, &mut it);
        assert_eq!(conn.phase(), Phase::Refusing { at });
        assert_eq!(conn.deadline(), Some(at));
        assert_eq!(conn.unsent(), [0]);
        conn.expire(&mut it, &mut accepting());
        assert_eq!(conn.unsent(), [0, 0xFF]);
        assert_eq!(
            &lines(&conn, &it)[2..],
            [
                "tag=PASSWORD len=- outcome=auth-failed",
                "event=close reason=rejected"
            ]
        );
    }

    #[test]
    fn a_backed_off_password_is_asked_again_at_its_time_and_an_overload_closes() {
        let (mut conn, mut it) = start();
        let until = it.now + Duration::from_millis(250);
        let mut backoff = Fake::new(Verification::Delayed { until });
        feed(&mut conn, &mut it, LOGIN, &mut backoff);
        assert_eq!(conn.phase(), Phase::VerifyDelayed { at: until });
        assert_eq!(conn.deadline(), Some(until));
        let mut full = Fake::new(Verification::Answered(Answer::Overloaded));
        conn.expire(&mut it, &mut full);
        assert_eq!(full.asked, [("alice".to_owned(), b"pw".to_vec())]);
        assert_eq!(conn.unsent(), [0, 0xFF]);
        assert_eq!(
            &lines(&conn, &it)[2..],
            [
                "tag=PASSWORD len=- outcome=overload",
                "event=close reason=overload"
            ]
        );
        assert_eq!(it.counts.overloaded, 1);
    }

    #[test]
    fn a_decision_for_a_connection_not_waiting_for_one_changes_nothing() {
        let (mut conn, mut it) = start();
        feed(&mut conn, &mut it, LOGIN, &mut accepting());
        conn.decided(Decision::Overloaded, &mut it);
        assert_eq!((conn.phase(), conn.unsent()), (Phase::Open, &[0, 0][..]));
    }

    #[test]
    fn a_failed_commit_answers_0xff_at_the_first_0x00_and_cuts_what_followed() {
        let (mut conn, mut it) = start();
        feed(
            &mut conn,
            &mut it,
            &[LOGIN, &message(b"m"), b"\x04"].concat(),
            &mut accepting(),
        );
        let mark = conn.take_held_mark().unwrap();
        conn.take_back(&mut it, mark);
        assert_eq!(conn.unsent(), [0xFF]);
        assert_eq!(
            lines(&conn, &it),
            [
                "event=open",
                "tag=NAME len=5 outcome=write-failed name=\"alice\"",
                "event=close reason=rejected",
            ]
        );
        assert_eq!(it.counts.rejected, 1);
    }

    #[test]
    fn lost_records_keep_the_login_held_for_the_lines() {
        let (mut conn, mut it) = start();
        feed(
            &mut conn,
            &mut it,
            &[LOGIN, &message(b"m"), &message(b"n")].concat(),
            &mut accepting(),
        );
        let mark = conn.take_batch_mark().unwrap();
        conn.records_lost(&mut it, mark);
        assert_eq!(conn.unsent(), [0, 0, 0xFF]);
        assert!(conn.holds(), "NAME's 0x00 is still held");
        assert_eq!(
            &lines(&conn, &it)[3..],
            [
                "tag=MESSAGE len=1 outcome=write-failed",
                "event=close reason=rejected"
            ]
        );
    }

    #[test]
    fn unsent_statuses_pause_reading_and_a_close_lingers_for_them() {
        let (mut conn, mut it) = start();
        let many = message(b"m").repeat(MAX_UNSENT);
        feed(
            &mut conn,
            &mut it,
            &[LOGIN, &many].concat(),
            &mut accepting(),
        );
        // A read is handled whole; the next read waits for the client.
        assert!(!conn.reads(), "no reading past {MAX_UNSENT} unsent");
        let unsent = conn.unsent().len();
        assert!(!conn.flushed(10, None, &mut it, None));
        assert_eq!(conn.unsent().len(), unsent - 10);
        assert!(conn.reads());
        assert_eq!(it.ready, [SLOT], "read again");
        feed(&mut conn, &mut it, b"\x04", &mut accepting());
        let stop = it.now + Duration::from_secs(1);
        assert!(!conn.flushed(0, None, &mut it, Some(stop)));
        assert_eq!(
            conn.phase(),
            Phase::Closing {
                linger_until: Some(stop)
            }
        );
        let left = conn.unsent().len();
        assert!(
            conn.flushed(left, None, &mut it, Some(stop)),
            "all sent: close"
        );
        conn.closed(&mut it);
        assert_eq!((conn.phase(), &it.dead[..]), (Phase::Dead, &[SLOT][..]));
    }

    #[test]
    fn a_failed_send_closes_with_the_error() {
        let (mut conn, mut it) = start();
        feed(&mut conn, &mut it, LOGIN, &mut accepting());
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(conn.flushed(0, Some(reset), &mut it, None));
        assert!(conn.unsent().is_empty());
        let close = lines(&conn, &it).pop().unwrap();
        assert!(
            close.starts_with("event=close reason=error error="),
            "{close}"
        );
    }

    #[test]
    fn stopping_waits_for_the_transaction_in_progress() {
        let (mut conn, mut it) = start();
        feed(
            &mut conn,
            &mut it,
            &[LOGIN, b"\x03\x05\x00ab"].concat(),
            &mut accepting(),
        );
        conn.stop(&mut it, false);
        assert_eq!(conn.phase(), Phase::Open, "mid-transaction");
        conn.stop(&mut it, true);
        assert_eq!(
            lines(&conn, &it).pop().unwrap(),
            "event=close reason=shutdown"
        );
        let (mut idle, mut it) = start();
        idle.stop(&mut it, false);
        assert_eq!(
            lines(&idle, &it).pop().unwrap(),
            "event=close reason=shutdown"
        );
        assert!(
            idle.flushed(0, None, &mut it, None),
            "nothing to send: close"
        );
    }

    #[test]
    fn eof_mid_transaction_says_how_much_was_dropped() {
        let (mut conn, mut it) = start();
        feed(
            &mut conn,
            &mut it,
            &[LOGIN, b"\x03\x05\x00ab"].concat(),
            &mut accepting(),
        );
        conn.peer_closed(&mut it);
        assert_eq!(
            lines(&conn, &it).pop().unwrap(),
            "event=close reason=eof partial=5"
        );
        assert_eq!(conn.unsent(), [0, 0]);
    }
}
