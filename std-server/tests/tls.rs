//! TLS (issue 13) against the real binary: third-party TLS clients
//! (Python's `ssl` with the original client's bytes, `openssl s_client`,
//! `socat OPENSSL:`) byte-exact, every TLS failure as one `reason=tls`
//! line, client certificates and the NAME rule, SIGHUP rotation, the
//! plaintext warning, and raw mode's close_notify rule. Certificates are
//! made by each test (rcgen).

// These tests drive processes with signals, pipes and the real Unix tools
// (openssl, socat, nats-server): Unix only, like the other integration tests.
#![cfg(unix)]

#[path = "common/certs.rs"]
mod certs;
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certs::{Issued, Key, Leaf, Pki};
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// NAME, PASSWORD (odd first byte: legacy-parity accepts it), two messages,
/// CLOSE: the original Python client's transactions (see
/// fuzz/seeds/make_seeds.py and `framed::replay_of_the_original_python_client`).
const ORIGINAL: [&[u8]; 5] = [
    b"\x01\x06\x00MyUser",
    b"\x02\x06\x00secret",
    b"\x03\x0b\x00Hello world",
    b"\x03\x0f\x00Second message!",
    b"\x04",
];
const ORIGINAL_RECORDS: &[u8] = b"[MyUser]: Hello world\r\n[MyUser]: Second message!\r\n";

fn tls_args(server: &Issued) -> Vec<&str> {
    vec![
        "--tls-cert",
        server.cert.to_str().unwrap(),
        "--tls-key",
        server.key.to_str().unwrap(),
    ]
}

fn start_tls(server: &Issued, more: &[&str]) -> Server {
    let mut args = tls_args(server);
    args.extend_from_slice(more);
    Server::start(&args)
}

