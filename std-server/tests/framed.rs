//! The framed protocol against the real binary: happy path, pipelining,
//! every rejection rule, exact log bytes, escaping, split and truncated
//! frames, many clients, overload, and the original client's bytes.

// These tests drive the server process with signals (stop, SIGHUP), umasks
// and resource limits: Unix only. What runs on Windows (under wine in CI)
// is the library's and the binary's unit tests; scripts/wine/ says why.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn happy_path_writes_exact_records_and_log_lines() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    for (bytes, what) in [
        (name("MyUser"), "NAME"),
        (password(b"PW-SECRET-1234"), "PASSWORD"),
        (message(b"hello"), "MESSAGE"),
        (message(b"second BODY-MARKER"), "MESSAGE"),
        (CLOSE.to_vec(), "CLOSE"),
    ] {
        s.write_all(&bytes).unwrap();
        assert_eq!(read_statuses(&mut s, 1), vec![0], "{what}");
    }
    assert_eq!(read_to_end(&mut s), b"", "nothing after the CLOSE status");

    let text = server.wait_lines("event=close", 1);
    assert_eq!(
        server.messages(),
        b"[MyUser]: hello\r\n[MyUser]: second BODY-MARKER\r\n"
    );
    assert_eq!(
        normalize(&text),
        [
            "T conn=1 peer=127.0.0.1:P event=open",
            "T conn=1 peer=127.0.0.1:P tag=NAME len=6 outcome=ok name=\"MyUser\"",
            "T conn=1 peer=127.0.0.1:P tag=PASSWORD len=- outcome=ok",
            "T conn=1 peer=127.0.0.1:P tag=MESSAGE len=5 outcome=ok",
            "T conn=1 peer=127.0.0.1:P tag=MESSAGE len=18 outcome=ok",
            "T conn=1 peer=127.0.0.1:P tag=CLOSE len=- outcome=ok",
            "T conn=1 peer=127.0.0.1:P event=close reason=close",
        ]
    );
    assert!(
        !text.contains("PW-SECRET") && !text.contains("BODY-MARKER") && !text.contains("hello")
    );

    // Created 0644 and 0640 (less whatever the umask removes).
    // SAFETY: umask is read by setting it and setting it back.
    let mask = unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask
    };
    for (file, created) in [("messages.log", 0o644), ("transactions.log", 0o640)] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.path(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, created & !mask, "{file}");
    }
    let stderr = server.stop();
    assert!(stderr.contains("1 connection (0 refused"), "{stderr}");
    assert!(stderr.contains("2 messages logged"), "{stderr}");
}

/// `-vv` shows what a person debugging a client needs: each connection's
/// events and transactions as `transactions.log` records them, as they
/// happen; never a password or a message.
#[test]
fn vv_shows_each_connections_events_on_stderr() {
    let server = Server::start(&["-vv"]);
    let mut s = server.connect();
    s.write_all(&login_bytes("debugged", b"PW-SECRET-VV"))
        .unwrap();
    s.write_all(&message(b"BODY-MARKER-VV")).unwrap();
    s.write_all(&frame(0x07, b"?")).unwrap();
    assert_eq!(read_statuses(&mut s, 4), vec![0, 0, 0, 0xFF]);
    let stderr = server
        .wait_stderr(|t| t.contains("event=close"))
        .expect("the close is shown");
    let shown: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" conn=1 "))
        .map(|l| l.strip_prefix("msglog-server: ").expect("prefixed"))
        .collect();
    assert_eq!(
        normalize(&shown.join("\n")),
        [
            "T conn=1 peer=127.0.0.1:P event=open",
            "T conn=1 peer=127.0.0.1:P tag=NAME len=8 outcome=ok name=\"debugged\"",
            "T conn=1 peer=127.0.0.1:P tag=PASSWORD len=- outcome=ok",
            "T conn=1 peer=127.0.0.1:P tag=MESSAGE len=14 outcome=ok",
            "T conn=1 peer=127.0.0.1:P tag=0x07 len=- outcome=unknown-tag",
            "T conn=1 peer=127.0.0.1:P event=close reason=rejected",
        ]
    );
    assert!(
        !stderr.contains("PW-SECRET") && !stderr.contains("BODY-MARKER"),
        "{stderr}"
    );
    // Without -vv, none of it.
    let quiet = Server::start(&[]);
    let mut s = quiet.login("u");
    s.write_all(CLOSE).unwrap();
    assert_eq!(read_statuses(&mut s, 1), vec![0]);
    quiet.wait_lines("event=close", 1);
    assert!(
        !quiet.stderr_text().contains("conn=1"),
        "{}",
        quiet.stderr_text()
    );
}

