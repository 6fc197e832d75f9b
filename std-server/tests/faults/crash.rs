//! Crash consistency: `kill -9` under pipelined load from many connections,
//! ten times in a row on the same log directory, with and without
//! `--fsync`; and the order of write, fdatasync and status bytes as strace
//! sees it.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::harness::{client_bin, Launch, Server};
use super::load::{ConnReport, Load, LoadConfig, Tally};
use super::records::Log;
use crate::common::{side_entries, unfinished_tail, wait_until, BIN, PATIENCE};

const ROUNDS: usize = 10;
const CONNECTIONS: usize = 24;
const WINDOW: usize = 64;
/// The kill comes after a random number of acknowledgements below this,
/// which bounds the log over ten rounds.
const MAX_ACKED_BEFORE_KILL: u64 = 150_000;

/// The seed of this run's random kill moments: `FAULTS_SEED`, else the clock.
pub fn seed() -> u64 {
    std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn kill_9_under_load_loses_no_acknowledged_message() {
    crash_rounds(false);
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn kill_9_under_load_with_fsync_loses_no_acknowledged_message() {
    crash_rounds(true);
}

fn crash_rounds(fsync: bool) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let mode = if fsync { "--fsync" } else { "write(2) only" };
    println!("crash consistency ({mode}): {ROUNDS} rounds of kill -9 under load from {CONNECTIONS} pipelined connections (window {WINDOW}); FAULTS_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let args: &[&str] = if fsync { &["--fsync"] } else { &[] };
    let log_path = dir.path().join("messages.log");
    let mut rounds: Vec<(LoadConfig, Vec<ConnReport>)> = Vec::new();
    let mut torn_tails = 0;
    let mut moved_bytes = 0;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let tails = torn_tails_of(dir.path());
        let server = Server::start(Launch::new(dir.path(), args));
        moved_bytes += assert_moved_aside(dir.path(), &tails, &format!("round {round}"));
        // The previous round's crash must leave nothing a restart cannot read.
        let before = std::fs::read(&log_path).unwrap_or_default();
        Log::parse(&before).assert_well_formed(&format!("round {round}: log after restart"), false);

        let mut config = LoadConfig::new(
            &format!("k{}{round:02}", if fsync { 'f' } else { 'w' }),
            CONNECTIONS,
            WINDOW,
        );
        config.body_len = rng.gen_range(48..400);
        // The moment: once a random number of messages has been acknowledged
        // (throughput varies too much on a shared machine for a random time).
        let target = rng.gen_range(200..MAX_ACKED_BEFORE_KILL);
        let load_started = Instant::now();
        let load = Load::start(server.addr, config.clone());
        assert!(
            wait_until(Duration::from_secs(30), || load.acked() >= target),
            "round {round}: only {} acknowledged; stderr:\n{}",
            load.acked(),
            server.stderr_text()
        );
        let delay = load_started.elapsed();
        let acked_at_kill = load.acked();
        server.kill9();
        let killed_at = Instant::now();
        let reports = load.join();
        let ended_after = killed_at.elapsed();

        let after = std::fs::read(&log_path).unwrap_or_default();
        let appended = Log::parse(&after[before.len()..]);
        appended.assert_well_formed(&format!("round {round}: after kill -9"), true);
        if appended.torn_tail > 0 {
            torn_tails += 1;
        }
        let tally = Tally::of(&appended, &config, &reports);
        tally.assert_kept(&format!("round {round}"));
        assert!(tally.acked >= acked_at_kill);
        assert!(
            tally.acked < tally.sent,
            "round {round}: the load ended before the kill"
        );
        println!(
            "  round {round}: {}-byte messages, killed {:>4} ms into the load: sent {:>7}, acknowledged {:>7}, found exactly once {:>7}, \
             in flight {:>4} of which written anyway {:>4}, missing {}, duplicated {}, torn tail {} bytes; clients saw the end after {} ms",
            config.body_len,
            delay.as_millis(),
            tally.sent,
            tally.acked,
            tally.found_once,
            tally.sent - tally.acked,
            tally.unacked_logged,
            tally.missing,
            tally.duplicated,
            appended.torn_tail,
            ended_after.as_millis()
        );
        rounds.push((config, reports));
    }

    // One more restart: everything acknowledged in any round is still there, once.
    let tails = torn_tails_of(dir.path());
    let server = Server::start(Launch::new(dir.path(), args));
    moved_bytes += assert_moved_aside(dir.path(), &tails, "last restart");
    let bytes = std::fs::read(&log_path).unwrap_or_default();
    let log = Log::parse(&bytes);
    log.assert_well_formed("after the last restart", false);
    let mut total = Tally::default();
    for (config, reports) in &rounds {
        let tally = Tally::of(&log, config, reports);
        tally.assert_kept(&format!("final check of {}", config.tag));
        total.acked += tally.acked;
        total.found_once += tally.found_once;
        total.unacked_logged += tally.unacked_logged;
    }
    assert_eq!(
        log.records as u64,
        total.found_once + total.unacked_logged,
        "records that no client sent"
    );
    server.stop();
    println!(
        "crash consistency ({mode}): PASS: {ROUNDS} kills, {} messages acknowledged, {} found exactly once after the last restart \
         ({} records, {} bytes, every line a whole record); {} rounds left a torn record, and the restarts moved {} torn bytes \
         of both logs to their side files, byte for byte; {:.1} s",
        total.acked,
        total.found_once,
        log.records,
        bytes.len(),
        torn_tails,
        moved_bytes,
        started.elapsed().as_secs_f64()
    );
}

const LOGS: [&str; 2] = ["messages.log", "transactions.log"];

/// Before a restart, per log: its unfinished last line (the bytes after the
/// last `\n`), where it starts, and how many entries its side file has.
fn torn_tails_of(dir: &Path) -> Vec<(Vec<u8>, u64, usize)> {
    LOGS.iter()
        .map(|log| {
            let bytes = std::fs::read(dir.join(log)).unwrap_or_default();
            let tail = unfinished_tail(&bytes).to_vec();
            let side = std::fs::read(dir.join(format!("{log}.torn"))).unwrap_or_default();
            let offset = (bytes.len() - tail.len()) as u64;
            (tail, offset, side_entries(&side).len())
        })
        .collect()
}

/// After a restart (before any client): each log ends where its torn tail
/// began, and the tail is its side file's one new entry, byte for byte.
/// Returns the bytes moved.
fn assert_moved_aside(dir: &Path, before: &[(Vec<u8>, u64, usize)], what: &str) -> usize {
    let mut moved = 0;
    for (log, (tail, offset, count)) in LOGS.iter().zip(before) {
        let side = std::fs::read(dir.join(format!("{log}.torn"))).unwrap_or_default();
        let entries = side_entries(&side);
        let new = &entries[*count..];
        if tail.is_empty() {
            assert!(
                new.is_empty(),
                "{what}: {log}: an entry for no torn tail: {new:?}"
            );
            continue;
        }
        assert_eq!(new.len(), 1, "{what}: {log}: {new:?}");
        assert_eq!(new[0].log, *log, "{what}");
        assert_eq!(new[0].offset, *offset, "{what}: {log}");
        assert_eq!(new[0].bytes, *tail, "{what}: {log}: not the torn bytes");
        let len = std::fs::metadata(dir.join(log)).unwrap().len();
        assert_eq!(
            len, *offset,
            "{what}: {log} was not cut where its tail began"
        );
        moved += tail.len();
    }
    moved
}

/// A crash can cut a `write(2)` short (SIGKILL interrupts a large write
/// between pages) or lose its tail on power loss: the restart must not glue
/// the next record onto the torn one, nor throw the torn bytes away.
#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn a_restart_repairs_a_record_torn_by_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let messages = dir.path().join("messages.log");
    let transactions = dir.path().join("transactions.log");
    std::fs::write(&messages, b"[old]: whole\r\n[old]: torn by the cra").unwrap();
    std::fs::write(
        &transactions,
        b"2026-01-01T00:00:00.000Z conn=1 peer=127.0.0.1:1 event=open\n2026-01-01T00:00:00.001Z conn=1 peer=127.0.0.1:1 tag=MESS",
    )
    .unwrap();
    let tails = torn_tails_of(dir.path());
    let server = Server::start(Launch::new(dir.path(), &[]));
    assert_eq!(assert_moved_aside(dir.path(), &tails, "restart"), 22 + 57);
    let mut stream = server.connect();
    let mut bytes = crate::common::login_bytes("new", b"pw");
    bytes.extend(crate::common::message(b"after the restart"));
    bytes.extend_from_slice(crate::common::CLOSE);
    use std::io::Write;
    stream.write_all(&bytes).unwrap();
    assert_eq!(crate::common::read_to_end(&mut stream), [0, 0, 0, 0]);
    let stderr = server.stop();

    let log = std::fs::read(&messages).unwrap();
    let parsed = Log::parse(&log);
    println!(
        "torn record: messages.log after the restart: {:?}; server said: {:?}",
        String::from_utf8_lossy(&log),
        stderr
            .lines()
            .filter(|l| l.contains("moved to"))
            .collect::<Vec<_>>()
    );
    parsed.assert_well_formed("messages.log after restart", false);
    assert_eq!(parsed.count("old", b"whole"), 1);
    assert_eq!(parsed.count("new", b"after the restart"), 1);
    assert_eq!(parsed.records, 2);
    let text = std::fs::read_to_string(&transactions).unwrap();
    for line in text.lines() {
        crate::common::assert_timestamp(&line[..24]);
        assert_eq!(line.matches(" conn=").count(), 1, "glued lines: {line}");
    }
    assert_eq!(stderr.matches("moved to").count(), 2, "{stderr}");
    println!("torn record: PASS: the torn tails of both logs were moved to messages.log.torn and transactions.log.torn byte for byte; no record or line was glued to them");
}

