//! Running the server as a service, through the real binary and the real
//! tools around it: the systemd notify protocol on a unix datagram socket,
//! socket activation through `systemd-socket-activate`, the unit files
//! through `systemd-analyze verify`, `--pid-file` with `logrotate`, a
//! privileged port, `--dir` created, start-up warnings, usage errors, and
//! `--generate`'s completions and man page through bash and man.

// These tests drive the server process with signals (stop, SIGHUP), umasks
// and resource limits: Unix only. What runs on Windows (under wine in CI)
// is the library's and the binary's unit tests; scripts/wine/ says why.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::*;
use msglog_client::{Connection, Credentials, Options};

/// The uid and gid of `nobody` on Debian.
const NOBODY: (libc::uid_t, libc::gid_t) = (65534, 65534);

/// A program the test needs; its absence fails the test with what to install.
fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} is needed: apt-get install {package} (.ci/run installs it)");
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `CLOCK_MONOTONIC` in microseconds, as systemd reads it.
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct we pass.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) },
        0
    );
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000
}

/// The service manager's side of sd_notify(3): one datagram per call.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        NotifySocket {
            socket,
            path,
            _dir: dir,
        }
    }

    /// The next message's `KEY=value` lines.
    fn next(&self) -> Vec<String> {
        let mut buffer = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buffer)
            .expect("a notification within the patience");
        String::from_utf8(buffer[..n].to_vec())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn value<'a>(message: &'a [String], key: &str) -> Option<&'a str> {
    message
        .iter()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn the_notify_protocol_says_ready_reloading_and_stopping_in_order() {
    let notify = NotifySocket::new();
    let mut options = options(&[]);
    options.env = vec![("NOTIFY_SOCKET".into(), notify.path.to_str().unwrap().into())];
    let mut server = Server::start_with(options);

    let ready = notify.next();
    assert_eq!(ready[0], "READY=1", "{ready:?}");
    let status = value(&ready, "STATUS").expect("a STATUS with READY");
    assert!(
        status.contains(&format!(":{}", server.addr.port())),
        "{status}"
    );

    let before = monotonic_usec();
    server.signal(libc::SIGHUP);
    let reloading = notify.next();
    assert_eq!(reloading[0], "RELOADING=1", "{reloading:?}");
    let usec: u64 = value(&reloading, "MONOTONIC_USEC")
        .expect("MONOTONIC_USEC with RELOADING")
        .parse()
        .unwrap();
    assert!(
        usec >= before && usec <= monotonic_usec(),
        "{usec} not within the reload"
    );
    let ready_again = notify.next();
    assert_eq!(ready_again[0], "READY=1", "{ready_again:?}");
    assert!(
        server
            .wait_stderr(|t| t.contains("SIGHUP: reopened"))
            .is_some(),
        "the reload happened between RELOADING and READY"
    );

    server.signal(libc::SIGTERM);
    let stopping = notify.next();
    assert_eq!(stopping[0], "STOPPING=1", "{stopping:?}");
    assert!(value(&stopping, "STATUS").unwrap().starts_with("stopping"));
    let last = notify.next();
    assert!(
        value(&last, "STATUS").unwrap().starts_with("stopped after"),
        "{last:?}"
    );
    assert!(server.wait_exit(PATIENCE).unwrap().success());
}

/// `systemd-socket-activate` listening on `addr`, running `command` on
/// the first connection with the socket.
fn socket_activate(
    addr: SocketAddr,
    command: &[&str],
    dir: &Path,
) -> (Child, std::sync::Arc<Captured>) {
    let mut activate = Command::new(tool("systemd-socket-activate", "systemd"));
    activate
        .arg("-l")
        .arg(addr.to_string())
        .args(command)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = activate.spawn().expect("systemd-socket-activate");
    let stderr = Captured::spawn(child.stderr.take().unwrap());
    stderr
        .wait(PATIENCE, |t| t.contains("Listening on"))
        .unwrap_or_else(|| panic!("not listening: {}", stderr.text()));
    (child, stderr)
}

