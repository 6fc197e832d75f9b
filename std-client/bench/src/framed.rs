//! Framed mode: a few `mio` event loops drive many authenticated connections.
//!
//! Each thread owns a share of the connections and runs two phases. First it
//! opens them, at most `connect_batch` (split over the threads) being
//! connected or authenticated at a time, so the server's accept backlog never
//! overflows; NAME and PASSWORD are pipelined. When every thread's
//! connections are authenticated, a barrier starts the clock and the message
//! phase: each connection keeps up to `window` MESSAGE transactions in
//! flight until it has sent its messages (or the duration is over), then
//! sends CLOSE and awaits its answer (any answer, PROTOCOL.md says).
//!
//! Each connection's protocol state is the core's `ClientSession`: it
//! matches the status bytes to the transactions in order, keeps the window
//! and says when the session ended; this module only moves bytes and times
//! them. Nothing is allocated per message: the frames are encoded once per
//! thread with the core's encoder and every connection sends from that
//! block (the session sees each message when a write begins it); the send
//! timestamps live in one preallocated ring per connection.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use msglog_core::{ClientEnd, ClientSession, Transaction};
use msglog_std::retry_interrupted;

use crate::failure::{FailureCounts, FailureKind};
use crate::socket::{connected, write, SHORT_IO_IS_FINAL};
use crate::threads::{run_all, threads_used, SetupError};
use crate::tls;

/// When a connection stops sending messages.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// After this many messages per connection.
    Count(u64),
    /// When this much time has passed since the message phase started.
    After(Duration),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server.
    pub addr: SocketAddr,
    /// Connections, in total.
    pub connections: usize,
    /// When to stop sending.
    pub until: Until,
    /// Payload bytes per message.
    pub size: usize,
    /// MESSAGE transactions in flight per connection.
    pub window: usize,
    /// Event-loop threads.
    pub threads: usize,
    /// The NAME payload.
    pub user: String,
    /// The PASSWORD payload.
    pub password: Vec<u8>,
    /// A thread whose connections make no progress for this long fails them.
    pub stall_timeout: Duration,
    /// Connections being opened or authenticated at once, over all threads.
    pub connect_batch: usize,
    /// Over TLS.
    pub tls: Option<tls::Settings>,
}

impl Plan {
    /// Threads actually used: never more than connections.
    pub fn threads_used(&self) -> usize {
        threads_used(self.threads, self.connections)
    }
}

/// What a run measured: its threads' totals merged.
#[derive(Debug)]
pub struct RunTotals {
    /// Status latency of every acknowledged message, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Messages written whole to a socket.
    pub sent: u64,
    /// Messages answered 0x00.
    pub acknowledged: u64,
    /// Messages handed (whole or in part) to a connection that then failed before answering them.
    pub lost_in_flight: u64,
    /// Messages that should be acknowledged (count mode only).
    pub expected: Option<u64>,
    /// Failed connections.
    pub failures: FailureCounts,
    /// Connections that authenticated and took part in the message phase.
    pub authenticated: usize,
    /// TLS handshakes that resumed a session (the others were full).
    pub resumed: usize,
    /// Time to open and authenticate every connection.
    pub connect_elapsed: Duration,
    /// The message phase: from the first message to the last connection closed.
    pub elapsed: Duration,
}

impl RunTotals {
    /// No failure, and in count mode every message acknowledged.
    pub fn is_clean(&self) -> bool {
        self.failures.total() == 0 && self.expected.is_none_or(|e| e == self.acknowledged)
    }

    /// Messages not acknowledged: in count mode every expected message not acknowledged, else the ones lost in flight.
    pub fn unacknowledged(&self) -> u64 {
        match self.expected {
            Some(expected) => expected.saturating_sub(self.acknowledged),
            None => self.lost_in_flight,
        }
    }
}

/// Run the plan: open, authenticate, send, close; then merge the threads' figures.
pub fn run(plan: &Plan) -> Result<RunTotals, SetupError> {
    let threads = plan.threads_used();
    let batch = plan.connect_batch.div_ceil(threads).max(1);
    let mut workers = Vec::with_capacity(threads);
    for thread in 0..threads {
        let share = plan.connections / threads + usize::from(thread < plan.connections % threads);
        workers.push(Worker::new(plan, share, batch)?);
    }
    let barrier = Barrier::new(threads);
    let results = run_all("bench", workers, |worker| worker.run(&barrier))?;
    merge(plan, results)
}

