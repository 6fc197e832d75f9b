//! Command-line failures: one stderr line each, with its own exit code.
//! The misbehaving servers here are in-test listeners: the real server
//! never stalls or answers garbage.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use common::{run_client, Finished};

fn assert_failure(finished: &Finished, code: i32, needle: &str) {
    assert_eq!(finished.code(), Some(code), "stderr: {}", finished.stderr);
    assert_eq!(
        finished.stderr.lines().count(),
        1,
        "stderr: {}",
        finished.stderr
    );
    assert!(
        finished.stderr.starts_with("msglog-client: "),
        "stderr: {}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains(needle),
        "stderr: {}",
        finished.stderr
    );
    assert!(
        !finished.stderr.contains("panicked"),
        "stderr: {}",
        finished.stderr
    );
}

/// A port nothing listens on.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}

#[test]
fn help_documents_the_exit_codes() {
    let finished = run_client(&["--help"], &[], Vec::new());
    assert_eq!(finished.code(), Some(0));
    let help = std::process::Command::new(common::CLIENT)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains("Exit codes (R: worth a retry later):"),
        "{help}"
    );
    assert!(help.contains("at-least-once"), "{help}");
    assert!(help.contains("MSGLOG_PASSWORD"), "{help}");
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &[][..],
        &["127.0.0.1", "0"],
        &["127.0.0.1", "5555", "--window", "8"],
        &["127.0.0.1", "5555", "--user", "u", "--window", "0"],
        &["127.0.0.1", "5555", "--user", "u", "--timeout", "-1"],
        &["127.0.0.1", "5555", "--password", "secret"],
        &["127.0.0.1", "--user", "u", "-m", ""],
        &["127.0.0.1:5555", "5555"],
        &["[::1", "5555"],
        &["127.0.0.1", "-z"],
        &["127.0.0.1", "--long-lines", "split"],
        &["127.0.0.1", "--user", "u", "--long-lines", "wrap"],
    ] {
        let finished = run_client(args, &[], Vec::new());
        assert_failure(&finished, 2, "(try --help)");
        assert_eq!(
            finished.stderr.matches("help").count(),
            1,
            "{}",
            finished.stderr
        );
    }
}

#[test]
fn an_invalid_user_name_exits_2() {
    let port = closed_port();
    let finished = run_client(
        &["--user", "a]b", "127.0.0.1", &port, "-m", "x"],
        &[("MSGLOG_PASSWORD", "p")],
        Vec::new(),
    );
    assert_failure(&finished, 2, "invalid user name");
}

#[test]
fn a_missing_password_exits_3() {
    let port = closed_port();
    let finished = run_client(
        &["--user", "u", "127.0.0.1", &port, "-m", "x"],
        &[],
        Vec::new(),
    );
    assert_failure(&finished, 3, "no password");
    let args = [
        "--user",
        "u",
        "127.0.0.1",
        &port,
        "--password-file",
        "/nonexistent/password",
    ];
    let finished = run_client(&args, &[], Vec::new());
    assert_failure(
        &finished,
        3,
        "cannot read password file '/nonexistent/password'",
    );
    let finished = run_client(
        &["--user", "u", "127.0.0.1", &port],
        &[("MSGLOG_PASSWORD", "")],
        Vec::new(),
    );
    assert_failure(&finished, 3, "the password is empty");
}

#[test]
fn an_unresolvable_host_exits_4() {
    for args in [
        &["nonexistent.invalid", "5555"][..],
        &["--user", "u", "nonexistent.invalid", "5555"],
    ] {
        let finished = run_client(args, &[("MSGLOG_PASSWORD", "p")], b"x\n".to_vec());
        assert_failure(&finished, 4, "cannot resolve host 'nonexistent.invalid'");
    }
}

#[test]
fn a_refused_connection_exits_5() {
    let port = closed_port();
    let finished = run_client(&["127.0.0.1", &port], &[], b"bytes".to_vec());
    assert_failure(&finished, 5, "cannot connect to 127.0.0.1 port");
    let finished = run_client(&["::1", &port], &[], b"bytes".to_vec());
    if finished.code() == Some(5) {
        assert_failure(&finished, 5, "cannot connect to ::1 port");
    }
    let args = ["--user", "u", "127.0.0.1", &port, "-m", "a", "-m", "b"];
    let finished = run_client(&args, &[("MSGLOG_PASSWORD", "p")], Vec::new());
    assert_failure(
        &finished,
        5,
        "nothing was sent: 2 of 2 messages not acknowledged",
    );
}

#[test]
fn a_line_over_65535_bytes_in_an_argument_exits_7_before_connecting() {
    let port = closed_port();
    let long = "z".repeat(65_536);
    let args = ["--user", "u", "127.0.0.1", &port, "-m", "fine", "-m", &long];
    let finished = run_client(&args, &[("MSGLOG_PASSWORD", "p")], Vec::new());
    assert_failure(&finished, 7, "--message #2 is longer than 65535 bytes");
}

/// Accept one connection and hand it to `serve` on a thread, with a
/// receiver that disconnects when the returned sender is dropped (so the
/// fake can hold the connection open until the test is done).
fn fake_server(
    serve: impl FnOnce(TcpStream, Receiver<()>) + Send + 'static,
) -> (String, Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let (hold, released) = mpsc::channel();
    thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            serve(stream, released);
        }
    });
    (port, hold)
}

#[test]
fn a_server_that_never_answers_times_out_with_11() {
    let (port, _hold) = fake_server(|mut stream, _| {
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
        "0.3",
        "-m",
        "x",
    ];
    let finished = run_client(&args, &[("MSGLOG_PASSWORD", "p")], Vec::new());
    assert_failure(&finished, 11, "timed out");
}

#[test]
fn a_raw_server_that_never_closes_leaves_delivery_unconfirmed() {
    let (port, hold) = fake_server(|mut stream, released| {
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        // End of stream seen; keep the connection open regardless.
        let _ = released.recv();
    });
    let finished = run_client(
        &["127.0.0.1", &port, "--timeout", "0.3"],
        &[],
        b"hello".to_vec(),
    );
    drop(hold);
    assert_failure(
        &finished,
        11,
        "sent 5 bytes, but the server did not close the connection",
    );
}

#[test]
fn a_raw_server_that_stops_reading_times_out_with_11() {
    // Never read: the client's sends stall once the socket buffers are full.
    let (port, hold) = fake_server(|_stream, released| {
        let _ = released.recv();
    });
    let input = vec![0u8; 64 << 20];
    let finished = run_client(&["127.0.0.1", &port, "--timeout", "0.3"], &[], input);
    drop(hold);
    assert_failure(&finished, 11, "timed out");
}

#[test]
fn a_byte_that_is_not_a_status_exits_12() {
    let (port, _hold) = fake_server(|mut stream, _| {
        let mut request = [0u8; 64];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"A");
        let _ = stream.read(&mut request);
    });
    let args = ["--user", "u", "127.0.0.1", &port, "-m", "x"];
    let finished = run_client(&args, &[("MSGLOG_PASSWORD", "p")], Vec::new());
    assert_failure(
        &finished,
        12,
        "answered the user name 'u' with 0x41, not a status byte",
    );
}