/// The original Python client's byte sequences: each transaction on its own,
/// one status byte read after each, and a bare `04` to close.
#[test]
fn replay_of_the_original_python_client() {
    let server = Server::start(&["--auth", "legacy-parity"]);
    let mut s = server.connect();
    let mut exchange = |bytes: &[u8]| {
        s.write_all(bytes).unwrap();
        let mut status = [0u8; 1];
        s.read_exact(&mut status).unwrap();
        status[0]
    };
    assert_eq!(exchange(b"\x01\x06\x00MyUser"), 0x00);
    // The original server accepts a password whose first byte is odd ('s').
    assert_eq!(exchange(b"\x02\x06\x00secret"), 0x00);
    assert_eq!(exchange(b"\x03\x0b\x00Hello world"), 0x00);
    assert_eq!(exchange(b"\x03\x0f\x00Second message!"), 0x00);
    // The original answered a bare CLOSE 0xFF; msglog answers 0x00.
    assert_eq!(exchange(b"\x04"), 0x00);
    assert_eq!(read_to_end(&mut s), b"");
    assert_eq!(
        server.messages(),
        b"[MyUser]: Hello world\r\n[MyUser]: Second message!\r\n"
    );

    // An even first byte is refused, as by the original.
    let mut s = server.connect();
    s.write_all(b"\x01\x06\x00MyUser").unwrap();
    s.write_all(b"\x02\x08\x00password").unwrap();
    assert_eq!(read_to_end(&mut s), [0x00, 0xFF]);
    let text = server.wait_lines("reason=rejected", 1);
    assert!(
        text.contains("tag=PASSWORD len=- outcome=auth-failed"),
        "{text}"
    );
    server.stop();
}

#[test]
fn pipelined_session_in_one_write() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    let mut bytes = login_bytes("pipe", b"pw");
    for i in 0..500 {
        bytes.extend(message(format!("message {i}").as_bytes()));
    }
    bytes.extend_from_slice(CLOSE);
    s.write_all(&bytes).unwrap();
    assert_eq!(read_to_end(&mut s), vec![0u8; 503]);
    let expected: Vec<String> = (0..500).map(|i| format!("[pipe]: message {i}")).collect();
    assert_eq!(records(&server.messages()), expected);
    server.stop();
}

