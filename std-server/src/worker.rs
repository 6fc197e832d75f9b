//! One event-loop thread of the framed server.
//!
//! Each iteration: wait for readiness (or a timer, or mail); read every
//! ready connection into one large buffer and hand every complete
//! transaction to its session; escape each accepted MESSAGE's record into
//! the iteration's batch and note a log entry for every event, holding
//! every status byte back; then
//!
//! 1. commit: write the batch to `messages.log` and the entries' lines to
//!    `transactions.log`, one `write(2)` each under the journal's lock
//!    (and, with `--fsync`, wait for the group commit of both); if either
//!    fails, neither remains. If the records failed, each affected
//!    connection's first MESSAGE is answered 0xFF (nothing after it) and
//!    the lines are committed again; if the lines failed, the first 0x00
//!    of each connection that had one held becomes 0xFF, nothing after it
//!    is answered, and the lines saying so are written best effort,
//! 2. send each connection's status bytes with one write,
//! 3. drop the connections that ended.
//!
//! So a 0x00 never leaves before its record and its line are written, and
//! a line never says `ok` for a record that is not in the log.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Interest, Poll, Token};
use msglog_core::{
    write_record, Action, Decoded, FrameError, Outcome, Reject, Status, Tag, Transaction,
};

use crate::auth::{Job, Overloaded, Policy};
use crate::connection::{Connection, HeldMark, Phase, ServerSession};
use crate::journal::CommitError;
use crate::mailbox::{Accepted, Decision, Inbox, Mailbox, Verdict};
use crate::report::RateLimit;
use crate::shared::{Counts, Shared};
use crate::slab::Slab;
use crate::timers::Timers;
use crate::timestamp::Clock;
use crate::transaction_log::{push_line, CloseReason, Line};

/// Bytes read from a socket at once.
const READ_BUFFER: usize = 256 * 1024;
/// Records of one iteration; past this, connections wait for the next one.
const MAX_BATCH: usize = 1024 * 1024;
/// Unsent status bytes at which a connection is no longer read from.
const MAX_UNSENT: usize = 64 * 1024;
/// Reads of one connection per iteration, for fairness.
const READS_PER_TURN: usize = 4;
/// How long a closing connection may take to accept its last status bytes.
const LINGER: Duration = Duration::from_secs(5);
/// Bytes a closing connection may still send that are read and discarded
/// (so the close is a FIN, not a reset that could destroy the last status).
const DRAIN_LIMIT: usize = 1024 * 1024;
/// Token of the mailbox's waker.
pub const WAKER: Token = Token(usize::MAX);

/// A transaction-log entry of this iteration, formatted after the commit.
#[derive(Debug, Clone, Copy)]
struct Entry {
    slot: usize,
    kind: EntryKind,
}

#[derive(Debug, Clone, Copy)]
enum EntryKind {
    Open,
    Transaction {
        tag: u8,
        len: Option<u16>,
        reject: Option<Reject>,
        name: NameField,
    },
    Close,
}

/// Which name a NAME line shows.
#[derive(Debug, Clone, Copy)]
enum NameField {
    None,
    /// The session's (accepted) name.
    Session,
    /// A refused name, kept in `Turn::names`.
    Refused(usize),
}

/// Everything an iteration produces before it is committed.
#[derive(Debug, Default)]
struct Turn {
    batch: Vec<u8>,
    batch_records: u64,
    /// Connections with records in `batch`.
    batch_slots: Vec<usize>,
    /// Connections with a 0x00 held back until the commit.
    held: Vec<usize>,
    entries: Vec<Entry>,
    names: Vec<Box<[u8]>>,
    /// Connections with status bytes to send or ending.
    queued: Vec<usize>,
    /// Connections to read again without waiting for an event.
    ready: Vec<usize>,
    dead: Vec<usize>,
    text: Vec<u8>,
    counts: Counts,
}

/// What the per-connection code needs from the worker.
struct Env {
    shared: Arc<Shared>,
    mailbox: Arc<Mailbox>,
    timers: Timers,
    now: Instant,
    iteration: u64,
    /// Set once asked to stop: the grace deadline.
    stopping: Option<Instant>,
    clock: Clock,
    write_errors: RateLimit,
}

pub struct Worker {
    poll: Poll,
    conns: Slab<Connection>,
    buffer: Box<[u8]>,
    turn: Turn,
    env: Env,
    inbox: Inbox,
}

