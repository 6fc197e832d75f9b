//! The NATS sink losing what it stands on (issue 18): a JetStream node of a
//! 3-node cluster (a follower, then the stream leader) killed under load
//! from two front ends, the quorum lost, NATS unreachable at start and
//! mid-load, a front end killed under load. In every case each message
//! answered 0x00 is in the stream exactly once, found by its unique body
//! after reading the stream back with `msglog-server export`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{client_bin, Launch, Server};
use super::load::{ConnReport, Load, LoadConfig, Tally};
use super::records::Log;
use crate::common::wait_until;
use crate::nats_harness::{export, require_nats_server, Nats};

/// Clients give up after 20 s of silence (`load::STALL`): a record's
/// deadline is shorter, so they hear its 0xFF.
const ACK_TIMEOUT: &str = "15s";

fn front_end(dir: &Path, urls: &str, name: &str, ack_timeout: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--sink",
        urls,
        "--nats-front-end",
        name,
        "--nats-ack-timeout",
        ack_timeout,
    ];
    args.extend_from_slice(extra);
    Server::start(Launch::new(dir, &args))
}

/// The stream as messages.log, parsed.
fn exported(urls: &str) -> Log {
    let (code, bytes, stderr) = export(&["--nats", urls]);
    assert_eq!(code, Some(0), "export: {stderr}");
    let log = Log::parse(&bytes);
    log.assert_well_formed("the export", false);
    log
}

/// The NATS promise for one load: every acknowledged message exactly once,
/// none twice. (Unlike a file, the stream may hold messages sent after the
/// one answered 0xFF: they were published before its failure was known.)
fn assert_stored(tally: &Tally, what: &str) {
    assert!(
        tally.missing == 0 && tally.duplicated == 0 && tally.found_once == tally.acked,
        "{what}: {tally:?}"
    );
}

fn transactions(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("transactions.log")).unwrap_or_default()
}

fn longest_wait(reports: &[ConnReport]) -> Duration {
    reports
        .iter()
        .map(|r| r.longest_wait)
        .max()
        .unwrap_or_default()
}

/// msglog-bench through a front end, in the background.
fn bench(server: &Server, messages: u64) -> Child {
    Command::new(client_bin("msglog-bench"))
        .args(["--host", "127.0.0.1", "-p", &server.port().to_string()])
        .args([
            "-c",
            "8",
            "-w",
            "16",
            "-s",
            "64",
            "-n",
            &messages.to_string(),
        ])
        .args(["--timeout", "30s", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("msglog-bench starts")
}

/// (acknowledged, sent) of a finished msglog-bench.
fn bench_result(child: Child) -> (u64, u64) {
    let output = child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "msglog-bench printed no report ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (
        report["acknowledged"].as_u64().unwrap(),
        report["sent"].as_u64().unwrap(),
    )
}

/// msglog-bench's records (all the same payload) by their headers: each
/// connection's are its sequences 1..=k, each once; their total holds
/// every acknowledged one. Returns how many there are.
fn assert_bench_records(nats: &Nats, acknowledged: u64, sent: u64) -> u64 {
    let mut by_connection: HashMap<(String, u64), Vec<u64>> = HashMap::new();
    let mut ids = HashSet::new();
    for record in nats.read_stream("msglog") {
        assert!(ids.insert(record.msg_id.clone()), "{} twice", record.msg_id);
        if record.name == "bench" {
            by_connection
                .entry((record.front_end, record.connection))
                .or_default()
                .push(record.record_sequence);
        }
    }
    let mut total = 0;
    for ((front_end, connection), sequences) in &by_connection {
        let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
        let mut sorted = sequences.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted, expected,
            "msglog-bench's connection {connection} through {front_end}: each sequence once, none missing"
        );
        total += sequences.len() as u64;
    }
    assert!(
        total >= acknowledged && total <= sent,
        "msglog-bench: {acknowledged} acknowledged, {sent} sent, {total} in the stream"
    );
    total
}

