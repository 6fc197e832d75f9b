//! `--metrics ADDR` through the real binary: scraped during load (a
//! scrape between each client's sessions), the
//! counters agree with what the clients saw, the output passes
//! `promtool check metrics`, and a stalled scraper disturbs nobody.

// These tests drive the server process with signals (stop, SIGHUP), umasks
// and resource limits: Unix only. What runs on Windows (under wine in CI)
// is the library's and the binary's unit tests; scripts/wine/ says why.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// The metrics address from the start-up lines.
fn metrics_addr(server: &Server) -> SocketAddr {
    let text = server
        .wait_stderr(|t| t.contains("metrics on http://"))
        .expect("metrics line");
    let start = text.find("metrics on http://").unwrap() + "metrics on http://".len();
    let addr = &text[start..];
    addr[..addr.find("/metrics").unwrap()].parse().unwrap()
}

/// An HTTP request's status line, headers and body.
fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    (head.to_owned(), body.to_owned())
}

fn scrape(addr: SocketAddr) -> String {
    let (head, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    body
}

/// The value of one series (`name` or `name{labels}` exactly as exposed).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(series)?;
            rest.strip_prefix(' ')?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn promtool_check(text: &str) {
    let promtool = "/usr/bin/promtool";
    assert!(
        Path::new(promtool).exists(),
        "promtool is needed: apt-get install prometheus (.ci/run installs it)"
    );
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool: {output:?}"
    );
}

/// One session: login, `batches` writes of `per_batch` messages, each
/// write's statuses read, CLOSE; the messages acknowledged.
fn session(addr: SocketAddr, user: &str, batches: usize, per_batch: usize) -> u64 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(&login_bytes(user, b"secret")).unwrap();
    assert_eq!(read_statuses(&mut stream, 2), [0, 0]);
    let mut acked = 0;
    for batch in 0..batches {
        let bytes: Vec<u8> = (0..per_batch)
            .flat_map(|i| message(format!("{user} {batch} {i}").as_bytes()))
            .collect();
        stream.write_all(&bytes).unwrap();
        let statuses = read_statuses(&mut stream, per_batch);
        acked += statuses.iter().filter(|&&s| s == 0).count() as u64;
    }
    stream.write_all(CLOSE).unwrap();
    assert_eq!(read_to_end(&mut stream), [0]);
    acked
}

