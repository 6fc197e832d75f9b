//! Resource exhaustion: 10,000 idle connections plus 1,000 slowloris
//! connections while a normal client must still be served quickly; and a
//! server out of file descriptors, which must neither spin nor stay stuck.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::harness::{percentiles, raise_own_fd_limit, Launch, Server};
use crate::common::{login_bytes, message, read_to_end, wait_until, CLOSE};

const IDLE: usize = 10_000;
const SLOWLORIS: usize = 1_000;
const FRAME_TIMEOUT: Duration = Duration::from_secs(3);
const IDLE_TIMEOUT: Duration = Duration::from_secs(12);
/// How long a normal session (login, 100 pipelined messages, CLOSE) may take.
const SERVED_WITHIN: Duration = Duration::from_secs(2);

/// Log in, send 100 pipelined messages and CLOSE; the time it took.
fn normal_session(server: &Server, name: &str) -> Duration {
    let started = Instant::now();
    let mut stream = server.connect();
    let mut bytes = login_bytes(name, b"pw");
    for i in 0..100 {
        bytes.extend(message(format!("{name} {i}").as_bytes()));
    }
    bytes.extend_from_slice(CLOSE);
    stream.write_all(&bytes).unwrap();
    assert_eq!(read_to_end(&mut stream), vec![0; 103], "{name}");
    started.elapsed()
}

/// A logged-in connection, or None if the server closed it (or never answered within a second).
fn try_login(server: &Server, name: &str) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(server.addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(&login_bytes(name, b"pw")).ok()?;
    let mut statuses = [0u8; 2];
    stream.read_exact(&mut statuses).ok()?;
    (statuses == [0, 0]).then_some(stream)
}

