//! Helpers shared by the integration tests: start the real binary on port 0
//! in a temp directory, learn its port from the start-up line, talk raw
//! protocol bytes to it, and wait for conditions with deadlines.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_msglog-server");

/// Generous bound for anything that should happen "at once".
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Poll `condition` every few milliseconds until it holds or `within` passes.
pub fn wait_until(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How to start a server.
#[derive(Default)]
pub struct Options {
    pub args: Vec<String>,
    /// RLIMIT_FSIZE in bytes.
    pub file_size_limit: Option<u64>,
    /// RLIMIT_NOFILE (soft and hard).
    pub open_files_limit: Option<u64>,
    /// Raw mode: stdout is piped to the test.
    pub raw: bool,
    /// Run in this directory instead of a fresh temp dir.
    pub dir: Option<PathBuf>,
    /// Listen on the default (all interfaces) instead of `--bind 127.0.0.1`.
    pub all_interfaces: bool,
    /// The server's umask (default: inherited).
    pub umask: Option<libc::mode_t>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Run as this user and group id (the test runs as root).
    pub run_as: Option<(libc::uid_t, libc::gid_t)>,
    /// Do not pass a port (the flags or socket activation decide).
    pub no_port: bool,
}

pub fn options(args: &[&str]) -> Options {
    Options {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    }
}

/// What a process writes to a pipe, read line by line on a thread; waiters
/// wake at every line and when the pipe closes.
#[derive(Default)]
pub struct Captured {
    /// The text so far, and whether the pipe has closed.
    state: Mutex<(String, bool)>,
    changed: Condvar,
}

impl Captured {
    pub fn spawn(pipe: impl Read + Send + 'static) -> Arc<Captured> {
        let captured = Arc::new(Captured::default());
        let writer = Arc::clone(&captured);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                writer.state.lock().unwrap().0.push_str(&line);
                writer.changed.notify_all();
                line.clear();
            }
            writer.state.lock().unwrap().1 = true;
            writer.changed.notify_all();
        });
        captured
    }

    pub fn text(&self) -> String {
        self.state.lock().unwrap().0.clone()
    }

    /// Wait until the text satisfies `condition` (then return it), the pipe
    /// closes without it, or `within` passes.
    pub fn wait(&self, within: Duration, condition: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut state = self.state.lock().unwrap();
        loop {
            let (text, closed) = &*state;
            if condition(text) {
                return Some(text.clone());
            }
            let now = Instant::now();
            if *closed || now >= deadline {
                return None;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
    }
}

/// A running server; killed on drop if still running.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    stderr: Arc<Captured>,
    pub stdout: Option<ChildStdout>,
}

