//! Arbitrary transactions, encoded then decoded back.
//!
//! Checks: `encode` and `write_to` produce the same bytes, `encoded_len`
//! bytes long, or the same `EncodeError` (empty or over-long payload, or a
//! buffer one byte too small); a stream of encoded transactions decodes,
//! with `Frames` and with repeated `decode`, to exactly the transactions
//! encoded, under the wire's limits and under limits equal to the longest
//! payload of each tag; one byte less of limit rejects the longest field.
#![no_main]

use std::cell::RefCell;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msglog_core::{
    decode, Decoded, EncodeError, FrameError, Frames, Limits, Status, Tag, Transaction, WriteError,
    MAX_PAYLOAD,
};

/// An owned mirror of `Transaction`, so `arbitrary` can build one.
#[derive(Debug, Arbitrary)]
enum Owned {
    Name(Vec<u8>),
    Password(Vec<u8>),
    Message(Vec<u8>),
    Close,
    /// A message padded to `len` bytes, to reach the upper lengths
    /// (up to and past 65535) that libFuzzer's short inputs cannot.
    LongMessage {
        fill: u8,
        len: u32,
    },
}

/// Bytes of padded long messages per input (four of the longest).
const LONG_MESSAGE_BUDGET: usize = 4 * (MAX_PAYLOAD + 2);

#[derive(Debug, Arbitrary)]
struct Input {
    status: bool,
    transactions: Vec<Owned>,
}

