//! Waiting for input and watching the connection at once: framed mode
//! waits here whenever no complete line is buffered.
//!
//! The input (stdin, or the FILEs in turn) is read by a thread of its own
//! ([`InputChunks`]), which hands its chunks over through a channel and
//! wakes the main loop's `mio::Poll`; the poll also watches the
//! connection's socket. No descriptor but the socket is polled, so this
//! works where stdin (a regular file, say) cannot be polled.

use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};
use msglog_client::Connection;
use msglog_std::retry_interrupted;

use crate::platform::{watch_socket, SOCKET_LOOK_INTERVAL};

const INPUT: Token = Token(0);
const SOCKET: Token = Token(1);

/// Bytes the input thread reads at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks read ahead of the main loop: bounds memory when the server is slower than the input.
const READ_AHEAD: usize = 4;

/// The main loop's wait: for the input's next chunk, the socket, or a timeout.
pub struct Watch {
    poll: Poll,
    /// Kept here too: an eventfd closed by the input thread's exit would
    /// take its last, unseen wake-up out of the poll with it.
    _waker: Arc<Waker>,
    events: Events,
    /// The generation of the connection whose socket is registered.
    registered: Option<u64>,
}

impl Watch {
    /// A watch, and the waker the input thread uses.
    pub fn new() -> io::Result<(Watch, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), INPUT)?);
        let watch = Watch {
            poll,
            _waker: Arc::clone(&waker),
            events: Events::with_capacity(4),
            registered: None,
        };
        Ok((watch, waker))
    }

    /// Wait until the input has more, `socket` (the connection of `generation`,
    /// if any) becomes readable or closes, or `timeout` passes. Returns
    /// early, too: the caller checks everything again.
    pub fn wait(
        &mut self,
        socket: Option<(u64, &Connection)>,
        mut timeout: Option<Duration>,
    ) -> io::Result<()> {
        if let Some((generation, connection)) = socket {
            if self.registered != Some(generation) {
                // A closed socket left the poll by itself; a descriptor
                // number may be reused, hence the generation.
                watch_socket(self.poll.registry(), SOCKET, connection)?;
                self.registered = Some(generation);
            }
            if let Some(interval) = SOCKET_LOOK_INTERVAL {
                timeout = Some(timeout.map_or(interval, |t| t.min(interval)));
            }
        }
        match self.poll.poll(&mut self.events, timeout) {
            // A signal: the caller looks at everything again anyway.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            other => other,
        }
    }
}

/// What the input thread hands over.
enum Item {
    /// Bytes of the current input.
    Chunk(Vec<u8>),
    /// The current input ended; the next one (if any) follows.
    End,
    /// Reading failed; nothing follows.
    Failed(io::Error),
}

/// The inputs (stdin or files), read ahead in order by a thread: a reader
/// that never blocks (`WouldBlock` when no chunk is there) unless
/// [`InputChunks::block_for`] says so, and that returns end of input
/// (`Ok(0)`) once at the end of each input, then goes on with the next.
pub struct InputChunks {
    chunks: Receiver<Item>,
    current: Vec<u8>,
    offset: usize,
    /// Wait this long for a chunk instead of returning `WouldBlock`.
    stall: Option<Duration>,
    /// Every input has ended.
    finished: bool,
}

impl InputChunks {
    /// Start the thread that reads `inputs` in turn and wakes `waker`
    /// after each chunk.
    pub fn spawn(inputs: Vec<File>, waker: Arc<Waker>) -> io::Result<InputChunks> {
        let (sender, chunks) = mpsc::sync_channel(READ_AHEAD);
        thread::Builder::new()
            .name("input".into())
            .spawn(move || pump(inputs, sender, &waker))?;
        Ok(InputChunks {
            chunks,
            current: Vec::new(),
            offset: 0,
            stall: None,
            finished: false,
        })
    }

    /// From now on, wait up to `stall` for each chunk; after that a read
    /// fails with `TimedOut`.
    pub fn block_for(&mut self, stall: Duration) {
        self.stall = Some(stall);
    }

    /// Whether every input has ended (the last `Ok(0)` was the last input's).
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// Read each input until its end or an error, which is handed over as the last item.
fn pump(inputs: Vec<File>, chunks: SyncSender<Item>, waker: &Waker) {
    'inputs: for mut input in inputs {
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let item = match retry_interrupted(|| input.read(&mut chunk)) {
                Ok(0) => Item::End,
                Ok(n) => {
                    chunk.truncate(n);
                    Item::Chunk(chunk)
                }
                Err(e) => Item::Failed(e),
            };
            let next_input = matches!(item, Item::End);
            let failed = matches!(item, Item::Failed(_));
            if chunks.send(item).is_err() || failed {
                break 'inputs;
            }
            // Nothing to do if the main loop's poll is gone: it has exited.
            let _ = waker.wake();
            if next_input {
                break;
            }
        }
    }
    // The main loop sees the end of input once the sender is gone: drop it
    // before the wake, or the loop may look too early and sleep on.
    drop(chunks);
    let _ = waker.wake();
}

/// What the channel gave.
enum Next {
    Item(Item),
    NotYet,
    Disconnected,
}

impl Read for InputChunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offset == self.current.len() {
            let next = match self.stall {
                None => match self.chunks.try_recv() {
                    Ok(item) => Next::Item(item),
                    Err(TryRecvError::Empty) => Next::NotYet,
                    Err(TryRecvError::Disconnected) => Next::Disconnected,
                },
                Some(stall) => match self.chunks.recv_timeout(stall) {
                    Ok(item) => Next::Item(item),
                    Err(RecvTimeoutError::Timeout) => Next::NotYet,
                    Err(RecvTimeoutError::Disconnected) => Next::Disconnected,
                },
            };
            match next {
                Next::Item(Item::Chunk(chunk)) => {
                    self.current = chunk;
                    self.offset = 0;
                }
                Next::Item(Item::End) => return Ok(0),
                Next::Item(Item::Failed(e)) => return Err(e),
                Next::Disconnected => {
                    self.finished = true;
                    return Ok(0);
                }
                Next::NotYet if self.stall.is_some() => return Err(io::ErrorKind::TimedOut.into()),
                Next::NotYet => return Err(io::ErrorKind::WouldBlock.into()),
            }
        }
        let rest = self.current.get(self.offset..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(rest.get(..n).unwrap_or_default());
        self.offset += n;
        Ok(n)
    }
}
