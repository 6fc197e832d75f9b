//! The async drivers (`msglog_core::asynch`) over in-memory transports, run
//! with `embassy_futures::block_on`: each behaves as its blocking twin does
//! on the same bytes, and times out on the caller's clock.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::Poll;

use embassy_futures::block_on;
use msglog_core::embedded_io::{self, ErrorKind, ErrorType};
use msglog_core::{
    asynch, serve, serve_with_timer, stream_copy, AcceptAny, Client, ClientError, CopyError, Ended,
    LegacyParity, RecordWriter, Reject, Served, Session, Stage, Timer, Transaction,
};
use msglog_core::{embedded_io_async, Decoded, Outcome};
use proptest::prelude::*;

type Small = Session<16, 16, 64>;

/// What a [`Wire`] does once its scripted chunks are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// End of stream.
    Eof,
    /// This error.
    Fail(ErrorKind),
    /// Nothing ever arrives: a blocking read waits until the deadline its
    /// timer set (the clock jumps there, or `early_by` short of it) and
    /// times out; an async read stays pending.
    Silent,
}

/// A connection whose reads return scripted chunks and whose writes are
/// recorded; blocking and async alike, so that both drivers see the same.
struct Wire {
    chunks: VecDeque<Vec<u8>>,
    then: Then,
    written: Vec<u8>,
    flushes: usize,
    clock: Rc<Clock>,
    deadline: Option<u64>,
}

/// The test's clock in milliseconds, and how early its timer fires once.
#[derive(Default)]
struct Clock {
    now: Cell<u64>,
    early_by: Cell<u64>,
}

impl Clock {
    /// Wait until `deadline`, or `early_by` short of it.
    fn jump(&self, deadline: u64) {
        let woke = deadline - self.early_by.take();
        self.now.set(self.now.get().max(woke));
    }
}

impl Wire {
    fn new(input: &[u8], sizes: &[usize], then: Then) -> Self {
        let mut chunks = VecDeque::new();
        let mut rest = input;
        let mut sizes = sizes.iter().copied().cycle();
        while !rest.is_empty() {
            let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
            chunks.push_back(rest[..n].to_vec());
            rest = &rest[n..];
        }
        Wire {
            chunks,
            then,
            written: Vec::new(),
            flushes: 0,
            clock: Rc::default(),
            deadline: None,
        }
    }

    /// The next chunk, or `None` when what comes is [`Then`].
    fn next(&mut self, buf: &mut [u8]) -> Option<Result<usize, ErrorKind>> {
        match self.chunks.pop_front() {
            Some(mut chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    self.chunks.push_front(chunk.split_off(n));
                }
                Some(Ok(n))
            }
            None => match self.then {
                Then::Eof => Some(Ok(0)),
                Then::Fail(kind) => Some(Err(kind)),
                Then::Silent => None,
            },
        }
    }
}

impl ErrorType for Wire {
    type Error = ErrorKind;
}

impl embedded_io::Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.next(buf).unwrap_or_else(|| {
            let deadline = self.deadline.expect("a read that would block forever");
            self.clock.jump(deadline);
            Err(ErrorKind::TimedOut)
        })
    }
}

impl embedded_io::Write for Wire {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        self.flushes += 1;
        Ok(())
    }
}

impl embedded_io_async::Read for Wire {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        match self.next(buf) {
            Some(result) => result,
            None => poll_fn(|_| Poll::Pending).await,
        }
    }
}

impl embedded_io_async::Write for Wire {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        embedded_io::Write::write(self, buf)
    }
    async fn flush(&mut self) -> Result<(), ErrorKind> {
        embedded_io::Write::flush(self)
    }
}

/// The test clock as both drivers' timer.
struct TestTimer(Rc<Clock>);

impl Timer<Wire> for TestTimer {
    type Instant = u64;
    fn now(&mut self) -> u64 {
        self.0.now.get()
    }
    fn bound_read(&mut self, io: &mut Wire, deadline: Option<u64>) -> Result<(), ErrorKind> {
        io.deadline = deadline;
        Ok(())
    }
}

