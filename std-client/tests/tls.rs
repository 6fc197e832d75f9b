//! The library over TLS against the real `msglog-server --tls-cert`:
//! `Connection`, `ConnectionTable` and `Delivery` with `Options::tls`, a
//! `Connection` over a transport of the caller's own, `send_raw` over a
//! `TlsStream`, and `Error::Tls` naming the reason.
#![cfg(feature = "tls")]

#[path = "../../std-server/tests/common/certs.rs"]
mod certs;
mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd};
#[cfg(windows)]
use std::os::windows::io::{AsSocket, BorrowedSocket};
use std::time::Duration;

use certs::{Leaf, Pki};
use msglog_client::{
    connect, send_raw, Connection, ConnectionTable, Credentials, Delivery, Error, Options,
    RetryPolicy, TlsConnector, TlsFailure, Transport,
};

use common::{record, records, Server};

fn tls_server(pki: &Pki, dir: &std::path::Path) -> Server {
    let issued = pki.issue("server", &Leaf::server());
    Server::framed_with(
        dir,
        0,
        &[
            "--tls-cert",
            issued.cert.to_str().unwrap(),
            "--tls-key",
            issued.key.to_str().unwrap(),
        ],
        |_| {},
    )
}

fn options(tls: TlsConnector) -> Options {
    Options {
        connect_timeout: Some(Duration::from_secs(10)),
        io_timeout: Some(Duration::from_secs(10)),
        window: 8,
        tls: Some(tls),
    }
}

#[test]
fn connection_table_and_delivery_hold_tls_connections() {
    let pki = Pki::new("msglog test CA");
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(&pki, dir.path());
    let alice = Credentials::new("alice", "secret");
    let tls = TlsConnector::with_ca_file(pki.ca()).unwrap();

    // The table checks the certificate for the host of its server string.
    let mut table = ConnectionTable::new(options(tls.clone()));
    let at = format!("localhost:{}", server.port);
    table.send(&at, &alice, b"one").unwrap();
    table.send(&at, &alice, b"two").unwrap();
    assert_eq!(table.len(), 1);
    table.close_all().unwrap();

    let named = options(tls.clone().server_name("localhost"));
    let mut delivery = Delivery::new(
        ("127.0.0.1", server.port),
        alice.clone(),
        named.clone(),
        RetryPolicy::attempts(2),
    );
    for message in ["three", "four"] {
        delivery.submit(message.as_bytes()).unwrap();
    }
    assert_eq!(delivery.finish().unwrap().acknowledged, 2);

    // Without a name, the IP address connected to: the test certificate has 127.0.0.1 too.
    let mut connection =
        Connection::open(("127.0.0.1", server.port), &alice, &options(tls)).unwrap();
    connection.send(b"five").unwrap();
    connection.close().unwrap();
    let expected: Vec<Vec<u8>> = ["one", "two", "three", "four", "five"]
        .iter()
        .map(|m| record("alice", m.as_bytes()))
        .collect();
    assert_eq!(records(dir.path()), expected);
}

/// A transport of the caller's own: here a TCP stream that counts what it writes.
#[derive(Debug)]
struct Counting {
    inner: TcpStream,
    written: usize,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(unix)]
impl AsFd for Counting {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

#[cfg(windows)]
impl AsSocket for Counting {
    fn as_socket(&self) -> BorrowedSocket<'_> {
        self.inner.as_socket()
    }
}

impl Transport for Counting {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }
    fn peek_byte(&mut self) -> io::Result<Option<u8>> {
        self.inner.peek_byte()
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.inner.shutdown_write()
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

#[test]
fn a_connection_over_a_transport_of_the_callers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let transport = Counting {
        inner: stream,
        written: 0,
    };
    let mut connection = Connection::over(transport, &Options::default()).unwrap();
    connection.authenticate("bob", b"pw").unwrap();
    connection.send(b"over my own stream").unwrap();
    connection.close().unwrap();
    assert_eq!(records(dir.path()), [record("bob", b"over my own stream")]);
}

#[test]
fn send_raw_over_a_tls_stream_and_the_reasons_of_failures() {
    let pki = Pki::new("msglog test CA");
    let issued = pki.issue("server", &Leaf::server());
    let out = pki.dir().join("raw.bin");
    let raw = Server::raw_with(
        std::fs::File::create(&out).unwrap(),
        &[
            "--tls-cert",
            issued.cert.to_str().unwrap(),
            "--tls-key",
            issued.key.to_str().unwrap(),
        ],
    );
    let tls = TlsConnector::with_ca_file(pki.ca()).unwrap();
    let options = Options::default();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
    let stream = connect(("127.0.0.1", raw.port), &options).unwrap();
    let mut tls_stream = tls.handshake(stream, Some("localhost")).unwrap();
    let mut buffer = vec![0u8; 1 << 16];
    let sent = send_raw(&mut tls_stream, &mut &data[..], &mut buffer).unwrap();
    assert_eq!(sent, data.len() as u64);

    let stranger = Pki::new("a stranger's CA");
    let untrusting = TlsConnector::with_ca_file(stranger.ca()).unwrap();
    let stream = connect(("127.0.0.1", raw.port), &options).unwrap();
    match untrusting.handshake(stream, Some("localhost")) {
        Err(Error::Tls(TlsFailure::UnknownIssuer)) => {}
        other => panic!("{other:?}"),
    }
    let stream = connect(("127.0.0.1", raw.port), &options).unwrap();
    match tls.handshake(stream, Some("elsewhere.example")) {
        Err(Error::Tls(TlsFailure::NameMismatch { expected, .. })) => {
            assert_eq!(expected, "'elsewhere.example'")
        }
        other => panic!("{other:?}"),
    }
    drop(raw);
    assert_eq!(std::fs::read(&out).unwrap(), data);
}