impl Server {
    /// A framed server on 127.0.0.1, port 0, in a temp dir.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(options(args))
    }

    pub fn start_with(options: Options) -> Server {
        let (temp, dir) = match options.dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                let dir = temp.path().to_owned();
                (Some(temp), dir)
            }
        };
        let mut command = Command::new(BIN);
        command.current_dir(&dir);
        if !options.all_interfaces {
            command.args(["--bind", "127.0.0.1"]);
        }
        if options.raw {
            command.arg("--raw");
        }
        command.args(&options.args);
        if !options.no_port {
            command.arg("0");
        }
        command.envs(options.env.iter().map(|(k, v)| (k, v)));
        command
            .stdin(Stdio::null())
            .stdout(if options.raw {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        let limits = (options.file_size_limit, options.open_files_limit);
        let umask = options.umask;
        let run_as = options.run_as;
        // SAFETY: only async-signal-safe calls (setrlimit, umask, setgroups,
        // setgid, setuid) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if let Some(mask) = umask {
                    libc::umask(mask);
                }
                if let Some((uid, gid)) = run_as {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
                if let Some(bytes) = limits.0 {
                    set_limit(libc::RLIMIT_FSIZE, bytes)?;
                }
                if let Some(files) = limits.1 {
                    set_limit(libc::RLIMIT_NOFILE, files)?;
                }
                Ok(())
            });
        }
        let mut child = command.spawn().expect("start msglog-server");
        let stderr = Captured::spawn(child.stderr.take().expect("stderr pipe"));
        let stdout = child.stdout.take();
        let mut server = Server {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            dir,
            _temp: temp,
            stderr,
            stdout,
        };
        let line = server
            .wait_stderr(|text| text.contains("listening on "))
            .unwrap_or_else(|| panic!("no start-up line; stderr: {}", server.stderr_text()));
        let start = line.find("listening on ").unwrap() + "listening on ".len();
        let addr = line[start..].split_whitespace().next().unwrap();
        let listening: SocketAddr = addr.parse().expect("start-up line address");
        // Connect over IPv4 loopback whatever the server listens on.
        server.addr = SocketAddr::from(([127, 0, 0, 1], listening.port()));
        server
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }

    /// Wait until stderr satisfies `condition`; returns the text.
    pub fn wait_stderr(&self, condition: impl Fn(&str) -> bool) -> Option<String> {
        self.stderr.wait(PATIENCE, condition)
    }

    /// A connection with generous timeouts (a hung test fails instead of hanging).
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// A connection that has sent NAME and PASSWORD and seen both accepted.
    pub fn login(&self, name: &str) -> TcpStream {
        let mut stream = self.connect();
        stream.write_all(&login_bytes(name, b"secret")).unwrap();
        assert_eq!(read_statuses(&mut stream, 2), vec![0, 0], "login of {name}");
        stream
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn messages(&self) -> Vec<u8> {
        std::fs::read(self.path("messages.log")).unwrap_or_default()
    }

    pub fn transactions(&self) -> String {
        String::from_utf8(std::fs::read(self.path("transactions.log")).unwrap_or_default())
            .expect("transactions.log is UTF-8")
    }

    /// Wait until transactions.log satisfies `condition`; returns its text.
    pub fn wait_transactions(&self, condition: impl Fn(&str) -> bool) -> String {
        let mut text = String::new();
        let ok = wait_until(PATIENCE, || {
            text = self.transactions();
            condition(&text)
        });
        assert!(ok, "transactions.log never got there:\n{text}");
        text
    }

    /// Wait until `count` lines of transactions.log contain `needle`.
    pub fn wait_lines(&self, needle: &str, count: usize) -> String {
        self.wait_transactions(|text| text.lines().filter(|l| l.contains(needle)).count() >= count)
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Wait for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(within, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status
    }

    /// SIGTERM, then wait for a clean exit; returns stderr.
    pub fn stop(mut self) -> String {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(PATIENCE).expect("server did not stop");
        let text = self
            .wait_stderr(|t| t.contains("stopped"))
            .unwrap_or_else(|| self.stderr_text());
        assert!(status.success(), "exit status {status:?}; stderr:\n{text}");
        text
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Make sure this test process may open `needed` descriptors (soft limit up to the hard one).
pub fn raise_fd_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only touch the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < needed {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit only reads the struct.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A transaction: tag, little-endian length, payload.
pub fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("payload fits a frame");
    let mut out = vec![tag];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn name(name: &str) -> Vec<u8> {
    frame(1, name.as_bytes())
}

pub fn password(password: &[u8]) -> Vec<u8> {
    frame(2, password)
}

pub fn message(message: &[u8]) -> Vec<u8> {
    frame(3, message)
}

pub const CLOSE: &[u8] = &[4];

pub fn login_bytes(user: &str, secret: &[u8]) -> Vec<u8> {
    let mut out = name(user);
    out.extend(password(secret));
    out
}

/// Read exactly `n` status bytes (fewer if the connection ends or is reset first).
pub fn read_statuses(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut statuses = Vec::with_capacity(n);
    let mut byte = [0u8; 1];
    while statuses.len() < n {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => statuses.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading statuses: {e} (got {statuses:?})"),
        }
    }
    statuses
}

/// Everything until the server closes the connection (a reset counts as closed).
pub fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return rest,
            Ok(n) => rest.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return rest,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading to the end: {e} (got {rest:?})"),
        }
    }
}