impl asynch::Timer for TestTimer {
    type Instant = u64;
    fn now(&self) -> u64 {
        self.0.now.get()
    }
    fn sleep_until(&self, deadline: u64) -> impl Future<Output = ()> {
        let clock = Rc::clone(&self.0);
        async move { clock.jump(deadline) }
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

/// What serving a connection did: its result, the bytes written, the
/// flushes, the records logged, and the clock at the end.
type Run = (Served, Vec<u8>, usize, Vec<u8>, u64);

/// Serve `wire` with the blocking or the async driver; with timeouts (idle
/// 100, frame 30) if `timed`.
fn run_serve(mut wire: Wire, is_async: bool, timed: bool) -> Run {
    let mut log = Vec::new();
    let mut sink = RecordWriter::new(&mut log);
    let mut session = Small::new();
    if timed {
        session.set_idle_timeout(Some(100));
        session.set_frame_timeout(Some(30));
    }
    let mut buffer = [0u8; Small::MAX_FRAME];
    let mut timer = TestTimer(Rc::clone(&wire.clock));
    let auth = &mut LegacyParity;
    let served = match (is_async, timed) {
        (false, false) => serve(&mut wire, &mut buffer, &mut session, auth, &mut sink),
        (false, true) => serve_with_timer(
            &mut wire,
            &mut buffer,
            &mut session,
            auth,
            &mut sink,
            &mut timer,
        ),
        (true, false) => block_on(asynch::serve(
            &mut wire,
            &mut buffer,
            &mut session,
            auth,
            &mut sink,
        )),
        (true, true) => block_on(asynch::serve_with_timer(
            &mut wire,
            &mut buffer,
            &mut session,
            auth,
            &mut sink,
            &timer,
        )),
    }
    .unwrap();
    let now = wire.clock.now.get();
    (served, wire.written, wire.flushes, log, now)
}

/// Both drivers on the same wire: their runs, which must be equal.
fn both(make: impl Fn() -> Wire, timed: bool) -> Run {
    let blocking = run_serve(make(), false, timed);
    let run = run_serve(make(), true, timed);
    assert_eq!(
        run, blocking,
        "the async serve differs from the blocking one"
    );
    run
}

#[test]
fn async_serve_answers_a_session_as_serve_does() {
    let input = encode_all(&[
        Transaction::Name(b"MyUser"),
        Transaction::Password(b"a"),
        Transaction::Message(b"one"),
        Transaction::Message(b"two\nlines"),
        Transaction::Close,
    ]);
    let (served, written, flushes, log, _) = both(|| Wire::new(&input, &[1000], Then::Eof), false);
    assert_eq!(served.ended, Ended::Closed);
    assert_eq!((served.transactions, served.messages), (5, 2));
    assert_eq!((&written[..], flushes), (&[0, 0, 0, 0, 0][..], 1));
    assert_eq!(log, b"[MyUser]: one\r\n[MyUser]: two\\nlines\r\n");
}

#[test]
fn async_serve_ends_as_serve_does_on_a_refused_password_eof_and_errors() {
    let refused = encode_all(&[
        Transaction::Name(b"u"),
        Transaction::Password(b"bad"), // 'b' = 0x62 is even: refused by parity
        Transaction::Message(b"m"),
    ]);
    let (served, written, ..) = both(|| Wire::new(&refused, &[100], Then::Eof), false);
    assert_eq!(served.ended, Ended::Rejected(Reject::AuthenticationFailed));
    assert_eq!(written, [0, 0xFF]);

    let (served, written, ..) = both(|| Wire::new(b"\x01\x05\x00ab", &[2], Then::Eof), false);
    assert_eq!(
        (served.ended, &written[..]),
        (Ended::Eof { partial: 5 }, &[][..])
    );

    // A transport's own timeout is answered 0xFF.
    let timed_out = || Wire::new(b"\x01\x05\x00ab", &[10], Then::Fail(ErrorKind::TimedOut));
    let (served, written, ..) = both(timed_out, false);
    assert_eq!(served.ended, Ended::Rejected(Reject::Timeout));
    assert_eq!(written, [0xFF]);

    let mut reset = Wire::new(b"", &[1], Then::Fail(ErrorKind::ConnectionReset));
    let mut buffer = [0u8; Small::MAX_FRAME];
    let result = block_on(asynch::serve(
        &mut reset,
        &mut buffer,
        &mut Small::new(),
        &mut AcceptAny,
        &mut RecordWriter::new(Vec::new()),
    ));
    assert_eq!(
        result,
        Err(msglog_core::ServeError::Read(ErrorKind::ConnectionReset))
    );
    let result = block_on(asynch::serve(
        &mut reset,
        &mut [0u8; 10],
        &mut Small::new(),
        &mut AcceptAny,
        &mut RecordWriter::new(Vec::new()),
    ));
    assert_eq!(
        result,
        Err(msglog_core::ServeError::BufferTooSmall {
            needed: Small::MAX_FRAME
        })
    );
}

#[test]
fn async_serve_with_timer_ends_an_idle_connection_at_the_idle_timeout() {
    let login = encode_all(&[Transaction::Name(b"alice"), Transaction::Password(b"a")]);
    let (served, written, _, _, now) = both(|| Wire::new(&login, &[100], Then::Silent), true);
    assert_eq!(served.ended, Ended::Rejected(Reject::Timeout));
    assert_eq!(served.transactions, 2, "the 0xFF answers no transaction");
    assert_eq!(written, [0, 0, 0xFF]);
    assert_eq!(now, 100);
}

#[test]
fn async_serve_with_timer_waits_again_after_an_early_wake_up_and_ends_an_unfinished_transaction() {
    let early = || {
        let wire = Wire::new(b"\x01\x05\x00al", &[100], Then::Silent);
        wire.clock.early_by.set(10);
        wire
    };
    let (served, written, _, _, now) = both(early, true);
    assert_eq!(served.ended, Ended::Rejected(Reject::Timeout));
    assert_eq!((served.transactions, &written[..]), (0, &[0xFF][..]));
    assert_eq!(now, 30, "the frame timeout, from the first byte at 0");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any stream, in any chunks, with or without timeouts: the async serve
    /// answers, logs and ends exactly as the blocking one.
    #[test]
    fn async_serve_is_serve(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..80), 0..8),
        tail in proptest::collection::vec(any::<u8>(), 0..40),
        sizes in proptest::collection::vec(1usize..70, 1..10),
        silent in any::<bool>(),
        timed in any::<bool>(),
    ) {
        let mut txs = vec![Transaction::Name(b"user"), Transaction::Password(b"a")];
        txs.extend(messages.iter().map(|m| Transaction::Message(m)));
        let mut input = encode_all(&txs);
        input.extend_from_slice(&tail);
        // A silent transport needs a clock to end.
        let then = if silent && timed { Then::Silent } else { Then::Eof };
        let blocking = run_serve(Wire::new(&input, &sizes, then), false, timed);
        let run = run_serve(Wire::new(&input, &sizes, then), true, timed);
        prop_assert_eq!(run, blocking);
    }
}

