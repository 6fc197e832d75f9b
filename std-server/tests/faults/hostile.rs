//! Hostile bytes: a network fuzzer. Many connections send random and
//! mutated transactions (from the fuzz seeds, the libFuzzer corpus when
//! present, and the dictionary) at full speed, in every chunking, and end
//! in every way (read to the end, close, reset, half-close, vanish). The
//! server must never die, its memory must stay bounded, every line it logs
//! must still parse, and a well-behaved client interleaved with the noise
//! gets every message through.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msglog_core::{Frames, Limits};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::crash::seed;
use super::harness::{Launch, Server};
use super::records::Log;
use crate::common::{login_bytes, message, read_to_end, CLOSE};

const FUZZERS: usize = 8;
/// Connections each fuzzer leaves open (the idle timeout reaps them).
const PARKED: usize = 50;

fn fuzz_duration() -> Duration {
    let seconds = std::env::var("FAULTS_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(seconds)
}

/// Inputs and tokens to mutate.
struct Corpus {
    inputs: Vec<Vec<u8>>,
    tokens: Vec<Vec<u8>>,
    seeds: usize,
    corpus: usize,
}

impl Corpus {
    fn load() -> Corpus {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        // The decode target's inputs: a limits selector, then protocol bytes.
        let read_dir = |dir: &Path, cap: usize| -> Vec<Vec<u8>> {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return Vec::new();
            };
            let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            files
                .iter()
                .take(cap)
                .filter_map(|path| std::fs::read(path).ok())
                .filter_map(|bytes| bytes.get(1..).map(<[u8]>::to_vec))
                .filter(|bytes| !bytes.is_empty())
                .collect()
        };
        let seeds = read_dir(&fuzz.join("seeds/decode"), usize::MAX);
        assert!(
            !seeds.is_empty(),
            "no seeds in {}",
            fuzz.join("seeds/decode").display()
        );
        let corpus = read_dir(&fuzz.join("corpus/decode"), 2000);
        let tokens = std::fs::read_to_string(fuzz.join("msglog.dict"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                line.split_once("=\"")
                    .map(|(_, v)| v.trim_end_matches('"').to_owned())
            })
            .map(|value| dict_bytes(&value))
            .collect();
        Corpus {
            seeds: seeds.len(),
            corpus: corpus.len(),
            inputs: seeds.into_iter().chain(corpus).collect(),
            tokens,
        }
    }
}

/// A libFuzzer dictionary value (`\xNN`, `\\`, `\"` escapes) as bytes.
fn dict_bytes(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            if let Some(byte) = value
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            out.push(bytes[i + 1]);
            i += 2;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// One mutated input.
fn mutate(rng: &mut StdRng, corpus: &Corpus, thread: usize) -> Vec<u8> {
    let mut input = if rng.gen_bool(0.1) {
        (0..rng.gen_range(1..512)).map(|_| rng.gen()).collect()
    } else {
        corpus.inputs[rng.gen_range(0..corpus.inputs.len())].clone()
    };
    if rng.gen_bool(0.3) {
        // Start logged in, so mutations reach the MESSAGE state.
        let mut login = login_bytes(&format!("fuzz{thread}"), b"pw");
        login.append(&mut input);
        input = login;
    }
    for _ in 0..rng.gen_range(0..8) {
        let len = input.len();
        match rng.gen_range(0..9) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                input[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                input[i] = rng.gen();
            }
            2 if !corpus.tokens.is_empty() => {
                let token = &corpus.tokens[rng.gen_range(0..corpus.tokens.len())];
                let at = rng.gen_range(0..=len);
                input.splice(at..at, token.iter().copied());
            }
            3 if len > 1 => {
                let from = rng.gen_range(0..len);
                let to = rng.gen_range(from..=len.min(from + 64));
                input.drain(from..to);
            }
            4 if len > 1 => {
                let from = rng.gen_range(0..len);
                let to = rng.gen_range(from..=len.min(from + 256));
                let copy = input[from..to].to_vec();
                let at = rng.gen_range(0..=len);
                input.splice(at..at, copy);
            }
            5 => {
                let other = &corpus.inputs[rng.gen_range(0..corpus.inputs.len())];
                input.extend_from_slice(other);
            }
            6 => {
                // A frame header with an interesting length, maybe without its payload.
                let tag = *[1u8, 2, 3, 4, 0, 5, 0xff]
                    .get(rng.gen_range(0..7))
                    .unwrap_or(&3);
                let len: u16 = [0, 1, 255, 256, 512, 65_535, rng.gen()][rng.gen_range(0..7)];
                let at = rng.gen_range(0..=input.len());
                input.splice(at..at, [tag, len as u8, (len >> 8) as u8]);
            }
            7 if len > 0 => input.truncate(rng.gen_range(0..len)),
            _ => {
                let more = rng.gen_range(1..64);
                input.extend((0..more).map(|_| rng.gen::<u8>()));
            }
        }
        input.truncate(256 * 1024);
    }
    if rng.gen_bool(0.05) {
        // A valid session with a large message, then noise.
        let mut big = login_bytes(&format!("fuzz{thread}"), b"pw");
        big.extend(message(&vec![rng.gen::<u8>(); rng.gen_range(1..65_536)]));
        big.append(&mut input);
        input = big;
    }
    input
}