/// A rustls client session: the statuses read until the server closes,
/// or the TLS error (as text) that ended it.
fn rustls_session(
    addr: SocketAddr,
    ca: &Path,
    identity: Option<&Issued>,
    bytes: &[u8],
) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(issued) => {
            let chain = CertificateDer::pem_file_iter(&issued.cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(&issued.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, socket);
    tls.write_all(bytes).map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    let mut statuses = Vec::new();
    match tls.read_to_end(&mut statuses) {
        Ok(_) => Ok(statuses),
        Err(e) => Err(format!("{e} (after {statuses:?})")),
    }
}

fn session_bytes() -> Vec<u8> {
    ORIGINAL.concat()
}

/// The connection id of a transactions.log line.
fn conn_of(line: &str) -> u64 {
    line.split(' ')
        .find_map(|f| f.strip_prefix("conn="))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no conn= in {line}"))
}

/// The lines of connection `conn` after its `conn=` and `peer=` fields.
fn fields_of(text: &str, conn: u64) -> Vec<String> {
    text.lines()
        .filter(|line| conn_of(line) == conn)
        .map(|line| line.splitn(4, ' ').nth(3).unwrap_or_default().to_owned())
        .collect()
}

/// The event=open line of the only connection.
fn open_line(text: &str) -> String {
    text.lines()
        .find(|line| line.contains("event=open"))
        .unwrap_or_else(|| panic!("no open line:\n{text}"))
        .to_owned()
}

#[test]
fn python_ssl_wraps_the_original_clients_bytes() {
    let pki = Pki::new("msglog test CA");
    let server_cert = pki.issue("server", &Leaf::server());
    let server = start_tls(&server_cert, &["--auth", "legacy-parity"]);
    // The original client's loop: send a transaction, read one status byte.
    let script = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=ca)
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
s = context.wrap_socket(raw, server_hostname="localhost")
statuses = b""
for transaction in sys.argv[3:]:
    s.sendall(bytes.fromhex(transaction))
    statuses += s.recv(1)
print(statuses.hex(), s.version())
"#;
    let hex: Vec<String> = ORIGINAL
        .iter()
        .map(|t| t.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let port = server.addr.port().to_string();
    let ca = pki.ca();
    let mut args = vec![port.as_str(), ca.to_str().unwrap()];
    args.extend(hex.iter().map(String::as_str));
    let output = certs::python(script, &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "0000000000 TLSv1.3");
    assert_eq!(server.messages(), ORIGINAL_RECORDS);
    let text = server.wait_lines("event=close", 1);
    let lines = fields_of(&text, conn_of(&open_line(&text)));
    assert_eq!(
        lines,
        [
            "event=open tls=1.3",
            "tag=NAME len=6 outcome=ok name=\"MyUser\"",
            "tag=PASSWORD len=- outcome=ok",
            "tag=MESSAGE len=11 outcome=ok",
            "tag=MESSAGE len=15 outcome=ok",
            "tag=CLOSE len=- outcome=ok",
            "event=close reason=close",
        ]
    );
    server.stop();
}

#[test]
fn openssl_s_client_and_socat_are_answered_byte_exactly() {
    let pki = Pki::new("msglog test CA");
    let server_cert = pki.issue("server", &Leaf::server());
    let server = start_tls(&server_cert, &["--auth", "legacy-parity"]);
    let connect = format!("127.0.0.1:{}", server.addr.port());
    let ca = pki.ca();
    // s_client -quiet sends stdin and waits for the server to close.
    for version in ["-tls1_3", "-tls1_2"] {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-quiet",
                "-verify_return_error",
                version,
                "-connect",
            ])
            .arg(&connect)
            .args(["-servername", "localhost", "-CAfile"])
            .arg(&ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&session_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.stdout,
            [0, 0, 0, 0, 0],
            "openssl {version}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut child = Command::new("socat")
        .arg("-")
        .arg(format!(
            "OPENSSL:{connect},cafile={},commonname=localhost",
            ca.display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("socat runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&session_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.stdout,
        [0, 0, 0, 0, 0],
        "socat: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(server.messages(), ORIGINAL_RECORDS.repeat(3));
    let text = server.wait_lines("event=close reason=close", 3);
    let opens: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("event=open"))
        .map(|l| l.split_once(" event=").unwrap().1)
        .collect();
    assert_eq!(opens, ["open tls=1.3", "open tls=1.2", "open tls=1.3"]);
    server.stop();
}

#[test]
fn rsa_ed25519_and_a_full_chain_are_served() {
    let pki = Pki::new("msglog test CA");
    for (file, key, via_intermediate) in [
        ("rsa", Key::Rsa2048, false),
        ("ed25519", Key::Ed25519, false),
        ("chain", Key::EcdsaP256, true),
    ] {
        let leaf = Leaf {
            key,
            ..Leaf::server()
        };
        let issued = if via_intermediate {
            pki.issue_via_intermediate(file, &leaf)
        } else {
            pki.issue(file, &leaf)
        };
        let server = start_tls(&issued, &[]);
        // The client trusts only the root: the chain file must carry the intermediate.
        let statuses = rustls_session(
            server.addr,
            &pki.ca(),
            None,
            &[&login_bytes("k", b"pw")[..], b"\x04"].concat(),
        );
        assert_eq!(statuses, Ok(vec![0, 0, 0]), "{file}");
        server.stop();
    }
}

#[test]
fn plaintext_on_a_tls_port_and_tls_on_a_plaintext_port_are_refused() {
    let pki = Pki::new("msglog test CA");
    let server_cert = pki.issue("server", &Leaf::server());
    let server = start_tls(&server_cert, &["--tls-port", "0"]);
    // PORT stays plaintext: the original client's bytes work as before.
    let mut plain = server.connect();
    plain.write_all(&session_bytes()).unwrap();
    assert_eq!(read_to_end(&mut plain), [0, 0, 0, 0, 0]);
    let line = server
        .wait_stderr(|t| t.contains("beside the plaintext port"))
        .unwrap();
    let tls_line = line
        .lines()
        .find(|l| l.contains("beside the plaintext"))
        .unwrap();
    let tls_addr: SocketAddr = tls_line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The original client's bytes on the TLS port: a TLS alert, one line.
    let mut s = TcpStream::connect(tls_addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&session_bytes()).unwrap();
    let answer = read_to_end(&mut s);
    assert_eq!(
        answer.first(),
        Some(&0x15),
        "a TLS alert record: {answer:?}"
    );
    // A TLS client on the plaintext port: refused at its first byte (0x16).
    let refused = rustls_session(server.addr, &pki.ca(), None, b"\x04");
    assert!(refused.is_err(), "{refused:?}");
    // And TLS on the TLS port works.
    let statuses = rustls_session(tls_addr, &pki.ca(), None, &session_bytes());
    assert_eq!(statuses, Ok(vec![0; 5]));
    let text = server.wait_lines("event=close", 4);
    let tls_fail: Vec<&str> = text.lines().filter(|l| l.contains("reason=tls")).collect();
    assert_eq!(tls_fail.len(), 1, "{text}");
    assert!(tls_fail[0].contains("not a TLS handshake"), "{text}");
    let conn = conn_of(tls_fail[0]);
    assert_eq!(
        fields_of(&text, conn).len(),
        1,
        "one line for the failed handshake:\n{text}"
    );
    assert!(
        text.contains("tag=0x16 len=- outcome=unknown-tag"),
        "{text}"
    );
    server.stop();
}

#[test]
fn a_handshake_that_never_finishes_is_closed_at_the_frame_timeout() {
    let pki = Pki::new("msglog test CA");
    let server_cert = pki.issue("server", &Leaf::server());
    let server = start_tls(
        &server_cert,
        &["--frame-timeout", "1s", "--idle-timeout", "60s"],
    );
    // One says nothing; one sends half a ClientHello.
    let mut silent = server.connect();
    let mut half = server.connect();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let opened = Instant::now();
    assert_eq!(read_to_end(&mut silent), b"");
    let _ = read_to_end(&mut half);
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < PATIENCE,
        "{waited:?}"
    );
    let text = server.wait_lines("reason=tls", 2);
    for line in text.lines() {
        assert!(
            line.contains("event=close reason=tls error=\"the TLS handshake did not finish within the frame timeout\""),
            "{text}"
        );
    }
    assert_eq!(text.lines().count(), 2, "{text}");
    server.stop();
}

#[test]
fn client_certificates_are_required_and_named_in_the_open_line() {
    let pki = Pki::new("msglog test CA");
    let other = Pki::new("another CA");
    let server_cert = pki.issue("server", &Leaf::server());
    let good = pki.issue("device-1", &Leaf::client("device-1"));
    let expired = pki.issue(
        "expired",
        &Leaf {
            expired: true,
            ..Leaf::client("device-1")
        },
    );
    let foreign = other.issue("foreign", &Leaf::client("device-1"));
    let ca = pki.ca();
    let server = start_tls(&server_cert, &["--tls-client-ca", ca.to_str().unwrap()]);
    let bytes = [&login_bytes("device-1", b"pw")[..], b"\x04"].concat();
    assert_eq!(
        rustls_session(server.addr, &ca, Some(&good), &bytes),
        Ok(vec![0, 0, 0])
    );
    for (what, identity) in [
        ("none", None),
        ("expired", Some(&expired)),
        ("foreign", Some(&foreign)),
    ] {
        let result = rustls_session(server.addr, &ca, identity, &bytes);
        assert!(result.is_err(), "{what}: {result:?}");
    }
    let text = server.wait_lines("reason=tls", 3);
    assert!(
        open_line(&text).ends_with("event=open tls=1.3 subject=\"CN=device-1, O=msglog tests\""),
        "{text}"
    );
    let failures: Vec<&str> = text.lines().filter(|l| l.contains("reason=tls")).collect();
    assert!(
        failures[0].contains("error=\"peer sent no certificates\""),
        "{text}"
    );
    assert!(failures[1].contains("certificate expired"), "{text}");
    assert!(failures[2].contains("UnknownIssuer"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("event=open")).count(),
        1,
        "{text}"
    );
    server.stop();
}

#[test]
fn require_cert_name_admits_only_names_the_certificate_proves() {
    let pki = Pki::new("msglog test CA");
    let server_cert = pki.issue("server", &Leaf::server());
    let device = pki.issue(
        "device",
        &Leaf {
            names: vec!["sensor.example"],
            uris: vec!["urn:msglog:unit-9"],
            ..Leaf::client("device-1")
        },
    );
    let ca = pki.ca();
    let server = start_tls(
        &server_cert,
        &[
            "--tls-client-ca",
            ca.to_str().unwrap(),
            "--tls-require-cert-name",
        ],
    );
    for name in ["device-1", "sensor.example", "urn:msglog:unit-9"] {
        let bytes = [&login_bytes(name, b"pw")[..], &message(b"hi"), b"\x04"].concat();
        assert_eq!(
            rustls_session(server.addr, &ca, Some(&device), &bytes),
            Ok(vec![0; 4]),
            "{name}"
        );
    }
    for name in ["device-2", "Device-1", "sensor"] {
        let bytes = [&login_bytes(name, b"pw")[..], &message(b"never"), b"\x04"].concat();
        assert_eq!(
            rustls_session(server.addr, &ca, Some(&device), &bytes),
            Ok(vec![0xFF]),
            "{name}"
        );
    }
    assert_eq!(
        server.messages(),
        b"[device-1]: hi\r\n[sensor.example]: hi\r\n[urn:msglog:unit-9]: hi\r\n"
    );
    let text = server.wait_lines("reason=rejected", 3);
    assert!(
        text.contains("tag=NAME len=8 outcome=auth-failed name=\"device-2\""),
        "{text}"
    );
    assert!(
        text.contains(
            "event=close reason=rejected error=\"the client certificate does not prove this NAME\""
        ),
        "{text}"
    );
    server.stop();
}

#[test]
fn sighup_rotates_the_certificate_and_a_broken_file_keeps_the_old() {
    let first = Pki::new("first CA");
    let second = Pki::new("second CA");
    let old = first.issue("server", &Leaf::server());
    let new = second.issue("server", &Leaf::server());
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::copy(&old.cert, &cert).unwrap();
    std::fs::copy(&old.key, &key).unwrap();
    let live = Issued {
        cert: cert.clone(),
        key: key.clone(),
    };
    let server = start_tls(&live, &[]);
    let bytes = b"\x04";
    assert_eq!(
        rustls_session(server.addr, &first.ca(), None, bytes),
        Ok(vec![0])
    );
    std::fs::copy(&new.cert, &cert).unwrap();
    std::fs::copy(&new.key, &key).unwrap();
    server.signal(libc::SIGHUP);
    server
        .wait_stderr(|t| t.contains("SIGHUP: reloaded the TLS certificate"))
        .expect("reloaded");
    assert_eq!(
        rustls_session(server.addr, &second.ca(), None, bytes),
        Ok(vec![0])
    );
    assert!(rustls_session(server.addr, &first.ca(), None, bytes).is_err());
    // A broken key: reported, and the certificate in use stays.
    std::fs::write(&key, "not a key\n").unwrap();
    server.signal(libc::SIGHUP);
    let text = server
        .wait_stderr(|t| t.contains("cannot reload TLS"))
        .expect("reported");
    assert!(
        text.contains("keeping the certificate and key loaded before"),
        "{text}"
    );
    assert_eq!(
        rustls_session(server.addr, &second.ca(), None, bytes),
        Ok(vec![0])
    );
    server.stop();
}

#[test]
fn a_plaintext_listener_on_other_addresses_is_warned_about() {
    let pki = Pki::new("msglog test CA");
    let server_cert = pki.issue("server", &Leaf::server());
    let warning = "cross the network in clear";
    // The open-authentication warning comes last: after it, all start-up lines are out.
    let started = |server: &Server| {
        server
            .wait_stderr(|t| t.contains("ANY name"))
            .expect("start-up warnings")
    };
    let all = Server::start_with(Options {
        all_interfaces: true,
        ..options(&[])
    });
    assert!(started(&all).contains(warning), "{}", all.stderr_text());
    all.stop();
    let loopback = Server::start(&[]);
    assert!(!started(&loopback).contains(warning));
    loopback.stop();
    let tls = Server::start_with(Options {
        all_interfaces: true,
        ..options(&tls_args(&server_cert))
    });
    assert!(!started(&tls).contains(warning), "{}", tls.stderr_text());
    tls.stop();
}

#[test]
fn bad_tls_files_stop_the_start_with_exit_13() {
    let pki = Pki::new("msglog test CA");
    let good = pki.issue("server", &Leaf::server());
    let other = pki.issue("other", &Leaf::server());
    let missing = pki.dir().join("missing.pem");
    let garbage = pki.dir().join("garbage.pem");
    std::fs::write(&garbage, "hello\n").unwrap();
    for (cert, key, says) in [
        (&missing, &good.key, "cannot read the TLS certificate"),
        (&garbage, &good.key, "holds no certificate"),
        (&good.cert, &garbage, "holds no private key"),
        (&good.cert, &other.key, "cannot be used"),
    ] {
        let (code, _, stderr) = run(
            &[
                "--bind",
                "127.0.0.1",
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
                "0",
            ],
            b"",
            Some(pki.dir()),
        );
        assert_eq!(code, Some(13), "{stderr}");
        assert!(
            stderr.contains(says) && stderr.lines().count() == 1,
            "{stderr}"
        );
        // `check` loads them as a start does: the same line, the same code.
        let (code, _, check_stderr) = run(
            &[
                "check",
                "--bind",
                "127.0.0.1",
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
                "0",
            ],
            b"",
            Some(pki.dir()),
        );
        assert_eq!(code, Some(13), "check: {check_stderr}");
        assert!(check_stderr.contains(says), "check: {check_stderr}");
    }
}

#[test]
fn check_loads_the_tls_files_and_names_the_tls_port() {
    let pki = Pki::new("msglog test CA");
    let good = pki.issue("server", &Leaf::server());
    let (code, stdout, stderr) = run(
        &[
            "check",
            "--dir",
            "logs",
            "--bind",
            "127.0.0.1",
            "--tls-cert",
            good.cert.to_str().unwrap(),
            "--tls-key",
            good.key.to_str().unwrap(),
            "--tls-client-ca",
            pki.ca().to_str().unwrap(),
            "--tls-port",
            "0",
            "0",
        ],
        b"",
        Some(pki.dir()),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("would speak TLS on 127.0.0.1:0 beside the plaintext port with")
            && stdout.contains("client certificates from"),
        "{stdout}"
    );
}

/// Raw mode over TLS: socat's stream byte-exact, confirmed by the
/// server's close_notify; a stream that ends without close_notify is reset.
#[test]
fn raw_mode_over_tls_confirms_with_close_notify() {
    let pki = Pki::new("msglog test CA");
    let server_cert = pki.issue("server", &Leaf::server());
    let mut server = Server::start_with(Options {
        raw: true,
        ..options(&tls_args(&server_cert))
    });
    let mut stdout = server.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).unwrap();
        out
    });
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let input = pki.dir().join("input.bin");
    std::fs::write(&input, &data).unwrap();
    let status = Command::new("socat")
        .arg("-u")
        .arg(format!("OPEN:{}", input.display()))
        .arg(format!(
            "OPENSSL:127.0.0.1:{},cafile={},commonname=localhost",
            server.addr.port(),
            pki.ca().display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    // Python ends its stream with a TCP FIN but no close_notify (shutdown
    // of the socket under the TLS session): not confirmed, reset.
    let script = r#"
import os, socket, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[2])
s = context.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10), server_hostname="localhost")
s.sendall(b"tail without close_notify")
raw = socket.socket(fileno=os.dup(s.fileno()))
raw.settimeout(10)
raw.shutdown(socket.SHUT_WR)
try:
    while raw.recv(65536):
        pass
    print("closed")