/// One server per log directory, under load: while a server serves
/// `msglog-bench -c 20 -w 16 -s 4000`, a second server is started 25 times
/// on the same directory. Each start exits 9 naming the first one's PID and
/// touches nothing; afterwards every acknowledged record is in messages.log
/// exactly once. (The issue saw 17 "repairs" of the live log and 2,332
/// acknowledged records gone.)
#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn a_second_server_cannot_touch_a_loaded_log_directory() {
    const ATTEMPTS: usize = 25;
    const SIZE: usize = 4000;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Launch::new(dir.path(), &[]));
    let bench = client_bin("msglog-bench");
    let started = Instant::now();
    let (mut attempts, mut rounds, mut acknowledged) = (0, 0, 0u64);
    let mut slowest = Duration::ZERO;
    // Bench runs of bounded size, one after another, until 25 starts have
    // been tried while one was running.
    while attempts < ATTEMPTS {
        assert!(rounds < 50, "{attempts} attempts in {rounds} bench runs");
        rounds += 1;
        let mut load = Command::new(&bench)
            .args(["--host", "127.0.0.1", "-p", &server.port().to_string()])
            .args(["-c", "20", "-w", "16", "-s", &SIZE.to_string(), "-n", "200"])
            .args(["--timeout", "20s", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("msglog-bench starts");
        while attempts < ATTEMPTS && load.try_wait().unwrap().is_none() {
            let attempt = Instant::now();
            let mut second = Command::new(BIN)
                .args(["--bind", "127.0.0.1", "--dir"])
                .arg(dir.path())
                .arg("0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut status = None;
            wait_until(PATIENCE, || {
                status = second.try_wait().unwrap();
                status.is_some()
            });
            if status.is_none() {
                let _ = second.kill();
            }
            let output = second.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(9), "second server: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains(&format!("PID {}", server.pid)), "{stderr}");
            slowest = slowest.max(attempt.elapsed());
            // Under load only if the bench was still running when it ended.
            if load.try_wait().unwrap().is_none() {
                attempts += 1;
            }
        }
        let mut done = None;
        assert!(
            wait_until(Duration::from_secs(60), || {
                done = load.try_wait().unwrap();
                done.is_some()
            }),
            "msglog-bench did not finish"
        );
        let output = load.wait_with_output().unwrap();
        let report = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let field = |key: &str| -> u64 {
            let at = report
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{report}"));
            report[at + key.len() + 3..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{key} in {report}"))
        };
        assert_eq!(field("sent"), field("acknowledged"), "{report}");
        assert_eq!(field("errors"), 0, "{report}");
        acknowledged += field("acknowledged");
    }
    let pid = server.pid;
    let stderr = server.stop();
    assert!(!stderr.contains("moved to"), "{stderr}");

    let log = std::fs::read(dir.path().join("messages.log")).unwrap();
    let mut record = b"[bench]: ".to_vec();
    record.extend((b'a'..=b'z').cycle().take(SIZE));
    record.extend_from_slice(b"\r\n");
    assert_eq!(log.len() % record.len(), 0, "a torn or foreign record");
    assert!(
        log.chunks(record.len()).all(|r| r == record.as_slice()),
        "a foreign record"
    );
    let records = (log.len() / record.len()) as u64;
    assert_eq!(records, acknowledged, "records vs acknowledged messages");
    for side in ["messages.log.torn", "transactions.log.torn"] {
        assert!(!dir.path().join(side).exists(), "{side} was created");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("msglog-server.lock")).unwrap(),
        format!("{pid}\n")
    );
    println!(
        "one server per directory: PASS: {ATTEMPTS} starts of a second server during {rounds} runs of msglog-bench -c 20 -w 16 -s {SIZE} -n 200: \
         each exited 9 naming the first server's PID (slowest {} ms), no side file, no repair; {acknowledged} messages acknowledged, \
         {records} records in messages.log, each once; {:.1} s",
        slowest.as_millis(),
        started.elapsed().as_secs_f64()
    );
}

/// With `--fsync`, a status byte leaves only after an fdatasync that
/// started after its record was written has returned; without it, only
/// after the record's write(2) returned. The same for its line in
/// transactions.log (one group commit covers both). Checked on strace's
/// ordering of the server's own system calls.
#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn acknowledgements_follow_write_and_fdatasync() {
    assert!(
        Command::new("strace")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "strace is not installed (scripts/faults.sh installs it)"
    );
    for fsync in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let trace_dir = tempfile::tempdir().unwrap();
        let trace = trace_dir.path().join("trace");
        let args: &[&str] = if fsync { &["--fsync"] } else { &[] };
        let server = Server::start(Launch::new(dir.path(), args).strace(&trace));
        let mut config = LoadConfig::new(if fsync { "sf" } else { "sw" }, 8, 16);
        config.max_per_connection = 150;
        let load = Load::start(server.addr, config.clone());
        let reports = load.join();
        server.stop();
        let acked: u64 = reports.iter().map(|r| r.acked).sum();
        assert_eq!(acked, 8 * 150, "{reports:?}");
        let order = Order::check(&trace, config.record_len() as u64, fsync, 150);
        assert_eq!(order.acks, acked, "status bytes seen in the trace");
        assert_eq!(order.records_written, acked);
        println!(
            "ack ordering ({}): PASS: {} status bytes for {} records, each sent after {}; {} write(2) calls to messages.log, {} fdatasync calls (mean {:.1} records per sync), closest margin {} records; \
             all {} status writes came after their thread's transactions.log write{} ({} fdatasync calls of transactions.log)",
            if fsync { "--fsync" } else { "write(2) only" },
            order.acks,
            order.records_written,
            if fsync { "an fdatasync covering its record returned" } else { "its record's write(2) returned" },
            order.log_writes,
            order.syncs,
            if order.syncs > 0 { order.records_written as f64 / order.syncs as f64 } else { 0.0 },
            order.min_margin,
            order.statuses,
            if fsync { " and an fdatasync covering it" } else { "" },
            order.line_syncs
        );
    }
    println!("ack ordering: NOTE: a real power loss cannot be produced here; this proves the order of system calls, and durability then rests on fdatasync and the disk honouring it");
}

