//! Raw stream mode: every byte of every client to stdout, exactly, one
//! client after another.

// These tests drive the server process with signals (stop, SIGHUP), umasks
// and resource limits: Unix only. What runs on Windows (under wine in CI)
// is the library's and the binary's unit tests; scripts/wine/ says why.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ChildStdout;
use std::sync::mpsc;
use std::time::Duration;

use common::*;

fn start_raw() -> (Server, Output) {
    let mut server = Server::start_with(Options {
        raw: true,
        ..Options::default()
    });
    assert!(server.stderr_text().contains("mode=raw"));
    let stdout = server.stdout.take().expect("stdout pipe");
    (server, Output::new(stdout))
}

/// The server's stdout, read by a thread and handed over in exact amounts.
struct Output {
    chunks: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Output {
    fn new(mut stdout: ChildStdout) -> Output {
        let (sender, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut chunk = vec![0u8; 256 * 1024];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 || sender.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Output {
            chunks,
            pending: Vec::new(),
        }
    }

    /// Exactly the next `len` bytes.
    fn take(&mut self, len: usize) -> Vec<u8> {
        while self.pending.len() < len {
            match self.chunks.recv_timeout(PATIENCE) {
                Ok(chunk) => self.pending.extend(chunk),
                Err(_) => panic!("only {} of {len} bytes arrived", self.pending.len()),
            }
        }
        let rest = self.pending.split_off(len);
        std::mem::replace(&mut self.pending, rest)
    }

    /// Bytes up to and including the first occurrence of `end`.
    fn take_through(&mut self, end: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = self.pending.windows(end.len()).position(|w| w == end) {
                return self.take(at + end.len());
            }
            let chunk = self.chunks.recv_timeout(PATIENCE).expect("more output");
            self.pending.extend(chunk);
        }
    }

    /// Nothing more arrives within a short while.
    fn assert_drained(&mut self) {
        assert!(
            self.pending.is_empty(),
            "{} unexpected bytes",
            self.pending.len()
        );
        assert!(
            self.chunks
                .recv_timeout(Duration::from_millis(100))
                .is_err(),
            "unexpected output"
        );
    }
}

fn send(server: &Server, bytes: &[u8]) {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    // The server never answers in raw mode; it closes when done.
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(read_to_end(&mut s), b"");
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn short_text_and_binary_arrive_exactly() {
    let (server, mut output) = start_raw();
    send(&server, b"hello, raw world\n");
    assert_eq!(output.take(17), b"hello, raw world\n");
    let binary = noise(100_000, 7);
    send(&server, &binary);
    assert_eq!(output.take(binary.len()), binary);
    output.assert_drained();
    server.stop();
}

#[test]
fn sixteen_mebibytes_through_a_pipe_that_pauses() {
    let (server, mut output) = start_raw();
    let data = noise(16 * 1024 * 1024, 42);
    let sender = {
        let data = data.clone();
        let addr = server.addr;
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let (first, second) = data.split_at(data.len() / 2);
            s.write_all(first).unwrap();
            // The client pauses mid-stream...
            std::thread::sleep(Duration::from_millis(200));
            s.write_all(second).unwrap();
        })
    };
    // ...and so does the reader of the server's stdout.
    let mut got = output.take(4 * 1024 * 1024);
    std::thread::sleep(Duration::from_millis(200));
    got.extend(output.take(data.len() - got.len()));
    sender.join().unwrap();
    assert!(got == data, "16 MiB differ");
    output.assert_drained();
    server.stop();
}

#[test]
fn clients_in_sequence_keep_their_order() {
    let (server, mut output) = start_raw();
    for text in ["first\n", "second\n", "third\n"] {
        send(&server, text.as_bytes());
    }
    assert_eq!(output.take(19), b"first\nsecond\nthird\n");
    output.assert_drained();
    server.stop();
}

#[test]
fn ten_clients_at_once_each_arrive_whole() {
    const SIZE: usize = 100_000;
    let (server, mut output) = start_raw();
    let senders: Vec<_> = (0..10u8)
        .map(|i| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                // Several writes, so that interleaving would show.
                for _ in 0..10 {
                    s.write_all(&[b'A' + i; SIZE / 10]).unwrap();
                }
            })
        })
        .collect();
    let got = output.take(10 * SIZE);
    output.assert_drained();
    for sender in senders {
        sender.join().unwrap();
    }
    let mut seen: Vec<u8> = got
        .chunks(SIZE)
        .map(|block| {
            assert!(
                block.iter().all(|&b| b == block[0]),
                "a client's bytes were interleaved"
            );
            block[0]
        })
        .collect();
    seen.sort();
    assert_eq!(seen, (0..10).map(|i| b'A' + i).collect::<Vec<_>>());
    server.stop();
}

#[test]
fn a_client_reset_mid_stream_does_not_stop_the_server() {
    let (server, mut output) = start_raw();
    let data = noise(1024 * 1024, 3);
    {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.connect(&server.addr.into()).unwrap();
        let mut s: TcpStream = socket.try_clone().unwrap().into();
        s.write_all(&data).unwrap();
        // Linger 0: close() sends a reset instead of a FIN.
        socket.set_linger(Some(Duration::ZERO)).unwrap();
    }
    send(&server, b"after the reset\n");
    // Whatever arrived of the reset client comes first, then the next one whole.
    let got = output.take_through(b"after the reset\n");
    let prefix = &got[..got.len() - 16];
    assert!(
        data.starts_with(prefix),
        "the reset client's bytes are a prefix of what it sent"
    );
    let stderr = server.stop();
    assert!(
        prefix.len() == data.len() || stderr.contains("reset"),
        "{stderr}"
    );
}

