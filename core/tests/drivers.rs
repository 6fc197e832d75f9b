//! The blocking drivers over in-memory transports: `serve`, `Client`, `stream_copy`.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use msglog_core::embedded_io::{self, ErrorKind, ErrorType, Read, ReadReady, Write};
use msglog_core::{
    serve, stream_copy, AcceptAny, Client, ClientError, CopyError, Ended, LegacyParity,
    RecordWriter, Reject, ServeError, Session, Stage, Timer, Transaction,
};
use proptest::prelude::*;

type Small = Session<16, 16, 64>;

/// A connection whose reads return scripted chunks and whose writes are recorded.
struct Scripted {
    chunks: VecDeque<Vec<u8>>,
    /// What to return once the chunks run out.
    then: Option<ErrorKind>,
    written: Vec<u8>,
    flushes: usize,
}

impl Scripted {
    fn new(input: &[u8], sizes: &[usize]) -> Self {
        let mut chunks = VecDeque::new();
        let mut rest = input;
        let mut sizes = sizes.iter().copied().cycle();
        while !rest.is_empty() {
            let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
            chunks.push_back(rest[..n].to_vec());
            rest = &rest[n..];
        }
        Scripted {
            chunks,
            then: None,
            written: Vec::new(),
            flushes: 0,
        }
    }
}

impl ErrorType for Scripted {
    type Error = ErrorKind;
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        match self.chunks.pop_front() {
            Some(mut chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    self.chunks.push_front(chunk.split_off(n));
                }
                Ok(n)
            }
            None => self.then.map_or(Ok(0), Err),
        }
    }
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        self.flushes += 1;
        Ok(())
    }
}

fn encode_all(txs: &[Transaction<'_>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for tx in txs {
        let mut buf = vec![0; tx.encoded_len()];
        tx.encode(&mut buf).unwrap();
        wire.extend(buf);
    }
    wire
}

fn run_serve(input: &[u8], sizes: &[usize]) -> (msglog_core::Served, Vec<u8>, Vec<u8>) {
    let mut io = Scripted::new(input, sizes);
    let mut log = Vec::new();
    let mut sink = RecordWriter::new(&mut log);
    let mut session = Small::new();
    let mut buffer = [0u8; Small::MAX_FRAME];
    let served = serve(
        &mut io,
        &mut buffer,
        &mut session,
        &mut AcceptAny,
        &mut sink,
    )
    .unwrap();
    (served, io.written, log)
}

#[test]
fn serve_answers_a_whole_session() {
    let input = encode_all(&[
        Transaction::Name(b"MyUser"),
        Transaction::Password(b"pw"),
        Transaction::Message(b"one"),
        Transaction::Message(b"two\nlines"),
        Transaction::Close,
    ]);
    let (served, statuses, log) = run_serve(&input, &[input.len()]);
    assert_eq!(served.ended, Ended::Closed);
    assert_eq!(served.transactions, 5);
    assert_eq!(served.messages, 2);
    assert_eq!(statuses, [0, 0, 0, 0, 0]);
    assert_eq!(log, b"[MyUser]: one\r\n[MyUser]: two\\nlines\r\n");
}

#[test]
fn serve_answers_one_read_with_one_write() {
    let input = encode_all(&[
        Transaction::Name(b"u"),
        Transaction::Password(b"p"),
        Transaction::Message(b"a"),
        Transaction::Message(b"b"),
    ]);
    let mut io = Scripted::new(&input, &[input.len()]);
    let mut session = Small::new();
    let mut buffer = [0u8; Small::MAX_FRAME];
    let mut sink = RecordWriter::new(Vec::new());
    serve(
        &mut io,
        &mut buffer,
        &mut session,
        &mut AcceptAny,
        &mut sink,
    )
    .unwrap();
    assert_eq!(io.written, [0, 0, 0, 0]);
    assert_eq!(io.flushes, 1);
}

