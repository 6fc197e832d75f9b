//! The client, async: [`Client`], a thin loop around [`ClientSession`].

use embedded_io_async::{ErrorType, Read, ReadReady, Write};

use super::timer::{read_until, NoTimer, Raced, Timer};
use super::write_all;
use crate::client::{ClientError, Inbox};
use crate::client_session::{ClientEnd, ClientSession, SubmitError};
use crate::io::WriteError;
use crate::time::Instant;
use crate::wire::Transaction;

/// One client session over an async transport: the async twin of
/// [`crate::Client`], with the same methods, errors and wire behaviour.
///
/// Up to `window` transactions are in flight; the [`ClientSession`] matches
/// the statuses to them in order. Each transaction is written (header, then
/// payload, from the caller's slice) and followed by a `flush`. With a
/// [`Timer`] ([`with_timer`](Self::with_timer)), every read races the
/// session's deadline ([`ClientSession::poll_timeout`]).
///
/// ```
/// # async fn demo<T: embedded_io_async::Read + embedded_io_async::Write>(socket: T)
/// # -> Result<(), msglog_core::ClientError<T::Error>> {
/// let mut client = msglog_core::asynch::Client::new(socket, 16);
/// client.login("alice", b"secret").await?;
/// client.send(b"hello").await?;
/// client.close().await?; // every message acknowledged
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Client<T: ErrorType, M: Timer = NoTimer> {
    io: T,
    timer: M,
    session: ClientSession<M::Instant>,
    inbox: Inbox,
}

impl<T: Read + Write> Client<T> {
    /// A client over a connected transport, with at most `window` (≥ 1)
    /// transactions in flight and no timeout of its own.
    pub fn new(io: T, window: usize) -> Self {
        Client::with_timer(io, window, NoTimer, None)
    }
}

impl<T: Read + Write, M: Timer> Client<T, M> {
    /// A client whose waits for a status end after `timeout` on `timer`'s
    /// clock, as [`ClientSession::set_timeout`] describes: a status that
    /// does not arrive in time fails with [`ClientError::TimedOut`] (or
    /// ends the session cleanly if only the CLOSE is unanswered).
    pub fn with_timer(
        io: T,
        window: usize,
        timer: M,
        timeout: Option<<M::Instant as Instant>::Duration>,
    ) -> Self {
        let mut session = ClientSession::new(window);
        session.set_timeout(timeout);
        Client {
            io,
            timer,
            session,
            inbox: Inbox::new(),
        }
    }

    /// Send NAME and PASSWORD and wait until both are accepted.
    pub async fn login(
        &mut self,
        name: &str,
        password: &[u8],
    ) -> Result<(), ClientError<T::Error>> {
        self.session
            .check_login(name.as_bytes(), password)
            .map_err(ClientError::from_submit)?;
        self.submit(Transaction::Name(name.as_bytes())).await?;
        self.submit(Transaction::Password(password)).await?;
        self.wait().await
    }

    /// Send one message, first waiting for a status if the window is full.
    /// An invalid message (empty or over 65535 bytes), or one before
    /// [`login`](Self::login), is refused before anything is sent.
    pub async fn send(&mut self, message: &[u8]) -> Result<(), ClientError<T::Error>> {
        self.submit(Transaction::Message(message)).await
    }

    /// Wait until every transaction sent so far is acknowledged. After the
    /// session ended with transactions unanswered (a rejection or a failure,
    /// already reported), fails with [`ClientError::SessionEnded`].
    pub async fn wait(&mut self) -> Result<(), ClientError<T::Error>> {
        while self.session.in_flight() > 0 {
            if self.session.is_ended() {
                return Err(ClientError::SessionEnded);
            }
            self.receive().await?;
        }
        Ok(())
    }

    /// Send CLOSE and wait for its answer, after the statuses of the
    /// messages before it. Any answer to CLOSE, including the connection
    /// closing, ends the session cleanly.
    pub async fn close(&mut self) -> Result<(), ClientError<T::Error>> {
        self.submit(Transaction::Close).await?;
        self.wait().await
    }

    /// Messages sent so far.
    pub fn messages_sent(&self) -> u64 {
        self.session.messages_submitted()
    }

    /// Messages the server has acknowledged (0x00) so far.
    pub fn messages_acknowledged(&self) -> u64 {
        self.session.messages_acknowledged()
    }