/// Each rejection rule of PROTOCOL.md: the status bytes, the connection
/// closed at once (no waiting for bytes that were not sent), and the log lines.
#[test]
fn every_rejection_rule() {
    struct Case {
        what: &'static str,
        bytes: Vec<u8>,
        statuses: Vec<u8>,
        line: &'static str,
    }
    let login = login_bytes("alice", b"pw");
    let with = |prefix: &[u8], rest: &[u8]| [prefix, rest].concat();
    let cases = [
        Case {
            what: "unknown tag 0x00 first",
            bytes: vec![0x00],
            statuses: vec![0xFF],
            line: "tag=0x00 len=- outcome=unknown-tag",
        },
        Case {
            what: "unknown tag 0x05 after login",
            bytes: with(&login, &[0x05]),
            statuses: vec![0, 0, 0xFF],
            line: "tag=0x05 len=- outcome=unknown-tag",
        },
        Case {
            what: "unknown tag 0xff",
            bytes: vec![0xFF, 0x01, 0x00],
            statuses: vec![0xFF],
            line: "tag=0xff len=- outcome=unknown-tag",
        },
        Case {
            what: "zero-length NAME",
            bytes: vec![1, 0, 0],
            statuses: vec![0xFF],
            line: "tag=NAME len=0 outcome=zero-length",
        },
        Case {
            what: "zero-length PASSWORD",
            bytes: with(&name("alice"), &[2, 0, 0]),
            statuses: vec![0, 0xFF],
            line: "tag=PASSWORD len=- outcome=zero-length",
        },
        Case {
            what: "zero-length MESSAGE",
            bytes: with(&login, &[3, 0, 0]),
            statuses: vec![0, 0, 0xFF],
            line: "tag=MESSAGE len=0 outcome=zero-length",
        },
        Case {
            what: "NAME of 256 bytes, header only",
            bytes: vec![1, 0x00, 0x01],
            statuses: vec![0xFF],
            line: "tag=NAME len=256 outcome=too-long",
        },
        Case {
            what: "PASSWORD of 65535 bytes, header only",
            bytes: with(&name("alice"), &[2, 0xFF, 0xFF]),
            statuses: vec![0, 0xFF],
            line: "tag=PASSWORD len=- outcome=too-long",
        },
        Case {
            what: "MESSAGE before NAME, tag byte only",
            bytes: vec![3],
            statuses: vec![0xFF],
            line: "tag=MESSAGE len=- outcome=unexpected-tag",
        },
        Case {
            what: "PASSWORD before NAME",
            bytes: vec![2],
            statuses: vec![0xFF],
            line: "tag=PASSWORD len=- outcome=unexpected-tag",
        },
        Case {
            what: "NAME twice",
            bytes: with(&name("alice"), &[1]),
            statuses: vec![0, 0xFF],
            line: "tag=NAME len=- outcome=unexpected-tag",
        },
        Case {
            what: "MESSAGE before PASSWORD",
            bytes: with(&name("alice"), &[3]),
            statuses: vec![0, 0xFF],
            line: "tag=MESSAGE len=- outcome=unexpected-tag",
        },
        Case {
            what: "NAME after login",
            bytes: with(&login, &[1]),
            statuses: vec![0, 0, 0xFF],
            line: "tag=NAME len=- outcome=unexpected-tag",
        },
        Case {
            what: "PASSWORD after login",
            bytes: with(&login, &[2]),
            statuses: vec![0, 0, 0xFF],
            line: "tag=PASSWORD len=- outcome=unexpected-tag",
        },
        Case {
            what: "name with a control character",
            bytes: frame(1, b"a\x01b"),
            statuses: vec![0xFF],
            line: "tag=NAME len=3 outcome=invalid-name name=\"a\\x01b\"",
        },
        Case {
            what: "name with brackets",
            bytes: frame(1, b"[admin]"),
            statuses: vec![0xFF],
            line: "tag=NAME len=7 outcome=invalid-name name=\"[admin]\"",
        },
        Case {
            what: "name that is not UTF-8",
            bytes: frame(1, b"\xff\xfe"),
            statuses: vec![0xFF],
            line: "tag=NAME len=2 outcome=invalid-name name=\"\\xff\\xfe\"",
        },
        Case {
            what: "name with a C1 control (U+0085)",
            bytes: frame(1, "a\u{85}".as_bytes()),
            statuses: vec![0xFF],
            line: "tag=NAME len=3 outcome=invalid-name name=\"a\\xc2\\x85\"",
        },
        Case {
            what: "nothing after a rejection is processed",
            bytes: [vec![0x07], name("alice"), login.clone(), CLOSE.to_vec()].concat(),
            statuses: vec![0xFF],
            line: "tag=0x07 len=- outcome=unknown-tag",
        },
    ];
    // A long frame timeout: each rejection must come at once, not by timing out.
    let server = Server::start(&["--frame-timeout", "60s"]);
    for (index, case) in cases.iter().enumerate() {
        let conn = index as u64 + 1;
        let started = Instant::now();
        let mut s = server.connect();
        s.write_all(&case.bytes).unwrap();
        assert_eq!(read_to_end(&mut s), case.statuses, "{}", case.what);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} was not rejected at once",
            case.what
        );
        let text = server.wait_transactions(|t| {
            t.lines()
                .any(|l| l.contains(&format!("conn={conn} ")) && l.contains("event=close"))
        });
        let lines = lines_of(&text, conn);
        let n = lines.len();
        assert!(n >= 3, "{}: {lines:#?}", case.what);
        assert!(
            lines[n - 2].ends_with(case.line),
            "{}: {lines:#?}",
            case.what
        );
        assert!(
            lines[n - 1].ends_with("event=close reason=rejected"),
            "{}: {lines:#?}",
            case.what
        );
        // One line per answered transaction, plus open and close.
        assert_eq!(n, case.statuses.len() + 2, "{}: {lines:#?}", case.what);
    }
    assert_eq!(server.messages(), b"");
    server.stop();
}