#[test]
fn bytes_after_close_are_discarded() {
    let mut input = encode_all(&[Transaction::Name(b"u"), Transaction::Close]);
    input.extend_from_slice(b"\x03\x01\x00x garbage \xff");
    let (served, statuses, log) = run_serve(&input, &[1]);
    assert_eq!(served.ended, Ended::Closed);
    assert_eq!(statuses, [0, 0]);
    assert!(log.is_empty());
}

#[test]
fn serve_rejects_and_stops_at_the_first_bad_transaction() {
    let mut input = encode_all(&[Transaction::Name(b"u"), Transaction::Password(b"p")]);
    input.extend_from_slice(&[0x03, 0x00, 0x00]); // zero-length MESSAGE
    input.extend(encode_all(&[Transaction::Message(b"never")]));
    let (served, statuses, log) = run_serve(&input, &[2]);
    assert!(matches!(served.ended, Ended::Rejected(Reject::Frame(_))));
    assert_eq!(statuses, [0, 0, 0xFF]);
    assert!(log.is_empty());
}

#[test]
fn serve_drops_a_partial_transaction_at_eof_without_answering_it() {
    let mut input = encode_all(&[Transaction::Name(b"u")]);
    input.extend_from_slice(b"\x02\x05\x00pa");
    let (served, statuses, _) = run_serve(&input, &[3]);
    assert_eq!(served.ended, Ended::Eof { partial: 5 });
    assert_eq!(statuses, [0]);
}

#[test]
fn serve_answers_a_transport_timeout_with_ff() {
    let mut io = Scripted::new(b"\x01\x05\x00ab", &[10]);
    io.then = Some(ErrorKind::TimedOut);
    let mut session = Small::new();
    let mut buffer = [0u8; Small::MAX_FRAME];
    let mut sink = RecordWriter::new(Vec::new());
    let served = serve(
        &mut io,
        &mut buffer,
        &mut session,
        &mut AcceptAny,
        &mut sink,
    )
    .unwrap();
    assert_eq!(served.ended, Ended::Rejected(Reject::Timeout));
    assert_eq!(io.written, [0xFF]);

    let mut io = Scripted::new(b"", &[1]);
    io.then = Some(ErrorKind::ConnectionReset);
    let mut session = Small::new();
    assert_eq!(
        serve(
            &mut io,
            &mut buffer,
            &mut session,
            &mut AcceptAny,
            &mut sink
        ),
        Err(ServeError::Read(ErrorKind::ConnectionReset))
    );
}

#[test]
fn serve_needs_a_buffer_for_the_largest_transaction() {
    let mut io = Scripted::new(b"", &[1]);
    let mut session = Small::new();
    let mut buffer = [0u8; 66];
    let mut sink = RecordWriter::new(Vec::new());
    assert_eq!(
        serve(
            &mut io,
            &mut buffer,
            &mut session,
            &mut AcceptAny,
            &mut sink
        ),
        Err(ServeError::BufferTooSmall { needed: 67 })
    );
}