except ConnectionResetError:
    print("reset")
"#;
    let port = server.addr.port().to_string();
    let output = certs::python(script, &[&port, pki.ca().to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "reset");
    server
        .wait_stderr(|t| t.contains("without close_notify"))
        .expect("the truncated stream is reported");
    server.signal(libc::SIGTERM);
    server.wait_exit(PATIENCE).expect("stopped");
    let out = reader.join().unwrap();
    assert_eq!(&out[..data.len()], &data[..], "socat's stream byte-exact");
    assert_eq!(&out[data.len()..], b"tail without close_notify");
}

/// A TLS client that streams in bulk, pauses, sends a few bytes, pauses,
/// then ends with close_notify alone, no FIN, waiting for the server's
/// (Python's `unwrap()`): the few bytes are written while the client waits,
/// and the close_notify answered at once, although both are far smaller
/// than the chunk a bulk stream wakes the server for (raw/batching.rs),
/// and not at the server's next limit check (600 s away here).
#[test]
fn raw_mode_over_tls_serves_a_pause_after_bulk_at_once() {
    let pki = Pki::new("msglog test CA");
    let server_cert = pki.issue("server", &Leaf::server());
    let mut args = tls_args(&server_cert);
    args.extend_from_slice(&["--raw-min-rate", "0", "-v"]);
    let mut server = Server::start_with(Options {
        raw: true,
        ..options(&args)
    });
    let mut stdout = server.stdout.take().unwrap();
    let bulk: Vec<u8> = (0..=255u8).collect::<Vec<_>>().repeat(16384);
    let typed = b"typed after a pause\n";
    let (written, arrived) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        for len in [bulk.len(), typed.len()] {
            let mut part = vec![0u8; len];
            stdout.read_exact(&mut part).unwrap();
            out.extend_from_slice(&part);
            written.send(()).unwrap();
        }
        stdout.read_to_end(&mut out).unwrap();
        out
    });
    // Each step waits for the test's go, given once the server has written
    // what came before.
    let script = r#"
