//! Arbitrary bytes, split into reads chosen by the input, through `serve`.
//!
//! Input layout (hand-writable, so seeds can be plain protocol bytes):
//!
//! ```text
//! setup: u8      bits 0-1 capacities: <4,4,8> <8,16,32> <32,32,512> <255,255,65535>
//!                bits 2-3 authenticator: AcceptAny, LegacyParity, StaticUsers("MyUser"/"secret"), deny all
//!                bits 4-5 sink fails on message 1..=3 (0: never)
//!                bit 6    the input ends with a read timeout instead of EOF
//!                bit 7    the transport takes one byte per write (short writes)
//! count: u8      number of read sizes that follow
//! sizes: count × u8   bytes returned by each read (0: as many as fit); later reads return as many as fit
//! stream: rest   the bytes the client sends
//! ```
//!
//! Checks: no panic; `serve` never reads into an empty buffer while input is
//! pending, never reads again after EOF, and answers every complete
//! transaction before it reads again; no message reaches the sink before
//! its name and password were verified; every record is the PROTOCOL.md
//! escaping of its message; the status bytes, records and `Served` are
//! the same whatever the chunking, equal to a run over the unsplit input,
//! to a run of the sans-I/O `Session` API over the whole stream, and to a
//! reference model written from PROTOCOL.md.
#![no_main]

use std::cell::RefCell;
use std::sync::LazyLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use msglog_core::embedded_io::{self, ErrorKind};
use msglog_core::{
    serve, write_record, AcceptAny, Action, Authenticator, Decoded, Ended, FrameError,
    LegacyParity, Outcome, Reject, Served, Session, Sink, StaticUsers, Status, Tag,
};

const USERS: [(&str, &[u8]); 1] = [("MyUser", b"secret")];

#[derive(Debug, Clone, Copy)]
enum AuthRule {
    AcceptAny,
    LegacyParity,
    StaticUsers,
    DenyAll,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum InputEnd {
    Eof,
    TimedOut,
}

#[derive(Debug, Clone, Copy)]
struct Setup {
    capacities: u8,
    auth: AuthRule,
    /// 1-based index of the message whose append fails.
    sink_fails_at: Option<usize>,
    end: InputEnd,
    /// Most bytes the transport takes per write.
    write_limit: usize,
}

impl Setup {
    fn from_byte(byte: u8) -> Setup {
        Setup {
            capacities: byte & 0b11,
            auth: match (byte >> 2) & 0b11 {
                0 => AuthRule::AcceptAny,
                1 => AuthRule::LegacyParity,
                2 => AuthRule::StaticUsers,
                _ => AuthRule::DenyAll,
            },
            sink_fails_at: match (byte >> 4) & 0b11 {
                0 => None,
                n => Some(usize::from(n)),
            },
            end: if byte & 0x40 == 0 {
                InputEnd::Eof
            } else {
                InputEnd::TimedOut
            },
            write_limit: if byte & 0x80 == 0 { usize::MAX } else { 1 },
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let setup = Setup::from_byte(input.arbitrary().unwrap_or_default());
    let count: u8 = input.arbitrary().unwrap_or_default();
    let sizes = input
        .bytes(usize::from(count).min(input.len()))
        .unwrap_or_default();
    let stream = input.take_rest();
    match setup.capacities {
        0 => check::<4, 4, 8>(&setup, sizes, stream),
        1 => check::<8, 16, 32>(&setup, sizes, stream),
        2 => check::<32, 32, 512>(&setup, sizes, stream),
        _ => check::<255, 255, 65535>(&setup, sizes, stream),
    }
});

fn check<const NAME: usize, const PASSWORD: usize, const MESSAGE: usize>(
    setup: &Setup,
    sizes: &[u8],
    stream: &[u8],
) {
    let expected = model(setup, [NAME, PASSWORD, MESSAGE], stream);

    let split = run_serve::<NAME, PASSWORD, MESSAGE>(setup, sizes, stream, &expected.answered_at);
    let whole = run_serve::<NAME, PASSWORD, MESSAGE>(setup, &[], stream, &expected.answered_at);
    let sans_io = run_session::<NAME, PASSWORD, MESSAGE>(setup, stream);

    // One status byte per answered transaction; a timeout's 0xFF answers no
    // complete transaction and is not counted in `Served::transactions`.
    let timeout_status = u64::from(split.served.ended == Ended::Rejected(Reject::Timeout));
    assert_eq!(
        split.statuses.len() as u64,
        split.served.transactions + timeout_status,
        "status bytes vs Served::transactions ({:?})",
        split.served
    );
    assert_eq!(split.served.messages, split.records.len() as u64);

    assert_eq!(split, whole, "the chunking changed the outcome");
    assert_eq!(split, sans_io, "serve and the sans-I/O Session disagree");
    assert_eq!(split, expected.run, "serve disagrees with PROTOCOL.md");

    // The three runs logged the same messages: check each record once.
    RECORD_BUFFERS.with_borrow_mut(|(record, reference)| {
        for (name, message) in &split.records {
            record.clear();
            write_record(record, name, message).expect("a Vec takes every byte");
            reference.clear();
            reference_record(reference, name, message);
            assert_eq!(record, reference);
            assert_eq!(record.len(), msglog_core::record_len(name, message));
        }
    });
}

thread_local! {
    /// `serve`'s receive buffer, allocated once: allocating, zeroing and
    /// freeing 64 KiB twice per input (page faults, ASan's poisoning and
    /// quarantine) was a large share of the run time.
    static RECEIVE_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; msglog_core::MAX_FRAME]);
    /// The record `write_record` writes and the reference record, reused.
    static RECORD_BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = RefCell::default();
}

