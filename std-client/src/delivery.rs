//! At-least-once delivery: every message kept until the server
//! acknowledges it, and resent in order on a new connection after a lost one.

use std::collections::VecDeque;
use std::fmt;
use std::mem;
use std::net::ToSocketAddrs;
use std::thread;
use std::time::{Duration, Instant};

use msglog_core::Transaction;

use crate::{Connection, Credentials, Error, IdleState, Options};

/// A pause at least this long before a submission that finds nothing in
/// flight makes [`Delivery::submit`] look at the connection first (see
/// [`Delivery::poll`]); a look costs a system call or two, nothing next to
/// such a pause.
const IDLE_CHECK: Duration = Duration::from_millis(1);

/// When a [`Delivery`] reconnects after a lost connection, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Reconnections allowed over the delivery's life (0: a lost connection
    /// is an error at once).
    pub attempts: u32,
    /// The pause before a reconnection; it doubles with each failure in a
    /// row (a refused connection, say)...
    pub first_pause: Duration,
    /// ...up to this.
    pub max_pause: Duration,
}

impl RetryPolicy {
    /// No reconnection: a lost connection is an error.
    pub const NEVER: RetryPolicy = RetryPolicy::attempts(0);

    /// Up to `attempts` reconnections, with pauses from 0.1 s growing to 5 s.
    pub const fn attempts(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            first_pause: Duration::from_millis(100),
            max_pause: Duration::from_secs(5),
        }
    }

    /// The pause after `failures` failed attempts in a row.
    fn pause(&self, failures: u32) -> Duration {
        self.first_pause
            .saturating_mul(1 << failures.min(16))
            .min(self.max_pause)
    }
}

/// What a [`Delivery`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryStats {
    /// Messages handed to [`Delivery::submit`] and queued.
    pub submitted: u64,
    /// Messages the server has acknowledged: the first `acknowledged`
    /// messages submitted, since they are acknowledged in order.
    pub acknowledged: u64,
    /// Payload bytes of the acknowledged messages.
    pub bytes_acknowledged: u64,
    /// Reconnections made after a lost connection (successful or not).
    pub retries: u32,
    /// Messages resent that the server may have logged already: they were
    /// written to a connection that was lost before their status arrived.
    /// At most this many records are duplicates.
    pub maybe_duplicates: u64,
}

impl DeliveryStats {
    /// Messages submitted and not (yet) acknowledged.
    pub fn unacknowledged(&self) -> u64 {
        self.submitted - self.acknowledged
    }
}

/// Opens an authenticated connection, for each (re)connection.
type Connector = Box<dyn FnMut() -> Result<Connection, Error> + Send>;

/// At-least-once delivery of messages to one server as one user: a
/// [`Connection`] whose unacknowledged messages are kept, and resent in
/// order on a new connection when the connection is lost.
///
/// [`submit`](Delivery::submit) keeps a message and sends it pipelined (up
/// to [`Options::window`] in flight), [`queue`](Delivery::queue) the same
/// with the writes coalesced (as [`Connection::queue`] does);
/// [`finish`](Delivery::finish) waits
/// for every status and ends the session with CLOSE. When the connection is
/// refused, reset, closed or times out ([`Error::Connect`],
/// [`Error::Disconnected`], [`Error::Io`], [`Error::Timeout`]), the
/// delivery reconnects as its [`RetryPolicy`] allows (pausing the calling
/// thread) and resends every message not acknowledged. A message the
/// server wrote just before the connection broke is then logged twice;
/// [`DeliveryStats::maybe_duplicates`] bounds how many. A rejection (0xFF)
/// is never retried, nor is anything else: the first error a call returns
/// ends the delivery, and later calls fail with [`Error::SessionEnded`].
/// What was not acknowledged then is in
/// [`unacknowledged`](Delivery::unacknowledged), e.g. to be kept elsewhere.
///
/// The server's idle-timeout goodbye (PROTOCOL.md, decision 6) is no
/// failure: the connection is dropped and the next message opens another.
///
/// ```no_run
/// use msglog_client::{Credentials, Delivery, Options, RetryPolicy};
///
/// let credentials = Credentials::new("alice", "secret");
/// let mut delivery = Delivery::new(
///     "127.0.0.1:5555",
///     credentials,
///     Options::default(),
///     RetryPolicy::attempts(10),
/// );
/// for line in ["first", "second", "third"] {
///     delivery.submit(line.as_bytes())?;
/// }
/// let stats = delivery.finish()?;
/// assert_eq!(stats.acknowledged, 3);
/// println!("up to {} messages were logged twice", stats.maybe_duplicates);
/// # Ok::<(), msglog_client::Error>(())
/// ```
///
/// A caller with other things to wait for (input, say) waits for the
/// connection's socket too ([`connection`](Delivery::connection) is
/// `AsFd` on Unix, `AsSocket` on Windows) for at most
/// [`poll_timeout`](Delivery::poll_timeout), then calls
/// [`poll`](Delivery::poll): acknowledgements are counted as they come
/// and a lost connection is replaced at once, not at the next message.
pub struct Delivery {
    connect: Connector,
    retry: RetryPolicy,
    /// `None` before the first connection, after the server's goodbye and
    /// after a failure.
    connection: Option<Connection>,
    connections_opened: u64,
    /// Unacknowledged messages, oldest first; resent after a failure.
    pending: VecDeque<Vec<u8>>,
    /// Buffers of acknowledged messages, reused for the next ones.
    spare: Vec<Vec<u8>>,
    /// Messages of the current connection already taken off `pending`.
    session_acknowledged: u64,
    /// The oldest messages of `pending` that were written to a connection
    /// lost before their status came: duplicates, once resent.
    in_doubt: u64,
    retries_left: u32,
    /// Failed attempts since the last successful connection (sets the pause).
    failures_in_a_row: u32,
    stats: DeliveryStats,
    /// When the last submission that found nothing in flight began.
    last_submit: Instant,
    /// An error was returned: the delivery is over.
    ended: bool,
}