fn merge(plan: &Plan, results: Vec<ThreadTotals>) -> Result<RunTotals, SetupError> {
    let mut latency_us = new_histogram()?;
    let mut failures = FailureCounts::default();
    let (mut sent, mut acknowledged, mut lost_in_flight, mut authenticated) = (0, 0, 0, 0);
    let mut resumed = 0;
    let mut login_start: Option<Instant> = None;
    let mut login_end: Option<Instant> = None;
    let mut start: Option<Instant> = None;
    let mut end: Option<Instant> = None;
    for result in &results {
        latency_us
            .add(&result.latency_us)
            .map_err(|e| SetupError::Histogram(e.to_string()))?;
        failures.merge(&result.failures);
        sent += result.sent;
        acknowledged += result.acknowledged;
        lost_in_flight += result.lost_in_flight;
        authenticated += result.authenticated;
        resumed += result.resumed;
        login_start = Some(login_start.map_or(result.login_start, |t| t.min(result.login_start)));
        login_end = Some(login_end.map_or(result.login_end, |t| t.max(result.login_end)));
        start = Some(start.map_or(result.start, |t| t.min(result.start)));
        end = Some(end.map_or(result.end, |t| t.max(result.end)));
    }
    let span = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
        (Some(from), Some(to)) => to.saturating_duration_since(from),
        _ => Duration::ZERO,
    };
    let connections = u64::try_from(plan.connections).unwrap_or(u64::MAX);
    Ok(RunTotals {
        latency_us,
        sent,
        acknowledged,
        lost_in_flight,
        expected: match plan.until {
            Until::Count(n) => Some(n.saturating_mul(connections)),
            Until::After(_) => None,
        },
        failures,
        authenticated,
        resumed,
        connect_elapsed: span(login_start, login_end),
        elapsed: span(start, end),
    })
}

fn new_histogram() -> Result<Histogram<u64>, SetupError> {
    // Microseconds, up to an hour, three significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .map_err(|e| SetupError::Histogram(e.to_string()))
}

/// One thread's figures.
struct ThreadTotals {
    latency_us: Histogram<u64>,
    sent: u64,
    acknowledged: u64,
    lost_in_flight: u64,
    authenticated: usize,
    resumed: usize,
    failures: FailureCounts,
    login_start: Instant,
    login_end: Instant,
    start: Instant,
    end: Instant,
}

/// Where a connection's socket is. Where its protocol is (logging in,
/// authenticated, closing, ended) is its [`ClientSession`]'s to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketState {
    /// Not opened yet.
    Idle,
    /// `connect` in progress.
    Connecting,
    /// Connected; NAME and PASSWORD submitted.
    Open,
    /// Closed cleanly or failed.
    Done,
}

/// What a connection's step changed, for the worker's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Continue,
    LoggedIn,
    Closed,
}

impl From<ClientEnd> for FailureKind {
    fn from(end: ClientEnd) -> FailureKind {
        match end {
            ClientEnd::Rejected { .. } => FailureKind::Rejected,
            ClientEnd::InvalidStatus { .. } => FailureKind::InvalidStatus,
            ClientEnd::Unsolicited { .. } => FailureKind::UnexpectedStatus,
            ClientEnd::Disconnected { .. } | ClientEnd::Hangup => FailureKind::Eof,
            ClientEnd::TimedOut { .. } => FailureKind::Timeout,
            _ => FailureKind::Reset,
        }
    }
}

/// One connection: its socket, its session (which matches the statuses
/// and keeps the window), and what it has written; its timestamps are in
/// [`Buffers::sent_at`].
#[derive(Debug)]
struct Conn {
    stream: Option<TcpStream>,
    /// `--tls`: the session the socket's bytes go through.
    tls: Option<Box<tls::Link>>,
    socket: SocketState,
    /// The protocol; its clock is nanoseconds since [`Buffers::epoch`].
    session: ClientSession,
    /// Bytes of the NAME + PASSWORD prelude written.
    prelude_written: usize,
    /// Messages this connection sends in all, once the message phase began.
    target: Option<u64>,
    /// Bytes written of the last message submitted, when a short write tore
    /// it (0: every message submitted is written whole).
    partial: usize,
    /// Its TLS handshake resumed a session.
    resumed: bool,
}

