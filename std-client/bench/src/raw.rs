//! Raw mode: stream bytes to `msglog-server --raw` and time the transfer.
//!
//! The data is generated once (1 MiB) and written over and over. A
//! connection is done when all its bytes are written, its write side shut
//! down, and the server has closed the connection, i.e. after the server
//! read everything and flushed it.

use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use msglog_std::retry_interrupted;

use crate::failure::{FailureCounts, FailureKind};
use crate::socket::{connected, write};
use crate::threads::{run_all, threads_used, SetupError};
use crate::tls;

/// Bytes handed to `write(2)` at most per call, and the size of the generated data.
pub const CHUNK: usize = 1 << 20;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The raw server.
    pub addr: SocketAddr,
    /// Connections; the bytes are split evenly over them.
    pub connections: usize,
    /// Bytes to stream, in total.
    pub bytes: u64,
    /// Event-loop threads.
    pub threads: usize,
    /// A thread whose connections make no progress for this long fails them.
    pub stall_timeout: Duration,
    /// Over TLS: the stream ends with close_notify.
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
    /// Bytes written to the sockets.
    pub sent: u64,
    /// Connections that delivered everything and saw the server close.
    pub completed: usize,
    /// Failed connections.
    pub failures: FailureCounts,
    /// From the first connect to the last connection closed by the server.
    pub elapsed: Duration,
}

impl RunTotals {
    /// Every byte sent on connections that completed, none failed.
    pub fn is_clean(&self, plan: &Plan) -> bool {
        self.failures.total() == 0 && self.sent == plan.bytes && self.completed == plan.connections
    }
}

/// Stream the plan's bytes; the threads' totals merged.
pub fn run(plan: &Plan) -> Result<RunTotals, SetupError> {
    let data: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
    let threads = plan.threads_used();
    let connections = u64::try_from(plan.connections.max(1)).unwrap_or(u64::MAX);
    let shares: Vec<u64> = (0..connections)
        .map(|i| plan.bytes / connections + u64::from(i < plan.bytes % connections))
        .collect();
    let mut workers = Vec::with_capacity(threads);
    for thread in 0..threads {
        let mine = shares
            .iter()
            .skip(thread)
            .step_by(threads)
            .copied()
            .collect();
        workers.push(Worker::new(plan, mine)?);
    }
    let start = Instant::now();
    let per_thread = run_all("bench-raw", workers, |worker| worker.run(&data))?;
    let elapsed = start.elapsed();
    let mut totals = RunTotals {
        sent: 0,
        completed: 0,
        failures: FailureCounts::default(),
        elapsed,
    };
    for thread in per_thread {
        totals.sent += thread.sent;
        totals.completed += thread.completed;
        totals.failures.merge(&thread.failures);
    }
    Ok(totals)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Sending,
    /// TLS: close_notify queued, not yet all written.
    Closing,
    /// Write side shut down; waiting for the server to close.
    Draining,
    Done,
}

struct Conn {
    stream: Option<TcpStream>,
    tls: Option<Box<tls::Link>>,
    phase: Phase,
    remaining: u64,
    sent: u64,
}

/// One thread's figures.
struct ThreadTotals {
    sent: u64,
    completed: usize,
    failures: FailureCounts,
}

struct Worker {
    poll: Poll,
    addr: SocketAddr,
    conns: Vec<Conn>,
    stall_timeout: Duration,
    tls: Option<tls::Settings>,
    live: usize,
    completed: usize,
    failures: FailureCounts,
}

impl Worker {
    fn new(plan: &Plan, shares: Vec<u64>) -> Result<Worker, SetupError> {
        Ok(Worker {
            poll: Poll::new().map_err(SetupError::Poll)?,
            addr: plan.addr,
            conns: shares
                .into_iter()
                .map(|remaining| Conn {
                    stream: None,
                    tls: None,
                    phase: Phase::Connecting,
                    remaining,
                    sent: 0,
                })
                .collect(),
            stall_timeout: plan.stall_timeout,
            tls: plan.tls.clone(),
            live: 0,
            completed: 0,
            failures: FailureCounts::default(),
        })
    }