/// What a connection the server should have closed reads: whatever status
/// came, then the end. None while it is still open.
fn closed_by_server(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Some(got),
        }
    }
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn idle_and_slowloris_connections_cannot_starve_a_normal_client() {
    let own_limit = raise_own_fd_limit();
    assert!(
        own_limit as usize > IDLE + SLOWLORIS + 200,
        "this test needs {} descriptors, the hard limit is {own_limit}",
        IDLE + SLOWLORIS + 200
    );
    let dir = tempfile::tempdir().unwrap();
    let frame = format!("{}s", FRAME_TIMEOUT.as_secs());
    let idle = format!("{}s", IDLE_TIMEOUT.as_secs());
    let server = Server::start(Launch::new(
        dir.path(),
        &[
            "--max-connections",
            "12000",
            "--frame-timeout",
            &frame,
            "--idle-timeout",
            &idle,
        ],
    ));
    let cpu_before = server.cpu_seconds();

    // 10,000 connections that say nothing.
    let opened = Instant::now();
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            TcpStream::connect(server.addr).unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    let idle_open_took = opened.elapsed();
    assert!(
        wait_until(Duration::from_secs(10), || server.open_fds() >= IDLE),
        "the server holds only {} descriptors",
        server.open_fds()
    );

    // 1,000 connections sending a NAME one byte per second: never complete.
    let mut name_frame = vec![1u8, 200, 0];
    name_frame.extend(std::iter::repeat_n(b's', 200));
    let mut slow: Vec<(TcpStream, Option<Duration>)> = (0..SLOWLORIS)
        .map(|_| {
            let s = TcpStream::connect(server.addr).unwrap();
            s.set_nonblocking(true).unwrap();
            (s, None)
        })
        .collect();
    let held = server.open_fds();
    let rss_held = server.rss_kib();
    let slow_started = Instant::now();
    let mut sessions = Vec::new();
    let mut next_byte = Instant::now();
    let mut sent_bytes = 0;
    while slow.iter().any(|(_, closed)| closed.is_none())
        && slow_started.elapsed() < FRAME_TIMEOUT + Duration::from_secs(5)
    {
        if Instant::now() >= next_byte {
            let index = (slow_started.elapsed().as_secs() as usize).min(name_frame.len() - 1);
            for (stream, closed) in &mut slow {
                if closed.is_none() && stream.write_all(&name_frame[index..=index]).is_ok() {
                    sent_bytes += 1;
                }
            }
            next_byte += Duration::from_secs(1);
        }
        for (stream, closed) in &mut slow {
            if closed.is_none() {
                if let Some(got) = closed_by_server(stream) {
                    assert!(
                        got.is_empty() || got == [0xFF],
                        "a slow connection got {got:?}"
                    );
                    *closed = Some(slow_started.elapsed());
                }
            }
        }
        // Meanwhile a normal client, every half second.
        let took = normal_session(&server, &format!("normal{}", sessions.len()));
        assert!(
            took <= SERVED_WITHIN,
            "a normal session took {took:?} under slowloris"
        );
        sessions.push(took.as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(400));
    }
    let closed: Vec<f64> = slow
        .iter()
        .filter_map(|(_, c)| c.map(|d| d.as_secs_f64()))
        .collect();
    assert_eq!(
        closed.len(),
        SLOWLORIS,
        "slow connections still open after {:?}",
        slow_started.elapsed()
    );
    let slowest_close = closed.iter().copied().fold(0.0, f64::max);
    assert!(
        slowest_close >= FRAME_TIMEOUT.as_secs_f64() - 0.5,
        "closed before the frame timeout"
    );
    drop(slow);

    // The idle ones go at the idle timeout (and not before): status 0xFF, then the end.
    for stream in &idle {
        stream.set_nonblocking(true).unwrap();
    }
    let early = idle
        .iter_mut()
        .take(100)
        .filter_map(closed_by_server)
        .count();
    assert_eq!(early, 0, "idle connections closed before the idle timeout");
    assert!(
        wait_until(IDLE_TIMEOUT + Duration::from_secs(15), || server.open_fds()
            < 100),
        "still {} descriptors open after the idle timeout",
        server.open_fds()
    );
    let idle_closed_after = opened.elapsed();
    let mut told = 0;
    for stream in &mut idle {
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        if closed_by_server(stream) == Some(vec![0xFF]) {
            told += 1;
        }
    }
    assert_eq!(told, IDLE, "idle connections that read 0xFF and the end");
    drop(idle);
    let after = normal_session(&server, "after");
    let cpu = server.cpu_seconds() - cpu_before;
    let peak = server.peak_rss_kib();
    let log = server.stderr_text();
    server.stop();
    let (median, _, p90) = percentiles(&sessions);
    let worst = sessions.iter().copied().fold(0.0, f64::max);
    println!(
        "exhaustion: PASS: {IDLE} idle connections opened in {:.1} s and {SLOWLORIS} slowloris connections ({sent_bytes} bytes, one per connection per second): \
         the server held {held} descriptors (RSS {} KiB, peak {} KiB); {} normal sessions of login + 100 pipelined messages + CLOSE meanwhile took median {median:.1} ms, p90 {p90:.1} ms, worst {worst:.1} ms (bound {} ms); \
         every slowloris connection was closed by --frame-timeout {}s within {slowest_close:.1} s of its first byte; the {IDLE} idle ones read 0xFF and EOF at --idle-timeout {}s ({:.1} s after they opened); \
         after that a session took {} ms; server CPU over the whole test {cpu:.1} s",
        idle_open_took.as_secs_f64(),
        rss_held,
        peak,
        sessions.len(),
        SERVED_WITHIN.as_millis(),
        FRAME_TIMEOUT.as_secs(),
        IDLE_TIMEOUT.as_secs(),
        idle_closed_after.as_secs_f64(),
        after.as_millis(),
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn out_of_descriptors_neither_spins_nor_sticks() {
    const LIMIT: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        Launch::new(dir.path(), &["--idle-timeout", "5s"]).shell(&format!("ulimit -n {LIMIT}")),
    );
    let started = Instant::now();
    let mut held = Vec::new();
    let mut refused = 0;
    for i in 0..100 {
        match try_login(&server, &format!("hog{i}")) {
            Some(stream) => held.push(stream),
            None => refused += 1,
        }
    }
    assert!(refused > 0, "the descriptor limit was never reached");

    // At the limit, with new connections knocking every 20 ms: the server must idle.
    let cpu_before = server.cpu_seconds();
    let window = Instant::now();
    let mut knocks = 0;
    let mut knocked_off = 0;
    while window.elapsed() < Duration::from_secs(2) {
        if let Ok(mut stream) = TcpStream::connect(server.addr) {
            knocks += 1;
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut byte = [0u8; 1];
            if matches!(stream.read(&mut byte), Ok(0) | Err(_)) {
                knocked_off += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let spent = server.cpu_seconds() - cpu_before;
    let measured = window.elapsed().as_secs_f64();
    assert!(
        spent <= 0.1 * measured,
        "the server used {spent:.2} s of CPU in {measured:.1} s at the descriptor limit (spinning)"
    );

    // The hogs idle out; the server serves again without help.
    let recovered = wait_until(Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(100));
        try_login(&server, "back").is_some()
    });
    assert!(
        recovered,
        "never served again; stderr:\n{}",
        server.stderr_text()
    );
    let recovered_after = started.elapsed();
    let took = normal_session(&server, "recovered");
    let overload = std::fs::read_to_string(dir.path().join("transactions.log"))
        .unwrap_or_default()
        .matches("reason=overload")
        .count();
    let stderr = server.stop();
    assert!(stderr.contains("Too many open files"), "{stderr}");
    println!(
        "descriptor exhaustion (ulimit -n {LIMIT}): PASS: {} logins held, {refused} refused at the limit; \
         {knocks} more connections knocked in {measured:.1} s ({knocked_off} accepted and closed at once), server CPU meanwhile {:.0} ms ({:.1}%); \
         {overload} connections logged as overload; served again {:.1} s after the start, once --idle-timeout 5s freed the hogs \
         (a session then took {} ms); SIGTERM still stops it cleanly",
        held.len(),
        spent * 1000.0,
        100.0 * spent / measured,
        recovered_after.as_secs_f64(),
        took.as_millis()
    );
}
