//! One authenticated session with a msglog server.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use msglog_core::{valid_name, Transaction};

use crate::connect::connect;
use crate::pipeline::Pipeline;
use crate::transport::Peeked;
use crate::{Credentials, Error, Options, Transport};

/// How a connection with nothing in flight stands; see [`Connection::idle_state`].
#[derive(Debug)]
#[non_exhaustive]
pub enum IdleState {
    /// Nothing arrived: the session goes on.
    Open,
    /// The server sent a byte unasked, and ends the session: the 0xFF of an
    /// idle timeout (PROTOCOL.md, decision 6). It is alive: a new connection
    /// may be opened when there is something to send.
    Goodbye,
    /// The server closed or reset the connection without a word: it
    /// stopped, crashed or restarted, or something between cut the connection.
    Gone(io::Error),
}

/// A connection to a msglog server in framed mode: NAME and PASSWORD, then
/// messages, each acknowledged by the server, then CLOSE.
///
/// Up to [`Options::window`] transactions are in flight; statuses are
/// matched in order by the core's [`ClientSession`](msglog_core::ClientSession).
/// [`submit`](Connection::submit) writes a message at once;
/// [`queue`](Connection::queue) gathers messages and writes them together
/// when the window is full, when 64 KiB of frames are waiting, or at the
/// next [`flush`](Connection::flush), [`poll`](Connection::poll),
/// [`wait`](Connection::wait) or [`close`](Connection::close): a stream of
/// small messages costs a write per window rather than per message, and
/// the statuses are read in bulk. Either way a frame is never split across
/// two writes (the original server requires it) unless the kernel takes
/// only part of one. A status awaited longer than [`Options::io_timeout`]
/// (from the submission that found nothing in flight, or from the last
/// status) fails with [`Error::Timeout`]. After any error other than
/// [`Error::Invalid`] the session is over: the connection must be dropped
/// and a new one opened.
///
/// ```no_run
/// use msglog_client::{Connection, Credentials, Options};
///
/// let credentials = Credentials::new("alice", "secret");
/// let mut connection = Connection::open("127.0.0.1:5555", &credentials, &Options::default())?;
/// connection.send(b"one message, acknowledged before send returns")?;
/// let acknowledged = connection.send_pipelined(["two", "pipelined", "messages"])?;
/// assert_eq!(acknowledged, 3);
/// for line in ["many", "small", "messages"] {
///     connection.queue(line.as_bytes())?; // written a window at a time
/// }
/// connection.close()?;
/// # Ok::<(), msglog_client::Error>(())
/// ```
#[derive(Debug)]
pub struct Connection {
    pipeline: Pipeline,
    peer: SocketAddr,
}

impl Connection {
    /// Open a TCP connection to `server` (not yet authenticated), trying each
    /// of its addresses with the options' connect timeout; with
    /// [`Options::tls`] (feature `tls`), then the TLS handshake.
    ///
    /// Over TLS, the server's certificate is checked for the
    /// [`TlsConnector`](crate::TlsConnector)'s server name, else for the IP
    /// address connected to ([`ConnectionTable`](crate::ConnectionTable)
    /// uses the host of its server string).
    pub fn connect<A: ToSocketAddrs>(server: A, options: &Options) -> Result<Self, Error> {
        Connection::connect_to(server, None, options)
    }

    /// [`connect`](Self::connect), with the host name of `server` when known.
    pub(crate) fn connect_to<A: ToSocketAddrs>(
        server: A,
        host: Option<&str>,
        options: &Options,
    ) -> Result<Self, Error> {
        let stream = connect(server, options)?;
        // Each write carries whole transactions already; send it at once.
        stream.set_nodelay(true).map_err(Error::Io)?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &options.tls {
            let stream = tls.handshake(stream, host)?;
            return Connection::over(stream, options);
        }
        let _ = host;
        Connection::over(stream, options)
    }

