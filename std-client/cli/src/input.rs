//! Where framed mode's messages come from: the lines (or NUL-terminated
//! records) of stdin or of the FILEs in turn, or `--message` arguments;
//! and the inputs opened for either mode.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;

use crate::args::{LongLines, Source};
use crate::exit::{CliError, Exit};
use crate::lines::{Delimiter, LineError, LineReader, Piece};
use crate::watch::InputChunks;

/// Where a message came from, for reports: a line of an input (the
/// index of the input, from 0) or a `--message` (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Line { input: usize, number: u64 },
    Argument(u64),
}

/// One message: where it came from and its bytes.
#[derive(Debug)]
pub struct Message<'a> {
    pub origin: Origin,
    pub bytes: &'a [u8],
    /// Bytes of its line were dropped after these (`--long-lines truncate`).
    pub truncated: bool,
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

/// The messages to send, in order, empty lines skipped.
pub struct Input {
    messages: Messages,
    /// The inputs' names for reports ("stdin" or the path); empty when the
    /// only input is stdin, whose lines are named by number alone.
    names: Vec<String>,
    reads_a_terminal: bool,
}

enum Messages {
    Lines {
        reader: Option<LineReader<InputChunks>>,
        /// The input being read.
        current: usize,
    },
    Arguments {
        messages: Vec<Vec<u8>>,
        next: usize,
    },
}

/// Counting the rest of the input stops when no more arrives for this long...
const DRAIN_STALL: Duration = Duration::from_secs(1);
/// ...or after this long in all.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// The inputs, opened (all of them before anything is sent, so that a
/// missing file stops the client before it connects).
pub struct Opened {
    files: Vec<File>,
    names: Vec<String>,
    reads_stdin: bool,
}

impl Opened {
    pub fn open(sources: &[Source]) -> Result<Opened, CliError> {
        let mut files = Vec::with_capacity(sources.len());
        let mut names = Vec::with_capacity(sources.len());
        for source in sources {
            let (file, name) = match source {
                Source::Stdin => (stdin(), "stdin".to_owned()),
                Source::File(path) => (File::open(path), path.display().to_string()),
            };
            let file =
                file.map_err(|e| CliError::new(Exit::Input, format!("cannot open {name}: {e}")))?;
            files.push(file);
            names.push(name);
        }
        Ok(Opened {
            files,
            names,
            reads_stdin: sources.contains(&Source::Stdin),
        })
    }

    /// The inputs one after another, as one reader (raw mode).
    pub fn concatenated(self) -> Concat {
        Concat {
            files: self.files.into(),
        }
    }
}

/// Files read one after another.
pub struct Concat {
    files: VecDeque<File>,
}

impl Read for Concat {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(file) = self.files.front_mut() {
            match file.read(buf)? {
                0 if !buf.is_empty() => {
                    self.files.pop_front();
                }
                n => return Ok(n),
            }
        }
        Ok(0)
    }
}

impl Input {
    /// `--message` arguments if any, else the lines of the inputs, read by
    /// a thread that wakes `waker` whenever more has arrived.
    pub fn new(
        arguments: &[OsString],
        opened: Opened,
        delimiter: Delimiter,
        long_lines: LongLines,
        waker: Arc<Waker>,
    ) -> io::Result<Self> {
        let reads_a_terminal = opened.reads_stdin && io::stdin().is_terminal();
        let names = if opened.names.len() == 1 && opened.reads_stdin {
            Vec::new()
        } else {
            opened.names
        };
        if !arguments.is_empty() {
            let messages = Messages::Arguments {
                messages: arguments
                    .iter()
                    .cloned()
                    .map(OsString::into_encoded_bytes)
                    .collect(),
                next: 0,
            };
            return Ok(Input {
                messages,
                names: Vec::new(),
                reads_a_terminal: false,
            });
        }
        let chunks = InputChunks::spawn(opened.files, waker)?;
        Ok(Input {
            messages: Messages::Lines {
                reader: Some(LineReader::new(chunks, delimiter, long_lines)),
                current: 0,
            },
            names,
            reads_a_terminal,
        })
    }

