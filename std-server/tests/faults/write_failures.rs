//! Write failures under load: a file size limit (`ulimit -f`), a full
//! filesystem (a small tmpfs) and a read-only one. Every MESSAGE that could
//! not be written is answered 0xFF, nothing acknowledged is missing, the
//! server keeps serving, and it recovers once there is room again.

use std::io::Write;
use std::time::Duration;

use super::harness::{Launch, Server, Tmpfs};
use super::load::{ConnReport, Load, LoadConfig, Tally};
use super::records::Log;
use crate::common::{
    assert_logs_match, login_bytes, message, read_to_end, send_until_refused, wait_until, CLOSE,
};

const CONNECTIONS: usize = 16;
const WINDOW: usize = 32;

/// Load until every connection has been answered 0xFF (the log is full).
fn load_until_full(server: &Server, tag: &str) -> (LoadConfig, Vec<ConnReport>) {
    let mut config = LoadConfig::new(tag, CONNECTIONS, WINDOW);
    config.body_len = 200;
    config.max_per_connection = 100_000;
    let load = Load::start(server.addr, config.clone());
    assert!(
        wait_until(Duration::from_secs(60), || load.ended() == CONNECTIONS),
        "the load did not end: {} acknowledged, {} rejected",
        load.acked(),
        load.rejected()
    );
    let reports = load.join();
    for report in &reports {
        assert!(
            report.rejected.is_some(),
            "connection {} ended without a 0xFF: {report:?}",
            report.conn
        );
    }
    (config, reports)
}

/// A small load that must be acknowledged completely.
fn load_that_fits(server: &Server, tag: &str) -> (LoadConfig, Vec<ConnReport>) {
    let mut config = LoadConfig::new(tag, 4, 16);
    config.max_per_connection = 100;
    let reports = Load::start(server.addr, config.clone()).join();
    let acked: u64 = reports.iter().map(|r| r.acked).sum();
    assert_eq!(acked, 400, "after recovery: {reports:?}");
    (config, reports)
}

/// While the log is (nearly) full: a new client is answered honestly: its
/// NAME 0xFF if even its line does not fit in transactions.log, else it
/// logs in and its message, as large as a message can be, is answered 0xFF,
/// or 0x00 only if its record is in the log. Returns whether it was refused.
fn still_serving(server: &Server, log: &std::path::Path) -> bool {
    let body = vec![b'p'; 65_535];
    let mut stream = server.connect();
    let mut bytes = login_bytes("probe", b"pw");
    bytes.extend(message(&body));
    bytes.extend_from_slice(CLOSE);
    stream.write_all(&bytes).unwrap();
    match read_to_end(&mut stream)[..] {
        [0xFF] | [0, 0, 0xFF] => true,
        [0, 0, 0, 0] => {
            let parsed = Log::parse(&std::fs::read(log).unwrap());
            assert_eq!(
                parsed.count("probe", &body),
                1,
                "acknowledged but not logged"
            );
            false
        }
        ref other => panic!("login then a 64 KiB message: answered {other:?}"),
    }
}

