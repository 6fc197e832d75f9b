//! Pipelined load from many connections that records exactly which
//! messages the server acknowledged. Every message body is unique
//! (`TAG-cCONN-mSEQ|...`), so each one can be looked up in `messages.log`.
//!
//! One thread per connection reads status bytes; a second one writes
//! messages, at most `window` unacknowledged, several per `write`. Status
//! bytes arrive in order, so "acknowledged" is simply the first `acked`
//! messages of each connection.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use msglog_core::Transaction;

use super::records::Log;

/// Messages written with one `write`.
const PER_WRITE: u64 = 64;
/// A connection that hears nothing this long gives up (bounds every test).
const STALL: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub connections: usize,
    pub window: usize,
    /// Unique per run: names are `TAG` + connection number, bodies start with `TAG-`.
    pub tag: String,
    /// Bytes of every message body (at least 40).
    pub body_len: usize,
    pub max_per_connection: u64,
}

impl LoadConfig {
    pub fn new(tag: &str, connections: usize, window: usize) -> LoadConfig {
        LoadConfig {
            connections,
            window,
            tag: tag.to_owned(),
            body_len: 64,
            max_per_connection: u64::MAX,
        }
    }

    pub fn name(&self, conn: usize) -> String {
        format!("{}{conn:03}", self.tag)
    }

    /// The unique body of message `seq` of connection `conn`; it needs
    /// escaping (backslash, tab, a byte that is not UTF-8) and has a fixed length.
    pub fn body(&self, conn: usize, seq: u64) -> Vec<u8> {
        let mut body = format!("{}-c{conn:03}-m{seq:08}|\\\t\u{e9}", self.tag).into_bytes();
        body.push(0xff);
        body.push(b'|');
        body.resize(self.body_len.max(body.len()), b'x');
        body
    }

    /// Bytes of every record of this load (all names and bodies have the same length).
    pub fn record_len(&self) -> usize {
        msglog_core::record_len(&self.name(0), &self.body(0, 0))
    }
}

/// What one connection did.
#[derive(Debug, Clone, Default)]
pub struct ConnReport {
    pub conn: usize,
    pub name: String,
    /// Messages handed to `write` (some may not have left).
    pub sent: u64,
    /// Messages answered 0x00: exactly the first `acked` ones.
    pub acked: u64,
    /// The message answered 0xFF, if one was.
    pub rejected: Option<u64>,
    /// How the connection ended.
    pub end: String,
    /// The longest wait for status bytes while messages were in flight.
    pub longest_wait: Duration,
}

#[derive(Default)]
struct Totals {
    acked: AtomicU64,
    sent: AtomicU64,
    rejected: AtomicU64,
    ended: AtomicU64,
}

/// A running load.
pub struct Load {
    totals: Arc<Totals>,
    threads: Vec<JoinHandle<ConnReport>>,
}

impl Load {
    pub fn start(addr: SocketAddr, config: LoadConfig) -> Load {
        let config = Arc::new(config);
        let totals = Arc::new(Totals::default());
        let threads = (0..config.connections)
            .map(|conn| {
                let config = Arc::clone(&config);
                let totals = Arc::clone(&totals);
                std::thread::Builder::new()
                    .name(format!("load-{conn}"))
                    .spawn(move || {
                        let report = run_connection(addr, &config, conn, &totals);
                        totals.ended.fetch_add(1, Ordering::Relaxed);
                        report
                    })
                    .expect("spawn a load thread")
            })
            .collect();
        Load { totals, threads }
    }

    pub fn acked(&self) -> u64 {
        self.totals.acked.load(Ordering::Relaxed)
    }

    pub fn rejected(&self) -> u64 {
        self.totals.rejected.load(Ordering::Relaxed)
    }

    /// Connections that have ended.
    pub fn ended(&self) -> usize {
        self.totals.ended.load(Ordering::Relaxed) as usize
    }

    /// Wait for every connection to end: it sent everything and CLOSE, the
    /// server died, or it was answered 0xFF.
    pub fn join(self) -> Vec<ConnReport> {
        self.threads
            .into_iter()
            .map(|t| t.join().expect("a load thread panicked"))
            .collect()
    }
}

fn encode(out: &mut Vec<u8>, transaction: Transaction<'_>) {
    let start = out.len();
    out.resize(start + transaction.encoded_len(), 0);
    transaction
        .encode(&mut out[start..])
        .expect("a valid transaction");
}

/// Lower this thread's priority, so that the test thread deciding when to
/// kill the server is not starved by the load it watches.
fn yield_to_the_test() {
    // SAFETY: setpriority with PRIO_PROCESS and 0 changes only the calling
    // thread on Linux; failure just leaves the priority as it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 5);
    }
}

