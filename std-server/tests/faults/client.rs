//! The client side of a crash: `msglog-client --retry` through two
//! `kill -9`s of the server under a stream of lines, and the raw client
//! meeting a reset.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::harness::{client_bin, Launch, Server};
use super::records::Log;
use crate::common::wait_until;

/// A client process, killed on drop if still running.
struct Client {
    child: Child,
}

impl Client {
    fn start(args: &[&str], password: Option<&str>) -> Client {
        let mut command = Command::new(client_bin("msglog-client"));
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(password) = password {
            command.env("MSGLOG_PASSWORD", password);
        }
        Client {
            child: command.spawn().expect("start msglog-client"),
        }
    }

    /// Close stdin (if still open) and wait, bounded; (status, stderr).
    fn finish(mut self, within: Duration) -> (ExitStatus, String) {
        drop(self.child.stdin.take());
        let mut status = None;
        wait_until(within, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        let status =
            status.unwrap_or_else(|| panic!("msglog-client did not finish within {within:?}"));
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        (status, stderr)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server on a port it must take again after a crash.
fn restart(dir: &std::path::Path, port: u16) -> Server {
    let mut last = String::new();
    for _ in 0..50 {
        match Server::try_start(Launch::new(dir, &[]).port(port)) {
            Ok(server) => return server,
            Err(why) => last = why,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot restart on port {port}: {last}");
}

fn records_in(dir: &std::path::Path) -> usize {
    std::fs::read(dir.join("messages.log"))
        .map_or(0, |log| log.windows(2).filter(|w| w == b"\r\n").count())
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn retry_through_two_kill_9_delivers_every_line_at_least_once() {
    const LINES: usize = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Launch::new(dir.path(), &[]));
    let port = server.port();
    let port_text = port.to_string();
    let mut client = Client::start(
        &[
            "--user",
            "retry",
            "--window",
            "64",
            "--retry",
            "30",
            "--timeout",
            "10",
            "127.0.0.1",
            &port_text,
        ],
        Some("pw"),
    );
    let line = |i: usize| format!("line-{i:06} of the retry test");
    let mut stdin = client.child.stdin.take().unwrap();
    let (more, wanted) = mpsc::channel::<std::ops::Range<usize>>();
    let feeder = std::thread::spawn(move || {
        for range in wanted {
            let text: String = range.map(|i| line(i) + "\n").collect();
            if stdin.write_all(text.as_bytes()).is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut kills = Vec::new();
    let thirds = [0, LINES / 3, 2 * LINES / 3, LINES];
    for (stage, pair) in thirds.windows(2).enumerate() {
        more.send(pair[0]..pair[1]).unwrap();
        if stage == 2 {
            break;
        }
        // Kill while the stream is flowing: some lines are in flight.
        let target = pair[0] + (pair[1] - pair[0]) / 2;
        assert!(
            wait_until(Duration::from_secs(30), || records_in(dir.path()) >= target),
            "stage {stage}: only {} records",
            records_in(dir.path())
        );
        let logged = records_in(dir.path());
        server.kill9();
        kills.push(logged);
        std::thread::sleep(Duration::from_millis(300));
        server = restart(dir.path(), port);
    }
    drop(more);
    feeder.join().unwrap();
    let (status, stderr) = client.finish(Duration::from_secs(60));
    let took = started.elapsed();
    server.stop();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.contains("acknowledged after"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        summary.contains(&format!("all {LINES} messages acknowledged")),
        "{stderr}"
    );
    let reported: u64 = if summary.contains("none was sent twice") {
        0
    } else {
        summary
            .split_once("up to ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no duplicate count: {summary}"))
    };
    let log = Log::parse(&std::fs::read(dir.path().join("messages.log")).unwrap());
    log.assert_well_formed("messages.log after two crashes", false);
    let mut duplicates = 0u64;
    for i in 0..LINES {
        let count = log.count("retry", format!("line-{i:06} of the retry test").as_bytes());
        assert!(count >= 1, "line {i} was lost");
        duplicates += u64::from(count - 1);
    }
    assert!(
        duplicates <= reported,
        "{duplicates} duplicates, {reported} reported"
    );
    println!(
        "client --retry: PASS: {LINES} lines through two kill -9 (after {} and {} records) and restarts on port {port}: exit 0 in {:.1} s, \
         every line logged at least once, {duplicates} logged twice, the client reported up to {reported}: {summary:?}",
        kills[0],
        kills[1],
        took.as_secs_f64()
    );
}

/// Feed `client` stdin until it exits or `within` passes; bytes written.
fn feed_until_exit(client: &mut Client, within: Duration, mut on_progress: impl FnMut(u64)) -> u64 {
    let mut stdin = client.child.stdin.take().unwrap();
    let chunk = vec![b'r'; 64 * 1024];
    let deadline = Instant::now() + within;
    let mut written = 0u64;
    while Instant::now() < deadline && client.child.try_wait().ok().flatten().is_none() {
        if stdin.write_all(&chunk).is_err() {
            break;
        }
        written += chunk.len() as u64;
        on_progress(written);
    }
    written
}

fn assert_one_line_failure(status: ExitStatus, stderr: &str, what: &str) {
    assert!(
        !status.success() && status.code().is_some(),
        "{what}: {status}; {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    assert!(
        stderr.starts_with("msglog-client: ") && !stderr.contains("panicked"),
        "{what}: {stderr}"
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn raw_client_reports_a_reset_with_a_nonzero_exit() {
    // 1. The raw server is killed mid-stream.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Launch::raw(dir.path()));
    let port = server.port().to_string();
    let mut client = Client::start(&["127.0.0.1", &port, "--timeout", "10"], None);
    let mut server = Some(server);
    let written = feed_until_exit(&mut client, Duration::from_secs(20), |written| {
        if written >= 4 << 20 {
            if let Some(server) = server.take() {
                server.kill9();
            }
        }
    });
    assert!(
        server.is_none(),
        "the client stopped reading stdin before 4 MiB"
    );
    let (status, killed) = client.finish(Duration::from_secs(20));
    assert_one_line_failure(status, &killed, "server killed");
    let killed_code = status.code();

    // 2. A peer that resets the connection after 1000 bytes, mid-stream.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut first = [0u8; 1000];
        stream.read_exact(&mut first).unwrap();
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
    let mut client = Client::start(&["127.0.0.1", &port, "--timeout", "10"], None);
    feed_until_exit(&mut client, Duration::from_secs(20), |_| {});
    peer.join().unwrap();
    let (status, reset_mid) = client.finish(Duration::from_secs(20));
    assert_one_line_failure(status, &reset_mid, "reset mid-stream");
    let reset_mid_code = status.code();

    // 3. A peer that reads everything, then resets instead of closing:
    //    a reset never confirms that the bytes were taken.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).unwrap();
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        all.len()
    });
    let mut client = Client::start(&["127.0.0.1", &port, "--timeout", "10"], None);
    client
        .child
        .stdin
        .take()
        .unwrap()
        .write_all(b"short input\n")
        .unwrap();
    let (status, reset_end) = client.finish(Duration::from_secs(20));
    assert_eq!(peer.join().unwrap(), 12);
    assert_one_line_failure(status, &reset_end, "reset instead of a close");
    println!(
        "raw client: PASS: server killed after {} MiB: exit {killed_code:?}, {:?}; reset mid-stream: exit {reset_mid_code:?}, {:?}; \
         reset instead of the closing FIN: exit {:?}, {:?}",
        written >> 20,
        killed.trim(),
        reset_mid.trim(),
        status.code(),
        reset_end.trim()
    );
}