/// The lines of transactions.log with the timestamp replaced by `T` and
/// the client port by `P`, after checking the timestamp's shape.
pub fn normalize(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let (timestamp, rest) = line.split_once(' ').expect("timestamp");
            assert_timestamp(timestamp);
            let mut fields: Vec<String> = rest.split(' ').map(str::to_owned).collect();
            for field in &mut fields {
                if let Some(peer) = field.strip_prefix("peer=") {
                    let (host, _) = peer.rsplit_once(':').expect("peer port");
                    *field = format!("peer={host}:P");
                }
            }
            format!("T {}", fields.join(" "))
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, and within a day of now.
pub fn assert_timestamp(text: &str) {
    let bytes = text.as_bytes();
    assert_eq!(bytes.len(), 24, "{text}");
    for (i, &b) in bytes.iter().enumerate() {
        let expected_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23);
        assert_eq!(b.is_ascii_digit(), expected_digit, "{text}");
    }
    assert_eq!(&text[4..5], "-");
    assert_eq!(&text[10..11], "T");
    assert_eq!(&text[19..20], ".");
    assert_eq!(&text[23..24], "Z");
}

/// Lines of transactions.log for one connection id.
pub fn lines_of(text: &str, conn: u64) -> Vec<String> {
    let needle = format!(" conn={conn} ");
    normalize(text)
        .into_iter()
        .filter(|l| l.contains(&needle))
        .collect()
}

/// The connection ids in transactions.log, in order of their `open` lines.
pub fn connection_ids(text: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| l.ends_with("event=open"))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("conn=")))
        .filter_map(|id| id.parse().ok())
        .collect()
}

/// The id of the only connection in the log.
pub fn only_connection(text: &str) -> u64 {
    let ids = connection_ids(text);
    assert_eq!(ids.len(), 1, "{text}");
    ids[0]
}

/// The records of messages.log, split at their `\r\n`.
pub fn records(log: &[u8]) -> Vec<String> {
    assert!(
        log.is_empty() || log.ends_with(b"\r\n"),
        "torn record at the end: {log:?}"
    );
    String::from_utf8_lossy(log)
        .split_terminator("\r\n")
        .map(str::to_owned)
        .collect()
}

/// Run the binary to completion with `stdin` bytes; (exit code, stdout, stderr).
pub fn run(args: &[&str], stdin: &[u8], dir: Option<&Path>) -> (Option<i32>, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().expect("start msglog-server");
    // A process that exits without reading (a usage error) closes the pipe.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let mut exited = None;
    assert!(
        wait_until(PATIENCE * 3, || {
            exited = child.try_wait().unwrap();
            exited.is_some()
        }),
        "{args:?} did not finish"
    );
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// One entry of a side file (`messages.log.torn`): the header line's
/// fields and the exact bytes that were moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideEntry {
    pub timestamp: String,
    pub log: String,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Parse a side file: entries of `# TIMESTAMP moved from LOG offset=N len=L\n`,
/// the L bytes, `\n`. Panics on anything else.
pub fn side_entries(side: &[u8]) -> Vec<SideEntry> {
    let mut rest = side;
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .expect("a header line");
        let header = std::str::from_utf8(&rest[..end]).expect("a UTF-8 header");
        let fields: Vec<&str> = header.split(' ').collect();
        assert_eq!(fields.len(), 7, "header {header:?}");
        assert_eq!((fields[0], fields[2], fields[3]), ("#", "moved", "from"));
        assert_timestamp(fields[1]);
        let number = |field: &str, key: &str| -> u64 {
            field
                .strip_prefix(key)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{key} in {header:?}"))
        };
        let offset = number(fields[5], "offset=");
        let len = number(fields[6], "len=") as usize;
        let body = &rest[end + 1..];
        assert!(body.len() > len, "entry shorter than its len: {header:?}");
        assert_eq!(
            body[len], b'\n',
            "entry not followed by a newline: {header:?}"
        );
        entries.push(SideEntry {
            timestamp: fields[1].to_owned(),
            log: fields[4].to_owned(),
            offset,
            bytes: body[..len].to_vec(),
        });
        rest = &body[len + 1..];
    }
    entries
}