    /// Arguments are all checked before anything is sent: the first too long.
    pub fn first_too_long(&self) -> Option<Origin> {
        match &self.messages {
            Messages::Lines { .. } => None,
            Messages::Arguments { messages, .. } => messages
                .iter()
                .position(|m| m.len() > msglog_core::MAX_PAYLOAD)
                .map(|i| Origin::Argument(i as u64 + 1)),
        }
    }

    /// The input as reports name it: `stdin` when that is all there is.
    pub fn noun(&self) -> &'static str {
        if self.names.is_empty() {
            "stdin"
        } else {
            "the input"
        }
    }

    /// `origin` as reports name it: `line 12`, `line 12 of app.log`, `--message #2`.
    pub fn describe(&self, origin: Origin) -> String {
        match origin {
            Origin::Line { input, number } => match self.names.get(input) {
                Some(name) => format!("line {number} of {name}"),
                None => format!("line {number}"),
            },
            Origin::Argument(n) => format!("--message #{n}"),
        }
    }

    /// The next message, or `None` at the end. Never blocks:
    /// [`InputError::Pending`] when no complete line has arrived yet.
    pub fn next_message(&mut self) -> Result<Option<Message<'_>>, InputError> {
        match &mut self.messages {
            Messages::Lines { reader, current } => {
                let Some(lines) = reader.as_mut() else {
                    return Ok(None);
                };
                let piece = match next_piece(lines, current) {
                    Ok(Some(piece)) => piece,
                    Ok(None) => {
                        *reader = None;
                        return Ok(None);
                    }
                    Err(LineError::TooLong { line }) => {
                        return Err(InputError::TooLong(Origin::Line {
                            input: *current,
                            number: line,
                        }))
                    }
                    Err(LineError::Read(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Err(InputError::Pending)
                    }
                    Err(LineError::Read(e)) => return Err(InputError::Read(e)),
                };
                let Some(lines) = reader.as_ref() else {
                    return Ok(None);
                };
                let line = lines.line_at(piece);
                Ok(Some(Message {
                    origin: Origin::Line {
                        input: *current,
                        number: line.number,
                    },
                    bytes: line.bytes,
                    truncated: line.truncated,
                }))
            }
            Messages::Arguments { messages, next } => {
                let Some(message) = messages.get(*next) else {
                    return Ok(None);
                };
                *next += 1;
                Ok(Some(Message {
                    origin: Origin::Argument(*next as u64),
                    bytes: message.as_slice(),
                    truncated: false,
                }))
            }
        }
    }

    /// Count the messages not yet read. The input is read to its end in
    /// the background, but not waited for forever, nor read at all from a
    /// terminal.
    pub fn count_remaining(&mut self) -> Remaining {
        match &mut self.messages {
            Messages::Arguments { messages, next } => {
                Remaining::Exactly(messages.len().saturating_sub(*next) as u64)
            }
            Messages::Lines { reader, current } => {
                let Some(reader) = reader.take() else {
                    return Remaining::Exactly(0);
                };
                if self.reads_a_terminal {
                    return Remaining::AtLeast(0);
                }
                drain(reader, *current)
            }
        }
    }
}

/// Where the next non-empty line of the inputs is, going on to the next
/// input at the end of each (`current` is the input it is from).
fn next_piece(
    reader: &mut LineReader<InputChunks>,
    current: &mut usize,
) -> Result<Option<Piece>, LineError> {
    loop {
        match reader.next_nonempty_piece()? {
            Some(piece) => return Ok(Some(piece)),
            None if reader.get_mut().is_finished() => return Ok(None),
            None => {
                *current += 1;
                reader.next_input();
            }
        }
    }
}

/// Count the non-empty lines left, waiting for the input thread up to
/// [`DRAIN_STALL`] for each chunk and [`DRAIN_LIMIT`] in all.
fn drain(mut reader: LineReader<InputChunks>, mut current: usize) -> Remaining {
    reader.get_mut().block_for(DRAIN_STALL);
    let start = Instant::now();
    let mut counted = 0;
    loop {
        match next_piece(&mut reader, &mut current) {
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

pub use crate::platform::stdin;
