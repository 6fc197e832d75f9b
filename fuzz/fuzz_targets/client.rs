//! The `Client` driver, a thin loop around the sans-I/O `ClientSession`,
//! against a server whose answers the input chooses: the session's contract
//! is what is checked, through the driver's results and the session itself.
//!
//! A client reads status bytes from the network, so they are untrusted
//! input just like the frames a server reads.
//!
//! Input layout:
//!
//! ```text
//! setup: u8      bits 0-2 window: 1 2 3 4 8 16 64 0 (0 means 1)
//!                bit 3    after its last answer the server resets (read error) instead of closing
//!                bit 4    the transport takes one byte per write (short writes)
//!                bits 5-6 write fault after `fault_at` bytes: none, an error, zero bytes taken, none
//!                bit 7    the transport returns one byte per read
//! fault_at: u16 little-endian
//! count: u8      number of status bytes the server sends before it closes
//! replies: count × u8
//! ops: rest      one byte per call, some followed by a parameter byte:
//!                  op & 7 == 0  login; name length (op >> 3) & 7, password length op >> 6
//!                  op & 7 == 1  send; the next byte is the length (0: empty), 65536 bytes if op >> 3 == 31
//!                  op & 7 == 2  wait      3  close      4  poll      else  wait
//! ```
//!
//! The server answers transaction k with `replies[k]`, and only once
//! transaction k has been written whole.
//!
//! Checks: no panic; the client never waits for the answer to a
//! transaction it has not sent (that would block forever); what it wrote
//! decodes to NAME, PASSWORD, the messages whose `send` returned `Ok` in
//! order, then CLOSE if `close` was called, with a torn transaction only
//! after a write fault; no more than `window` transactions in flight; a
//! message counts as acknowledged only if it and the login were answered
//! 0x00; every error names the transaction and byte that caused it; once
//! the session ended, nothing more is written. The session itself: it has
//! ended exactly when the driver reported an end (an error that ends it, or
//! a successful `close`), cleanly only after `close`; its window and room
//! agree with what is in flight; the transaction it awaits next was written
//! whole with the tag its stage names; it counts the login authenticated
//! only after two 0x00; no timeout is armed without one configured.
#![no_main]

use std::ops::Range;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use msglog_core::embedded_io::{self, ErrorKind};
use msglog_core::{
    decode, Client, ClientEnd, ClientError, Decoded, FrameError, Limits, Stage, Tag, Transaction,
};

const WINDOWS: [usize; 8] = [1, 2, 3, 4, 8, 16, 64, 0];
const NAME: &str = "abcdefg";
const PASSWORD: &[u8] = b"pw";
/// A message one byte longer than a length field can express.
static TOO_LONG: [u8; 65536] = [0; 65536];

#[derive(Debug, Clone, Copy, PartialEq)]
enum WriteFault {
    None,
    Error,
    Zero,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Hangup {
    Close,
    Reset,
}

/// The server side of the connection.
struct Server<'a> {
    replies: &'a [u8],
    /// Status bytes the client has read.
    read: usize,
    hangup: Hangup,
    one_byte_reads: bool,
    written: Vec<u8>,
    /// Bytes of `written` that form whole transactions.
    framed: usize,
    /// Each whole transaction written: its tag and where its payload is in
    /// `written`, decoded once as it completes rather than at every check.
    frames: Vec<(Tag, Range<usize>)>,
    /// `written` cannot hold another whole transaction before this length.
    next_whole_at: usize,
    /// The first bytes written that are not a transaction.
    invalid: Option<FrameError>,
    /// Status bytes before the first that is not 0x00.
    leading_zeros: usize,
    write_limit: usize,
    fault: WriteFault,
    fault_at: usize,
    faulted: bool,
}

impl Server<'_> {
    /// Whole transactions written so far.
    fn complete(&self) -> usize {
        self.frames.len()
    }

    /// The `index`-th whole transaction written.
    fn sent(&self, index: usize) -> Option<Transaction<'_>> {
        let (tag, payload) = self.frames.get(index)?;
        let payload = &self.written[payload.clone()];
        Some(match tag {
            Tag::Name => Transaction::Name(payload),
            Tag::Password => Transaction::Password(payload),
            Tag::Message => Transaction::Message(payload),
            Tag::Close => Transaction::Close,
        })
    }

    /// The last whole transaction written.
    fn last_sent(&self) -> Option<Transaction<'_>> {
        self.sent(self.complete().checked_sub(1)?)
    }

    /// Status bytes sent and not yet read; `None` once the server has hung up.
    fn available(&self) -> Option<usize> {
        if self.read >= self.replies.len() {
            return None;
        }
        let answered = self.complete().min(self.replies.len());
        assert!(
            answered > self.read,
            "the client waits for the status of transaction {} before sending it whole",
            self.read
        );
        Some(answered - self.read)
    }
}

