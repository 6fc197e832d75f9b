//! `ConnectionTable` and `Connection` against real `msglog-server`s.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use msglog_client::{Connection, ConnectionTable, Credentials, Error, Options, Stage};

use common::{record, records, wait_until, Server};

fn options() -> Options {
    Options {
        connect_timeout: Some(Duration::from_secs(5)),
        io_timeout: Some(Duration::from_secs(10)),
        window: 8,
        ..Options::default()
    }
}

/// `event=close` lines with this reason in `transactions.log`.
fn closes(dir: &std::path::Path, reason: &str) -> usize {
    let log = fs::read_to_string(dir.join("transactions.log")).unwrap_or_default();
    log.lines()
        .filter(|line| line.contains("event=close") && line.contains(&format!("reason={reason}")))
        .count()
}

#[test]
#[cfg_attr(
    windows,
    ignore = "under wine a killed server's sockets close a moment after its process ends, so a send can still go to the dead connection"
)]
fn a_table_sends_to_two_servers_and_survives_a_restart() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server_a = Server::framed(dir_a.path());
    let mut server_b = Server::framed(dir_b.path());
    let (a, b) = (server_a.address(), server_b.address());
    let alice = Credentials::new("alice", "secret");
    let bob = Credentials::new("bob", "hunter2");

    let mut table = ConnectionTable::new(options());
    table.send(&a, &alice, b"a1").unwrap();
    table.send(&b, &alice, b"b1").unwrap();
    table.send(&a, &alice, b"a2").unwrap();
    table.send(&a, &bob, b"a3 from bob").unwrap();
    assert_eq!(table.len(), 3, "one connection per server and user");
    assert_eq!(table.send_pipelined(&b, &alice, ["b2", "b3"]).unwrap(), 2);

    // B restarts between sends: the table notices the dead connection and reconnects.
    server_b.restart(&[]);
    table.send(&b, &alice, b"b4 after restart").unwrap();
    table.send(&a, &alice, b"a4").unwrap();

    // B is down: the send fails and its connection is dropped...
    server_b.kill();
    let error = table.send(&b, &alice, b"b5 lost").unwrap_err();
    assert!(
        matches!(
            error,
            Error::Disconnected { .. } | Error::Io(_) | Error::Connect { .. }
        ),
        "{error:?}"
    );
    assert_eq!(table.len(), 2);
    // ...and re-established once B is back.
    server_b.restart(&[]);
    table.send(&b, &alice, b"b6").unwrap();
    assert_eq!(table.len(), 3);

    assert_eq!(
        records(dir_a.path()),
        vec![
            record("alice", b"a1"),
            record("alice", b"a2"),
            record("bob", b"a3 from bob"),
            record("alice", b"a4"),
        ]
    );
    assert_eq!(
        records(dir_b.path()),
        vec![
            record("alice", b"b1"),
            record("alice", b"b2"),
            record("alice", b"b3"),
            record("alice", b"b4 after restart"),
            record("alice", b"b6"),
        ]
    );

    // Dropping the table ends every session with CLOSE.
    drop(table);
    wait_until("both sessions on A closed with CLOSE", || {
        closes(dir_a.path(), "close") >= 2
    });
    wait_until("the session on B closed with CLOSE", || {
        closes(dir_b.path(), "close") >= 1
    });
}

#[test]
#[cfg_attr(
    windows,
    ignore = "under wine the server's goodbye byte can reach the client after the log line this test waits for"
)]
fn a_connection_timed_out_by_the_server_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed_with(dir.path(), 0, &["--idle-timeout", "200ms"], |_| {});
    let alice = Credentials::new("alice", "secret");
    let mut table = ConnectionTable::new(options());
    table.send(&server.address(), &alice, b"before").unwrap();
    // The server answers an idle timeout with 0xFF and closes; that byte
    // must not be taken for the status of the next message.
    wait_until("the server timed the connection out", || {
        closes(dir.path(), "timeout") >= 1
    });
    table.send(&server.address(), &alice, b"after").unwrap();
    assert_eq!(
        records(dir.path()),
        vec![record("alice", b"before"), record("alice", b"after")]
    );
}

#[test]
fn a_connection_reports_the_stage_it_failed_at() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed_with(dir.path(), 0, &["--auth", "legacy-parity"], |_| {});
    let even = Credentials::new("alice", "bad");
    let error = Connection::open(server.address().as_str(), &even, &options()).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Rejected {
                stage: Stage::Password
            }
        ),
        "{error:?}"
    );

    let invalid = Credentials::new("al[ice]", "a");
    let error = Connection::open(server.address().as_str(), &invalid, &options()).unwrap_err();
    assert!(matches!(error, Error::InvalidName), "{error:?}");

    let odd = Credentials::new("alice", "a");
    let mut connection = Connection::open(server.address().as_str(), &odd, &options()).unwrap();
    connection.send(b"one").unwrap();
    let too_long = vec![b'x'; 65_536];
    assert!(matches!(connection.send(&too_long), Err(Error::Invalid(_))));
    assert!(
        connection.is_open(),
        "an invalid message sends nothing and ends nothing"
    );
    let error = connection
        .send_pipelined([&b"two"[..], b"", b"never"])
        .unwrap_err();
    assert!(matches!(error, Error::Invalid(_)), "{error:?}");
    assert_eq!(connection.messages_acknowledged(), 2);
    connection.close().unwrap();
    assert!(matches!(connection.send(b"late"), Err(Error::SessionEnded)));
    assert_eq!(
        records(dir.path()),
        vec![record("alice", b"one"), record("alice", b"two")]
    );
}

#[test]
fn connection_errors_are_typed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let alice = Credentials::new("alice", "a");
    let error = Connection::open(address, &alice, &options()).unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    let error = Connection::open("nonexistent.invalid:5555", &alice, &options()).unwrap_err();
    assert!(matches!(error, Error::Resolve(_)), "{error:?}");
}

/// The `connection_table` example program, built once.
fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| common::cargo_build("msglog-client", "--example", "connection_table"))
}

#[test]
fn the_connection_table_example_sends_to_two_servers() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (Server::framed(dir_a.path()), Server::framed(dir_b.path()));
    let output = Command::new(example_binary())
        .args([a.address(), b.address()])
        .env("MSGLOG_PASSWORD", "secret")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "2 connections, every message acknowledged\n"
    );
    for server in [&a, &b] {
        let expected: Vec<Vec<u8>> = (1..=3)
            .map(|round| {
                record(
                    "example",
                    format!("round {round} to {}", server.address()).as_bytes(),
                )
            })
            .collect();
        assert_eq!(records(&server.dir), expected);
        // One connection per server: one authentication, ended by CLOSE.
        wait_until("the session closed with CLOSE", || {
            closes(&server.dir, "close") == 1
        });
        let log = fs::read_to_string(server.dir.join("transactions.log")).unwrap();
        assert_eq!(log.matches("event=open").count(), 1, "{log}");
    }
}