/// What one connection produced.
#[derive(Debug, PartialEq)]
struct Run {
    served: Served,
    statuses: Vec<u8>,
    records: Vec<(String, Vec<u8>)>,
}

fn run_serve<const NAME: usize, const PASSWORD: usize, const MESSAGE: usize>(
    setup: &Setup,
    sizes: &[u8],
    stream: &[u8],
    answered_at: &[usize],
) -> Run {
    let verified = RefCell::new(None);
    let mut auth = RecordingAuth {
        rule: setup.auth,
        verified: &verified,
    };
    let mut sink = RecordingSink {
        verified: &verified,
        fails_at: setup.sink_fails_at,
        attempts: 0,
        records: Vec::new(),
    };
    let mut transport = Transport {
        stream,
        delivered: 0,
        sizes,
        end: setup.end,
        ended: false,
        answered_at,
        written: Vec::new(),
        write_limit: setup.write_limit,
    };
    let mut session = Session::<NAME, PASSWORD, MESSAGE>::new();
    let served = RECEIVE_BUFFER
        .with_borrow_mut(|buffer| {
            // Exactly the smallest buffer `serve` accepts.
            let buffer = &mut buffer[..Session::<NAME, PASSWORD, MESSAGE>::MAX_FRAME];
            let served = serve(&mut transport, buffer, &mut session, &mut auth, &mut sink);
            // Zeroed again as if new: reads filled at most `delivered` bytes.
            let dirty = transport.delivered.min(buffer.len());
            buffer[..dirty].fill(0);
            served
        })
        .expect("the in-memory transport never fails");
    assert!(session.is_closed() || matches!(served.ended, Ended::Eof { .. }));
    Run {
        served,
        statuses: transport.written,
        records: sink.records,
    }
}

/// The same stream through the sans-I/O API (`decode`, `receive`,
/// `verified`, `fail`) in one buffer, without `serve` or `handle`.
fn run_session<const NAME: usize, const PASSWORD: usize, const MESSAGE: usize>(
    setup: &Setup,
    stream: &[u8],
) -> Run {
    let verified = RefCell::new(None);
    let mut auth = RecordingAuth {
        rule: setup.auth,
        verified: &verified,
    };
    let mut sink = RecordingSink {
        verified: &verified,
        fails_at: setup.sink_fails_at,
        attempts: 0,
        records: Vec::new(),
    };
    let mut session = Session::<NAME, PASSWORD, MESSAGE>::new();
    let mut statuses = Vec::new();
    let mut transactions = 0;
    let mut offset = 0;
    let ended = loop {
        let outcome = match session.decode(&stream[offset..]) {
            Ok(Decoded::Partial { .. }) => {
                let partial = stream.len() - offset;
                if setup.end == InputEnd::TimedOut {
                    statuses.push(session.fail(Reject::Timeout).status().as_byte());
                    break Ended::Rejected(Reject::Timeout);
                }
                break Ended::Eof { partial };
            }
            Err(reject) => Outcome::Rejected(reject),
            Ok(Decoded::Complete {
                transaction,
                consumed,
            }) => {
                offset += consumed;
                match session.receive(transaction) {
                    Action::Reply(outcome) => outcome,
                    Action::Verify { name, password } => {
                        let accepted = auth.verify(name, password);
                        session.verified(accepted)
                    }
                    Action::Log { name, message } => match sink.append(name, message) {
                        Ok(()) => Outcome::Logged,
                        Err(SinkFailed) => session.fail(Reject::SinkFailed),
                    },
                }
            }
        };
        transactions += 1;
        statuses.push(outcome.status().as_byte());
        match outcome {
            Outcome::Closed => break Ended::Closed,
            Outcome::Rejected(reject) => break Ended::Rejected(reject),
            _ => {}
        }
    };
    Run {
        served: Served {
            ended,
            transactions,
            messages: sink.records.len() as u64,
        },
        statuses,
        records: sink.records,
    }
}