impl Worker {
    pub fn new(poll: Poll, shared: Arc<Shared>, mailbox: Arc<Mailbox>) -> Self {
        Worker {
            poll,
            conns: Slab::default(),
            buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            turn: Turn::default(),
            env: Env {
                shared,
                mailbox,
                timers: Timers::default(),
                now: Instant::now(),
                iteration: 0,
                stopping: None,
                clock: Clock::new(),
                write_errors: RateLimit::new(Duration::from_secs(5)),
            },
            inbox: Inbox::default(),
        }
    }

    /// Serve until asked to stop and every connection has ended.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.env.now = Instant::now();
            self.env.clock.update(SystemTime::now());
            self.env.iteration += 1;
            for event in events.iter() {
                match event.token() {
                    WAKER => self.take_mail(),
                    Token(slot) => {
                        let hangup = event.is_read_closed() || event.is_error();
                        self.on_event(
                            slot,
                            event.is_readable() || hangup,
                            event.is_writable(),
                            hangup,
                        );
                    }
                }
            }
            // Connections cut short last time; pumping may queue some again.
            let mut ready = std::mem::take(&mut self.turn.ready);
            for &slot in &ready {
                self.pump(slot, false);
            }
            if self.turn.ready.is_empty() {
                ready.clear();
                self.turn.ready = ready;
            }
            self.expire_timers();
            if self.env.stopping.is_some() {
                self.close_for_shutdown();
            }
            // Log lines before answers: a client that saw its statuses or
            // EOF, then connects again, finds its earlier lines first.
            self.commit();
            self.send_statuses();
            // Closes caused by a failed send, if any.
            self.write_transactions();
            self.remove_dead();
            self.env.shared.stats.add(&mut self.turn.counts);
            if self.env.stopping.is_some() && self.conns.is_empty() {
                return Ok(());
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.turn.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = match (self.env.timers.next(), self.env.stopping) {
            (Some(timer), Some(stop)) => Some(timer.min(stop)),
            (timer, stop) => timer.or(stop),
        }?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    fn take_mail(&mut self) {
        let mut inbox = std::mem::take(&mut self.inbox);
        self.env.mailbox.take(&mut inbox);
        for accepted in inbox.accepted.drain(..) {
            self.register(accepted);
        }
        for verdict in inbox.verdicts.drain(..) {
            self.on_verdict(verdict);
        }
        if let Some(deadline) = inbox.stop.take() {
            if self.env.stopping.is_none() {
                // Handle what has already arrived before closing at a transaction boundary.
                for (slot, conn) in self.conns.iter_mut() {
                    if conn.phase == Phase::Open {
                        self.turn.ready.push(slot);
                    }
                }
            }
            self.env.stopping = Some(self.env.stopping.map_or(deadline, |d| d.min(deadline)));
        }
        self.inbox = inbox;
    }

    fn register(&mut self, accepted: Accepted) {
        let Accepted {
            mut stream,
            peer,
            id,
        } = accepted;
        let slot = self.conns.vacant_key();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            error!("cannot watch connection {id} from {peer}: {e}");
            self.env
                .shared
                .open
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        // Status bytes are tiny and must not wait for Nagle's algorithm.
        if let Err(e) = stream.set_nodelay(true) {
            debug!("connection {id}: cannot set TCP_NODELAY: {e}");
        }
        let conn = Connection::new(id, stream, peer, self.env.now);
        let slot = self.conns.insert(conn);
        self.turn.entries.push(Entry {
            slot,
            kind: EntryKind::Open,
        });
        if let Some(conn) = self.conns.get_mut(slot) {
            self.env.schedule(slot, conn);
        }
    }

    fn on_event(&mut self, slot: usize, readable: bool, writable: bool, hangup: bool) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        match conn.phase {
            Phase::Dead => {}
            Phase::Closing { .. } => {
                if writable || hangup {
                    self.turn.queue(slot, conn);
                }
            }
            Phase::Open
            | Phase::Verifying
            | Phase::VerifyDelayed { .. }
            | Phase::Refusing { .. } => {
                if writable && !conn.out.is_empty() {
                    self.turn.queue(slot, conn);
                }
                if readable {
                    // A short read drains the socket, unless the peer also
                    // closed: then only reading on to EOF sees that.
                    self.pump(slot, !hangup);
                }
            }
        }
    }