#[test]
fn scraped_during_load_the_counters_agree_with_what_the_clients_saw() {
    let server = Server::start(&["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    let first = scrape(metrics);
    promtool_check(&first);
    assert_eq!(value(&first, "msglog_messages_logged_total"), 0.0);

    let done = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicUsize::new(0));
    let scraper = {
        let (done, scrapes) = (Arc::clone(&done), Arc::clone(&scrapes));
        std::thread::spawn(move || {
            let mut last = 0.0;
            while !done.load(Ordering::SeqCst) {
                let text = scrape(metrics);
                let logged = value(&text, "msglog_messages_logged_total");
                assert!(logged >= last, "counters only grow: {logged} < {last}");
                last = logged;
                scrapes.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let (threads, sessions_each, batches, per_batch) = (8, 4, 10, 25);
    let addr = server.addr;
    let clients: Vec<_> = (0..threads)
        .map(|t| {
            let scrapes = Arc::clone(&scrapes);
            std::thread::spawn(move || {
                let mut acked = 0;
                for s in 0..sessions_each {
                    // A scrape between each client's sessions: scraped during the load.
                    let seen = scrapes.load(Ordering::SeqCst);
                    assert!(wait_until(PATIENCE, || scrapes.load(Ordering::SeqCst) > seen));
                    acked += session(addr, &format!("user{t}-{s}"), batches, per_batch);
                }
                acked
            })
        })
        .collect();
    // One client breaks the protocol: MESSAGE before NAME.
    let mut rude = server.connect();
    rude.write_all(&message(b"too early")).unwrap();
    assert_eq!(read_to_end(&mut rude), [0xFF]);
    let acked: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    done.store(true, Ordering::SeqCst);
    scraper.join().unwrap();
    let scraped = scrapes.load(Ordering::SeqCst);
    assert!(
        scraped >= sessions_each,
        "scraped during the load ({scraped} times)"
    );

    let sessions = (threads * sessions_each) as f64;
    let expected = (threads * sessions_each * batches * per_batch) as u64;
    assert_eq!(acked, expected, "every message acknowledged");
    // The last closes are counted once their iteration ends.
    let mut text = String::new();
    assert!(wait_until(PATIENCE, || {
        text = scrape(metrics);
        value(&text, "msglog_connections_open") == 0.0
            && value(
                &text,
                "msglog_transactions_total{tag=\"CLOSE\",outcome=\"ok\"}",
            ) == sessions
    }));
    let acked = acked as f64;
    assert_eq!(value(&text, "msglog_messages_logged_total"), acked);
    for (tag, count) in [
        ("NAME", sessions),
        ("PASSWORD", sessions),
        ("MESSAGE", acked),
        ("CLOSE", sessions),
    ] {
        let series = format!("msglog_transactions_total{{tag=\"{tag}\",outcome=\"ok\"}}");
        assert_eq!(value(&text, &series), count, "{series}");
    }
    assert_eq!(
        value(
            &text,
            "msglog_transactions_total{tag=\"MESSAGE\",outcome=\"unexpected-tag\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&text, "msglog_connections_accepted_total"),
        sessions + 1.0
    );
    assert_eq!(
        value(&text, "msglog_connections_refused_overload_total"),
        0.0
    );
    assert_eq!(
        value(&text, "msglog_messages_logged_bytes_total"),
        server.messages().len() as f64
    );
    assert_eq!(records(&server.messages()).len() as f64, acked);
    // Every acknowledged message has its latency observed.
    assert_eq!(
        value(&text, "msglog_message_status_latency_seconds_count"),
        acked
    );
    assert_eq!(
        value(
            &text,
            "msglog_message_status_latency_seconds_bucket{le=\"+Inf\"}"
        ),
        acked
    );
    assert!(value(&text, "msglog_message_status_latency_seconds_sum") > 0.0);
    assert!(value(&text, "process_resident_memory_bytes") > 0.0);
    assert!(value(&text, "process_open_fds") > 0.0);
    promtool_check(&text);
    server.stop();
}

#[test]
fn fsync_batches_and_password_checks_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    for name in ["alice", "bob"] {
        let (code, _, stderr) = run(
            &[
                "users",
                "add",
                users.to_str().unwrap(),
                name,
                "--m-cost",
                "1024",
                "--t-cost",
                "1",
            ],
            b"secret\n",
            None,
        );
        assert_eq!(code, Some(0), "{stderr}");
    }
    let server = Server::start(&[
        "--metrics",
        "127.0.0.1:0",
        "--fsync",
        "--users",
        users.to_str().unwrap(),
    ]);
    let metrics = metrics_addr(&server);
    let acked = session(server.addr, "alice", 5, 10) + session(server.addr, "bob", 5, 10);
    let mut wrong = server.connect();
    wrong.write_all(&login_bytes("alice", b"guess")).unwrap();
    assert_eq!(read_to_end(&mut wrong), [0, 0xFF]);

    let mut text = String::new();
    assert!(wait_until(PATIENCE, || {
        text = scrape(metrics);
        value(&text, "msglog_connections_open") == 0.0
    }));
    promtool_check(&text);
    let acked = acked as f64;
    assert_eq!(value(&text, "msglog_fsync_enabled"), 1.0);
    assert_eq!(value(&text, "msglog_fsync_records_total"), acked);
    assert_eq!(value(&text, "msglog_fsync_batch_records_sum"), acked);
    let batches = value(&text, "msglog_fsync_batch_records_count");
    assert!((1.0..=acked + 6.0).contains(&batches), "{batches}");
    assert_eq!(
        value(&text, "msglog_password_checks_total{result=\"accepted\"}"),
        2.0
    );
    assert_eq!(
        value(&text, "msglog_password_checks_total{result=\"refused\"}"),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "msglog_transactions_total{tag=\"PASSWORD\",outcome=\"auth-failed\"}"
        ),
        1.0
    );
    assert_eq!(value(&text, "msglog_password_backoff_addresses"), 1.0);
    assert_eq!(value(&text, "msglog_verify_queue_capacity"), 256.0);
    assert_eq!(value(&text, "msglog_verify_queue_waiting"), 0.0);
    assert_eq!(value(&text, "msglog_users"), 2.0);
    server.stop();
}

#[test]
fn a_stalled_scraper_disturbs_nobody_and_odd_requests_get_their_status() {
    let server = Server::start(&["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    // Half a request, then silence: the metrics thread waits for it...
    let mut stalled = TcpStream::connect(metrics).unwrap();
    stalled.write_all(b"GET /metr").unwrap();
    // ...while the event loops serve as ever.
    let started = Instant::now();
    assert_eq!(session(server.addr, "alice", 2, 10), 20);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The stalled connection is dropped at its deadline; scrapes resume.
    stalled.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(rest.is_empty(), "no answer to half a request");
    let text = scrape(metrics);
    assert_eq!(value(&text, "msglog_messages_logged_total"), 20.0);

    let (head, body) = http(metrics, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    assert_eq!(body, "404 Not Found\n");
    let (head, _) = http(
        metrics,
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(
        head.starts_with("HTTP/1.1 405 ") && head.contains("Allow: GET, HEAD"),
        "{head}"
    );
    let (head, body) = http(metrics, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200 ") && body.is_empty(),
        "{head}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(length > 1000);
    let (head, _) = http(metrics, "\x16\x03\x01 not http\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    server.stop();
}
