//! Framed mode against the real `msglog-server`: lines become records,
//! pipelining, rejections reported by line, and `--retry` across a restart.

// These tests drive processes with signals, pipes, ptys and resource
// limits: Unix only (Windows is covered by the unit tests under wine and
// scripts/wine/e2e.sh).
#![cfg(unix)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::thread;
use std::time::Duration;

use common::{
    record, records, run_client, wait_until, ClientProcess, Finished, Server, CLIENT, DEADLINE,
};

const USER: &str = "tester";
const PASSWORD: (&str, &str) = ("MSGLOG_PASSWORD", "secret");

fn framed_args<'a>(server: &'a Server, port: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let _ = server;
    let mut args = vec!["--user", USER, "127.0.0.1", port];
    args.extend_from_slice(extra);
    args
}

fn send_lines(server: &Server, extra: &[&str], input: &[u8]) -> Finished {
    let port = server.port.to_string();
    run_client(
        &framed_args(server, &port, extra),
        &[PASSWORD],
        input.to_vec(),
    )
}

/// Exit 0, and on stderr only the summary line: every line read acknowledged.
fn assert_success(finished: &Finished) {
    assert_eq!(finished.code(), Some(0), "stderr: {}", finished.stderr);
    assert_eq!(
        finished.stderr.lines().count(),
        1,
        "stderr: {}",
        finished.stderr
    );
    let summary = finished.stderr.trim_end();
    let (read, rest) = summary
        .strip_prefix("msglog-client: ")
        .and_then(|s| s.split_once(" read, "))
        .unwrap_or_else(|| panic!("not a summary: {summary}"));
    let read: u64 = read.split(' ').next().unwrap().parse().unwrap();
    assert!(
        rest.starts_with(&format!("{read} acknowledged, 0 rejected, 0 not sent, ")),
        "{summary}"
    );
}

/// The records expected for `lines` (empty ones are not sent).
fn expected_records(lines: &[&[u8]]) -> Vec<Vec<u8>> {
    lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| record(USER, l))
        .collect()
}

#[test]
fn lines_become_records() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let input =
        b"first line\r\nsecond\tline\n\n  spaced  \r\n\xff binary \\ bytes\nno newline at the end";
    assert_success(&send_lines(&server, &[], input));
    let expected = expected_records(&[
        b"first line",
        b"second\tline",
        b"  spaced  ",
        b"\xff binary \\ bytes",
        b"no newline at the end",
    ]);
    assert_eq!(records(dir.path()), expected);
}

#[test]
fn message_arguments_are_sent_instead_of_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let port = server.port.to_string();
    let args = framed_args(&server, &port, &["-m", "one", "-m", "two words"]);
    let finished = run_client(&args, &[PASSWORD], b"stdin is not read\n".to_vec());
    assert_success(&finished);
    assert_eq!(
        records(dir.path()),
        expected_records(&[b"one", b"two words"])
    );
}

#[test]
fn the_password_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let password_file = dir.path().join("password");
    fs::write(&password_file, "from a file\n").unwrap();
    let port = server.port.to_string();
    let file = password_file.to_str().unwrap();
    let args = framed_args(&server, &port, &["--password-file", file, "-m", "hi"]);
    assert_success(&run_client(&args, &[], Vec::new()));
    assert_eq!(records(dir.path()), expected_records(&[b"hi"]));
}

#[test]
fn pipelining_with_windows_1_and_64() {
    for window in ["1", "64"] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::framed(dir.path());
        let lines: Vec<Vec<u8>> = (0..3000)
            .map(|i: usize| format!("message {i} {}", "x".repeat(i % 300)).into_bytes())
            .collect();
        let input: Vec<u8> = lines
            .iter()
            .flat_map(|l| l.iter().chain(b"\n"))
            .copied()
            .collect();
        let finished = send_lines(&server, &["--window", window], &input);
        assert_success(&finished);
        let expected: Vec<Vec<u8>> = lines.iter().map(|l| record(USER, l)).collect();
        assert!(
            records(dir.path()) == expected,
            "window {window}: records differ"
        );
    }
}