#[test]
fn socket_activation_serves_the_passed_socket_from_the_first_connection() {
    let dir = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (mut child, stderr) = socket_activate(addr, &[BIN, "--dir", "logs"], dir.path());
    // Nothing runs yet: the server starts on this connection.
    let credentials = Credentials::new("alice", "secret");
    let mut connection = Connection::open(addr, &credentials, &Options::default()).expect("served");
    connection
        .send_pipelined(["one", "two", "three"])
        .expect("acknowledged");
    connection.close().unwrap();
    let text = stderr
        .wait(PATIENCE, |t| t.contains("(socket activation)"))
        .unwrap_or_else(|| panic!("{}", stderr.text()));
    assert!(
        text.contains(&format!(
            "listening on {addr} mode=framed (socket activation)"
        )),
        "{text}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("logs/messages.log")).unwrap(),
        b"[alice]: one\r\n[alice]: two\r\n[alice]: three\r\n"
    );
    // systemd-socket-activate exec'd the server: its PID is the server's.
    // SAFETY: kill(2) on our child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(wait_child(&mut child).success());
}

#[test]
fn socket_activation_serves_raw_mode_too() {
    let dir = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (mut child, _stderr) = socket_activate(addr, &[BIN, "--raw"], dir.path());
    let mut stdout = child.stdout.take().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"raw bytes\n").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).unwrap();
    assert!(answer.is_empty(), "a clean close, no byte");
    let mut received = [0u8; 10];
    stdout.read_exact(&mut received).unwrap();
    assert_eq!(&received, b"raw bytes\n");
    // SAFETY: kill(2) on our child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(wait_child(&mut child).success());
}

#[test]
fn socket_activation_with_two_sockets_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let second = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut activate = Command::new(tool("systemd-socket-activate", "systemd"));
    activate
        .args(["-l", &first.to_string(), "-l", &second.to_string(), BIN])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = activate.spawn().unwrap();
    let stderr = Captured::spawn(child.stderr.take().unwrap());
    stderr
        .wait(PATIENCE, |t| t.matches("Listening on").count() == 2)
        .unwrap_or_else(|| panic!("{}", stderr.text()));
    let _knock = TcpStream::connect(first).unwrap();
    let status = wait_child(&mut child);
    assert_eq!(status.code(), Some(3), "{}", stderr.text());
    let text = stderr.wait(PATIENCE, |t| t.contains("error:")).unwrap();
    assert!(
        text.contains("socket activation passed 2 sockets; msglog-server takes one"),
        "{text}"
    );
}

/// A port below 1024 that nothing listens on.
fn free_privileged_port() -> u16 {
    (900..1000)
        .find(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port below 1000")
}

#[test]
fn a_privileged_port_without_privilege_names_the_fix_and_socket_activation_is_one() {
    let port = free_privileged_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mut server = Command::new(BIN);
    server
        .args(["--bind", "127.0.0.1", "--dir", "."])
        .arg(port.to_string())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    drop_privileges(&mut server);
    let output = server.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("Permission denied")
            && stderr.contains("CAP_NET_BIND_SERVICE")
            && stderr.contains("socket activation"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // The same user serves the port when systemd-socket-activate (root)
    // binds it and setpriv drops to nobody before exec'ing the server.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let setpriv = tool("setpriv", "util-linux");
    let (mut child, stderr) = socket_activate(
        addr,
        &[
            setpriv.to_str().unwrap(),
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "--dir",
            ".",
        ],
        dir.path(),
    );
    let credentials = Credentials::new("bob", "secret");
    let mut connection = Connection::open(addr, &credentials, &Options::default())
        .unwrap_or_else(|e| panic!("{e}: {}", stderr.text()));
    connection.send(b"from a privileged port").unwrap();
    connection.close().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|id| id == "65534"),
        "{uid}"
    );
    // SAFETY: kill(2) on our child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(wait_child(&mut child).success());
}