/// The bytes after the last `\n` (all of them if there is none): what a
/// start-up moves to the side file.
pub fn unfinished_tail(log: &[u8]) -> &[u8] {
    match log.iter().rposition(|&b| b == b'\n') {
        Some(i) => &log[i + 1..],
        None => log,
    }
}

/// How one session of [`send_until_refused`] was answered.
#[derive(Debug, Default, Clone, Copy)]
pub struct Answered {
    pub name: bool,
    pub password: bool,
    /// MESSAGEs answered 0x00.
    pub messages: usize,
    pub close: bool,
    /// A transaction was answered 0xFF.
    pub refused: bool,
}

/// Log in as `user`, then send up to `total` one-byte MESSAGEs, `group` per
/// write, reading each group's statuses before the next, until one is
/// answered 0xFF; then CLOSE.
pub fn send_until_refused(addr: SocketAddr, user: &str, total: usize, group: usize) -> Answered {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    let mut answered = Answered::default();
    stream.write_all(&login_bytes(user, b"pw")).unwrap();
    let login = read_statuses(&mut stream, 2);
    answered.name = login.first() == Some(&0);
    answered.password = login.get(1) == Some(&0);
    if login != [0, 0] {
        answered.refused = login.contains(&0xFF);
        return answered;
    }
    let mut sent = 0;
    while sent < total {
        let n = group.min(total - sent);
        let bytes: Vec<u8> = (0..n).flat_map(|_| message(b"x")).collect();
        if stream.write_all(&bytes).is_err() {
            break;
        }
        sent += n;
        let statuses = read_statuses(&mut stream, n);
        answered.messages += statuses.iter().take_while(|&&s| s == 0).count();
        if statuses != vec![0; n] {
            answered.refused = statuses.contains(&0xFF);
            return answered;
        }
    }
    if stream.write_all(CLOSE).is_ok() {
        let last = read_to_end(&mut stream);
        answered.close = last.first() == Some(&0);
        answered.refused = last.first() == Some(&0xFF);
    }
    answered
}

/// Check that the logs in `dir` hold exactly what `sessions` were answered
/// 0x00 for (users' messages are one byte, `x`): one record per
/// acknowledged MESSAGE, one `ok` line per 0x00, no torn record or line.
pub fn assert_logs_match(dir: &Path, sessions: &[Answered]) {
    let messages = std::fs::read(dir.join("messages.log")).unwrap_or_default();
    let transactions = std::fs::read(dir.join("transactions.log")).unwrap_or_default();
    let records = records(&messages);
    assert!(
        transactions.is_empty() || transactions.ends_with(b"\n"),
        "a torn line at the end of transactions.log"
    );
    let text = String::from_utf8(transactions).expect("transactions.log is UTF-8");
    let lines = normalize(&text);
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    let sum = |f: fn(&Answered) -> usize| sessions.iter().map(f).sum::<usize>();
    let acked = sum(|a| a.messages);
    assert!(records.iter().all(|r| r.ends_with("]: x")), "{records:?}");
    assert_eq!(records.len(), acked, "records vs MESSAGEs answered 0x00");
    assert_eq!(
        count(" tag=MESSAGE len=1 outcome=ok"),
        acked,
        "MESSAGE lines"
    );
    assert_eq!(
        count(" outcome=ok name="),
        sum(|a| usize::from(a.name)),
        "NAME lines"
    );
    assert_eq!(
        count(" tag=PASSWORD len=- outcome=ok"),
        sum(|a| usize::from(a.password)),
        "PASSWORD lines"
    );
    assert_eq!(
        count(" tag=CLOSE len=- outcome=ok"),
        sum(|a| usize::from(a.close)),
        "CLOSE lines"
    );
}
