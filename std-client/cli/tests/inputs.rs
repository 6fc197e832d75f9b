//! Inputs as logger and nc take them: FILE arguments, `-` for stdin, `-f
//! FILE`, NUL-separated records, a policy for lines too long; HOST in
//! every spelling; `--timeout` as a duration; the summary line, `-q`, and
//! the summary on SIGINT and SIGTERM.

// These tests drive processes with signals, pipes, ptys and resource
// limits: Unix only (Windows is covered by the unit tests under wine and
// scripts/wine/e2e.sh).
#![cfg(unix)]

mod common;

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::thread;

use common::{record, records, run_client, wait_until, ClientProcess, Finished, Server};

const PASSWORD: (&str, &str) = ("MSGLOG_PASSWORD", "secret");

fn lines_of(records: &[&[u8]], user: &str) -> Vec<Vec<u8>> {
    records.iter().map(|r| record(user, r)).collect()
}

fn assert_exit(finished: &Finished, code: i32) {
    assert_eq!(finished.code(), Some(code), "stderr: {}", finished.stderr);
    assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
}

/// The summary line's counts: read, acknowledged, rejected, not sent.
fn summary(stderr: &str) -> (u64, u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains(" read, "))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let number = |after: &str| -> u64 {
        let before = line.split(after).next().unwrap();
        before.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // "msglog-client: [interrupted: ]3 lines read, ..."
    let read = line
        .split(" read, ")
        .next()
        .and_then(|head| head.rsplit(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    (
        read,
        number(" acknowledged"),
        number(" rejected"),
        number(" not sent"),
    )
}

#[test]
fn files_dash_and_f_are_read_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    fs::write(&a, "a1\r\n\na2").unwrap(); // no line ending at the end
    fs::write(&b, "b1\nb2\n").unwrap();
    let port = server.port.to_string();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    // -f first, then FILE arguments in order, `-` for stdin.
    let args = ["--user", "u", "127.0.0.1", &port, "-f", b, a, "-"];
    let finished = run_client(&args, &[PASSWORD], b"from stdin\n".to_vec());
    assert_exit(&finished, 0);
    assert_eq!(summary(&finished.stderr), (5, 5, 0, 0));
    assert_eq!(
        records(dir.path()),
        lines_of(&[b"b1", b"b2", b"a1", b"a2", b"from stdin"], "u")
    );

    // A line too long is named with its file.
    let long = dir.path().join("long.log");
    let mut text = b"fine\n".to_vec();
    text.extend(std::iter::repeat_n(b'x', 70_000));
    text.extend_from_slice(b"\nafter\n");
    fs::write(&long, text).unwrap();
    let long = long.to_str().unwrap();
    let finished = run_client(
        &["--user", "u", "127.0.0.1", &port, a, long],
        &[PASSWORD],
        vec![],
    );
    assert_exit(&finished, 7);
    assert!(
        finished
            .stderr
            .contains(&format!("line 2 of {long} is longer than 65535 bytes")),
        "{}",
        finished.stderr
    );
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
}

#[test]
fn raw_mode_sends_the_files_one_after_another() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let server = Server::raw(&output);
    let a = dir.path().join("a.bin");
    let b = dir.path().join("b.bin");
    let a_bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    fs::write(&a, &a_bytes).unwrap();
    fs::write(&b, b"\0tail").unwrap();
    let port = server.port.to_string();
    let finished = run_client(
        &[
            &format!("127.0.0.1:{port}"),
            a.to_str().unwrap(),
            "-",
            b.to_str().unwrap(),
        ],
        &[],
        b"[stdin]".to_vec(),
    );
    assert_exit(&finished, 0);
    let mut expected = a_bytes;
    expected.extend_from_slice(b"[stdin]\0tail");
    assert!(
        finished.stderr.contains(&format!(
            "{} bytes sent, confirmed by the server",
            expected.len()
        )),
        "{}",
        finished.stderr
    );
    wait_until("the server wrote every byte", || {
        fs::metadata(&output).is_ok_and(|m| m.len() >= expected.len() as u64)
    });
    assert!(fs::read(&output).unwrap() == expected);
}

