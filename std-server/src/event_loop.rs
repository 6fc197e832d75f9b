//! One event-loop thread of the framed server: readiness, timers and mail.
//!
//! Each iteration: wait for readiness (or a timer, or mail); read every
//! ready connection into one large buffer and hand what arrived to its
//! [`Connection`], which answers complete transactions into the
//! [`Iteration`] (records, log entries, status bytes held back); apply the
//! verifier pool's decisions and the deadlines that passed; then commit
//! the iteration (`commit`), send each connection's status bytes with one
//! write, and drop the connections that ended.
//!
//! Log lines go out before answers: a client that saw its statuses or EOF,
//! then connects again, finds its earlier lines first.
//!
//! With the NATS sink (feature `nats`), an iteration with records is
//! committed later instead (`nats::StreamCommits`): its connections are
//! parked until the publisher's outcomes arrive by mail, and each step
//! below passes a parked connection by.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use msglog_std::retry_interrupted;

use crate::auth::PasswordCheck;
use crate::capacity::ServerSession;
use crate::commit::Committer;
use crate::connection::{Connection, Phase};
use crate::iteration::{Iteration, MAX_BATCH};
use crate::latency::Latency;
use crate::mailbox::{Accepted, Inbox, Mailbox, Verdict};
use crate::platform::SHORT_READ_DRAINS;
use crate::rate_limit::RateLimit;
use crate::services::Services;
use crate::slab::Slab;
use crate::timers::Timers;
use crate::timestamp::Clock;
use crate::tls::{TlsFailure, TlsLink};

/// Bytes read from a socket at once.
const READ_BUFFER: usize = 256 * 1024;
/// Reads of one connection per iteration, for fairness.
const READS_PER_TURN: usize = 4;
/// Bytes a closing connection may still send that are read and discarded
/// (so the close is a FIN, not a reset that could destroy the last status).
const DRAIN_LIMIT: usize = 1024 * 1024;
/// Token of the mailbox's waker.
pub(crate) const WAKER: Token = Token(usize::MAX);

// An unfinished transaction and at least one more byte fit in the buffer.
const _: () = assert!(READ_BUFFER > ServerSession::MAX_FRAME);

/// A connection registered with this loop: its socket, its state, and the
/// instant of its live timer entry.
struct Registered {
    stream: TcpStream,
    /// On a TLS listener: the connection's TLS state; its plaintext goes
    /// to `conn` like a plaintext connection's bytes.
    tls: Option<Box<TlsLink>>,
    conn: Connection,
    /// When this connection's live timer entry is due (see `Timers`).
    timer_at: Option<Instant>,
    /// Its commit is with the NATS publisher: nothing of it may change.
    #[cfg(feature = "nats")]
    parked: bool,
}

impl Registered {
    #[cfg(feature = "nats")]
    fn parked(&self) -> bool {
        self.parked
    }

    #[cfg(not(feature = "nats"))]
    fn parked(&self) -> bool {
        false
    }
}

#[cfg(feature = "nats")]
impl crate::nats::Parking for Registered {
    fn parked(&self) -> bool {
        self.parked
    }

    fn set_parked(&mut self, parked: bool) {
        self.parked = parked;
    }
}

impl AsRef<Connection> for Registered {
    fn as_ref(&self) -> &Connection {
        &self.conn
    }
}