impl Delivery {
    /// A delivery to `server` (resolved again for each connection) as
    /// `credentials.user()`. Nothing is connected until
    /// [`connect`](Delivery::connect) or the first message.
    pub fn new<A>(server: A, credentials: Credentials, options: Options, retry: RetryPolicy) -> Self
    where
        A: ToSocketAddrs + Send + 'static,
    {
        Delivery::with_connector(
            move || Connection::open(&server, &credentials, &options),
            retry,
        )
    }

    /// A delivery over the connections `connect` opens (connected and
    /// authenticated), e.g. with options or a transport of the caller's.
    pub fn with_connector<F>(connect: F, retry: RetryPolicy) -> Self
    where
        F: FnMut() -> Result<Connection, Error> + Send + 'static,
    {
        Delivery {
            connect: Box::new(connect),
            retry,
            connection: None,
            connections_opened: 0,
            pending: VecDeque::new(),
            spare: Vec::new(),
            session_acknowledged: 0,
            in_doubt: 0,
            retries_left: retry.attempts,
            failures_in_a_row: 0,
            stats: DeliveryStats::default(),
            last_submit: Instant::now(),
            ended: false,
        }
    }

    /// Connect and authenticate now, if not connected (retrying as the
    /// policy allows), e.g. to report a wrong password before any message.
    pub fn connect(&mut self) -> Result<(), Error> {
        self.check_not_ended()?;
        if self.connection.is_some() {
            return Ok(());
        }
        match self.reopen() {
            Ok(()) => Ok(()),
            Err(error) => self.recover(error),
        }
    }

    /// Queue `message` and send it now, without waiting for its status,
    /// unless the window is full (then the oldest status is awaited
    /// first); on a new connection if there is none. After a pause in the
    /// submissions, the connection is looked at first (see
    /// [`poll`](Delivery::poll)).
    ///
    /// An invalid message (empty, or longer than 65535 bytes) is refused
    /// with [`Error::Invalid`] and ends nothing; after
    /// [`Error::SessionEnded`] nothing is queued either. Whatever else
    /// happens, the message is queued: after an error it is among the
    /// [`unacknowledged`](Delivery::unacknowledged).
    pub fn submit(&mut self, message: &[u8]) -> Result<(), Error> {
        self.push(message, true)
    }

    /// As [`submit`](Delivery::submit), but the message waits to be
    /// written with the ones after it (see [`Connection::queue`]): when
    /// the window is full, when 64 KiB of frames wait, or at the next
    /// [`flush`](Delivery::flush), [`poll`](Delivery::poll) or
    /// [`finish`](Delivery::finish). The way to send a stream of messages
    /// that are ready at once; flush before waiting for anything else.
    pub fn queue(&mut self, message: &[u8]) -> Result<(), Error> {
        self.push(message, false)
    }

