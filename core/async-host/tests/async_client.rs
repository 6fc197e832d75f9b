//! The core's async client under tokio against the real `msglog-server`:
//! pipelining, a refused password, a server that closes mid-window (a
//! refused message; a crash), and timeouts (the client's and the server's).

// These tests drive processes with signals, pipes, ptys and resource
// limits: Unix only (Windows is covered by the unit tests under wine and
// scripts/wine/e2e.sh).
#![cfg(unix)]

#[path = "../../../std-client/tests/common/mod.rs"]
mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{record, records, wait_until, Server};
use msglog_async_host::{connect, nanos, Connection, TokioTimer};
use msglog_core::asynch::Client;
use msglog_core::{ClientError, Stage};

/// Run `future` to its end on a runtime of its own.
fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// An async client of `server` with at most `window` in flight, each
/// status awaited at most `timeout`.
async fn client(
    server: &Server,
    window: usize,
    timeout: Duration,
) -> Client<Connection, TokioTimer> {
    let socket = connect(server.address()).await.expect("connect");
    Client::with_timer(socket, window, TokioTimer::new(), Some(nanos(timeout)))
}

const PATIENT: Duration = Duration::from_secs(20);

#[test]
fn pipelined_messages_reach_the_real_server_and_are_all_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let messages: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("reading {i}: t=21.{}C\tok", i % 10).into_bytes())
        .collect();
    let most_in_flight = run(async {
        let mut client = client(&server, 16, PATIENT).await;
        client.login("alice", b"secret").await.unwrap();
        let mut most = 0;
        for message in &messages {
            client.send(message).await.unwrap();
            most = most.max(client.in_flight());
        }
        client.close().await.unwrap();
        assert_eq!(client.messages_acknowledged(), 200);
        most
    });
    assert_eq!(most_in_flight, 16, "the window was full: pipelined");
    let expected: Vec<Vec<u8>> = messages.iter().map(|m| record("alice", m)).collect();
    assert_eq!(records(dir.path()), expected);
    let log = std::fs::read_to_string(dir.path().join("transactions.log")).unwrap();
    assert!(log.contains("tag=CLOSE len=- outcome=ok"), "{log}");
    assert!(log.contains("event=close reason=close"), "{log}");
}

#[test]
fn a_refused_password_is_reported_with_its_stage() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed_with(dir.path(), 0, &["--auth", "legacy-parity"], |_| {});
    let result = run(async {
        let mut client = client(&server, 4, PATIENT).await;
        // 'b' (0x62) is even: the original server's rule refuses it.
        let refused = client.login("alice", b"bad").await;
        (refused, client.send(b"after").await)
    });
    assert!(
        matches!(
            result,
            (
                Err(ClientError::Rejected {
                    stage: Stage::Password
                }),
                Err(ClientError::SessionEnded)
            )
        ),
        "{result:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("transactions.log")).unwrap();
    assert!(
        log.contains("tag=PASSWORD len=- outcome=auth-failed"),
        "{log}"
    );
    assert!(records(dir.path()).is_empty());
}

/// A server whose files cannot grow past `bytes` (RLIMIT_FSIZE; SIGXFSZ
/// ignored so that writes fail with EFBIG instead of killing it).
fn server_with_file_limit(dir: &Path, bytes: u64) -> Server {
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

#[test]
fn a_server_that_refuses_a_message_mid_window_closes_and_the_client_names_it() {
    let dir = tempfile::tempdir().unwrap();
    // Ten 1000-byte records fit, the eleventh does not.
    let server = server_with_file_limit(dir.path(), 10_500);
    let messages: Vec<Vec<u8>> = (1..=30)
        .map(|i| format!("{i:04}{}", "m".repeat(989)).into_bytes())
        .collect();
    let (result, acknowledged) = run(async {
        let mut client = client(&server, 16, PATIENT).await;
        let result = async {
            client.login("u", b"pw").await?;
            for message in &messages {
                client.send(message).await?;
            }
            client.close().await
        }
        .await;
        (result, client.messages_acknowledged())
    });
    // The first message not stored is named, and every one before it was
    // acknowledged. The server commits what one read brought as one batch
    // and refuses the batch's first message when it cannot write it whole,
    // so with a window that may be an earlier one than the eleventh.
    let Err(ClientError::Rejected {
        stage: Stage::Message(refused),
    }) = result
    else {
        panic!("expected a refused message, got {result:?}");
    };
    assert!(refused <= 10, "message {refused} refused");
    assert_eq!(acknowledged, refused);
    let expected: Vec<Vec<u8>> = messages.iter().map(|m| record("u", m)).collect();
    let logged = records(dir.path());
    assert!(expected.starts_with(&logged), "whole records, in order");
    assert!(logged.len() as u64 >= refused);
}

#[test]
fn a_server_that_dies_mid_window_is_a_lost_connection_not_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::framed(dir.path());
    let (result, acknowledged) = run(async {
        let mut client = client(&server, 16, PATIENT).await;
        client.login("alice", b"secret").await.unwrap();
        // Stopped, the server reads nothing more; killed, it never answers.
        server.signal(libc::SIGSTOP);
        for i in 0..5 {
            client.send(format!("lost {i}").as_bytes()).await.unwrap();
        }
        assert_eq!(client.in_flight(), 5);
        server.kill();
        let result = client.wait().await;
        (result, client.messages_acknowledged())
    });
    assert_eq!(acknowledged, 0);
    match result {
        Err(ClientError::Disconnected {
            stage: Stage::Message(0),
        }) => {}
        Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected a lost connection at message 1, got {other:?}"),
    }
}

#[test]
fn a_status_that_does_not_come_times_out_on_tokios_clock() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let timeout = Duration::from_millis(300);
    let (result, waited) = run(async {
        let mut client = client(&server, 4, timeout).await;
        client.login("alice", b"secret").await.unwrap();
        server.signal(libc::SIGSTOP);
        let sent = Instant::now();
        client.send(b"never answered").await.unwrap();
        let result = client.wait().await;
        (result, sent.elapsed())
    });
    server.signal(libc::SIGCONT);
    assert!(
        matches!(
            result,
            Err(ClientError::TimedOut {
                stage: Stage::Message(0)
            })
        ),
        "{result:?}"
    );
    assert!(waited >= timeout, "gave up after {waited:?}");
    assert!(waited < timeout + Duration::from_secs(10), "{waited:?}");
}

#[test]
fn the_servers_idle_timeout_ends_the_session_and_the_next_message_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed_with(dir.path(), 0, &["--idle-timeout", "300ms"], |_| {});
    let log = dir.path().join("transactions.log");
    let result = run(async {
        let mut client = client(&server, 4, PATIENT).await;
        client.login("alice", b"secret").await.unwrap();
        wait_until("the server times the session out", || {
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains("reason=timeout"))
        });
        match client.send(b"too late").await {
            // The server's 0xFF, sent before the message, answers it.
            Ok(()) => client.wait().await,
            // Or the closed connection refused the message: a 0xFF that
            // answers no transaction explains nothing (PROTOCOL.md, decision 13).
            failed => failed,
        }
    });
    match result {
        Err(ClientError::Rejected {
            stage: Stage::Message(0),
        }) => {}
        Err(ClientError::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) => {}
        other => panic!("expected the message refused, got {other:?}"),
    }
    assert!(records(dir.path()).is_empty());
}