#[test]
fn the_longest_message_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let longest = vec![b'L'; 65535];
    let mut input = longest.clone();
    input.extend_from_slice(b"\r\nafter\n");
    assert_success(&send_lines(&server, &[], &input));
    assert_eq!(records(dir.path()), expected_records(&[&longest, b"after"]));
}

#[test]
fn a_line_too_long_is_named_and_nothing_from_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let mut input = b"one\ntwo\n\nthree\n".to_vec();
    input.extend(std::iter::repeat_n(b'y', 70_000));
    input.extend_from_slice(b"\nsix\nseven\n");
    let finished = send_lines(&server, &[], &input);
    assert_eq!(finished.code(), Some(7), "stderr: {}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("line 5 is longer than 65535 bytes"),
        "{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains("3 of 6 messages not acknowledged"),
        "{}",
        finished.stderr
    );
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    // What came before the long line was delivered, and nothing after it.
    assert_eq!(
        records(dir.path()),
        expected_records(&[b"one", b"two", b"three"])
    );
}

/// A server whose `messages.log` cannot grow past `bytes` (RLIMIT_FSIZE;
/// SIGXFSZ ignored so writes fail with EFBIG instead of killing it).
fn server_with_file_limit(dir: &std::path::Path, bytes: u64) -> Server {
    Server::framed_with(dir, 0, &[], move |command| {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
    })
}

/// 30 lines whose records are exactly 1000 bytes each (`[u]: ` and `\r\n` around 993 bytes).
fn thousand_byte_lines() -> Vec<Vec<u8>> {
    (1..=30)
        .map(|i| format!("{i:04}{}", "m".repeat(989)).into_bytes())
        .collect()
}

#[test]
fn a_rejection_mid_stream_names_the_line() {
    for window in ["1", "64"] {
        let dir = tempfile::tempdir().unwrap();
        // Ten 1000-byte records fit, the eleventh does not.
        let server = server_with_file_limit(dir.path(), 10_500);
        let lines = thousand_byte_lines();
        let input: Vec<u8> = lines
            .iter()
            .flat_map(|l| l.iter().chain(b"\n"))
            .copied()
            .collect();
        let port = server.port.to_string();
        let args = ["--user", "u", "127.0.0.1", &port, "--window", window];
        let finished = run_client(&args, &[PASSWORD], input);
        assert_eq!(
            finished.code(),
            Some(9),
            "window {window}: {}",
            finished.stderr
        );
        assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);

        let logged = records(dir.path());
        let expected: Vec<Vec<u8>> = lines.iter().map(|l| record("u", l)).collect();
        assert!(
            expected.starts_with(&logged),
            "the log holds whole records in order"
        );
        // The line reported is the first not acknowledged: every line
        // before it is in the log. The server may fail a whole batch.
        let reported = (1..=11)
            .find(|n| {
                finished
                    .stderr
                    .contains(&format!("rejected the message from line {n};"))
            })
            .unwrap_or_else(|| panic!("no line 1..=11 reported: {}", finished.stderr));
        assert!(
            logged.len() >= reported - 1,
            "line {reported} reported, {} logged",
            logged.len()
        );
        let missing = 30 - (reported - 1);
        let summary =
            format!("{missing} of 30 messages not acknowledged, the first from line {reported}");
        assert!(finished.stderr.contains(&summary), "{}", finished.stderr);
        if window == "1" {
            assert_eq!(reported, 11, "{}", finished.stderr);
            assert_eq!(logged.len(), 10);
        }
    }
}