    /// Write the queued messages now (reconnecting and resending as the
    /// policy allows if that fails).
    pub fn flush(&mut self) -> Result<(), Error> {
        self.check_not_ended()?;
        let Some(connection) = self.connection.as_mut() else {
            return Ok(());
        };
        let flushed = connection.flush();
        self.collect_acknowledged();
        match flushed {
            Ok(()) => Ok(()),
            Err(error) => self.recover(error),
        }
    }

    fn push(&mut self, message: &[u8], write_now: bool) -> Result<(), Error> {
        self.check_not_ended()?;
        Transaction::Message(message)
            .header()
            .map_err(Error::Invalid)?;
        // Only a connection with nothing in flight can have been ended
        // unseen (with statuses awaited, reading them tells): the clock is
        // read then only, not per message of a stream.
        let idle = self.connection.as_ref().is_some_and(|c| c.in_flight() == 0);
        let looked = if idle {
            let now = Instant::now();
            let paused = now.duration_since(self.last_submit) >= IDLE_CHECK;
            self.last_submit = now;
            if paused {
                self.poll()
            } else {
                Ok(())
            }
        } else {
            Ok(())
        };
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(message);
        self.pending.push_back(bytes);
        self.stats.submitted += 1;
        looked?;
        let sent = match (self.connection.as_mut(), self.pending.back()) {
            (Some(connection), Some(message)) if write_now => connection.submit(message),
            (Some(connection), Some(message)) => connection.queue(message),
            // Sends every pending message, this one included.
            _ => self.reopen(),
        };
        self.collect_acknowledged();
        match sent {
            Ok(()) => Ok(()),
            Err(error) => self.recover(error),
        }
    }

    /// Without waiting: write what is queued, count the statuses that have
    /// arrived, and act on how the connection stands. A lost connection is replaced now (as
    /// the policy allows; the pause before a reconnection does wait), and
    /// a status overdue by [`Options::io_timeout`] is a lost connection;
    /// the server's goodbye with nothing in flight drops the connection,
    /// and the next message opens another.
    pub fn poll(&mut self) -> Result<(), Error> {
        self.check_not_ended()?;
        let Some(connection) = self.connection.as_mut() else {
            return Ok(());
        };
        let polled = connection.poll();
        let state = match polled {
            Ok(()) => connection.idle_state(),
            Err(_) => IdleState::Open,
        };
        self.collect_acknowledged();
        if let Err(error) = polled {
            return self.recover(error);
        }
        match state {
            IdleState::Goodbye => {
                self.connection = None;
                Ok(())
            }
            IdleState::Gone(e) => self.recover(Error::Io(e)),
            _ => Ok(()),
        }
    }

