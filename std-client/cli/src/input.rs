//! Where framed mode's messages come from: stdin lines or `--message` arguments.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lines::{LineError, LineReader};
use mio::Waker;
use msglog_core::MAX_PAYLOAD;

use crate::watch::StdinChunks;

/// Where a message came from, for reports: a stdin line or a `--message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Line(u64),
    Argument(u64),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Argument(n) => write!(f, "--message #{n}"),
        }
    }
}

/// Why no next message could be read.
#[derive(Debug)]
pub enum InputError {
    /// No complete line has arrived yet: wait (see [`crate::watch::Watch`]), then ask again.
    Pending,
    TooLong(Origin),
    Read(io::Error),
}

/// How many messages were left unread after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remaining {
    Exactly(u64),
    /// The input did not end in time (or is a terminal): this many were counted.
    AtLeast(u64),
}

/// The messages to send, in order, empty ones skipped.
pub enum Input {
    Stdin(Option<LineReader<StdinChunks>>),
    Arguments { messages: Vec<Vec<u8>>, next: usize },
}

/// Counting the rest of stdin stops when no more arrives for this long...
const DRAIN_STALL: Duration = Duration::from_secs(1);
/// ...or after this long in all.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

impl Input {
    /// `--message` arguments if any, else stdin, read by a thread that
    /// wakes `waker` whenever more has arrived.
    pub fn new(arguments: &[OsString], waker: Arc<Waker>) -> io::Result<Self> {
        if arguments.is_empty() {
            let chunks = StdinChunks::spawn(stdin()?, waker)?;
            return Ok(Input::Stdin(Some(LineReader::new(chunks))));
        }
        Ok(Input::Arguments {
            messages: arguments.iter().cloned().map(OsString::into_vec).collect(),
            next: 0,
        })
    }

    /// Arguments are all checked before anything is sent: the first too long.
    pub fn first_too_long(&self) -> Option<Origin> {
        match self {
            Input::Stdin(_) => None,
            Input::Arguments { messages, .. } => messages
                .iter()
                .position(|m| m.len() > MAX_PAYLOAD)
                .map(|i| Origin::Argument(i as u64 + 1)),
        }
    }

    /// The next non-empty message, or `None` at the end. Never blocks:
    /// [`InputError::Pending`] when stdin has no complete line yet.
    pub fn next_message(&mut self) -> Result<Option<(Origin, &[u8])>, InputError> {
        match self {
            Input::Stdin(None) => Ok(None),
            Input::Stdin(Some(reader)) => match reader.next_nonempty_line() {
                Ok(Some(line)) => Ok(Some((Origin::Line(line.number), line.bytes))),
                Ok(None) => Ok(None),
                Err(LineError::TooLong { line }) => Err(InputError::TooLong(Origin::Line(line))),
                Err(LineError::Read(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    Err(InputError::Pending)
                }
                Err(LineError::Read(e)) => Err(InputError::Read(e)),
            },
            Input::Arguments { messages, next } => {
                while let Some(message) = messages.get(*next) {
                    *next += 1;
                    if !message.is_empty() {
                        return Ok(Some((Origin::Argument(*next as u64), message.as_slice())));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Count the messages not yet read. Stdin is read to its end in the
    /// background, but not waited for forever, nor read at all from a terminal.
    pub fn count_remaining(&mut self) -> Remaining {
        match self {
            Input::Arguments { messages, next } => Remaining::Exactly(
                messages
                    .iter()
                    .skip(*next)
                    .filter(|m| !m.is_empty())
                    .count() as u64,
            ),
            Input::Stdin(reader) => {
                let Some(reader) = reader.take() else {
                    return Remaining::Exactly(0);
                };
                if io::stdin().is_terminal() {
                    return Remaining::AtLeast(0);
                }
                drain(reader)
            }
        }
    }
}

/// Count the non-empty lines left in `reader`, waiting for stdin's thread
/// up to [`DRAIN_STALL`] for each chunk and [`DRAIN_LIMIT`] in all.
fn drain(mut reader: LineReader<StdinChunks>) -> Remaining {
    reader.get_mut().block_for(DRAIN_STALL);
    let start = Instant::now();
    let mut counted = 0;
    loop {
        match reader.next_nonempty_line() {
            Ok(Some(_)) | Err(LineError::TooLong { .. }) => counted += 1,
            Ok(None) => return Remaining::Exactly(counted),
            Err(LineError::Read(e)) if e.kind() == io::ErrorKind::TimedOut => {
                return Remaining::AtLeast(counted)
            }
            // A read error ends the count like the end of input does.
            Err(LineError::Read(_)) => return Remaining::Exactly(counted),
        }
        if start.elapsed() > DRAIN_LIMIT {
            return Remaining::AtLeast(counted);
        }
    }
}

/// Stdin as an unbuffered file (a duplicate of descriptor 0).
pub fn stdin() -> io::Result<File> {
    Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?))
}