impl Conn {
    /// A connection sending up to `window` messages ahead of their
    /// statuses; NAME and PASSWORD are pipelined whatever the window.
    fn new(window: usize) -> Conn {
        Conn {
            stream: None,
            tls: None,
            socket: SocketState::Idle,
            session: ClientSession::new(window.max(2)),
            prelude_written: 0,
            target: None,
            partial: 0,
            resumed: false,
        }
    }

    /// Messages written whole to the socket.
    fn sent(&self) -> u64 {
        self.session.messages_submitted() - u64::from(self.partial > 0)
    }

    /// Messages handed to the socket (whole or in part) and not acknowledged.
    fn unacknowledged(&self) -> u64 {
        self.session.messages_submitted() - self.session.messages_acknowledged()
    }

    /// Whether the message phase began and the connection has not stopped
    /// sending (CLOSE not yet submitted).
    fn sending(&self) -> bool {
        self.target.is_some() && self.socket == SocketState::Open && !self.session.is_closing()
    }

    /// The connection is established: NAME and PASSWORD go out first.
    fn open(&mut self, buf: &Buffers) -> Result<(), FailureKind> {
        self.socket = SocketState::Open;
        let now = buf.now_ns();
        for transaction in [
            Transaction::Name(&buf.user),
            Transaction::Password(&buf.password),
        ] {
            // Cannot fail: the plan's user and password were encoded already.
            self.session
                .submit(&transaction, now)
                .map_err(|_| FailureKind::EventLoop)?;
        }
        Ok(())
    }

    /// Read what has arrived if `readable`, then write what the window allows.
    fn pump(
        &mut self,
        index: usize,
        readable: bool,
        buf: &mut Buffers,
    ) -> Result<Step, FailureKind> {
        let authenticated = self.session.is_authenticated();
        if readable {
            self.receive(index, buf)?;
        }
        if self.socket == SocketState::Done {
            return Ok(Step::Closed);
        }
        self.transmit(index, buf)?;
        if !authenticated && self.session.is_authenticated() {
            return Ok(Step::LoggedIn);
        }
        Ok(Step::Continue)
    }