#[test]
fn a_missing_file_stops_the_client_before_it_connects() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let port = server.port.to_string();
    let missing = dir.path().join("missing.log");
    let present = dir.path().join("present.log");
    fs::write(&present, "line\n").unwrap();
    for user in [Some("u"), None] {
        let mut args = vec!["127.0.0.1", &port];
        if let Some(user) = user {
            args.extend(["--user", user]);
        }
        args.extend([present.to_str().unwrap(), missing.to_str().unwrap()]);
        let finished = run_client(&args, &[PASSWORD], Vec::new());
        assert_exit(&finished, 6);
        assert!(
            finished.stderr.contains("cannot open") && finished.stderr.contains("missing.log"),
            "{}",
            finished.stderr
        );
        assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    }
    assert!(records(dir.path()).is_empty());
    let log = fs::read_to_string(dir.path().join("transactions.log")).unwrap_or_default();
    assert!(!log.contains("event=open"), "the client connected:\n{log}");
}

#[test]
fn nul_separated_records_keep_their_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let port = server.port.to_string();
    let finished = run_client(
        &["--user", "u", "-z", "127.0.0.1", &port],
        &[PASSWORD],
        b"first\nrecord\0\0second\r\n\0last".to_vec(),
    );
    assert_exit(&finished, 0);
    assert!(
        finished.stderr.contains("3 records read, 3 acknowledged"),
        "{}",
        finished.stderr
    );
    assert_eq!(
        records(dir.path()),
        lines_of(&[b"first\nrecord", b"second\r\n", b"last"], "u")
    );
}

#[test]
fn long_lines_fail_truncate_or_split() {
    // A 4-byte UTF-8 character straddles byte 65535.
    let mut long = "x".repeat(65_534).into_bytes();
    long.extend_from_slice("🦀 and more".as_bytes());
    let mut input = b"before\n".to_vec();
    input.extend_from_slice(&long);
    input.extend_from_slice(b"\r\nafter\n");

    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let port = server.port.to_string();
    let run = |policy: &str| {
        run_client(
            &["--user", "u", "127.0.0.1", &port, "--long-lines", policy],
            &[PASSWORD],
            input.clone(),
        )
    };

    let finished = run("truncate");
    assert_exit(&finished, 0);
    assert!(
        finished.stderr.contains("1 truncated"),
        "{}",
        finished.stderr
    );
    let cut = &long[..65_534];
    assert_eq!(
        records(dir.path()),
        lines_of(&[b"before", cut, b"after"], "u")
    );

    let finished = run("split");
    assert_exit(&finished, 0);
    assert_eq!(summary(&finished.stderr), (4, 4, 0, 0));
    let rest = &long[65_534..];
    assert_eq!(
        records(dir.path()),
        lines_of(
            &[b"before", cut, b"after", b"before", cut, rest, b"after"],
            "u"
        )
    );

    // The default: fail at the line, naming it.
    let finished = run_client(&["--user", "u", "127.0.0.1", &port], &[PASSWORD], input);
    assert_exit(&finished, 7);
    assert!(
        finished
            .stderr
            .contains("line 2 is longer than 65535 bytes")
            && finished.stderr.contains("--long-lines"),
        "{}",
        finished.stderr
    );
}

/// A raw "server" on ::1 that takes one client's bytes and closes.
fn raw_listener_on_ipv6() -> Option<(u16, thread::JoinHandle<Vec<u8>>)> {
    let listener = TcpListener::bind("[::1]:0").ok()?;
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    });
    Some((port, handle))
}

