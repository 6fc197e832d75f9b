//! `msglog-server users ...` against a running server and Debian's
//! `htpasswd`, and `msglog-server check` against configurations the server
//! would accept or refuse, through the real binary.

// These tests drive the server process with signals (stop, SIGHUP), umasks
// and resource limits: Unix only. What runs on Windows (under wine in CI)
// is the library's and the binary's unit tests; scripts/wine/ says why.
#![cfg(unix)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::*;

/// A cheap Argon2 cost for the tests' own users.
const CHEAP: [&str; 6] = ["--m-cost", "1024", "--t-cost", "1", "--p-cost", "1"];

fn htpasswd() -> &'static str {
    assert!(
        Path::new("/usr/bin/htpasswd").exists(),
        "htpasswd is needed: apt-get install apache2-utils (.ci/run installs it)"
    );
    "/usr/bin/htpasswd"
}

fn users(args: &[&str], password: &[u8], dir: &Path) -> (Option<i32>, String, String) {
    let mut all = vec!["users"];
    all.extend_from_slice(args);
    run(&all, password, Some(dir))
}

/// Whether `user` logs in with `password`: the PASSWORD's status.
fn logs_in(server: &Server, user: &str, password: &[u8]) -> bool {
    let mut stream = server.connect();
    stream.write_all(&login_bytes(user, password)).unwrap();
    let statuses = read_statuses(&mut stream, 2);
    statuses == [0, 0]
}

#[test]
fn htpasswd_files_work_and_users_edits_them_keeping_every_other_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    // bcrypt lines as Apache's tool writes them (-B; cost 5, its default).
    let made = Command::new(htpasswd())
        .args(["-B", "-c", "-b"])
        .arg(&file)
        .args(["alice", "wonderland"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("alice:$2y$05$"), "{text}");
    let mut with_comment = format!("# the team\n{text}");
    with_comment.push_str("# end\n");
    std::fs::write(&file, &with_comment).unwrap();
    let bcrypt_line = text.lines().next().unwrap().to_owned();

    let file_arg = file.to_str().unwrap();
    let server = Server::start(&["--users", file_arg]);
    assert!(logs_in(&server, "alice", b"wonderland"));
    assert!(!logs_in(&server, "alice", b"wonderlanD"));

    // Add bob (Argon2), change nothing else.
    let mut args = vec!["add", file_arg, "bob"];
    args.extend(CHEAP);
    let (code, _, stderr) = users(&args, b"builder\n", dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("added bob to"), "{stderr}");
    let after = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines[0], "# the team");
    assert!(
        lines.contains(&bcrypt_line.as_str()),
        "htpasswd's line kept"
    );
    assert!(lines.contains(&"# end"));
    assert!(lines
        .last()
        .unwrap()
        .starts_with("bob:$argon2id$v=19$m=1024,t=1,p=1$"));

    // Not before the reload: the server still has the old table.
    assert!(!logs_in(&server, "bob", b"builder"));
    server.signal(libc::SIGHUP);
    server
        .wait_stderr(|t| t.contains("SIGHUP: reloaded"))
        .expect("reloaded");
    assert!(logs_in(&server, "bob", b"builder"));
    assert!(logs_in(&server, "alice", b"wonderland"));

    let (code, stdout, _) = users(&["list", file_arg], b"", dir.path());
    assert_eq!(code, Some(0));
    assert_eq!(stdout, "alice\nbob\n");
    let (code, _, _) = users(&["verify", file_arg, "alice"], b"wonderland\n", dir.path());
    assert_eq!(code, Some(0));
    let (code, _, stderr) = users(&["verify", file_arg, "alice"], b"guess\n", dir.path());
    assert_eq!(code, Some(12), "{stderr}");
    assert_eq!(stderr, "msglog-server: error: wrong password for alice\n");
    let (code, _, _) = users(&["verify", file_arg, "nobody"], b"x\n", dir.path());
    assert_eq!(code, Some(11));

    // htpasswd verifies its own line still, and reads the file we wrote.
    let checked = Command::new(htpasswd())
        .args(["-v", "-b"])
        .arg(&file)
        .args(["alice", "wonderland"])
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");

    let (code, _, stderr) = users(&["remove", file_arg, "alice"], b"", dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, _) = users(&["remove", file_arg, "alice"], b"", dir.path());
    assert_eq!(code, Some(11));
    server.signal(libc::SIGHUP);
    server
        .wait_stderr(|t| t.matches("SIGHUP: reloaded").count() >= 2)
        .expect("reloaded again");
    assert!(!logs_in(&server, "alice", b"wonderland"));
    assert!(logs_in(&server, "bob", b"builder"));
    assert_eq!(
        std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with('#'))
            .count(),
        2,
        "comments kept"
    );
    server.stop();
}

