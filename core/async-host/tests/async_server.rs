//! The core's async server loop (`asynch::serve_with_timer`) under tokio,
//! with the real `msglog-client` as its client: pipelining, a refused
//! password, a server that closes mid-window, and the frame and idle
//! timeouts.

#[path = "../../../std-client/tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{cargo_build, record, wait_child, DEADLINE};
use msglog_async_host::{nanos, SharedLog, TokioTimer};
use msglog_core::asynch::serve_with_timer;
use msglog_core::{Ended, LegacyParity, Reject, ServeError, Served, Session, Sink};

/// The std server's capacities, timed on tokio's clock.
type TokioSession = Session<255, 255, 65535, u64>;

type Result = std::result::Result<Served, ServeError<std::io::Error>>;

/// How the async server is set up.
#[derive(Clone)]
struct Setup {
    frame: Duration,
    idle: Duration,
    /// The sink refuses the message with this index (0 for the first).
    refuse_message: Option<usize>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            frame: Duration::from_secs(30),
            idle: Duration::from_secs(30),
            refuse_message: None,
        }
    }
}

/// `SharedLog`, failing at one message as a full disk would.
struct Refusing {
    log: SharedLog,
    messages: usize,
    refuse: Option<usize>,
}

impl Sink for Refusing {
    type Error = ();
    fn append(&mut self, name: &str, message: &[u8]) -> std::result::Result<(), ()> {
        let index = self.messages;
        self.messages += 1;
        if self.refuse == Some(index) {
            return Err(());
        }
        self.log.append(name, message)
    }
}

/// An async msglog server on 127.0.0.1 that serves `connections`
/// connections one after another (LegacyParity: a password whose first
/// byte is odd), then stops: its port, its log, and how each connection ended.
struct AsyncServer {
    port: u16,
    log: SharedLog,
    thread: JoinHandle<Vec<Result>>,
}

impl AsyncServer {
    fn start(connections: usize, setup: Setup) -> AsyncServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = SharedLog::default();
        let shared = log.clone();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let timer = TokioTimer::new();
                let mut buffer = vec![0u8; TokioSession::MAX_FRAME];
                let mut ended = Vec::new();
                for _ in 0..connections {
                    let (socket, _) = listener.accept().await.unwrap();
                    let mut io = embedded_io_adapters::tokio_1::FromTokio::new(socket);
                    let mut session = TokioSession::new();
                    session.set_frame_timeout(Some(nanos(setup.frame)));
                    session.set_idle_timeout(Some(nanos(setup.idle)));
                    let mut sink = Refusing {
                        log: shared.clone(),
                        messages: 0,
                        refuse: setup.refuse_message,
                    };
                    let served = serve_with_timer(
                        &mut io,
                        &mut buffer,
                        &mut session,
                        &mut LegacyParity,
                        &mut sink,
                        &timer,
                    )
                    .await;
                    ended.push(served);
                }
                ended
            })
        });
        AsyncServer { port, log, thread }
    }

    /// Wait until it served its connections: how each ended.
    fn finish(self) -> Vec<Result> {
        self.thread.join().expect("the async server ran")
    }
}

fn client_binary() -> &'static Path {
    static BINARY: OnceLock<std::path::PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| cargo_build("msglog-client-cli", "--bin", "msglog-client"))
}

/// Run the real `msglog-client` in framed mode with `input` on stdin: its
/// exit code and stderr.
fn run_client(port: u16, password: &str, window: &str, input: &[u8]) -> (Option<i32>, String) {
    let mut child = Command::new(client_binary())
        .args(["--user", "alice", "--window", window, "--timeout", "20"])
        .args(["127.0.0.1", &port.to_string()])
        .env("MSGLOG_PASSWORD", password)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("msglog-client starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        // The client may stop reading (a refusal): then the pipe breaks.
        let _ = stdin.write_all(&input);
    });
    let status = wait_child(&mut child, DEADLINE);
    writer.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