    /// A session (not yet authenticated) over a transport of the caller's:
    /// a connected `TcpStream`, a [`TlsStream`](crate::TlsStream), or any
    /// other [`Transport`]. Its reads are bounded by [`Options::io_timeout`]
    /// through [`Transport::set_read_timeout`]; writes by whatever the
    /// transport does (a `TcpStream` from [`connect`](crate::connect) has a
    /// write timeout).
    pub fn over<T: Transport + 'static>(transport: T, options: &Options) -> Result<Self, Error> {
        let peer = transport.peer_addr().map_err(Error::Io)?;
        let timeout = options.io_timeout.filter(|t| !t.is_zero());
        transport.set_read_timeout(timeout).map_err(Error::Io)?;
        Ok(Connection {
            pipeline: Pipeline::new(Box::new(transport), options.window, timeout, timeout),
            peer,
        })
    }

    /// Connect and authenticate.
    pub fn open<A: ToSocketAddrs>(
        server: A,
        credentials: &Credentials,
        options: &Options,
    ) -> Result<Self, Error> {
        let mut connection = Connection::connect(server, options)?;
        connection.authenticate(credentials.user(), credentials.password())?;
        Ok(connection)
    }

    /// Send NAME and PASSWORD (in one write) and wait until both are accepted.
    pub fn authenticate(&mut self, user: &str, password: &[u8]) -> Result<(), Error> {
        if self.pipeline.session().is_authenticated() {
            return Err(Error::AlreadyAuthenticated);
        }
        if valid_name(user.as_bytes()).is_none() {
            return Err(Error::InvalidName);
        }
        self.pipeline.login(user.as_bytes(), password)
    }

    /// Send one message and wait until the server acknowledges it (and every
    /// message submitted before it).
    pub fn send(&mut self, message: &[u8]) -> Result<(), Error> {
        self.queue(message)?;
        self.wait()
    }

    /// Send every message of `messages`, keeping up to the window in flight
    /// (coalesced as [`queue`](Connection::queue) does), and wait until all
    /// are acknowledged. Returns how many were sent.
    ///
    /// On [`Error::Rejected`] or [`Error::Disconnected`], the error's stage
    /// names the first message not acknowledged (counted from the start of
    /// the session); [`Connection::messages_acknowledged`] gives the count
    /// after any error. An invalid message stops the sending: the messages
    /// before it are awaited, then [`Error::Invalid`] is returned.
    pub fn send_pipelined<I>(&mut self, messages: I) -> Result<u64, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let before = self.pipeline.session().messages_submitted();
        for message in messages {
            if let Err(error) = self.queue(message.as_ref()) {
                if let Error::Invalid(_) = error {
                    self.wait()?;
                }
                return Err(error);
            }
        }
        self.wait()?;
        Ok(self.pipeline.session().messages_submitted() - before)
    }

    /// Send one message now, without waiting for its status, unless the
    /// window is full, in which case the oldest status is awaited first.
    /// Messages queued before it go out in the same write. An invalid
    /// message is refused before anything is sent and ends nothing.
    pub fn submit(&mut self, message: &[u8]) -> Result<(), Error> {
        self.queue(message)?;
        self.pipeline.flush()
    }

    /// Queue one message for the next write, without waiting for its
    /// status. The queue is written when the window is full (then the
    /// oldest statuses are awaited, as many as have arrived being read at
    /// once), when 64 KiB of frames are waiting, and by
    /// [`flush`](Connection::flush), [`poll`](Connection::poll),
    /// [`wait`](Connection::wait) and [`close`](Connection::close): call
    /// one of them before waiting for the socket yourself. An invalid
    /// message is refused before anything is sent and ends nothing.
    ///
    /// A queued message is in flight (it counts in the window, and its
    /// status's timeout runs) from now on.
    pub fn queue(&mut self, message: &[u8]) -> Result<(), Error> {
        if !self.pipeline.session().is_authenticated() {
            return Err(Error::NotAuthenticated);
        }
        self.pipeline.queue(&Transaction::Message(message))
    }

    /// Write every queued message now.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.pipeline.flush()
    }

    /// Write what is queued, then read the statuses that have already
    /// arrived, without blocking: acknowledgements are counted, and a
    /// rejection, a closed connection or a status overdue by
    /// [`Options::io_timeout`] ([`Error::Timeout`]) is reported now rather
    /// than at the next send.
    pub fn poll(&mut self) -> Result<(), Error> {
        self.pipeline.poll()
    }

    /// How long until the oldest status in flight is overdue, for a caller
    /// that waits for the socket itself (its `AsFd` on Unix, `AsSocket` on Windows) and then calls
    /// [`Connection::poll`]: `None` with nothing in flight or no
    /// [`Options::io_timeout`], zero once overdue.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let deadline = self.pipeline.session().poll_timeout()?;
        let now = self.pipeline.now();
        Some(Duration::from_nanos(deadline.saturating_sub(now)))
    }

    /// Write what is queued and wait until every message submitted so far
    /// is acknowledged.
    pub fn wait(&mut self) -> Result<(), Error> {
        self.pipeline.wait()
    }

    /// Send CLOSE and wait for its answer, after the statuses of every
    /// message in flight. Ends the session whatever the outcome.
    pub fn close(&mut self) -> Result<(), Error> {
        if self.pipeline.session().is_ended() {
            return Err(Error::SessionEnded);
        }
        self.pipeline.queue(&Transaction::Close)?;
        self.pipeline.wait()
    }

    /// Messages written to the socket in this session (queued ones not
    /// yet): the ones the server may have logged.
    pub fn messages_sent(&self) -> u64 {
        self.pipeline.messages_written()
    }

    /// Messages the server has acknowledged in this session; after an error,
    /// the index of the first message not acknowledged.
    pub fn messages_acknowledged(&self) -> u64 {
        self.pipeline.session().messages_acknowledged()
    }

    /// Transactions submitted (queued or written) whose status has not been read yet.
    pub fn in_flight(&self) -> usize {
        self.pipeline.session().in_flight()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection is authenticated and has not ended.
    pub fn is_open(&self) -> bool {
        let session = self.pipeline.session();
        session.is_authenticated() && !session.is_ended()
    }

    /// Whether the connection can take another message right now: it is
    /// open, nothing is in flight, and the server has neither closed it nor
    /// sent anything unasked (a server answers an idle timeout with 0xFF and
    /// closes; that byte must not be mistaken for the status of a new message).
    pub fn is_usable(&mut self) -> bool {
        self.is_open()
            && self.in_flight() == 0
            && self.pipeline.buffered() == 0
            && matches!(self.pipeline.peek(), Peeked::Nothing)
    }

    /// With nothing in flight, whether the server has ended the session,
    /// without reading or waiting; anything but [`IdleState::Open`] ends it
    /// here too. With transactions in flight, [`IdleState::Open`]: their
    /// statuses come first (see [`Connection::poll`]).
    pub fn idle_state(&mut self) -> IdleState {
        if self.in_flight() > 0 {
            return IdleState::Open;
        }
        // A byte read along with the last statuses came unasked too.
        let state = if self.pipeline.buffered() > 0 {
            IdleState::Goodbye
        } else {
            match self.pipeline.peek() {
                Peeked::Nothing => return IdleState::Open,
                Peeked::Byte(_) => IdleState::Goodbye,
                Peeked::Closed(e) => IdleState::Gone(e),
            }
        };
        // The session ends here too: nothing more is sent on this connection.
        self.pipeline.transport_ended();
        state
    }
}