    /// Read from a connection and handle what arrived, as far as its state,
    /// its unsent statuses and this iteration's budget allow.
    fn pump(&mut self, slot: usize, short_read_drains: bool) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let mut reads = 0;
        loop {
            if conn.phase != Phase::Open || conn.out.len() >= MAX_UNSENT {
                return;
            }
            if self.turn.batch.len() >= MAX_BATCH {
                self.turn.ready.push(slot);
                return;
            }
            let kept = conn.leftover.len();
            if kept >= READ_BUFFER && !conn.resume {
                // Cannot happen: an unfinished transaction is shorter than a frame.
                let error = io::Error::other("receive buffer overflow");
                self.turn
                    .begin_close(&mut self.env, slot, conn, CloseReason::Error, Some(error));
                return;
            }
            self.buffer[..kept].copy_from_slice(&conn.leftover);
            let read = if conn.resume {
                conn.resume = false;
                None
            } else {
                match conn.stream.read(&mut self.buffer[kept..]) {
                    Ok(0) => {
                        let partial = conn.leftover.len();
                        self.turn.begin_close(
                            &mut self.env,
                            slot,
                            conn,
                            CloseReason::Eof { partial },
                            None,
                        );
                        return;
                    }
                    Ok(n) => Some(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.turn.begin_close(
                            &mut self.env,
                            slot,
                            conn,
                            CloseReason::Error,
                            Some(e),
                        );
                        return;
                    }
                }
            };
            let filled = kept + read.unwrap_or(0);
            let data = &self.buffer[..filled];
            let consumed = self.turn.process(&mut self.env, slot, conn, data);
            conn.leftover.clear();
            match conn.phase {
                Phase::Open => {
                    conn.leftover.extend_from_slice(&data[consumed..]);
                    if conn.leftover.is_empty() {
                        conn.partial_since = None;
                    } else if consumed > 0 || conn.partial_since.is_none() {
                        // A new transaction began in this read.
                        conn.partial_since = Some(self.env.now);
                    }
                }
                Phase::Verifying | Phase::VerifyDelayed { .. } | Phase::Refusing { .. } => {
                    conn.leftover.extend_from_slice(&data[consumed..]);
                    conn.partial_since = None;
                }
                Phase::Closing { .. } | Phase::Dead => {}
            }
            if conn.leftover.is_empty() && conn.leftover.capacity() > 4096 {
                conn.leftover = Vec::new();
            }
            self.env.schedule(slot, conn);
            let Some(n) = read else {
                continue;
            };
            if short_read_drains && n < READ_BUFFER - kept {
                return;
            }
            reads += 1;
            if reads >= READS_PER_TURN {
                self.turn.ready.push(slot);
                return;
            }
        }
    }

    fn on_verdict(&mut self, verdict: Verdict) {
        let Verdict {
            slot,
            connection,
            decision,
        } = verdict;
        let conn = self
            .conns
            .get_mut(slot)
            .filter(|conn| conn.id == connection && conn.phase == Phase::Verifying);
        match (conn, decision) {
            (
                Some(conn),
                Decision::Verified {
                    accepted: false,
                    not_before: Some(at),
                },
            ) if at > self.env.now => {
                conn.phase = Phase::Refusing { at };
                self.env.schedule(slot, conn);
            }
            (Some(conn), Decision::Verified { accepted, .. }) => {
                let answer = if accepted {
                    Answer::Accepted
                } else {
                    Answer::Refused
                };
                self.turn
                    .finish_verification(&mut self.env, slot, conn, answer);
            }
            (Some(conn), Decision::Overloaded) => {
                self.turn
                    .finish_verification(&mut self.env, slot, conn, Answer::Overloaded);
            }
            (Some(conn), Decision::Deferred { wait, password }) => {
                conn.password = Some(password);
                conn.phase = Phase::VerifyDelayed {
                    at: self.env.now + wait,
                };
                self.env.schedule(slot, conn);
            }
            // The connection is gone.
            (None, Decision::Deferred { mut password, .. }) => {
                password.fill(0);
                std::hint::black_box(&password);
            }
            (None, Decision::Verified { .. } | Decision::Overloaded) => {}
        }
    }

    fn expire_timers(&mut self) {
        let now = self.env.now;
        while let Some((at, slot, id)) = self.env.timers.pop_due(now) {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.id != id || conn.timer_at != Some(at) {
                continue;
            }
            conn.timer_at = None;
            match self.env.deadline(conn) {
                None => {}
                Some(deadline) if deadline > now => self.env.schedule(slot, conn),
                Some(_) => self.turn.expire(&mut self.env, slot, conn),
            }
        }
    }

    /// While stopping: end every connection at a transaction boundary, and
    /// all of them once the grace period is over.
    fn close_for_shutdown(&mut self) {
        let Some(deadline) = self.env.stopping else {
            return;
        };
        let over = self.env.now >= deadline;
        for (slot, conn) in self.conns.iter_mut() {
            match conn.phase {
                Phase::Open if over || (conn.leftover.is_empty() && !conn.resume) => {
                    self.turn
                        .begin_close(&mut self.env, slot, conn, CloseReason::Shutdown, None);
                }
                Phase::Verifying | Phase::VerifyDelayed { .. } | Phase::Refusing { .. } if over => {
                    self.turn
                        .begin_close(&mut self.env, slot, conn, CloseReason::Shutdown, None);
                }
                Phase::Closing { .. } if over => {
                    conn.phase = Phase::Dead;
                    self.turn.dead.push(slot);
                }
                _ => {}
            }
        }
    }

    /// Commit the iteration's records and lines together. If the records
    /// cannot be written, each affected connection is answered 0xFF at its
    /// first MESSAGE and the lines are committed again without what that
    /// cut; if lines cannot be written (or synced), every connection with a
    /// 0x00 held is answered 0xFF at its first one, and the lines saying so
    /// are written best effort.
    fn commit(&mut self) {
        let turn = &mut self.turn;
        if turn.entries.is_empty() {
            return;
        }
        let env = &mut self.env;
        let shared = Arc::clone(&env.shared);
        let journal = &shared.journal;
        turn.format_lines(&self.conns, env, |_| true);
        let mut result = journal.commit(
            &turn.batch,
            turn.batch_records,
            &turn.text,
            !turn.held.is_empty(),
        );
        if let Err(e) = &result {
            turn.report_failure(env, e, turn.batch_records);
        }
        let records = std::mem::take(&mut turn.batch_slots);
        if result.is_ok() {
            turn.counts.messages += turn.batch_records;
        } else {
            turn.counts.write_failures += turn.batch_records;
        }
        for &slot in &records {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            let Some(mark) = conn.batch.take() else {
                continue;
            };
            if matches!(result, Err(CommitError::Records { .. })) {
                if conn.held.is_some_and(|held| held.status >= mark.status) {
                    conn.held = None;
                }
                turn.take_back(env, slot, conn, mark);
            }
        }
        turn.batch_slots = records;
        if matches!(result, Err(CommitError::Records { .. })) {
            // Nothing was written: the lines again, with the 0xFF answers,
            // for the 0x00s (NAME, PASSWORD) that came before a first MESSAGE.
            turn.held
                .retain(|&slot| self.conns.get(slot).is_some_and(|c| c.held.is_some()));
            turn.text.clear();
            turn.format_lines(&self.conns, env, |_| true);
            result = journal.commit(&[], 0, &turn.text, !turn.held.is_empty());
            if let Err(e) = &result {
                turn.report_failure(env, e, 0);
            }
        }
        turn.text.clear();
        let logged = turn.entries.len();
        let mut rewritten = Vec::new();
        let held = std::mem::take(&mut turn.held);
        for &slot in &held {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            let Some(mark) = conn.held.take() else {
                continue;
            };
            if result.is_err() {
                rewritten.push(mark.entry);
                turn.take_back(env, slot, conn, mark);
            }
        }
        if let Err(e) = &result {
            // Best effort: the failure's lines, and every other line of the
            // commit unless it was written (the lines' fdatasync failed).
            let written = matches!(e, CommitError::Sync { .. });
            turn.format_lines(&self.conns, env, |index| {
                !written || index >= logged || rewritten.contains(&index)
            });
            journal.append_lines(&turn.text);
            turn.text.clear();
        }
        turn.end_of_commit(held);
    }

    /// Send every queued connection's status bytes; finish closing connections.
    fn send_statuses(&mut self) {
        let queued = std::mem::take(&mut self.turn.queued);
        for &slot in &queued {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            conn.queued = false;
            let was_full = conn.out.len() >= MAX_UNSENT;
            let failure = flush(conn);
            match conn.phase {
                Phase::Closing { linger_until } => {
                    if conn.out.is_empty() || failure.is_some() {
                        finish_close(conn, &mut self.buffer);
                        self.turn.dead.push(slot);
                    } else if linger_until.is_none() {
                        let mut until = self.env.now + LINGER;
                        if let Some(stop) = self.env.stopping {
                            until = until.min(stop);
                        }
                        conn.phase = Phase::Closing {
                            linger_until: Some(until),
                        };
                        self.env.schedule(slot, conn);
                    }
                }
                Phase::Dead => {}
                Phase::Open
                | Phase::Verifying
                | Phase::VerifyDelayed { .. }
                | Phase::Refusing { .. } => {
                    if let Some(e) = failure {
                        self.turn.begin_close(
                            &mut self.env,
                            slot,
                            conn,
                            CloseReason::Error,
                            Some(e),
                        );
                        conn.queued = false;
                        finish_close(conn, &mut self.buffer);
                        self.turn.dead.push(slot);
                    } else if was_full && conn.out.len() < MAX_UNSENT {
                        // Reading was paused for this client; it reads again.
                        self.turn.ready.push(slot);
                    }
                }
            }
        }
        let mut queued = queued;
        queued.clear();
        // Connections queued while sending (none expected) go next time.
        queued.append(&mut self.turn.queued);
        self.turn.queued = queued;
    }

    /// Lines of closes found while sending (the peer reset): best effort.
    fn write_transactions(&mut self) {
        let turn = &mut self.turn;
        if turn.entries.is_empty() {
            return;
        }
        turn.format_lines(&self.conns, &self.env, |_| true);
        self.env.shared.journal.append_lines(&turn.text);
        turn.text.clear();
        turn.end_of_commit(Vec::new());
    }

    fn remove_dead(&mut self) {
        for slot in self.turn.dead.drain(..) {
            if let Some(conn) = self.conns.get(slot) {
                if conn.phase != Phase::Dead {
                    continue;
                }
            }
            if self.conns.remove(slot).is_some() {
                self.env
                    .shared
                    .open
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// Send as much of the connection's unsent status bytes as the socket takes.
fn flush(conn: &mut Connection) -> Option<io::Error> {
    let mut sent = 0;
    let failure = loop {
        if sent == conn.out.len() {
            break None;
        }
        match conn.stream.write(&conn.out[sent..]) {
            Ok(0) => break Some(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    if failure.is_some() {
        conn.out.clear();
    } else {
        conn.out.drain(..sent);
    }
    if conn.out.is_empty() && conn.out.capacity() > 4096 {
        conn.out = Vec::new();
    }
    failure
}

/// Close the write side, discard what the peer still sends (bounded), and
/// mark the connection dead: its socket is closed when it is removed.
fn finish_close(conn: &mut Connection, scratch: &mut [u8]) {
    let _ = conn.stream.shutdown(Shutdown::Write);
    let mut discarded = 0;
    while discarded < DRAIN_LIMIT {
        match conn.stream.read(scratch) {
            Ok(0) => break,
            Ok(n) => discarded += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    conn.drop_password();
    conn.leftover = Vec::new();
    conn.phase = Phase::Dead;
}

impl Env {
    fn deadline(&self, conn: &Connection) -> Option<Instant> {
        let limits = self.shared.limits;
        conn.deadline(limits.frame_timeout, limits.idle_timeout)
    }

    /// Make sure a timer fires no later than the connection's deadline.
    fn schedule(&mut self, slot: usize, conn: &mut Connection) {
        let Some(deadline) = self.deadline(conn) else {
            return;
        };
        if conn.timer_at.is_none_or(|at| deadline < at) {
            conn.timer_at = Some(deadline);
            self.timers.push(deadline, slot, conn.id);
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

impl Turn {
    /// Format the lines of the entries `include` selects into `text` (none
    /// of those a take-back cut).
    fn format_lines(
        &mut self,
        conns: &Slab<Connection>,
        env: &Env,
        include: impl Fn(usize) -> bool,
    ) {
        let timestamp = env.clock.text();
        for (index, entry) in self.entries.iter().enumerate() {
            if !include(index) {
                continue;
            }
            let Some(conn) = conns.get(entry.slot) else {
                continue;
            };
            if let Some((iteration, cut)) = &conn.cut {
                if *iteration == env.iteration && cut.contains(&index) {
                    continue;
                }
            }
            let line = match entry.kind {
                EntryKind::Open => Line::Open,
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
                        NameField::Session => conn.session.name().map(str::as_bytes),
                        NameField::Refused(i) => self.names.get(i).map(|n| &n[..]),
                    },
                },
                EntryKind::Close => Line::Close {
                    reason: conn.close_reason.unwrap_or(CloseReason::Error),
                    error: conn.close_error.as_deref(),
                },
            };
            push_line(&mut self.text, timestamp, &conn.fields, line);
        }
    }

    /// Say on stderr (rate-limited) what a failed commit did not keep.
    fn report_failure(&self, env: &mut Env, e: &CommitError, records: u64) {
        let Some(suppressed) = env.write_errors.admit(env.now) else {
            return;
        };
        let lines = self.text.iter().filter(|&&b| b == b'\n').count();
        let connections = self.held.len();
        match e {
            CommitError::Records { .. } => error!(
                "{e}: {records} messages not written; {} connections answered 0xFF at their first one ({suppressed} similar errors not shown)",
                self.batch_slots.len()
            ),
            CommitError::Lines { .. } => error!(
                "{e}: {lines} lines and {records} records taken back; {connections} connections answered 0xFF at their first 0x00 of them ({suppressed} similar errors not shown)"
            ),
            CommitError::Sync { .. } => error!(
                "{e}: {connections} connections answered 0xFF at their first 0x00 of it ({suppressed} similar errors not shown)"
            ),
        }
    }

    /// Forget the committed entries and records; keep the buffers (unless huge).
    fn end_of_commit(&mut self, mut held: Vec<usize>) {
        self.entries.clear();
        self.names.clear();
        self.batch.clear();
        self.batch_records = 0;
        self.batch_slots.clear();
        held.clear();
        self.held = held;
        if self.batch.capacity() > 4 * MAX_BATCH {
            self.batch = Vec::new();
        }
        if self.text.capacity() > 4 * MAX_BATCH {
            self.text = Vec::new();
        }
    }

    /// Handle every complete transaction at the start of `data`; returns the
    /// bytes consumed. Stops at an unfinished transaction, at the end of the
    /// session, and while a password is being verified.
    fn process(&mut self, env: &mut Env, slot: usize, conn: &mut Connection, data: &[u8]) -> usize {
        let mut pos = 0;
        while conn.phase == Phase::Open {
            let Some(input) = data.get(pos..).filter(|rest| !rest.is_empty()) else {
                break;
            };
            let first = input[0];
            let (transaction, consumed) = match conn.session.decode(input) {
                Ok(Decoded::Partial { .. }) => break,
                Ok(Decoded::Complete {
                    transaction,
                    consumed,
                }) => (transaction, consumed),
                Err(reject) => {
                    let len = rejected_len(&reject);
                    self.reply(
                        env,
                        slot,
                        conn,
                        first,
                        len,
                        Outcome::Rejected(reject),
                        NameField::None,
                    );
                    break;
                }
            };
            pos += consumed;
            conn.last_active = env.now;
            let len = payload_len(&transaction);
            let payload = transaction.payload();
            match conn.session.receive(transaction) {
                Action::Reply(outcome) => {
                    let name = match outcome {
                        Outcome::Named => NameField::Session,
                        Outcome::Rejected(Reject::InvalidName) => {
                            self.names.push(payload.into());
                            NameField::Refused(self.names.len() - 1)
                        }
                        _ => NameField::None,
                    };
                    self.reply(env, slot, conn, first, len, outcome, name);
                }
                Action::Log { name, message } => {
                    if conn.batch.is_none() {
                        conn.batch = Some(HeldMark {
                            status: conn.out.len(),
                            entry: self.entries.len(),
                        });
                        self.batch_slots.push(slot);
                    }
                    // Writing to a Vec cannot fail.
                    let _ = write_record(&mut self.batch, name, message);
                    self.batch_records += 1;
                    // Held back until the batch is written (see `commit`).
                    self.push_status(slot, conn, Status::Accepted);
                    self.entries.push(Entry {
                        slot,
                        kind: EntryKind::Transaction {
                            tag: Tag::Message.as_byte(),
                            len,
                            reject: None,
                            name: NameField::None,
                        },
                    });
                }
                Action::Verify { password, .. } => {
                    if let Some(answer) = verify(env, slot, conn, password) {
                        self.finish_verification(env, slot, conn, answer);
                    }
                }
            }
        }
        pos
    }

    /// Apply a password verdict and answer the PASSWORD.
    fn finish_verification(
        &mut self,
        env: &mut Env,
        slot: usize,
        conn: &mut Connection,
        answer: Answer,
    ) {
        let waited = conn.phase != Phase::Open;
        conn.phase = Phase::Open;
        conn.drop_password();
        conn.last_active = env.now;
        let outcome = match answer {
            Answer::Accepted => conn.session.verified(true),
            Answer::Refused => conn.session.verified(false),
            Answer::Overloaded => conn.session.fail(Reject::Overload),
        };
        // PASSWORD lines never show the length (see `push_line`).
        self.reply(
            env,
            slot,
            conn,
            Tag::Password.as_byte(),
            None,
            outcome,
            NameField::None,
        );
        if waited && conn.phase == Phase::Open {
            // Handle what was pipelined behind the password, then read on.
            conn.resume = !conn.leftover.is_empty();
            self.ready.push(slot);
        }
        env.schedule(slot, conn);
    }

    /// Queue a status byte and log the transaction; end the session if the outcome does.
    #[allow(clippy::too_many_arguments)]
    fn reply(
        &mut self,
        env: &mut Env,
        slot: usize,
        conn: &mut Connection,
        tag: u8,
        len: Option<u16>,
        outcome: Outcome,
        name: NameField,
    ) {
        self.push_status(slot, conn, outcome.status());
        let reject = match outcome {
            Outcome::Rejected(reject) => Some(reject),
            _ => None,
        };
        self.entries.push(Entry {
            slot,
            kind: EntryKind::Transaction {
                tag,
                len,
                reject,
                name,
            },
        });
        match outcome {
            Outcome::Closed => self.begin_close(env, slot, conn, CloseReason::Close, None),
            Outcome::Rejected(Reject::Timeout) => {
                self.counts.timeouts += 1;
                self.begin_close(env, slot, conn, CloseReason::Timeout, None);
            }
            Outcome::Rejected(Reject::Overload) => {
                self.counts.overloaded += 1;
                self.begin_close(env, slot, conn, CloseReason::Overload, None);
            }
            Outcome::Rejected(_) => {
                self.counts.rejected += 1;
                self.begin_close(env, slot, conn, CloseReason::Rejected, None);
            }
            Outcome::Named | Outcome::Authenticated | Outcome::Logged => {}
        }
    }

    /// Queue a status byte; a 0x00 is held back until the commit (its entry
    /// must be the next one pushed).
    fn push_status(&mut self, slot: usize, conn: &mut Connection, status: Status) {
        if status == Status::Accepted && conn.held.is_none() {
            conn.held = Some(HeldMark {
                status: conn.out.len(),
                entry: self.entries.len(),
            });
            self.held.push(slot);
        }
        conn.out.push(status.as_byte());
        self.queue(slot, conn);
    }

    fn queue(&mut self, slot: usize, conn: &mut Connection) {
        if !conn.queued {
            conn.queued = true;
            self.queued.push(slot);
        }
    }

    /// End the session (once): log why, and let `send_statuses` send what
    /// is left and close.
    fn begin_close(
        &mut self,
        env: &mut Env,
        slot: usize,
        conn: &mut Connection,
        reason: CloseReason,
        error: Option<io::Error>,
    ) {
        if matches!(conn.phase, Phase::Closing { .. } | Phase::Dead) {
            return;
        }
        if let Some(e) = &error {
            debug!("connection {}: {e}", conn.id);
        }
        conn.phase = Phase::Closing { linger_until: None };
        conn.close_reason = Some(reason);
        conn.close_error = error.map(|e| e.to_string().into_boxed_str());
        conn.drop_password();
        conn.leftover = Vec::new();
        conn.partial_since = None;
        self.entries.push(Entry {
            slot,
            kind: EntryKind::Close,
        });
        self.queue(slot, conn);
        env.schedule(slot, conn);
    }

    /// The commit holding this connection's 0x00s was not (durably) written:
    /// the first transaction of it answered 0x00 is answered 0xFF instead,
    /// and nothing after it is answered or logged.
    fn take_back(&mut self, env: &mut Env, slot: usize, conn: &mut Connection, mark: HeldMark) {
        conn.out.truncate(mark.status);
        conn.out.push(Status::Rejected.as_byte());
        if let Some(Entry {
            kind: EntryKind::Transaction { reject, .. },
            ..
        }) = self.entries.get_mut(mark.entry)
        {
            *reject = Some(Reject::SinkFailed);
        }
        let again = conn
            .cut
            .as_ref()
            .is_some_and(|(at, _)| *at == env.iteration);
        conn.cut = Some((env.iteration, mark.entry + 1..self.entries.len()));
        conn.session.fail(Reject::SinkFailed);
        if !again {
            self.counts.rejected += 1;
        }
        // Whatever ended the session before (a pipelined CLOSE, EOF) is superseded.
        if conn.phase != Phase::Dead {
            conn.phase = Phase::Open;
        }
        self.begin_close(env, slot, conn, CloseReason::Rejected, None);
    }

    /// A deadline passed.
    fn expire(&mut self, env: &mut Env, slot: usize, conn: &mut Connection) {
        match conn.phase {
            Phase::Open => {
                let outcome = conn.session.fail(Reject::Timeout);
                if conn.leftover.is_empty() {
                    // Idle: no transaction to log, only the close.
                    self.counts.timeouts += 1;
                    self.push_status(slot, conn, outcome.status());
                    self.begin_close(env, slot, conn, CloseReason::Timeout, None);
                } else {
                    let tag = conn.leftover[0];
                    let len = announced_len(conn);
                    self.reply(env, slot, conn, tag, len, outcome, NameField::None);
                }
            }
            Phase::VerifyDelayed { .. } => {
                // Ask again: parallel attempts of one address take turns
                // (see `Backoff::wait`).
                let mut password = conn.password.take().unwrap_or_default();
                let verdict = verify(env, slot, conn, &password);
                password.fill(0);
                std::hint::black_box(&password);
                match verdict {
                    Some(answer) => self.finish_verification(env, slot, conn, answer),
                    None => env.schedule(slot, conn),
                }
            }
            Phase::Refusing { .. } => self.finish_verification(env, slot, conn, Answer::Refused),
            Phase::Closing { .. } => {
                conn.phase = Phase::Dead;
                self.dead.push(slot);
            }
            Phase::Verifying | Phase::Dead => {}
        }
    }
}

/// The length announced by the unfinished transaction in `leftover`, once its header is in.
fn announced_len(conn: &Connection) -> Option<u16> {
    let kept = conn.leftover.len();
    if kept < msglog_core::HEADER_LEN {
        return None;
    }
    match msglog_core::decode(&conn.leftover, &ServerSession::LIMITS) {
        Ok(Decoded::Partial { needed }) => {
            u16::try_from(kept - msglog_core::HEADER_LEN + needed.get()).ok()
        }
        _ => None,
    }
}

/// What answers a PASSWORD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accepted,
    Refused,
    /// The verification queue had no room for it.
    Overloaded,
}

/// The answer to the connection's password, at once where the policy is
/// cheap and the address's back-off has passed, or where the verification
/// queue is full; `None` while the connection waits: `Phase::VerifyDelayed`
/// with the password held until the back-off passes, or `Phase::Verifying`
/// while the verifier pool (which applies the back-off itself) has it.
fn verify(env: &Env, slot: usize, conn: &mut Connection, password: &[u8]) -> Option<Answer> {
    let name = conn.session.name().unwrap_or_default();
    let Policy::Users(pool) = &env.shared.policy else {
        let wait = env.shared.backoff().wait(conn.ip, env.now);
        if !wait.is_zero() {
            conn.password = Some(password.into());
            conn.phase = Phase::VerifyDelayed { at: env.now + wait };
            return None;
        }
        let accepted = env
            .shared
            .policy
            .verify_inline(name, password)
            .unwrap_or(false);
        env.shared.backoff().record(conn.ip, accepted, env.now);
        return Some(if accepted {
            Answer::Accepted
        } else {
            Answer::Refused
        });
    };
    let job = Job {
        ip: conn.ip,
        name: name.to_owned(),
        password: password.to_vec(),
        mailbox: Arc::clone(&env.mailbox),
        slot,
        connection: conn.id,
    };
    match pool.submit(job) {
        Ok(()) => {
            conn.phase = Phase::Verifying;
            None
        }
        Err(Overloaded) => Some(Answer::Overloaded),
    }
}