impl embedded_io::ErrorType for Server<'_> {
    type Error = ErrorKind;
}

impl embedded_io::Read for Server<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let Some(available) = self.available() else {
            return match self.hangup {
                Hangup::Close => Ok(0),
                Hangup::Reset => Err(ErrorKind::ConnectionReset),
            };
        };
        let limit = if self.one_byte_reads { 1 } else { usize::MAX };
        let n = available.min(buf.len()).min(limit);
        buf[..n].copy_from_slice(&self.replies[self.read..self.read + n]);
        self.read += n;
        Ok(n)
    }
}

impl embedded_io::ReadReady for Server<'_> {
    fn read_ready(&mut self) -> Result<bool, ErrorKind> {
        if self.read >= self.replies.len() {
            return Ok(true);
        }
        Ok(self.complete().min(self.replies.len()) > self.read)
    }
}

impl embedded_io::Write for Server<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let mut n = buf.len().min(self.write_limit);
        if self.fault != WriteFault::None {
            let room = self.fault_at.saturating_sub(self.written.len());
            if room == 0 && !buf.is_empty() {
                self.faulted = true;
                return match self.fault {
                    WriteFault::Error => Err(ErrorKind::BrokenPipe),
                    _ => Ok(0),
                };
            }
            n = n.min(room);
        }
        self.written.extend_from_slice(&buf[..n]);
        // Record the transactions now whole, decoding only what is new and
        // only once enough has arrived (`needed` never overshoots: the
        // `decode` target checks it).
        while self.invalid.is_none() && self.written.len() >= self.next_whole_at {
            match decode(&self.written[self.framed..], &Limits::WIRE) {
                Ok(Decoded::Complete {
                    transaction,
                    consumed,
                }) => {
                    let end = self.framed + consumed;
                    let payload = end - transaction.payload().len()..end;
                    self.frames.push((transaction.tag(), payload));
                    self.framed = end;
                }
                Ok(Decoded::Partial { needed }) => {
                    self.next_whole_at = self.written.len() + needed.get();
                }
                Err(e) => self.invalid = Some(e),
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let setup: u8 = input.arbitrary().unwrap_or_default();
    let fault_at: u16 = input.arbitrary().unwrap_or_default();
    let count: u8 = input.arbitrary().unwrap_or_default();
    let replies = input
        .bytes(usize::from(count).min(input.len()))
        .unwrap_or_default();
    let ops = input.take_rest();

    let window = WINDOWS[usize::from(setup & 7)];
    let server = Server {
        replies,
        read: 0,
        hangup: if setup & 0x08 == 0 {
            Hangup::Close
        } else {
            Hangup::Reset
        },
        one_byte_reads: setup & 0x80 != 0,
        written: Vec::new(),
        framed: 0,
        frames: Vec::new(),
        next_whole_at: 0,
        invalid: None,
        leading_zeros: replies.iter().take_while(|&&b| b == 0).count(),
        write_limit: if setup & 0x10 == 0 { usize::MAX } else { 1 },
        fault: match (setup >> 5) & 3 {
            1 => WriteFault::Error,
            2 => WriteFault::Zero,
            _ => WriteFault::None,
        },
        fault_at: usize::from(fault_at),
        faulted: false,
    };
    run(Client::new(server, window), window.max(1), ops);
});

/// What the client was asked to send, for checking what it wrote.
#[derive(Default)]
struct Expected {
    login: Option<(String, Vec<u8>)>,
    /// The login returned an error, so its PASSWORD may not have been written.
    login_failed: bool,
    messages: Vec<Vec<u8>>,
    closed: bool,
    /// A `close` returned an error, perhaps after writing CLOSE.
    close_failed: bool,
    /// The session ended: nothing may be written any more.
    ended: bool,
}

