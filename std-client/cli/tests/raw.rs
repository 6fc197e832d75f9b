//! Raw mode against the real `msglog-server --raw`: the classic five checks,
//! a 100 MiB stream that pauses mid-way, 4 GiB in constant memory; the
//! close as the outcome (a server that dies, cannot write its stdout, or
//! stops mid-stream resets, and the client exits 10); a framed server
//! answering a raw client; and `--raw-min-rate` against a dribbler.

// These tests drive processes with signals, pipes, ptys and resource
// limits: Unix only (Windows is covered by the unit tests under wine and
// scripts/wine/e2e.sh).
#![cfg(unix)]

mod common;

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};

use common::{peak_rss_kib, run_client, wait_until, ClientProcess, Finished, Server, DEADLINE};

/// Send `input` with one client and return how it ended.
fn send(server: &Server, input: Vec<u8>) -> Finished {
    let port = server.port.to_string();
    run_client(&["127.0.0.1", &port], &[], input)
}

/// Exit 0, and on stderr only the summary line.
fn assert_success(finished: &Finished) {
    assert_eq!(finished.code(), Some(0), "stderr: {}", finished.stderr);
    assert_eq!(
        finished.stderr.lines().count(),
        1,
        "stderr: {}",
        finished.stderr
    );
    assert!(
        finished.stderr.starts_with("msglog-client: ")
            && finished.stderr.contains(" sent, confirmed by the server, "),
        "stderr: {}",
        finished.stderr
    );
}

/// Wait until the server has written `expected` to `output`, exactly.
fn assert_output(output: &Path, expected: &[u8]) {
    wait_until("the server wrote every byte", || {
        fs::metadata(output).is_ok_and(|m| m.len() >= expected.len() as u64)
    });
    let written = fs::read(output).unwrap();
    assert_eq!(written.len(), expected.len());
    assert!(written == expected, "the output differs from the input");
}

#[test]
fn short_message() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let server = Server::raw(&output);
    assert_success(&send(&server, b"hello, world\n".to_vec()));
    assert_output(&output, b"hello, world\n");
}

#[test]
fn a_host_name_is_resolved_and_each_address_tried() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let server = Server::raw(&output);
    let port = server.port.to_string();
    // `localhost` may resolve to ::1 first, where nothing listens here.
    assert_success(&run_client(
        &["localhost", &port],
        &[],
        b"by name\n".to_vec(),
    ));
    assert_output(&output, b"by name\n");
}

#[test]
fn alphanumeric_24_kb() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let server = Server::raw(&output);
    let mut rng = rand::rngs::StdRng::seed_from_u64(24);
    let input: Vec<u8> = (0..24_000)
        .map(|_| rng.sample(rand::distributions::Alphanumeric))
        .collect();
    assert_success(&send(&server, input.clone()));
    assert_output(&output, &input);
}

#[test]
fn random_binary_100_kb() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let server = Server::raw(&output);
    let mut input = vec![0u8; 100_000];
    rand::rngs::StdRng::seed_from_u64(100).fill_bytes(&mut input);
    assert_success(&send(&server, input.clone()));
    assert_output(&output, &input);
}

#[test]
fn three_clients_in_a_row_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let server = Server::raw(&output);
    let mut expected = Vec::new();
    for client in 0..3u8 {
        let input: Vec<u8> = (0..10_000u32)
            .map(|i| (i as u8) ^ client.wrapping_mul(85))
            .collect();
        // A client exits 0 only once the server closed, i.e. took every byte.
        assert_success(&send(&server, input.clone()));
        expected.extend_from_slice(&input);
    }
    assert_output(&output, &expected);
}