#[test]
fn close_is_answered_in_every_state_and_ends_the_session() {
    let server = Server::start(&[]);
    let login = login_bytes("bob", b"pw");
    for (prefix, statuses) in [
        (Vec::new(), vec![0]),
        (name("bob"), vec![0, 0]),
        (login.clone(), vec![0, 0, 0]),
    ] {
        let mut s = server.connect();
        // Bytes after CLOSE are discarded, never answered.
        s.write_all(&[prefix, CLOSE.to_vec(), message(b"after close")].concat())
            .unwrap();
        assert_eq!(read_to_end(&mut s), statuses);
    }
    let text = server.wait_lines("event=close reason=close", 3);
    assert_eq!(
        text.matches("tag=CLOSE len=- outcome=ok").count(),
        3,
        "{text}"
    );
    assert_eq!(server.messages(), b"");
    server.stop();
}

#[test]
fn escaping_keeps_one_record_per_line_and_logs_unforgeable() {
    let server = Server::start(&[]);
    let mut s = server.login("mallory");
    let messages: [&[u8]; 6] = [
        b"x\r\n[admin]: forged",
        b"tab\there \\ back",
        b"\x00\x1b[31m\x7f",
        b"\xff\xfe ok \xc3",
        "h\u{e9}llo \u{2713} \u{2028} \u{85}".as_bytes(),
        b"plain text",
    ];
    for m in messages {
        s.write_all(&message(m)).unwrap();
    }
    s.write_all(CLOSE).unwrap();
    assert_eq!(read_to_end(&mut s), vec![0; 7]);
    let expected = [
        "[mallory]: x\\r\\n[admin]: forged\r\n",
        "[mallory]: tab\\there \\\\ back\r\n",
        "[mallory]: \\x00\\x1b[31m\\x7f\r\n",
        "[mallory]: \\xff\\xfe ok \\xc3\r\n",
        "[mallory]: h\u{e9}llo \u{2713} \\xe2\\x80\\xa8 \\xc2\\x85\r\n",
        "[mallory]: plain text\r\n",
    ]
    .concat();
    let log = server.messages();
    assert_eq!(String::from_utf8(log.clone()).unwrap(), expected);
    assert_eq!(
        log.iter().filter(|&&b| b == b'\n').count(),
        6,
        "one line per record"
    );

    // Names: quotes and spaces are allowed and quoted in transactions.log;
    // a refused name with a line break stays on its line.
    let mut s = server.connect();
    s.write_all(
        &[
            login_bytes("a\"b outcome=ok", b"pw"),
            message(b"hi"),
            CLOSE.to_vec(),
        ]
        .concat(),
    )
    .unwrap();
    assert_eq!(read_to_end(&mut s), vec![0; 4]);
    let mut s = server.connect();
    let forged = "evil\n2026-01-01T00:00:00.000Z conn=99 peer=1.2.3.4:5 event=open";
    s.write_all(&name(forged)).unwrap();
    assert_eq!(read_to_end(&mut s), vec![0xFF]);
    let text = server.wait_lines("event=close", 3);
    assert!(text.contains("name=\"a\\\"b outcome=ok\""), "{text}");
    assert!(
        text.contains("outcome=invalid-name name=\"evil\\n2026-01-01T00:00:00.000Z conn=99 peer=1.2.3.4:5 event=open\""),
        "{text}"
    );
    assert!(
        !text.contains("conn=99 peer=1.2.3.4:5 event=open\n"),
        "{text}"
    );
    // Every line is a real one: timestamp, conn, peer.
    normalize(&text);
    assert!(String::from_utf8(server.messages())
        .unwrap()
        .ends_with("[a\"b outcome=ok]: hi\r\n"));
    server.stop();
}

