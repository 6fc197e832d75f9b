//! Codec benchmarks: decoding, encoding and record escaping.
//!
//! Run with `cargo bench -p msglog-core --bench codec`. Targets (issue 5):
//! decoding 4 KiB messages at 2 GB/s or more, 64-byte messages at 20
//! million frames/s or more.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use msglog_core::{decode, escaped_len, write_escaped, Decoded, Frames, Limits, Transaction};

/// Message sizes of the targets.
const SIZES: [usize; 2] = [64, 4096];

/// Bytes of back-to-back frames decoded per iteration (about 1 MiB: more
/// than L2, so the figures include reading the buffer from memory).
const STREAM_BYTES: usize = 1 << 20;

/// `count` MESSAGE frames of `size` bytes each, back to back.
fn stream(size: usize) -> (Vec<u8>, u64) {
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let message = Transaction::Message(&payload);
    let count = STREAM_BYTES / message.encoded_len();
    let mut bytes = vec![0u8; count * message.encoded_len()];
    for frame in bytes.chunks_exact_mut(message.encoded_len()) {
        message.encode(frame).expect("the frame fits its chunk");
    }
    (bytes, count as u64)
}

/// Decode every frame with repeated `decode`; returns the payload bytes seen.
fn decode_all(mut input: &[u8]) -> usize {
    let mut payload = 0;
    while let Ok(Decoded::Complete {
        transaction,
        consumed,
    }) = decode(input, &Limits::STD)
    {
        payload += transaction.payload().len();
        input = &input[consumed..];
    }
    payload
}

/// Decode every frame with the `Frames` iterator.
fn frames_all(input: &[u8]) -> usize {
    Frames::new(input, Limits::STD)
        .map(|frame| frame.map_or(0, |t| t.payload().len()))
        .sum()
}

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for size in SIZES {
        let (bytes, frames) = stream(size);
        assert_eq!(decode_all(&bytes), size * frames as usize);
        assert_eq!(frames_all(&bytes), size * frames as usize);

        group.throughput(Throughput::Elements(frames));
        group.bench_with_input(BenchmarkId::new("frames", size), &bytes, |b, bytes| {
            b.iter(|| decode_all(black_box(bytes)))
        });
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("bytes", size), &bytes, |b, bytes| {
            b.iter(|| decode_all(black_box(bytes)))
        });
        group.throughput(Throughput::Elements(frames));
        group.bench_with_input(BenchmarkId::new("iterator", size), &bytes, |b, bytes| {
            b.iter(|| frames_all(black_box(bytes)))
        });
    }
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in SIZES {
        let payload = vec![b'x'; size];
        let message = Transaction::Message(&payload);
        let (_, frames) = stream(size);
        let mut out = vec![0u8; frames as usize * message.encoded_len()];
        group.throughput(Throughput::Bytes(out.len() as u64));
        group.bench_function(BenchmarkId::new("encode", size), |b| {
            b.iter(|| {
                for frame in out.chunks_exact_mut(message.encoded_len()) {
                    black_box(message).encode(frame).expect("fits");
                }
            })
        });
        group.bench_function(BenchmarkId::new("write_to", size), |b| {
            b.iter(|| {
                let mut writer = &mut out[..];
                for _ in 0..frames {
                    black_box(message).write_to(&mut writer).expect("fits");
                }
            })
        });
    }
    group.finish();
}

fn escaping(c: &mut Criterion) {
    let mut group = c.benchmark_group("escape");
    let text: Vec<u8> = (0..4096).map(|i| b' ' + (i % 95) as u8).collect();
    // Typographic text: an E2 80 xx quote, dash or ellipsis every few words,
    // the lead byte the escaper must look at twice.
    let phrase = "\u{201c}Quoted\u{201d} \u{2014} it\u{2019}s text\u{2026} ";
    let punctuation = phrase.repeat(4096 / phrase.len()).into_bytes();
    let binary: Vec<u8> = (0..4096).map(|i| i as u8).collect();
    for (name, message) in [
        ("text", &text),
        ("punctuation", &punctuation),
        ("binary", &binary),
    ] {
        let mut out = vec![0u8; escaped_len(message)];
        group.throughput(Throughput::Bytes(message.len() as u64));
        group.bench_function(BenchmarkId::new("write_escaped", name), |b| {
            b.iter(|| {
                let mut writer = &mut out[..];
                write_escaped(&mut writer, black_box(message)).expect("fits");
            })
        });
        group.bench_function(BenchmarkId::new("escaped_len", name), |b| {
            b.iter(|| escaped_len(black_box(message)))
        });
    }
    group.finish();
}

criterion_group!(benches, decoding, encoding, escaping);
criterion_main!(benches);