#[test]
fn ten_clients_at_once_each_arrive_whole() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let server = Server::raw(&output);
    let port = server.port.to_string();
    // Client k sends 50,000 bytes, all `b'A' + k`: interleaving would show.
    let inputs: Vec<Vec<u8>> = (0..10u8).map(|k| vec![b'A' + k; 50_000]).collect();
    let mut clients: Vec<ClientProcess> = (0..10)
        .map(|_| ClientProcess::start(&["127.0.0.1", &port], &[]))
        .collect();
    thread::scope(|scope| {
        for (client, input) in clients.iter_mut().zip(&inputs) {
            // Every input must end: the server serves the clients one at a
            // time, in whatever order it accepted them.
            scope.spawn(move || {
                client.write(input);
                client.close_stdin();
            });
        }
    });
    for client in clients {
        assert_success(&client.finish());
    }
    let total: usize = inputs.iter().map(Vec::len).sum();
    wait_until("the server wrote every byte", || {
        fs::metadata(&output).is_ok_and(|m| m.len() >= total as u64)
    });
    let written = fs::read(&output).unwrap();
    assert_eq!(written.len(), total);
    let mut seen = Vec::new();
    for run in written.chunk_by(|a, b| a == b) {
        assert_eq!(run.len(), 50_000, "client {} was split", run[0] as char);
        seen.push(run[0]);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..10u8).map(|k| b'A' + k).collect::<Vec<_>>());
}

/// Block `index` of a deterministic stream: one random block, rotated by
/// an amount that depends on the index and stamped with it, so a lost,
/// repeated or reordered block shows.
fn block(base: &[u8], index: u64, out: &mut [u8]) {
    out.copy_from_slice(base);
    out.rotate_left((index as usize * 7919) % out.len());
    out[..8].copy_from_slice(&index.to_le_bytes());
}

#[test]
fn hundred_mib_through_a_pausing_pipe_byte_exact() {
    const BLOCK: usize = 1 << 20;
    const BLOCKS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let server = Server::raw(&output);
    let port = server.port.to_string();
    let mut client = ClientProcess::start(&["127.0.0.1", &port], &[]);
    let mut base = vec![0u8; BLOCK];
    rand::rngs::StdRng::seed_from_u64(1).fill_bytes(&mut base);
    let mut buffer = vec![0u8; BLOCK];
    for index in 0..BLOCKS {
        if index == BLOCKS / 2 {
            // Pause the pipe until the server has written (nearly all of) the
            // first half: the client forwards what it has without waiting
            // for the end. The slack allows for the server's own buffering.
            let half = BLOCK as u64 * BLOCKS / 2;
            let slack = 8 * BLOCK as u64;
            wait_until("the first half went through", || {
                fs::metadata(&output).is_ok_and(|m| m.len() + slack >= half)
            });
        }
        block(&base, index, &mut buffer);
        client.write(&buffer);
    }
    assert_success(&client.finish());

    wait_until("the server wrote every byte", || {
        fs::metadata(&output).is_ok_and(|m| m.len() >= BLOCK as u64 * BLOCKS)
    });
    let written = fs::File::open(&output).unwrap();
    assert_eq!(written.metadata().unwrap().len(), BLOCK as u64 * BLOCKS);
    let mut reader = std::io::BufReader::new(written);
    let mut got = vec![0u8; BLOCK];
    for index in 0..BLOCKS {
        std::io::Read::read_exact(&mut reader, &mut got).unwrap();
        block(&base, index, &mut buffer);
        assert!(got == buffer, "block {index} differs");
    }
}

/// Client and server hold one fixed buffer whatever the input's size: 4 GiB
/// go through with both well under 32 MiB resident (the copy buffer is 1 MiB).
#[test]
fn four_gib_in_constant_memory() {
    const CHUNK: usize = 4 << 20;
    const TOTAL: u64 = 4 << 30;
    const LIMIT_KIB: u64 = 32 << 10;
    let server = Server::raw(Path::new("/dev/null"));
    let port = server.port.to_string();
    let mut client = ClientProcess::start(&["127.0.0.1", &port], &[]);
    let chunk = vec![0x5Au8; CHUNK];
    let mut sent = 0u64;
    while sent < TOTAL {
        client.write(&chunk);
        sent += CHUNK as u64;
    }
    // Still running: their peaks cover the whole stream but the end.
    let client_kib = peak_rss_kib(client.pid());
    assert_success(&client.finish());
    let server_kib = peak_rss_kib(server.pid());
    assert!(
        client_kib < LIMIT_KIB,
        "the client peaked at {client_kib} KiB"
    );
    assert!(
        server_kib < LIMIT_KIB,
        "the server peaked at {server_kib} KiB"
    );
    eprintln!("4 GiB through raw mode: client peak {client_kib} KiB, server peak {server_kib} KiB");
}

