//! TLS under load and attack (issue 13): 1,000 concurrent TLS sessions,
//! kill -9 under TLS load with nothing acknowledged lost, SIGHUP
//! certificate rotation under load, silent TLS clients closed like
//! slowloris, and the memory of 10,000 idle TLS connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msglog_core::Transaction;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::crash::seed;
use super::harness::{client_bin, raise_own_fd_limit, Launch, Server};
use super::load::{ConnReport, LoadConfig, Tally};
use super::records::Log;
use crate::certs::{Issued, Leaf, Pki};
use crate::common::{wait_until, PATIENCE};

fn tls_launch(dir: &Path, server: &Issued, more: &[&str]) -> Launch {
    let mut args = vec![
        "--tls-cert",
        server.cert.to_str().unwrap(),
        "--tls-key",
        server.key.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    Launch::new(dir, &args)
}

fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(std::io::Error::other)?;
    let socket = TcpStream::connect(addr)?;
    socket.set_read_timeout(Some(Duration::from_secs(20)))?;
    socket.set_write_timeout(Some(Duration::from_secs(20)))?;
    socket.set_nodelay(true)?;
    let mut tls = rustls::StreamOwned::new(conn, socket);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

fn encode(out: &mut Vec<u8>, transaction: Transaction<'_>) {
    let start = out.len();
    out.resize(start + transaction.encoded_len(), 0);
    transaction.encode(&mut out[start..]).unwrap();
}

/// One TLS connection of a load: login, then batches of `window` messages
/// written together and their statuses read, until the server goes away
/// or `max_per_connection` were sent. Exactly which messages were
/// acknowledged is recorded, as `load::Load` does for plaintext.
fn tls_connection(
    addr: SocketAddr,
    config: &LoadConfig,
    tls: &Arc<rustls::ClientConfig>,
    conn: usize,
    acked_total: &AtomicU64,
) -> ConnReport {
    let name = config.name(conn);
    let mut report = ConnReport {
        conn,
        name: name.clone(),
        ..ConnReport::default()
    };
    let mut stream = match tls_connect(addr, tls) {
        Ok(stream) => stream,
        Err(e) => {
            report.end = format!("connect: {e}");
            return report;
        }
    };
    let mut login = Vec::new();
    encode(&mut login, Transaction::Name(name.as_bytes()));
    encode(&mut login, Transaction::Password(b"pw"));
    let mut statuses = [0u8; 2];
    if let Err(e) = stream
        .write_all(&login)
        .and_then(|()| stream.read_exact(&mut statuses))
    {
        report.end = format!("login: {e}");
        return report;
    }
    let mut buffer = Vec::new();
    let mut answers = vec![0u8; config.window];
    report.end = loop {
        if report.sent >= config.max_per_connection {
            let _ = stream.write_all(b"\x04");
            break "done".into();
        }
        let n = (config.window as u64).min(config.max_per_connection - report.sent);
        buffer.clear();
        for i in 0..n {
            encode(
                &mut buffer,
                Transaction::Message(&config.body(conn, report.sent + i)),
            );
        }
        report.sent += n;
        if let Err(e) = stream.write_all(&buffer).and_then(|()| stream.flush()) {
            break format!("write: {e}");
        }
        let answers = &mut answers[..n as usize];
        let mut got = 0;
        let end = loop {
            if got == answers.len() {
                break None;
            }
            match stream.read(&mut answers[got..]) {
                Ok(0) => break Some("eof".to_string()),
                Ok(k) => {
                    for &status in &answers[got..got + k] {
                        if status != 0 {
                            report.rejected = Some(report.acked);
                            break;
                        }
                        report.acked += 1;
                        acked_total.fetch_add(1, Ordering::Relaxed);
                    }
                    if report.rejected.is_some() {
                        break Some("status 0xff".into());
                    }
                    got += k;
                }
                Err(e) => break Some(format!("read: {e}")),
            }
        };
        if let Some(end) = end {
            break end;
        }
    };
    report
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn a_thousand_concurrent_tls_sessions() {
    raise_own_fd_limit();
    let pki = Pki::new("msglog test CA");
    let issued = pki.issue("server", &Leaf::server());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(tls_launch(dir.path(), &issued, &[]));
    let output = Command::new(client_bin("msglog-bench"))
        .args(["--tls", "--ca"])
        .arg(pki.ca())
        .args([
            "--host",
            "127.0.0.1",
            "--tls-server-name",
            "localhost",
            "-p",
        ])
        .arg(server.port().to_string())
        .args([
            "-c",
            "1000",
            "-n",
            "50",
            "-w",
            "8",
            "--connect-batch",
            "1000",
            "--json",
            "--timeout",
            "60s",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("msglog-bench runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(output.status.success(), "{report}");
    assert_eq!(report["authenticated"], 1000, "{report}");
    assert_eq!(report["acknowledged"], 50_000, "{report}");
    let stderr = server.stop();
    let log = std::fs::read(dir.path().join("messages.log")).unwrap();
    assert_eq!(log.iter().filter(|&&b| b == b'\n').count(), 50_000);
    let lines = std::fs::read_to_string(dir.path().join("transactions.log")).unwrap();
    // The 1,000 sessions, and msglog-bench's preflight login before them.
    assert_eq!(
        lines
            .lines()
            .filter(|l| l.contains("event=open tls=1.3"))
            .count(),
        1001
    );
    assert_eq!(
        lines.lines().filter(|l| l.contains("reason=tls")).count(),
        0
    );
    println!(
        "1,000 concurrent TLS sessions: PASS: all handshaken, logged in and 50,000 messages acknowledged and logged; \
         {:.0} handshakes/s with the login (all full), {:.0} msgs/s; {}",
        report["tls"]["handshakes_per_s"].as_f64().unwrap_or(0.0),
        report["msgs_per_s"].as_f64().unwrap_or(0.0),
        stderr.lines().last().unwrap_or_default()
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn kill_9_under_tls_load_loses_no_acknowledged_message() {
    const ROUNDS: usize = 4;
    const CONNECTIONS: usize = 16;
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    println!("kill -9 under TLS load: {ROUNDS} rounds, {CONNECTIONS} TLS connections pipelining 32 messages; FAULTS_SEED={seed}");
    let pki = Pki::new("msglog test CA");
    let issued = pki.issue("server", &Leaf::server());
    let tls = client_config(&pki.ca());
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("messages.log");
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        let server = Server::start(tls_launch(dir.path(), &issued, &[]));
        let before = std::fs::read(&log_path).unwrap_or_default();
        let config = LoadConfig::new(&format!("t{round:02}"), CONNECTIONS, 32);
        let acked = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..CONNECTIONS)
            .map(|conn| {
                let (config, tls, acked, addr) = (
                    config.clone(),
                    Arc::clone(&tls),
                    Arc::clone(&acked),
                    server.addr,
                );
                std::thread::spawn(move || tls_connection(addr, &config, &tls, conn, &acked))
            })
            .collect();
        let target = rng.gen_range(500..20_000);
        assert!(
            wait_until(Duration::from_secs(60), || acked.load(Ordering::Relaxed)
                >= target),
            "round {round}: only {} acknowledged",
            acked.load(Ordering::Relaxed)
        );
        let at_kill = acked.load(Ordering::Relaxed);
        server.kill9();
        let reports: Vec<ConnReport> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let after = std::fs::read(&log_path).unwrap_or_default();
        let appended = Log::parse(&after[before.len()..]);
        appended.assert_well_formed(&format!("round {round}"), true);
        let tally = Tally::of(&appended, &config, &reports);
        tally.assert_kept(&format!("round {round}"));
        assert!(tally.acked >= at_kill && tally.acked < tally.sent);
        println!(
            "  round {round}: killed after {at_kill} acknowledgements: sent {}, acknowledged {}, found exactly once {}, missing {}, duplicated {}",
            tally.sent, tally.acked, tally.found_once, tally.missing, tally.duplicated
        );
        rounds.push((config, reports));
    }
    let server = Server::start(tls_launch(dir.path(), &issued, &[]));
    let log = Log::parse(&std::fs::read(&log_path).unwrap());
    log.assert_well_formed("after the last restart", false);
    let mut total = 0;
    for (config, reports) in &rounds {
        let tally = Tally::of(&log, config, reports);
        tally.assert_kept(&format!("final check of {}", config.tag));
        total += tally.acked;
    }
    server.stop();
    println!("kill -9 under TLS load: PASS: {total} acknowledged messages over {ROUNDS} crashes, every one logged exactly once");
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn sighup_rotation_under_tls_load() {
    const ROTATIONS: usize = 20;
    let first = Pki::new("first CA");
    let second = Pki::new("second CA");
    let a = first.issue("a", &Leaf::server());
    let b = second.issue("b", &Leaf::server());
    let dir = tempfile::tempdir().unwrap();
    let live = Issued {
        cert: dir.path().join("live.pem"),
        key: dir.path().join("live.key"),
    };
    let install = |from: &Issued| {
        // Written beside and renamed, as an operator's tooling would.
        for (src, dst) in [(&from.cert, &live.cert), (&from.key, &live.key)] {
            let tmp = dst.with_extension("new");
            std::fs::copy(src, &tmp).unwrap();
            std::fs::rename(&tmp, dst).unwrap();
        }
    };
    install(&a);
    let both = dir.path().join("both.pem");
    std::fs::write(
        &both,
        [
            std::fs::read(first.ca()).unwrap(),
            std::fs::read(second.ca()).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let server = Server::start(tls_launch(dir.path(), &live, &[]));
    // Long-lived sessions keep sending through every rotation...
    let bench = Command::new(client_bin("msglog-bench"))
        .args(["--tls", "--ca"])
        .arg(&both)
        .args([
            "--host",
            "127.0.0.1",
            "--tls-server-name",
            "localhost",
            "-p",
        ])
        .arg(server.port().to_string())
        .args(["-c", "50", "-w", "16", "--duration", "8s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("msglog-bench starts");
    // ...while new connections, trusting both CAs, come and go.
    let trusting_both = client_config(&both);
    let mut handshakes = 0;
    let mut seen = [0usize; 2];
    let started = Instant::now();
    for rotation in 0..ROTATIONS {
        let (next, index) = if rotation % 2 == 0 { (&b, 1) } else { (&a, 0) };
        install(next);
        server.signal(libc::SIGHUP);
        let reloads = rotation + 1;
        assert!(
            server.wait_stderr(PATIENCE, |t| t.matches("SIGHUP: reloaded the TLS").count()
                >= reloads)
        );
        for _ in 0..5 {
            let mut tls =
                tls_connect(server.addr, &trusting_both).expect("a handshake during rotation");
            let issuer = tls.conn.peer_certificates().unwrap()[0].clone();
            let from_next = std::fs::read_to_string(&next.cert).unwrap();
            let expected = CertificateDer::pem_slice_iter(from_next.as_bytes())
                .next()
                .unwrap()
                .unwrap();
            assert_eq!(
                issuer, expected,
                "new connections use the certificate just loaded"
            );
            tls.write_all(b"\x04").unwrap();
            let mut answer = Vec::new();
            tls.read_to_end(&mut answer).unwrap();
            assert_eq!(answer, [0]);
            handshakes += 1;
            seen[index] += 1;
        }
    }
    let output = bench.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(output.status.success(), "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    server.stop();
    println!(
        "SIGHUP rotation under TLS load: PASS: {ROTATIONS} rotations in {:.1} s, {handshakes} new sessions each served the certificate just loaded ({} first CA, {} second), \
         50 long-lived sessions acknowledged {} messages without an error",
        started.elapsed().as_secs_f64(),
        seen[0],
        seen[1],
        report["acknowledged"]
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn silent_tls_clients_are_closed_like_slowloris() {
    const SILENT: usize = 500;
    raise_own_fd_limit();
    let pki = Pki::new("msglog test CA");
    let issued = pki.issue("server", &Leaf::server());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(tls_launch(dir.path(), &issued, &["--frame-timeout", "2s"]));
    let opened = Instant::now();
    let mut silent: Vec<TcpStream> = (0..SILENT)
        .map(|i| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            if i % 2 == 1 {
                // Half a ClientHello, then nothing.
                s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
                    .unwrap();
            }
            s
        })
        .collect();
    // A good client meanwhile is served at once.
    let tls = client_config(&pki.ca());
    let t = Instant::now();
    let mut good = tls_connect(server.addr, &tls).unwrap();
    let mut bytes = Vec::new();
    encode(&mut bytes, Transaction::Name(b"good"));
    encode(&mut bytes, Transaction::Password(b"pw"));
    bytes.push(4);
    good.write_all(&bytes).unwrap();
    let mut answer = Vec::new();
    good.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, [0, 0, 0]);
    let good_took = t.elapsed();
    let mut latest = Duration::ZERO;
    for s in &mut silent {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
        latest = latest.max(opened.elapsed());
    }
    assert!(
        latest >= Duration::from_secs(2) && latest < Duration::from_secs(12),
        "{latest:?}"
    );
    let text = std::fs::read_to_string(dir.path().join("transactions.log")).unwrap();
    let closed = text
        .lines()
        .filter(|l| l.contains("event=close reason=tls error=\"the TLS handshake did not finish within the frame timeout\""))
        .count();
    assert_eq!(closed, SILENT, "{text}");
    server.stop();
    println!(
        "silent TLS clients: PASS: {SILENT} connections (half with half a ClientHello) closed {:.1} s after opening (--frame-timeout 2s), \
         one reason=tls line each; a good TLS session meanwhile took {} ms",
        latest.as_secs_f64(),
        good_took.as_millis()
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn ten_thousand_idle_tls_connections_fit_in_512_mib() {
    const IDLE: usize = 10_000;
    let limit = raise_own_fd_limit();
    assert!(limit > IDLE as u64 + 100, "descriptor limit {limit}");
    let pki = Pki::new("msglog test CA");
    let issued = pki.issue("server", &Leaf::server());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(tls_launch(
        dir.path(),
        &issued,
        &["--max-connections", "12000"],
    ));
    let rss_before = server.rss_kib();
    let tls = client_config(&pki.ca());
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (tls, addr) = (Arc::clone(&tls), server.addr);
            std::thread::spawn(move || {
                (0..IDLE / 4)
                    .map(|i| {
                        let mut s = tls_connect(addr, &tls).expect("handshake");
                        let mut login = Vec::new();
                        encode(
                            &mut login,
                            Transaction::Name(format!("idle{t}x{i}").as_bytes()),
                        );
                        encode(&mut login, Transaction::Password(b"pw"));
                        s.write_all(&login).unwrap();
                        let mut statuses = [0u8; 2];
                        s.read_exact(&mut statuses).unwrap();
                        assert_eq!(statuses, [0, 0]);
                        s
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let held: Vec<Tls> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let took = started.elapsed();
    // Every session has been answered: the server holds all of them now.
    let rss = server.rss_kib();
    let per_connection = (rss.saturating_sub(rss_before)) as f64 * 1024.0 / IDLE as f64;
    assert_eq!(held.len(), IDLE);
    assert!(
        rss < 512 * 1024,
        "{rss} KiB for {IDLE} idle TLS connections"
    );
    drop(held);
    server.stop();
    println!(
        "10,000 idle TLS connections: PASS: all handshaken and logged in ({:.0} handshakes/s from 4 blocking client threads); \
         server RSS {:.1} MiB (was {:.1} MiB idle): {:.1} KiB per connection; bound 512 MiB",
        IDLE as f64 / took.as_secs_f64(),
        rss as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        per_connection / 1024.0
    );
}
