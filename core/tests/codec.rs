//! Codec tests: byte vectors from PROTOCOL.md and property tests.

use msglog_core::{
    decode, Decoded, EncodeError, FrameError, Frames, Limits, Status, Tag, Transaction, MAX_PAYLOAD,
};
use proptest::prelude::*;

fn complete<'a>(input: &'a [u8], limits: &Limits) -> (Transaction<'a>, usize) {
    match decode(input, limits) {
        Ok(Decoded::Complete {
            transaction,
            consumed,
        }) => (transaction, consumed),
        other => panic!("expected a complete transaction, got {other:?}"),
    }
}

fn needed(input: &[u8], limits: &Limits) -> usize {
    match decode(input, limits) {
        Ok(Decoded::Partial { needed }) => needed.get(),
        other => panic!("expected partial, got {other:?}"),
    }
}

#[test]
fn original_client_name_bytes() {
    let bytes = [0x01, 0x06, 0x00, b'M', b'y', b'U', b's', b'e', b'r'];
    assert_eq!(
        complete(&bytes, &Limits::STD),
        (Transaction::Name(b"MyUser"), 9)
    );
    assert_eq!(Transaction::Name(b"MyUser").encoded_len(), 9);
    let mut out = [0u8; 9];
    assert_eq!(Transaction::Name(b"MyUser").encode(&mut out), Ok(9));
    assert_eq!(out, bytes);
}

#[test]
fn bare_close_is_one_byte() {
    assert_eq!(complete(&[0x04], &Limits::STD), (Transaction::Close, 1));
    // Bytes after CLOSE are not part of it.
    assert_eq!(
        complete(&[0x04, 0x05, 0x00], &Limits::STD),
        (Transaction::Close, 1)
    );
    let mut out = [0xAAu8; 4];
    assert_eq!(Transaction::Close.encode(&mut out), Ok(1));
    assert_eq!(out, [0x04, 0xAA, 0xAA, 0xAA]);
    assert_eq!(Transaction::Close.header().unwrap().as_bytes(), &[0x04]);
}

#[test]
fn length_is_little_endian() {
    let mut frame = vec![0x03, 0x05, 0x01];
    frame.extend(std::iter::repeat_n(b'x', 0x0105));
    let (tx, used) = complete(&frame, &Limits::STD);
    assert_eq!(used, 3 + 261);
    assert_eq!(tx.payload().len(), 261);
    assert_eq!(
        Transaction::Message(&frame[3..])
            .header()
            .unwrap()
            .as_bytes(),
        &[0x03, 0x05, 0x01]
    );
}

#[test]
fn every_tag_decodes() {
    let limits = Limits::STD;
    assert_eq!(
        complete(b"\x02\x03\x00pwd", &limits).0,
        Transaction::Password(b"pwd")
    );
    assert_eq!(
        complete(b"\x03\x02\x00hi", &limits).0,
        Transaction::Message(b"hi")
    );
}

#[test]
fn unknown_tags_are_rejected_at_the_first_byte() {
    for byte in [0x00u8, 0x05, 0x06, 0x7F, 0x80, 0xFE, 0xFF] {
        assert_eq!(
            decode(&[byte], &Limits::STD),
            Err(FrameError::UnknownTag(byte))
        );
    }
}

#[test]
fn zero_length_is_rejected_without_waiting_for_payload() {
    for tag in [Tag::Name, Tag::Password, Tag::Message] {
        assert_eq!(
            decode(&[tag.as_byte(), 0, 0], &Limits::STD),
            Err(FrameError::ZeroLength(tag))
        );
    }
}

#[test]
fn too_long_is_rejected_as_soon_as_the_length_is_known() {
    assert_eq!(
        decode(&[0x01, 0x00, 0x01], &Limits::STD),
        Err(FrameError::TooLong {
            tag: Tag::Name,
            length: 256,
            max: 255
        })
    );
    let small = Limits::from_capacities(32, 32, 512);
    assert_eq!(
        decode(&[0x03, 0x01, 0x02], &small),
        Err(FrameError::TooLong {
            tag: Tag::Message,
            length: 513,
            max: 512
        })
    );
    // At the limit is fine.
    assert_eq!(needed(&[0x03, 0x00, 0x02], &small), 512);
}

#[test]
fn partial_input_reports_what_is_missing() {
    let limits = Limits::STD;
    assert_eq!(needed(&[], &limits), 1);
    assert_eq!(needed(&[0x01], &limits), 2);
    assert_eq!(needed(&[0x01, 0x06], &limits), 1);
    assert_eq!(needed(&[0x01, 0x06, 0x00], &limits), 6);
    assert_eq!(needed(b"\x01\x06\x00MyU", &limits), 3);
}

