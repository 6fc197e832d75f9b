//! Authentication under attack, with `--users` and Argon2: wrong passwords
//! are refused and the connection closed; repeated failures from one address
//! are slowed down; the users file and passwords never reach a log or
//! stderr; names cannot inject anything into either log; and a wrong
//! password costs the same time whether the user exists or not.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{percentiles, Launch, Server};
use super::records::Log;
use crate::common::{frame, login_bytes, message, name, password, read_to_end, BIN, CLOSE};

const ALICE_PASSWORD: &str = "correct horse battery staple";
const BOB_PASSWORD: &str = "Tr0ub4dor&3";
const COMMENT_SECRET: &str = "COMMENT-SECRET-5e1f";

/// A users-file line made with `msglog-server hash-password` (`cost`: its
/// `--m-cost`/`--t-cost` options; none for the default cost).
fn hash_line(user: &str, secret: &str, cost: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .args(["hash-password", user])
        .args(cost)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{secret}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A users file made with `msglog-server hash-password` (default Argon2 cost).
fn users_file(dir: &Path) -> (PathBuf, Vec<String>) {
    let lines = vec![
        hash_line("alice", ALICE_PASSWORD, &[]),
        hash_line("bob", BOB_PASSWORD, &[]),
    ];
    let path = dir.join("users");
    std::fs::write(
        &path,
        format!("# {COMMENT_SECRET}: do not log me\n{}\n", lines.join("\n")),
    )
    .unwrap();
    (path, lines)
}

/// A connection from a chosen loopback address (the back-off is per address).
fn connect_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())
        .unwrap();
    socket.connect(&server.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// NAME (answered), then PASSWORD: (status, time from the PASSWORD to its status).
fn attempt(source: Ipv4Addr, server: SocketAddr, user: &str, secret: &[u8]) -> (u8, Duration) {
    attempt_within(source, server, user, secret, Duration::from_secs(20))
}

/// [`attempt`], waiting up to `patience` for each answer.
fn attempt_within(
    source: Ipv4Addr,
    server: SocketAddr,
    user: &str,
    secret: &[u8],
    patience: Duration,
) -> (u8, Duration) {
    let mut stream = connect_from(source, server);
    stream.set_read_timeout(Some(patience)).unwrap();
    stream.write_all(&name(user)).unwrap();
    let mut status = [0u8; 1];
    stream.read_exact(&mut status).unwrap();
    assert_eq!(status, [0], "NAME {user}");
    let started = Instant::now();
    stream.write_all(&password(secret)).unwrap();
    stream.read_exact(&mut status).unwrap();
    let took = started.elapsed();
    if status[0] == 0xFF {
        assert_eq!(
            read_to_end(&mut stream),
            b"",
            "the connection must close after 0xFF"
        );
    }
    (status[0], took)
}

/// `count` wrong attempts at once from `source`; their times, sorted.
fn parallel_attempts(server: &Server, source: Ipv4Addr, count: usize) -> Vec<Duration> {
    let threads: Vec<_> = (0..count)
        .map(|i| {
            let addr = server.addr;
            std::thread::spawn(move || {
                attempt(
                    source,
                    addr,
                    "alice",
                    format!("parallel guess {i}").as_bytes(),
                )
            })
        })
        .collect();
    let mut times: Vec<Duration> = threads
        .into_iter()
        .map(|t| {
            let (status, took) = t.join().unwrap();
            assert_eq!(status, 0xFF);
            took
        })
        .collect();
    times.sort();
    times
}

fn users_server(dir: &Path, users: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--users", users.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(Launch::new(dir, &args))
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn wrong_passwords_are_refused_closed_and_slowed_down() {
    let dir = tempfile::tempdir().unwrap();
    let (users, _) = users_file(dir.path());
    let server = users_server(dir.path(), &users, &[]);

    // Refused, closed, and nothing pipelined behind the password is handled.
    let mut stream = connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr);
    let mut bytes = login_bytes("alice", b"wrong password");
    bytes.extend(message(b"sent after a wrong password"));
    bytes.extend_from_slice(CLOSE);
    stream.write_all(&bytes).unwrap();
    assert_eq!(read_to_end(&mut stream), [0, 0xFF]);
    let (status, first_ok) = attempt(
        Ipv4Addr::new(127, 0, 0, 9),
        server.addr,
        "alice",
        ALICE_PASSWORD.as_bytes(),
    );
    assert_eq!(status, 0);

    // One address failing again and again waits longer and longer.
    let attacker = Ipv4Addr::new(127, 0, 0, 3);
    let mut waits = Vec::new();
    for i in 0..5 {
        let (status, took) = attempt(
            attacker,
            server.addr,
            "alice",
            format!("guess {i}").as_bytes(),
        );
        assert_eq!(status, 0xFF);
        waits.push(took);
    }
    for (i, took) in waits.iter().enumerate().skip(1) {
        let backoff = Duration::from_millis(250 << (i - 1));
        assert!(
            *took >= backoff.mul_f64(0.9),
            "attempt {} took {took:?}, expected at least {backoff:?}",
            i + 1
        );
    }
    // Meanwhile another address is not slowed, and the attacker's CPU cost is nil.
    let cpu_before = server.cpu_seconds();
    let (status, other) = attempt(
        Ipv4Addr::new(127, 0, 0, 4),
        server.addr,
        "bob",
        BOB_PASSWORD.as_bytes(),
    );
    assert_eq!(status, 0);
    assert!(
        other < Duration::from_secs(1),
        "another address waited {other:?}"
    );
    // The right password from the slowed address is delayed too (no oracle), then accepted.
    let (status, right_after) = attempt(attacker, server.addr, "alice", ALICE_PASSWORD.as_bytes());
    assert_eq!(status, 0);
    let cpu = server.cpu_seconds() - cpu_before;
    assert!(
        right_after >= Duration::from_secs(3),
        "took {right_after:?}"
    );
    assert!(cpu < 1.0, "{cpu} s of CPU while one address was waiting");

    // Parallel connections are no way around the back-off: once an address
    // has failed, its attempts take turns, one per back-off interval.
    let burst = Ipv4Addr::new(127, 0, 0, 5);
    assert_eq!(attempt(burst, server.addr, "alice", b"first guess").0, 0xFF);
    let burst_times = parallel_attempts(&server, burst, 4);
    let mut turn_ends = Duration::ZERO;
    for (i, took) in burst_times.iter().enumerate() {
        turn_ends += Duration::from_millis(250 << i);
        assert!(
            *took >= turn_ends.mul_f64(0.9),
            "parallel attempt {} of one failed address answered after {took:?}, before its turn at {turn_ends:?}: {burst_times:?}",
            i + 1
        );
    }
    let log = std::fs::read(dir.path().join("messages.log")).unwrap_or_default();
    assert!(
        Log::parse(&log).bodies.is_empty(),
        "a message was logged without a valid password"
    );
    server.stop();
    let ms = |d: &Duration| d.as_millis();
    println!(
        "authentication: PASS: a wrong password is answered 0xFF and the connection closed, nothing pipelined after it is handled; \
         argon2 verification of a right password {} ms; five failures in a row from one address took {:?} ms (back-off 250 ms doubling); \
         another address meanwhile {} ms; the right password from the slowed address {} ms (server CPU meanwhile {:.0} ms); \
         after one failure, 4 parallel wrong attempts from that address were answered after {:?} ms (taking turns)",
        ms(&first_ok),
        waits.iter().map(ms).collect::<Vec<_>>(),
        ms(&other),
        ms(&right_after),
        cpu * 1000.0,
        burst_times.iter().map(ms).collect::<Vec<_>>(),
    );
}

/// A burst of wrong logins from one new address, sent before its first
/// failure is known, half of them hanging up at once: the back-off applies
/// when each check's turn comes, so the burst costs a few Argon2 checks, not
/// one each, and another address logs in without waiting behind it.
#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn a_burst_of_wrong_logins_cannot_occupy_the_verifiers() {
    const BURST: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let (users, _) = users_file(dir.path());
    let server = users_server(dir.path(), &users, &["--grace", "1s"]);
    let (status, one_check) = attempt(
        Ipv4Addr::new(127, 0, 0, 20),
        server.addr,
        "bob",
        BOB_PASSWORD.as_bytes(),
    );
    assert_eq!(status, 0);

    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let attacker = Ipv4Addr::new(127, 0, 0, 21);
    let mut held = Vec::new();
    for i in 0..BURST {
        let mut stream = connect_from(attacker, server.addr);
        stream
            .write_all(&login_bytes("alice", format!("burst guess {i}").as_bytes()))
            .unwrap();
        if i % 2 == 0 {
            held.push(stream);
        }
    }
    let sent = started.elapsed();
    // Another address, queued behind the whole burst.
    let (status, other) = attempt(
        Ipv4Addr::new(127, 0, 0, 22),
        server.addr,
        "bob",
        BOB_PASSWORD.as_bytes(),
    );
    assert_eq!(status, 0);
    let cpu = server.cpu_seconds() - cpu_before;
    // One check each would be BURST checks: 400 × 20 ms on two threads is
    // 4 s before the other address's turn, and 8 s of CPU.
    assert!(
        other < Duration::from_secs(1),
        "another address waited {other:?} behind the burst"
    );
    let checks = cpu / one_check.as_secs_f64();
    assert!(
        cpu < 1.0,
        "the burst cost {cpu:.2} s of server CPU (about {checks:.0} Argon2 checks)"
    );
    // The held ones wait for their turns; the server closes them at stop.
    drop(held);
    server.stop();
    println!(
        "burst: PASS: {BURST} wrong logins from one new address in {} ms, half hanging up at once; \
         another address then logged in after {} ms; server CPU for all of it {:.0} ms \
         (one Argon2 check {} ms, so about {:.1} checks instead of {BURST})",
        sent.as_millis(),
        other.as_millis(),
        cpu * 1000.0,
        one_check.as_millis(),
        checks
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn a_wrong_password_costs_the_same_for_known_and_unknown_users() {
    const SAMPLES: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let (users, _) = users_file(dir.path());
    let server = users_server(dir.path(), &users, &[]);
    // Each attempt from its own address, so the back-off never adds to the time.
    let mut next = 0u32;
    let mut source = || {
        next += 1;
        Ipv4Addr::new(127, 1, (next / 250) as u8, (next % 250 + 2) as u8)
    };
    let (mut known, mut unknown, mut right) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        let wrong = format!("wrong {i}");
        let (status, took) = attempt(source(), server.addr, "alice", wrong.as_bytes());
        assert_eq!(status, 0xFF);
        known.push(took.as_secs_f64() * 1000.0);
        let (status, took) = attempt(
            source(),
            server.addr,
            &format!("nobody{i}"),
            wrong.as_bytes(),
        );
        assert_eq!(status, 0xFF);
        unknown.push(took.as_secs_f64() * 1000.0);
        if i % 4 == 0 {
            let (status, took) = attempt(source(), server.addr, "bob", BOB_PASSWORD.as_bytes());
            assert_eq!(status, 0);
            right.push(took.as_secs_f64() * 1000.0);
        }
    }
    server.stop();
    let (known_median, known_p10, known_p90) = percentiles(&known);
    let (unknown_median, unknown_p10, unknown_p90) = percentiles(&unknown);
    let (right_median, _, _) = percentiles(&right);
    let difference = (known_median - unknown_median).abs() / known_median.max(unknown_median);
    println!(
        "timing: {SAMPLES} samples each: wrong password, existing user: median {known_median:.1} ms (p10 {known_p10:.1}, p90 {known_p90:.1}); \
         unknown user: median {unknown_median:.1} ms (p10 {unknown_p10:.1}, p90 {unknown_p90:.1}); right password: median {right_median:.1} ms; \
         difference of medians {:.1}% (tolerance 20%)",
        difference * 100.0
    );
    assert!(
        known_median > 2.0,
        "verification is suspiciously fast: {known_median} ms"
    );
    assert!(
        difference <= 0.20,
        "a wrong password reveals whether the user exists"
    );
    println!("timing: PASS");
}

/// Users hashed at different costs (issue 11, item 4): `old` at a tenth of
/// the default work, `new` at the default. A wrong password must take as
/// long for either as for a name that does not exist; before, unknown names
/// were checked at the first entry's cost, so `new` stood out (and padding
/// only the dummy would have made `old` stand out instead). A right
/// password is not padded: its 0x00 says more than its timing.
#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn a_wrong_password_costs_the_same_whatever_the_users_hash_cost() {
    const SAMPLES: usize = 50;
    // The leak is a factor of about 10 (4096 KiB × 1 pass against 19456 KiB
    // × 2). Medians of 50 samples of the same distribution differ by a few
    // per cent on the 2-core machine; 20 % leaves room for a loaded one.
    const TOLERANCE: f64 = 0.20;
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let cheap = ["--m-cost", "4096", "--t-cost", "1"];
    std::fs::write(
        &users,
        format!(
            "{}\n{}\n",
            hash_line("old", "old secret", &cheap),
            hash_line("new", "new secret", &[])
        ),
    )
    .unwrap();
    let server = users_server(dir.path(), &users, &[]);
    // Each attempt from its own address, so the back-off never adds to the time.
    let mut next = 0u32;
    let mut source = || {
        next += 1;
        Ipv4Addr::new(127, 3, (next / 250) as u8, (next % 250 + 2) as u8)
    };
    let kinds = ["old", "new", "unknown"];
    let mut times: [Vec<f64>; 3] = Default::default();
    for i in 0..SAMPLES {
        // Rotate the order, so that no kind always follows the same one.
        for k in (0..3).map(|k| (k + i) % 3) {
            let user = match kinds[k] {
                "unknown" => format!("nobody{i}"),
                known => known.to_owned(),
            };
            let wrong = format!("wrong {i}");
            let (status, took) = attempt(source(), server.addr, &user, wrong.as_bytes());
            assert_eq!(status, 0xFF, "{user}");
            times[k].push(took.as_secs_f64() * 1000.0);
        }
    }
    let mut right = Vec::new();
    for _ in 0..9 {
        let (status, took) = attempt(source(), server.addr, "old", b"old secret");
        assert_eq!(status, 0, "old's right password");
        right.push(took.as_secs_f64() * 1000.0);
    }
    server.stop();
    let stats: Vec<(f64, f64, f64)> = times.iter().map(|t| percentiles(t)).collect();
    let medians: Vec<f64> = stats.iter().map(|s| s.0).collect();
    let slowest = medians.iter().copied().fold(f64::MIN, f64::max);
    let fastest = medians.iter().copied().fold(f64::MAX, f64::min);
    let spread = (slowest - fastest) / slowest;
    let (right_median, _, _) = percentiles(&right);
    let described: Vec<String> = kinds
        .iter()
        .zip(&stats)
        .map(|(kind, (median, p10, p90))| {
            format!("{kind} median {median:.1} ms (p10 {p10:.1}, p90 {p90:.1})")
        })
        .collect();
    println!(
        "mixed costs: {SAMPLES} wrong passwords each: {}; medians {:.1} % apart (tolerance {:.0} %); \
         right password for the cheap user: median {right_median:.1} ms (not padded)",
        described.join("; "),
        spread * 100.0,
        TOLERANCE * 100.0
    );
    assert!(
        fastest > 2.0,
        "verification is suspiciously fast: {fastest} ms"
    );
    assert!(
        spread <= TOLERANCE,
        "a wrong password's time tells which names exist: {}",
        described.join("; ")
    );
    assert!(
        right_median < slowest / 2.0,
        "a right password for the cheap user is padded too: {right_median:.1} ms"
    );
    println!("mixed costs: PASS");
}