#[test]
fn serve_refuses_a_bad_password_and_processes_nothing_after_it() {
    let input = encode_all(&[
        Transaction::Name(b"u"),
        Transaction::Password(b"even"), // 'e' = 0x65 is odd: accepted by parity
        Transaction::Message(b"m"),
    ]);
    let mut io = Scripted::new(&input, &[100]);
    let mut session = Small::new();
    let mut buffer = [0u8; Small::MAX_FRAME];
    let mut sink = RecordWriter::new(Vec::new());
    serve(
        &mut io,
        &mut buffer,
        &mut session,
        &mut LegacyParity,
        &mut sink,
    )
    .unwrap();
    assert_eq!(io.written, [0, 0, 0]);

    let input = encode_all(&[
        Transaction::Name(b"u"),
        Transaction::Password(b"bad"), // 'b' = 0x62 is even
        Transaction::Message(b"m"),
    ]);
    let mut io = Scripted::new(&input, &[100]);
    let mut session = Small::new();
    let mut sink = RecordWriter::new(Vec::new());
    let served = serve(
        &mut io,
        &mut buffer,
        &mut session,
        &mut LegacyParity,
        &mut sink,
    )
    .unwrap();
    assert_eq!(served.ended, Ended::Rejected(Reject::AuthenticationFailed));
    assert_eq!(io.written, [0, 0xFF]);
    assert!(sink.get_ref().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any chunking of any stream gives the same statuses, records and ending.
    #[test]
    fn serve_is_independent_of_chunking(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..80), 0..8),
        tail in proptest::collection::vec(any::<u8>(), 0..40),
        sizes in proptest::collection::vec(1usize..70, 1..10),
    ) {
        let mut txs = vec![Transaction::Name(b"user"), Transaction::Password(b"pw")];
        txs.extend(messages.iter().map(|m| Transaction::Message(m)));
        let mut input = encode_all(&txs);
        input.extend_from_slice(&tail);
        let whole = run_serve(&input, &[input.len().max(1)]);
        let split = run_serve(&input, &sizes);
        prop_assert_eq!(&whole, &split);
        // One status per transaction, never more.
        prop_assert_eq!(whole.1.len() as u64, whole.0.transactions);
    }
}

/// A transport connected to an in-memory server: what the client writes is
/// served by the core's session, and the statuses come back on read.
/// `frames_per_read` limits how many transactions are answered per read,
/// like the original server (one per wake-up).
struct Loopback {
    session: Small,
    to_server: Vec<u8>,
    to_client: VecDeque<u8>,
    writes: Vec<usize>,
    records: Vec<Vec<u8>>,
    reject_message: Option<usize>,
    frames_per_read: usize,
    closed: bool,
}

impl Loopback {
    fn new(frames_per_read: usize) -> Self {
        Loopback {
            session: Small::new(),
            to_server: Vec::new(),
            to_client: VecDeque::new(),
            writes: Vec::new(),
            records: Vec::new(),
            reject_message: None,
            frames_per_read,
            closed: false,
        }
    }

    fn run_server(&mut self) {
        let mut answered = 0;
        while answered < self.frames_per_read && !self.closed {
            let (outcome, consumed) = match self.session.decode(&self.to_server) {
                Ok(msglog_core::Decoded::Complete {
                    transaction,
                    consumed,
                }) => {
                    let reject_at = self.reject_message;
                    let records = &mut self.records;
                    let mut sink = |_: &str, m: &[u8]| -> Result<(), ()> {
                        if reject_at == Some(records.len()) {
                            return Err(());
                        }
                        records.push(m.to_vec());
                        Ok(())
                    };
                    let mut sink = FnSink(&mut sink);
                    (
                        self.session.handle(transaction, &mut AcceptAny, &mut sink),
                        consumed,
                    )
                }
                Ok(msglog_core::Decoded::Partial { .. }) => return,
                Err(reject) => (msglog_core::Outcome::Rejected(reject), 0),
            };
            self.to_server.drain(..consumed);
            self.to_client.push_back(outcome.status().as_byte());
            answered += 1;
            if outcome.ends_session() {
                self.closed = true;
            }
        }
    }
}

type SinkFn<'a> = dyn FnMut(&str, &[u8]) -> Result<(), ()> + 'a;

struct FnSink<'a, 'f>(&'a mut SinkFn<'f>);

impl msglog_core::Sink for FnSink<'_, '_> {
    type Error = ();
    fn append(&mut self, name: &str, message: &[u8]) -> Result<(), ()> {
        (self.0)(name, message)
    }
}

impl ErrorType for Loopback {
    type Error = ErrorKind;
}