#[test]
fn a_server_that_dies_mid_stream_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let mut server = Server::raw(&output);
    let port = server.port.to_string();
    let mut client = ClientProcess::start(&["127.0.0.1", &port], &[]);
    let chunk = vec![b'x'; 1 << 20];
    client.write(&chunk);
    wait_until("the server is receiving", || {
        fs::metadata(&output).is_ok_and(|m| m.len() > 0)
    });
    server.kill();
    // Keep sending until the client notices and stops reading its stdin.
    let mut sent = 0;
    let stdin_closed = loop {
        if sent > 1 << 30 {
            break false;
        }
        if client.try_write(&chunk).is_err() {
            break true;
        }
        sent += chunk.len();
    };
    assert!(
        stdin_closed,
        "the client kept reading after the server died"
    );
    let finished = client.finish();
    assert_eq!(finished.code(), Some(10), "stderr: {}", finished.stderr);
    assert!(
        finished.stderr.contains("lost"),
        "stderr: {}",
        finished.stderr
    );
    assert_eq!(
        finished.stderr.lines().count(),
        1,
        "stderr: {}",
        finished.stderr
    );
}

/// A pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) writes two new descriptors into the array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just opened and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn assert_one_line(finished: &Finished, code: i32, needles: &[&str]) {
    assert_eq!(finished.code(), Some(code), "stderr: {}", finished.stderr);
    assert_eq!(
        finished.stderr.lines().count(),
        1,
        "stderr: {}",
        finished.stderr
    );
    assert!(
        finished.stderr.starts_with("msglog-client: "),
        "stderr: {}",
        finished.stderr
    );
    for needle in needles {
        assert!(
            finished.stderr.contains(needle),
            "{needle:?} not in: {}",
            finished.stderr
        );
    }
}

/// `msglog-server --raw P | (sleep 0.3; exec true)`: the reader of the
/// server's stdout is gone, so the client's bytes cannot be written. The
/// server resets the connection, and the client must not claim success.
#[test]
fn a_server_whose_stdout_fails_resets_and_the_client_exits_10() {
    let (read_end, write_end) = pipe();
    let mut server = Server::raw_with(write_end, &[]);
    drop(read_end);
    let finished = send(&server, b"nobody will read this\n".to_vec());
    assert_one_line(
        &finished,
        10,
        &["lost", "the server did not confirm that it took every byte"],
    );
    assert_eq!(server.wait_exit().code(), Some(7), "{}", server.stderr());
    let stderr = server.wait_stderr("writing to stdout failed");
    assert!(
        stderr.contains("reset, stdout failed (0 bytes written)"),
        "{stderr}"
    );
}

/// SIGTERM while a client is mid-stream: what arrived is written, the
/// client is reset (a clean close would confirm bytes never received), and
/// the summary counts the bytes written.
#[test]
fn a_server_stopped_mid_stream_resets_and_the_client_exits_10() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let mut server = Server::raw(&output);
    let port = server.port.to_string();
    let mut client = ClientProcess::start(&["127.0.0.1", &port], &[]);
    client.write(b"the first part of a stream");
    wait_until("the server wrote the first part", || {
        fs::metadata(&output).is_ok_and(|m| m.len() == 26)
    });
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success(), "{}", server.stderr());
    let stderr = server.wait_stderr("stopped:");
    assert!(stderr.contains("stopped: 1 client, 26 bytes"), "{stderr}");
    // The rest of the input, then its end: nobody took it.
    client.write(b", and the rest");
    let finished = client.finish();
    assert_one_line(
        &finished,
        10,
        &["lost", "the server did not confirm that it took every byte"],
    );
    assert_eq!(fs::read(&output).unwrap(), b"the first part of a stream");
}