#[test]
fn sigterm_mid_stream_flushes_and_exits_zero() {
    let (mut server, mut output) = start_raw();
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"partial stream, no EOF yet").unwrap();
    assert_eq!(output.take(26), b"partial stream, no EOF yet");
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(PATIENCE)
        .expect("raw server stops on SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// Stopping mid-stream must not look like a clean end: the client's
/// connection is reset, not closed, and the summary counts what was written.
#[test]
fn sigterm_mid_stream_resets_the_client_and_counts_what_was_written() {
    let (mut server, mut output) = start_raw();
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"partial stream, no EOF yet").unwrap();
    assert_eq!(output.take(26), b"partial stream, no EOF yet");
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(PATIENCE).expect("stops on SIGTERM");
    assert!(status.success(), "{status:?}");
    let mut byte = [0u8; 1];
    let closed = s.read(&mut byte);
    assert!(
        matches!(&closed, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{closed:?}"
    );
    let stderr = server
        .wait_stderr(|t| t.contains("stopped:"))
        .unwrap_or_else(|| server.stderr_text());
    assert!(stderr.contains("stopped: 1 client, 26 bytes"), "{stderr}");
    assert!(
        stderr.contains("reset, the server is stopping (26 bytes written)"),
        "{stderr}"
    );
}

/// The bytes of a client that ended in an error count in the summary too.
#[test]
fn the_summary_counts_the_bytes_of_a_client_that_failed() {
    let (server, mut output) = start_raw();
    let data = noise(300_000, 5);
    {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.connect(&server.addr.into()).unwrap();
        let mut s: TcpStream = socket.try_clone().unwrap().into();
        s.write_all(&data).unwrap();
        socket.set_linger(Some(Duration::ZERO)).unwrap();
    }
    send(&server, b"after the reset\n");
    let got = output.take_through(b"after the reset\n");
    let stderr = server.stop();
    assert!(
        stderr.contains(&format!("stopped: 2 clients, {} bytes", got.len())),
        "{} bytes written; {stderr}",
        got.len()
    );
}

/// `--raw-max-session` and `--idle-timeout` drop a client with a reset and
/// one stderr line saying why; the next client is served.
#[test]
fn session_and_idle_limits_reset_the_client_and_say_why() {
    for (args, why) in [
        (
            ["--raw-min-rate", "0", "--raw-max-session", "1s"],
            "served for 1.0 s (--raw-max-session); reset (5 bytes written)",
        ),
        (
            ["--raw-min-rate", "0", "--idle-timeout", "1s"],
            "no data for 1.0 s (--idle-timeout); reset (5 bytes written)",
        ),
    ] {
        let mut server = Server::start_with(Options {
            raw: true,
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Options::default()
        });
        let mut output = Output::new(server.stdout.take().expect("stdout pipe"));
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(b"early").unwrap();
        assert_eq!(output.take(5), b"early");
        // Then silence, the connection open.
        let mut byte = [0u8; 1];
        let ended = s.read(&mut byte);
        assert!(
            matches!(&ended, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{ended:?}"
        );
        send(&server, b"next\n");
        assert_eq!(output.take(5), b"next\n");
        let stderr = server.stop();
        assert!(stderr.contains(why), "{stderr}");
    }
}

/// A client that streams in bulk and then pauses, its connection open, has
/// its last bytes written at once: the server wakes only once per chunk
/// while a stream comes in bulk (SO_RCVLOWAT, raw/batching.rs), and a pause
/// must end that, not the next limit check (600 s away here) or the
/// client's close. tls.rs tests the same over TLS.
#[test]
fn bytes_after_a_bulk_burst_are_written_while_the_client_pauses() {
    let mut server = Server::start_with(Options {
        raw: true,
        args: vec!["--raw-min-rate".into(), "0".into(), "-v".into()],
        ..Options::default()
    });
    let mut output = Output::new(server.stdout.take().expect("stdout pipe"));
    let mut s = TcpStream::connect(server.addr).unwrap();
    for round in 0..3u64 {
        let bulk = noise(4 << 20, 11 + round);
        s.write_all(&bulk).unwrap();
        assert_eq!(output.take(bulk.len()), bulk);
        let typed = format!("typed after burst {round}\n");
        s.write_all(typed.as_bytes()).unwrap();
        // Within PATIENCE, far below any limit check of this server.
        assert_eq!(output.take(typed.len()), typed.as_bytes());
    }
    s.shutdown(Shutdown::Write).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(read_to_end(&mut s), b"");
    output.assert_drained();
    // The bursts did raise the mark, and the pauses lowered it.
    server
        .wait_stderr(|t| {
            t.contains("streaming in bulk, woken per 262144 bytes")
                && t.contains("paused, woken per byte again")
        })
        .expect("the mark raised and lowered");
    server.stop();
}
