//! Time and trouble: timeouts, signals (graceful stop, log reopening),
//! write failures under RLIMIT_FSIZE, descriptor exhaustion, a client that
//! stops reading, and fsync group commit.

// These tests drive the server process with signals (stop, SIGHUP), umasks
// and resource limits: Unix only. What runs on Windows (under wine in CI)
// is the library's and the binary's unit tests; scripts/wine/ says why.
#![cfg(unix)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn idle_and_frame_timeouts() {
    let server = Server::start(&["--frame-timeout", "300ms", "--idle-timeout", "700ms"]);
    let started = Instant::now();
    let mut idle = server.connect();
    let mut partial = server.connect();
    partial.write_all(&[1, 6, 0, b'M', b'y']).unwrap();
    let mut header = server.connect();
    header.write_all(&[1]).unwrap();
    let mut logged_in = server.login("quiet");

    assert_eq!(read_to_end(&mut partial), [0xFF]);
    assert_eq!(read_to_end(&mut header), [0xFF]);
    let frame_elapsed = started.elapsed();
    assert!(
        frame_elapsed >= Duration::from_millis(280),
        "{frame_elapsed:?}"
    );
    assert_eq!(read_to_end(&mut idle), [0xFF]);
    assert_eq!(read_to_end(&mut logged_in), [0xFF]);
    assert!(
        started.elapsed() >= Duration::from_millis(650),
        "{:?}",
        started.elapsed()
    );

    let text = server.wait_lines("event=close reason=timeout", 4);
    let mut ids = connection_ids(&text);
    ids.sort();
    let lines = |i: usize| lines_of(&text, ids[i]);
    assert!(
        lines(0).iter().all(|l| !l.contains("tag=")),
        "idle: open and close only: {:#?}",
        lines(0)
    );
    assert!(
        lines(1)[1].ends_with("tag=NAME len=6 outcome=timeout"),
        "{:#?}",
        lines(1)
    );
    assert!(
        lines(2)[1].ends_with("tag=NAME len=- outcome=timeout"),
        "{:#?}",
        lines(2)
    );
    assert!(lines(3)
        .last()
        .unwrap()
        .ends_with("event=close reason=timeout"));
    server.stop();
}

#[test]
fn activity_keeps_a_connection_but_a_slow_frame_times_out() {
    let server = Server::start(&["--frame-timeout", "400ms", "--idle-timeout", "500ms"]);
    // A message every 150 ms for longer than the idle timeout.
    let mut active = server.login("active");
    for i in 0..6 {
        std::thread::sleep(Duration::from_millis(150));
        active
            .write_all(&message(format!("tick {i}").as_bytes()))
            .unwrap();
        assert_eq!(read_statuses(&mut active, 1), [0], "tick {i}");
    }
    active.write_all(CLOSE).unwrap();
    assert_eq!(read_to_end(&mut active), [0]);

    // Slowloris: bytes keep coming, but the transaction never completes in time.
    let mut slow = server.connect();
    let started = Instant::now();
    let frame = name("slowloris-name");
    let mut statuses = Vec::new();
    for byte in &frame {
        if slow.write_all(std::slice::from_ref(byte)).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_millis(700) {
            break;
        }
    }
    statuses.extend(read_to_end(&mut slow));
    assert_eq!(statuses, [0xFF]);
    let text = server.wait_lines("event=close reason=timeout", 1);
    assert!(text.contains("tag=NAME len=14 outcome=timeout"), "{text}");
    server.stop();
}

#[test]
fn sigterm_lets_the_transaction_in_progress_finish() {
    let mut server = Server::start(&["--grace", "5s"]);
    let mut busy = server.login("busy");
    let mut idle = server.login("idle");
    busy.write_all(&[3, 5, 0, b'h', b'e']).unwrap();
    server.signal(libc::SIGTERM);
    server
        .wait_stderr(|t| t.contains("stopping"))
        .expect("stopping line");

    // The idle connection is closed at once, without a status byte.
    assert_eq!(read_to_end(&mut idle), b"");
    // New connections are refused.
    assert!(wait_until(PATIENCE, || TcpStream::connect(server.addr).is_err()));
    // The interrupted MESSAGE completes and is answered, then the server closes.
    busy.write_all(b"llo").unwrap();
    assert_eq!(read_to_end(&mut busy), [0]);

    let status = server.wait_exit(PATIENCE).expect("exits");
    assert!(status.success(), "{status:?}");
    assert_eq!(server.messages(), b"[busy]: hello\r\n");
    let text = server.transactions();
    assert_eq!(
        text.matches("event=close reason=shutdown").count(),
        2,
        "{text}"
    );
    assert!(text.contains("tag=MESSAGE len=5 outcome=ok"), "{text}");
    let stderr = server.wait_stderr(|t| t.contains("stopped after")).unwrap();
    assert!(stderr.contains("2 connections"), "{stderr}");
    assert!(stderr.contains("1 message logged"), "{stderr}");
}