impl AsMut<Connection> for Registered {
    fn as_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

pub(crate) struct EventLoop {
    poll: Poll,
    conns: Slab<Registered>,
    buffer: Box<[u8]>,
    iteration: Iteration,
    services: Arc<Services>,
    mailbox: Arc<Mailbox>,
    inbox: Inbox,
    timers: Timers,
    /// Set once asked to stop: the grace deadline.
    stopping: Option<Instant>,
    clock: Clock,
    write_errors: RateLimit,
    /// This loop's share of the latency histogram (`latency`).
    latency: Arc<Latency>,
    /// The NATS sink's commits, when records go to a stream.
    #[cfg(feature = "nats")]
    stream: Option<crate::nats::StreamCommits>,
}

impl EventLoop {
    pub(crate) fn new(poll: Poll, services: Arc<Services>, mailbox: Arc<Mailbox>) -> Self {
        let latency = Arc::new(Latency::default());
        services
            .latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&latency));
        EventLoop {
            poll,
            conns: Slab::default(),
            buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            iteration: Iteration::new(Instant::now()),
            services,
            mailbox,
            inbox: Inbox::default(),
            timers: Timers::default(),
            stopping: None,
            clock: Clock::new(),
            write_errors: RateLimit::new(Duration::from_secs(5)),
            latency,
            #[cfg(feature = "nats")]
            stream: None,
        }
    }

    /// Commit records to the NATS stream through `publisher` instead of
    /// `messages.log` (which gets a copy if `keep_messages_log`).
    #[cfg(feature = "nats")]
    pub(crate) fn commit_to_stream(
        &mut self,
        publisher: crate::nats::PublishHandle,
        keep_messages_log: bool,
    ) {
        self.iteration.raw = true;
        self.stream = Some(crate::nats::StreamCommits::new(
            publisher,
            Arc::clone(&self.mailbox),
            keep_messages_log,
        ));
    }

    /// Serve until asked to stop and every connection has ended.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    // Again, with the timeout measured from now.
                    continue;
                }
                return Err(e);
            }
            self.iteration.start(Instant::now());
            self.clock.update(SystemTime::now());
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
            let mut ready = std::mem::take(&mut self.iteration.ready);
            for &slot in &ready {
                self.pump(slot, false);
            }
            if self.iteration.ready.is_empty() {
                ready.clear();
                self.iteration.ready = ready;
            }
            self.expire_timers();
            if let Some(deadline) = self.stopping {
                self.stop_connections(deadline);
            }
            #[cfg(feature = "nats")]
            if let Some(stream) = &mut self.stream {
                stream.defer(&mut self.iteration, &mut self.conns, &self.clock);
            }
            let mut committer = Committer {
                logs: &self.services.journal,
                timestamp: self.clock.text(),
                errors: &mut self.write_errors,
            };
            committer.commit(&mut self.iteration, &mut self.conns);
            self.send_statuses();
            let answered = self.iteration.counts.messages_answered();
            if answered > 0 {
                self.latency.observe(self.iteration.now.elapsed(), answered);
            }
            // Closes caused by a failed send, if any.
            let mut committer = Committer {
                logs: &self.services.journal,
                timestamp: self.clock.text(),
                errors: &mut self.write_errors,
            };
            committer.append_late_lines(&mut self.iteration, &self.conns);
            self.remove_dead();
            self.services.stats.add(&mut self.iteration.counts);
            if self.stopping.is_some() && self.conns.is_empty() {
                return Ok(());
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.iteration.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = match (self.timers.next(), self.stopping) {
            (Some(timer), Some(stop)) => Some(timer.min(stop)),
            (timer, stop) => timer.or(stop),
        }?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    fn take_mail(&mut self) {
        let mut inbox = std::mem::take(&mut self.inbox);
        self.mailbox.take(&mut inbox);
        for accepted in inbox.accepted.drain(..) {
            self.register(accepted);
        }
        for verdict in inbox.verdicts.drain(..) {
            self.on_verdict(verdict);
        }
        #[cfg(feature = "nats")]
        for stored in inbox.stored.drain(..) {
            self.on_stored(stored);
        }
        if let Some(deadline) = inbox.stop.take() {
            if self.stopping.is_none() {
                // Handle what has already arrived before closing at a transaction boundary.
                for (slot, registered) in self.conns.iter_mut() {
                    if registered.conn.phase() == Phase::Open {
                        self.iteration.ready.push(slot);
                    }
                }
            }
            self.stopping = Some(self.stopping.map_or(deadline, |d| d.min(deadline)));
        }
        self.inbox = inbox;
    }

    fn register(&mut self, accepted: Accepted) {
        let Accepted {
            mut stream,
            peer,
            id,
            tls,
        } = accepted;
        let slot = self.conns.vacant_key();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            error!("cannot watch connection {id} from {peer}: {e}");
            self.services.open.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        // Status bytes are tiny and must not wait for Nagle's algorithm.
        if let Err(e) = stream.set_nodelay(true) {
            debug!("connection {id}: cannot set TCP_NODELAY: {e}");
        }
        let timeouts = &self.services.timeouts;
        let (conn, tls) = match tls {
            None => (
                Connection::open(id, slot, peer, timeouts, &mut self.iteration),
                None,
            ),
            Some(tls) => (
                Connection::open_tls(
                    id,
                    slot,
                    peer,
                    timeouts,
                    &mut self.iteration,
                    tls.require_cert_name,
                ),
                Some(tls.link),
            ),
        };
        let slot = self.conns.insert(Registered {
            stream,
            tls,
            conn,
            timer_at: None,
            #[cfg(feature = "nats")]
            parked: false,
        });
        self.schedule(slot);
    }

    fn on_event(&mut self, slot: usize, readable: bool, writable: bool, hangup: bool) {
        let Some(registered) = self.conns.get_mut(slot) else {
            return;
        };
        if registered.parked() {
            // Read and sent when unparked.
            return;
        }
        let conn = &mut registered.conn;
        let tls_waiting = registered.tls.as_ref().is_some_and(|tls| tls.wants_write());
        match conn.phase() {
            Phase::Dead => {}
            Phase::Closing { .. } => {
                if writable || hangup {
                    conn.queue(&mut self.iteration);
                }
            }
            Phase::Open
            | Phase::Verifying
            | Phase::VerifyDelayed { .. }
            | Phase::Refusing { .. } => {
                if writable && (!conn.unsent().is_empty() || tls_waiting) {
                    conn.queue(&mut self.iteration);
                }
                if readable {
                    // A short read drains the socket (where the platform
                    // says so), unless the peer also closed: then only
                    // reading on to EOF sees that.
                    self.pump(slot, SHORT_READ_DRAINS && !hangup);
                }
            }
        }
    }

    /// Read from a connection and handle what arrived, as far as its state,
    /// its unsent statuses and this iteration's budget allow.
    fn pump(&mut self, slot: usize, short_read_drains: bool) {
        let Some(registered) = self.conns.get_mut(slot).filter(|r| !r.parked()) else {
            return;
        };
        let Registered {
            stream, conn, tls, ..
        } = registered;
        let iteration = &mut self.iteration;
        let mut check = PasswordCheck {
            policy: &self.services.policy,
            backoff: &self.services.backoff,
            mailbox: &self.mailbox,
        };
        let mut reads = 0;
        while conn.reads() {
            if iteration.batch.len() >= MAX_BATCH {
                iteration.ready.push(slot);
                break;
            }
            let Some(kept) = conn.restore_unhandled(&mut self.buffer) else {
                conn.failed(iteration, io::Error::other("receive buffer overflow"));
                break;
            };
            let read = if conn.take_resume() {
                None
            } else {
                let room = &mut self.buffer[kept..];
                let result = match tls.as_deref_mut() {
                    None => retry_interrupted(|| stream.read(room)),
                    Some(tls) => {
                        let result = tls.read(stream, room);
                        // Before any plaintext: the open line comes first.
                        if let Some(established) = tls.take_established() {
                            conn.established(iteration, established);
                        }
                        result
                    }
                };
                match result {
                    Ok(0) => {
                        conn.peer_closed(iteration);
                        break;
                    }
                    Ok(n) => Some(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // A TLS close without close_notify ends a session like a TCP close.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && tls.is_some() => {
                        conn.peer_closed(iteration);
                        break;
                    }
                    Err(e) if TlsFailure::is(&e) => {
                        conn.tls_failed(iteration, e);
                        break;
                    }
                    Err(e) => {
                        conn.failed(iteration, e);
                        break;
                    }
                }
            };
            let filled = kept + read.unwrap_or(0);
            conn.receive(&self.buffer[..filled], iteration, &mut check);
            let Some(n) = read else {
                continue;
            };
            if short_read_drains && n < READ_BUFFER - kept {
                break;
            }
            reads += 1;
            if reads >= READS_PER_TURN {
                iteration.ready.push(slot);
                break;
            }
        }
        // Handshake records, alerts, tickets: sent with the statuses.
        if tls.as_ref().is_some_and(|tls| tls.wants_write()) {
            conn.queue(iteration);
        }
        self.schedule(slot);
    }

    fn on_verdict(&mut self, verdict: Verdict) {
        let Verdict {
            slot,
            connection,
            decision,
        } = verdict;
        match self
            .conns
            .get_mut(slot)
            .filter(|registered| registered.conn.id() == connection)
        {
            #[cfg(feature = "nats")]
            Some(registered) if registered.parked => {
                if let Some(stream) = &mut self.stream {
                    stream.hold_verdict(Verdict {
                        slot,
                        connection,
                        decision,
                    });
                }
            }
            Some(registered) => {
                registered.conn.decided(decision, &mut self.iteration);
                self.schedule(slot);
            }
            // The connection is gone.
            None => decision.discard(),
        }
    }

    fn expire_timers(&mut self) {
        let now = self.iteration.now;
        while let Some((at, slot, id)) = self.timers.pop_due(now) {
            let Some(registered) = self.conns.get_mut(slot) else {
                continue;
            };
            if registered.conn.id() != id || registered.timer_at != Some(at) {
                continue;
            }
            registered.timer_at = None;
            if registered.parked() {
                // Scheduled again when unparked.
                continue;
            }
            match registered.conn.deadline() {
                None => {}
                Some(deadline) if deadline > now => self.schedule(slot),
                Some(_) => {
                    let mut check = PasswordCheck {
                        policy: &self.services.policy,
                        backoff: &self.services.backoff,
                        mailbox: &self.mailbox,
                    };
                    registered.conn.expire(&mut self.iteration, &mut check);
                    self.schedule(slot);
                }
            }
        }
    }

    /// While stopping: end every connection at a transaction boundary, and
    /// all of them once the grace period is over.
    fn stop_connections(&mut self, deadline: Instant) {
        let over = self.iteration.now >= deadline;
        for (_, registered) in self.conns.iter_mut() {
            if !registered.parked() {
                registered.conn.stop(&mut self.iteration, over);
            }
        }
    }

    /// Send every queued connection's status bytes; finish closing connections.
    fn send_statuses(&mut self) {
        let queued = std::mem::take(&mut self.iteration.queued);
        for &slot in &queued {
            self.send_to(slot);
        }
        let mut queued = queued;
        queued.clear();
        // Connections queued while sending (none expected) go next time.
        queued.append(&mut self.iteration.queued);
        self.iteration.queued = queued;
    }

    /// Send a connection's status bytes (unless it is parked: then they are
    /// sent when it is unparked); finish closing it.
    fn send_to(&mut self, slot: usize) {
        let Some(registered) = self.conns.get_mut(slot).filter(|r| !r.parked()) else {
            return;
        };
        let Registered {
            stream, conn, tls, ..
        } = registered;
        let (sent, failure) = match tls.as_deref_mut() {
            None => flush(stream, conn.unsent()),
            Some(tls) => tls.flush(stream, conn.unsent()),
        };
        if conn.flushed(sent, failure, &mut self.iteration, self.stopping) {
            if let Some(tls) = tls.as_deref_mut() {
                tls.close_notify(stream);
            }
            finish_close(stream, &mut self.buffer);
            conn.closed(&mut self.iteration);
        }
        self.schedule(slot);
    }

    fn remove_dead(&mut self) {
        for slot in self.iteration.dead.drain(..) {
            if let Some(registered) = self.conns.get(slot) {
                // A parked connection's slot is named by its deferred commit.
                if registered.conn.phase() != Phase::Dead || registered.parked() {
                    continue;
                }
            }
            if self.conns.remove(slot).is_some() {
                self.services.open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Finish a commit the NATS publisher settled, and go on with the
    /// connections it held: read what arrived meanwhile, send their
    /// statuses, time them, and hand them the verdicts held for them.
    #[cfg(feature = "nats")]
    fn on_stored(&mut self, stored: crate::nats::Stored) {
        let Some(stream) = &mut self.stream else {
            return;
        };
        let unparked = stream.finish(
            stored,
            &mut self.conns,
            &self.services.journal,
            &self.services.stats,
        );
        for slot in unparked {
            let Some(registered) = self.conns.get_mut(slot) else {
                continue;
            };
            if registered.conn.phase() == Phase::Dead {
                self.iteration.dead.push(slot);
                continue;
            }
            // Its statuses now, before what it sent meanwhile is read (and
            // perhaps parked again behind another commit).
            self.send_to(slot);
            self.iteration.ready.push(slot);
            if let Some(stream) = &mut self.stream {
                for verdict in stream.take_verdicts(slot) {
                    self.on_verdict(verdict);
                }
            }
        }
    }

    /// Make sure a timer fires no later than the connection's deadline.
    /// Called after every change to a connection: its deadline is computed
    /// in one place, `Connection::deadline`.
    fn schedule(&mut self, slot: usize) {
        let Some(registered) = self.conns.get_mut(slot) else {
            return;
        };
        let Some(deadline) = registered.conn.deadline() else {
            return;
        };
        if registered.timer_at.is_none_or(|at| deadline < at) {
            registered.timer_at = Some(deadline);
            self.timers.push(deadline, slot, registered.conn.id());
        }
    }
}

/// Send as much of `unsent` as the socket takes: the bytes sent, and the
/// error that stopped it (`None` when done or when it would block).
fn flush(stream: &mut TcpStream, unsent: &[u8]) -> (usize, Option<io::Error>) {
    let mut sent = 0;
    while sent < unsent.len() {
        match retry_interrupted(|| stream.write(&unsent[sent..])) {
            Ok(0) => return (sent, Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return (sent, Some(e)),
        }
    }
    (sent, None)
}

/// Close the write side and discard what the peer still sends (bounded):
/// its socket is closed when the connection is removed.
fn finish_close(stream: &mut TcpStream, scratch: &mut [u8]) {
    let _ = stream.shutdown(Shutdown::Write);
    let mut discarded = 0;
    while discarded < DRAIN_LIMIT {
        match retry_interrupted(|| stream.read(scratch)) {
            Ok(0) | Err(_) => break,
            Ok(n) => discarded += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    use mio::Waker;

    use super::*;
    use crate::auth::Policy;
    use crate::backoff::Backoff;
    use crate::config::Timeouts;
    use crate::journal::Journal;
    use crate::services::Stats;

    /// A connected pair: the client's socket, and the server's as accepted.
    fn pair(listener: &TcpListener) -> (std::net::TcpStream, TcpStream, SocketAddr) {
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, TcpStream::from_std(server), peer)
    }

    #[test]
    fn serves_a_session_times_out_an_idle_one_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let services = Arc::new(Services {
            timeouts: Timeouts {
                frame: Duration::from_secs(10),
                idle: Duration::from_millis(300),
            },
            journal: Journal::open(dir.path(), false).unwrap(),
            policy: Policy::AcceptAny,
            backoff: Arc::new(Mutex::new(Backoff::new(16))),
            open: AtomicUsize::new(2),
            stats: Stats::default(),
            latencies: Mutex::default(),
            #[cfg(feature = "nats")]
            nats: None,
        });
        let poll = Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), WAKER).unwrap();
        let mailbox = Arc::new(Mailbox::new(waker));
        let event_loop = EventLoop::new(poll, Arc::clone(&services), Arc::clone(&mailbox));
        let thread = std::thread::spawn(move || event_loop.run());

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut client, stream, peer) = pair(&listener);
        mailbox.accept(Accepted {
            stream,
            peer,
            id: 1,
            tls: None,
        });
        let (mut idle, stream, idle_peer) = pair(&listener);
        let opened = Instant::now();
        mailbox.accept(Accepted {
            stream,
            peer: idle_peer,
            id: 2,
            tls: None,
        });

        client
            .write_all(b"\x01\x03\x00bob\x02\x01\x00x\x03\x05\x00hello\x04")
            .unwrap();
        let mut answers = Vec::new();
        client.read_to_end(&mut answers).unwrap();
        assert_eq!(answers, [0, 0, 0, 0]);
        let mut answers = Vec::new();
        idle.read_to_end(&mut answers).unwrap();
        assert_eq!(answers, [0xFF]);
        assert!(opened.elapsed() >= Duration::from_millis(300));

        mailbox.stop(Instant::now());
        thread.join().unwrap().unwrap();
        assert_eq!(services.open.load(Ordering::Relaxed), 0);
        assert_eq!(Stats::get(&services.stats.messages), 1);
        assert_eq!(Stats::get(&services.stats.timeouts), 1);
        // Counted as answered: NAME, PASSWORD, MESSAGE and CLOSE ok.
        let ok = |tag: usize| Stats::get(&services.stats.transactions[tag][0]);
        assert_eq!([ok(0), ok(1), ok(2), ok(3)], [1, 1, 1, 1]);
        assert_eq!(Stats::get(&services.stats.bytes), 14);
        let mut latency = crate::latency::Snapshot::default();
        for loop_latency in services.latencies.lock().unwrap().iter() {
            loop_latency.merge_into(&mut latency);
        }
        assert_eq!(latency.count, 1, "one message answered");
        let messages = std::fs::read(dir.path().join("messages.log")).unwrap();
        assert_eq!(messages, b"[bob]: hello\r\n");
        let lines = std::fs::read_to_string(dir.path().join("transactions.log")).unwrap();
        let lines: Vec<&str> = lines
            .lines()
            .map(|line| line.split_once(' ').unwrap().1)
            .collect();
        // Each connection's lines in order (the two may interleave).
        let of = |id: u64| -> Vec<&str> {
            let fields = format!("conn={id} peer=");
            lines
                .iter()
                .filter(|line| line.starts_with(&fields))
                .map(|line| line.split_once(' ').unwrap().1)
                .map(|line| line.split_once(' ').unwrap().1)
                .collect()
        };
        assert_eq!(
            of(1),
            [
                "event=open",
                "tag=NAME len=3 outcome=ok name=\"bob\"",
                "tag=PASSWORD len=- outcome=ok",
                "tag=MESSAGE len=5 outcome=ok",
                "tag=CLOSE len=- outcome=ok",
                "event=close reason=close",
            ]
        );
        assert_eq!(of(2), ["event=open", "event=close reason=timeout"]);
        assert_eq!(lines.len(), 8);
        assert!(
            lines[0].contains(&format!("peer={peer}"))
                || lines[0].contains(&format!("peer={idle_peer}"))
        );
    }
}