/// The bound of the verification queue (README, Authentication).
const VERIFICATION_QUEUE: usize = 256;

/// A distributed flood (issue 11, item 5): 1,000 wrong passwords from 1,000
/// loopback addresses, each in its own /24, all in flight at once. An
/// address that logged in before is served ahead of them, within 250 ms (a
/// bound that needs a quiet machine: two Argon2 checks take about 40 ms on
/// the 2-core development machine); the server holds no more than the
/// queue's bound of pending checks and answers the rest 0xFF at once
/// (`outcome=overload`).
#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn a_distributed_flood_cannot_delay_a_known_good_login() {
    const FLOOD: usize = 1000;
    const BOUND: Duration = Duration::from_millis(250);
    const SENDERS: usize = 4;
    super::harness::raise_own_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let (users, _) = users_file(dir.path());
    let server = users_server(dir.path(), &users, &["--grace", "1s"]);
    let known = Ipv4Addr::new(127, 250, 0, 1);
    let (status, one_check) = attempt(known, server.addr, "bob", BOB_PASSWORD.as_bytes());
    assert_eq!(status, 0);

    let attacker = |i: usize| Ipv4Addr::new(127, 16 + (i / 256) as u8, (i % 256) as u8, 1);
    let started = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|first| {
            let addr = server.addr;
            std::thread::spawn(move || {
                (first..FLOOD)
                    .step_by(SENDERS)
                    .map(|i| {
                        let mut stream = connect_from(attacker(i), addr);
                        stream
                            .write_all(&login_bytes("alice", format!("flood guess {i}").as_bytes()))
                            .unwrap();
                        stream
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut flood: Vec<TcpStream> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    // Each NAME is answered after the PASSWORD that came in the same
    // segment was handed to the verifiers: every password is in flight.
    for stream in &mut flood {
        let mut status = [0u8; 1];
        stream.read_exact(&mut status).unwrap();
        assert_eq!(status, [0], "a flood NAME");
    }
    let sent = started.elapsed();
    // Patient, to measure how long it takes without a fair queue.
    let (status, took) = attempt_within(
        known,
        server.addr,
        "bob",
        BOB_PASSWORD.as_bytes(),
        Duration::from_secs(120),
    );
    assert_eq!(status, 0, "the known address's login");

    // Every flood connection is refused and closed: at once when the queue
    // was full, after its check otherwise.
    for stream in &mut flood {
        assert_eq!(read_to_end(stream), [0xFF], "a flood PASSWORD");
    }
    let drained = started.elapsed();
    let stderr = server.stop();
    let transactions = std::fs::read_to_string(dir.path().join("transactions.log")).unwrap();
    let passwords = |outcome: &str| {
        transactions
            .lines()
            .filter(|l| l.contains("tag=PASSWORD") && l.ends_with(&format!("outcome={outcome}")))
            .count()
    };
    let (overloaded, failed) = (passwords("overload"), passwords("auth-failed"));
    let overload_closes = transactions
        .lines()
        .filter(|l| l.ends_with("event=close reason=overload"))
        .count();
    let peak = stderr
        .split("verification queue peak ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    println!(
        "flood: {FLOOD} wrong passwords from {FLOOD} addresses (one /24 each) in flight after {} ms; \
         a login from an address that logged in before took {} ms (one check {} ms; bound {} ms); \
         {overloaded} answered overload at once, {failed} checked and refused, queue peak {peak:?} \
         of {VERIFICATION_QUEUE}; all answered after {:.1} s",
        sent.as_millis(),
        took.as_millis(),
        one_check.as_millis(),
        BOUND.as_millis(),
        drained.as_secs_f64()
    );
    assert!(
        took < BOUND,
        "the known address waited {took:?} behind the flood (one check took {one_check:?}; \
         this bound needs a quiet machine)"
    );
    assert_eq!(
        overloaded + failed,
        FLOOD,
        "every flood PASSWORD is logged once"
    );
    assert!(overloaded > 0, "a full queue refuses");
    assert_eq!(
        overload_closes, overloaded,
        "each overload closes its connection"
    );
    let peak = peak.unwrap_or_else(|| panic!("no queue peak in the summary:\n{stderr}"));
    assert!(
        peak <= VERIFICATION_QUEUE,
        "{peak} checks pending, bound {VERIFICATION_QUEUE}"
    );
    println!("flood: PASS");
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn secrets_never_reach_a_log_or_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let (users, lines) = users_file(dir.path());
    let server = users_server(dir.path(), &users, &["-vv"]);
    let wrong = "WRONG-PASSWORD-8c2d";
    let unknown_password = "UNKNOWN-USER-PASSWORD-77aa";
    let sessions: [(&str, &str, u8); 4] = [
        ("alice", ALICE_PASSWORD, 0),
        ("alice", wrong, 0xFF),
        ("mallory", unknown_password, 0xFF),
        ("bob", BOB_PASSWORD, 0),
    ];
    for (i, (user, secret, expected)) in sessions.iter().enumerate() {
        let source = Ipv4Addr::new(127, 2, 0, i as u8 + 2);
        let mut stream = connect_from(source, server.addr);
        let mut bytes = login_bytes(user, secret.as_bytes());
        bytes.extend(message(b"hello"));
        bytes.extend_from_slice(CLOSE);
        stream.write_all(&bytes).unwrap();
        let answers = read_to_end(&mut stream);
        let want: &[u8] = if *expected == 0 {
            &[0, 0, 0, 0]
        } else {
            &[0, 0xFF]
        };
        assert_eq!(answers, want, "{user}");
    }
    server.signal(libc::SIGHUP);
    assert!(server.wait_stderr(Duration::from_secs(10), |t| t.contains("reopened")));
    let stderr = server.stop();
    let transactions = std::fs::read_to_string(dir.path().join("transactions.log")).unwrap();
    let messages =
        String::from_utf8_lossy(&std::fs::read(dir.path().join("messages.log")).unwrap())
            .into_owned();
    let mut secrets: Vec<String> = vec![
        ALICE_PASSWORD.into(),
        BOB_PASSWORD.into(),
        wrong.into(),
        unknown_password.into(),
        COMMENT_SECRET.into(),
    ];
    for line in &lines {
        let hash = line.split_once(':').unwrap().1;
        secrets.push(hash.to_owned());
        // Salt and digest separately: `$argon2id$v=19$m=...,t=...,p=...$SALT$HASH`.
        secrets.extend(hash.rsplit('$').take(2).map(str::to_owned));
    }
    for (what, text) in [
        ("transactions.log", &transactions),
        ("messages.log", &messages),
        ("stderr", &stderr),
    ] {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} contains {secret:?}:\n{text}"
            );
        }
    }

    // A broken users file is reported by line number, never by content.
    let leaky = dir.path().join("leaky-users");
    std::fs::write(
        &leaky,
        format!("{}\ncarol:plaintext-PASSWORD-LEAK\ndave:$argon2id$v=19$m=19456,t=2,p=1$SALT-LEAK$DIGEST-LEAK\n", lines[0]),
    )
    .unwrap();
    let failure = match Server::try_start(Launch::new(
        dir.path(),
        &["--users", leaky.to_str().unwrap()],
    )) {
        Ok(_) => panic!("a users file with a plaintext password was accepted"),
        Err(failure) => failure,
    };
    assert!(failure.contains(":2:"), "{failure}");
    for secret in ["plaintext-PASSWORD-LEAK", "SALT-LEAK", "DIGEST-LEAK"] {
        assert!(!failure.contains(secret), "{failure}");
    }
    let error_line = failure
        .lines()
        .find(|l| l.starts_with("msglog-server"))
        .unwrap_or_default()
        .to_owned();
    println!(
        "secrets: PASS: {} secrets (4 passwords, the users file's comment, 2 PHC strings and their salts and digests) appear in none of \
         transactions.log ({} lines), messages.log and stderr at -vv ({} lines); a broken users file is reported as {error_line:?}",
        secrets.len(),
        transactions.lines().count(),
        stderr.lines().count()
    );
}

/// A transactions.log line split into its fields; quoted values unescaped.
fn fields(line: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    if line.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("raw control byte".into());
    }
    // C1 controls, line and paragraph separators, bidi controls (PROTOCOL.md decision 7).
    let rewrites_display = |c: char| {
        matches!(
            c,
            '\u{80}'..='\u{9f}'
                | '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
    };
    if let Some(c) = line.chars().find(|&c| rewrites_display(c)) {
        return Err(format!("raw U+{:04X}", c as u32));
    }
    let (timestamp, rest) = line.split_once(' ').ok_or("no timestamp")?;
    crate::common::assert_timestamp(timestamp);
    let bytes = rest.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let eq = rest[i..].find('=').ok_or("field without '='")? + i;
        let key = rest[i..eq].to_owned();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(format!("bad key {key:?}"));
        }
        i = eq + 1;
        let mut value = Vec::new();
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err("unterminated quote".into()),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let (byte, used) = match bytes.get(i + 1) {
                            Some(b'\\') => (b'\\', 2),
                            Some(b'"') => (b'"', 2),
                            Some(b'r') => (b'\r', 2),
                            Some(b'n') => (b'\n', 2),
                            Some(b't') => (b'\t', 2),
                            Some(b'x') => (
                                rest.get(i + 2..i + 4)
                                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                                    .ok_or("bad \\x escape")?,
                                4,
                            ),
                            _ => return Err("bad escape".into()),
                        };
                        value.push(byte);
                        i += used;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while i < bytes.len() && bytes[i] != b' ' {
                if bytes[i] == b'"' {
                    return Err("quote inside an unquoted value".into());
                }
                value.push(bytes[i]);
                i += 1;
            }
        }
        out.push((key, value));
        match bytes.get(i) {
            None => break,
            Some(b' ') => i += 1,
            Some(_) => return Err("no space after a value".into()),
        }
    }
    Ok(out)
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn names_cannot_inject_into_either_log() {
    let names: Vec<&[u8]> = vec![
        b"plain",
        b"with space",
        b"quote\" outcome=ok name=\"root",
        b"x event=close reason=close",
        b"back\\slash \\x41 \\n",
        "ünïcödé 名前".as_bytes(),
        "line\u{2028}separator".as_bytes(),
        b"=",
        b"new\nline",
        b"carriage\rreturn",
        b"tab\there",
        b"nul\0byte",
        b"del\x7f",
        "c1\u{85}next-line".as_bytes(),
        b"[admin]",
        b"a]: forged",
        b"\xff\xfe not utf-8",
        b"2026-01-01T00:00:00.000Z conn=1 peer=1.2.3.4:5 event=open\n2026-01-01T00:00:00.000Z conn=1",
        b"\x1b[31mred",
        "ad\u{200b}min".as_bytes(),
        "user\u{202e}nimda".as_bytes(),
        "\u{2066}isolated\u{2069}".as_bytes(),
        "para\u{2029}graph".as_bytes(),
        "bom\u{feff}".as_bytes(),
        "soft\u{ad}hyphen".as_bytes(),
        "csi\u{9b}2J".as_bytes(),
        "osc\u{9d}0;title\u{7}".as_bytes(),
        "private\u{e000}".as_bytes(),
        "tag\u{e0041}".as_bytes(),
        "\u{fdd0}".as_bytes(),
        "typographic \u{2018}quotes\u{2019}".as_bytes(),
    ];
    // Names that pass for another name or rewrite their line (PROTOCOL.md decision 1).
    let spoofing: [&[u8]; 10] = [
        "line\u{2028}separator".as_bytes(),
        "ad\u{200b}min".as_bytes(),
        "user\u{202e}nimda".as_bytes(),
        "\u{2066}isolated\u{2069}".as_bytes(),
        "para\u{2029}graph".as_bytes(),
        "bom\u{feff}".as_bytes(),
        "soft\u{ad}hyphen".as_bytes(),
        "private\u{e000}".as_bytes(),
        "tag\u{e0041}".as_bytes(),
        "\u{fdd0}".as_bytes(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Launch::new(dir.path(), &[]));
    let mut accepted = Vec::new();
    for (i, user) in names.iter().enumerate() {
        let valid = !spoofing.contains(user) && msglog_core::valid_name(user).is_some();
        let mut stream = server.connect();
        stream.write_all(&frame(1, user)).unwrap();
        let mut bytes = password(b"pw");
        bytes.extend(message(format!("inj-{i}\r\n[admin]: forged").as_bytes()));
        bytes.extend_from_slice(CLOSE);
        let _ = stream.write_all(&bytes);
        let answers = read_to_end(&mut stream);
        if valid {
            assert_eq!(answers, [0, 0, 0, 0], "{:?}", String::from_utf8_lossy(user));
            accepted.push(i);
        } else {
            assert_eq!(
                answers,
                [0xFF],
                "{:?} must be refused",
                String::from_utf8_lossy(user)
            );
        }
    }
    server.stop();
    // Every record parses back to the name that wrote it; nothing is forged.
    let log = Log::parse(&std::fs::read(dir.path().join("messages.log")).unwrap());
    log.assert_well_formed("messages.log", false);
    assert_eq!(log.records, accepted.len());
    for &i in &accepted {
        let user = std::str::from_utf8(names[i]).unwrap();
        assert_eq!(
            log.count(user, format!("inj-{i}\r\n[admin]: forged").as_bytes()),
            1,
            "{user:?}"
        );
    }
    // Every line of transactions.log parses, and its NAME fields give back the exact names.
    let text = std::fs::read_to_string(dir.path().join("transactions.log")).unwrap();
    let mut logged_names = Vec::new();
    for line in text.lines() {
        let fields = fields(line).unwrap_or_else(|why| panic!("{why}: {line:?}"));
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.starts_with(&["conn", "peer"]), "{line}");
        if let Some((_, value)) = fields.iter().find(|(k, _)| k == "name") {
            logged_names.push(value.clone());
        }
    }
    let expected: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).collect();
    assert_eq!(logged_names, expected, "names as logged");
    let opens = text.lines().filter(|l| l.ends_with(" event=open")).count();
    assert_eq!(opens, names.len());
    println!(
        "injection: PASS: {} hostile names: {} accepted (each record parses back to exactly its name, no forged [admin] record), \
         {} refused with 0xFF (control characters, brackets, invalid UTF-8, C1, invisible and bidi characters, line separators, private use, \
         noncharacters); all {} transactions.log lines parse into key=value fields with no raw C1, line separator or bidi control, \
         and every NAME field unescapes to the exact bytes sent",
        names.len(),
        accepted.len(),
        names.len() - accepted.len(),
        text.lines().count()
    );
}