#[test]
fn frames_iterates_and_stops_at_partial_or_error() {
    let input = b"\x01\x01\x00a\x03\x01\x00b\x03\x05\x00ab";
    let mut frames = Frames::new(input, Limits::STD);
    assert_eq!(frames.next(), Some(Ok(Transaction::Name(b"a"))));
    assert_eq!(frames.next(), Some(Ok(Transaction::Message(b"b"))));
    assert_eq!(frames.next(), None);
    assert_eq!(frames.consumed(), 8);

    let mut frames = Frames::new(b"\x04\x09", Limits::STD);
    assert_eq!(frames.next(), Some(Ok(Transaction::Close)));
    assert_eq!(frames.next(), Some(Err(FrameError::UnknownTag(9))));
    assert_eq!(frames.next(), None);
}

#[test]
fn encoder_refuses_what_the_wire_cannot_carry() {
    assert_eq!(
        Transaction::Message(b"").header(),
        Err(EncodeError::Empty(Tag::Message))
    );
    let big = vec![0u8; MAX_PAYLOAD + 1];
    assert_eq!(
        Transaction::Name(&big).encode(&mut [0u8; 8]),
        Err(EncodeError::TooLong {
            tag: Tag::Name,
            length: MAX_PAYLOAD + 1
        })
    );
    assert_eq!(
        Transaction::Message(b"hello").encode(&mut [0u8; 7]),
        Err(EncodeError::BufferTooSmall { needed: 8 })
    );
    let max = vec![7u8; MAX_PAYLOAD];
    let mut out = vec![0u8; MAX_PAYLOAD + 3];
    assert_eq!(
        Transaction::Message(&max).encode(&mut out),
        Ok(MAX_PAYLOAD + 3)
    );
    assert_eq!(&out[..3], &[0x03, 0xFF, 0xFF]);
}

#[test]
fn encoder_writes_into_embedded_io() {
    let mut buf = [0u8; 16];
    let mut w: &mut [u8] = &mut buf;
    Transaction::Password(b"secret").write_to(&mut w).unwrap();
    Status::Rejected.write_to(&mut w).unwrap();
    assert_eq!(&buf[..10], b"\x02\x06\x00secret\xFF");
    let mut tiny = [0u8; 2];
    let mut w: &mut [u8] = &mut tiny;
    assert!(Transaction::Password(b"secret").write_to(&mut w).is_err());
}

#[test]
fn status_bytes() {
    assert_eq!(Status::from_byte(0x00), Some(Status::Accepted));
    assert_eq!(Status::from_byte(0xFF), Some(Status::Rejected));
    assert_eq!(Status::from_byte(0x01), None);
    assert_eq!(Status::Rejected.as_byte(), 0xFF);
}

/// A transaction with owned payload, for generating.
#[derive(Debug, Clone)]
enum Owned {
    Name(Vec<u8>),
    Password(Vec<u8>),
    Message(Vec<u8>),
    Close,
}

impl Owned {
    fn borrow(&self) -> Transaction<'_> {
        match self {
            Owned::Name(p) => Transaction::Name(p),
            Owned::Password(p) => Transaction::Password(p),
            Owned::Message(p) => Transaction::Message(p),
            Owned::Close => Transaction::Close,
        }
    }
}

fn payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..=16),
        proptest::collection::vec(any::<u8>(), 1..=max),
    ]
}

fn owned() -> impl Strategy<Value = Owned> {
    prop_oneof![
        payload(255).prop_map(Owned::Name),
        payload(255).prop_map(Owned::Password),
        payload(2000).prop_map(Owned::Message),
        Just(Owned::Close),
    ]
}

/// Decode a whole stream: the transactions, and the error that ended it, if any.
fn decode_stream(input: &[u8], limits: &Limits) -> (Vec<Owned>, Option<FrameError>, usize) {
    let mut out = Vec::new();
    let mut frames = Frames::new(input, *limits);
    let mut error = None;
    for frame in frames.by_ref() {
        match frame {
            Ok(tx) => out.push(match tx {
                Transaction::Name(p) => Owned::Name(p.to_vec()),
                Transaction::Password(p) => Owned::Password(p.to_vec()),
                Transaction::Message(p) => Owned::Message(p.to_vec()),
                Transaction::Close => Owned::Close,
            }),
            Err(e) => error = Some(e),
        }
    }
    (out, error, frames.consumed())
}