#[test]
fn a_bcrypt_users_refusals_are_padded_to_the_costliest_argon2_check() {
    // bcrypt cost 4 is far cheaper than Argon2's default: a wrong password
    // for the bcrypt user must still take as long as an Argon2 check.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    let made = Command::new(htpasswd())
        .args(["-B", "-C", "4", "-c", "-b"])
        .arg(&file)
        .args(["cheap", "pw"])
        .output()
        .unwrap();
    assert!(made.status.success());
    let file_arg = file.to_str().unwrap();
    let (code, _, stderr) = users(
        &[
            "add", file_arg, "costly", "--m-cost", "8192", "--t-cost", "2",
        ],
        b"pw\n",
        dir.path(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let server = Server::start(&["--users", file_arg]);
    let time = |user: &str, password: &[u8]| {
        let mut samples: Vec<std::time::Duration> = (0..5)
            .map(|_| {
                let started = std::time::Instant::now();
                let accepted = logs_in(&server, user, password);
                assert!(!accepted || password == b"pw");
                started.elapsed()
            })
            .collect();
        samples.sort();
        samples[2]
    };
    // Right passwords first (they are not padded, and reset no back-off).
    let cheap_right = time("cheap", b"pw");
    let costly_right = time("costly", b"pw");
    assert!(
        costly_right > cheap_right,
        "{costly_right:?} vs {cheap_right:?}"
    );
    // Loopback addresses of their own, so the back-off does not add waits.
    let wrong = |user: &str, from: u8| {
        let mut samples = Vec::new();
        for i in 0..5u8 {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            let source = std::net::SocketAddr::from(([127, 1, from, i + 1], 0));
            socket.bind(&source.into()).unwrap();
            socket.connect(&server.addr.into()).unwrap();
            let mut stream: std::net::TcpStream = socket.into();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let started = std::time::Instant::now();
            stream.write_all(&login_bytes(user, b"wrong")).unwrap();
            assert_eq!(read_statuses(&mut stream, 2), [0, 0xFF]);
            samples.push(started.elapsed());
        }
        samples.sort();
        samples[2]
    };
    let cheap_wrong = wrong("cheap", 1);
    let costly_wrong = wrong("costly", 2);
    // Padded to a real Argon2 check's duration: far above bcrypt cost 4's.
    assert!(
        cheap_wrong * 2 > costly_wrong,
        "cheap {cheap_wrong:?} vs costly {costly_wrong:?}"
    );
    assert!(
        cheap_wrong > cheap_right * 2,
        "padded: {cheap_wrong:?} vs unpadded success {cheap_right:?}"
    );
    server.stop();
}

#[test]
fn check_prints_what_the_server_would_do_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    let mut args = vec!["add", file.to_str().unwrap(), "alice"];
    args.extend(CHEAP);
    assert_eq!(users(&args, b"pw\n", dir.path()).0, Some(0));
    let logs = dir.path().join("logs");
    let listing = |path: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing(dir.path());
    let (code, stdout, stderr) = run(
        &[
            "check",
            "--users",
            file.to_str().unwrap(),
            "--dir",
            logs.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
            "--pid-file",
            "msglog.pid",
            "--bind",
            "127.0.0.1",
            "0",
        ],
        b"",
        Some(dir.path()),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("would create the log directory"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would listen on 127.0.0.1:0 mode=framed"),
        "{stdout}"
    );
    assert!(stdout.contains("(1 users in "), "{stdout}");
    assert!(stdout.contains("would serve metrics on http://127.0.0.1:0/metrics"));
    assert!(stdout.ends_with("configuration OK\n"), "{stdout}");
    assert_eq!(listing(dir.path()), before, "nothing created");

    // An existing directory with a log: nothing changes in it either.
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("messages.log"), "[a]: x\r\n[a]: torn").unwrap();
    let (code, stdout, _) = run(
        &[
            "check",
            "--dir",
            logs.to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "0",
        ],
        b"",
        None,
    );
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("would move the 9 bytes after the last newline"),
        "{stdout}"
    );
    assert_eq!(listing(&logs), ["messages.log"]);
    assert_eq!(
        std::fs::read(logs.join("messages.log")).unwrap(),
        b"[a]: x\r\n[a]: torn"
    );
}

