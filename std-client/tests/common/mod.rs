//! Test support: the real `msglog-server` and `msglog-client` binaries as
//! child processes on 127.0.0.1, with deadlines instead of sleeps.
#![allow(dead_code)] // Each test crate uses a different part.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest wait for anything in these tests.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub const CLIENT: &str = env!("CARGO_BIN_EXE_msglog-client");

/// The `msglog-server` binary, built once per test process.
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let out_dir = Path::new(CLIENT)
            .parent()
            .expect("the client binary has a directory");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "msglog-server", "--bin", "msglog-server"]);
        if out_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building msglog-server failed");
        out_dir.join("msglog-server")
    })
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

/// How a client run ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// A `msglog-client` process with stdin piped from the test.
pub struct ClientProcess {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ClientProcess {
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> ClientProcess {
        let mut child = Command::new(CLIENT)
            .args(args)
            .env_remove("MSGLOG_PASSWORD")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("msglog-client starts");
        let stdin = child.stdin.take();
        ClientProcess { child, stdin }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Write to the client's stdin.
    pub fn write(&mut self, bytes: &[u8]) {
        self.stdin
            .as_mut()
            .expect("stdin is open")
            .write_all(bytes)
            .expect("the client reads its stdin");
    }

    /// Write to the client's stdin; an error once the client stopped reading.
    pub fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(bytes),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Close stdin: end of input.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Close stdin and wait for the client to exit.
    pub fn finish(mut self) -> Finished {
        drop(self.stdin.take());
        self.exit_within(DEADLINE)
    }

    /// Wait for the client to exit by itself, its stdin still open, for at
    /// most `limit`; returns how it ended and how long that took.
    pub fn exits_by_itself(mut self, limit: Duration) -> (Finished, Duration) {
        let start = Instant::now();
        let finished = self.exit_within(limit);
        (finished, start.elapsed())
    }

    fn exit_within(&mut self, limit: Duration) -> Finished {
        let status = wait_child(&mut self.child, limit);
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        Finished { status, stderr }
    }
}

/// Run the client to the end with `input` on stdin.
pub fn run_client(args: &[&str], env: &[(&str, &str)], input: Vec<u8>) -> Finished {
    let mut client = ClientProcess::start(args, env);
    let stdin = client.stdin.take().expect("stdin is piped");
    let writer: JoinHandle<()> = thread::spawn(move || {
        let mut stdin = stdin;
        // A client that fails early stops reading: that is not this thread's error.
        let _ = stdin.write_all(&input);
    });
    let finished = client.finish();
    let _ = writer.join();
    finished
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

/// A process's peak resident memory (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
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
