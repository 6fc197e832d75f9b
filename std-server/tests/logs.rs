//! The log directory: what a start-up may do to the logs (never delete a
//! byte it did not write), one server per directory, file modes, and the
//! audit line as part of every acknowledged transaction.

// These tests drive the server process with signals (stop, SIGHUP), umasks
// and resource limits: Unix only. What runs on Windows (under wine in CI)
// is the library's and the binary's unit tests; scripts/wine/ says why.
#![cfg(unix)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

/// A start that must fail: (exit code, stderr).
fn refused_start(dir: &Path) -> (Option<i32>, String) {
    let dir = dir.to_str().unwrap();
    let (code, _, stderr) = run(&["--bind", "127.0.0.1", "--dir", dir, "0"], b"", None);
    (code, stderr)
}

/// A server in `dir` that logs one message, then stops; returns its stderr.
fn serve_one_message(dir: &Path) -> String {
    let server = Server::start_with(Options {
        dir: Some(dir.to_owned()),
        ..options(&[])
    });
    let mut s = server.login("new");
    s.write_all(&[message(b"after the restart"), CLOSE.to_vec()].concat())
        .unwrap();
    assert_eq!(read_to_end(&mut s), [0, 0]);
    server.stop()
}

const NEW_RECORD: &[u8] = b"[new]: after the restart\r\n";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The issue's example: 50 LF-terminated lines are 50 complete lines.
#[test]
fn an_lf_terminated_log_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let old: String = (1..=50).map(|i| format!("[old]: line {i}\n")).collect();
    assert_eq!(old.len(), 741);
    std::fs::write(dir.path().join("messages.log"), &old).unwrap();
    let stderr = serve_one_message(dir.path());
    assert_eq!(
        std::fs::read(dir.path().join("messages.log")).unwrap(),
        [old.as_bytes(), NEW_RECORD].concat()
    );
    assert!(!dir.path().join("messages.log.torn").exists());
    assert!(!stderr.contains("moved"), "{stderr}");
}

/// Bytes after the last newline may be a torn record: they go to the side
/// file byte for byte, with a warning, and the log keeps everything before.
#[test]
fn a_last_line_without_newline_moves_to_the_side_file_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let kept: &[u8] = b"[a]: 1\r\nan LF line\n";
    let tail: &[u8] = b"not a record: \xff\x00\r binary \x1b[31m and \r";
    std::fs::write(dir.path().join("messages.log"), [kept, tail].concat()).unwrap();
    let lines: &[u8] = b"2026-01-01T00:00:00.000Z conn=1 peer=127.0.0.1:1 event=open\n";
    let torn_line: &[u8] = b"2026-01-01T00:00:00.001Z conn=1 peer=127.0.0.1:1 tag=MESS";
    std::fs::write(
        dir.path().join("transactions.log"),
        [lines, torn_line].concat(),
    )
    .unwrap();

    let stderr = serve_one_message(dir.path());
    let canonical = dir.path().canonicalize().unwrap();
    for (log, kept, tail) in [
        ("messages.log", kept, tail),
        ("transactions.log", lines, torn_line),
    ] {
        let now = std::fs::read(dir.path().join(log)).unwrap();
        assert!(now.starts_with(kept), "{log}: {now:?}");
        let side = std::fs::read(dir.path().join(format!("{log}.torn"))).unwrap();
        let entries = side_entries(&side);
        assert_eq!(entries.len(), 1, "{log}");
        let entry = &entries[0];
        assert_eq!(entry.bytes, tail, "{log}");
        assert_eq!(entry.log, log);
        assert_eq!(entry.offset, kept.len() as u64, "{log}");
        // One warning line: the file, offset, length, side file and timestamp.
        let warning = stderr
            .lines()
            .find(|l| l.contains(&format!("{}/{log}:", canonical.display())))
            .unwrap_or_else(|| panic!("no warning about {log}: {stderr}"));
        for part in [
            format!("its last {} bytes", tail.len()),
            format!("offset {}", kept.len()),
            format!("moved to {}/{log}.torn", canonical.display()),
            entry.timestamp.clone(),
        ] {
            assert!(warning.contains(&part), "{part:?} not in {warning:?}");
        }
    }
    assert_eq!(
        std::fs::read(dir.path().join("messages.log")).unwrap(),
        [kept, NEW_RECORD].concat()
    );
    let text = std::fs::read_to_string(dir.path().join("transactions.log")).unwrap();
    for line in text.lines() {
        assert_timestamp(&line[..24]);
        assert_eq!(line.matches(" conn=").count(), 1, "glued lines: {line}");
    }
}