#[test]
fn names_that_pass_for_others_are_refused_and_display_controls_land_escaped() {
    let server = Server::start(&[]);
    // Names that look like another one, reverse their line or split it: 0xFF, nothing after it handled.
    for user in ["ad\u{200b}min", "user\u{202e}nimda", "one\u{2028}two"] {
        let mut s = server.connect();
        let bytes = [
            login_bytes(user, b"pw"),
            message(b"must not be logged"),
            CLOSE.to_vec(),
        ]
        .concat();
        s.write_all(&bytes).unwrap();
        assert_eq!(read_to_end(&mut s), vec![0xFF], "{user:?}");
    }
    // A refused name carrying terminal escapes lands escaped on its NAME line.
    let mut s = server.connect();
    s.write_all(&name("evil\u{9b}2J\u{9d}0;owned\u{7}\u{2028}\u{202e}x"))
        .unwrap();
    assert_eq!(read_to_end(&mut s), vec![0xFF]);

    // Messages: C1 controls (CSI, OSC, NEL), line and paragraph separators
    // and bidi controls are escaped byte-wise; other text is kept.
    let messages: [&str; 5] = [
        "\u{9b}31mred\u{9d}0;title\u{7} one\u{2028}[admin]: forged \u{202e}desrever",
        "next\u{85}line\u{2029}para\u{2066}isolate\u{2069} \u{61c}",
        "typographic \u{201c}quotes\u{201d} \u{2014} and a \u{1f468}\u{200d}\u{1f469} family",
        "\u{1c}\u{1d}\u{1e}\u{b}\u{c}",
        "plain",
    ];
    let mut s = server.login("mallory");
    for m in messages {
        s.write_all(&message(m.as_bytes())).unwrap();
    }
    s.write_all(CLOSE).unwrap();
    assert_eq!(read_to_end(&mut s), vec![0; 6]);
    let expected = [
        "[mallory]: \\xc2\\x9b31mred\\xc2\\x9d0;title\\x07 one\\xe2\\x80\\xa8[admin]: forged \\xe2\\x80\\xaedesrever\r\n",
        "[mallory]: next\\xc2\\x85line\\xe2\\x80\\xa9para\\xe2\\x81\\xa6isolate\\xe2\\x81\\xa9 \\xd8\\x9c\r\n",
        "[mallory]: typographic \u{201c}quotes\u{201d} \u{2014} and a \u{1f468}\u{200d}\u{1f469} family\r\n",
        "[mallory]: \\x1c\\x1d\\x1e\\x0b\\x0c\r\n",
        "[mallory]: plain\r\n",
    ]
    .concat();
    assert_eq!(String::from_utf8(server.messages()).unwrap(), expected);

    let text = server.wait_lines("event=close", 5);
    assert!(
        text.contains(
            "outcome=invalid-name name=\"evil\\xc2\\x9b2J\\xc2\\x9d0;owned\\x07\\xe2\\x80\\xa8\\xe2\\x80\\xaex\"\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("outcome=invalid-name name=\"user\\xe2\\x80\\xaenimda\"\n"),
        "{text}"
    );

    // What a Unicode-aware reader sees: one line per record, one per log line.
    let audit = server.transactions();
    assert_eq!(
        python_line_count(&server.path("messages.log")),
        messages.len()
    );
    assert_eq!(
        python_line_count(&server.path("transactions.log")),
        audit.matches('\n').count()
    );
    server.stop();
}

/// How many lines Python's `str.splitlines` finds in a UTF-8 file.
fn python_line_count(path: &std::path::Path) -> usize {
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sys; print(len(open(sys.argv[1], encoding='utf-8', newline='').read().splitlines()))")
        .arg(path)
        .output()
        .expect("python3 runs (it is needed for this test)");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn frames_split_one_byte_at_a_time() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    let bytes = [
        login_bytes("slow", b"pw"),
        message(b"first"),
        message(&[b'x'; 300]),
        CLOSE.to_vec(),
    ]
    .concat();
    for byte in &bytes {
        s.write_all(std::slice::from_ref(byte)).unwrap();
        // Pacing, so that the server sees the bytes in separate reads.
        std::thread::sleep(Duration::from_micros(300));
    }
    assert_eq!(read_to_end(&mut s), vec![0; 5]);
    assert_eq!(
        records(&server.messages()),
        [
            "[slow]: first".to_owned(),
            format!("[slow]: {}", "x".repeat(300))
        ]
    );
    let text = server.wait_lines("event=close reason=close", 1);
    assert!(text.contains("tag=MESSAGE len=300 outcome=ok"), "{text}");
    server.stop();
}