fn lines(count: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let lines: Vec<Vec<u8>> = (1..=count)
        .map(|i| format!("line {i}: \u{e9}t\u{e9}, \\ and \x1b[31m").into_bytes())
        .collect();
    let input = lines
        .iter()
        .flat_map(|l| l.iter().chain(b"\n"))
        .copied()
        .collect();
    (lines, input)
}

fn records_of(lines: &[Vec<u8>]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| [record("alice", l), b"\r\n".to_vec()].concat())
        .collect()
}

#[test]
fn the_real_client_delivers_pipelined_lines_to_the_async_server() {
    let server = AsyncServer::start(1, Setup::default());
    let (lines, input) = lines(300);
    let (code, stderr) = run_client(server.port, "secret", "64", &input);
    assert_eq!(code, Some(0), "{stderr}");
    let log = server.log.clone();
    let ended = server.finish();
    let served = ended[0].as_ref().unwrap();
    assert_eq!(served.ended, Ended::Closed);
    assert_eq!((served.transactions, served.messages), (303, 300));
    assert_eq!(log.contents(), records_of(&lines));
}

#[test]
fn the_real_client_reports_a_password_the_async_server_refuses() {
    let server = AsyncServer::start(1, Setup::default());
    let (_, input) = lines(3);
    // 'b' (0x62) is even: refused.
    let (code, stderr) = run_client(server.port, "bad", "64", &input);
    assert_eq!(code, Some(8), "{stderr}");
    let log = server.log.clone();
    let ended = server.finish();
    assert_eq!(
        ended[0].as_ref().unwrap().ended,
        Ended::Rejected(Reject::AuthenticationFailed)
    );
    assert!(log.contents().is_empty());
}

#[test]
fn an_async_server_that_refuses_a_message_mid_window_closes_and_the_real_client_names_its_line() {
    let setup = Setup {
        refuse_message: Some(10),
        ..Setup::default()
    };
    let server = AsyncServer::start(1, setup);
    let (lines, input) = lines(30);
    let (code, stderr) = run_client(server.port, "secret", "64", &input);
    assert_eq!(code, Some(9), "{stderr}");
    assert!(
        stderr.contains("rejected the message from line 11;"),
        "{stderr}"
    );
    assert!(
        stderr.contains("20 of 30 messages not acknowledged"),
        "{stderr}"
    );
    let log = server.log.clone();
    let ended = server.finish();
    assert_eq!(
        ended[0].as_ref().unwrap().ended,
        Ended::Rejected(Reject::SinkFailed)
    );
    assert_eq!(log.contents(), records_of(&lines[..10]));
}

/// Connect, send `bytes`, and wait for the server's answer and close: the
/// bytes received and how long after sending they came.
fn answer_to(port: u16, bytes: &[u8]) -> (Vec<u8>, Duration) {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket.write_all(bytes).unwrap();
    let sent = Instant::now();
    let mut received = Vec::new();
    socket.read_to_end(&mut received).unwrap();
    (received, sent.elapsed())
}

#[test]
fn the_async_server_times_out_a_stalled_transaction_and_an_idle_connection() {
    let setup = Setup {
        frame: Duration::from_millis(300),
        idle: Duration::from_millis(600),
        ..Setup::default()
    };
    let server = AsyncServer::start(2, setup.clone());
    // NAME "alice", PASSWORD "secret", then a MESSAGE that never ends.
    let stalled = b"\x01\x05\x00alice\x02\x06\x00secret\x03\x10\x00only a part";
    let (answer, waited) = answer_to(server.port, stalled);
    assert_eq!(answer, [0, 0, 0xFF]);
    assert!(waited >= setup.frame, "{waited:?}");
    assert!(waited < setup.frame + Duration::from_secs(10), "{waited:?}");
    // Logged in, then silent.
    let (answer, waited) = answer_to(server.port, b"\x01\x05\x00alice\x02\x06\x00secret");
    assert_eq!(answer, [0, 0, 0xFF]);
    assert!(waited >= setup.idle, "{waited:?}");
    assert!(waited < setup.idle + Duration::from_secs(10), "{waited:?}");
    let ended = server.finish();
    for served in ended {
        assert_eq!(served.unwrap().ended, Ended::Rejected(Reject::Timeout));
    }
}