/// What the trace showed.
#[derive(Debug, Default)]
struct Order {
    acks: u64,
    records_written: u64,
    log_writes: u64,
    syncs: u64,
    /// Status writes, each after its thread's line write (and its fdatasync).
    statuses: u64,
    /// fdatasync calls of transactions.log.
    line_syncs: u64,
    /// Least (durable records - acknowledged messages) at any status write.
    min_margin: u64,
}

/// A system call's entry in the trace: (name, arguments).
type Entry<'a> = (&'a str, &'a str);
/// A system call's exit in the trace: (name, arguments, result).
type Exit<'a> = (&'a str, &'a str, &'a str);

/// Whether a call's first argument (`-y`: `FD<path>`) is messages.log.
fn is_log(args: &str) -> bool {
    args.split(", ")
        .next()
        .is_some_and(|fd| fd.ends_with("/messages.log>"))
}

/// Whether a call's first argument is transactions.log.
fn is_lines(args: &str) -> bool {
    args.split(", ")
        .next()
        .is_some_and(|fd| fd.ends_with("/transactions.log>"))
}

/// The TCP connection a call's first argument names (`-yy`:
/// `FD<TCP:[LOCAL->PEER]>`), if it is one. Not the signal handler's
/// `UNIX-STREAM` socket pair, whose wake-up byte is no status.
fn socket(args: &str) -> Option<&str> {
    let fd = args.split(", ").next().unwrap_or_default();
    ["<TCP:[", "<TCPv6:["]
        .iter()
        .find_map(|prefix| fd.split_once(prefix))
        .map(|(_, connection)| connection)
}