/// An in-memory connection: reads return the stream in the sizes the input
/// chose, writes are recorded.
struct Transport<'a> {
    stream: &'a [u8],
    delivered: usize,
    sizes: &'a [u8],
    end: InputEnd,
    ended: bool,
    /// Stream offsets by which each status must have been written (from the model).
    answered_at: &'a [usize],
    written: Vec<u8>,
    write_limit: usize,
}

impl embedded_io::ErrorType for Transport<'_> {
    type Error = ErrorKind;
}

impl embedded_io::Read for Transport<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        assert!(!self.ended, "read after the end of input was reported");
        // `answered_at` is in stream order.
        let due = self.answered_at.partition_point(|&at| at <= self.delivered);
        assert_eq!(
            self.written.len(),
            due,
            "serve reads again before answering every complete transaction"
        );
        if self.stream.is_empty() {
            self.ended = true;
            return match self.end {
                InputEnd::Eof => Ok(0),
                InputEnd::TimedOut => Err(ErrorKind::TimedOut),
            };
        }
        assert!(
            !buf.is_empty(),
            "serve reads into an empty buffer with input pending"
        );
        let wanted = match self.sizes.split_first() {
            Some((&size, sizes)) => {
                self.sizes = sizes;
                if size == 0 {
                    usize::MAX
                } else {
                    usize::from(size)
                }
            }
            None => usize::MAX,
        };
        let n = wanted.min(buf.len()).min(self.stream.len());
        let (chunk, rest) = self.stream.split_at(n);
        buf[..n].copy_from_slice(chunk);
        self.stream = rest;
        self.delivered += n;
        Ok(n)
    }
}

impl embedded_io::Write for Transport<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let n = buf.len().min(self.write_limit);
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// The core's authenticators, remembering which name was verified.
struct RecordingAuth<'a> {
    rule: AuthRule,
    verified: &'a RefCell<Option<String>>,
}

impl Authenticator for RecordingAuth<'_> {
    fn verify(&mut self, name: &str, password: &[u8]) -> bool {
        assert!(
            self.verified.borrow().is_none(),
            "a second verification after a successful one"
        );
        let accepted = match self.rule {
            AuthRule::AcceptAny => AcceptAny.verify(name, password),
            AuthRule::LegacyParity => LegacyParity.verify(name, password),
            AuthRule::StaticUsers => StaticUsers::new(&USERS).verify(name, password),
            AuthRule::DenyAll => false,
        };
        if accepted {
            *self.verified.borrow_mut() = Some(name.to_owned());
        }
        accepted
    }
}

struct SinkFailed;

/// Records messages and checks each was verified first; `check` checks
/// their records once the runs agree.
struct RecordingSink<'a> {
    verified: &'a RefCell<Option<String>>,
    fails_at: Option<usize>,
    attempts: usize,
    records: Vec<(String, Vec<u8>)>,
}

impl Sink for RecordingSink<'_> {
    type Error = SinkFailed;

    fn append(&mut self, name: &str, message: &[u8]) -> Result<(), SinkFailed> {
        assert_eq!(
            self.verified.borrow().as_deref(),
            Some(name),
            "a message reached the sink before its name and password were verified"
        );
        self.attempts += 1;
        if self.fails_at == Some(self.attempts) {
            return Err(SinkFailed);
        }
        self.records.push((name.to_owned(), message.to_vec()));
        Ok(())
    }
}