fn check(log: &Log, what: &str, config: &LoadConfig, reports: &[ConnReport]) -> Tally {
    log.assert_well_formed(what, false);
    let tally = Tally::of(log, config, reports);
    tally.assert_kept(what);
    tally
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn file_size_limit_refuses_what_does_not_fit_and_recovers_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Launch::new(dir.path(), &[]).shell("ulimit -f 256"));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid)).unwrap();
    let limit = limits
        .lines()
        .find(|l| l.starts_with("Max file size"))
        .unwrap_or_default()
        .split_whitespace()
        .nth(3)
        .unwrap_or("?")
        .to_owned();
    let (config, reports) = load_until_full(&server, "fz");
    let probe_refused = still_serving(&server, &dir.path().join("messages.log"));
    let full = std::fs::read(dir.path().join("messages.log")).unwrap();
    let tally = check(&Log::parse(&full), "full messages.log", &config, &reports);
    let failed = server.stderr_text().matches("File too large").count();
    assert!(failed > 0, "{}", server.stderr_text());

    // logrotate: move both logs away and SIGHUP; messages fit again.
    for file in ["messages.log", "transactions.log"] {
        std::fs::rename(dir.path().join(file), dir.path().join(format!("{file}.1"))).unwrap();
    }
    server.signal(libc::SIGHUP);
    assert!(server.wait_stderr(Duration::from_secs(10), |t| t.contains("reopened")));
    let (config2, reports2) = load_that_fits(&server, "fy");
    let after = std::fs::read(dir.path().join("messages.log")).unwrap();
    let tally2 = check(
        &Log::parse(&after),
        "messages.log after rotation",
        &config2,
        &reports2,
    );
    let rotated = std::fs::read(dir.path().join("messages.log.1")).unwrap();
    check(
        &Log::parse(&rotated),
        "rotated messages.log.1",
        &config,
        &reports,
    );
    server.stop();
    println!(
        "ulimit -f (RLIMIT_FSIZE {limit} bytes): PASS: {} messages acknowledged before the log was full, all {} found once, \
         {} connections answered 0xFF for the message that did not fit and nothing after it was logged, \
         messages.log ends on a whole record ({} bytes); a new client is still served (its 64 KiB message {}); \
         after rotation + SIGHUP {} of {} new messages acknowledged and found",
        tally.acked,
        tally.found_once,
        reports.iter().filter(|r| r.rejected.is_some()).count(),
        full.len(),
        if probe_refused { "refused" } else { "fitted and was logged" },
        tally2.found_once,
        tally2.sent
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn full_filesystem_refuses_what_does_not_fit_and_recovers_when_space_returns() {
    let fs = match Tmpfs::mount("1m", "") {
        Ok(fs) => fs,
        Err(why) => {
            println!(
                "full filesystem: NOTE: not tested, this sandbox cannot mount a tmpfs ({why})"
            );
            return;
        }
    };
    // Leave about 160 KiB for both logs.
    let filler = fs.path.join("filler");
    let room = 160 * 1024;
    let fill = fs.available().saturating_sub(room);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();
    let server = Server::start(Launch::new(&fs.path, &[]));
    let (config, reports) = load_until_full(&server, "fs");
    let probe_refused = still_serving(&server, &fs.path.join("messages.log"));
    let full = std::fs::read(fs.path.join("messages.log")).unwrap();
    let tally = check(&Log::parse(&full), "full messages.log", &config, &reports);
    assert!(
        server.stderr_text().contains("No space left on device"),
        "{}",
        server.stderr_text()
    );

    // Space returns: no restart, no signal.
    std::fs::remove_file(&filler).unwrap();
    let (config2, reports2) = load_that_fits(&server, "fr");
    let after = std::fs::read(fs.path.join("messages.log")).unwrap();
    let log = Log::parse(&after);
    let tally2 = check(
        &log,
        "messages.log after space returned",
        &config2,
        &reports2,
    );
    check(
        &log,
        "messages.log after space returned (first load)",
        &config,
        &reports,
    );
    server.stop();
    println!(
        "full tmpfs (1 MiB, {} KiB left for the logs): PASS: {} messages acknowledged, all {} found once; \
         {} connections answered 0xFF for the first message that did not fit, nothing after it logged, no torn record \
         ({} bytes of messages.log); a new client is still served (its 64 KiB message {}); once the filler was deleted {} of {} new messages \
         acknowledged and found",
        room / 1024,
        tally.acked,
        tally.found_once,
        reports.iter().filter(|r| r.rejected.is_some()).count(),
        full.len(),
        if probe_refused { "refused" } else { "fitted and was logged" },
        tally2.found_once,
        tally2.sent
    );
}

/// Root ignores permission bits, so a read-only directory is a read-only mount here.
#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn read_only_log_directory_is_refused_at_start() {
    let fs = match Tmpfs::mount("64k", "ro") {
        Ok(fs) => fs,
        Err(why) => {
            println!("read-only directory: NOTE: not tested, this sandbox cannot mount a tmpfs ({why}); chmod is no test as root");
            return;
        }
    };
    let failure = match Server::try_start(Launch::new(&fs.path, &[])) {
        Ok(_) => panic!("the server started on a read-only log directory"),
        Err(failure) => failure,
    };
    let line = failure
        .lines()
        .find(|l| l.contains("msglog-server"))
        .unwrap_or_default();
    assert!(failure.contains("Read-only file system"), "{failure}");
    assert!(
        failure.contains("exited with exit status: ") && !failure.contains("exit status: 0 "),
        "{failure}"
    );
    assert!(!failure.contains("panicked"), "{failure}");
    println!("read-only directory: PASS: the server refuses to start, exit non-zero: {line:?}");
    println!("read-only directory: NOTE: a directory made read-only while the server runs cannot be produced here (remounting read-only is refused while files are open for writing); a running server hits it as a write error, tested above");
}

/// Item 2 of issue 11: on a nearly full filesystem the small record fits
/// where the larger audit line does not. One client pipelines 3,000
/// one-byte messages (50 per write), then new clients log in until a NAME
/// is refused: every 0x00 has its record and its `ok` line, and the first
/// 0xFF comes when the filesystem is full. With and without `--fsync`.
#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn full_filesystem_never_acknowledges_a_transaction_without_its_line() {
    const GROUP: usize = 50;
    for args in [&[][..], &["--fsync"][..]] {
        let fs = match Tmpfs::mount("1m", "") {
            Ok(fs) => fs,
            Err(why) => {
                println!("audit lines on a full filesystem: NOTE: not tested, this sandbox cannot mount a tmpfs ({why})");
                return;
            }
        };
        let room = 48 * 1024;
        let fill = fs.available().saturating_sub(room);
        std::fs::write(fs.path.join("filler"), vec![0u8; fill as usize]).unwrap();
        let server = Server::start(Launch::new(&fs.path, args));
        let first = send_until_refused(server.addr, "u", 3000, GROUP);
        assert!(first.name && first.password && first.refused, "{first:?}");
        // Refused only once a group's records and lines no longer fitted.
        let left = fs.available();
        assert!(
            left < (GROUP * 120) as u64 + 8192,
            "answered 0xFF with {left} bytes free"
        );
        let mut sessions = vec![first];
        while sessions.last().unwrap().name {
            assert!(
                sessions.len() < 500,
                "NAMEs acknowledged on a full filesystem"
            );
            sessions.push(send_until_refused(server.addr, "v", 1, 1));
        }
        assert_logs_match(&fs.path, &sessions);
        assert!(
            server.wait_stderr(Duration::from_secs(10), |t| t
                .contains("No space left on device")),
            "{}",
            server.stderr_text()
        );
        server.stop();
        println!(
            "audit lines on a full tmpfs ({}): PASS: {} one-byte messages acknowledged, each with its record and its ok line; \
             refused with {left} bytes free; then {} more sessions until a NAME was refused because its line did not fit; \
             0x00 counts, records and ok lines agree exactly",
            if args.is_empty() { "write(2) only" } else { "--fsync" },
            sessions[0].messages,
            sessions.len() - 1
        );
    }
}
