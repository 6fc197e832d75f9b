//! Blocking client driver over `embedded_io`, with optional pipelining.

use embedded_io::{Read, ReadReady, Write};

use crate::encode::EncodeError;
use crate::io::WriteError;
use crate::wire::{Status, Transaction};

/// Which transaction a status answered (or failed to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stage {
    /// The NAME transaction.
    Name,
    /// The PASSWORD transaction.
    Password,
    /// The message with this index (0 for the first message of the session).
    Message(u64),
    /// The CLOSE transaction.
    Close,
}

impl core::fmt::Display for Stage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Stage::Name => f.write_str("name"),
            Stage::Password => f.write_str("password"),
            Stage::Message(i) => write!(f, "message {}", i + 1),
            Stage::Close => f.write_str("close"),
        }
    }
}

/// Why a client operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClientError<E> {
    /// The transport failed.
    Io(E),
    /// The transport accepted zero bytes (closed or full).
    WriteZero,
    /// The server answered 0xFF.
    Rejected {
        /// The transaction it rejected.
        stage: Stage,
    },
    /// The connection closed while this transaction awaited its status.
    Disconnected {
        /// The transaction left unanswered.
        stage: Stage,
    },
    /// The server sent a byte that is not a status.
    InvalidStatus {
        /// The byte received.
        byte: u8,
        /// The transaction it was meant to answer.
        stage: Stage,
    },
    /// The payload cannot be sent (empty, or longer than 65535); nothing was sent.
    Encode(EncodeError),
    /// The session already ended (closed, rejected, or failed).
    SessionEnded,
    /// `login` was called after the session started.
    AlreadyLoggedIn,
    /// `send` was called before `login`; nothing was sent.
    NotLoggedIn,
}

impl<E: core::fmt::Display> core::fmt::Display for ClientError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::WriteZero => f.write_str("connection accepted no bytes"),
            ClientError::Rejected { stage } => write!(f, "server rejected the {stage}"),
            ClientError::Disconnected { stage } => {
                write!(f, "connection closed before the {stage} was acknowledged")
            }
            ClientError::InvalidStatus { byte, stage } => {
                write!(f, "invalid status byte 0x{byte:02x} for the {stage}")
            }
            ClientError::Encode(e) => write!(f, "{e}"),
            ClientError::SessionEnded => f.write_str("the session has ended"),
            ClientError::AlreadyLoggedIn => f.write_str("already logged in"),
            ClientError::NotLoggedIn => f.write_str("not logged in"),
        }
    }
}

impl<E: core::fmt::Debug + core::fmt::Display> core::error::Error for ClientError<E> {}

impl<E> From<WriteError<E>> for ClientError<E> {
    fn from(e: WriteError<E>) -> Self {
        match e {
            WriteError::Io(e) => ClientError::Io(e),
            WriteError::WriteZero => ClientError::WriteZero,
            WriteError::Encode(e) => ClientError::Encode(e),
        }
    }
}

/// One client session: NAME, PASSWORD, any number of MESSAGEs, CLOSE.
///
/// Up to `window` transactions are in flight; statuses are matched to them
/// in order. Each transaction is written (header then payload) and followed
/// by a `flush`, so a buffering transport sends every transaction in one
/// write, as the original server requires.
#[derive(Debug)]
pub struct Client<T> {
    io: T,
    window: usize,
    /// Index of the next transaction to send (0 NAME, 1 PASSWORD, 2.. messages).
    sent: u64,
    /// Index of the next transaction whose status is awaited.
    answered: u64,
    /// Index of the CLOSE transaction, once sent.
    close_index: Option<u64>,
    ended: bool,
    inbox: [u8; 64],
    inbox_start: usize,
    inbox_end: usize,
}

impl<T: Read + Write> Client<T> {
    /// A client over a connected transport, with at most `window` (≥ 1) transactions in flight.
    pub fn new(io: T, window: usize) -> Self {
        Client {
            io,
            window: window.max(1),
            sent: 0,
            answered: 0,
            close_index: None,
            ended: false,
            inbox: [0; 64],
            inbox_start: 0,
            inbox_end: 0,
        }
    }

    /// Send NAME and PASSWORD and wait until both are accepted.
    pub fn login(&mut self, name: &str, password: &[u8]) -> Result<(), ClientError<T::Error>> {
        if self.ended {
            return Err(ClientError::SessionEnded);
        }
        if self.sent != 0 {
            return Err(ClientError::AlreadyLoggedIn);
        }
        Transaction::Name(name.as_bytes())
            .header()
            .map_err(ClientError::Encode)?;
        Transaction::Password(password)
            .header()
            .map_err(ClientError::Encode)?;
        self.submit(Transaction::Name(name.as_bytes()))?;
        self.submit(Transaction::Password(password))?;
        self.wait()
    }

    /// Send one message, first waiting for a status if the window is full.
    /// An invalid message (empty or over 65535 bytes), or one before
    /// [`login`](Self::login), is refused before anything is sent.
    pub fn send(&mut self, message: &[u8]) -> Result<(), ClientError<T::Error>> {
        if self.ended {
            return Err(ClientError::SessionEnded);
        }
        // A MESSAGE before NAME and PASSWORD would be rejected by the
        // server and mislabelled here (statuses are matched by position).
        if self.sent == 0 {
            return Err(ClientError::NotLoggedIn);
        }
        Transaction::Message(message)
            .header()
            .map_err(ClientError::Encode)?;
        self.submit(Transaction::Message(message))
    }