/// Append `[name]: escaped\r\n` as PROTOCOL.md describes it, asserting that it
/// shows raw only printable ASCII and code points that are neither
/// controls nor rewrite the display (one line for byte- and Unicode-aware
/// readers, valid UTF-8, whatever the message).
fn reference_record(record: &mut Vec<u8>, name: &str, message: &[u8]) {
    // Without `format!` or a second pass over the record: this runs for
    // every logged message, up to 65535 bytes.
    let ascii = &*ASCII_IN_RECORD;
    assert!(!name.chars().any(|c| c.is_control() || rewrites_display(c)));
    record.push(b'[');
    record.extend_from_slice(name.as_bytes());
    record.extend_from_slice(b"]: ");
    for chunk in message.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii() {
                match ascii[usize::from(c as u8)].as_slice() {
                    &[shown] => record.push(shown),
                    escaped => record.extend_from_slice(escaped),
                }
                continue;
            }
            let mut utf8 = [0u8; 4];
            let utf8 = c.encode_utf8(&mut utf8).as_bytes();
            if rewrites_display(c) {
                utf8.iter().for_each(|&byte| hex_escape(record, byte));
            } else {
                assert!(!c.is_control(), "{c:?} shown raw");
                record.extend_from_slice(utf8);
            }
        }
        // Bytes that are not UTF-8.
        chunk
            .invalid()
            .iter()
            .for_each(|&byte| hex_escape(record, byte));
    }
    record.extend_from_slice(b"\r\n");
}

/// What a record shows for each ASCII byte: `\\`, `\r`, `\n`, `\t`,
/// `\xNN` for the other controls and DEL, the byte itself otherwise.
static ASCII_IN_RECORD: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    (0..128u8)
        .map(|byte| {
            let shown = match byte {
                b'\\' => b"\\\\".to_vec(),
                b'\r' => b"\\r".to_vec(),
                b'\n' => b"\\n".to_vec(),
                b'\t' => b"\\t".to_vec(),
                0x00..=0x1F | 0x7F => format!("\\x{byte:02x}").into_bytes(),
                _ => vec![byte],
            };
            assert!(shown.iter().all(|b| (b' '..=b'~').contains(b)));
            shown
        })
        .collect()
});

/// `\xNN`, lower-case hex.
fn hex_escape(record: &mut Vec<u8>, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |nibble: u8| DIGITS[usize::from(nibble & 0x0F)];
    record.extend_from_slice(&[b'\\', b'x', digit(byte >> 4), digit(byte)]);
}