/// Feed `input` in the given chunk sizes to a receive buffer, the way a driver does.
fn decode_chunked(
    input: &[u8],
    chunks: &[usize],
    limits: &Limits,
) -> (Vec<Owned>, Option<FrameError>, usize) {
    let mut buffer = Vec::new();
    let mut out = Vec::new();
    let mut consumed_total = 0;
    let mut offset = 0;
    let mut sizes = chunks.iter().copied().cycle();
    while offset < input.len() {
        let n = sizes.next().unwrap_or(1).clamp(1, input.len() - offset);
        buffer.extend_from_slice(&input[offset..offset + n]);
        offset += n;
        loop {
            match decode(&buffer, limits) {
                Ok(Decoded::Complete {
                    transaction,
                    consumed,
                }) => {
                    out.push(match transaction {
                        Transaction::Name(p) => Owned::Name(p.to_vec()),
                        Transaction::Password(p) => Owned::Password(p.to_vec()),
                        Transaction::Message(p) => Owned::Message(p.to_vec()),
                        Transaction::Close => Owned::Close,
                    });
                    buffer.drain(..consumed);
                    consumed_total += consumed;
                }
                Ok(Decoded::Partial { needed }) => {
                    assert!(needed.get() >= 1);
                    break;
                }
                Err(e) => return (out, Some(e), consumed_total),
            }
        }
    }
    (out, None, consumed_total)
}

fn same(a: &[Owned], b: &[Owned]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.borrow() == y.borrow())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_is_identity(txs in proptest::collection::vec(owned(), 0..20)) {
        let mut wire = Vec::new();
        for tx in &txs {
            let mut buf = vec![0u8; tx.borrow().encoded_len()];
            let n = tx.borrow().encode(&mut buf).unwrap();
            prop_assert_eq!(n, buf.len());
            // write_to produces the same bytes as encode.
            let mut via_writer = vec![0u8; n];
            let mut w: &mut [u8] = &mut via_writer;
            tx.borrow().write_to(&mut w).unwrap();
            prop_assert_eq!(&via_writer, &buf);
            wire.extend_from_slice(&buf);
        }
        let (decoded, error, consumed) = decode_stream(&wire, &Limits::WIRE);
        prop_assert!(error.is_none());
        prop_assert_eq!(consumed, wire.len());
        prop_assert!(same(&decoded, &txs));
    }

    #[test]
    fn any_chunking_gives_the_same_transactions_and_error(
        txs in proptest::collection::vec(owned(), 0..12),
        noise in proptest::collection::vec(any::<u8>(), 0..64),
        chunks in proptest::collection::vec(1usize..40, 1..16),
        small in any::<bool>(),
    ) {
        // Valid transactions, then arbitrary bytes (often an error or a partial frame).
        let mut wire = Vec::new();
        for tx in &txs {
            let mut buf = vec![0u8; tx.borrow().encoded_len()];
            tx.borrow().encode(&mut buf).unwrap();
            wire.extend_from_slice(&buf);
        }
        wire.extend_from_slice(&noise);
        let limits = if small { Limits::from_capacities(8, 8, 100) } else { Limits::STD };
        let whole = decode_stream(&wire, &limits);
        let split = decode_chunked(&wire, &chunks, &limits);
        prop_assert!(same(&whole.0, &split.0));
        prop_assert_eq!(whole.1, split.1);
        prop_assert_eq!(whole.2, split.2);
    }

    #[test]
    fn decoder_is_total_and_stays_in_bounds(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        match decode(&input, &Limits::STD) {
            Ok(Decoded::Complete { transaction, consumed }) => {
                prop_assert!(consumed <= input.len());
                let mut re = vec![0u8; consumed];
                prop_assert_eq!(transaction.encode(&mut re), Ok(consumed));
                prop_assert_eq!(&re[..], &input[..consumed]);
            }
            Ok(Decoded::Partial { needed }) => prop_assert!(needed.get() >= 1),
            Err(_) => {}
        }
    }

    #[test]
    fn prefixes_are_partial_or_the_same_answer(input in proptest::collection::vec(any::<u8>(), 1..64)) {
        let full = decode(&input, &Limits::STD);
        for cut in 0..input.len() {
            match decode(&input[..cut], &Limits::STD) {
                Ok(Decoded::Partial { needed }) => {
                    // Never asks for more than the whole input would have satisfied.
                    if let Ok(Decoded::Complete { consumed, .. }) = full {
                        prop_assert!(cut + needed.get() <= consumed);
                    }
                }
                other => prop_assert_eq!(other, full),
            }
        }
    }
}