#[test]
fn retry_after_a_server_restart_delivers_every_line() {
    for window in ["1", "64"] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::framed(dir.path());
        let port = server.port.to_string();
        let args = [
            "--user",
            USER,
            "127.0.0.1",
            &port,
            "--window",
            window,
            "--retry",
            "30",
        ];
        let mut client = ClientProcess::start(&args, &[PASSWORD]);
        let line = |i: usize| format!("line {i}");
        let write_lines = |client: &mut ClientProcess, lines: std::ops::RangeInclusive<usize>| {
            let text: String = lines.map(|i| line(i) + "\n").collect();
            client.write(text.as_bytes());
        };
        write_lines(&mut client, 1..=100);
        wait_until("the first 100 lines are logged", || {
            records(dir.path()).len() >= 100
        });
        // Freeze the server so that the next lines stay unacknowledged in
        // flight, then crash it and start a new one on the same port.
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGSTOP) }, 0);
        write_lines(&mut client, 101..=150);
        server.restart(&[]);
        write_lines(&mut client, 151..=200);
        let finished = client.finish();
        assert_eq!(
            finished.code(),
            Some(0),
            "window {window}: {}",
            finished.stderr
        );
        assert!(
            finished
                .stderr
                .contains("all 200 messages acknowledged after"),
            "{}",
            finished.stderr
        );
        // The client reports an upper bound of the duplicates it may have caused.
        let reported_duplicates = if finished.stderr.contains("none was sent twice") {
            0
        } else {
            let (_, rest) = finished
                .stderr
                .split_once("up to ")
                .expect("a duplicate count");
            let (count, _) = rest.split_once(' ').unwrap();
            count.parse::<usize>().unwrap()
        };

        let logged = records(dir.path());
        for i in 1..=200 {
            let expected = record(USER, line(i).as_bytes());
            assert!(
                logged.contains(&expected),
                "window {window}: line {i} is missing"
            );
        }
        assert!(
            logged.len() - 200 <= reported_duplicates,
            "window {window}: {} duplicates logged, {reported_duplicates} reported",
            logged.len() - 200
        );
    }
}

/// A server restarted while the input pauses, nothing in flight: it went
/// away without a goodbye, so the connection is lost. Without `--retry`
/// the client says so at once (stdin still open), naming what was
/// delivered; with `--retry` it connects again and delivers the rest.
#[test]
fn a_restart_while_the_input_pauses_is_reported_or_retried() {
    for retry in [None, Some("10")] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::framed(dir.path());
        let port = server.port.to_string();
        let mut args = vec!["--user", USER, "127.0.0.1", &port];
        if let Some(retries) = retry {
            args.extend(["--retry", retries]);
        }
        let mut client = ClientProcess::start(&args, &[PASSWORD]);
        client.write(b"first\n");
        wait_until("the first line is logged", || {
            records(dir.path()).len() == 1
        });
        server.restart(&[]);
        if retry.is_none() {
            let (finished, took) = client.exits_by_itself(DEADLINE);
            assert_eq!(finished.code(), Some(10), "{}", finished.stderr);
            assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
            assert!(
                finished
                    .stderr
                    .contains("lost: the server closed the connection")
                    && finished
                        .stderr
                        .contains("all 1 message sent was acknowledged")
                    && !finished.stderr.contains("nothing was sent"),
                "{}",
                finished.stderr
            );
            eprintln!("exit 10 after {took:?}: {}", finished.stderr.trim());
            continue;
        }
        client.write(b"second\n");
        let finished = client.finish();
        assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
        assert!(
            finished
                .stderr
                .contains("all 2 messages acknowledged after"),
            "{}",
            finished.stderr
        );
        assert_eq!(
            records(dir.path()),
            expected_records(&[b"first", b"second"])
        );
    }
}

/// Stop the server (SIGSTOP) and send `lines` more, then wait until the
/// client has sent them all: they are in flight, unread by the server.
fn freeze_with_in_flight(
    server: &Server,
    client: &mut ClientProcess,
    lines: std::ops::RangeInclusive<usize>,
) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGSTOP) }, 0);
    // The signal takes effect asynchronously: until then the server still reads.
    wait_until("the server is stopped", || {
        fs::read_to_string(format!("/proc/{}/stat", server.pid())).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    });
    let mut bytes = 0;
    for i in lines {
        let line = format!("line {i}");
        bytes += 3 + line.len() as u64;
        client.write(format!("{line}\n").as_bytes());
    }
    wait_until("the client sent the lines", || {
        common::unread_bytes(server.port) == bytes
    });
}

