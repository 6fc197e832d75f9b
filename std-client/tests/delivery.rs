//! `Delivery` against a real `msglog-server`: the `deliver` example through
//! a `kill -9` and a restart of the server.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::{record, records, wait_child, wait_until, Server, DEADLINE};

/// The `deliver` example program, built once.
fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| common::cargo_build("msglog-client", "--example", "deliver"))
}

fn lines(numbers: RangeInclusive<u32>) -> String {
    numbers.map(|i| format!("line {i}\n")).collect()
}

#[test]
fn the_deliver_example_delivers_every_line_through_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::framed(dir.path());
    let mut child = Command::new(example_binary())
        .arg(server.address())
        .env("MSGLOG_PASSWORD", "secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(lines(1..=100).as_bytes()).unwrap();
    wait_until("a hundred lines are logged", || {
        records(dir.path()).len() == 100
    });
    server.restart(&[]);
    stdin.write_all(lines(101..=200).as_bytes()).unwrap();
    drop(stdin);
    let status = wait_child(&mut child, DEADLINE);
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");

    // "acknowledged: 200, retries: R, maybe logged twice: D"
    let figures: Vec<usize> = stdout
        .split(',')
        .map(|field| field.rsplit(' ').next().unwrap().trim().parse().unwrap())
        .collect();
    let [acknowledged, retries, maybe_duplicates] = figures[..] else {
        panic!("{stdout}");
    };
    assert_eq!(acknowledged, 200, "{stdout}");
    assert!(retries >= 1, "{stdout}");

    // Every line logged, in order of first appearance; any more are
    // resent duplicates, no more than reported.
    let logged = records(dir.path());
    let mut seen = HashSet::new();
    let first_copies: Vec<&Vec<u8>> = logged.iter().filter(|r| seen.insert(*r)).collect();
    let expected: Vec<Vec<u8>> = (1..=200)
        .map(|i| record("example", format!("line {i}").as_bytes()))
        .collect();
    assert_eq!(first_copies, expected.iter().collect::<Vec<_>>());
    assert!(logged.len() - 200 <= maybe_duplicates, "{stdout}");
    eprintln!("{}", stdout.trim());
}