#[test]
fn check_exits_with_the_code_the_server_would_exit_with() {
    let dir = tempfile::tempdir().unwrap();
    let bad_users = dir.path().join("bad-users");
    std::fs::write(&bad_users, "alice:$apr1$abc$def\n").unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let torn = dir.path().join("torn");
    std::fs::create_dir(&torn).unwrap();
    std::fs::write(torn.join("messages.log"), "no newline").unwrap();
    std::fs::create_dir(torn.join("messages.log.torn")).unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["--users".into(), bad_users.display().to_string()],
            5,
            "bad-users:1: the hash is not an Argon2 hash, nor bcrypt",
        ),
        (
            vec!["--users".into(), "missing-users".into()],
            5,
            "cannot read users file missing-users",
        ),
        (
            vec!["--dir".into(), not_a_dir.display().to_string()],
            4,
            "Not a directory",
        ),
        (
            vec!["--dir".into(), torn.display().to_string()],
            8,
            "cannot move its unfinished last line",
        ),
        (
            vec!["--bind".into(), "192.0.2.1".into()],
            3,
            "Cannot assign requested address",
        ),
        (
            vec!["--max-connections".into(), "0".into()],
            2,
            "--max-connections",
        ),
        (
            vec!["--metrics".into(), "192.0.2.1:9555".into()],
            3,
            "--metrics: cannot listen on 192.0.2.1:9555",
        ),
        (
            vec!["--pid-file".into(), "missing/dir/pid".into()],
            10,
            "cannot write the PID file",
        ),
    ];
    for (args, expected, says) in cases {
        let mut all = vec!["check".to_owned()];
        all.extend(args.iter().cloned());
        if !args.iter().any(|a| a == "--dir") {
            all.extend(["--dir".into(), dir.path().display().to_string()]);
        }
        if !args.iter().any(|a| a == "--bind") {
            all.extend(["--bind".into(), "127.0.0.1".into()]);
        }
        all.push("0".into());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let (code, _, stderr) = run(&all, b"", Some(dir.path()));
        assert_eq!(code, Some(expected), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        // The server itself exits alike.
        if expected != 2 && expected != 10 {
            let serve: Vec<&str> = all[1..].to_vec();
            let (code, _, stderr) = run(&serve, b"", Some(dir.path()));
            assert_eq!(code, Some(expected), "serving {args:?}: {stderr}");
        }
    }
    // A privileged port, checked as a user without the privilege.
    let mut command = Command::new(BIN);
    command.args(["check", "--bind", "127.0.0.1", "--dir", "/tmp", "80"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("CAP_NET_BIND_SERVICE"), "{stderr}");
}

#[test]
fn check_raw_says_what_a_raw_server_would_do() {
    let (code, stdout, stderr) = run(
        &[
            "check",
            "--raw",
            "--bind",
            "127.0.0.1",
            "--raw-min-rate",
            "0",
            "0",
        ],
        b"",
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("would listen on 127.0.0.1:0 mode=raw output=stdout min-rate=0 B/s"),
        "{stdout}"
    );
    assert!(stdout.ends_with("configuration OK\n"), "{stdout}");
}