/// The length argument that follows the buffer of `write(fd, "...", N)` or
/// `sendto(fd, "..."..., N, flags, ...)`.
fn length_after_buffer(args: &str) -> Option<u64> {
    let quoted = &args[args.find('"')? + 1..];
    let mut escaped = false;
    let end = quoted.char_indices().find_map(|(i, c)| {
        let closes = c == '"' && !escaped;
        escaped = c == '\\' && !escaped;
        closes.then_some(i)
    })?;
    let rest = quoted[end + 1..].trim_start_matches("...");
    rest.strip_prefix(", ")?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

impl Order {
    fn check(trace: &Path, record_len: u64, fsync: bool, per_connection: u64) -> Order {
        let text = std::fs::read_to_string(trace).expect("strace output");
        let mut order = Order {
            min_margin: u64::MAX,
            ..Order::default()
        };
        let mut written_bytes = 0u64;
        let mut synced_bytes = 0u64;
        // transactions.log: writes so far, the last one each thread made, and
        // how many of them a completed fdatasync covers.
        let mut line_writes = 0u64;
        let mut last_line_write: HashMap<&str, u64> = HashMap::new();
        let mut synced_line_writes = 0u64;
        // Per thread: an unfinished call (name, arguments, bytes of the log and
        // writes of transactions.log when an fdatasync began).
        let mut pending: HashMap<&str, (&str, &str, u64, u64)> = HashMap::new();
        // Status bytes sent per socket (the first two answer NAME and PASSWORD).
        let mut per_socket: HashMap<&str, u64> = HashMap::new();
        for line in text.lines() {
            let Some((pid, call)) = line.split_once(' ') else {
                continue;
            };
            let call = call.trim_start();
            if call.starts_with("+++") || call.starts_with("---") {
                continue;
            }
            // (name, arguments, result): an entry, an exit, or both.
            // Bytes of the log written when the call began (what an fdatasync covers).
            let mut began = written_bytes;
            let mut began_lines = line_writes;
            let (entry, exit): (Option<Entry>, Option<Exit>) =
                if let Some(rest) = call.strip_prefix("<... ") {
                    let name = rest.split(' ').next().unwrap_or_default();
                    let result = rest.rsplit_once(" = ").map_or("", |(_, r)| r);
                    let (_, args, at, lines_at) = pending.remove(pid).unwrap_or(("", "", 0, 0));
                    began = at;
                    began_lines = lines_at;
                    (None, Some((name, args, result)))
                } else {
                    let Some((name, rest)) = call.split_once('(') else {
                        continue;
                    };
                    if let Some(args) = rest.strip_suffix(" <unfinished ...>") {
                        pending.insert(pid, (name, args, written_bytes, line_writes));
                        (Some((name, args)), None)
                    } else {
                        // `ARGS)   = RESULT` (strace pads before the `=`).
                        let (args, result) = rest.rsplit_once(" = ").unwrap_or((rest, ""));
                        let args = args.trim_end();
                        let args = args.strip_suffix(')').unwrap_or(args);
                        (Some((name, args)), Some((name, args, result)))
                    }
                };
            if let Some((name, args)) = entry {
                if let Some(socket) = socket(args) {
                    assert!(
                        matches!(name, "write" | "sendto"),
                        "status bytes sent with {name}: extend this parser"
                    );
                    let count = length_after_buffer(args)
                        .unwrap_or_else(|| panic!("cannot read the length: {line}"));
                    let sent = per_socket.entry(socket).or_insert(0);
                    let before = sent.saturating_sub(2).min(per_connection);
                    *sent += count;
                    order.acks += sent.saturating_sub(2).min(per_connection) - before;
                    let durable = if fsync { synced_bytes } else { written_bytes } / record_len;
                    assert!(
                        order.acks <= durable,
                        "{} messages acknowledged but only {durable} records {} at: {line}",
                        order.acks,
                        if fsync { "synced" } else { "written" }
                    );
                    order.min_margin = order.min_margin.min(durable - order.acks);
                    // Every status of this load is a 0x00: its line was written
                    // by this thread's commit before it (and synced, with --fsync).
                    let own = last_line_write.get(pid).copied().unwrap_or(0);
                    assert!(own > 0, "a status before any line: {line}");
                    if fsync {
                        assert!(
                            synced_line_writes >= own,
                            "a status before an fdatasync of transactions.log covered its line: {line}"
                        );
                    }
                    order.statuses += 1;
                }
            }
            if let Some((name, args, result)) = exit {
                let ok: i64 = result
                    .split(' ')
                    .next()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(-1);
                if is_log(args) && name == "write" && ok > 0 {
                    written_bytes += ok as u64;
                    order.log_writes += 1;
                }
                if is_log(args) && name == "fdatasync" && ok == 0 {
                    // A sync covers what was written when it began.
                    synced_bytes = synced_bytes.max(began);
                    order.syncs += 1;
                }
                if is_lines(args) && name == "write" && ok > 0 {
                    line_writes += 1;
                    last_line_write.insert(pid, line_writes);
                }
                if is_lines(args) && name == "fdatasync" && ok == 0 {
                    synced_line_writes = synced_line_writes.max(began_lines);
                    order.line_syncs += 1;
                }
            }
        }
        assert_eq!(
            written_bytes % record_len,
            0,
            "a partial record was written"
        );
        order.records_written = written_bytes / record_len;
        order
    }
}