impl Connection {
    /// The transport, for `platform`'s `AsFd` (Unix) or `AsSocket` (Windows).
    pub(crate) fn stream(&self) -> &crate::transport::BoxedTransport {
        self.pipeline.stream()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    /// A server on 127.0.0.1 that accepts the login of user `u` with
    /// password `p`, then reads one message and never answers it (until the
    /// test is over).
    fn silent_after_login() -> (SocketAddr, mpsc::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (done, finished) = mpsc::channel::<()>();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut login = [0u8; 8]; // 01 01 00 'u' 02 01 00 'p'
            stream.read_exact(&mut login).unwrap();
            stream.write_all(&[0, 0]).unwrap();
            let mut message = [0u8; 4];
            let _ = stream.read_exact(&mut message);
            let _ = finished.recv_timeout(Duration::from_secs(60));
        });
        (addr, done)
    }

    /// A server on 127.0.0.1 that accepts any login and says goodbye (an
    /// idle timeout's 0xFF) in the same write as the login's statuses.
    fn goodbye_with_the_login() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut login = [0u8; 8];
            stream.read_exact(&mut login).unwrap();
            stream.write_all(&[0, 0, 0xFF]).unwrap();
            // Closed once the client has gone.
            let _ = stream.read(&mut [0u8; 1]);
        });
        addr
    }

    fn options(io_timeout: Duration) -> Options {
        Options {
            connect_timeout: Some(Duration::from_secs(10)),
            io_timeout: Some(io_timeout),
            window: 4,
            ..Options::default()
        }
    }

    #[test]
    fn an_overdue_status_times_out_and_ends_the_session() {
        let (addr, _done) = silent_after_login();
        let credentials = Credentials::new("u", "p");
        let timeout = Duration::from_millis(300);
        let mut connection = Connection::open(addr, &credentials, &options(timeout)).unwrap();
        let sent = Instant::now();
        connection.submit(b"m").unwrap();
        assert!(matches!(connection.wait(), Err(Error::Timeout)));
        let waited = sent.elapsed();
        assert!(
            waited >= timeout && waited < Duration::from_secs(10),
            "{waited:?}"
        );
        assert!(!connection.is_open());
        assert_eq!(connection.messages_acknowledged(), 0);
        assert!(matches!(connection.close(), Err(Error::SessionEnded)));
    }

    #[test]
    fn poll_reports_an_overdue_status_without_blocking() {
        let (addr, _done) = silent_after_login();
        let credentials = Credentials::new("u", "p");
        let timeout = Duration::from_secs(2);
        let mut connection = Connection::open(addr, &credentials, &options(timeout)).unwrap();
        assert_eq!(connection.poll_timeout(), None);
        connection.submit(b"m").unwrap();
        let left = connection.poll_timeout().expect("a status is awaited");
        assert!(left <= timeout, "{left:?}");
        // What a caller's own wait does: sleep until the deadline, then poll.
        thread::sleep(left);
        assert_eq!(connection.poll_timeout(), Some(Duration::ZERO));
        let polling = Instant::now();
        assert!(matches!(connection.poll(), Err(Error::Timeout)));
        let polled = polling.elapsed();
        assert!(polled < timeout / 2, "{polled:?}");
        assert!(!connection.is_open());
        assert_eq!(connection.poll_timeout(), None);
    }

    #[test]
    fn a_goodbye_read_along_with_the_login_is_a_goodbye() {
        let addr = goodbye_with_the_login();
        let credentials = Credentials::new("u", "p");
        let timeout = Duration::from_secs(10);
        let mut connection = Connection::open(addr, &credentials, &options(timeout)).unwrap();
        let start = Instant::now();
        loop {
            assert!(!connection.is_usable());
            match connection.idle_state() {
                IdleState::Goodbye => break,
                IdleState::Open => {}
                IdleState::Gone(e) => panic!("the goodbye was taken for a close: {e}"),
            }
            assert!(start.elapsed() < Duration::from_secs(60), "no goodbye");
            thread::sleep(Duration::from_millis(5));
        }
        assert!(!connection.is_open());
    }

    #[test]
    fn the_timeout_runs_from_the_send_not_from_the_read() {
        let (addr, _done) = silent_after_login();
        let credentials = Credentials::new("u", "p");
        let timeout = Duration::from_secs(2);
        let mut connection = Connection::open(addr, &credentials, &options(timeout)).unwrap();
        connection.submit(b"m").unwrap();
        // Busy elsewhere (reading input, say) past the deadline.
        thread::sleep(timeout + Duration::from_millis(100));
        let reading = Instant::now();
        assert!(matches!(connection.wait(), Err(Error::Timeout)));
        // Not another full timeout: the status was overdue already.
        let waited = reading.elapsed();
        assert!(waited < timeout / 2, "{waited:?}");
    }
}
