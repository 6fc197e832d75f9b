//! Test support: the real `msglog-client` binary as a child process, and
//! the library's server harness (`std-client/tests/common`) for the
//! servers it talks to.
#![allow(dead_code)] // Each test crate uses a different part.

#[path = "../../../tests/common/mod.rs"]
mod server;

use std::fs;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use server::*;

pub const CLIENT: &str = env!("CARGO_BIN_EXE_msglog-client");

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

/// A process's peak resident memory (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}
