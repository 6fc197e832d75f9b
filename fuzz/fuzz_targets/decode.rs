//! Arbitrary bytes into `msglog_core::decode`.
//!
//! Input: one byte choosing the limits, then the bytes received so far.
//!
//! Checks, against a reference decoder written from PROTOCOL.md:
//! - the decoder never panics and agrees with the reference: a complete
//!   frame is never reported `Partial`, errors are the same errors;
//! - a `Complete` transaction re-encodes (`encode` and `write_to`) to
//!   exactly the bytes it consumed;
//! - `Partial { needed }` never overshoots: the frame really needs at
//!   least that many more bytes;
//! - every prefix of the input decodes to `Partial` or to the same answer
//!   as the whole input (bytes may arrive in any chunking);
//! - `Frames` walks the input frame by frame with the same answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msglog_core::{decode, Decoded, FrameError, Frames, Limits, Tag, Transaction, HEADER_LEN};

/// Limit sets worth covering: the wire's, the std server's, an embedded
/// target's, tiny ones that make `TooLong` easy to reach, and zero.
const LIMITS: [Limits; 5] = [
    Limits::WIRE,
    Limits::STD,
    Limits::from_capacities(32, 32, 512),
    Limits::from_capacities(1, 2, 3),
    Limits::from_capacities(0, 0, 0),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let limits = LIMITS[usize::from(selector) % LIMITS.len()];

    let answer = decode(input, &limits);
    check_against_reference(input, &limits, answer);
    if let Ok(Decoded::Complete {
        transaction,
        consumed,
    }) = answer
    {
        check_reencodes(&transaction, &input[..consumed]);
    }
    check_prefixes(input, &limits, answer);
    check_frames(input, &limits);
});

/// What PROTOCOL.md says the bytes are.
enum Expected<'a> {
    Complete(Transaction<'a>, usize),
    /// Unfinished; the whole frame is at least this long.
    Partial {
        frame_len_at_least: usize,
    },
    Error(FrameError),
}

fn reference<'a>(input: &'a [u8], limits: &Limits) -> Expected<'a> {
    let Some(&byte) = input.first() else {
        return Expected::Partial {
            frame_len_at_least: 1,
        };
    };
    let tag = match byte {
        0x01 => Tag::Name,
        0x02 => Tag::Password,
        0x03 => Tag::Message,
        0x04 => return Expected::Complete(Transaction::Close, 1),
        other => return Expected::Error(FrameError::UnknownTag(other)),
    };
    let [_, lo, hi, ..] = *input else {
        return Expected::Partial {
            frame_len_at_least: HEADER_LEN,
        };
    };
    let length = u16::from_le_bytes([lo, hi]);
    let max = match tag {
        Tag::Name => limits.name,
        Tag::Password => limits.password,
        _ => limits.message,
    };
    if length == 0 {
        return Expected::Error(FrameError::ZeroLength(tag));
    }
    if length > max {
        return Expected::Error(FrameError::TooLong { tag, length, max });
    }
    let frame_len = HEADER_LEN + usize::from(length);
    let Some(payload) = input.get(HEADER_LEN..frame_len) else {
        return Expected::Partial {
            frame_len_at_least: frame_len,
        };
    };
    let transaction = match tag {
        Tag::Name => Transaction::Name(payload),
        Tag::Password => Transaction::Password(payload),
        _ => Transaction::Message(payload),
    };
    Expected::Complete(transaction, frame_len)
}

fn check_against_reference(input: &[u8], limits: &Limits, answer: Result<Decoded, FrameError>) {
    match (reference(input, limits), answer) {
        (
            Expected::Complete(expected, expected_len),
            Ok(Decoded::Complete {
                transaction,
                consumed,
            }),
        ) => {
            assert_eq!(transaction, expected);
            assert_eq!(consumed, expected_len);
        }
        (Expected::Partial { frame_len_at_least }, Ok(Decoded::Partial { needed })) => {
            assert!(
                input.len() + needed.get() <= frame_len_at_least,
                "needed {needed} overshoots: {} bytes in, frame is {frame_len_at_least}",
                input.len()
            );
        }
        (Expected::Error(expected), Err(error)) => assert_eq!(error, expected),
        (Expected::Complete(expected, len), other) => {
            panic!("complete {expected:?} ({len} bytes) decoded as {other:?}")
        }
        (Expected::Partial { .. }, other) => panic!("unfinished frame decoded as {other:?}"),
        (Expected::Error(expected), other) => panic!("{expected:?} decoded as {other:?}"),
    }
}

fn check_reencodes(transaction: &Transaction, consumed: &[u8]) {
    assert_eq!(transaction.encoded_len(), consumed.len());
    let mut buffer = vec![0u8; consumed.len()];
    assert_eq!(transaction.encode(&mut buffer), Ok(consumed.len()));
    assert_eq!(buffer, consumed);

    let mut written = Vec::new();
    assert!(transaction.write_to(&mut written).is_ok());
    assert_eq!(written, consumed);

    let header = transaction
        .header()
        .expect("a decoded transaction has a valid header");
    assert_eq!(header.as_bytes(), &consumed[..header.as_bytes().len()]);
    assert_eq!(transaction.payload(), &consumed[header.as_bytes().len()..]);
}

fn check_prefixes(input: &[u8], limits: &Limits, answer: Result<Decoded, FrameError>) {
    for end in 0..input.len() {
        let prefix = &input[..end];
        let prefix_answer = decode(prefix, limits);
        check_against_reference(prefix, limits, prefix_answer);
        match prefix_answer {
            Ok(Decoded::Partial { .. }) => {}
            other => assert_eq!(
                other,
                answer,
                "the first {end} bytes decode differently from all {}",
                input.len()
            ),
        }
    }
}

fn check_frames(input: &[u8], limits: &Limits) {
    let mut frames = Frames::new(input, *limits);
    let mut offset = 0;
    while let Some(item) = frames.next() {
        let rest = &input[offset..];
        match (item, decode(rest, limits)) {
            (
                Ok(transaction),
                Ok(Decoded::Complete {
                    transaction: expected,
                    consumed,
                }),
            ) => {
                assert_eq!(transaction, expected);
                offset += consumed;
                assert_eq!(frames.consumed(), offset);
            }
            (Err(error), Err(expected)) => {
                assert_eq!(error, expected);
                assert!(frames.next().is_none(), "Frames goes on after an error");
                return;
            }
            (item, answer) => panic!("Frames yielded {item:?} where decode says {answer:?}"),
        }
    }
    assert_eq!(frames.consumed(), offset);
    // Frames stopped: what is left is an unfinished transaction.
    assert!(matches!(
        decode(&input[offset..], limits),
        Ok(Decoded::Partial { .. })
    ));
}