#[test]
fn ipv6_hosts_with_and_without_brackets_and_host_port() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    }
    for spelling in [
        |port: u16| vec!["::1".to_owned(), port.to_string()],
        |port: u16| vec!["[::1]".to_owned(), port.to_string()],
        |port: u16| vec![format!("[::1]:{port}")],
    ] {
        let (port, server) = raw_listener_on_ipv6().unwrap();
        let args = spelling(port);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let finished = run_client(&args, &[], b"over IPv6".to_vec());
        assert_exit(&finished, 0);
        assert_eq!(server.join().unwrap(), b"over IPv6", "{args:?}");
    }
    // IPv4 as HOST:PORT, framed.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let finished = run_client(
        &["--user", "u", &server.address(), "-m", "by HOST:PORT"],
        &[PASSWORD],
        Vec::new(),
    );
    assert_exit(&finished, 0);
    assert_eq!(records(dir.path()), lines_of(&[b"by HOST:PORT"], "u"));
}

#[test]
fn timeout_takes_a_duration() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut sink = [0u8; 1024];
        // Read everything, answer nothing.
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    let args = [
        "--user",
        "u",
        "127.0.0.1",
        &port,
        "--timeout",
        "300ms",
        "-m",
        "x",
    ];
    let finished = run_client(&args, &[PASSWORD], Vec::new());
    assert_exit(&finished, 11);
    assert!(
        finished.stderr.contains("within 0.3 s"),
        "{}",
        finished.stderr
    );
}

#[test]
fn quiet_leaves_out_the_summary_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let port = server.port.to_string();
    let finished = run_client(
        &["--user", "u", "-q", "127.0.0.1", &port],
        &[PASSWORD],
        b"a\nb\n".to_vec(),
    );
    assert_exit(&finished, 0);
    assert!(finished.stderr.is_empty(), "{}", finished.stderr);
    let finished = run_client(
        &["--user", "u", "-q", "127.0.0.1", &port, "-m", "1"],
        &[PASSWORD],
        vec![],
    );
    assert_exit(&finished, 0);
    assert_eq!(records(dir.path()).len(), 3);
    // Errors are still reported.
    drop(server);
    let finished = run_client(
        &["--user", "u", "-q", "127.0.0.1", &port, "-m", "x"],
        &[PASSWORD],
        vec![],
    );
    assert_exit(&finished, 5);
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
}

/// Ctrl-C (SIGINT) and SIGTERM while the input waits: the summary line
/// says what was acknowledged, and the exit status is 128 + the signal.
#[test]
fn a_signal_prints_the_summary_and_exits_128_plus_its_number() {
    for (signal, code, says) in [
        (libc::SIGINT, 130, "interrupted: "),
        (libc::SIGTERM, 143, "stopped by SIGTERM: "),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::framed(dir.path());
        let port = server.port.to_string();
        let mut client = ClientProcess::start(&["--user", "u", "127.0.0.1", &port], &[PASSWORD]);
        client.write(b"one\ntwo\nthree\n");
        wait_until("three lines are logged", || records(dir.path()).len() == 3);
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(client.pid() as i32, signal) }, 0);
        let (finished, _) = client.exits_by_itself(common::DEADLINE);
        assert_exit(&finished, code);
        assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
        assert!(
            finished
                .stderr
                .starts_with(&format!("msglog-client: {says}3 lines read, ")),
            "{}",
            finished.stderr
        );
        let (read, acknowledged, rejected, not_sent) = summary(&finished.stderr);
        assert_eq!((read, rejected, not_sent), (3, 0, 0), "{}", finished.stderr);
        assert!(acknowledged <= 3, "{}", finished.stderr);
    }
}

#[test]
fn a_signal_in_raw_mode_says_the_bytes_were_not_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let server = Server::raw(&output);
    let port = server.port.to_string();
    let mut client = ClientProcess::start(&["127.0.0.1", &port], &[]);
    client.write(b"twelve bytes");
    wait_until("the server wrote the bytes", || {
        fs::metadata(&output).is_ok_and(|m| m.len() == 12)
    });
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(client.pid() as i32, libc::SIGINT) }, 0);
    let (finished, _) = client.exits_by_itself(common::DEADLINE);
    assert_exit(&finished, 130);
    assert!(
        finished.stderr.starts_with(
            "msglog-client: interrupted: 12 bytes read, not confirmed by the server, "
        ),
        "{}",
        finished.stderr
    );
}