#[test]
fn eof_mid_frame_drops_the_partial_transaction() {
    let server = Server::start(&[]);
    let cases: [(Vec<u8>, Vec<u8>, &str); 3] = [
        (
            [login_bytes("eve", b"pw"), vec![3, 5, 0, b'h', b'e']].concat(),
            vec![0, 0],
            "event=close reason=eof partial=5",
        ),
        (vec![1], vec![], "event=close reason=eof partial=1"),
        (name("eve"), vec![0], "event=close reason=eof"),
    ];
    for (index, (bytes, statuses, close)) in cases.iter().enumerate() {
        let mut s = server.connect();
        s.write_all(bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(&read_to_end(&mut s), statuses);
        let conn = index as u64 + 1;
        let text = server.wait_transactions(|t| {
            t.lines()
                .any(|l| l.contains(&format!("conn={conn} ")) && l.contains("event=close"))
        });
        let lines = lines_of(&text, conn);
        assert!(lines.last().unwrap().ends_with(close), "{lines:#?}");
    }
    assert_eq!(server.messages(), b"");
    server.stop();
}

#[test]
fn a_thousand_clients_at_once() {
    const CLIENTS: usize = 1000;
    raise_fd_limit(CLIENTS as u64 + 100);
    let server = Server::start(&[]);
    let mut streams: Vec<TcpStream> = (0..CLIENTS).map(|_| server.connect()).collect();
    for (i, s) in streams.iter_mut().enumerate() {
        let user = format!("user{i}");
        s.write_all(
            &[
                login_bytes(&user, b"pw"),
                message(format!("hello from {i}").as_bytes()),
                CLOSE.to_vec(),
            ]
            .concat(),
        )
        .unwrap();
    }
    for (i, s) in streams.iter_mut().enumerate() {
        assert_eq!(read_to_end(s), vec![0; 4], "client {i}");
    }
    let mut got = records(&server.messages());
    got.sort();
    let mut expected: Vec<String> = (0..CLIENTS)
        .map(|i| format!("[user{i}]: hello from {i}"))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    let text = server.wait_lines("event=close reason=close", CLIENTS);
    assert_eq!(
        text.lines().filter(|l| l.ends_with("event=open")).count(),
        CLIENTS
    );
    server.stop();
}

#[test]
fn over_max_connections_is_accepted_closed_and_logged() {
    let server = Server::start(&["--max-connections", "3"]);
    let mut held: Vec<TcpStream> = (0..3).map(|i| server.login(&format!("held{i}"))).collect();
    let mut extra = server.connect();
    assert_eq!(read_to_end(&mut extra), b"", "closed at once, no status");
    let text = server.wait_lines("event=close reason=overload", 1);
    let overloaded = text
        .lines()
        .find(|l| l.ends_with("reason=overload"))
        .unwrap();
    let id = overloaded
        .split(' ')
        .find_map(|f| f.strip_prefix("conn="))
        .unwrap();
    assert!(
        text.contains(&format!("conn={id} peer=127.0.0.1:")),
        "{text}"
    );

    // The held connections still work; once one ends, a new one is served.
    for s in &mut held {
        s.write_all(&message(b"still here")).unwrap();
        assert_eq!(read_statuses(s, 1), vec![0]);
    }
    let mut first = held.remove(0);
    first.write_all(CLOSE).unwrap();
    assert_eq!(read_to_end(&mut first), vec![0]);
    let served = wait_until(PATIENCE, || {
        let mut s = server.connect();
        s.write_all(&login_bytes("late", b"pw")).unwrap();
        read_statuses(&mut s, 2) == vec![0, 0]
    });
    assert!(served, "a new connection is served once there is room");
    server.stop();
}

#[test]
fn argon2_users_file_and_hash_password() {
    let dir = tempfile::tempdir().unwrap();
    let (code, line, stderr) = run(
        &["hash-password", "alice", "--m-cost", "64", "--t-cost", "1"],
        b"s3cret pass\n",
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let line = line.trim_end();
    assert!(
        line.starts_with("alice:$argon2id$v=19$m=64,t=1,p=1$"),
        "{line}"
    );
    let (_, bob, _) = run(
        &["hash-password", "bob", "--m-cost", "64", "--t-cost", "1"],
        b"other\r\n",
        None,
    );
    let users = dir.path().join("users");
    std::fs::write(&users, format!("# msglog users\n{line}\n\n{bob}")).unwrap();

    let server = Server::start(&["--users", users.to_str().unwrap()]);
    assert!(
        server.stderr_text().contains("auth=argon2 (2 users)"),
        "{}",
        server.stderr_text()
    );
    assert!(
        !server.stderr_text().contains("ANY name"),
        "no warning with --users"
    );
    // Everything pipelined behind the PASSWORD waits for its verification.
    let mut s = server.connect();
    s.write_all(
        &[
            login_bytes("alice", b"s3cret pass"),
            message(b"hi"),
            CLOSE.to_vec(),
        ]
        .concat(),
    )
    .unwrap();
    assert_eq!(read_to_end(&mut s), vec![0; 4]);
    let mut s = server.connect();
    s.write_all(&[login_bytes("bob", b"other"), CLOSE.to_vec()].concat())
        .unwrap();
    assert_eq!(read_to_end(&mut s), vec![0; 3]);
    for (user, pw) in [("alice", &b"s3cret pasS"[..]), ("mallory", b"s3cret pass")] {
        let mut s = server.connect();
        s.write_all(&[login_bytes(user, pw), message(b"never"), CLOSE.to_vec()].concat())
            .unwrap();
        assert_eq!(read_to_end(&mut s), vec![0, 0xFF], "{user}");
    }
    assert_eq!(server.messages(), b"[alice]: hi\r\n");
    let text = server.wait_lines("outcome=auth-failed", 2);
    assert!(!text.contains("s3cret"), "{text}");
    server.stop();

    // hash-password refuses what cannot be used.
    let (code, _, stderr) = run(&["hash-password", "alice"], b"\n", None);
    assert_eq!(code, Some(6), "{stderr}");
    let (code, _, stderr) = run(&["hash-password", "[x]"], b"pw\n", None);
    assert_eq!(code, Some(6), "{stderr}");
    let (code, _, stderr) = run(&["hash-password", "alice"], &[b'p'; 300], None);
    assert_eq!(code, Some(6), "{stderr}");
}

/// Issue 11, item 4: a users file with a byte order mark works, and every
/// mistake in one is reported as what it is, with its line number and
/// without the hash.
#[test]
fn users_file_mistakes_are_named_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, line, stderr) = run(
        &["hash-password", "alice", "--m-cost", "64", "--t-cost", "1"],
        b"s3cret\n",
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let good = line.trim_end();
    let hash = good.split_once(':').unwrap().1;
    let users = dir.path().join("users");

    // An editor's byte order mark is not part of the first name.
    std::fs::write(
        &users,
        [&b"\xEF\xBB\xBF"[..], good.as_bytes(), b"\n"].concat(),
    )
    .unwrap();
    let server = Server::start(&["--users", users.to_str().unwrap()]);
    let mut s = server.connect();
    s.write_all(&[login_bytes("alice", b"s3cret"), CLOSE.to_vec()].concat())
        .unwrap();
    assert_eq!(read_to_end(&mut s), vec![0; 3], "alice after a BOM");
    server.stop();

    let long = "n".repeat(256);
    let cases: [(Vec<u8>, usize, &str); 8] = [
        (
            [good.as_bytes(), b"\nb\xF6b:", hash.as_bytes(), b"\n"].concat(),
            2,
            "not valid UTF-8",
        ),
        (
            format!("# users\n{good} \n").into(),
            2,
            "trailing whitespace after the hash",
        ),
        (format!(" {good}\n").into(), 1, "whitespace before the name"),
        ("alice:\n".into(), 1, "no hash after the ':'"),
        (format!(":{hash}\n").into(), 1, "no user name"),
        (
            format!("alice {hash}\n").into(),
            1,
            "expected `name:$argon2id$...`, found no ':'",
        ),
        (
            format!("{long}:{hash}\n").into(),
            1,
            "longer than 255 bytes",
        ),
        (
            format!("{good}\r\n{good}\r\n").into(),
            2,
            "already on line 1",
        ),
    ];
    for (text, line, says) in cases {
        std::fs::write(&users, &text).unwrap();
        let (code, _, stderr) = run(
            &[
                "--bind",
                "127.0.0.1",
                "--users",
                users.to_str().unwrap(),
                "0",
            ],
            b"",
            Some(dir.path()),
        );
        let shown = String::from_utf8_lossy(&text);
        assert_eq!(code, Some(5), "{shown}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("users:{line}: ")),
            "{shown}: {stderr}"
        );
        assert!(stderr.contains(says), "{shown}: {stderr}");
        for secret in hash.rsplit('$').take(2) {
            assert!(!stderr.contains(secret), "{stderr}");
        }
    }
}

#[test]
fn hash_password_with_default_cost_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (code, line, stderr) = run(&["hash-password", "carol"], b"correct horse\n", None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        line.starts_with("carol:$argon2id$v=19$m=19456,t=2,p=1$"),
        "{line}"
    );
    let users = dir.path().join("users");
    std::fs::write(&users, &line).unwrap();
    let server = Server::start(&["--users", users.to_str().unwrap()]);
    let mut s = server.connect();
    s.write_all(&[login_bytes("carol", b"correct horse"), CLOSE.to_vec()].concat())
        .unwrap();
    assert_eq!(read_to_end(&mut s), vec![0; 3]);
    server.stop();
}