    /// How long a caller waiting for the connection's socket may wait before
    /// it must [`poll`](Delivery::poll): until the oldest status in flight is
    /// overdue. `None`: nothing is in flight, or there is no timeout.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.connection.as_ref()?.poll_timeout()
    }

    /// Wait until every message is acknowledged (reconnecting and resending
    /// as the policy allows), then end the session with CLOSE. A later
    /// message opens a new connection.
    pub fn finish(&mut self) -> Result<DeliveryStats, Error> {
        self.check_not_ended()?;
        loop {
            let Some(connection) = self.connection.as_mut() else {
                if self.pending.is_empty() {
                    return Ok(self.stats);
                }
                if let Err(error) = self.reopen() {
                    self.recover(error)?;
                }
                continue;
            };
            let closed = connection.close();
            self.collect_acknowledged();
            match closed {
                Ok(()) => {}
                // Every message is acknowledged; only the goodbye failed.
                Err(_) if self.pending.is_empty() => {}
                Err(error) => {
                    self.recover(error)?;
                    continue;
                }
            }
            self.connection = None;
            return Ok(self.stats);
        }
    }

    /// What the delivery has done so far.
    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }

    /// The messages not acknowledged, oldest first: after an error, the
    /// ones the server may not have logged.
    pub fn unacknowledged(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.pending.iter().map(Vec::as_slice)
    }

    /// The current connection, if any: e.g. to wait for its socket.
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// Connections opened so far: when it changes, the
    /// [`connection`](Delivery::connection) is a new one (a socket to
    /// register again in the caller's poll, say).
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened
    }

    fn check_not_ended(&self) -> Result<(), Error> {
        if self.ended {
            return Err(Error::SessionEnded);
        }
        Ok(())
    }

    /// Take the messages the connection acknowledged off `pending`.
    fn collect_acknowledged(&mut self) {
        let Some(connection) = &self.connection else {
            return;
        };
        let acknowledged = connection.messages_acknowledged();
        while self.session_acknowledged < acknowledged {
            let Some(done) = self.pending.pop_front() else {
                break;
            };
            self.session_acknowledged += 1;
            self.stats.acknowledged += 1;
            self.stats.bytes_acknowledged += done.len() as u64;
            self.spare.push(done);
        }
    }

    /// After `error`: reconnect and resend `pending` while the policy
    /// allows, or end the delivery with the error.
    fn recover(&mut self, mut error: Error) -> Result<(), Error> {
        loop {
            if let Some(lost) = self.connection.take() {
                // The server may have written these before the connection broke.
                self.in_doubt = lost.messages_sent() - lost.messages_acknowledged();
            }
            if self.retries_left == 0 || !retryable(&error) {
                self.ended = true;
                return Err(error);
            }
            self.retries_left -= 1;
            self.stats.retries += 1;
            thread::sleep(self.retry.pause(self.failures_in_a_row));
            self.failures_in_a_row += 1;
            match self.reopen() {
                Ok(()) => return Ok(()),
                Err(next) => error = next,
            }
        }
    }

    /// Connect, authenticate, and resend every unacknowledged message in
    /// order, as few writes as the window allows.
    fn reopen(&mut self) -> Result<(), Error> {
        let mut connection = (self.connect)()?;
        self.connections_opened += 1;
        self.failures_in_a_row = 0;
        self.session_acknowledged = 0;
        self.stats.maybe_duplicates += mem::take(&mut self.in_doubt);
        let resent = self
            .pending
            .iter()
            .try_for_each(|message| connection.queue(message))
            .and_then(|()| connection.flush());
        self.connection = Some(connection);
        self.collect_acknowledged();
        resent
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("retry", &self.retry)
            .field("connection", &self.connection)
            .field("pending", &self.pending.len())
            .field("stats", &self.stats)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// Whether a new connection may succeed where this one failed. A server's
/// rejection is final; so is an address that does not resolve.
fn retryable(error: &Error) -> bool {
    matches!(
        error,
        Error::Connect { .. } | Error::Timeout | Error::Io(_) | Error::Disconnected { .. }
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::mpsc;

    use msglog_core::{decode, Decoded, Limits};

    use super::*;
    use crate::Stage;

    /// Longest wait for anything in these tests.
    const DEADLINE: Duration = Duration::from_secs(60);

    /// Retries without the default's long pauses.
    const QUICK_RETRY: RetryPolicy = RetryPolicy {
        attempts: 5,
        first_pause: Duration::from_millis(10),
        max_pause: Duration::from_millis(100),
    };

    /// How the in-test server treats one connection once it has
    /// acknowledged the login.
    #[derive(Debug, Clone, Copy)]
    enum Treatment {
        /// Log and acknowledge every message, answer CLOSE.
        Healthy,
        /// Log every message up to CLOSE but acknowledge only the first
        /// `n`, then close and stop listening: a crash between writing
        /// records and answering them. The next connection is accepted by
        /// a new listener on the same port, as after a restart.
        CrashAfterAcknowledging(usize),
        /// Answer the message with this payload 0xFF and close, as
        /// msglog-server does.
        Reject(&'static [u8]),
        /// Say goodbye unasked (the 0xFF of an idle timeout) and close.
        Goodbye,
    }

    /// A msglog server on 127.0.0.1, minimal and scripted: it treats its
    /// connections one after another as its treatments say, then stops.
    struct TestServer {
        addr: SocketAddr,
        logged: mpsc::Receiver<Vec<Vec<u8>>>,
    }

    impl TestServer {
        fn start(treatments: Vec<Treatment>) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let (done, logged) = mpsc::channel();
            thread::spawn(move || {
                let mut listener = Some(listener);
                let mut log = Vec::new();
                for treatment in treatments {
                    // After a crash: restarted on the same port.
                    let server = listener.get_or_insert_with(|| TcpListener::bind(addr).unwrap());
                    let (stream, _) = server.accept().unwrap();
                    if serve(stream, treatment, &mut log) {
                        listener = None;
                    }
                }
                let _ = done.send(log);
            });
            TestServer { addr, logged }
        }

        /// Every message logged, in order, once every connection was served.
        fn logged(self) -> Vec<Vec<u8>> {
            self.logged
                .recv_timeout(DEADLINE)
                .expect("the server served every connection")
        }
    }

    /// A transaction the server received, or the end of the stream.
    #[derive(Debug, PartialEq)]
    enum Received {
        Login,
        Message(Vec<u8>),
        Close,
        End,
    }

    /// Transactions read off a stream with the core's decoder.
    struct Transactions {
        stream: TcpStream,
        buffer: Vec<u8>,
    }

    impl Transactions {
        fn next(&mut self) -> Received {
            loop {
                let (received, consumed) = match decode(&self.buffer, &Limits::WIRE) {
                    Ok(Decoded::Complete {
                        transaction,
                        consumed,
                    }) => match transaction {
                        Transaction::Name(_) | Transaction::Password(_) => {
                            (Received::Login, consumed)
                        }
                        Transaction::Message(m) => (Received::Message(m.to_vec()), consumed),
                        Transaction::Close => (Received::Close, consumed),
                    },
                    Ok(Decoded::Partial { .. }) => {
                        let mut chunk = [0u8; 4096];
                        match self.stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return Received::End,
                            Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    }
                    Err(e) => panic!("the client sent an invalid frame: {e}"),
                };
                self.buffer.drain(..consumed);
                return received;
            }
        }

        /// Read up to CLOSE or the end, so that closing sends FIN, not RST.
        fn drain(&mut self) {
            while !matches!(self.next(), Received::Close | Received::End) {}
        }
    }

    /// Serve one connection; whether the server crashed.
    fn serve(mut stream: TcpStream, treatment: Treatment, log: &mut Vec<Vec<u8>>) -> bool {
        let mut received = Transactions {
            stream: stream.try_clone().unwrap(),
            buffer: Vec::new(),
        };
        for _ in 0..2 {
            assert_eq!(received.next(), Received::Login);
        }
        stream.write_all(&[0, 0]).unwrap();
        if let Treatment::Goodbye = treatment {
            stream.write_all(&[0xFF]).unwrap();
            return false;
        }
        let mut messages = 0;
        loop {
            match (received.next(), treatment) {
                (Received::Message(m), Treatment::Reject(bad)) if m == bad => {
                    stream.write_all(&[0xFF]).unwrap();
                    received.drain();
                    return false;
                }
                (Received::Message(m), _) => {
                    log.push(m);
                    messages += 1;
                    let answer = match treatment {
                        Treatment::CrashAfterAcknowledging(n) => messages <= n,
                        _ => true,
                    };
                    if answer {
                        stream.write_all(&[0]).unwrap();
                    }
                }
                (Received::Close, Treatment::CrashAfterAcknowledging(_)) => return true,
                (Received::Close, _) => {
                    stream.write_all(&[0]).unwrap();
                    return false;
                }
                (Received::End, treatment) => {
                    return matches!(treatment, Treatment::CrashAfterAcknowledging(_))
                }
                (Received::Login, _) => panic!("a second login"),
            }
        }
    }

    fn delivery(server: &TestServer, retry: RetryPolicy) -> Delivery {
        let options = Options {
            connect_timeout: Some(DEADLINE),
            io_timeout: Some(DEADLINE),
            window: 16,
            ..Options::default()
        };
        Delivery::new(server.addr, Credentials::new("u", "p"), options, retry)
    }

    fn numbered(count: usize) -> Vec<Vec<u8>> {
        (0..count).map(|i| format!("m{i}").into_bytes()).collect()
    }

    #[test]
    fn a_server_restart_resends_what_was_not_acknowledged() {
        let server = TestServer::start(vec![
            Treatment::CrashAfterAcknowledging(5),
            Treatment::Healthy,
        ]);
        let mut delivery = delivery(&server, QUICK_RETRY);
        let messages = numbered(10);
        for message in &messages {
            delivery.submit(message).unwrap();
        }
        let stats = delivery.finish().unwrap();
        assert_eq!(stats.submitted, 10);
        assert_eq!(stats.acknowledged, 10);
        assert_eq!(stats.unacknowledged(), 0);
        let bytes: usize = messages.iter().map(Vec::len).sum();
        assert_eq!(stats.bytes_acknowledged, bytes as u64);
        // A reconnection may be refused before the restarted server listens.
        assert!((1..=5).contains(&stats.retries), "{stats:?}");
        assert_eq!(delivery.connections_opened(), 2);
        // Ten written to the first connection, five of them acknowledged.
        assert_eq!(stats.maybe_duplicates, 5);
        assert_eq!(delivery.unacknowledged().len(), 0);

        // Every message logged, in order; the five logged but not
        // acknowledged before the crash were logged again.
        let mut expected = messages.clone();
        expected.extend_from_slice(&messages[5..]);
        assert_eq!(server.logged(), expected);
    }

    #[test]
    fn a_rejection_is_not_retried_and_ends_the_delivery() {
        let server = TestServer::start(vec![Treatment::Reject(b"bad")]);
        let mut delivery = delivery(&server, QUICK_RETRY);
        for message in [&b"good"[..], b"bad", b"after"] {
            delivery.submit(message).unwrap();
        }
        let error = delivery.finish().unwrap_err();
        assert!(
            matches!(
                error,
                Error::Rejected {
                    stage: Stage::Message(1)
                }
            ),
            "{error:?}"
        );
        let stats = delivery.stats();
        assert_eq!((stats.acknowledged, stats.retries), (1, 0));
        assert_eq!(stats.maybe_duplicates, 0);
        assert_eq!(delivery.connections_opened(), 1);
        let left: Vec<&[u8]> = delivery.unacknowledged().collect();
        assert_eq!(left, [&b"bad"[..], b"after"]);
        assert!(matches!(delivery.submit(b"more"), Err(Error::SessionEnded)));
        assert!(matches!(delivery.finish(), Err(Error::SessionEnded)));
        assert_eq!(server.logged(), [b"good".to_vec()]);
    }

    #[test]
    fn a_goodbye_while_idle_is_no_failure_and_the_next_message_reconnects() {
        let server = TestServer::start(vec![Treatment::Goodbye, Treatment::Healthy]);
        let mut delivery = delivery(&server, RetryPolicy::NEVER);
        delivery.connect().unwrap();
        let start = Instant::now();
        while delivery.connection().is_some() {
            delivery.poll().unwrap();
            assert!(start.elapsed() < DEADLINE, "the goodbye was not noticed");
            thread::sleep(Duration::from_millis(5));
        }
        delivery.submit(b"after the goodbye").unwrap();
        let stats = delivery.finish().unwrap();
        assert_eq!((stats.acknowledged, stats.retries), (1, 0));
        assert_eq!(delivery.connections_opened(), 2);
        assert_eq!(server.logged(), [b"after the goodbye".to_vec()]);
    }

    #[test]
    fn retries_run_out_against_a_server_that_is_gone() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let retry = RetryPolicy {
            attempts: 2,
            first_pause: Duration::from_millis(1),
            max_pause: Duration::from_millis(1),
        };
        let mut delivery =
            Delivery::new(addr, Credentials::new("u", "p"), Options::default(), retry);
        let error = delivery.connect().unwrap_err();
        assert!(matches!(error, Error::Connect { .. }), "{error:?}");
        assert_eq!(delivery.stats().retries, 2);
        assert_eq!(delivery.connections_opened(), 0);
        assert!(matches!(delivery.submit(b"m"), Err(Error::SessionEnded)));
    }

    #[test]
    fn an_invalid_message_is_refused_and_ends_nothing() {
        let server = TestServer::start(vec![Treatment::Healthy]);
        let mut delivery = delivery(&server, RetryPolicy::NEVER);
        assert!(matches!(delivery.submit(b""), Err(Error::Invalid(_))));
        let too_long = vec![b'x'; msglog_core::MAX_PAYLOAD + 1];
        assert!(matches!(delivery.submit(&too_long), Err(Error::Invalid(_))));
        assert_eq!(delivery.stats().submitted, 0);
        delivery.submit(b"fine").unwrap();
        assert_eq!(delivery.finish().unwrap().acknowledged, 1);
        assert_eq!(server.logged(), [b"fine".to_vec()]);
    }

    #[test]
    fn pauses_double_up_to_the_limit() {
        let policy = RetryPolicy::attempts(3);
        let pauses: Vec<u64> = (0..8).map(|n| policy.pause(n).as_millis() as u64).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(RetryPolicy::NEVER.attempts, 0);
    }
}