impl Read for Loopback {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if self.to_client.is_empty() {
            self.run_server();
        }
        let n = buf.len().min(self.to_client.len());
        for slot in &mut buf[..n] {
            *slot = self.to_client.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl Write for Loopback {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if self.closed {
            return Err(ErrorKind::BrokenPipe);
        }
        self.to_server.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        self.writes.push(self.to_server.len());
        Ok(())
    }
}

#[test]
fn client_sends_a_session_with_every_window() {
    for window in [1, 2, 16, 64] {
        for frames_per_read in [1, 1000] {
            let mut client = Client::new(Loopback::new(frames_per_read), window);
            client.login("alice", b"pw").unwrap();
            for i in 0..100u32 {
                client.send(format!("message {i}").as_bytes()).unwrap();
                assert!(client.in_flight() <= window);
            }
            client.close().unwrap();
            assert_eq!(client.messages_sent(), 100);
            assert_eq!(client.messages_acknowledged(), 100);
            let io = client.into_inner();
            assert_eq!(io.records.len(), 100);
            assert_eq!(io.records[99], b"message 99");
            assert!(io.closed);
        }
    }
}

#[test]
fn client_reports_the_first_rejected_message() {
    let mut io = Loopback::new(1000);
    io.reject_message = Some(3);
    let mut client = Client::new(io, 8);
    client.login("alice", b"pw").unwrap();
    let mut error = None;
    for i in 0..10u32 {
        if let Err(e) = client.send(format!("m{i}").as_bytes()) {
            error = Some(e);
            break;
        }
    }
    let error = match error {
        Some(e) => e,
        None => client.close().unwrap_err(),
    };
    assert_eq!(
        error,
        ClientError::Rejected {
            stage: Stage::Message(3)
        }
    );
    assert_eq!(client.messages_acknowledged(), 3);
    assert_eq!(client.send(b"more"), Err(ClientError::SessionEnded));
}

#[test]
fn client_reports_a_rejected_password() {
    let mut client = Client::new(Loopback::new(1), 4);
    // Names with brackets are refused by the server's session.
    assert_eq!(
        client.login("bad]name", b"pw"),
        Err(ClientError::Rejected { stage: Stage::Name })
    );
}

#[test]
fn client_refuses_unsendable_messages_before_sending() {
    let mut client = Client::new(Loopback::new(1), 4);
    client.login("alice", b"pw").unwrap();
    let before = client.get_ref().to_server.len();
    assert!(matches!(client.send(b""), Err(ClientError::Encode(_))));
    assert!(matches!(
        client.send(&vec![0u8; 70_000]),
        Err(ClientError::Encode(_))
    ));
    assert_eq!(client.get_ref().to_server.len(), before);
    client.send(b"still fine").unwrap();
    client.close().unwrap();
}

#[test]
fn client_flushes_once_per_transaction() {
    let mut client = Client::new(Loopback::new(1000), 64);
    client.login("alice", b"pw").unwrap();
    client.send(b"abc").unwrap();
    client.close().unwrap();
    assert_eq!(client.get_ref().writes.len(), 4);
}

/// A server that closes the connection without answering.
struct Silent;
impl ErrorType for Silent {
    type Error = ErrorKind;
}
impl Read for Silent {
    fn read(&mut self, _: &mut [u8]) -> Result<usize, ErrorKind> {
        Ok(0)
    }
}
impl Write for Silent {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// Statuses arrive when the test pushes them; reading with none there
/// (and the connection open) would block, which `poll` must never do.
struct Arrivals {
    arrived: VecDeque<u8>,
    closed: bool,
}

impl ErrorType for Arrivals {
    type Error = ErrorKind;
}

impl Read for Arrivals {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        assert!(
            !self.arrived.is_empty() || self.closed,
            "a read that would block"
        );
        let n = buf.len().min(self.arrived.len());
        for slot in &mut buf[..n] {
            *slot = self.arrived.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl ReadReady for Arrivals {
    fn read_ready(&mut self) -> Result<bool, ErrorKind> {
        Ok(!self.arrived.is_empty() || self.closed)
    }
}

impl Write for Arrivals {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

#[test]
fn client_poll_reads_only_statuses_that_arrived() {
    let io = Arrivals {
        arrived: VecDeque::from([0, 0]),
        closed: false,
    };
    let mut client = Client::new(io, 8);
    client.login("alice", b"pw").unwrap();
    client.poll().unwrap();
    for message in [&b"a"[..], b"b", b"c", b"d"] {
        client.send(message).unwrap();
    }
    client.poll().unwrap();
    assert_eq!((client.messages_acknowledged(), client.in_flight()), (0, 4));

    client.get_mut().arrived.extend([0, 0]);
    client.poll().unwrap();
    assert_eq!((client.messages_acknowledged(), client.in_flight()), (2, 2));

    client.get_mut().arrived.push_back(0xFF);
    assert_eq!(
        client.poll(),
        Err(ClientError::Rejected {
            stage: Stage::Message(2)
        })
    );
    assert_eq!(client.messages_acknowledged(), 2);
}

#[test]
fn client_poll_reports_a_closed_connection() {
    let io = Arrivals {
        arrived: VecDeque::from([0, 0, 0]),
        closed: false,
    };
    let mut client = Client::new(io, 8);
    client.login("alice", b"pw").unwrap();
    client.send(b"acknowledged").unwrap();
    client.send(b"lost").unwrap();
    client.get_mut().closed = true;
    assert_eq!(
        client.poll(),
        Err(ClientError::Disconnected {
            stage: Stage::Message(1)
        })
    );
    assert_eq!(client.messages_acknowledged(), 1);
}

#[test]
fn client_reports_a_lost_connection_with_its_stage() {
    let mut client = Client::new(Silent, 4);
    assert_eq!(
        client.login("alice", b"pw"),
        Err(ClientError::Disconnected { stage: Stage::Name })
    );
}

#[test]
fn close_answered_by_eof_or_ff_is_clean() {
    // The original server answers a bare CLOSE with 0xFF.
    struct AnswersFf(VecDeque<u8>);
    impl ErrorType for AnswersFf {
        type Error = ErrorKind;
    }
    impl Read for AnswersFf {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            match self.0.pop_front() {
                Some(b) => {
                    buf[0] = b;
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    }
    impl Write for AnswersFf {
        fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }
    let mut client = Client::new(AnswersFf(VecDeque::from([0, 0, 0, 0xFF])), 1);
    client.login("u", b"p").unwrap();
    client.send(b"m").unwrap();
    client.close().unwrap();
    assert_eq!(client.messages_acknowledged(), 1);

    let mut client = Client::new(AnswersFf(VecDeque::from([0, 0])), 1);
    client.login("u", b"p").unwrap();
    client.close().unwrap();
}

#[test]
fn client_refuses_a_message_before_login() {
    let mut client = Client::new(Loopback::new(1000), 4);
    assert_eq!(client.send(b"early"), Err(ClientError::NotLoggedIn));
    assert!(client.get_ref().to_server.is_empty());
    client.login("alice", b"pw").unwrap();
    client.send(b"on time").unwrap();
    client.close().unwrap();
    assert_eq!(client.get_ref().records, [b"on time".to_vec()]);
}

#[test]
fn close_before_login_is_a_close() {
    // Statuses are matched by position: CLOSE is the first transaction
    // here, and the connection closing answers it cleanly.
    let mut client = Client::new(Silent, 4);
    client.close().unwrap();
    assert_eq!(client.messages_sent(), 0);
    assert_eq!(client.login("late", b"pw"), Err(ClientError::SessionEnded));
}

#[test]
fn after_a_failure_nothing_more_is_read_or_written() {
    // NAME answered 0x07, not a status; the PASSWORD is still in flight.
    let io = Arrivals {
        arrived: VecDeque::from([0x07]),
        closed: true,
    };
    let mut client = Client::new(io, 4);
    assert_eq!(
        client.login("alice", b"pw"),
        Err(ClientError::InvalidStatus {
            byte: 0x07,
            stage: Stage::Name
        })
    );
    // Not `Disconnected { stage: Name }`: NAME was answered, if wrongly.
    assert_eq!(client.wait(), Err(ClientError::SessionEnded));
    assert_eq!(client.poll(), Err(ClientError::SessionEnded));
    assert_eq!(client.send(b"m"), Err(ClientError::SessionEnded));
    assert_eq!(client.close(), Err(ClientError::SessionEnded));
}

/// A writer that takes at most `max` bytes per call.
struct Trickle {
    out: Vec<u8>,
    max: usize,
    /// Refuse every write that starts once this many bytes were taken.
    fail_after: Option<usize>,
    /// Whether a write was refused.
    refused: bool,
}

impl ErrorType for Trickle {
    type Error = ErrorKind;
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if self.fail_after.is_some_and(|limit| self.out.len() >= limit) {
            self.refused = true;
            return Err(ErrorKind::BrokenPipe);
        }
        let n = buf.len().min(self.max);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

proptest! {
    #[test]
    fn stream_copy_is_exact_through_short_reads_and_writes(
        data in proptest::collection::vec(any::<u8>(), 0..5000),
        read_sizes in proptest::collection::vec(1usize..300, 1..8),
        max_write in 1usize..100,
        buffer_len in 1usize..512,
    ) {
        let mut reader = Scripted::new(&data, &read_sizes);
        let mut writer = Trickle { out: Vec::new(), max: max_write, fail_after: None, refused: false };
        let mut buffer = vec![0u8; buffer_len];
        let copied = stream_copy(&mut reader, &mut writer, &mut buffer).unwrap();
        prop_assert_eq!(copied, data.len() as u64);
        prop_assert_eq!(writer.out, data);
    }

    /// Whatever fails and wherever, the count is what the writer took.
    #[test]
    fn stream_copy_counts_what_was_written_before_a_failure(
        data in proptest::collection::vec(any::<u8>(), 1..5000),
        read_sizes in proptest::collection::vec(1usize..300, 1..8),
        max_write in 1usize..100,
        buffer_len in 1usize..512,
        fail_after in 0usize..6000,
        read_fails in any::<bool>(),
    ) {
        let mut reader = Scripted::new(&data, &read_sizes);
        if read_fails {
            reader.then = Some(ErrorKind::ConnectionReset);
        }
        let mut writer = Trickle { out: Vec::new(), max: max_write, fail_after: Some(fail_after), refused: false };
        let mut buffer = vec![0u8; buffer_len];
        match stream_copy(&mut reader, &mut writer, &mut buffer) {
            // A write that starts below `fail_after` may carry the count past
            // it, so whether the writer refuses depends on the write sizes:
            // the writer itself says whether it did.
            Ok(copied) => {
                prop_assert!(!read_fails && !writer.refused);
                prop_assert_eq!(copied, data.len() as u64);
                prop_assert_eq!(&writer.out, &data);
            }
            Err(error @ CopyError::Write { error: ErrorKind::BrokenPipe, copied }) => {
                prop_assert!(writer.refused && fail_after < data.len(), "{error:?}");
                prop_assert_eq!(copied, writer.out.len() as u64);
            }
            Err(CopyError::Read { error: ErrorKind::ConnectionReset, copied }) => {
                prop_assert!(read_fails && !writer.refused);
                prop_assert_eq!(copied, data.len() as u64);
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
        prop_assert!(data.starts_with(&writer.out));
    }
}

#[test]
fn stream_copy_reports_errors() {
    let mut reader = Scripted::new(&[1; 100], &[10]);
    let mut writer = Trickle {
        out: Vec::new(),
        max: 7,
        fail_after: Some(20),
        refused: false,
    };
    let mut buffer = [0u8; 16];
    // Reads of 10, written 7 + 3 twice; the next write fails at 20 bytes.
    let error = stream_copy(&mut reader, &mut writer, &mut buffer).unwrap_err();
    assert_eq!(
        error,
        CopyError::Write {
            error: ErrorKind::BrokenPipe,
            copied: writer.out.len() as u64
        }
    );
    assert_eq!(error.copied(), 20);
    let mut reader = Scripted::new(&[2; 30], &[30]);
    reader.then = Some(ErrorKind::ConnectionReset);
    let mut writer = Trickle {
        out: Vec::new(),
        max: 64,
        fail_after: None,
        refused: false,
    };
    assert_eq!(
        stream_copy(&mut reader, &mut writer, &mut buffer),
        Err(CopyError::Read {
            error: ErrorKind::ConnectionReset,
            copied: 30
        })
    );
    assert_eq!(
        stream_copy(&mut reader, &mut writer, &mut []),
        Err(CopyError::EmptyBuffer)
    );

    struct Zero;
    impl ErrorType for Zero {
        type Error = ErrorKind;
    }
    impl Write for Zero {
        fn write(&mut self, _: &[u8]) -> Result<usize, ErrorKind> {
            Ok(0)
        }
        fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }
    let mut reader = Scripted::new(&[1; 10], &[10]);
    assert_eq!(
        stream_copy(&mut reader, &mut Zero, &mut buffer),
        Err(CopyError::WriteZero { copied: 0 })
    );
    let _ = embedded_io::ErrorKind::Other;
}

/// The writer's own error comes back unchanged, whatever its type, and a
/// failed final flush counts every byte written before it.
#[test]
fn stream_copy_keeps_the_writers_error() {
    #[derive(Debug, PartialEq)]
    struct DiskFull(u32);
    impl std::fmt::Display for DiskFull {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "disk full {}", self.0)
        }
    }
    impl std::error::Error for DiskFull {}
    impl embedded_io::Error for DiskFull {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }
    struct Unflushable(Vec<u8>);
    impl ErrorType for Unflushable {
        type Error = DiskFull;
    }
    impl Write for Unflushable {
        fn write(&mut self, buf: &[u8]) -> Result<usize, DiskFull> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), DiskFull> {
            Err(DiskFull(28))
        }
    }
    let mut reader = Scripted::new(&[3; 40], &[16]);
    let mut writer = Unflushable(Vec::new());
    let mut buffer = [0u8; 8];
    let error = stream_copy(&mut reader, &mut writer, &mut buffer).unwrap_err();
    assert_eq!(
        error,
        CopyError::Write {
            error: DiskFull(28),
            copied: 40
        }
    );
    let error: CopyError<ErrorKind, DiskFull> = error;
    assert_eq!(
        error.to_string(),
        "write failed after 40 bytes: disk full 28"
    );
}

/// A server that answers only what the test queued, on a clock the test
/// shares with the client's [`TestTimer`]: a read with nothing queued waits
/// until the deadline the client set (the clock jumps there, or only
/// `early_by` short of it) and times out.
struct Clocked {
    arrived: VecDeque<u8>,
    clock: Rc<Cell<u64>>,
    deadline: Option<u64>,
    early_by: u64,
    written: Vec<u8>,
}

impl Clocked {
    fn new(arrived: &[u8], clock: &Rc<Cell<u64>>) -> Self {
        Clocked {
            arrived: arrived.iter().copied().collect(),
            clock: Rc::clone(clock),
            deadline: None,
            early_by: 0,
            written: Vec::new(),
        }
    }
}

impl ErrorType for Clocked {
    type Error = ErrorKind;
}

impl Read for Clocked {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if self.arrived.is_empty() {
            let deadline = self.deadline.expect("a read that would block forever");
            let woke = deadline - std::mem::take(&mut self.early_by);
            self.clock.set(self.clock.get().max(woke));
            return Err(ErrorKind::TimedOut);
        }
        let n = buf.len().min(self.arrived.len());
        for slot in &mut buf[..n] {
            *slot = self.arrived.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl ReadReady for Clocked {
    fn read_ready(&mut self) -> Result<bool, ErrorKind> {
        Ok(!self.arrived.is_empty())
    }
}

impl Write for Clocked {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// The test's clock, in milliseconds.
struct TestTimer(Rc<Cell<u64>>);

impl Timer<Clocked> for TestTimer {
    type Instant = u64;
    fn now(&mut self) -> u64 {
        self.0.get()
    }
    fn bound_read(&mut self, io: &mut Clocked, deadline: Option<u64>) -> Result<(), ErrorKind> {
        io.deadline = deadline;
        Ok(())
    }
}

fn clocked_client(arrived: &[u8], timeout: u64) -> (Client<Clocked, TestTimer>, Rc<Cell<u64>>) {
    let clock = Rc::new(Cell::new(0));
    let io = Clocked::new(arrived, &clock);
    let client = Client::with_timer(io, 4, TestTimer(Rc::clone(&clock)), Some(timeout));
    (client, clock)
}

#[test]
fn client_times_out_a_status_that_does_not_come() {
    let (mut client, clock) = clocked_client(&[0, 0], 100);
    client.login("alice", b"pw").unwrap();
    clock.set(10);
    client.send(b"never answered").unwrap();
    assert_eq!(client.session().poll_timeout(), Some(110));
    assert_eq!(
        client.wait(),
        Err(ClientError::TimedOut {
            stage: Stage::Message(0)
        })
    );
    assert_eq!(clock.get(), 110);
    assert_eq!(client.wait(), Err(ClientError::SessionEnded));
    assert_eq!(client.send(b"more"), Err(ClientError::SessionEnded));
}

#[test]
fn client_waits_from_the_last_status_and_rereads_after_an_early_wake_up() {
    let (mut client, clock) = clocked_client(&[0, 0], 100);
    client.login("alice", b"pw").unwrap();
    client.send(b"a").unwrap();
    client.send(b"b").unwrap();
    clock.set(90);
    client.get_mut().arrived.push_back(0);
    client.poll().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(client.messages_acknowledged(), 1);
    assert_eq!(client.session().poll_timeout(), Some(190));
    // The transport's own timer fires 30 ms early: the client reads again.
    client.get_mut().early_by = 30;
    assert_eq!(
        client.wait(),
        Err(ClientError::TimedOut {
            stage: Stage::Message(1)
        })
    );
    assert_eq!(clock.get(), 190);
}

#[test]
fn client_handle_timeout_ends_an_overdue_session_without_reading() {
    let (mut client, clock) = clocked_client(&[0, 0], 100);
    client.login("alice", b"pw").unwrap();
    client.get_mut().deadline = None;
    clock.set(10);
    client.send(b"late").unwrap();
    clock.set(109);
    assert_eq!(client.handle_timeout(), Ok(()));
    assert!(!client.session().is_ended());
    clock.set(110);
    assert_eq!(
        client.handle_timeout(),
        Err(ClientError::TimedOut {
            stage: Stage::Message(0)
        })
    );
    assert!(client.session().is_ended());
    // Decided on the clock alone: no read was bounded, none was made.
    assert_eq!(client.get_ref().deadline, None);
    assert_eq!(client.send(b"more"), Err(ClientError::SessionEnded));
}

#[test]
fn client_tells_of_bytes_read_ahead_of_their_transactions() {
    // The login's statuses and a byte the server sent unasked, in one read.
    let (mut client, _clock) = clocked_client(&[0, 0, 0xFF], 100);
    client.login("alice", b"pw").unwrap();
    assert_eq!((client.in_flight(), client.buffered()), (0, 1));
    // Sent now, a message would take that byte as its status.
    assert_eq!(
        client.send(b"m").and_then(|()| client.wait()),
        Err(ClientError::Rejected {
            stage: Stage::Message(0)
        })
    );
    assert_eq!(client.buffered(), 0);
}

#[test]
fn client_ends_cleanly_when_only_close_goes_unanswered() {
    let (mut client, clock) = clocked_client(&[0, 0, 0], 50);
    client.login("alice", b"pw").unwrap();
    client.send(b"a").unwrap();
    client.close().unwrap();
    assert_eq!(clock.get(), 50);
    assert_eq!(client.messages_acknowledged(), 1);
    assert_eq!(client.get_ref().written.last(), Some(&0x04));
}