#[derive(Default)]
struct Figures {
    executions: AtomicU64,
    bytes: AtomicU64,
    transactions: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    resets: AtomicU64,
}

fn fuzz_thread(
    addr: SocketAddr,
    corpus: &Corpus,
    thread: usize,
    seed: u64,
    stop: &AtomicBool,
    figures: &Figures,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ (thread as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut parked: Vec<TcpStream> = Vec::new();
    let mut scratch = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let input = mutate(&mut rng, corpus, thread);
        let Ok(mut stream) = TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
        figures.executions.fetch_add(1, Ordering::Relaxed);
        figures
            .bytes
            .fetch_add(input.len() as u64, Ordering::Relaxed);
        let frames = Frames::new(&input, Limits::WIRE)
            .take_while(Result::is_ok)
            .count();
        figures
            .transactions
            .fetch_add(frames as u64, Ordering::Relaxed);
        // Chunking: all at once, random pieces, or byte by byte for short inputs.
        let mut sent_all = true;
        match rng.gen_range(0..4) {
            0 | 1 => sent_all = stream.write_all(&input).is_ok(),
            2 => {
                let mut rest = &input[..];
                while !rest.is_empty() {
                    let n = rng.gen_range(1..=rest.len().min(4096));
                    if stream.write_all(&rest[..n]).is_err() {
                        sent_all = false;
                        break;
                    }
                    rest = &rest[n..];
                }
            }
            _ => {
                for byte in input.iter().take(64) {
                    if stream.write_all(std::slice::from_ref(byte)).is_err() {
                        sent_all = false;
                        break;
                    }
                }
            }
        }
        if !sent_all {
            figures.resets.fetch_add(1, Ordering::Relaxed);
        }
        // The end: read the answers, close, reset, half-close, or vanish.
        match rng.gen_range(0..5) {
            0 | 1 => loop {
                match stream.read(&mut scratch) {
                    Ok(0) => break,
                    Ok(n) => {
                        let answers = &scratch[..n];
                        let zeros = answers.iter().filter(|&&b| b == 0).count() as u64;
                        figures.accepted.fetch_add(zeros, Ordering::Relaxed);
                        figures
                            .rejected
                            .fetch_add(n as u64 - zeros, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            },
            2 => drop(stream),
            3 => {
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                drop(stream);
            }
            _ if parked.len() < PARKED => parked.push(stream),
            _ => {
                let _ = stream.shutdown(Shutdown::Write);
                parked.remove(0);
                parked.push(stream);
            }
        }
    }
}

/// The well-behaved client: sessions of 20 pipelined messages; returns
/// (bodies acknowledged, slowest session).
fn good_client(addr: SocketAddr, stop: &AtomicBool) -> (Vec<Vec<u8>>, Duration) {
    let mut delivered = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut session = 0;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).expect("the good client cannot connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let bodies: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("good-{session}-{i}").into_bytes())
            .collect();
        let mut bytes = login_bytes("good", b"pw");
        for body in &bodies {
            bytes.extend(message(body));
        }
        bytes.extend_from_slice(CLOSE);
        stream.write_all(&bytes).unwrap();
        let answers = read_to_end(&mut stream);
        assert_eq!(answers, vec![0; 23], "good session {session}");
        slowest = slowest.max(started.elapsed());
        delivered.extend(bodies);
        session += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    (delivered, slowest)
}

#[test]
#[ignore = "fault suite: run scripts/faults.sh"]
fn network_fuzzer_cannot_kill_the_server_or_block_a_good_client() {
    let seed = seed();
    let duration = fuzz_duration();
    let corpus = Arc::new(Corpus::load());
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Launch::new(
        dir.path(),
        &["--frame-timeout", "2s", "--idle-timeout", "5s"],
    ));
    println!(
        "network fuzzer: {FUZZERS} threads for {} s, {} seeds + {} corpus inputs + {} dictionary tokens; FAULTS_SEED={seed}",
        duration.as_secs(),
        corpus.seeds,
        corpus.corpus,
        corpus.tokens.len()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let figures = Arc::new(Figures::default());
    let fuzzers: Vec<_> = (0..FUZZERS)
        .map(|thread| {
            let (corpus, stop, figures) =
                (Arc::clone(&corpus), Arc::clone(&stop), Arc::clone(&figures));
            let addr = server.addr;
            std::thread::spawn(move || fuzz_thread(addr, &corpus, thread, seed, &stop, &figures))
        })
        .collect();
    let good = {
        let (stop, addr) = (Arc::clone(&stop), server.addr);
        std::thread::spawn(move || good_client(addr, &stop))
    };

    let started = Instant::now();
    let mut rss_samples = Vec::new();
    while started.elapsed() < duration {
        std::thread::sleep(Duration::from_secs(1));
        if !server.is_running() || good.is_finished() {
            break;
        }
        rss_samples.push(server.rss_kib());
    }
    let peak = server.peak_rss_kib();
    stop.store(true, Ordering::Relaxed);
    for fuzzer in fuzzers {
        fuzzer.join().expect("a fuzzer thread panicked");
    }
    let (delivered, slowest) = match good.join() {
        Ok(result) => result,
        Err(_) => panic!(
            "the good client failed; server stderr:\n{}",
            server.stderr_text()
        ),
    };
    assert!(
        server.is_running(),
        "the server died; stderr:\n{}",
        server.stderr_text()
    );

    let log = Log::parse(&std::fs::read(dir.path().join("messages.log")).unwrap());
    log.assert_well_formed("messages.log after fuzzing", false);
    let missing = delivered
        .iter()
        .filter(|body| log.count("good", body) != 1)
        .count();
    assert_eq!(missing, 0, "good messages not logged exactly once");
    let transactions = std::fs::read_to_string(dir.path().join("transactions.log")).unwrap();
    for line in transactions.lines() {
        crate::common::assert_timestamp(line.get(..24).unwrap_or(line));
        assert!(line[24..].starts_with(" conn="), "{line}");
    }
    let stderr = server.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
    // 400 parked connections with a 64 KiB frame each would be 26 MiB.
    const PEAK_BOUND_KIB: u64 = 64 * 1024;
    assert!(peak < PEAK_BOUND_KIB, "peak RSS {peak} KiB");
    let third = rss_samples.len() / 3;
    let executions = figures.executions.load(Ordering::Relaxed);
    println!(
        "network fuzzer: PASS: {executions} executions ({:.0}/s), {} transactions and {} MiB sent, {} statuses 0x00 and {} 0xFF read back, {} connections cut off while sending; \
         the server never died; RSS after a third of the run {} KiB, at the end {} KiB, peak (VmHWM) {peak} KiB (bound {} MiB); \
         the good client got all {} messages through in {} sessions (slowest {} ms) and each is logged once; \
         {} records and {} transaction-log lines written, every one well-formed",
        executions as f64 / started.elapsed().as_secs_f64(),
        figures.transactions.load(Ordering::Relaxed),
        figures.bytes.load(Ordering::Relaxed) / (1024 * 1024),
        figures.accepted.load(Ordering::Relaxed),
        figures.rejected.load(Ordering::Relaxed),
        figures.resets.load(Ordering::Relaxed),
        rss_samples.get(third).copied().unwrap_or(0),
        rss_samples.last().copied().unwrap_or(0),
        PEAK_BOUND_KIB / 1024,
        delivered.len(),
        delivered.len() / 20,
        slowest.as_millis(),
        log.records,
        transactions.lines().count()
    );
}

#[test]
fn dictionary_values_decode() {
    assert_eq!(dict_bytes("\\x01\\x00"), [1, 0]);
    assert_eq!(dict_bytes("a\\\\b\\\"c"), b"a\\b\"c");
}