/// Buffers kept from input to input: allocating up to 256 KiB of long
/// payloads, stream and encode buffers afresh for every input (page
/// faults, ASan's poisoning and quarantine) was a large share of the run
/// time.
#[derive(Default)]
struct Scratch {
    /// The long messages' payloads, back to back.
    long_payloads: Vec<u8>,
    /// Every valid transaction, encoded with `write_to`.
    stream: Vec<u8>,
    /// `encode`'s output buffer.
    buffer: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fuzz_target!(|input: Input| {
    let status = if input.status {
        Status::Accepted
    } else {
        Status::Rejected
    };
    assert_eq!(Status::from_byte(status.as_byte()), Some(status));
    let mut written = Vec::new();
    assert!(status.write_to(&mut written).is_ok());
    assert_eq!(written, [status.as_byte()]);

    SCRATCH.with_borrow_mut(|scratch| check(&input.transactions, scratch));
});

fn check(owned: &[Owned], scratch: &mut Scratch) {
    let Scratch {
        long_payloads,
        stream,
        buffer,
    } = scratch;

    // Long messages draw on the budget so that one input stays fast.
    long_payloads.clear();
    let mut budget = LONG_MESSAGE_BUDGET;
    let long_lens: Vec<usize> = owned
        .iter()
        .filter_map(|owned| match *owned {
            Owned::LongMessage { fill, len } => {
                // Up to two bytes past the wire's limit.
                let len = (len as usize % (MAX_PAYLOAD + 3)).min(budget);
                budget -= len;
                long_payloads.resize(long_payloads.len() + len, fill);
                Some(len)
            }
            _ => None,
        })
        .collect();
    let mut long_lens = long_lens.into_iter();
    let mut long_rest = long_payloads.as_slice();
    let transactions: Vec<Transaction> = owned
        .iter()
        .map(|owned| match owned {
            Owned::Name(payload) => Transaction::Name(payload),
            Owned::Password(payload) => Transaction::Password(payload),
            Owned::Message(payload) => Transaction::Message(payload),
            Owned::Close => Transaction::Close,
            Owned::LongMessage { .. } => {
                let len = long_lens.next().expect("one length per long message");
                let (payload, rest) = long_rest.split_at(len);
                long_rest = rest;
                Transaction::Message(payload)
            }
        })
        .collect();

    stream.clear();
    let mut encoded = Vec::new();
    for transaction in &transactions {
        if encode_checked(transaction, stream, buffer) {
            encoded.push(*transaction);
        }
    }

    decode_all(stream, Limits::WIRE, &encoded);
    let longest = |tag: Tag| {
        encoded
            .iter()
            .filter(|t| t.tag() == tag)
            .map(|t| t.payload().len() as u16)
            .max()
            .unwrap_or(0)
    };
    let tight = Limits {
        name: longest(Tag::Name),
        password: longest(Tag::Password),
        message: longest(Tag::Message),
    };
    decode_all(stream, tight, &encoded);
    check_one_byte_less(stream, tight, &encoded);
}

/// Encode both ways, `write_to` appending to `stream`; `false` if the
/// transaction cannot be encoded (checked to be for the right reason).
fn encode_checked(transaction: &Transaction, stream: &mut Vec<u8>, buffer: &mut Vec<u8>) -> bool {
    let payload_len = transaction.payload().len();
    let expected_error = match transaction {
        Transaction::Close => None,
        _ if payload_len == 0 => Some(EncodeError::Empty(transaction.tag())),
        _ if payload_len > MAX_PAYLOAD => Some(EncodeError::TooLong {
            tag: transaction.tag(),
            length: payload_len,
        }),
        _ => None,
    };

    let start = stream.len();
    let write_result = transaction.write_to(stream);
    buffer.clear();
    buffer.resize(transaction.encoded_len() + 1, 0xA5);
    let encode_result = transaction.encode(buffer);

    if let Some(error) = expected_error {
        assert_eq!(transaction.header(), Err(error));
        assert_eq!(encode_result, Err(error));
        assert!(matches!(write_result, Err(WriteError::Encode(e)) if e == error));
        assert_eq!(
            stream.len(),
            start,
            "write_to wrote part of an invalid transaction"
        );
        return false;
    }

    let written = &stream[start..];
    let len = transaction.encoded_len();
    assert_eq!(encode_result, Ok(len));
    assert!(write_result.is_ok());
    assert_eq!(&buffer[..len], written);
    assert_eq!(buffer[len], 0xA5, "encode wrote past its length");
    assert_eq!(written[0], transaction.tag().as_byte());
    if *transaction != Transaction::Close {
        assert_eq!(&written[1..3], &(payload_len as u16).to_le_bytes());
        assert_eq!(&written[3..], transaction.payload());
    }
    let header = transaction.header().expect("checked above");
    assert_eq!(header.as_bytes(), &written[..header.as_bytes().len()]);

    // One byte too few: refused.
    assert_eq!(
        transaction.encode(&mut buffer[..len - 1]),
        Err(EncodeError::BufferTooSmall { needed: len })
    );
    true
}

fn decode_all(stream: &[u8], limits: Limits, expected: &[Transaction]) {
    let mut frames = Frames::new(stream, limits);
    let decoded: Vec<Transaction> = frames
        .by_ref()
        .map(|item| item.expect("an encoded transaction decodes"))
        .collect();
    assert_eq!(decoded, expected);
    assert_eq!(frames.consumed(), stream.len());

    let mut offset = 0;
    for transaction in expected {
        match decode(&stream[offset..], &limits) {
            Ok(Decoded::Complete {
                transaction: got,
                consumed,
            }) => {
                assert_eq!(got, *transaction);
                assert_eq!(consumed, transaction.encoded_len());
                offset += consumed;
            }
            other => panic!("{transaction:?} decoded as {other:?}"),
        }
    }
    assert_eq!(offset, stream.len());
}

/// With one byte less of limit for a tag, its first longest field is `TooLong`.
fn check_one_byte_less(stream: &[u8], limits: Limits, encoded: &[Transaction]) {
    for tag in [Tag::Name, Tag::Password, Tag::Message] {
        let max = limits.max_len(tag);
        if max == 0 {
            continue;
        }
        let mut lower = limits;
        match tag {
            Tag::Name => lower.name -= 1,
            Tag::Password => lower.password -= 1,
            _ => lower.message -= 1,
        }
        let first_longest = encoded
            .iter()
            .position(|t| t.tag() == tag && t.payload().len() == usize::from(max))
            .expect("max is the length of some field");
        let mut frames = Frames::new(stream, lower);
        let before: Vec<_> = frames.by_ref().take(first_longest).collect();
        assert!(before.iter().all(Result::is_ok));
        assert_eq!(
            frames.next(),
            Some(Err(FrameError::TooLong {
                tag,
                length: max,
                max: max - 1
            }))
        );
        assert_eq!(frames.next(), None);
    }
}