/// A transport connected to an in-memory server, like `drivers.rs`'s:
/// what the client writes is served by the core's session (at most
/// `per_read` transactions per read), the statuses come back on read.
struct Loopback {
    session: Small,
    to_server: Vec<u8>,
    to_client: VecDeque<u8>,
    records: Vec<Vec<u8>>,
    reject_message: Option<usize>,
    per_read: usize,
    closed: bool,
}

impl Loopback {
    fn new(per_read: usize) -> Self {
        Loopback {
            session: Small::new(),
            to_server: Vec::new(),
            to_client: VecDeque::new(),
            records: Vec::new(),
            reject_message: None,
            per_read,
            closed: false,
        }
    }

    fn run_server(&mut self) {
        let mut answered = 0;
        while answered < self.per_read && !self.closed {
            let (outcome, consumed) = match self.session.decode(&self.to_server) {
                Ok(Decoded::Complete {
                    transaction,
                    consumed,
                }) => match self.session.receive(transaction) {
                    msglog_core::Action::Reply(outcome) => (outcome, consumed),
                    msglog_core::Action::Verify { .. } => (self.session.verified(true), consumed),
                    msglog_core::Action::Log { message, .. } => {
                        if self.reject_message == Some(self.records.len()) {
                            (self.session.fail(Reject::SinkFailed), consumed)
                        } else {
                            self.records.push(message.to_vec());
                            (Outcome::Logged, consumed)
                        }
                    }
                },
                Ok(Decoded::Partial { .. }) => return,
                Err(reject) => (Outcome::Rejected(reject), 0),
            };
            self.to_server.drain(..consumed);
            self.to_client.push_back(outcome.status().as_byte());
            answered += 1;
            self.closed = outcome.ends_session();
        }
    }
}