/// PROTOCOL.md decision 7: the C1 controls, U+2028, U+2029 and the bidi
/// controls (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069),
/// which a record escapes byte-wise.
fn rewrites_display(c: char) -> bool {
    matches!(
        c,
        '\u{80}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// PROTOCOL.md decision 1: what a name may not contain.
fn refused_in_names(c: char) -> bool {
    let code = c as u32;
    let invisible = [
        0xAD..=0xAD,
        0x34F..=0x34F,
        0x115F..=0x1160,
        0x17B4..=0x17B5,
        0x180B..=0x180F,
        0x200B..=0x200D,
        0x2060..=0x206F,
        0x3164..=0x3164,
        0xFE00..=0xFE0F,
        0xFEFF..=0xFEFF,
        0xFFA0..=0xFFA0,
        0xFFF0..=0xFFFB,
        0x1BCA0..=0x1BCA3,
        0x1D173..=0x1D17A,
        0xE0000..=0xE0FFF,
    ];
    let private_use = (0xE000..=0xF8FF).contains(&code) || code >= 0xF0000;
    let noncharacter = (0xFDD0..=0xFDEF).contains(&code) || code % 0x10000 >= 0xFFFE;
    c.is_control()
        || c == '['
        || c == ']'
        || rewrites_display(c)
        || invisible.iter().any(|r| r.contains(&code))
        || private_use
        || noncharacter
}

/// What PROTOCOL.md says the server answers and logs.
struct Expected {
    run: Run,
    /// For each status byte, the stream offset whose arrival makes it due.
    answered_at: Vec<usize>,
}

fn model(
    setup: &Setup,
    [name_cap, password_cap, message_cap]: [usize; 3],
    stream: &[u8],
) -> Expected {
    #[derive(PartialEq)]
    enum State {
        Connected,
        Named,
        Ready,
    }
    let mut state = State::Connected;
    let mut name = String::new();
    let mut statuses = Vec::new();
    let mut answered_at = Vec::new();
    let mut records = Vec::new();
    let mut attempts = 0;
    let mut pos = 0;
    let mut transactions = 0;

    let ended = loop {
        // Answer one transaction: `Ok` continues, `Err` ends the connection.
        let step: Result<usize, (usize, Ended)> = 'step: {
            let Some(&byte) = stream.get(pos) else {
                break 'step Err((pos, Ended::Eof { partial: 0 }));
            };
            let expected = match state {
                State::Connected => Tag::Name,
                State::Named => Tag::Password,
                State::Ready => Tag::Message,
            };
            let tag = match byte {
                1 => Tag::Name,
                2 => Tag::Password,
                3 => Tag::Message,
                4 => break 'step Err((pos + 1, Ended::Closed)),
                other => {
                    break 'step Err((
                        pos + 1,
                        Ended::Rejected(Reject::Frame(FrameError::UnknownTag(other))),
                    ))
                }
            };
            if tag != expected {
                let reject = Reject::UnexpectedTag {
                    expected,
                    received: tag,
                };
                break 'step Err((pos + 1, Ended::Rejected(reject)));
            }
            let Some(&[lo, hi]) = stream.get(pos + 1..pos + 3) else {
                break 'step Err((
                    pos,
                    Ended::Eof {
                        partial: stream.len() - pos,
                    },
                ));
            };
            let length = u16::from_le_bytes([lo, hi]);
            let cap = match tag {
                Tag::Name => name_cap,
                Tag::Password => password_cap,
                _ => message_cap,
            };
            if length == 0 {
                break 'step Err((
                    pos + 3,
                    Ended::Rejected(Reject::Frame(FrameError::ZeroLength(tag))),
                ));
            }
            let max = u16::try_from(cap).unwrap_or(u16::MAX);
            if length > max {
                let reject = Reject::Frame(FrameError::TooLong { tag, length, max });
                break 'step Err((pos + 3, Ended::Rejected(reject)));
            }
            let end = pos + 3 + usize::from(length);
            let Some(payload) = stream.get(pos + 3..end) else {
                break 'step Err((
                    pos,
                    Ended::Eof {
                        partial: stream.len() - pos,
                    },
                ));
            };
            match state {
                State::Connected => match std::str::from_utf8(payload) {
                    Ok(text) if !text.chars().any(refused_in_names) => {
                        name = text.to_owned();
                        state = State::Named;
                    }
                    _ => break 'step Err((end, Ended::Rejected(Reject::InvalidName))),
                },
                State::Named => {
                    let accepted = match setup.auth {
                        AuthRule::AcceptAny => true,
                        AuthRule::LegacyParity => payload.first().is_some_and(|b| b % 2 == 1),
                        AuthRule::StaticUsers => name == "MyUser" && payload == b"secret",
                        AuthRule::DenyAll => false,
                    };
                    if !accepted {
                        break 'step Err((end, Ended::Rejected(Reject::AuthenticationFailed)));
                    }
                    state = State::Ready;
                }
                State::Ready => {
                    attempts += 1;
                    if setup.sink_fails_at == Some(attempts) {
                        break 'step Err((end, Ended::Rejected(Reject::SinkFailed)));
                    }
                    records.push((name.clone(), payload.to_vec()));
                }
            }
            Ok(end)
        };
        match step {
            Ok(end) => {
                transactions += 1;
                statuses.push(Status::Accepted.as_byte());
                answered_at.push(end);
                pos = end;
            }
            Err((_, Ended::Eof { partial })) => {
                if setup.end == InputEnd::TimedOut {
                    // Answered when the timeout strikes, after all input.
                    statuses.push(Status::Rejected.as_byte());
                    answered_at.push(usize::MAX);
                    break Ended::Rejected(Reject::Timeout);
                }
                break Ended::Eof { partial };
            }
            Err((at, ended)) => {
                transactions += 1;
                let status = match ended {
                    Ended::Closed => Status::Accepted,
                    _ => Status::Rejected,
                };
                statuses.push(status.as_byte());
                answered_at.push(at);
                break ended;
            }
        }
    };
    let messages = records.len() as u64;
    Expected {
        run: Run {
            served: Served {
                ended,
                transactions,
                messages,
            },
            statuses,
            records,
        },
        answered_at,
    }
}