    fn receive(&mut self, index: usize, buf: &mut Buffers) -> Result<(), FailureKind> {
        loop {
            let stream = self.stream.as_mut().ok_or(FailureKind::Reset)?;
            let end = match retry_interrupted(|| {
                tls::read(stream, self.tls.as_deref_mut(), &mut buf.inbox)
            }) {
                Ok(0) => self.session.handle_eof(),
                Ok(n) => {
                    let now = buf.now_ns();
                    let statuses = buf.inbox.get(..n).unwrap_or_default();
                    let ring = buf.ring(index);
                    let ring = buf.sent_at.get(ring).unwrap_or_default();
                    self.on_statuses(statuses, now, ring, &mut buf.latency_us)?;
                    // A short read emptied the socket: the next arrival is a new edge.
                    if self.socket == SocketState::Done
                        || (SHORT_IO_IS_FINAL && n < buf.inbox.len())
                    {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::InvalidData && self.tls.is_some() => {
                    return Err(FailureKind::Tls)
                }
                Err(_) => self.session.handle_error(),
            };
            return self.on_end(end);
        }
    }

    /// Feed status bytes to the session and record the latency of every
    /// message they acknowledged.
    fn on_statuses(
        &mut self,
        statuses: &[u8],
        now: u64,
        sent_at: &[u64],
        latency_us: &mut Histogram<u64>,
    ) -> Result<(), FailureKind> {
        let acknowledged = self.session.messages_acknowledged();
        let end = self.session.handle_input(statuses, now);
        for message in acknowledged..self.session.messages_acknowledged() {
            let sent = sent_at
                .get(ring_slot(message, sent_at.len()))
                .copied()
                .unwrap_or(now);
            latency_us.saturating_record(now.saturating_sub(sent).div_ceil(1000));
        }
        self.on_end(end)
    }

    /// A clean end (any answer to CLOSE) closes the connection; any other
    /// end is its failure.
    fn on_end(&mut self, end: Option<ClientEnd>) -> Result<(), FailureKind> {
        match end {
            None => Ok(()),
            Some(ClientEnd::Closed) => {
                self.socket = SocketState::Done;
                self.stream = None;
                Ok(())
            }
            Some(end) => Err(FailureKind::from(end)),
        }
    }

    fn transmit(&mut self, index: usize, buf: &mut Buffers) -> Result<(), FailureKind> {
        if self.socket != SocketState::Open || self.session.is_ended() {
            return Ok(());
        }
        while let Some(rest) = buf
            .prelude
            .get(self.prelude_written..)
            .filter(|r| !r.is_empty())
        {
            match self.write(rest)? {
                Some(n) => self.prelude_written += n,
                None => return Ok(()),
            }
        }
        let Some(target) = self.target else {
            // Authenticating, or waiting for the message phase.
            return Ok(());
        };
        if self.session.messages_submitted() < target || self.partial > 0 {
            return self.send_messages(index, target, buf);
        }
        let acknowledged = self.session.messages_acknowledged() == target;
        if acknowledged && !self.session.is_closing() && self.write(&buf.close)?.is_some() {
            self.session
                .submit(&Transaction::Close, buf.now_ns())
                .map_err(|_| FailureKind::EventLoop)?;
        }
        Ok(())
    }

    /// Write as many message frames as the window and the target allow, from
    /// the shared block; the session counts each message from the write that
    /// begins it.
    fn send_messages(
        &mut self,
        index: usize,
        target: u64,
        buf: &mut Buffers,
    ) -> Result<(), FailureKind> {
        let frame_len = buf.frame_len;
        loop {
            let submitted = self.session.messages_submitted();
            let torn = usize::from(self.partial > 0);
            let room = (self.session.room() as u64).min(target.saturating_sub(submitted));
            let fresh = usize::try_from(room)
                .unwrap_or(usize::MAX)
                .min(buf.block_frames - torn);
            let frames = torn + fresh;
            if frames == 0 {
                return Ok(());
            }
            // The block holds whole frames, so frame boundaries fall at multiples of frame_len.
            let bytes = buf
                .block
                .get(self.partial..frames * frame_len)
                .unwrap_or_default();
            let now = buf.now_ns();
            let Some(written) = self.write(bytes)? else {
                return Ok(());
            };
            let total = self.partial + written;
            let message = Transaction::Message(&buf.payload);
            for _ in torn..total.div_ceil(frame_len) {
                // Cannot fail: no more than the window's room was written.
                self.session
                    .submit(&message, now)
                    .map_err(|_| FailureKind::EventLoop)?;
            }
            let first = submitted - torn as u64;
            let completed = (total / frame_len) as u64;
            let ring = buf.ring(index);
            if let Some(ring) = buf.sent_at.get_mut(ring) {
                let len = ring.len();
                for message in first..first + completed {
                    if let Some(slot) = ring.get_mut(ring_slot(message, len)) {
                        *slot = now;
                    }
                }
            }
            self.partial = total % frame_len;
            if SHORT_IO_IS_FINAL && written < bytes.len() {
                // The socket buffer is full; a writable edge will follow.
                return Ok(());
            }
        }
    }
}

impl Conn {
    /// Write to the socket, through TLS with `--tls`; `Ok(None)` when it would block.
    fn write(&mut self, bytes: &[u8]) -> Result<Option<usize>, FailureKind> {
        match self.tls.as_deref_mut() {
            None => write(&mut self.stream, bytes),
            Some(link) => {
                let stream = self.stream.as_mut().ok_or(FailureKind::Reset)?;
                link.write(stream, bytes)
            }
        }
    }
}

fn ring_slot(message: u64, len: usize) -> usize {
    (message % len.max(1) as u64) as usize
}

/// A thread's shared, preallocated buffers.
struct Buffers {
    /// The NAME and PASSWORD payloads.
    user: Vec<u8>,
    password: Vec<u8>,
    /// NAME then PASSWORD, encoded once.
    prelude: Vec<u8>,
    /// The payload of every message.
    payload: Vec<u8>,
    /// `block_frames` identical MESSAGE frames, encoded once.
    block: Vec<u8>,
    block_frames: usize,
    frame_len: usize,
    /// The CLOSE transaction.
    close: [u8; 1],
    window: usize,
    /// Status bytes read.
    inbox: Vec<u8>,
    /// Per connection, `window` slots: when each in-flight message was handed to the socket (ns since `epoch`).
    sent_at: Vec<u64>,
    epoch: Instant,
    latency_us: Histogram<u64>,
}

/// Largest block of pre-encoded frames a connection writes in one call.
const BLOCK_BYTES: usize = 256 * 1024;

impl Buffers {
    fn new(plan: &Plan, connections: usize) -> Result<Buffers, SetupError> {
        let encode = |what: &'static str, transaction: Transaction<'_>| {
            let mut bytes = vec![0; transaction.encoded_len()];
            transaction
                .encode(&mut bytes)
                .map_err(|error| SetupError::Encode { what, error })?;
            Ok::<_, SetupError>(bytes)
        };
        let mut prelude = encode("NAME", Transaction::Name(plan.user.as_bytes()))?;
        prelude.extend(encode("PASSWORD", Transaction::Password(&plan.password))?);

        let payload = message_payload(plan.size);
        let frame = encode("MESSAGE", Transaction::Message(&payload))?;
        let block_frames = plan.window.min(BLOCK_BYTES / frame.len()).max(1);
        let block = frame.repeat(block_frames);

        let mut close = [0u8; 1];
        Transaction::Close
            .encode(&mut close)
            .map_err(|error| SetupError::Encode {
                what: "CLOSE",
                error,
            })?;

        let slots = connections
            .checked_mul(plan.window)
            .ok_or(SetupError::TooLarge)?;
        let mut sent_at = Vec::new();
        sent_at
            .try_reserve_exact(slots)
            .map_err(|_| SetupError::TooLarge)?;
        sent_at.resize(slots, 0);

        Ok(Buffers {
            user: plan.user.as_bytes().to_vec(),
            password: plan.password.clone(),
            prelude,
            payload,
            block,
            block_frames,
            frame_len: frame.len(),
            close,
            window: plan.window,
            inbox: vec![0; 64 * 1024],
            sent_at,
            epoch: Instant::now(),
            latency_us: new_histogram()?,
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn ring(&self, index: usize) -> std::ops::Range<usize> {
        index * self.window..(index + 1) * self.window
    }
}

/// Printable ASCII, no control bytes: one record per line in `messages.log`, unescaped.
fn message_payload(size: usize) -> Vec<u8> {
    (b'a'..=b'z').cycle().take(size).collect()
}

/// One thread: its connections, its event loop and its counters.
struct Worker {
    poll: Poll,
    addr: SocketAddr,
    conns: Vec<Conn>,
    buf: Buffers,
    until: Until,
    stall_timeout: Duration,
    /// Connections that may be connecting or authenticating at once.
    open_limit: usize,
    next_to_open: usize,
    /// Connections connecting or authenticating now.
    opening: usize,
    /// Connections not yet authenticated nor failed.
    to_login: usize,
    /// Connections authenticated and waiting for the message phase.
    ready: usize,
    /// Connections in the message phase, not yet closed.
    live: usize,
    failures: FailureCounts,
    lost_in_flight: u64,
    tls: Option<tls::Settings>,
}

impl Worker {
    fn new(plan: &Plan, connections: usize, open_limit: usize) -> Result<Worker, SetupError> {
        Ok(Worker {
            poll: Poll::new().map_err(SetupError::Poll)?,
            addr: plan.addr,
            conns: (0..connections).map(|_| Conn::new(plan.window)).collect(),
            buf: Buffers::new(plan, connections)?,
            until: plan.until,
            stall_timeout: plan.stall_timeout,
            open_limit,
            next_to_open: 0,
            opening: 0,
            to_login: connections,
            ready: 0,
            live: 0,
            failures: FailureCounts::default(),
            lost_in_flight: 0,
            tls: plan.tls.clone(),
        })
    }

    fn run(mut self, barrier: &Barrier) -> ThreadTotals {
        let mut events = Events::with_capacity(1024);
        let login_start = Instant::now();
        self.open_more();
        self.event_loop(&mut events, None, |w| w.to_login == 0);
        let login_end = Instant::now();
        let authenticated = self.ready;

        barrier.wait();
        let start = Instant::now();
        let deadline = match self.until {
            Until::Count(n) => {
                self.begin_messages(n);
                None
            }
            Until::After(duration) => {
                self.begin_messages(u64::MAX);
                Some(start + duration)
            }
        };
        self.event_loop(&mut events, deadline, |w| w.live == 0);
        let end = Instant::now();

        let (mut sent, mut acknowledged) = (0, 0);
        let mut resumed = 0;
        for conn in &self.conns {
            sent += conn.sent();
            acknowledged += conn.session.messages_acknowledged();
            resumed += usize::from(conn.resumed);
        }
        ThreadTotals {
            latency_us: self.buf.latency_us,
            sent,
            acknowledged,
            lost_in_flight: self.lost_in_flight,
            authenticated,
            resumed,
            failures: self.failures,
            login_start,
            login_end,
            start,
            end,
        }
    }

    /// Poll and dispatch until `finished`; after `deadline`, stop sending.
    fn event_loop(
        &mut self,
        events: &mut Events,
        mut deadline: Option<Instant>,
        finished: impl Fn(&Worker) -> bool,
    ) {
        let mut last_progress = Instant::now();
        while !finished(self) {
            let now = Instant::now();
            if deadline.is_some_and(|at| now >= at) {
                deadline = None;
                self.stop_sending();
                continue;
            }
            let stall_left = self
                .stall_timeout
                .saturating_sub(now.saturating_duration_since(last_progress));
            if stall_left.is_zero() {
                self.fail_all(FailureKind::Timeout);
                continue;
            }
            let timeout = deadline.map_or(stall_left, |at| {
                stall_left.min(at.saturating_duration_since(now))
            });
            if let Err(e) = self.poll.poll(events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    self.fail_all(FailureKind::EventLoop);
                }
                continue;
            }
            if events.is_empty() {
                continue;
            }
            last_progress = Instant::now();
            for event in events.iter() {
                self.on_event(
                    event.token().0,
                    event.is_readable() || event.is_read_closed(),
                );
            }
            if self.opening < self.open_limit {
                self.open_more();
            }
        }
    }

    fn on_event(&mut self, index: usize, readable: bool) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        match conn.socket {
            SocketState::Idle | SocketState::Done => return,
            SocketState::Connecting => match connected(&conn.stream) {
                Ok(true) => {
                    if let Err(failure) = conn.open(&self.buf) {
                        return self.fail(index, failure);
                    }
                }
                Ok(false) => return,
                Err(failure) => return self.fail(index, failure),
            },
            SocketState::Open => {}
        }
        self.pump(index, readable);
    }

    fn pump(&mut self, index: usize, readable: bool) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        match conn.pump(index, readable, &mut self.buf) {
            Ok(Step::Continue) => {}
            Ok(Step::LoggedIn) => {
                conn.resumed = conn.tls.as_ref().is_some_and(|link| link.resumed());
                self.opening -= 1;
                self.to_login -= 1;
                self.ready += 1;
            }
            Ok(Step::Closed) => self.live -= 1,
            Err(failure) => self.fail(index, failure),
        }
    }

    /// Start connecting the next connections, up to the open limit.
    fn open_more(&mut self) {
        while self.opening < self.open_limit && self.next_to_open < self.conns.len() {
            let index = self.next_to_open;
            self.next_to_open += 1;
            let opened = TcpStream::connect(self.addr).and_then(|mut stream| {
                stream.set_nodelay(true)?;
                self.poll.registry().register(
                    &mut stream,
                    Token(index),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                Ok(stream)
            });
            let Some(conn) = self.conns.get_mut(index) else {
                break;
            };
            let link = match &self.tls {
                Some(settings) => match tls::Link::new(settings) {
                    Ok(link) => Some(Box::new(link)),
                    Err(failure) => {
                        self.fail(index, failure);
                        continue;
                    }
                },
                None => None,
            };
            match opened {
                Ok(stream) => {
                    conn.stream = Some(stream);
                    conn.tls = link;
                    conn.socket = SocketState::Connecting;
                    self.opening += 1;
                }
                Err(_) => self.fail(index, FailureKind::Connect),
            }
        }
    }

    /// The barrier passed: every authenticated connection starts sending.
    fn begin_messages(&mut self, target: u64) {
        self.live = self.ready;
        self.ready = 0;
        for index in 0..self.conns.len() {
            let Some(conn) = self.conns.get_mut(index) else {
                break;
            };
            if conn.socket != SocketState::Open || !conn.session.is_authenticated() {
                continue;
            }
            conn.target = Some(target);
            conn.session.set_window(self.buf.window);
            self.pump(index, false);
        }
    }

    /// The duration is over: finish the message being written, await the in-flight ones, close.
    fn stop_sending(&mut self) {
        for index in 0..self.conns.len() {
            let Some(conn) = self.conns.get_mut(index) else {
                break;
            };
            if !conn.sending() {
                continue;
            }
            let target = conn.session.messages_submitted();
            conn.target = Some(target);
            if conn.session.messages_acknowledged() == target {
                self.pump(index, false);
            }
        }
    }

    fn fail(&mut self, index: usize, failure: FailureKind) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        let socket = conn.socket;
        if socket == SocketState::Done {
            return;
        }
        conn.socket = SocketState::Done;
        // Dropping the socket closes it and removes it from the poll set.
        conn.stream = None;
        self.lost_in_flight += conn.unacknowledged();
        self.failures.add(failure);
        match socket {
            SocketState::Idle => self.to_login -= 1,
            SocketState::Connecting => {
                self.opening -= 1;
                self.to_login -= 1;
            }
            SocketState::Open if !conn.session.is_authenticated() => {
                self.opening -= 1;
                self.to_login -= 1;
            }
            SocketState::Open if conn.target.is_none() => self.ready -= 1,
            SocketState::Open => self.live -= 1,
            // Returned above: a connection fails at most once.
            SocketState::Done => {}
        }
    }

    /// Fail every connection that is still waiting on the server.
    fn fail_all(&mut self, failure: FailureKind) {
        for index in 0..self.conns.len() {
            // Every connection but those done or authenticated and
            // waiting for the message phase.
            let waiting = self.conns.get(index).is_some_and(|c| match c.socket {
                SocketState::Idle | SocketState::Connecting => true,
                SocketState::Open => !c.session.is_authenticated() || c.target.is_some(),
                SocketState::Done => false,
            });
            if waiting {
                self.fail(index, failure);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection in the message phase (target 10) with `acknowledged`
    /// messages answered and `in_flight` more written whole.
    fn sending_conn(window: usize, acknowledged: u64, in_flight: u64) -> (Conn, Vec<u64>) {
        let mut conn = Conn::new(window);
        conn.socket = SocketState::Open;
        for transaction in [Transaction::Name(b"u"), Transaction::Password(b"p")] {
            conn.session.submit(&transaction, 0).unwrap();
        }
        assert_eq!(conn.session.handle_input(&[0, 0], 0), None);
        conn.target = Some(10);
        conn.session.set_window(window);
        for _ in 0..acknowledged {
            conn.session.submit(&Transaction::Message(b"m"), 0).unwrap();
            assert_eq!(conn.session.handle_input(&[0], 0), None);
        }
        for _ in 0..in_flight {
            conn.session.submit(&Transaction::Message(b"m"), 0).unwrap();
        }
        (conn, vec![0; window])
    }

    #[test]
    fn statuses_acknowledge_in_order_and_record_latency() {
        let (mut conn, ring) = sending_conn(4, 0, 3);
        let mut latency = new_histogram().unwrap();
        conn.on_statuses(&[0, 0], 5_000, &ring, &mut latency)
            .unwrap();
        assert_eq!(conn.session.messages_acknowledged(), 2);
        assert_eq!(latency.len(), 2);
        assert_eq!(latency.max(), 5);
    }

    #[test]
    fn a_status_for_an_unsent_message_is_unexpected() {
        let (mut conn, ring) = sending_conn(4, 0, 1);
        let mut latency = new_histogram().unwrap();
        assert_eq!(
            conn.on_statuses(&[0, 0], 0, &ring, &mut latency),
            Err(FailureKind::UnexpectedStatus)
        );
    }

    #[test]
    fn rejected_and_invalid_statuses_fail() {
        let mut latency = new_histogram().unwrap();
        let (mut conn, ring) = sending_conn(4, 0, 3);
        assert_eq!(
            conn.on_statuses(&[0, 0xFF], 0, &ring, &mut latency),
            Err(FailureKind::Rejected)
        );
        assert_eq!(conn.session.messages_acknowledged(), 1);
        let (mut conn, ring) = sending_conn(4, 0, 3);
        assert_eq!(
            conn.on_statuses(&[0x42], 0, &ring, &mut latency),
            Err(FailureKind::InvalidStatus)
        );
    }

    #[test]
    fn login_then_last_ack_moves_to_closing() {
        let mut latency = new_histogram().unwrap();
        let ring = vec![0; 1];
        let mut conn = Conn::new(1);
        conn.socket = SocketState::Open;
        for transaction in [Transaction::Name(b"u"), Transaction::Password(b"p")] {
            conn.session.submit(&transaction, 0).unwrap();
        }
        conn.on_statuses(&[0, 0], 0, &ring, &mut latency).unwrap();
        assert!(conn.session.is_authenticated());
        // A status while waiting for the message phase answers nothing.
        assert_eq!(
            conn.on_statuses(&[0], 0, &ring, &mut latency),
            Err(FailureKind::UnexpectedStatus)
        );

        let (mut conn, ring) = sending_conn(1, 9, 1);
        conn.on_statuses(&[0], 0, &ring, &mut latency).unwrap();
        assert_eq!(conn.session.messages_acknowledged(), 10);
        assert!(!conn.session.is_closing() && !conn.session.is_ended());
        // CLOSE not yet written: nothing may answer it.
        assert_eq!(
            conn.on_statuses(&[0], 0, &ring, &mut latency),
            Err(FailureKind::UnexpectedStatus)
        );
        // Written: 0xFF answers it as well as 0x00 does (PROTOCOL.md; the
        // original server answers a bare CLOSE with 0xFF).
        let (mut conn, ring) = sending_conn(1, 10, 0);
        conn.session.submit(&Transaction::Close, 0).unwrap();
        assert_eq!(conn.on_statuses(&[0xFF], 0, &ring, &mut latency), Ok(()));
        assert_eq!(conn.socket, SocketState::Done);
    }

    #[test]
    fn any_answer_to_close_ends_cleanly() {
        let mut latency = new_histogram().unwrap();
        for answer in [Some(0x00), Some(0xFF), Some(0x42), None] {
            let (mut conn, ring) = sending_conn(4, 10, 0);
            conn.session.submit(&Transaction::Close, 0).unwrap();
            let answered = match answer {
                Some(byte) => conn.on_statuses(&[byte], 0, &ring, &mut latency),
                None => {
                    let end = conn.session.handle_eof();
                    conn.on_end(end)
                }
            };
            assert_eq!(answered, Ok(()), "{answer:?}");
            assert_eq!(conn.socket, SocketState::Done);
        }
        let (mut conn, _) = sending_conn(4, 10, 0);
        conn.session.submit(&Transaction::Close, 0).unwrap();
        let end = conn.session.handle_error();
        assert_eq!(conn.on_end(end), Ok(()), "a reset answers CLOSE too");
        // Without CLOSE in flight, the connection closing is a failure.
        let (mut conn, _) = sending_conn(4, 9, 1);
        let end = conn.session.handle_eof();
        assert_eq!(conn.on_end(end), Err(FailureKind::Eof));
    }

    #[test]
    fn payload_is_printable() {
        let payload = message_payload(100);
        assert_eq!(payload.len(), 100);
        assert!(payload.iter().all(u8::is_ascii_lowercase));
    }
}