/// `echo note >> messages.log` is a complete line; `printf note` without a
/// newline is kept in the side file.
#[test]
fn an_operator_note_is_kept_with_or_without_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("messages.log");
    serve_one_message(dir.path());
    let shell = |command: &str| {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "{command}");
    };
    shell("echo 'operator: disk replaced, nothing lost' >> messages.log");
    let with_note = std::fs::read(&log).unwrap();
    serve_one_message(dir.path());
    assert_eq!(
        std::fs::read(&log).unwrap(),
        [&with_note[..], NEW_RECORD].concat()
    );
    assert!(!dir.path().join("messages.log.torn").exists());

    shell("printf 'operator: no newline' >> messages.log");
    let before = std::fs::read(&log).unwrap();
    serve_one_message(dir.path());
    let whole = &before[..before.len() - "operator: no newline".len()];
    assert_eq!(std::fs::read(&log).unwrap(), [whole, NEW_RECORD].concat());
    let side = std::fs::read(dir.path().join("messages.log.torn")).unwrap();
    let entries = side_entries(&side);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].bytes, b"operator: no newline");
    assert_eq!(entries[0].offset, whole.len() as u64);
}

/// A side file that cannot be written: exit 8, one line, and the log is
/// byte-identical (it keeps its tail).
#[test]
fn a_side_file_that_cannot_be_written_refuses_the_start() {
    let content: &[u8] = b"[a]: 1\r\n[a]: torn by a cra";
    type Spoil = fn(&Path);
    let cases: [(&str, Spoil); 3] = [
        ("messages.log", |side| std::fs::create_dir(side).unwrap()),
        ("messages.log", |side| {
            std::os::unix::fs::symlink("/dev/full", side).unwrap()
        }),
        ("transactions.log", |side| {
            std::fs::create_dir(side).unwrap()
        }),
    ];
    for (log, spoil) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(log);
        let side = dir.path().join(format!("{log}.torn"));
        std::fs::write(&path, content).unwrap();
        spoil(&side);
        let (code, stderr) = refused_start(dir.path());
        assert_eq!(code, Some(8), "{log}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        let canonical = dir.path().canonicalize().unwrap();
        for part in [
            format!("{}/{log}", canonical.display()),
            format!("{}/{log}.torn", canonical.display()),
            "nothing was changed".to_owned(),
        ] {
            assert!(stderr.contains(&part), "{part:?} not in {stderr:?}");
        }
        assert!(
            stderr.contains("Is a directory") || stderr.contains("No space left on device"),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), content, "{log} changed");
        if std::fs::symlink_metadata(&side).unwrap().is_symlink() {
            assert_eq!(std::fs::read_link(&side).unwrap(), Path::new("/dev/full"));
        } else {
            assert_eq!(std::fs::read_dir(&side).unwrap().count(), 0);
        }
    }
}

/// A second server on the same directory exits 9 naming the first one's
/// PID and touches nothing, not even a torn tail it would otherwise move.
#[test]
fn a_second_server_on_the_same_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start_with(Options {
        dir: Some(dir.path().to_owned()),
        ..options(&[])
    });
    let mut s = first.login("first");
    s.write_all(&message(b"one")).unwrap();
    assert_eq!(read_statuses(&mut s, 1), [0]);
    first.wait_lines("tag=MESSAGE", 1);
    // A torn tail the first server did not write (as a second server's
    // repair would find it).
    let log = first.path("messages.log");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"[x]: torn")
        .unwrap();
    let before = std::fs::read(&log).unwrap();
    let lines_before = first.transactions();
    for _ in 0..3 {
        let (code, stderr) = refused_start(&first.dir);
        assert_eq!(code, Some(9), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&format!("PID {}", first.pid())), "{stderr}");
        assert!(stderr.contains("msglog-server.lock"), "{stderr}");
    }
    assert_eq!(std::fs::read(&log).unwrap(), before);
    assert_eq!(first.transactions(), lines_before);
    assert!(!first.path("messages.log.torn").exists());
    assert_eq!(
        std::fs::read_to_string(first.path("msglog-server.lock")).unwrap(),
        format!("{}\n", first.pid())
    );
    s.write_all(CLOSE).unwrap();
    assert_eq!(read_to_end(&mut s), [0]);
    first.stop();
    // Once the first server is gone the lock is free (its file stays), and
    // the next start moves the tail aside.
    let stderr = serve_one_message(dir.path());
    assert!(stderr.contains("moved to"), "{stderr}");
    assert_eq!(
        side_entries(&std::fs::read(dir.path().join("messages.log.torn")).unwrap())[0].bytes,
        b"[x]: torn"
    );
}