fn run_connection(
    addr: SocketAddr,
    config: &LoadConfig,
    conn: usize,
    totals: &Arc<Totals>,
) -> ConnReport {
    yield_to_the_test();
    let name = config.name(conn);
    let mut report = ConnReport {
        conn,
        name: name.clone(),
        ..ConnReport::default()
    };
    let mut stream = match TcpStream::connect(addr) {
        Ok(stream) => stream,
        Err(e) => {
            report.end = format!("connect: {e}");
            return report;
        }
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(STALL));
    let _ = stream.set_write_timeout(Some(STALL));
    let mut login = Vec::new();
    encode(&mut login, Transaction::Name(name.as_bytes()));
    encode(&mut login, Transaction::Password(b"pw"));
    if let Err(e) = stream.write_all(&login) {
        report.end = format!("login: {e}");
        return report;
    }
    // A server whose disk is full refuses the NAME (its open line does not
    // fit) with one 0xFF and closes: that is a rejection, not a failure.
    for stage in ["NAME", "PASSWORD"] {
        let mut status = [0u8; 1];
        if let Err(e) = stream.read_exact(&mut status) {
            report.end = format!("login: {stage} unanswered: {e}");
            return report;
        }
        if status[0] != 0 {
            report.rejected = Some(0);
            totals.rejected.fetch_add(1, Ordering::Relaxed);
            report.end = format!("login: {stage} answered 0x{:02x}", status[0]);
            return report;
        }
    }

    let sent = Arc::new(AtomicU64::new(0));
    let (tokens, room) = sync_channel::<()>(config.window);
    let writer = {
        let mut stream = stream.try_clone().expect("clone a socket");
        let sent = Arc::clone(&sent);
        let config = config.clone();
        let totals = Arc::clone(totals);
        std::thread::spawn(move || {
            yield_to_the_test();
            let mut seq = 0u64;
            let mut buffer = Vec::new();
            loop {
                if seq >= config.max_per_connection {
                    let _ = stream.write_all(&[msglog_core::Tag::Close.as_byte()]);
                    return seq;
                }
                if tokens.send(()).is_err() {
                    return seq;
                }
                let mut n = 1;
                while n < PER_WRITE
                    && seq + n < config.max_per_connection
                    && tokens.try_send(()).is_ok()
                {
                    n += 1;
                }
                buffer.clear();
                for i in 0..n {
                    encode(
                        &mut buffer,
                        Transaction::Message(&config.body(conn, seq + i)),
                    );
                }
                seq += n;
                sent.store(seq, Ordering::Release);
                totals.sent.fetch_add(n, Ordering::Relaxed);
                if stream.write_all(&buffer).is_err() {
                    return seq;
                }
            }
        })
    };

    let mut chunk = [0u8; 4096];
    let mut last_status = Instant::now();
    report.end = 'read: loop {
        let read = stream.read(&mut chunk);
        let waited = last_status.elapsed();
        last_status = Instant::now();
        if report.acked < sent.load(Ordering::Acquire) {
            report.longest_wait = report.longest_wait.max(waited);
        }
        match read {
            Ok(0) => break "eof".to_string(),
            Ok(n) => {
                for &status in &chunk[..n] {
                    if report.acked >= sent.load(Ordering::Acquire) {
                        // The answer to CLOSE; the server closes next.
                        continue;
                    }
                    if status != 0 {
                        report.rejected = Some(report.acked);
                        totals.rejected.fetch_add(1, Ordering::Relaxed);
                        break 'read format!("status 0x{status:02x}");
                    }
                    report.acked += 1;
                    totals.acked.fetch_add(1, Ordering::Relaxed);
                    let _ = room.try_recv();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break e.kind().to_string(),
        }
    };
    // Wake a writer blocked on the window or on a full socket.
    drop(room);
    let _ = stream.shutdown(Shutdown::Both);
    report.sent = writer.join().expect("writer thread");
    report
}

/// How the acknowledged messages of a load were found in a log.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub sent: u64,
    pub acked: u64,
    /// Acknowledged and found exactly once.
    pub found_once: u64,
    /// Acknowledged and not found: a broken promise.
    pub missing: u64,
    /// Found more than once: never allowed (each body is sent once).
    pub duplicated: u64,
    /// Not acknowledged (in flight at the crash) yet written: allowed.
    pub unacked_logged: u64,
    /// Logged after its connection's 0xFF: never allowed.
    pub after_reject_logged: u64,
    /// A message missing while a later one of the same connection is logged.
    pub gaps: u64,
}

impl Tally {
    pub fn of(log: &Log, config: &LoadConfig, reports: &[ConnReport]) -> Tally {
        let mut tally = Tally::default();
        for report in reports {
            tally.sent += report.sent;
            tally.acked += report.acked;
            let counts: Vec<u32> = (0..report.sent)
                .map(|seq| log.count(&report.name, &config.body(report.conn, seq)))
                .collect();
            let last_logged = counts.iter().rposition(|&c| c > 0);
            for (seq, &count) in counts.iter().enumerate() {
                let seq = seq as u64;
                if count > 1 {
                    tally.duplicated += 1;
                }
                if seq < report.acked {
                    match count {
                        0 => tally.missing += 1,
                        1 => tally.found_once += 1,
                        _ => {}
                    }
                } else if count > 0 {
                    tally.unacked_logged += 1;
                    if report.rejected.is_some_and(|r| seq >= r) {
                        tally.after_reject_logged += 1;
                    }
                }
                if count == 0 && last_logged.is_some_and(|last| seq < last as u64) {
                    tally.gaps += 1;
                }
            }
        }
        tally
    }

    /// The promise: every acknowledged message exactly once, no duplicate,
    /// nothing after a rejection, and each connection's records a prefix of what it sent.
    pub fn assert_kept(&self, what: &str) {
        assert!(
            self.missing == 0
                && self.duplicated == 0
                && self.after_reject_logged == 0
                && self.gaps == 0
                && self.found_once == self.acked,
            "{what}: {self:?}"
        );
    }
}