    fn run(mut self, data: &[u8]) -> ThreadTotals {
        for index in 0..self.conns.len() {
            let opened = TcpStream::connect(self.addr).and_then(|mut stream| {
                self.poll.registry().register(
                    &mut stream,
                    Token(index),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                Ok(stream)
            });
            let link = match &self.tls {
                Some(settings) => tls::Link::new(settings).ok().map(Box::new),
                None => None,
            };
            match opened {
                Ok(stream) if self.tls.is_none() || link.is_some() => {
                    if let Some(conn) = self.conns.get_mut(index) {
                        conn.stream = Some(stream);
                        conn.tls = link;
                        self.live += 1;
                    }
                }
                failed => {
                    self.failures.add(if failed.is_ok() {
                        FailureKind::Tls
                    } else {
                        FailureKind::Connect
                    });
                    if let Some(conn) = self.conns.get_mut(index) {
                        conn.phase = Phase::Done;
                    }
                }
            }
        }

        let mut events = Events::with_capacity(256);
        let mut sink = [0u8; 4096];
        let mut last_progress = Instant::now();
        while self.live > 0 {
            let stall_left = self.stall_timeout.saturating_sub(last_progress.elapsed());
            if stall_left.is_zero() {
                self.fail_all(FailureKind::Timeout);
                break;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(stall_left)) {
                if e.kind() != ErrorKind::Interrupted {
                    self.fail_all(FailureKind::EventLoop);
                }
                continue;
            }
            if !events.is_empty() {
                last_progress = Instant::now();
            }
            for event in events.iter() {
                let index = event.token().0;
                if let Err(failure) = self.step(index, data, &mut sink) {
                    self.fail(index, failure);
                }
            }
        }
        ThreadTotals {
            sent: self.conns.iter().map(|c| c.sent).sum(),
            completed: self.completed,
            failures: self.failures,
        }
    }

    /// Advance one connection as far as its socket allows.
    fn step(&mut self, index: usize, data: &[u8], sink: &mut [u8]) -> Result<(), FailureKind> {
        let Some(conn) = self.conns.get_mut(index) else {
            return Ok(());
        };
        if conn.phase == Phase::Connecting {
            if !connected(&conn.stream)? {
                return Ok(());
            }
            conn.phase = Phase::Sending;
        }
        // TLS: the handshake's replies (and tickets) must be read while sending.
        if let (Phase::Sending | Phase::Closing, Some(link), Some(stream)) =
            (conn.phase, conn.tls.as_deref_mut(), conn.stream.as_mut())
        {
            match link.read(stream, sink) {
                Ok(0) => return Err(FailureKind::Reset),
                // The raw server sends nothing; whatever comes is ignored.
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::InvalidData => return Err(FailureKind::Tls),
                Err(_) => return Err(FailureKind::Reset),
            }
        }
        while conn.phase == Phase::Sending {
            if conn.remaining == 0 {
                if let (Some(link), Some(stream)) = (conn.tls.as_deref_mut(), conn.stream.as_mut())
                {
                    conn.phase = Phase::Closing;
                    if !link.close(stream)? {
                        return Ok(());
                    }
                }
                let stream = conn.stream.as_ref().ok_or(FailureKind::Reset)?;
                stream
                    .shutdown(Shutdown::Write)
                    .map_err(|_| FailureKind::Reset)?;
                conn.phase = Phase::Draining;
                break;
            }
            // The stream is the generated data repeated; continue where the last write stopped.
            let offset = (conn.sent % data.len() as u64) as usize;
            let len =
                (data.len() - offset).min(usize::try_from(conn.remaining).unwrap_or(usize::MAX));
            let chunk = data.get(offset..offset + len).unwrap_or_default();
            let written = match (conn.tls.as_deref_mut(), conn.stream.as_mut()) {
                (Some(link), Some(stream)) => link.write(stream, chunk)?,
                _ => write(&mut conn.stream, chunk)?,
            };
            match written {
                Some(n) => {
                    conn.sent += n as u64;
                    conn.remaining -= n as u64;
                }
                None => return Ok(()),
            }
        }
        if conn.phase == Phase::Closing {
            let stream = conn.stream.as_mut().ok_or(FailureKind::Reset)?;
            if let Some(link) = conn.tls.as_deref_mut() {
                if !link.flush(stream)? {
                    return Ok(());
                }
            }
            stream
                .shutdown(Shutdown::Write)
                .map_err(|_| FailureKind::Reset)?;
            conn.phase = Phase::Draining;
        }
        if conn.phase == Phase::Draining {
            let stream = conn.stream.as_mut().ok_or(FailureKind::Reset)?;
            loop {
                match retry_interrupted(|| tls::read(stream, conn.tls.as_deref_mut(), sink)) {
                    Ok(0) => {
                        conn.phase = Phase::Done;
                        conn.stream = None;
                        self.live -= 1;
                        self.completed += 1;
                        return Ok(());
                    }
                    // The raw server sends nothing; whatever comes is ignored.
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                    Err(_) => return Err(FailureKind::Reset),
                }
            }
        }
        Ok(())
    }

    fn fail(&mut self, index: usize, failure: FailureKind) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        if conn.phase == Phase::Done {
            return;
        }
        conn.phase = Phase::Done;
        conn.stream = None;
        self.live -= 1;
        self.failures.add(failure);
    }

    fn fail_all(&mut self, failure: FailureKind) {
        for index in 0..self.conns.len() {
            self.fail(index, failure);
        }
    }
}