#[test]
fn repeated_failures_from_one_address_are_slowed_down() {
    let server = Server::start(&["--auth", "legacy-parity"]);
    let attempt = |pw: &[u8]| {
        let mut s = server.connect();
        s.write_all(&name("guess")).unwrap();
        assert_eq!(read_statuses(&mut s, 1), vec![0]);
        let started = Instant::now();
        s.write_all(&password(pw)).unwrap();
        let status = read_statuses(&mut s, 1);
        (status, started.elapsed())
    };
    // The first byte decides: 'p', 'b', 'd' are even, 'o' is odd.
    let (status, first) = attempt(b"pass");
    assert_eq!(status, vec![0xFF]);
    let (status, second) = attempt(b"bad");
    assert_eq!(status, vec![0xFF]);
    let (status, third) = attempt(b"dull");
    assert_eq!(status, vec![0xFF]);
    assert!(
        second >= Duration::from_millis(200),
        "second failure after {second:?}"
    );
    assert!(
        third >= Duration::from_millis(450),
        "third failure after {third:?}"
    );
    assert!(first < second, "{first:?} {second:?}");
    // A right password still gets in after the back-off, which it resets.
    let (status, _) = attempt(b"odd");
    assert_eq!(status, vec![0]);
    let (_, after_success) = attempt(b"pass");
    assert!(
        after_success < Duration::from_millis(200),
        "{after_success:?}"
    );
    server.stop();
}