#[test]
fn grace_period_bounds_the_stop_and_a_second_signal_cuts_it_short() {
    let mut server = Server::start(&["--grace", "300ms"]);
    let mut stuck = server.login("stuck");
    stuck.write_all(&[3, 100, 0, b'x']).unwrap();
    let started = Instant::now();
    server.signal(libc::SIGINT);
    assert_eq!(read_to_end(&mut stuck), b"");
    let status = server.wait_exit(PATIENCE).expect("exits");
    assert!(status.success());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(server
        .transactions()
        .contains("event=close reason=shutdown"));

    let mut server = Server::start(&["--grace", "60s"]);
    let mut stuck = server.login("stuck");
    stuck.write_all(&[3, 100, 0, b'x']).unwrap();
    server.signal(libc::SIGTERM);
    server.wait_stderr(|t| t.contains("stopping")).unwrap();
    let started = Instant::now();
    server.signal(libc::SIGTERM);
    assert_eq!(read_to_end(&mut stuck), b"");
    let status = server.wait_exit(PATIENCE).expect("exits");
    assert!(status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn sighup_reopens_both_logs() {
    let server = Server::start(&[]);
    let mut s = server.login("rotor");
    s.write_all(&message(b"before")).unwrap();
    assert_eq!(read_statuses(&mut s, 1), [0]);
    server.wait_lines("tag=MESSAGE", 1);
    for file in ["messages.log", "transactions.log"] {
        std::fs::rename(server.path(file), server.path(&format!("{file}.1"))).unwrap();
    }
    server.signal(libc::SIGHUP);
    assert!(wait_until(PATIENCE, || {
        server.path("messages.log").exists() && server.path("transactions.log").exists()
    }));
    server
        .wait_stderr(|t| t.contains("reopened"))
        .expect("reopen reported");
    s.write_all(&message(b"after")).unwrap();
    s.write_all(CLOSE).unwrap();
    assert_eq!(read_to_end(&mut s), [0, 0]);
    assert_eq!(
        std::fs::read(server.path("messages.log.1")).unwrap(),
        b"[rotor]: before\r\n"
    );
    assert_eq!(server.messages(), b"[rotor]: after\r\n");
    let old = std::fs::read_to_string(server.path("transactions.log.1")).unwrap();
    assert!(
        old.contains("event=open") && old.contains("tag=MESSAGE len=6 outcome=ok"),
        "{old}"
    );
    let new = server.wait_lines("event=close reason=close", 1);
    assert!(
        !new.contains("event=open") && new.contains("tag=MESSAGE len=5 outcome=ok"),
        "{new}"
    );
    server.stop();
}

/// A users-file line for `user`, with a cheap Argon2 cost.
fn users_line(user: &str, secret: &str) -> String {
    let (code, line, stderr) = run(
        &["hash-password", user, "--m-cost", "64", "--t-cost", "1"],
        format!("{secret}\n").as_bytes(),
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    line.trim_end().to_owned()
}

/// Replace a file the way an editor or deployment tool does: write, rename.
fn replace(path: &std::path::Path, text: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, path).unwrap();
}

/// The statuses of a whole session: login, then CLOSE.
fn try_login(server: &Server, user: &str, secret: &[u8]) -> Vec<u8> {
    let mut s = server.connect();
    s.write_all(&[login_bytes(user, secret), CLOSE.to_vec()].concat())
        .unwrap();
    read_to_end(&mut s)
}

#[test]
fn sighup_reloads_the_users_file() {
    const ACCEPTED: [u8; 3] = [0, 0, 0];
    const REFUSED: [u8; 2] = [0, 0xFF];
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    replace(&users, &format!("{}\n", users_line("alice", "one")));
    let server = Server::start(&["--users", users.to_str().unwrap()]);
    assert_eq!(try_login(&server, "alice", b"one"), ACCEPTED);
    assert_eq!(try_login(&server, "bob", b"three"), REFUSED);
    let mut before = server.connect();
    before.write_all(&login_bytes("alice", b"one")).unwrap();
    assert_eq!(read_statuses(&mut before, 2), [0, 0]);

    // A new password for alice, a new user bob.
    replace(
        &users,
        &format!(
            "{}\n{}\n",
            users_line("alice", "two"),
            users_line("bob", "three")
        ),
    );
    server.signal(libc::SIGHUP);
    server
        .wait_stderr(|t| t.contains("reloaded") && t.contains("(2 users)"))
        .expect("reload reported");
    assert_eq!(try_login(&server, "alice", b"one"), REFUSED);
    assert_eq!(try_login(&server, "alice", b"two"), ACCEPTED);
    assert_eq!(try_login(&server, "bob", b"three"), ACCEPTED);
    // A session that logged in before the reload goes on.
    before.write_all(&message(b"still here")).unwrap();
    assert_eq!(read_statuses(&mut before, 1), [0]);

    // A broken file is reported by line, never quoted, and changes nothing.
    replace(&users, "alice:not-a-phc-string-SECRET\n");
    server.signal(libc::SIGHUP);
    let stderr = server
        .wait_stderr(|t| t.contains("cannot reload the users file"))
        .expect("failed reload reported");
    assert!(stderr.contains("users:1:"), "{stderr}");
    assert!(!stderr.contains("SECRET"), "{stderr}");
    assert_eq!(try_login(&server, "alice", b"two"), ACCEPTED);
    assert_eq!(try_login(&server, "bob", b"three"), ACCEPTED);
    before.write_all(CLOSE).unwrap();
    assert_eq!(read_to_end(&mut before), [0]);
    assert_eq!(server.messages(), b"[alice]: still here\r\n");
    server.stop();
}

/// `ulimit -f`: a batch that cannot be written is never acknowledged, leaves
/// no torn record, ends the affected connections, and the server recovers.
#[test]
fn write_failures_are_never_acknowledged() {
    let server = Server::start_with(Options {
        file_size_limit: Some(8192),
        ..options(&[])
    });
    let big = vec![b'a'; 3000];
    let record_len = "[w]: ".len() + big.len() + 2;

    let mut s = server.login("w");
    for _ in 0..2 {
        s.write_all(&message(&big)).unwrap();
        assert_eq!(read_statuses(&mut s, 1), [0]);
    }
    // The third record would cross the 8192-byte limit.
    s.write_all(&message(&big)).unwrap();
    assert_eq!(read_to_end(&mut s), [0xFF]);
    assert_eq!(server.messages().len(), 2 * record_len, "no torn record");

    // Earlier transactions of the same read keep their 0x00.
    let mut s = server.connect();
    s.write_all(&[login_bytes("w", b"pw"), message(&big), message(b"after")].concat())
        .unwrap();
    assert_eq!(read_to_end(&mut s), [0, 0, 0xFF]);

    // A batch fails as a whole: its first message is answered 0xFF, nothing after it.
    let mut s = server.login("w");
    s.write_all(&[message(b"small"), message(&big), CLOSE.to_vec()].concat())
        .unwrap();
    assert_eq!(read_to_end(&mut s), [0xFF]);
    assert_eq!(server.messages().len(), 2 * record_len);

    // A record that fits is written again.
    let mut s = server.login("w");
    s.write_all(&[message(b"fits"), CLOSE.to_vec()].concat())
        .unwrap();
    assert_eq!(read_to_end(&mut s), [0, 0]);
    let log = server.messages();
    assert_eq!(log.len(), 2 * record_len + "[w]: fits\r\n".len());
    assert!(log.ends_with(b"[w]: fits\r\n"));

    let text = server.wait_lines("event=close reason=close", 1);
    assert_eq!(text.matches("outcome=write-failed").count(), 3, "{text}");
    assert!(
        text.contains("tag=MESSAGE len=5 outcome=write-failed"),
        "{text}"
    );
    assert_eq!(text.matches("len=3000 outcome=ok").count(), 2, "{text}");
    // Nothing after the failed message is logged (the pipelined CLOSE was not handled).
    let third: Vec<String> = lines_of(&text, 3)
        .into_iter()
        .map(|l| l.split(' ').skip(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        third,
        [
            "event=open",
            "tag=NAME len=1 outcome=ok name=\"w\"",
            "tag=PASSWORD len=- outcome=ok",
            "tag=MESSAGE len=5 outcome=write-failed",
            "event=close reason=rejected"
        ]
    );
    assert_eq!(
        text.matches("event=close reason=rejected").count(),
        3,
        "{text}"
    );
    // Stderr is read on another thread: wait for the line, do not peek.
    assert!(
        server
            .wait_stderr(|t| t.contains("File too large"))
            .is_some(),
        "{}",
        server.stderr_text()
    );
    server.stop();
}

/// Out of file descriptors: connections beyond what fits are accepted and
/// closed (the spare-descriptor trick), nothing spins, and service resumes.
#[test]
fn descriptor_exhaustion_is_survived_without_spinning() {
    // Two workers whatever the CPU count: each one costs two descriptors.
    let server = Server::start_with(Options {
        open_files_limit: Some(48),
        ..options(&["--workers", "2"])
    });
    let mut clients = Vec::new();
    let (mut served, mut refused) = (0, 0);
    for i in 0..60 {
        let mut s = server.connect();
        s.write_all(&login_bytes(&format!("fd{i}"), b"pw")).unwrap();
        if read_statuses(&mut s, 2) == [0, 0] {
            served += 1;
            clients.push(s);
        } else {
            refused += 1;
        }
    }
    assert!(
        served >= 10 && refused >= 10,
        "served {served}, refused {refused}"
    );

    // Held at the limit: one more is accepted and closed at once, and the
    // server then sits idle.
    let mut knocking = server.connect();
    assert_eq!(read_to_end(&mut knocking), b"");
    let before = cpu_ticks(server.pid());
    std::thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks(server.pid()) - before;
    assert!(
        used <= 10,
        "{used} ticks of CPU in 500 ms at the descriptor limit"
    );

    drop(clients);
    let resumed = wait_until(PATIENCE, || {
        let mut s = server.connect();
        s.write_all(&login_bytes("again", b"pw")).unwrap();
        read_statuses(&mut s, 2) == [0, 0]
    });
    assert!(resumed);
    assert!(server.transactions().contains("reason=overload"));
    assert!(
        server
            .wait_stderr(|t| t.contains("Too many open files"))
            .is_some(),
        "{}",
        server.stderr_text()
    );
    server.stop();
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of proc(5), counted from the state (field 3).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A client that stops reading its status bytes cannot stall anyone else.
#[test]
fn a_client_that_does_not_read_cannot_block_others() {
    const FLOOD: usize = 150_000;
    let server = Server::start(&[]);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut flooder: TcpStream = socket.into();
    flooder.set_read_timeout(Some(PATIENCE)).unwrap();
    flooder.write_all(&login_bytes("flood", b"pw")).unwrap();
    assert_eq!(read_statuses(&mut flooder, 2), [0, 0]);

    let mut writer = flooder.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk: Vec<u8> = (0..1000).flat_map(|_| message(b"f")).collect();
        for _ in 0..FLOOD / 1000 {
            writer.write_all(&chunk).unwrap();
        }
    });

    // Meanwhile another client gets prompt answers.
    let mut other = server.login("other");
    for i in 0..50 {
        let started = Instant::now();
        other
            .write_all(&message(format!("other {i}").as_bytes()))
            .unwrap();
        assert_eq!(read_statuses(&mut other, 1), [0]);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "answer {i} took {:?}",
            started.elapsed()
        );
    }
    let flood_records = records(&server.messages())
        .iter()
        .filter(|r| r.starts_with("[flood]"))
        .count();
    assert!(
        flood_records < FLOOD,
        "the server kept reading a client that does not read"
    );

    // Once it reads, it gets every status.
    let statuses = read_statuses(&mut flooder, FLOOD);
    assert_eq!(statuses.len(), FLOOD);
    assert!(statuses.iter().all(|&s| s == 0));
    sender.join().unwrap();
    flooder.write_all(CLOSE).unwrap();
    assert_eq!(read_to_end(&mut flooder), [0]);
    let records = records(&server.messages());
    assert_eq!(records.len(), FLOOD + 50);
    server.stop();
}

#[test]
fn fsync_group_commit_acknowledges_every_record() {
    let mut server = Server::start(&["--fsync"]);
    assert!(server.stderr_text().contains("fsync=on"));
    let mut clients: Vec<TcpStream> = (0..20).map(|_| server.connect()).collect();
    for (c, s) in clients.iter_mut().enumerate() {
        let mut bytes = login_bytes(&format!("sync{c}"), b"pw");
        for m in 0..50 {
            bytes.extend(message(format!("{c}/{m}").as_bytes()));
        }
        bytes.extend_from_slice(CLOSE);
        s.write_all(&bytes).unwrap();
    }
    for s in &mut clients {
        assert_eq!(read_to_end(s), vec![0; 53]);
    }
    assert_eq!(records(&server.messages()).len(), 1000);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(PATIENCE).unwrap().success());
    let stderr = server.wait_stderr(|t| t.contains("stopped after")).unwrap();
    let syncs: u64 = stderr
        .split("fdatasync: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!((1..=1000).contains(&syncs), "{stderr}");
    assert!(stderr.contains("records per sync"), "{stderr}");
}

#[test]
fn quiet_prints_nothing_but_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .args(["-q", "--auth", "legacy-parity", "--bind", "127.0.0.1", "0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(PATIENCE, || dir
        .path()
        .join("transactions.log")
        .exists()));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = {
        assert!(wait_until(PATIENCE, || child.try_wait().unwrap().is_some()));
        child.wait_with_output().unwrap()
    };
    assert!(output.status.success());
    // Only the warning weak authentication gets even with -q (issue 15).
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "msglog-server: warning: --auth legacy-parity: any password whose first byte is odd is accepted (half of all passwords), as the original C server did. Use it only for drop-in compatibility, and --users FILE otherwise.\n"
    );
}