impl ErrorType for Loopback {
    type Error = ErrorKind;
}

impl embedded_io_async::Read for Loopback {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
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

impl embedded_io_async::Write for Loopback {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if self.closed {
            return Err(ErrorKind::BrokenPipe);
        }
        self.to_server.extend_from_slice(buf);
        Ok(buf.len())
    }
    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

#[test]
fn async_client_sends_a_session_with_every_window() {
    for window in [1, 2, 16, 64] {
        for per_read in [1, 1000] {
            let mut client = asynch::Client::new(Loopback::new(per_read), window);
            block_on(async {
                client.login("alice", b"pw").await.unwrap();
                for i in 0..100u32 {
                    client
                        .send(format!("message {i}").as_bytes())
                        .await
                        .unwrap();
                    assert!(client.in_flight() <= window);
                }
                client.close().await.unwrap();
            });
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
fn async_client_reports_the_first_rejected_message_and_a_refused_login() {
    let mut io = Loopback::new(1000);
    io.reject_message = Some(3);
    let mut client = asynch::Client::new(io, 8);
    let result: Result<(), _> = block_on(async {
        client.login("alice", b"pw").await?;
        for i in 0..10u32 {
            client.send(format!("m{i}").as_bytes()).await?;
        }
        client.close().await
    });
    assert_eq!(
        result,
        Err(ClientError::Rejected {
            stage: Stage::Message(3)
        })
    );
    assert_eq!(client.messages_acknowledged(), 3);

    let refused = Wire::new(&[0x00, 0xFF], &[1], Then::Eof);
    let mut client = asynch::Client::new(refused, 4);
    assert_eq!(
        block_on(client.login("alice", b"wrong")),
        Err(ClientError::Rejected {
            stage: Stage::Password
        })
    );
    assert_eq!(
        block_on(client.send(b"after")),
        Err(ClientError::SessionEnded)
    );
    // Nothing unsendable goes out.
    let mut client = asynch::Client::new(Wire::new(&[], &[1], Then::Eof), 4);
    assert!(matches!(
        block_on(client.login("alice", b"")),
        Err(ClientError::Encode(_))
    ));
    assert!(client.get_ref().written.is_empty());
}

#[test]
fn async_client_ends_cleanly_when_close_is_answered_by_eof_or_ff() {
    for answer in [&[0, 0, 0][..], &[0, 0, 0, 0xFF]] {
        let wire = Wire::new(answer, &[1], Then::Eof);
        let mut client = asynch::Client::new(wire, 4);
        block_on(async {
            client.login("alice", b"pw").await.unwrap();
            client.send(b"m").await.unwrap();
            client.close().await.unwrap();
        });
        assert_eq!(client.messages_acknowledged(), 1);
    }
    // A lost connection while a message awaits its status is not.
    let wire = Wire::new(&[0, 0], &[1], Then::Eof);
    let mut client = asynch::Client::new(wire, 4);
    let result = block_on(async {
        client.login("alice", b"pw").await.unwrap();
        client.send(b"m").await.unwrap();
        client.close().await
    });
    assert_eq!(
        result,
        Err(ClientError::Disconnected {
            stage: Stage::Message(0)
        })
    );
}

fn timed_client(statuses: &[u8], timeout: u64) -> asynch::Client<Wire, TestTimer> {
    let wire = Wire::new(statuses, &[statuses.len().max(1)], Then::Silent);
    let timer = TestTimer(Rc::clone(&wire.clock));
    asynch::Client::with_timer(wire, 4, timer, Some(timeout))
}

#[test]
fn async_client_times_out_a_status_that_does_not_come_after_an_early_wake_up() {
    let mut client = timed_client(&[0, 0], 100);
    let clock = Rc::clone(&client.get_ref().clock);
    block_on(client.login("alice", b"pw")).unwrap();
    clock.now.set(10);
    block_on(client.send(b"never answered")).unwrap();
    assert_eq!(client.session().poll_timeout(), Some(110));
    // The timer fires 30 ms early: the same read goes on, then the deadline.
    clock.early_by.set(30);
    assert_eq!(
        block_on(client.wait()),
        Err(ClientError::TimedOut {
            stage: Stage::Message(0)
        })
    );
    assert_eq!(clock.now.get(), 110);
    assert_eq!(block_on(client.wait()), Err(ClientError::SessionEnded));
}

#[test]
fn async_client_ends_cleanly_when_only_close_goes_unanswered_in_time() {
    let mut client = timed_client(&[0, 0, 0], 100);
    block_on(async {
        client.login("alice", b"pw").await.unwrap();
        client.send(b"m").await.unwrap();
        client.close().await.unwrap();
    });
    assert_eq!(client.messages_acknowledged(), 1);
    assert!(client.session().end().is_some_and(|end| end.is_clean()));
}

/// Drive a client through login, `count` messages and CLOSE, stopping at
/// the first error; what it returned, what it wrote and acknowledged.
fn client_run(
    statuses: &[u8],
    sizes: &[usize],
    window: usize,
    count: usize,
    is_async: bool,
) -> (Result<(), ClientError<ErrorKind>>, Vec<u8>, u64) {
    let wire = Wire::new(statuses, sizes, Then::Eof);
    let messages: Vec<Vec<u8>> = (0..count).map(|i| format!("m{i}").into_bytes()).collect();
    if is_async {
        let mut client = asynch::Client::new(wire, window);
        let result = block_on(async {
            client.login("alice", b"pw").await?;
            for message in &messages {
                client.send(message).await?;
            }
            client.close().await
        });
        let acknowledged = client.messages_acknowledged();
        (result, client.into_inner().written, acknowledged)
    } else {
        let mut client = Client::new(wire, window);
        let result = (|| {
            client.login("alice", b"pw")?;
            for message in &messages {
                client.send(message)?;
            }
            client.close()
        })();
        let acknowledged = client.messages_acknowledged();
        (result, client.into_inner().written, acknowledged)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the server answers, in whatever chunks: the async client
    /// writes, reports and counts exactly as the blocking one.
    #[test]
    fn async_client_is_client(
        statuses in proptest::collection::vec(prop_oneof![8 => Just(0u8), 1 => Just(0xFF), 1 => any::<u8>()], 0..16),
        sizes in proptest::collection::vec(1usize..5, 1..4),
        window in 1usize..6,
        count in 0usize..10,
    ) {
        let blocking = client_run(&statuses, &sizes, window, count, false);
        let run = client_run(&statuses, &sizes, window, count, true);
        prop_assert_eq!(run, blocking);
    }

    /// The async stream_copy copies exactly, and fails, as the blocking one.
    #[test]
    fn async_stream_copy_is_stream_copy(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        sizes in proptest::collection::vec(1usize..300, 1..6),
        buffer_len in 1usize..512,
        fail in any::<bool>(),
    ) {
        let then = if fail { Then::Fail(ErrorKind::ConnectionReset) } else { Then::Eof };
        let mut buffer = vec![0u8; buffer_len];
        let mut reader = Wire::new(&data, &sizes, then);
        let mut writer = Wire::new(&[], &[1], Then::Eof);
        let blocking = stream_copy(&mut reader, &mut writer, &mut buffer);
        let mut async_reader = Wire::new(&data, &sizes, then);
        let mut async_writer = Wire::new(&[], &[1], Then::Eof);
        let run = block_on(asynch::stream_copy(&mut async_reader, &mut async_writer, &mut buffer));
        prop_assert_eq!(&run, &blocking);
        prop_assert_eq!(&async_writer.written, &writer.written);
        match run {
            Ok(copied) => prop_assert_eq!(copied as usize, data.len()),
            Err(e) => prop_assert_eq!(e, CopyError::Read { error: ErrorKind::ConnectionReset, copied: data.len() as u64 }),
        }
        prop_assert_eq!(&async_writer.written, &data);
    }
}

#[test]
fn async_stream_copy_needs_a_buffer() {
    let mut reader = Wire::new(b"x", &[1], Then::Eof);
    let mut writer = Wire::new(&[], &[1], Then::Eof);
    assert_eq!(
        block_on(asynch::stream_copy(&mut reader, &mut writer, &mut [])),
        Err(CopyError::EmptyBuffer)
    );
}