fn numbered_lines(client: &mut ClientProcess, lines: std::ops::RangeInclusive<usize>) {
    let text: String = lines.map(|i| format!("line {i}\n")).collect();
    client.write(text.as_bytes());
}

/// `tail -f log | msglog-client ...`: the server is killed while the client
/// waits for input with lines in flight. The client must not wait for the
/// next line: it exits 10 at once, naming the first line not acknowledged.
#[test]
fn a_server_killed_while_the_input_waits_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::framed(dir.path());
    let port = server.port.to_string();
    let mut client = ClientProcess::start(&["--user", USER, "127.0.0.1", &port], &[PASSWORD]);
    numbered_lines(&mut client, 1..=10);
    wait_until("ten lines are logged", || records(dir.path()).len() == 10);
    freeze_with_in_flight(&server, &mut client, 11..=13);
    server.kill();
    let (finished, took) = client.exits_by_itself(DEADLINE);
    assert_eq!(finished.code(), Some(10), "{}", finished.stderr);
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    assert!(
        finished.stderr.contains(
            "at least 3 messages not acknowledged (10 acknowledged; the rest of stdin was not counted), the first from line 11"
        ),
        "{}",
        finished.stderr
    );
    // Counting the rest of stdin waits 1 s for more; nothing else waits.
    assert!(took < Duration::from_secs(10), "{took:?}");
    eprintln!("exit 10 after {took:?}: {}", finished.stderr.trim());
}

/// The same with SIGTERM: the server finishes what it has and closes. Every
/// line sent was acknowledged, and the client says so rather than "nothing
/// was sent", at once, its stdin still open.
#[test]
fn a_server_stopped_while_the_input_waits_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let port = server.port.to_string();
    let mut client = ClientProcess::start(&["--user", USER, "127.0.0.1", &port], &[PASSWORD]);
    numbered_lines(&mut client, 1..=11);
    wait_until("eleven lines are logged", || {
        records(dir.path()).len() == 11
    });
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) }, 0);
    let (finished, took) = client.exits_by_itself(DEADLINE);
    assert_eq!(finished.code(), Some(10), "{}", finished.stderr);
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("lost: the server closed the connection")
            && finished
                .stderr
                .contains("all 11 messages sent were acknowledged")
            && !finished.stderr.contains("nothing was sent"),
        "{}",
        finished.stderr
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// With `--retry`, a server restarted while lines are in flight gets them
/// again at once, before any further line arrives.
#[test]
fn retry_resends_at_once_when_the_server_restarts_while_the_input_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::framed(dir.path());
    let port = server.port.to_string();
    let args = ["--user", USER, "127.0.0.1", &port, "--retry", "10"];
    let mut client = ClientProcess::start(&args, &[PASSWORD]);
    numbered_lines(&mut client, 1..=10);
    wait_until("ten lines are logged", || records(dir.path()).len() == 10);
    freeze_with_in_flight(&server, &mut client, 11..=13);
    server.restart(&[]);
    wait_until(
        "the lines in flight are delivered without another line",
        || records(dir.path()).len() == 13,
    );
    let finished = client.finish();
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("all 13 messages acknowledged after"),
        "{}",
        finished.stderr
    );
    let expected: Vec<Vec<u8>> = (1..=13)
        .map(|i| record(USER, format!("line {i}").as_bytes()))
        .collect();
    assert_eq!(records(dir.path()), expected);
}

#[test]
fn a_rejected_password_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed_with(dir.path(), 0, &["--auth", "legacy-parity"], |_| {});
    let port = server.port.to_string();
    // The original server's rule: the first password byte must be odd ('b' is even).
    let args = ["--user", USER, "127.0.0.1", &port, "-m", "never logged"];
    let finished = run_client(&args, &[("MSGLOG_PASSWORD", "bad")], Vec::new());
    assert_eq!(finished.code(), Some(8), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("rejected the password"),
        "{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains("1 of 1 message not acknowledged"),
        "{}",
        finished.stderr
    );
    assert!(records(dir.path()).is_empty());

    let finished = run_client(&args, &[("MSGLOG_PASSWORD", "a")], Vec::new());
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
}