fn run(mut client: Client<Server<'_>>, window: usize, ops: &[u8]) {
    let mut expected = Expected::default();
    let mut ops = ops.iter().copied();
    let mut counter = 0u8;
    while let Some(op) = ops.next() {
        let before = client.get_ref().written.len();
        let ended_before = expected.ended;
        let result = match op & 7 {
            0 => {
                let name = &NAME[..usize::from((op >> 3) & 7)];
                let password = &PASSWORD[..usize::from(op >> 6).min(PASSWORD.len())];
                let first = expected.login.is_none() && !expected.ended;
                let result = client.login(name, password);
                if first && !name.is_empty() && !password.is_empty() {
                    expected.login = Some((name.to_owned(), password.to_vec()));
                    expected.login_failed = result.is_err();
                }
                if result.is_ok() {
                    let replies = client.get_ref().replies;
                    assert_eq!(replies.get(..2), Some(&[0, 0][..]), "login succeeded");
                }
                result
            }
            1 => {
                counter = counter.wrapping_add(1);
                let short = [counter; 255];
                let message = if op >> 3 == 31 {
                    // Refused as too long before a byte is written, so its
                    // content never matters: one buffer, never refilled.
                    &TOO_LONG[..]
                } else {
                    &short[..usize::from(ops.next().unwrap_or_default())]
                };
                let result = client.send(message);
                if result.is_ok() {
                    expected.messages.push(message.to_vec());
                }
                result
            }
            3 => {
                let result = client.close();
                expected.close_failed |= result.is_err();
                if result.is_ok() {
                    assert_eq!(client.in_flight(), 0);
                    assert_eq!(client.messages_acknowledged(), client.messages_sent());
                    expected.closed = true;
                }
                result
            }
            4 => client.poll(),
            _ => {
                let result = client.wait();
                if result.is_ok() {
                    assert_eq!(client.in_flight(), 0);
                    assert_eq!(client.messages_acknowledged(), client.messages_sent());
                }
                result
            }
        };
        let result_was_err = result.is_err();
        if let Err(e) = result {
            check_error(&client, &e, before);
            if !matches!(
                e,
                ClientError::Encode(_)
                    | ClientError::AlreadyLoggedIn
                    | ClientError::NotLoggedIn
                    | ClientError::SessionEnded
            ) {
                expected.ended = true;
            }
        }
        if expected.closed {
            expected.ended = true;
        }
        if ended_before {
            // Anything written after the end would be a transaction the
            // server never answers.
            assert_eq!(
                client.get_ref().written.len(),
                before,
                "wrote after the session ended"
            );
            if matches!(op & 7, 0 | 1 | 3) {
                assert!(
                    result_was_err,
                    "a login, send or close succeeded after the end"
                );
            }
        }
        check_state(&client, window, &expected);
    }
}

fn check_error(client: &Client<Server<'_>>, error: &ClientError<ErrorKind>, before: usize) {
    let server = client.get_ref();
    // The status of the `index`-th transaction written, checking that the
    // stage names that transaction.
    let reply = |stage: Stage| {
        let index = match stage {
            Stage::Name => 0,
            Stage::Password => 1,
            Stage::Message(i) => usize::try_from(i + 2).unwrap_or(usize::MAX),
            Stage::Close => panic!("{error:?}: CLOSE is answered by anything"),
        };
        assert_eq!(server.invalid, None, "valid transactions");
        let tag = server.sent(index).map(|frame| frame.tag());
        let named = match stage {
            Stage::Name => Tag::Name,
            Stage::Password => Tag::Password,
            _ => Tag::Message,
        };
        assert_eq!(tag, Some(named), "{error:?} names transaction {index}");
        server.replies.get(index).copied()
    };
    match *error {
        ClientError::Rejected { stage } => assert_eq!(reply(stage), Some(0xFF), "{error:?}"),
        ClientError::InvalidStatus { byte, stage } => {
            assert_eq!(reply(stage), Some(byte), "{error:?}");
            assert!(byte != 0x00 && byte != 0xFF, "{error:?}");
        }
        ClientError::Disconnected { stage } => {
            assert_eq!(
                reply(stage),
                None,
                "{error:?} while the server still answers"
            );
            assert_eq!(server.hangup, Hangup::Close, "{error:?}");
        }
        ClientError::Io(ErrorKind::ConnectionReset) => {
            assert_eq!(server.hangup, Hangup::Reset);
            assert!(
                server.read >= server.replies.len(),
                "a reset before the server hung up"
            );
        }
        ClientError::Io(_) => assert!(server.faulted && server.fault == WriteFault::Error),
        ClientError::WriteZero => assert!(server.faulted && server.fault == WriteFault::Zero),
        ClientError::Encode(_)
        | ClientError::AlreadyLoggedIn
        | ClientError::NotLoggedIn
        | ClientError::SessionEnded => {
            assert_eq!(server.written.len(), before, "{error:?} after writing")
        }
        ClientError::TimedOut { .. } => panic!("{error:?} without a timeout"),
        _ => panic!("{error:?}: an error this target does not know"),
    }
}