import socket, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[2])
s = context.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10), server_hostname="localhost")
s.sendall(bytes(range(256)) * 16384)
sys.stdin.readline()
s.sendall(b"typed after a pause\n")
sys.stdin.readline()
s.unwrap()
print("confirmed")
"#;
    let mut python = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(server.addr.port().to_string())
        .arg(pki.ca())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (it is needed for this test)");
    let mut go = python.stdin.take().unwrap();
    for step in [
        "the bulk reaches stdout while the client waits",
        "the bytes after the pause reach stdout while the client waits",
    ] {
        if arrived.recv_timeout(PATIENCE).is_err() {
            let _ = python.kill();
            let output = python.wait_with_output().unwrap();
            panic!(
                "{step}: no; python: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        go.write_all(b"go\n").unwrap();
    }
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "confirmed");
    // The bulk did raise the mark (so the steps above ran with it up), and
    // the pause lowered it.
    server
        .wait_stderr(|t| {
            t.contains("streaming in bulk, woken per 262144 bytes")
                && t.contains("paused, woken per byte again")
        })
        .expect("the mark raised and lowered");
    server.signal(libc::SIGTERM);
    server.wait_exit(PATIENCE).expect("stopped");
    let mut expected: Vec<u8> = (0..=255u8).collect::<Vec<_>>().repeat(16384);
    expected.extend_from_slice(typed);
    assert_eq!(reader.join().unwrap(), expected);
}
