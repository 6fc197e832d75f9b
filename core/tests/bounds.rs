//! What drivers read from the core instead of re-deriving the wire or the
//! record format: the announced header of a frame ([`peek_header`]) and the
//! longest record a session can produce ([`max_record_len`]).

use msglog_core::{
    decode, max_record_len, peek_header, record_len, Announced, Decoded, FrameError, Limits,
    Session, Transaction,
};
use proptest::prelude::*;

#[test]
fn headers_as_far_as_they_arrived() {
    let peek = |bytes: &[u8]| peek_header(bytes);
    assert_eq!(peek(b""), None);
    for tag in [0x01, 0x02, 0x03] {
        assert_eq!(peek(&[tag]), Some(Announced { tag, length: None }));
        assert_eq!(peek(&[tag, 0x05]), Some(Announced { tag, length: None }));
        assert_eq!(
            peek(&[tag, 0x05, 0x01]),
            Some(Announced {
                tag,
                length: Some(0x0105)
            })
        );
        assert_eq!(
            peek(&[tag, 0x00, 0x00, 0xAA]),
            Some(Announced {
                tag,
                length: Some(0)
            })
        );
    }
    // CLOSE and bytes that are not tags have no length field.
    for tag in [0x00, 0x04, 0x05, 0x7F, 0xFF] {
        assert_eq!(
            peek(&[tag, 0xFF, 0xFF, 0xFF]),
            Some(Announced { tag, length: None })
        );
    }
}

#[test]
fn the_longest_record_of_the_std_servers_capacities() {
    type Std = Session<255, 255, 65535>;
    assert_eq!(Std::MAX_RECORD_LEN, 1 + 255 + 3 + 4 * 65_535 + 2);
    // Capacities past the wire's are clamped, as the decoder's limits are.
    assert_eq!(
        Session::<100_000, 8, 100_000>::MAX_RECORD_LEN,
        max_record_len(65_535, 65_535)
    );
    assert_eq!(max_record_len(0, 0), "[]: \r\n".len());
    assert_eq!(max_record_len(usize::MAX, 2), usize::MAX);
}

#[test]
fn invalid_utf8_reaches_the_longest_record() {
    let name = "n".repeat(255);
    for len in [0, 1, 7, 300, 65_535] {
        let message = vec![0xFFu8; len];
        assert_eq!(record_len(&name, &message), max_record_len(255, len));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The announced length is the one the decoder judged or consumed.
    #[test]
    fn peek_agrees_with_the_decoder(input in proptest::collection::vec(any::<u8>(), 0..40)) {
        let limits = Limits::from_capacities(8, 8, 16);
        let peeked = peek_header(&input);
        prop_assert_eq!(peeked.map(|p| p.tag), input.first().copied());
        let length = peeked.and_then(|p| p.length);
        match decode(&input, &limits) {
            Ok(Decoded::Complete { transaction: Transaction::Close, .. }) => {
                prop_assert_eq!(length, None);
            }
            Ok(Decoded::Complete { transaction, .. }) => {
                prop_assert_eq!(length, Some(transaction.payload().len() as u16));
            }
            Ok(Decoded::Partial { needed }) => {
                if input.len() >= 3 {
                    prop_assert_eq!(length, Some((input.len() - 3 + needed.get()) as u16));
                } else {
                    prop_assert_eq!(length, None);
                }
            }
            // With `if let`, not `match`: `FrameError` may gain variants.
            Err(error) => {
                let announced = if let FrameError::TooLong { length, .. } = error {
                    Some(length)
                } else if let FrameError::ZeroLength(_) = error {
                    Some(0)
                } else {
                    None
                };
                prop_assert_eq!(length, announced);
            }
        }
    }

    /// No message within the capacities makes a longer record.
    #[test]
    fn no_record_is_longer(name_len in 1usize..40, message in proptest::collection::vec(any::<u8>(), 0..200)) {
        let name = "n".repeat(name_len);
        prop_assert!(record_len(&name, &message) <= max_record_len(name_len, message.len()));
    }
}