    /// Transactions sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.session.in_flight()
    }

    /// Bytes read from the transport and not yet fed to the session
    /// (see [`crate::Client::buffered`]).
    pub fn buffered(&self) -> usize {
        self.inbox.len()
    }

    /// The session: what was answered, what is in flight, how it ended.
    pub fn session(&self) -> &ClientSession<M::Instant> {
        &self.session
    }

    /// Act on the time without reading or waiting (see
    /// [`crate::Client::handle_timeout`]).
    pub fn handle_timeout(&mut self) -> Result<(), ClientError<T::Error>> {
        let now = self.timer.now();
        ClientError::from_end(self.session.handle_timeout(now))
    }

    /// End the session because the caller found the transport gone (see
    /// [`crate::Client::transport_ended`]).
    pub fn transport_ended(&mut self) -> Option<ClientEnd> {
        self.session.handle_error()
    }

    /// The transport.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The transport, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Give back the transport.
    pub fn into_inner(self) -> T {
        self.io
    }

    /// Submit one transaction (waiting for room in the window) and write it.
    async fn submit(&mut self, transaction: Transaction<'_>) -> Result<(), ClientError<T::Error>> {
        let header = loop {
            let now = self.timer.now();
            match self.session.submit(&transaction, now) {
                Ok(header) => break header,
                Err(SubmitError::WindowFull) => self.receive().await?,
                Err(e) => return Err(ClientError::from_submit(e)),
            }
        };
        let written = async {
            write_all(&mut self.io, header.as_bytes()).await?;
            write_all(&mut self.io, transaction.payload()).await?;
            self.io.flush().await.map_err(WriteError::Io)
        }
        .await;
        let Err(error) = written else {
            return Ok(());
        };
        // The server may have rejected an earlier transaction and closed:
        // its 0xFF, if still readable, explains the failed write.
        if self.session.write_failed().is_none() {
            while !self.session.is_ended() {
                if let Err(reason @ ClientError::Rejected { .. }) = self.receive().await {
                    return Err(reason);
                }
            }
        }
        Err(error.into())
    }

    /// Feed the session the statuses it awaits, reading first if none is
    /// buffered.
    async fn receive(&mut self) -> Result<(), ClientError<T::Error>> {
        if self.inbox.is_empty() {
            self.read().await?;
            if self.session.is_ended() {
                return Ok(());
            }
        }
        let now = self.timer.now();
        self.inbox.feed(&mut self.session, now)
    }

    /// Read into the empty inbox, or end the session (end of stream, a
    /// failure, the deadline), racing the read against the session's deadline.
    async fn read(&mut self) -> Result<(), ClientError<T::Error>> {
        loop {
            let deadline = self.session.poll_timeout();
            let end =
                match read_until(self.io.read(self.inbox.space()), &self.timer, deadline).await {
                    Raced::Read(Ok(0)) => self.session.handle_eof(),
                    Raced::Read(Ok(n)) => {
                        self.inbox.filled(n);
                        return Ok(());
                    }
                    Raced::Read(Err(e)) => return self.transport_failed(e),
                    Raced::Deadline(now) => match self.session.handle_timeout(now) {
                        // Not due after all (the deadline cannot move while
                        // reading): read again.
                        None => continue,
                        end => end,
                    },
                };
            return ClientError::from_end(end);
        }
    }

    /// The transport failed: a clean end if only the CLOSE awaited an answer.
    fn transport_failed(&mut self, error: T::Error) -> Result<(), ClientError<T::Error>> {
        match self.session.handle_error() {
            Some(ClientEnd::Closed) => Ok(()),
            _ => Err(ClientError::Io(error)),
        }
    }
}

impl<T: Read + Write + ReadReady, M: Timer> Client<T, M> {
    /// Read the statuses that have already arrived, without waiting (see
    /// [`crate::Client::poll`]).
    pub async fn poll(&mut self) -> Result<(), ClientError<T::Error>> {
        while self.session.in_flight() > 0 {
            if self.session.is_ended() {
                return Err(ClientError::SessionEnded);
            }
            if self.inbox.is_empty() {
                match self.io.read_ready() {
                    Ok(true) => {}
                    Ok(false) => return Ok(()),
                    Err(e) => return self.transport_failed(e),
                }
            }
            self.receive().await?;
        }
        Ok(())
    }
}
