//! `msglog-client --tls` (issue 13): raw mode byte-exact to `socat
//! OPENSSL-LISTEN` and to `msglog-server --raw --tls-cert`, framed mode to
//! `msglog-server --tls-cert`, and every failure named in one line with
//! exit 13: unknown issuer, name mismatch, an expired certificate, a
//! plaintext server, a client certificate required and missing.

// These tests drive processes with signals, pipes and the real Unix tools
// (openssl, socat, nats-server): Unix only, like the other integration tests.
#![cfg(unix)]

#[path = "../../../std-server/tests/common/certs.rs"]
mod certs;
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use certs::{Issued, Leaf, Pki};
use common::*;

fn tls_server_args(issued: &Issued) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        issued.cert.display().to_string(),
        "--tls-key".into(),
        issued.key.display().to_string(),
    ]
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

#[test]
fn raw_mode_over_tls_to_socat_openssl_listen_is_byte_exact() {
    let pki = Pki::new("msglog test CA");
    let server = pki.issue("server", &Leaf::server());
    let out = pki.dir().join("received.bin");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut socat = Command::new("socat")
        .arg("-u")
        .arg(format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={},key={},verify=0",
            server.cert.display(),
            server.key.display()
        ))
        .arg(format!("CREATE:{}", out.display()))
        .stderr(Stdio::piped())
        .spawn()
        .expect("socat runs");
    wait_until("socat listens", || listening(port));
    let input = data(5_000_000);
    let ca = pki.ca();
    let port_text = port.to_string();
    let finished = run_client(
        &[
            "--tls",
            "--ca",
            ca.to_str().unwrap(),
            "localhost",
            &port_text,
        ],
        &[],
        input.clone(),
    );
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    assert!(wait_child(&mut socat, Duration::from_secs(30)).success());
    assert_eq!(std::fs::read(&out).unwrap(), input);
}

/// Whether something listens on 127.0.0.1:`port`, without connecting to it
/// (socat serves one connection only).
fn listening(port: u16) -> bool {
    let hex = format!(":{port:04X} ");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .any(|line| line.contains(&format!("0100007F{hex}")) && line.contains(" 0A "))
}

#[test]
fn raw_and_framed_over_tls_to_msglog_server() {
    let pki = Pki::new("msglog test CA");
    let issued = pki.issue("server", &Leaf::server());
    let args = tls_server_args(&issued);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = pki.dir().join("raw.bin");
    let raw = Server::raw_with(std::fs::File::create(&out).unwrap(), &args);
    let ca = pki.ca();
    let input = data(3_000_000);
    let port = raw.port.to_string();
    let finished = run_client(
        &["--tls", "--ca", ca.to_str().unwrap(), "localhost", &port],
        &[],
        input.clone(),
    );
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    drop(raw);
    assert_eq!(std::fs::read(&out).unwrap(), input);

    let dir = tempfile::tempdir().unwrap();
    let framed = Server::framed_with(dir.path(), 0, &args, |_| {});
    let port = framed.port.to_string();
    let finished = run_client(
        &[
            "--tls",
            "--ca",
            ca.to_str().unwrap(),
            "--user",
            "alice",
            "127.0.0.1",
            &port,
            "--tls-server-name",
            "localhost",
        ],
        &[("MSGLOG_PASSWORD", "pw")],
        b"one\ntwo\n".to_vec(),
    );
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    assert_eq!(
        std::fs::read(dir.path().join("messages.log")).unwrap(),
        b"[alice]: one\r\n[alice]: two\r\n"
    );
}

#[test]
fn tls_failures_are_named_with_exit_13() {
    let pki = Pki::new("msglog test CA");
    let stranger = Pki::new("a stranger's CA");
    let good = pki.issue("server", &Leaf::server());
    let expired = pki.issue(
        "expired",
        &Leaf {
            expired: true,
            ..Leaf::server()
        },
    );
    let client = pki.issue("client", &Leaf::client("device-1"));
    let ca = pki.ca();
    let ca = ca.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = tls_server_args(&good);
    let mut with_ca: Vec<&str> = args.iter().map(String::as_str).collect();
    with_ca.extend(["--tls-client-ca", ca]);
    let server = Server::framed_with(
        dir.path(),
        0,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        |_| {},
    );
    let expired_args = tls_server_args(&expired);
    let expired_server = Server::framed_with(
        tempfile::tempdir().unwrap().path(),
        0,
        &expired_args.iter().map(String::as_str).collect::<Vec<_>>(),
        |_| {},
    );
    let plain = Server::framed(tempfile::tempdir().unwrap().path());
    let demanding = Server::framed_with(tempfile::tempdir().unwrap().path(), 0, &with_ca, |_| {});
    let stranger_ca = stranger.ca();
    let cert = client.cert.to_str().unwrap();
    let key = client.key.to_str().unwrap();
    let port = |server: &Server| server.port.to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--ca".into(), stranger_ca.display().to_string(), "localhost".into(), port(&server)],
            "the server's certificate is not signed by a trusted CA (unknown issuer); give the CA that signed it with --ca FILE",
        ),
        (
            vec!["--ca".into(), ca.into(), "--tls-server-name".into(), "logs.example".into(), "127.0.0.1".into(), port(&server)],
            "the server's certificate is not valid for 'logs.example' (name mismatch",
        ),
        (
            vec!["--ca".into(), ca.into(), "localhost".into(), port(&expired_server)],
            "the server's certificate has expired",
        ),
        (
            vec!["--ca".into(), ca.into(), "localhost".into(), port(&plain)],
            "the server does not speak TLS as expected",
        ),
        (
            vec!["--ca".into(), ca.into(), "localhost".into(), port(&demanding)],
            "the server refused the client certificate",
        ),
    ];
    for (args, says) in cases {
        for framed in [false, true] {
            let mut argv: Vec<&str> = vec!["--tls"];
            if framed {
                argv.extend(["--user", "alice"]);
            }
            argv.extend(args.iter().map(String::as_str));
            let finished = run_client(&argv, &[("MSGLOG_PASSWORD", "pw")], b"hello\n".to_vec());
            assert_eq!(finished.code(), Some(13), "{argv:?}: {}", finished.stderr);
            assert!(
                finished.stderr.contains(says),
                "{argv:?}: {}",
                finished.stderr
            );
            assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
        }
    }
    // With the certificate the demanding server admits the client.
    let port = port(&demanding);
    let finished = run_client(
        &[
            "--tls",
            "--ca",
            ca,
            "--cert",
            cert,
            "--key",
            key,
            "--user",
            "device-1",
            "localhost",
            &port,
        ],
        &[("MSGLOG_PASSWORD", "pw")],
        b"hello\n".to_vec(),
    );
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
}