    /// Wait until every transaction sent so far is acknowledged. After the
    /// session ended with transactions unanswered (a rejection or a failure,
    /// already reported), fails with [`ClientError::SessionEnded`].
    pub fn wait(&mut self) -> Result<(), ClientError<T::Error>> {
        while self.answered < self.sent {
            self.await_status()?;
        }
        Ok(())
    }

    /// Send CLOSE after every pending message is acknowledged. Any answer to
    /// CLOSE, including the connection closing, ends the session cleanly.
    pub fn close(&mut self) -> Result<(), ClientError<T::Error>> {
        if self.ended {
            return Err(ClientError::SessionEnded);
        }
        self.submit(Transaction::Close)?;
        self.wait()
    }

    /// Messages sent so far.
    pub fn messages_sent(&self) -> u64 {
        self.sent
            .saturating_sub(2)
            .saturating_sub(u64::from(self.close_index.is_some()))
    }

    /// Messages the server has acknowledged (0x00) so far.
    pub fn messages_acknowledged(&self) -> u64 {
        let answered = match self.close_index {
            Some(close) => self.answered.min(close),
            None => self.answered,
        };
        answered.saturating_sub(2)
    }

    /// Transactions sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        usize::try_from(self.sent - self.answered).unwrap_or(usize::MAX)
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

    fn stage(&self, index: u64) -> Stage {
        match index {
            // First: CLOSE may come before or during the login.
            i if Some(i) == self.close_index => Stage::Close,
            0 => Stage::Name,
            1 => Stage::Password,
            i => Stage::Message(i - 2),
        }
    }

    fn submit(&mut self, transaction: Transaction<'_>) -> Result<(), ClientError<T::Error>> {
        if self.ended {
            return Err(ClientError::SessionEnded);
        }
        while self.in_flight() >= self.window {
            self.await_status()?;
        }
        let result = transaction
            .write_to(&mut self.io)
            .and_then(|()| self.io.flush().map_err(WriteError::Io));
        if let Err(e) = result {
            // The server may have rejected an earlier transaction and closed:
            // its 0xFF, if still readable, explains the failed write.
            while self.answered < self.sent {
                if let Err(reason @ ClientError::Rejected { .. }) = self.await_status() {
                    self.ended = true;
                    return Err(reason);
                }
                if self.ended {
                    break;
                }
            }
            self.ended = true;
            return Err(e.into());
        }
        if transaction == Transaction::Close {
            self.close_index = Some(self.sent);
        }
        self.sent += 1;
        Ok(())
    }

    fn await_status(&mut self) -> Result<(), ClientError<T::Error>> {
        // After a rejection or a failure, further bytes answer nothing.
        if self.ended {
            return Err(ClientError::SessionEnded);
        }
        let stage = self.stage(self.answered);
        let byte = match self.next_byte() {
            Ok(byte) => byte,
            // A reset after CLOSE still ends the session cleanly.
            Err(ClientError::Io(_)) if stage == Stage::Close => None,
            Err(e) => return Err(e),
        };
        let Some(byte) = byte else {
            // Only CLOSE may be answered by the connection closing.
            self.ended = true;
            if stage == Stage::Close {
                self.answered = self.sent;
                return Ok(());
            }
            return Err(ClientError::Disconnected { stage });
        };
        if stage == Stage::Close {
            self.ended = true;
            self.answered = self.sent;
            return Ok(());
        }
        match Status::from_byte(byte) {
            Some(Status::Accepted) => {
                self.answered += 1;
                Ok(())
            }
            Some(Status::Rejected) => {
                self.ended = true;
                Err(ClientError::Rejected { stage })
            }
            None => {
                self.ended = true;
                Err(ClientError::InvalidStatus { byte, stage })
            }
        }
    }

    /// The next status byte, or `None` at end of stream.
    fn next_byte(&mut self) -> Result<Option<u8>, ClientError<T::Error>> {
        if self.inbox_start == self.inbox_end {
            let n = match self.io.read(&mut self.inbox) {
                Ok(n) => n.min(self.inbox.len()),
                Err(e) => {
                    self.ended = true;
                    return Err(ClientError::Io(e));
                }
            };
            if n == 0 {
                return Ok(None);
            }
            self.inbox_start = 0;
            self.inbox_end = n;
        }
        let byte = self.inbox.get(self.inbox_start).copied();
        self.inbox_start += 1;
        Ok(byte)
    }
}

impl<T: Read + Write + ReadReady> Client<T> {
    /// Read the statuses that have already arrived, without blocking: a
    /// status is read only while one is buffered or the transport is
    /// [`ReadReady`]. Lets a caller notice acknowledgements, a rejection or a
    /// closed connection before it sends again, e.g. after a pause.
    pub fn poll(&mut self) -> Result<(), ClientError<T::Error>> {
        while self.answered < self.sent {
            if self.inbox_start == self.inbox_end {
                match self.io.read_ready() {
                    Ok(true) => {}
                    Ok(false) => return Ok(()),
                    Err(e) => {
                        self.ended = true;
                        return Err(ClientError::Io(e));
                    }
                }
            }
            self.await_status()?;
        }
        Ok(())
    }
}