#[test]
fn command_line_errors_are_one_line_with_distinct_codes() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let one_line = |stderr: &str| {
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    };

    let (code, _, stderr) = run(&["--bind", "127.0.0.1", &port], b"", Some(dir.path()));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("in use"), "{stderr}");
    one_line(&stderr);
    let (code, _, stderr) = run(
        &["--raw", "--bind", "127.0.0.1", &port],
        b"",
        Some(dir.path()),
    );
    assert_eq!(code, Some(3), "{stderr}");
    one_line(&stderr);

    for args in [
        &["70000"][..],
        &["http"],
        &["--bind", "localhost"],
        &["--frame-timeout", "soon"],
        &["--raw", "--fsync"],
    ] {
        let (code, _, stderr) = run(args, b"", Some(dir.path()));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        one_line(&stderr);
    }

    // A missing --dir is created; one that cannot be is exit 4.
    let (code, _, stderr) = run(
        &["--bind", "127.0.0.1", "--dir", "/dev/null/dir", "0"],
        b"",
        None,
    );
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("/dev/null/dir"), "{stderr}");

    let users = dir.path().join("users");
    std::fs::write(
        &users,
        "alice:$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\nbroken line\n",
    )
    .unwrap();
    let (code, _, stderr) = run(
        &[
            "--bind",
            "127.0.0.1",
            "--users",
            users.to_str().unwrap(),
            "0",
        ],
        b"",
        None,
    );
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("users:2:"), "{stderr}");
    one_line(&stderr);
    drop(taken);
}

#[test]
fn dual_stack_by_default() {
    let server = Server::start_with(Options {
        all_interfaces: true,
        ..Options::default()
    });
    let line = server.stderr_text();
    assert!(
        line.contains("listening on [::]:") || line.contains("listening on 0.0.0.0:"),
        "{line}"
    );
    let mut s = server.connect();
    s.write_all(&[login_bytes("v4", b"pw"), CLOSE.to_vec()].concat())
        .unwrap();
    assert_eq!(read_to_end(&mut s), vec![0; 3]);
    if line.contains("[::]") {
        if let Ok(mut s) = TcpStream::connect(("::1", server.addr.port())) {
            s.write_all(&[login_bytes("v6", b"pw"), CLOSE.to_vec()].concat())
                .unwrap();
            assert_eq!(read_to_end(&mut s), vec![0; 3]);
            let text = server.wait_lines("event=close", 2);
            assert!(text.contains("peer=[::1]:"), "{text}");
        }
    }
    let text = server.wait_lines("event=close", 1);
    assert!(
        text.contains("peer=127.0.0.1:"),
        "IPv4-mapped peers are shown as IPv4: {text}"
    );
    server.stop();
}