fn check_state(client: &Client<Server<'_>>, window: usize, expected: &Expected) {
    let server = client.get_ref();
    assert!(
        client.in_flight() <= window,
        "more than the window in flight"
    );

    // What was written: NAME, PASSWORD, the accepted messages, CLOSE
    // (compared as iterators: this runs after every call).
    assert_eq!(
        server.invalid, None,
        "the client writes only valid transactions"
    );
    check_session(client, window, expected);
    if server.framed != server.written.len() {
        assert!(server.faulted, "a torn transaction without a write fault");
    }
    let login = expected.login.iter().flat_map(|(name, password)| {
        [
            Transaction::Name(name.as_bytes()),
            Transaction::Password(password),
        ]
    });
    let wanted = login
        .chain(expected.messages.iter().map(|m| Transaction::Message(m)))
        .chain(expected.closed.then_some(Transaction::Close));
    let mut sent_len = server.complete();
    if !expected.closed && server.last_sent() == Some(Transaction::Close) {
        // Written, then an earlier status failed the session.
        assert!(expected.close_failed, "CLOSE written without `close`");
        sent_len -= 1;
    }
    let sent = (0..sent_len).filter_map(|i| server.sent(i));
    let listed = || {
        let sent: Vec<_> = sent.clone().collect();
        let wanted: Vec<_> = wanted.clone().collect();
        format!("sent {sent:?}, wanted {wanted:?}")
    };
    if expected.login_failed {
        // A failed login ends the session; a write fault or, with a window
        // of 1, NAME's status may have stopped it before PASSWORD or NAME.
        assert_eq!(wanted.clone().count(), 2);
        assert!(
            sent_len <= 2 && sent.clone().zip(wanted.clone()).all(|(s, w)| s == w),
            "not a prefix: {}",
            listed()
        );
    } else {
        assert!(sent.clone().eq(wanted.clone()), "{}", listed());
    }

    // Acknowledged messages were each answered 0x00, as was the login.
    let messages = u64::try_from(expected.messages.len()).unwrap_or(u64::MAX);
    assert_eq!(client.messages_sent(), messages);
    let acknowledged = client.messages_acknowledged();
    assert!(acknowledged <= client.messages_sent());
    if acknowledged > 0 {
        let answered = usize::try_from(acknowledged).unwrap_or(usize::MAX) + 2;
        assert!(answered <= server.replies.len(), "read beyond the replies");
        assert!(
            answered <= server.leading_zeros,
            "acknowledged without 0x00"
        );
    }
}

/// The session's own account agrees with what the driver reported and
/// what went over the wire.
fn check_session(client: &Client<Server<'_>>, window: usize, expected: &Expected) {
    let session = client.session();
    let server = client.get_ref();
    assert_eq!(
        session.is_ended(),
        expected.ended,
        "the session's end ({:?}) disagrees with what the client reported",
        session.end()
    );
    assert_eq!(
        session.end() == Some(ClientEnd::Closed),
        expected.closed,
        "{:?}: a clean end without a successful close, or the reverse",
        session.end()
    );
    assert_eq!(session.window(), window);
    assert_eq!(session.in_flight(), client.in_flight());
    let room = if session.is_ended() || session.is_closing() {
        0
    } else {
        window - session.in_flight()
    };
    assert_eq!(session.room(), room, "room disagrees with the window");
    assert_eq!(session.poll_timeout(), None, "a deadline without a timeout");
    if session.is_authenticated() {
        assert!(expected.login.is_some(), "authenticated without a login");
        assert_eq!(server.replies.get(..2), Some(&[0, 0][..]), "authenticated");
    }
    if let (Some(stage), false) = (session.oldest(), session.is_ended()) {
        // The transaction awaited next was written whole, with its tag.
        let (written, tag) = match stage {
            Stage::Name => (server.sent(0), Tag::Name),
            Stage::Password => (server.sent(1), Tag::Password),
            Stage::Message(i) => (
                server.sent(usize::try_from(i + 2).unwrap_or(usize::MAX)),
                Tag::Message,
            ),
            Stage::Close => (server.last_sent(), Tag::Close),
        };
        assert_eq!(
            written.as_ref().map(Transaction::tag),
            Some(tag),
            "awaiting {stage:?}, which was not written"
        );
    }
}