fn kill_a_node_under_load(leader: bool) {
    let test = if leader { "stream leader" } else { "follower" };
    let Some(bin) = require_nats_server(test) else {
        return;
    };
    let mut nats = Nats::cluster(&bin, 3);
    nats.create_stream("msglog", "msglog", 3);
    let urls = nats.urls();
    let stream_leader = nats.stream_leader("msglog");
    let victim = if leader {
        stream_leader.clone()
    } else {
        nats.nodes
            .iter()
            .map(|n| n.name.clone())
            .find(|n| *n != stream_leader)
            .unwrap()
    };
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fe1 = front_end(dir1.path(), &urls, "fe1", ACK_TIMEOUT, &[]);
    let fe2 = front_end(dir2.path(), &urls, "fe2", ACK_TIMEOUT, &[]);
    let mut configs = Vec::new();
    let mut loads = Vec::new();
    for (tag, server) in [("a", &fe1), ("b", &fe2)] {
        let mut config =
            LoadConfig::new(&format!("{}{tag}", if leader { "l" } else { "f" }), 8, 16);
        config.max_per_connection = 2_500;
        loads.push(Load::start(server.addr, config.clone()));
        configs.push(config);
    }
    let benches = [bench(&fe1, 1_500), bench(&fe2, 1_500)];
    let acked = |loads: &[Load]| loads.iter().map(Load::acked).sum::<u64>();
    assert!(
        wait_until(Duration::from_secs(60), || acked(&loads) >= 4_000),
        "no progress before the kill: {}",
        acked(&loads)
    );
    let at_kill = acked(&loads);
    nats.node(&victim).kill9();
    let killed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(90), || acked(&loads) >= at_kill + 2_000),
        "the front ends stopped serving after the kill: {} acknowledged; fe1:\n{}\nfe2:\n{}",
        acked(&loads),
        fe1.stderr_text(),
        fe2.stderr_text()
    );
    let resumed = killed.elapsed();
    let reports: Vec<Vec<ConnReport>> = loads.into_iter().map(Load::join).collect();
    let (mut bench_acked, mut bench_sent) = (0, 0);
    for child in benches {
        let (a, s) = bench_result(child);
        bench_acked += a;
        bench_sent += s;
    }
    let log = exported(&urls);
    let mut total = Tally::default();
    for ((config, reports), what) in configs.iter().zip(&reports).zip(["fe1", "fe2"]) {
        let tally = Tally::of(&log, config, reports);
        assert_stored(&tally, what);
        total.acked += tally.acked;
        total.sent += tally.sent;
        total.unacked_logged += tally.unacked_logged;
        total.after_reject_logged += tally.after_reject_logged;
    }
    let rejected: usize = reports
        .iter()
        .flatten()
        .filter(|r| r.rejected.is_some())
        .count();
    let bench_stored = assert_bench_records(&nats, bench_acked, bench_sent);
    let pause = reports.iter().map(|r| longest_wait(r)).max().unwrap();
    fe1.stop();
    fe2.stop();
    println!(
        "NATS cluster, {test} ({victim}) killed under load from two front ends: PASS: {} messages acknowledged of {} sent, each in the stream exactly once \
         ({} more stored but not acknowledged, {} of them after their connection's 0xFF; {rejected} of 16 connections answered 0xFF); \
         msglog-bench: {bench_acked} acknowledged, {bench_stored} stored, each connection's records once and in sequence; \
         {} acknowledged before the kill, 2,000 more {:.1} s after it; longest wait for a status {:.2} s",
        total.acked,
        total.sent,
        total.unacked_logged,
        total.after_reject_logged,
        at_kill,
        resumed.as_secs_f64(),
        pause.as_secs_f64()
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh nats"]
fn a_follower_killed_under_load_loses_no_acknowledged_message() {
    kill_a_node_under_load(false);
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh nats"]
fn the_stream_leader_killed_under_load_loses_no_acknowledged_message() {
    kill_a_node_under_load(true);
}

/// One session of `count` messages; the statuses as they came.
fn answers(server: &Server, tag: &str, count: usize) -> (Vec<u8>, Duration) {
    let mut config = LoadConfig::new(tag, 1, count);
    config.max_per_connection = count as u64;
    let started = Instant::now();
    let reports = Load::start(server.addr, config).join();
    let report = &reports[0];
    let mut statuses = vec![0; report.acked as usize];
    if report.rejected.is_some() {
        statuses.push(0xFF);
    }
    assert!(
        report.end.starts_with("status") || report.end == "eof",
        "{tag}: {}",
        report.end
    );
    (statuses, started.elapsed())
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh nats"]
fn without_a_quorum_nothing_is_acknowledged() {
    let Some(bin) = require_nats_server("without_a_quorum_nothing_is_acknowledged") else {
        return;
    };
    let mut nats = Nats::cluster(&bin, 3);
    nats.create_stream("msglog", "msglog", 3);
    let urls = nats.urls();
    let leader = nats.stream_leader("msglog");
    let dir = tempfile::tempdir().unwrap();
    let fe = front_end(dir.path(), &urls, "fe", "4s", &[]);
    let mut config = LoadConfig::new("q", 4, 16);
    config.max_per_connection = 1_000_000;
    let load = Load::start(fe.addr, config.clone());
    assert!(wait_until(Duration::from_secs(60), || load.acked() >= 2_000));
    // The leader and one follower: one node of three cannot commit.
    let follower = nats
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .find(|n| *n != leader)
        .unwrap();
    nats.node(&leader).kill9();
    nats.node(&follower).kill9();
    let lost = Instant::now();
    // What was in flight settles within the deadline: acknowledged if it
    // was committed before, else 0xFF; every connection ends.
    assert!(
        wait_until(Duration::from_secs(30), || load.ended() == 4),
        "{} of 4 connections ended",
        load.ended()
    );
    let settled = load.acked();
    // A client that comes now is refused at its first message.
    let (statuses, took) = answers(&fe, "nq", 20);
    assert_eq!(
        statuses,
        [0xFF],
        "no quorum: the first message is answered 0xFF"
    );
    assert!(
        took >= Duration::from_secs(4),
        "after the deadline: {took:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        load.acked(),
        settled,
        "nothing acknowledged without a quorum"
    );
    let reports = load.join();
    // Back to two of three: the front end serves again.
    nats.node(&follower).start();
    let mut recovered = None;
    assert!(
        wait_until(Duration::from_secs(90), || {
            let (statuses, _) = answers(
                &fe,
                &format!("r{}", Instant::now().elapsed().as_nanos() % 1000),
                20,
            );
            if statuses == vec![0; 20] {
                recovered = Some(lost.elapsed());
            }
            recovered.is_some()
        }),
        "no recovery after the quorum came back:\n{}",
        fe.stderr_text()
    );
    let log = exported(&urls);
    let tally = Tally::of(&log, &config, &reports);
    assert_stored(&tally, "through the loss of the quorum");
    let refused = transactions(dir.path())
        .matches("outcome=write-failed")
        .count();
    assert!(refused >= 5, "every connection's 0xFF has its line");
    let stderr = fe.stop();
    assert!(
        stderr.contains("not stored: not acknowledged in time"),
        "{stderr}"
    );
    println!(
        "NATS cluster without a quorum: PASS: {} acknowledged before the loss (all in the stream once), {} settled after it; \
         a new client's first message answered 0xFF after {:.1} s (--nats-ack-timeout 4s), nothing acknowledged in the 2 s after; \
         served again {:.1} s after the loss, once a second node was back",
        tally.acked,
        settled,
        took.as_secs_f64(),
        recovered.unwrap().as_secs_f64()
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh nats"]
fn a_front_end_started_before_its_cluster_has_a_quorum_serves_once_it_has() {
    let Some(bin) = require_nats_server("a_front_end_started_before_its_cluster_has_a_quorum")
    else {
        return;
    };
    let mut nats = Nats::cluster(&bin, 3);
    // One node of three: it takes connections, but JetStream cannot answer
    // (as while a cluster forms, or after losing its quorum).
    nats.node("n2").kill9();
    nats.node("n3").kill9();
    let urls = nats.urls();
    let dir = tempfile::tempdir().unwrap();
    let fe = front_end(
        dir.path(),
        &urls,
        "fe",
        "3s",
        &["--nats-create-stream", "3"],
    );
    let startup = fe.stderr_text();
    assert!(startup.contains("serving anyway"), "{startup}");
    let (statuses, _) = answers(&fe, "early", 5);
    assert_eq!(
        statuses,
        [0xFF],
        "no quorum, no stream: the first message refused"
    );
    nats.node("n2").start();
    nats.node("n3").start();
    let back = Instant::now();
    assert!(
        wait_until(Duration::from_secs(90), || answers(&fe, "late", 20).0
            == vec![0; 20]),
        "not served after the quorum came:\n{}",
        fe.stderr_text()
    );
    let took = back.elapsed();
    let stored = nats.read_stream("msglog");
    assert!(
        stored.len() >= 20 && stored.iter().all(|s| s.name.starts_with("late")),
        "{} records: {:?}",
        stored.len(),
        stored.iter().map(|s| &s.name).collect::<HashSet<_>>()
    );
    assert!(fe
        .stderr_text()
        .contains("NATS: stream msglog ready (3 replicas)"));
    println!(
        "front end started before its cluster had a quorum: PASS: served (0xFF meanwhile), \
         the stream created and 20 of 20 acknowledged {:.1} s after the quorum came",
        took.as_secs_f64()
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh nats"]
fn unreachable_nats_is_answered_0xff_and_recovered_from() {
    let Some(bin) = require_nats_server("unreachable_nats_is_answered_0xff_and_recovered_from")
    else {
        return;
    };
    let mut nats = Nats::single(&bin);
    let urls = nats.urls();
    let node = nats.nodes[0].name.clone();
    nats.node(&node).kill9();

    // At start: a clear error, and the service runs.
    let dir = tempfile::tempdir().unwrap();
    let fe = front_end(
        dir.path(),
        &urls,
        "fe",
        "2s",
        &["--nats-create-stream", "1"],
    );
    let stderr = fe.stderr_text();
    assert!(
        stderr.contains(&format!("cannot connect to NATS at {urls}"))
            && stderr.contains("serving anyway: every MESSAGE is answered 0xFF"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stream=msglog (not reached yet)"),
        "{stderr}"
    );
    let (statuses, took) = answers(&fe, "down", 10);
    assert_eq!(statuses, [0xFF]);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "{took:?}"
    );
    let lines = transactions(dir.path());
    assert!(
        lines.contains("tag=MESSAGE len=64 outcome=write-failed"),
        "{lines}"
    );

    // NATS comes: the front end connects, creates the stream, serves.
    nats.node(&node).start();
    assert!(fe.wait_stderr(Duration::from_secs(20), |t| t
        .contains("NATS: created stream msglog")));
    let came = Instant::now();
    let mut first = None;
    assert!(wait_until(Duration::from_secs(30), || {
        let (statuses, _) = answers(&fe, "up", 10);
        first = (statuses == vec![0; 10]).then(|| came.elapsed());
        first.is_some()
    }));

    // Mid-load: NATS goes away and comes back.
    let mut config = LoadConfig::new("mid", 8, 16);
    config.max_per_connection = 1_000_000;
    let load = Load::start(fe.addr, config.clone());
    assert!(wait_until(Duration::from_secs(60), || load.acked() >= 3_000));
    nats.node(&node).kill9();
    let killed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || load.ended() == 8),
        "{} of 8 connections ended",
        load.ended()
    );
    let ended = killed.elapsed();
    let reports = load.join();
    assert!(
        reports.iter().all(|r| r.rejected.is_some()),
        "each answered 0xFF"
    );
    assert!(fe.wait_stderr(Duration::from_secs(5), |t| t
        .contains("NATS: connection lost")));
    nats.node(&node).start();
    let mut config2 = LoadConfig::new("back", 8, 16);
    config2.max_per_connection = 500;
    let reports2 = {
        let mut again = None;
        assert!(wait_until(Duration::from_secs(30), || {
            let (statuses, _) = answers(&fe, "probe", 5);
            if statuses == vec![0; 5] {
                again = Some(Load::start(fe.addr, config2.clone()).join());
            }
            again.is_some()
        }));
        again.unwrap()
    };
    let log = exported(&urls);
    let tally = Tally::of(&log, &config, &reports);
    assert_stored(&tally, "NATS killed mid-load");
    let tally2 = Tally::of(&log, &config2, &reports2);
    assert_stored(&tally2, "after it came back");
    assert_eq!(tally2.acked, 4_000, "every message after the recovery");
    fe.stop();
    println!(
        "NATS unreachable: PASS: at start, a clear error and the first message answered 0xFF after {:.1} s (--nats-ack-timeout 2s); \
         served {:.1} s after NATS came; killed mid-load: {} acknowledged before, all in the stream once, every connection answered 0xFF within {:.1} s; \
         after the restart 4,000 of 4,000 acknowledged and stored",
        took.as_secs_f64(),
        first.unwrap().as_secs_f64(),
        tally.acked,
        ended.as_secs_f64()
    );
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh nats"]
fn a_front_end_killed_under_load_loses_no_acknowledged_message() {
    const ROUNDS: usize = 4;
    let Some(bin) =
        require_nats_server("a_front_end_killed_under_load_loses_no_acknowledged_message")
    else {
        return;
    };
    let nats = Nats::single(&bin);
    nats.create_stream("msglog", "msglog", 1);
    let urls = nats.urls();
    let dir = tempfile::tempdir().unwrap();
    let mut rounds = Vec::new();
    let mut front_ends = HashSet::new();
    for round in 0..ROUNDS {
        let fe = front_end(dir.path(), &urls, "fe", ACK_TIMEOUT, &[]);
        let id = fe
            .stderr_text()
            .split("front-end=")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .unwrap()
            .to_owned();
        assert!(front_ends.insert(id), "a new front end id at each start");
        let config = LoadConfig::new(&format!("k{round}"), 12, 64);
        let load = Load::start(fe.addr, config.clone());
        let target = 2_000 + 3_000 * round as u64;
        assert!(wait_until(Duration::from_secs(60), || load.acked() >= target));
        fe.kill9();
        let reports = load.join();
        rounds.push((config, reports));
    }
    let log = exported(&urls);
    let mut total = Tally::default();
    for (config, reports) in &rounds {
        let tally = Tally::of(&log, config, reports);
        assert_stored(&tally, &config.tag);
        total.acked += tally.acked;
        total.sent += tally.sent;
        total.unacked_logged += tally.unacked_logged;
    }
    assert_eq!(
        log.records as u64,
        total.acked + total.unacked_logged,
        "records no client sent"
    );
    println!(
        "front end killed under load: PASS: {ROUNDS} kill -9s of a front end under 12 connections (window 64): {} acknowledged, each in the stream once; \
         {} sent; {} stored but not acknowledged (in flight at the kill)",
        total.acked, total.sent, total.unacked_logged
    );
}