#[test]
fn a_connection_the_server_timed_out_while_input_paused_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed_with(dir.path(), 0, &["--idle-timeout", "300ms"], |_| {});
    let port = server.port.to_string();
    let mut client = ClientProcess::start(&["--user", USER, "127.0.0.1", &port], &[PASSWORD]);
    client.write(b"before the pause\n");
    wait_until("the server timed the idle connection out", || {
        fs::read_to_string(dir.path().join("transactions.log"))
            .is_ok_and(|log| log.contains("reason=timeout"))
    });
    // No --retry: the server's goodbye (0xFF) is not taken for this message's status.
    client.write(b"after the pause\n");
    assert_success(&client.finish());
    assert_eq!(
        records(dir.path()),
        expected_records(&[b"before the pause", b"after the pause"])
    );
}

/// Like the original C server: one transaction per read, each of which must
/// already be whole in the receive buffer when its tag is read, and a bare
/// CLOSE answered 0xFF (it waits for a length that never comes).
fn original_like_server(listener: TcpListener) -> Vec<Vec<u8>> {
    let (mut stream, _) = listener.accept().unwrap();
    let mut messages = Vec::new();
    loop {
        let mut tag = [0u8; 1];
        stream.set_nonblocking(false).unwrap();
        if stream.read(&mut tag).unwrap() == 0 {
            return messages;
        }
        if tag[0] == 0x04 {
            stream.write_all(&[0xFF]).unwrap();
            return messages;
        }
        // The rest of the transaction must be there already.
        stream.set_nonblocking(true).unwrap();
        let mut length = [0u8; 2];
        stream
            .read_exact(&mut length)
            .expect("the length arrived with the tag");
        let mut payload = vec![0u8; u16::from_le_bytes(length).into()];
        stream
            .read_exact(&mut payload)
            .expect("the payload arrived with the tag");
        if tag[0] == 0x03 {
            messages.push(payload);
        }
        stream.set_nonblocking(false).unwrap();
        stream.write_all(&[0x00]).unwrap();
    }
}

#[test]
fn works_against_a_server_that_answers_one_transaction_at_a_time() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let server = thread::spawn(move || original_like_server(listener));
    let lines: Vec<String> = (0..500)
        .map(|i| format!("message {i} {}", "z".repeat(i % 150)))
        .collect();
    let input = lines
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes();
    let finished = run_client(&["--user", USER, "127.0.0.1", &port], &[PASSWORD], input);
    assert_success(&finished);
    let received = server.join().unwrap();
    assert_eq!(
        received,
        lines
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect::<Vec<_>>()
    );
}

#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    // stderr is a pipe here: --progress draws nothing.
    assert_success(&send_lines(&server, &["--progress"], b"piped 1\npiped 2\n"));

    // stderr on a pseudo-terminal: the line shows the counts.
    let (mut master, slave) = open_pty();
    let port = server.port.to_string();
    let mut child = std::process::Command::new(CLIENT)
        .args(framed_args(&server, &port, &["--progress"]))
        .env(PASSWORD.0, PASSWORD.1)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(slave)
        .spawn()
        .unwrap();
    let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let shown = std::sync::Arc::clone(&shown);
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // EIO once the client has exited and the terminal has no writer.
            while let Ok(n @ 1..) = master.read(&mut buffer) {
                shown.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    let drawn = |needle: &[u8]| {
        let shown = shown.lock().unwrap();
        shown.windows(needle.len()).any(|w| w == needle)
    };
    // Send until the line has been drawn with counts (it redraws every 100 ms).
    let started = std::time::Instant::now();
    let mut lines = 0u64;
    while !drawn(b" acknowledged, ") {
        assert!(started.elapsed() < DEADLINE, "no progress line drawn");
        lines += 1;
        writeln!(stdin, "line {lines}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    assert!(drawn(b" sent, "));
    assert!(drawn(b" msg/s, "));
    assert_eq!(records(dir.path()).len() as u64, lines + 2);
}

/// A pseudo-terminal: (master, slave).
fn open_pty() -> (fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two new descriptors into the integers given;
    // the name, termios and window size pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe {
        (
            fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}
