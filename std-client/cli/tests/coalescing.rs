//! The framed client's coalesced writes: the frames that are ready go out
//! together, never a frame split across two writes (unless the kernel took
//! only part of a write), and a server that reads like the original C
//! server (frames one after another from its buffer, failing on a frame
//! that is not whole there) still logs every line.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;

use common::{run_client, CLIENT, DEADLINE};

/// What the server below received.
#[derive(Debug, Default)]
struct Received {
    messages: Vec<Vec<u8>>,
    /// A frame was not whole in the buffer after a read: the original
    /// server would have mishandled it.
    split_frame: Option<String>,
}

/// Like the original C server: each read fills its buffer, whose frames it
/// then handles one after another, answering each with its own write; a
/// frame that is not whole in the buffer is a failure (the original took
/// the rest of it for the next frame). A bare CLOSE is answered 0xFF, as
/// the original does.
fn reads_like_the_original(listener: TcpListener) -> Received {
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut received = Received::default();
    // Larger than what a window of 64 short lines can have in flight.
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return received,
            Ok(n) => n,
        };
        let mut frames = &buffer[..n];
        while let Some(&tag) = frames.first() {
            if tag == 0x04 {
                let _ = stream.write_all(&[0xFF]);
                return received;
            }
            let Some(length) = frames.get(1..3) else {
                received.split_frame = Some(format!("a header cut after {} bytes", frames.len()));
                return received;
            };
            let length = usize::from(u16::from_le_bytes([length[0], length[1]]));
            let Some(payload) = frames.get(3..3 + length) else {
                received.split_frame = Some(format!(
                    "a frame of {} bytes cut after {}",
                    3 + length,
                    frames.len()
                ));
                return received;
            };
            if tag == 0x03 {
                received.messages.push(payload.to_vec());
            }
            frames = &frames[3 + length..];
            stream.write_all(&[0x00]).unwrap();
        }
    }
}

fn lines(count: usize) -> Vec<String> {
    (0..count)
        // Short enough that a window of 1024 stays within the socket
        // buffers: a write is then never delivered in two pieces.
        .map(|i| format!("line {i} {}", "w".repeat(i * 7 % 60)))
        .collect()
}

fn as_input(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

#[test]
fn a_server_that_reads_like_the_original_logs_every_line() {
    for window in ["1", "64", "1024"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let server = thread::spawn(move || reads_like_the_original(listener));
        let sent = lines(20_000);
        let finished = run_client(
            &["--user", "u", "--window", window, "127.0.0.1", &port],
            &[("MSGLOG_PASSWORD", "p")],
            as_input(&sent),
        );
        assert_eq!(
            finished.code(),
            Some(0),
            "window {window}: {}",
            finished.stderr
        );
        let received = server.join().unwrap();
        assert_eq!(received.split_frame, None, "window {window}");
        assert!(
            received.messages
                == sent
                    .iter()
                    .map(|l| l.as_bytes().to_vec())
                    .collect::<Vec<_>>(),
            "window {window}: the messages differ ({} received)",
            received.messages.len()
        );
    }
}

/// One `sendto` as strace shows it: bytes asked to write, bytes written.
fn sends(trace: &str) -> Vec<(usize, usize)> {
    trace
        .lines()
        .filter_map(|line| {
            let call = line.split_once("sendto(").map(|(_, rest)| rest)?;
            // sendto(3, "..."..., 704, MSG_NOSIGNAL, NULL, 0) = 704
            let (arguments, result) = call.rsplit_once(") = ")?;
            let asked = arguments
                .rsplit(", ")
                .nth(3)
                .and_then(|n| n.trim().parse().ok())?;
            let written = result.split_whitespace().next()?.parse().ok()?;
            Some((asked, written))
        })
        .collect()
}

fn strace_is_there() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Traced with strace: 20,000 lines take a few hundred writes, not one
/// each, and every write ends on a frame boundary unless the kernel took
/// less than asked.
#[test]
fn ready_frames_share_writes_and_no_write_ends_inside_a_frame() {
    if !strace_is_there() {
        eprintln!("strace is not installed: the writes are not traced (CI installs it)");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let server = thread::spawn(move || reads_like_the_original(listener));
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let input = dir.path().join("input");
    let sent = lines(20_000);
    fs::write(&input, as_input(&sent)).unwrap();
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=sendto", "-o"])
        .arg(&trace)
        .args([
            CLIENT,
            "--user",
            "u",
            "--window",
            "64",
            "-q",
            "127.0.0.1",
            &port,
        ])
        .arg(&input)
        .env("MSGLOG_PASSWORD", "p")
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let received = server.join().unwrap();
    assert_eq!(received.split_frame, None);
    assert_eq!(received.messages.len(), sent.len());

    // The frames in the order written: NAME, PASSWORD, the messages, CLOSE.
    let mut frame_ends = vec![4, 8];
    for line in &sent {
        frame_ends.push(frame_ends.last().unwrap() + 3 + line.len());
    }
    frame_ends.push(frame_ends.last().unwrap() + 1);
    let sends = sends(&fs::read_to_string(&trace).unwrap());
    let total: usize = sends.iter().map(|&(_, written)| written).sum();
    assert_eq!(
        total,
        *frame_ends.last().unwrap(),
        "every byte written once"
    );
    let mut offset = 0;
    for &(asked, written) in &sends {
        offset += written;
        if asked == written {
            assert!(
                frame_ends.binary_search(&offset).is_ok(),
                "a write of {written} bytes ended inside a frame at offset {offset}"
            );
        }
    }
    // A window of 64 short lines per write, give or take what the server's
    // pace lets through in between.
    assert!(
        sends.len() < sent.len() / 8,
        "{} writes for {} lines",
        sends.len(),
        sent.len()
    );
    eprintln!("{} lines in {} writes", sent.len(), sends.len());
}