fn drop_privileges(command: &mut Command) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY.1) != 0
                || libc::setuid(NOBODY.0) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn wait_child(child: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    assert!(
        wait_until(PATIENCE, || {
            status = child.try_wait().unwrap();
            status.is_some()
        }),
        "did not exit"
    );
    status.unwrap()
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist");
    let dir = tempfile::tempdir().unwrap();
    // Verified as installed, with the binary where the unit expects it.
    let unit = std::fs::read_to_string(dist.join("msglog-server.service"))
        .unwrap()
        .replace("/usr/local/bin/msglog-server", BIN);
    std::fs::write(dir.path().join("msglog-server.service"), unit).unwrap();
    std::fs::copy(
        dist.join("msglog-server.socket"),
        dir.path().join("msglog-server.socket"),
    )
    .unwrap();
    let output = Command::new(tool("systemd-analyze", "systemd"))
        .args(["verify", "--man=no"])
        .args(["./msglog-server.service", "./msglog-server.socket"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr, "", "no warning");
    let unit = std::fs::read_to_string(dist.join("msglog-server.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=msglog",
        "RestartPreventExitStatus=2 3 4 5 8 9 10 13 14",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line}");
    }
}

#[test]
fn the_pid_file_serves_logrotate_one_hup_per_rotation() {
    let logrotate = tool("logrotate", "logrotate");
    let server = Server::start(&["--pid-file", "msglog.pid"]);
    let pid_file = server.path("msglog.pid");
    // Written once the server serves, after its start-up line.
    let expected = format!("{}\n", server.pid());
    assert!(wait_until(PATIENCE, || std::fs::read_to_string(&pid_file)
        .is_ok_and(|text| text == expected)));
    let mut alice = server.login("alice");
    alice.write_all(&message(b"before the rotation")).unwrap();
    assert_eq!(read_statuses(&mut alice, 1), [0]);

    // The README's snippet, with this test's paths.
    let config = server.path("logrotate.conf");
    std::fs::write(
        &config,
        format!(
            "{dir}/messages.log {dir}/transactions.log {{\n    daily\n    rotate 14\n    missingok\n    notifempty\n    sharedscripts\n    postrotate\n        kill -HUP \"$(cat {pid})\"\n    endscript\n}}\n",
            dir = server.dir.display(),
            pid = pid_file.display()
        ),
    )
    .unwrap();
    let output = Command::new(logrotate)
        .arg("--force")
        .arg("--state")
        .arg(server.path("logrotate.state"))
        .arg(&config)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    server
        .wait_stderr(|t| t.contains("SIGHUP: reopened"))
        .expect("reopened");

    alice.write_all(&message(b"after the rotation")).unwrap();
    assert_eq!(read_statuses(&mut alice, 1), [0]);
    alice.write_all(CLOSE).unwrap();
    assert_eq!(read_to_end(&mut alice), [0]);
    assert_eq!(
        std::fs::read(server.path("messages.log.1")).unwrap(),
        b"[alice]: before the rotation\r\n"
    );
    assert_eq!(
        server.messages(),
        b"[alice]: after the rotation\r\n",
        "written to the new file after the HUP"
    );
    assert!(server
        .wait_transactions(|t| t.contains("tag=CLOSE"))
        .contains("tag=MESSAGE len=18 outcome=ok"));
    let text = server.stop();
    assert_eq!(
        text.matches("SIGHUP: reopened").count(),
        1,
        "one HUP for both logs: {text}"
    );
    assert!(!pid_file.exists(), "removed at a clean stop");
}

#[test]
fn a_pid_file_that_cannot_be_written_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(
        &[
            "--bind",
            "127.0.0.1",
            "--dir",
            ".",
            "--pid-file",
            "missing/dir/msglog.pid",
            "0",
        ],
        b"",
        Some(dir.path()),
    );
    assert_eq!(code, Some(10), "{stderr}");
    assert!(
        stderr.contains("error: cannot write the PID file missing/dir/msglog.pid"),
        "{stderr}"
    );
}

