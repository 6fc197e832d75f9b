//! Test support: the real `msglog-server` binary as a child process on
//! 127.0.0.1, with deadlines instead of sleeps. The command line's tests
//! (`cli/tests/common`) include this file and add the client process.
#![allow(dead_code)] // Each test crate uses a different part.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Longest wait for anything in these tests.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Build a target of the workspace (`--bin NAME`, `--example NAME`) in the
/// tests' profile with the cargo that runs them; its executable's path, as
/// cargo reports it (which honours `CARGO_TARGET_DIR`).
///
/// Where the tests run without cargo (under wine: scripts/wine/), the
/// executables are built beforehand into the profile directory that
/// `MSGLOG_PREBUILT` names, and taken from there.
pub fn cargo_build(package: &str, kind: &str, name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("MSGLOG_PREBUILT") {
        let dir = PathBuf::from(dir);
        let dir = if kind == "--example" {
            dir.join("examples")
        } else {
            dir
        };
        return dir
            .join(name)
            .with_extension(std::env::consts::EXE_EXTENSION);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", package, kind, name, "--message-format=json"]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let output = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "building {name} failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == name)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo names the {name} executable"))
}

/// The `msglog-server` binary, built once per test process.
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| cargo_build("msglog-server", "--bin", "msglog-server"))
}

/// Poll `condition` until it holds; panic with `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Wait for a child to exit; kill it and panic after `limit`.
pub fn wait_child(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait works") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child process did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A running `msglog-server`; killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    /// Its log directory (framed mode).
    pub dir: PathBuf,
    /// Everything it printed on stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// `msglog-server --raw` on a free port, stdout into `output`.
    pub fn raw(output: &Path) -> Server {
        Server::raw_with(File::create(output).expect("output file"), &[])
    }

    /// `msglog-server --raw` with extra arguments on a free port, stdout into `stdout`.
    pub fn raw_with(stdout: impl Into<Stdio>, extra: &[&str]) -> Server {
        let mut command = Command::new(server_binary());
        command
            .args(["--raw", "--bind", "127.0.0.1"])
            .args(extra)
            .arg("0");
        command.stdout(stdout);
        Server::spawn(command, PathBuf::new())
    }

    /// Framed `msglog-server` on a free port with its logs in `dir`.
    pub fn framed(dir: &Path) -> Server {
        Server::framed_with(dir, 0, &[], |_| {})
    }

    /// Framed `msglog-server` on `port` (0: a free one) with extra
    /// arguments, after `configure` (e.g. resource limits) on the command.
    pub fn framed_with(
        dir: &Path,
        port: u16,
        extra: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        let mut command = Command::new(server_binary());
        command
            .args(["--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .args(extra)
            .arg(port.to_string())
            .stdout(Stdio::piped());
        configure(&mut command);
        Server::spawn(command, dir.to_owned())
    }

    /// Start the same server again on the same port and directory.
    pub fn restart(&mut self, extra: &[&str]) {
        self.kill();
        *self = Server::framed_with(&self.dir.clone(), self.port, extra, |_| {});
    }

    fn spawn(mut command: Command, dir: PathBuf) -> Server {
        command.stdin(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("msglog-server starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (port_found, port) = mpsc::channel();
        // The start-up line names the bound port (stderr; stdout in framed mode too).
        if let Some(stdout) = child.stdout.take() {
            watch_lines(
                stdout,
                Arc::new(Mutex::new(String::new())),
                port_found.clone(),
            );
        }
        let pipe = child.stderr.take().expect("stderr is piped");
        watch_lines(pipe, Arc::clone(&stderr), port_found);
        let port = wait_port(&mut child, &port, &stderr);
        Server {
            child,
            port,
            dir,
            stderr,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send `signal` (e.g. `libc::SIGTERM`).
    #[cfg(unix)]
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, signal) }, 0);
    }

    /// Wait for the server to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_child(&mut self.child, DEADLINE)
    }

    /// Wait until stderr contains `needle`; returns all of it.
    pub fn wait_stderr(&self, needle: &str) -> String {
        let mut text = String::new();
        wait_until(&format!("the server said {needle:?}"), || {
            text = self.stderr();
            text.contains(needle)
        });
        text
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn watch_lines(
    pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    port_found: mpsc::Sender<u16>,
) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = port_in(&line) {
                let _ = port_found.send(port);
            }
            if let Ok(mut sink) = sink.lock() {
                sink.push_str(&line);
                sink.push('\n');
            }
        }
    });
}

fn wait_port(child: &mut Child, port: &Receiver<u16>, stderr: &Mutex<String>) -> u16 {
    let start = Instant::now();
    loop {
        if let Ok(port) = port.recv_timeout(Duration::from_millis(20)) {
            return port;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "msglog-server exited ({status}) before listening:\n{}",
                stderr.lock().map(|s| s.clone()).unwrap_or_default()
            );
        }
        assert!(start.elapsed() < DEADLINE, "msglog-server printed no port");
    }
}

/// The port in a start-up line: a socket address such as `127.0.0.1:4242`
/// or `[::]:4242`, or `port 4242` / `port=4242`.
fn port_in(line: &str) -> Option<u16> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .map(|w| w.trim_matches(|c: char| matches!(c, '"' | '\'' | '(' | ')' | '<' | '>')))
        .collect();
    for (i, word) in words.iter().enumerate() {
        if let Ok(addr) = word.parse::<SocketAddr>() {
            return Some(addr.port());
        }
        if let Some(port) = word.strip_prefix("port=").and_then(|p| p.parse().ok()) {
            return Some(port);
        }
        if word.eq_ignore_ascii_case("port") {
            if let Some(port) = words.get(i + 1).and_then(|p| p.parse().ok()) {
                return Some(port);
            }
        }
    }
    None
}

/// The records of `messages.log` in `dir`, each without its `\r\n`.
pub fn records(dir: &Path) -> Vec<Vec<u8>> {
    let log = fs::read(dir.join("messages.log")).unwrap_or_default();
    let mut records: Vec<Vec<u8>> = log.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if records.last().is_some_and(Vec::is_empty) {
        records.pop();
    }
    for record in &mut records {
        assert_eq!(record.pop(), Some(b'\r'), "a record ends in \\r\\n");
    }
    records
}

/// The record the server writes for `message` from `user`.
pub fn record(user: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    msglog_core::write_record(&mut out, user, message).expect("a Vec takes every byte");
    out.truncate(out.len() - 2);
    out
}

/// Bytes received and not yet read by the established TCP sockets whose
/// local port is `port` (a stopped server's side of its connections), from
/// `/proc/net/tcp`.
pub fn unread_bytes(port: u16) -> u64 {
    let table = fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let established = *fields.get(3)? == "01";
            let rx_queue = fields.get(4)?.split(':').nth(1)?;
            (established && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| u64::from_str_radix(rx_queue, 16).ok())
                .flatten()
        })
        .sum()
}
