//! The client side of the protocol, in its smallest async form.
//!
//! REPLACED BY THE CORE: this module is a stand-in for `msglog-core`'s async
//! client (issue 14), which does not exist yet. It mirrors the API of the
//! core's blocking `msglog_core::Client` (`new`, `login`, `send`, `wait`,
//! `close`, `messages_acknowledged`, errors labelled with the core's
//! `Stage`), so that replacing it changes this module and the `use` lines
//! of `uplink`, nothing else. Like the core's async client will, it needs:
//!
//! - a transport: any `embedded_io_async::Read + Write` (here UART0; on a
//!   board with a network stack, `embassy_net::tcp::TcpSocket`);
//! - a clock for its status timeout (here `embassy_time::with_timeout`; the
//!   core's `ClientSession` takes the time as an input, `u64` milliseconds,
//!   and says when it next needs attention through `poll_timeout`).
//!
//! What it does is only what the demo needs: statuses are matched to the
//! transactions in flight in order, 0xFF or a byte that is not a status
//! ends the session, and so do end of stream and the timeout; any answer to
//! CLOSE, or none in time, is a clean end (PROTOCOL.md).

use embassy_time::{with_timeout, Duration};
use embedded_io_async::{Read, Write};
use msglog_core::{EncodeError, Stage, Status, Transaction};

/// Why a client operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError<E> {
    /// The transport failed.
    Io(E),
    /// The transport accepted zero bytes.
    WriteZero,
    /// The server answered 0xFF.
    Rejected { stage: Stage },
    /// The server sent a byte that is not a status.
    InvalidStatus { byte: u8, stage: Stage },
    /// The stream ended while this transaction awaited its status.
    Disconnected { stage: Stage },
    /// No status arrived within the timeout.
    TimedOut { stage: Stage },
    /// The payload cannot be sent (empty, or over 65535 bytes); nothing was sent.
    Encode(EncodeError),
    /// The session already ended.
    SessionEnded,
}

/// One session: NAME, PASSWORD, MESSAGEs, CLOSE, with up to `window`
/// transactions written ahead of their statuses.
pub struct Client<T> {
    io: T,
    window: u64,
    timeout: Duration,
    /// Transactions sent: the index of the next one (0 NAME, 1 PASSWORD, 2.. messages).
    sent: u64,
    /// Transactions answered: the index of the oldest one in flight.
    answered: u64,
    ended: bool,
}

/// Index of the first MESSAGE: NAME is transaction 0, PASSWORD 1.
const FIRST_MESSAGE: u64 = 2;

impl<T: Read + Write> Client<T> {
    /// A session over a connected transport, with at most `window` (at
    /// least 1) transactions in flight, each answered within `timeout`.
    pub fn new(io: T, window: usize, timeout: Duration) -> Self {
        Client {
            io,
            window: u64::try_from(window.max(1)).unwrap_or(u64::MAX),
            timeout,
            sent: 0,
            answered: 0,
            ended: false,
        }
    }

    /// Send NAME and PASSWORD (pipelined) and wait until both are accepted.
    pub async fn login(
        &mut self,
        name: &str,
        password: &[u8],
    ) -> Result<(), ClientError<T::Error>> {
        self.submit(Transaction::Name(name.as_bytes())).await?;
        self.submit(Transaction::Password(password)).await?;
        self.wait().await
    }

    /// Send one message, first waiting for a status if the window is full.
    /// A failure may be an earlier message's (see its `Stage`).
    pub async fn send(&mut self, message: &[u8]) -> Result<(), ClientError<T::Error>> {
        while self.sent - self.answered >= self.window {
            self.await_status().await?;
        }
        self.submit(Transaction::Message(message)).await
    }

    /// Wait until every transaction sent so far is acknowledged.
    pub async fn wait(&mut self) -> Result<(), ClientError<T::Error>> {
        while self.answered < self.sent {
            self.await_status().await?;
        }
        Ok(())
    }

    /// Send CLOSE once everything before it is acknowledged. Any answer to
    /// CLOSE, the stream ending, or no answer within the timeout, ends the
    /// session cleanly.
    pub async fn close(mut self) -> Result<(), ClientError<T::Error>> {
        self.wait().await?;
        self.submit(Transaction::Close).await?;
        let mut byte = [0u8; 1];
        let _any_answer = with_timeout(self.timeout, self.io.read(&mut byte)).await;
        Ok(())
    }

    /// Messages the server has acknowledged (0x00) in this session.
    pub fn messages_acknowledged(&self) -> u64 {
        self.answered.saturating_sub(FIRST_MESSAGE)
    }

    /// Write one transaction: header, payload, flush.
    async fn submit(&mut self, transaction: Transaction<'_>) -> Result<(), ClientError<T::Error>> {
        if self.ended {
            return Err(ClientError::SessionEnded);
        }
        let header = transaction.header().map_err(ClientError::Encode)?;
        let written = async {
            self.write_all(header.as_bytes()).await?;
            self.write_all(transaction.payload()).await?;
            self.io.flush().await.map_err(ClientError::Io)
        }
        .await;
        if written.is_err() {
            self.ended = true;
        }
        written?;
        self.sent += 1;
        Ok(())
    }

    async fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), ClientError<T::Error>> {
        while !bytes.is_empty() {
            match self.io.write(bytes).await {
                Ok(0) => return Err(ClientError::WriteZero),
                Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
        Ok(())
    }

    /// Read the status of the oldest transaction in flight.
    async fn await_status(&mut self) -> Result<(), ClientError<T::Error>> {
        if self.ended {
            return Err(ClientError::SessionEnded);
        }
        let stage = match self.answered {
            0 => Stage::Name,
            1 => Stage::Password,
            index => Stage::Message(index - FIRST_MESSAGE),
        };
        let mut byte = [0u8; 1];
        let outcome = match with_timeout(self.timeout, self.io.read(&mut byte)).await {
            Err(_) => Err(ClientError::TimedOut { stage }),
            Ok(Err(e)) => Err(ClientError::Io(e)),
            Ok(Ok(0)) => Err(ClientError::Disconnected { stage }),
            Ok(Ok(_)) => match Status::from_byte(byte[0]) {
                Some(Status::Accepted) => Ok(()),
                Some(Status::Rejected) => Err(ClientError::Rejected { stage }),
                None => Err(ClientError::InvalidStatus {
                    byte: byte[0],
                    stage,
                }),
            },
        };
        match outcome {
            Ok(()) => self.answered += 1,
            Err(_) => self.ended = true,
        }
        outcome
    }
}