/// messages.log (and its side file) 0644, transactions.log (and its side
/// file) 0640, also when SIGHUP creates them anew; with a umask of 022.
#[test]
fn transactions_log_is_created_0640_and_messages_log_0644() {
    let dir = tempfile::tempdir().unwrap();
    for log in ["messages.log", "transactions.log"] {
        std::fs::write(dir.path().join(log), b"torn").unwrap();
        std::fs::set_permissions(dir.path().join(log), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    let server = Server::start_with(Options {
        dir: Some(dir.path().to_owned()),
        umask: Some(0o022),
        ..options(&[])
    });
    let expected = [
        ("messages.log.torn", 0o644),
        ("transactions.log.torn", 0o640),
        ("msglog-server.lock", 0o644),
        // Existing files keep their mode.
        ("messages.log", 0o600),
        ("transactions.log", 0o600),
    ];
    for (file, created) in expected {
        assert_eq!(mode(&server.path(file)), created, "{file}");
    }
    for file in ["messages.log", "transactions.log"] {
        std::fs::rename(server.path(file), server.path(&format!("{file}.1"))).unwrap();
    }
    server.signal(libc::SIGHUP);
    server.wait_stderr(|t| t.contains("reopened")).unwrap();
    assert_eq!(mode(&server.path("messages.log")), 0o644);
    assert_eq!(mode(&server.path("transactions.log")), 0o640);
    server.stop();
}

/// The issue's case: one client pipelining 3,000 one-byte messages into a
/// server whose files may not grow past 48 KiB. Every 0x00 has its record
/// and its `ok` line, the first 0xFF comes where the lines no longer fit,
/// and later logins are refused once their NAME line does not fit.
#[test]
fn under_a_file_size_limit_every_acknowledged_transaction_has_its_line() {
    const LIMIT: u64 = 49152;
    const GROUP: usize = 50;
    for args in [&[][..], &["--fsync"][..]] {
        let server = Server::start_with(Options {
            file_size_limit: Some(LIMIT),
            ..options(args)
        });
        let first = send_until_refused(server.addr, "u", 3000, GROUP);
        assert!(first.name && first.password && first.refused, "{first:?}");
        let text = server.transactions();
        let ok_line = text
            .lines()
            .find(|l| l.contains("tag=MESSAGE len=1 outcome=ok"))
            .expect("an ok line")
            .len()
            + 1;
        // The lines of the failure (best effort) came after the commit that did not fit.
        let failure_lines: usize = text
            .lines()
            .filter(|l| l.contains("outcome=write-failed") || l.contains("reason=rejected"))
            .map(|l| l.len() + 1)
            .sum();
        let room = LIMIT - (text.len() - failure_lines) as u64;
        assert!(
            room < (GROUP * ok_line) as u64,
            "answered 0xFF with {room} bytes still free ({args:?}, {first:?})"
        );
        assert!(
            first.messages * ok_line > 40_000,
            "only {} acknowledged",
            first.messages
        );
        let mut sessions = vec![first];
        while sessions.last().unwrap().name {
            assert!(
                sessions.len() < 200,
                "NAMEs acknowledged without room for their line"
            );
            sessions.push(send_until_refused(server.addr, "v", 1, 1));
        }
        assert_logs_match(&server.dir, &sessions);
        assert!(
            server
                .wait_stderr(|t| t.contains("File too large"))
                .is_some(),
            "{}",
            server.stderr_text()
        );
        println!(
            "{args:?}: {} messages acknowledged, all logged with their lines; {} later sessions",
            sessions[0].messages,
            sessions.len() - 1
        );
        server.stop();
    }
}
