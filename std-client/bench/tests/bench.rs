//! `msglog-bench` against the real `msglog-server` binary: real processes,
//! sockets on 127.0.0.1, logs in temp directories.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_msglog-bench");

/// Every wait in these tests ends by this deadline.
const DEADLINE: Duration = Duration::from_secs(60);

/// The server binary, built once per test run by the cargo that runs the tests.
fn server_binary() -> &'static Path {
    static SERVER: OnceLock<PathBuf> = OnceLock::new();
    SERVER.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .args([
                "build",
                "-p",
                "msglog-server",
                "--bin",
                "msglog-server",
                "--message-format=json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(output.status.success(), "building msglog-server failed");
        // The executable's path, as cargo reports it (honours CARGO_TARGET_DIR).
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| m["target"]["name"] == "msglog-server")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the msglog-server executable")
    })
}

/// A running msglog-server in its own temp directory; killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    /// Start a framed server on a free port.
    fn framed(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(server_binary());
        command
            .args(["0", "--bind", "127.0.0.1", "--dir"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null());
        Server::spawn(command, dir)
    }

    /// Start a raw server on a free port, its stdout into `out` in its temp directory.
    fn raw() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = File::create(dir.path().join("out")).expect("output file");
        let mut command = Command::new(server_binary());
        command
            .args(["--raw", "0", "--bind", "127.0.0.1"])
            .stdout(out);
        Server::spawn(command, dir)
    }

    fn spawn(mut command: Command, dir: tempfile::TempDir) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("msglog-server starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (lines, received) = mpsc::channel();
        // Keep draining stderr for the server's whole life so it never blocks on it.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let started = Instant::now();
        let mut seen = Vec::new();
        let port = loop {
            let left = DEADLINE.saturating_sub(started.elapsed());
            match received.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = listening_port(&line) {
                        break port;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("msglog-server printed no listening address; stderr: {seen:?}");
                }
            }
        };
        Server { child, port, dir }
    }

    fn messages_log(&self) -> PathBuf {
        self.dir.path().join("messages.log")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port of the first `host:port` socket address on a start-up line.
fn listening_port(line: &str) -> Option<u16> {
    line.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(' || c == ')')
        .filter_map(|token| token.parse::<SocketAddr>().ok())
        .map(|addr| addr.port())
        .find(|&port| port != 0)
}

fn bench(port: u16, args: &[&str]) -> Output {
    bench_with(port, args, &[])
}

/// `bench` with environment variables (MSGLOG_PASSWORD is unset unless given).
fn bench_with(port: u16, args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new(BENCH)
        .args([
            "--host",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--timeout",
            "20s",
        ])
        .args(args)
        .env_remove("MSGLOG_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("msglog-bench starts");
    wait_output(child)
}

/// Exit `code` with one line on stderr that contains `needle`, and nothing on stdout.
fn assert_one_line(output: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.starts_with("msglog-bench: "), "stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// Wait for a child, killing it at the deadline.
fn wait_output(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("msglog-bench did not finish within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn json(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn exit_code(status: ExitStatus) -> Option<i32> {
    status.code()
}

/// The records of messages.log; every one must be the bench's message from the bench's user.
fn records(log: &Path, size: usize) -> u64 {
    let bytes = std::fs::read(log).unwrap_or_default();
    let payload: Vec<u8> = (b'a'..=b'z').cycle().take(size).collect();
    let mut expected = b"[bench]: ".to_vec();
    expected.extend(&payload);
    expected.extend(b"\r\n");
    assert_eq!(
        bytes.len() % expected.len(),
        0,
        "messages.log holds a torn record"
    );
    for record in bytes.chunks(expected.len()) {
        assert_eq!(record, expected.as_slice(), "unexpected record");
    }
    (bytes.len() / expected.len()) as u64
}

#[test]
fn counts_every_acknowledged_message_and_the_log_has_them_all() {
    let server = Server::framed(&[]);
    let output = bench(
        server.port,
        &["-c", "4", "-n", "500", "-s", "64", "-w", "8", "--json"],
    );
    let report = json(&output);
    assert_eq!(exit_code(output.status), Some(0), "{report}");
    assert_eq!(report["acknowledged"], 2000);
    assert_eq!(report["expected"], 2000);
    assert_eq!(report["sent"], 2000);
    assert_eq!(report["unacknowledged"], 0);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["authenticated"], 4);
    assert_eq!(report["clean"], true);
    let msgs_per_s = report["msgs_per_s"].as_f64().expect("msgs_per_s");
    let elapsed = report["elapsed_s"].as_f64().expect("elapsed_s");
    assert!(msgs_per_s > 0.0 && elapsed > 0.0);
    assert!((msgs_per_s * elapsed - 2000.0).abs() < 1.0, "{report}");
    let mb_per_s = report["mb_per_s"].as_f64().expect("mb_per_s");
    assert!((mb_per_s * 1e6 - msgs_per_s * 64.0).abs() < 1.0);
    let latency = &report["latency_us"];
    let (p50, p99, p999, max) = (
        latency["p50"].as_u64().expect("p50"),
        latency["p99"].as_u64().expect("p99"),
        latency["p999"].as_u64().expect("p999"),
        latency["max"].as_u64().expect("max"),
    );
    assert!(p50 <= p99 && p99 <= p999 && p999 <= max, "{report}");
    assert!(max < 20_000_000, "a status took over 20 s: {report}");
    assert_eq!(records(&server.messages_log(), 64), 2000);
}

#[test]
fn many_connections_over_two_threads() {
    let server = Server::framed(&[]);
    let output = bench(
        server.port,
        &[
            "-c",
            "300",
            "-n",
            "20",
            "-s",
            "100",
            "-w",
            "4",
            "--threads",
            "2",
            "--connect-batch",
            "64",
            "--json",
        ],
    );
    let report = json(&output);
    assert_eq!(exit_code(output.status), Some(0), "{report}");
    assert_eq!(report["acknowledged"], 6000);
    assert_eq!(report["authenticated"], 300);
    assert_eq!(report["threads"], 2);
    assert_eq!(records(&server.messages_log(), 100), 6000);
}

#[test]
fn duration_mode_acknowledges_everything_it_sent() {
    let server = Server::framed(&[]);
    let output = bench(
        server.port,
        &["-c", "3", "--duration", "300ms", "-w", "2", "--json"],
    );
    let report = json(&output);
    assert_eq!(exit_code(output.status), Some(0), "{report}");
    let acknowledged = report["acknowledged"].as_u64().expect("acknowledged");
    assert!(acknowledged > 0);
    assert_eq!(report["sent"], acknowledged);
    assert_eq!(report["expected"], Value::Null);
    assert!(report["elapsed_s"].as_f64().expect("elapsed_s") >= 0.3);
    assert_eq!(records(&server.messages_log(), 64), acknowledged);
}

#[test]
fn the_table_names_the_figures() {
    let server = Server::framed(&[]);
    let output = bench(server.port, &["-c", "2", "-n", "10"]);
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    for label in [
        "msgs/s",
        "MB/s",
        "p50",
        "p99",
        "p99.9",
        "max",
        "errors",
        "acknowledged    20 of 20",
        "elapsed",
    ] {
        assert!(table.contains(label), "no `{label}` in:\n{table}");
    }
}

#[test]
fn a_server_killed_mid_run_is_an_error() {
    let mut server = Server::framed(&[]);
    let child = Command::new(BENCH)
        .args(["-p", &server.port.to_string(), "--timeout", "20s"])
        .args(["-c", "8", "-w", "4", "--duration", "30s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("msglog-bench starts");
    // Kill the server once acknowledgements flow (a record is written before its 0x00).
    let started = Instant::now();
    while std::fs::metadata(server.messages_log()).map_or(0, |m| m.len()) < 10_000 {
        assert!(started.elapsed() < DEADLINE, "no message was logged");
        thread::sleep(Duration::from_millis(10));
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("server reaped");

    let output = wait_output(child);
    let report = json(&output);
    assert_eq!(exit_code(output.status), Some(1), "{report}");
    assert_eq!(report["errors"], 8, "every connection fails: {report}");
    assert_eq!(report["clean"], false);
    let kinds = report["error_kinds"].as_object().expect("error_kinds");
    assert!(kinds.keys().all(|k| k == "eof" || k == "reset"), "{report}");
    let acknowledged = report["acknowledged"].as_u64().expect("acknowledged");
    assert!(acknowledged > 0);
    // Every acknowledged message is in the log (more may be, written before their 0x00 was sent).
    assert!(records(&server.messages_log(), 64) >= acknowledged);
    assert!(report["elapsed_s"].as_f64().expect("elapsed_s") < 25.0);
}

/// A closed port ends the benchmark at once with one line, in both modes
/// (it was a table of failed connections).
#[test]
fn no_server_ends_the_run_at_once_with_one_line() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    for mode in [&["-c", "3", "-n", "10"][..], &["--raw", "--bytes", "1M"]] {
        let started = Instant::now();
        let output = bench(port, mode);
        assert_one_line(
            &output,
            3,
            &format!("cannot connect to 127.0.0.1:{port}: Connection refused"),
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}

/// A refused login ends the benchmark at once with one line, before any
/// connection of the run is opened.
#[test]
fn a_rejected_password_ends_the_run_at_once_with_one_line() {
    // The original server's rule: the first password byte must be odd ('b' is even).
    let server = Server::framed(&["--auth", "legacy-parity"]);
    let output = bench(
        server.port,
        &["-c", "4", "-n", "10", "--password", "b", "--json"],
    );
    assert_one_line(&output, 3, "rejected the password of user 'bench'");
    assert_eq!(records(&server.messages_log(), 64), 0);
    let log = std::fs::read_to_string(server.dir.path().join("transactions.log")).unwrap();
    assert_eq!(log.matches("event=open").count(), 1, "{log}");
}

/// The password comes from --password-file or MSGLOG_PASSWORD, not only
/// from the command line.
#[test]
fn the_password_comes_from_a_file_or_the_environment() {
    let server = Server::framed(&["--auth", "legacy-parity"]);
    let file = server.dir.path().join("password");
    std::fs::write(&file, "a-odd\n").unwrap();
    let args = [
        "-c",
        "1",
        "-n",
        "5",
        "-q",
        "--password-file",
        file.to_str().unwrap(),
    ];
    let output = bench(server.port, &args);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let output = bench_with(
        server.port,
        &["-c", "1", "-n", "5", "-q"],
        &[("MSGLOG_PASSWORD", "a")],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let output = bench_with(
        server.port,
        &["-c", "1", "-n", "5", "-q"],
        &[("MSGLOG_PASSWORD", "b")],
    );
    assert_one_line(&output, 3, "rejected the password");
    // Without any: `bench`, which legacy-parity refuses ('b' is even).
    let output = bench(server.port, &["-c", "1", "-n", "5", "-q"]);
    assert_one_line(&output, 3, "rejected the password");
    let output = bench(server.port, &["--password-file", "/nonexistent/password"]);
    assert_one_line(
        &output,
        3,
        "cannot read password file '/nonexistent/password'",
    );
    assert_eq!(records(&server.messages_log(), 64), 10);
}

/// `-q`: one line, as `redis-benchmark -q` prints; `--histogram` and
/// `--plot` write the latency distribution and its picture.
#[test]
fn quiet_histogram_and_plot() {
    let server = Server::framed(&[]);
    let hgrm = server.dir.path().join("run.hgrm");
    let svg = server.dir.path().join("run.svg");
    let output = bench(
        server.port,
        &[
            "-c",
            "2",
            "-n",
            "500",
            "-w",
            "8",
            "-q",
            "--histogram",
            hgrm.to_str().unwrap(),
            "--plot",
            svg.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("framed 64 B, 2 connections, window 8: ")
            && stdout.contains(" msgs/s, p50 ")
            && stdout.contains(" ms, p99 "),
        "{stdout}"
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let hgrm = std::fs::read_to_string(&hgrm).unwrap();
    assert!(
        hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"),
        "{hgrm}"
    );
    assert!(hgrm.contains("Total count    =         1000]"), "{hgrm}");
    let last_row = hgrm.lines().rfind(|l| !l.starts_with('#')).unwrap();
    assert!(last_row.contains(" 1.000000000000       1000"), "{hgrm}");

    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    assert!(svg.contains("framed 64 B, 2 connections, window 8"));
}

#[test]
fn the_header_says_messages_are_per_connection() {
    let server = Server::framed(&[]);
    let output = bench(server.port, &["-c", "3", "-n", "7"]);
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("messages        7 per connection (21 in all), 64 B, window 1"),
        "{table}"
    );
    assert!(table.contains("acknowledged    21 of 21"), "{table}");
    let help = Command::new(BENCH).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Messages per connection, not in all"),
        "{help}"
    );
}

/// How [`original_server`] answers a bare CLOSE.
#[derive(Debug, Clone, Copy)]
enum CloseAnswer {
    /// 0xFF, as the original C server does (it waits for a length that never comes).
    Ff,
    /// No answer: the connection closes.
    Eof,
    /// No answer: the connection is reset.
    Reset,
}

/// A framed server on 127.0.0.1 in the original's manner: every NAME,
/// PASSWORD and MESSAGE answered 0x00, a bare CLOSE answered `answer`.
/// Serves `clients` connections, each on its own thread; the handle
/// returns the number of MESSAGEs received.
fn original_server(clients: usize, answer: CloseAnswer) -> (u16, thread::JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = thread::spawn(move || {
        let handlers: Vec<_> = (0..clients)
            .map(|_| {
                let (stream, _) = listener.accept().expect("accept");
                stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
                thread::spawn(move || serve_original(stream, answer))
            })
            .collect();
        handlers
            .into_iter()
            .map(|handler| handler.join().expect("handler"))
            .sum()
    });
    (port, server)
}

fn serve_original(stream: TcpStream, answer: CloseAnswer) -> u64 {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut messages = 0;
    loop {
        let mut tag = [0u8; 1];
        reader
            .read_exact(&mut tag)
            .expect("a transaction, up to CLOSE");
        if tag == [0x04] {
            match answer {
                CloseAnswer::Ff => writer.write_all(&[0xFF]).expect("answer CLOSE"),
                CloseAnswer::Eof => {}
                CloseAnswer::Reset => socket2::SockRef::from(&writer)
                    .set_linger(Some(Duration::ZERO))
                    .expect("linger 0: close resets"),
            }
            return messages;
        }
        let mut length = [0u8; 2];
        reader.read_exact(&mut length).expect("length");
        let mut payload = vec![0u8; usize::from(u16::from_le_bytes(length))];
        reader.read_exact(&mut payload).expect("payload");
        messages += u64::from(tag == [0x03]);
        writer.write_all(&[0x00]).expect("status");
    }
}

#[test]
fn any_answer_to_close_ends_a_clean_run() {
    // PROTOCOL.md: any answer to CLOSE (0x00, 0xFF, or the connection
    // closing) ends a clean session.
    for answer in [CloseAnswer::Ff, CloseAnswer::Eof, CloseAnswer::Reset] {
        // Two connections, and the login checked before the run.
        let (port, server) = original_server(3, answer);
        let output = bench(
            port,
            &["-c", "2", "-n", "50", "-s", "16", "-w", "4", "--json"],
        );
        let report = json(&output);
        assert_eq!(exit_code(output.status), Some(0), "{answer:?}: {report}");
        assert_eq!(report["errors"], 0, "{answer:?}: {report}");
        assert_eq!(report["acknowledged"], 100, "{answer:?}: {report}");
        assert_eq!(server.join().expect("server"), 100, "{answer:?}");
    }
}

#[test]
fn raw_mode_delivers_every_byte() {
    let server = Server::raw();
    let output = bench(
        server.port,
        &["--raw", "--bytes", "6M", "-c", "2", "--json"],
    );
    let report = json(&output);
    assert_eq!(exit_code(output.status), Some(0), "{report}");
    assert_eq!(report["sent"], 6 << 20);
    assert_eq!(report["completed"], 2);
    assert!(report["mb_per_s"].as_f64().expect("mb_per_s") > 0.0);
    // Each connection streams 3 MiB of the same 1 MiB pattern, one client after the other.
    let out = server.dir.path().join("out");
    let started = Instant::now();
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 6 << 20 {
        assert!(
            started.elapsed() < DEADLINE,
            "the raw server wrote too little"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let bytes = std::fs::read(&out).expect("server output");
    assert_eq!(bytes.len(), 6 << 20);
    assert!(bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b == ((i % (1 << 20)) % 251) as u8));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["-s", "0"][..],
        &["-s", "65536"],
        &["-w", "0"],
        &["--bytes", "1M"],
        &["-n", "5", "--duration", "1s"],
        &["--password", ""],
        &["--bogus"],
        &["-c", "x"],
        &["-q", "--json"],
        &["--password", "p", "--password-file", "f"],
    ] {
        let output = Command::new(BENCH).args(args).output().expect("runs");
        assert_one_line(&output, 2, "(try --help)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.matches("help").count(), 1, "{stderr}");
    }
}