#[test]
fn a_missing_log_directory_is_created() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("a/b/logs");
    let server = Server::start(&["--dir", dir.to_str().unwrap()]);
    assert!(dir.is_dir());
    let mut bob = server.login("bob");
    bob.write_all(&message(b"hello")).unwrap();
    assert_eq!(read_statuses(&mut bob, 1), [0]);
    assert_eq!(
        std::fs::read(dir.join("messages.log")).unwrap(),
        b"[bob]: hello\r\n"
    );
    let text = server.stop();
    assert!(text.contains("created the log directory"), "{text}");
}

#[test]
fn senseless_flags_are_usage_errors_at_once() {
    for args in [
        &["--max-connections", "0"][..],
        &["--workers", "100000"],
        &["--workers", "0"],
        &["hash-password", "--m-cost", "1", "alice"],
        &["hash-password", "--p-cost", "0", "alice"],
        &[
            "users", "add", "users", "alice", "--m-cost", "8", "--p-cost", "2",
        ],
        &["--metrics", "not-an-address"],
    ] {
        let started = Instant::now();
        let (code, stdout, stderr) = run(args, b"secret\n", None);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("msglog-server: "), "{stderr}");
        assert!(stdout.is_empty());
        assert!(started.elapsed() < PATIENCE, "at once");
    }
}

/// Start the server with `args` (and `-q`, so no start-up line), wait
/// for `needle` on stderr, stop it; its stderr.
fn quiet_stderr_until(args: &[&str], needle: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["-q", "--bind", "127.0.0.1", "--dir", "."])
        .args(args)
        .arg("0")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Captured::spawn(child.stderr.take().unwrap());
    // An empty users file is measured at Argon2's default cost: slow in debug.
    let text = stderr.wait(PATIENCE * 3, |t| t.contains(needle));
    // SAFETY: kill(2) on our child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(wait_child(&mut child).success());
    text.unwrap_or_else(|| panic!("{needle} not in {}", stderr.text()))
}

#[test]
fn weak_authentication_is_warned_about_even_with_q() {
    let text = quiet_stderr_until(&["--auth", "legacy-parity"], "legacy-parity");
    assert!(
        text.starts_with(
            "msglog-server: warning: --auth legacy-parity: any password whose first byte is odd"
        ),
        "{text}"
    );
    let users = tempfile::tempdir().unwrap();
    let file = users.path().join("users");
    std::fs::write(&file, "# nobody yet\n").unwrap();
    let text = quiet_stderr_until(&["--users", file.to_str().unwrap()], "lists no users");
    assert!(text.contains("every login is refused"), "{text}");
}

/// Runs `msglog-server --generate KIND`.
fn generate(kind: &str) -> Vec<u8> {
    let output = Command::new(BIN)
        .args(["--generate", kind])
        .output()
        .unwrap();
    assert!(output.status.success(), "{kind}: {output:?}");
    output.stdout
}

#[test]
fn completions_parse_in_bash_and_the_man_page_renders() {
    let dir = tempfile::tempdir().unwrap();
    let bash = dir.path().join("msglog-server.bash");
    std::fs::write(&bash, generate("complete-bash")).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&bash).output().unwrap();
    assert!(syntax.status.success(), "{syntax:?}");
    // Sourced, it completes the subcommands and flags.
    let script = format!(
        "source {}; complete -p msglog-server; COMP_WORDS=(msglog-server us); COMP_CWORD=1; \
         _msglog__server msglog-server us msglog-server; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bash.display()
    );
    let sourced = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&sourced.stdout);
    assert!(sourced.status.success(), "{sourced:?}");
    assert!(out.contains("-F _msglog__server msglog-server"), "{out}");
    assert!(out.lines().any(|l| l == "users"), "{out}");
    for kind in ["complete-zsh", "complete-fish"] {
        assert!(String::from_utf8(generate(kind))
            .unwrap()
            .contains("msglog-server"));
    }

    let page = dir.path().join("msglog-server.1");
    std::fs::write(&page, generate("man")).unwrap();
    let rendered = Command::new(tool("man", "man-db"))
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.status.success(), "{rendered:?}");
    assert!(
        !rendered.stderr.iter().any(|_| true),
        "{:?}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    for needle in [
        "msglog-server",
        "--max-connections",
        "--metrics",
        "hash-password",
        "users",
        "check",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
}