/// A user who forgot `--user`: the framed server answers the first raw
/// bytes with 0xFF; a raw server never sends a byte, so the client says
/// what is wrong instead of exiting 0 — with a small input, and with one
/// large enough that the server's close resets the upload first.
#[test]
fn a_raw_client_pointed_at_a_framed_server_is_told_to_use_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::framed(dir.path());
    for input in [b"hello\n".to_vec(), vec![b'x'; 64 << 20]] {
        let len = input.len();
        let finished = send(&server, input);
        assert_one_line(
            &finished,
            12,
            &[
                "the server answered (0xff)",
                "is it a framed msglog server? use --user",
            ],
        );
        eprintln!("{len} bytes: {}", finished.stderr.trim());
    }
    assert!(common::records(dir.path()).is_empty());
}

/// `--raw-min-rate`: a client that sends one byte every 100 ms is reset at
/// the end of its first window, and the client waiting behind it is served.
#[test]
fn a_dribbler_is_dropped_and_the_next_client_is_served() {
    const WINDOW: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let mut server = Server::raw_with(
        fs::File::create(&output).unwrap(),
        &["--raw-min-rate", "1KiB/s", "--raw-rate-window", "2s"],
    );
    let port = server.port.to_string();
    let before = Instant::now();
    let mut dribbler = ClientProcess::start(&["127.0.0.1", &port], &[]);
    dribbler.write(b"d");
    wait_until("the dribbler is served", || {
        fs::metadata(&output).is_ok_and(|m| m.len() == 1)
    });
    // Next in line: all its input is there; it waits for its turn.
    let mut next = ClientProcess::start(&["127.0.0.1", &port], &[]);
    next.write(b"next in line\n");
    next.close_stdin();
    // Dribble until the dribbler, reset, stops reading its input.
    while dribbler.try_write(b"d").is_ok() {
        assert!(
            before.elapsed() < DEADLINE,
            "the dribbler was never dropped"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let stderr = server.wait_stderr("under the minimum");
    let dropped_after = before.elapsed();
    assert!(
        dropped_after >= WINDOW && dropped_after < WINDOW * 5,
        "dropped after {dropped_after:?}: {stderr}"
    );
    assert_one_line(&dribbler.finish(), 10, &["lost"]);
    assert_success(&next.finish());
    let written = fs::read(&output).unwrap();
    let (dribbled, rest) = written.split_at(written.len() - 13);
    assert_eq!(rest, b"next in line\n");
    assert!(!dribbled.is_empty() && dribbled.iter().all(|&b| b == b'd'));
    let line = stderr
        .lines()
        .find(|l| l.contains("under the minimum"))
        .unwrap();
    assert!(line.contains("reset"), "{line}");
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    let stderr = server.wait_stderr("stopped:");
    let total = written.len();
    assert!(
        stderr.contains(&format!("stopped: 2 clients, {total} bytes")),
        "{stderr}"
    );
}

/// A client well over the minimum rate, paced over several windows, is
/// served to the end.
#[test]
fn a_steady_client_is_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let server = Server::raw_with(
        fs::File::create(&output).unwrap(),
        &["--raw-min-rate", "1KiB/s", "--raw-rate-window", "2s"],
    );
    let port = server.port.to_string();
    let mut client = ClientProcess::start(&["127.0.0.1", &port], &[]);
    let started = Instant::now();
    let chunk = vec![b's'; 4096];
    let mut sent = 0;
    // 40 KiB/s for three windows.
    while started.elapsed() < Duration::from_secs(6) {
        client.write(&chunk);
        sent += chunk.len();
        thread::sleep(Duration::from_millis(100));
    }
    assert_success(&client.finish());
    assert_output(&output, &vec![b's'; sent]);
    assert!(!server.stderr().contains("reset"), "{}", server.stderr());
}
