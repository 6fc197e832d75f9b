//! The client role's sans-I/O state machine, `ClientSession`, against PROTOCOL.md.

use msglog_core::{ClientEnd, ClientSession, EncodeError, Stage, SubmitError, Tag, Transaction};
use proptest::prelude::*;

type Session = ClientSession<u64>;

const NAME: Transaction<'static> = Transaction::Name(b"alice");
const PASSWORD: Transaction<'static> = Transaction::Password(b"pw");
const MESSAGE: Transaction<'static> = Transaction::Message(b"hello");

/// A session with NAME and PASSWORD submitted and answered 0x00.
fn logged_in(window: usize) -> Session {
    let mut session = Session::new(window.max(2));
    session.submit(&NAME, 0).unwrap();
    session.submit(&PASSWORD, 0).unwrap();
    assert_eq!(session.handle_input(&[0, 0], 0), None);
    assert!(session.is_authenticated());
    session.set_window(window);
    session
}

fn encoded(transaction: Transaction<'_>) -> Vec<u8> {
    let mut out = vec![0; transaction.encoded_len()];
    transaction.encode(&mut out).unwrap();
    out
}

#[test]
fn a_whole_session() {
    let mut session = Session::new(8);
    assert_eq!(session.oldest(), None);
    let mut wire = Vec::new();
    for transaction in [
        NAME,
        PASSWORD,
        MESSAGE,
        Transaction::Message(b"two"),
        Transaction::Close,
    ] {
        let header = session.submit(&transaction, 0).unwrap();
        // The caller writes the header, then the payload from its own buffer.
        wire.extend_from_slice(header.as_bytes());
        wire.extend_from_slice(transaction.payload());
    }
    let expected: Vec<u8> = [
        NAME,
        PASSWORD,
        MESSAGE,
        Transaction::Message(b"two"),
        Transaction::Close,
    ]
    .into_iter()
    .flat_map(encoded)
    .collect();
    assert_eq!(wire, expected);
    assert_eq!(session.in_flight(), 5);
    assert_eq!(session.oldest(), Some(Stage::Name));
    assert_eq!(
        (
            session.messages_submitted(),
            session.messages_acknowledged()
        ),
        (2, 0)
    );

    assert_eq!(session.handle_input(&[0, 0, 0], 0), None);
    assert!(session.is_authenticated());
    assert_eq!(session.oldest(), Some(Stage::Message(1)));
    assert_eq!(session.messages_acknowledged(), 1);
    assert_eq!(session.handle_input(&[0, 0], 0), Some(ClientEnd::Closed));
    assert_eq!(session.end(), Some(ClientEnd::Closed));
    assert_eq!(session.in_flight(), 0);
    assert_eq!(
        (
            session.messages_submitted(),
            session.messages_acknowledged()
        ),
        (2, 2)
    );
}

#[test]
fn any_answer_to_close_ends_a_clean_session() {
    // 0x00, 0xFF (the original server's answer to a bare CLOSE), any other byte.
    for answer in [0x00, 0xFF, 0x42] {
        let mut session = logged_in(4);
        session.submit(&MESSAGE, 0).unwrap();
        session.submit(&Transaction::Close, 0).unwrap();
        assert_eq!(
            session.handle_input(&[0, answer], 0),
            Some(ClientEnd::Closed)
        );
        assert!(session.end().is_some_and(|end| end.is_clean()));
        assert_eq!(session.messages_acknowledged(), 1);
    }
    // The connection closing, or even a reset.
    let mut session = logged_in(4);
    session.submit(&Transaction::Close, 0).unwrap();
    assert_eq!(session.handle_eof(), Some(ClientEnd::Closed));
    let mut session = logged_in(4);
    session.submit(&Transaction::Close, 0).unwrap();
    assert_eq!(session.handle_error(), Some(ClientEnd::Closed));
}

#[test]
fn the_connection_closing_with_a_message_in_flight_is_not_clean() {
    let mut session = logged_in(4);
    session.submit(&MESSAGE, 0).unwrap();
    session.submit(&Transaction::Close, 0).unwrap();
    assert_eq!(
        session.handle_eof(),
        Some(ClientEnd::Disconnected {
            stage: Stage::Message(0)
        })
    );
    let mut session = logged_in(4);
    session.submit(&MESSAGE, 0).unwrap();
    assert_eq!(session.handle_error(), Some(ClientEnd::Failed));
    // With nothing in flight: the server ended an idle session.
    let mut session = logged_in(4);
    assert_eq!(session.handle_eof(), Some(ClientEnd::Hangup));
}

#[test]
fn statuses_match_transactions_in_order() {
    let mut session = logged_in(8);
    for _ in 0..4 {
        session.submit(&MESSAGE, 0).unwrap();
    }
    assert_eq!(
        session.handle_input(&[0, 0, 0xFF, 0], 0),
        Some(ClientEnd::Rejected {
            stage: Stage::Message(2)
        })
    );
    assert_eq!(session.messages_acknowledged(), 2);
    assert_eq!(session.in_flight(), 2);

    let mut session = Session::new(4);
    session.submit(&NAME, 0).unwrap();
    session.submit(&PASSWORD, 0).unwrap();
    assert_eq!(
        session.handle_input(&[0, 0x07], 0),
        Some(ClientEnd::InvalidStatus {
            byte: 0x07,
            stage: Stage::Password
        })
    );
    assert!(!session.is_authenticated());
}

#[test]
fn a_message_before_login_is_refused() {
    let mut session = Session::new(4);
    assert_eq!(session.submit(&MESSAGE, 0), Err(SubmitError::NotLoggedIn));
    assert_eq!(session.submit(&PASSWORD, 0), Err(SubmitError::NotLoggedIn));
    session.submit(&NAME, 0).unwrap();
    assert_eq!(session.submit(&MESSAGE, 0), Err(SubmitError::NotLoggedIn));
    assert_eq!(session.submit(&NAME, 0), Err(SubmitError::AlreadyLoggedIn));
    session.submit(&PASSWORD, 0).unwrap();
    assert!(session.is_logged_in());
    assert_eq!(
        session.submit(&PASSWORD, 0),
        Err(SubmitError::AlreadyLoggedIn)
    );
    session.submit(&MESSAGE, 0).unwrap();
    assert_eq!(session.in_flight(), 3);
}

#[test]
fn a_close_before_login_is_a_close() {
    for answer in [None, Some(0x00), Some(0xFF)] {
        let mut session = Session::new(4);
        session.submit(&Transaction::Close, 0).unwrap();
        assert_eq!(session.oldest(), Some(Stage::Close));
        let end = match answer {
            Some(byte) => session.handle_input(&[byte], 0),
            None => session.handle_eof(),
        };
        assert_eq!(end, Some(ClientEnd::Closed));
        assert_eq!(session.messages_submitted(), 0);
        assert!(!session.is_authenticated());
    }
    // After NAME only, too.
    let mut session = Session::new(4);
    session.submit(&NAME, 0).unwrap();
    session.submit(&Transaction::Close, 0).unwrap();
    assert!(!session.is_logged_in());
    assert_eq!(session.handle_input(&[0, 0], 0), Some(ClientEnd::Closed));
    assert!(!session.is_authenticated());
    assert_eq!(session.messages_acknowledged(), 0);
}

#[test]
fn after_the_end_nothing_is_submitted_and_input_is_ignored() {
    let mut session = logged_in(4);
    session.submit(&MESSAGE, 0).unwrap();
    session.submit(&MESSAGE, 0).unwrap();
    let rejected = ClientEnd::Rejected {
        stage: Stage::Message(0),
    };
    assert_eq!(session.handle_input(&[0xFF, 0, 0], 0), Some(rejected));
    assert_eq!(session.submit(&MESSAGE, 0), Err(SubmitError::Ended));
    assert_eq!(
        session.submit(&Transaction::Close, 0),
        Err(SubmitError::Ended)
    );
    assert_eq!(session.room(), 0);
    assert_eq!(session.handle_input(&[0, 0], 0), None);
    assert_eq!(session.handle_eof(), None);
    assert_eq!(session.handle_error(), None);
    assert_eq!(session.handle_timeout(u64::MAX), None);
    assert_eq!(session.end(), Some(rejected));
    assert_eq!(session.messages_acknowledged(), 0);
    // Once CLOSE is submitted, nothing more may follow it.
    let mut session = logged_in(4);
    session.submit(&Transaction::Close, 0).unwrap();
    assert_eq!(session.submit(&MESSAGE, 0), Err(SubmitError::Ended));
    assert_eq!(session.room(), 0);
}

#[test]
fn a_byte_with_nothing_in_flight_answers_nothing() {
    let mut session = logged_in(4);
    assert_eq!(
        session.handle_input(&[0xFF], 0),
        Some(ClientEnd::Unsolicited { byte: 0xFF })
    );
    let mut session = logged_in(4);
    session.submit(&MESSAGE, 0).unwrap();
    assert_eq!(
        session.handle_input(&[0, 0], 0),
        Some(ClientEnd::Unsolicited { byte: 0 })
    );
    assert_eq!(session.messages_acknowledged(), 1);
}

#[test]
fn the_window_bounds_what_is_in_flight() {
    let mut session = logged_in(3);
    assert_eq!(session.room(), 3);
    for _ in 0..3 {
        session.submit(&MESSAGE, 0).unwrap();
    }
    assert_eq!(session.room(), 0);
    assert_eq!(session.submit(&MESSAGE, 0), Err(SubmitError::WindowFull));
    // A full window does not hide the reasons that come first.
    assert_eq!(
        session.submit(&Transaction::Message(b""), 0),
        Err(SubmitError::Encode(EncodeError::Empty(Tag::Message)))
    );
    assert_eq!(session.handle_input(&[0], 0), None);
    assert_eq!(session.room(), 1);
    session.set_window(1);
    assert_eq!(session.room(), 0);
    assert_eq!(Session::new(0).window(), 1);
}

#[test]
fn a_failed_write_withdraws_its_transaction() {
    // The write of message 2 failed; 0 and 1 are still in flight.
    let mut session = logged_in(4);
    for _ in 0..3 {
        session.submit(&MESSAGE, 0).unwrap();
    }
    assert_eq!(session.write_failed(), None);
    assert_eq!((session.messages_submitted(), session.in_flight()), (2, 2));
    assert_eq!(session.submit(&MESSAGE, 0), Err(SubmitError::Ended));
    // A 0xFF among the earlier answers explains the failure...
    assert_eq!(
        session.handle_input(&[0, 0xFF], 0),
        Some(ClientEnd::Rejected {
            stage: Stage::Message(1)
        })
    );
    // ...and without one, the session ends once they are all answered.
    let mut session = logged_in(4);
    session.submit(&MESSAGE, 0).unwrap();
    session.submit(&Transaction::Close, 0).unwrap();
    assert_eq!(session.write_failed(), None);
    assert!(!session.is_closing());
    assert_eq!(session.handle_input(&[0], 0), Some(ClientEnd::Failed));
    assert_eq!(session.messages_acknowledged(), 1);
    // With nothing in flight, at once.
    let mut session = logged_in(4);
    session.submit(&MESSAGE, 0).unwrap();
    assert_eq!(session.write_failed(), Some(ClientEnd::Failed));
    assert_eq!(session.messages_submitted(), 0);
}

#[test]
fn a_timeout_runs_from_the_first_send_and_again_from_each_status() {
    let mut session = logged_in(8);
    session.set_timeout(Some(100));
    assert_eq!(session.poll_timeout(), None, "nothing in flight");
    session.submit(&MESSAGE, 1_000).unwrap();
    session.submit(&MESSAGE, 1_050).unwrap();
    assert_eq!(session.poll_timeout(), Some(1_100));
    assert_eq!(session.handle_timeout(1_099), None);
    assert_eq!(session.handle_input(&[0], 1_090), None);
    assert_eq!(session.poll_timeout(), Some(1_190));
    assert_eq!(session.handle_input(&[0], 1_100), None);
    assert_eq!(session.poll_timeout(), None, "all answered");
    session.submit(&MESSAGE, 2_000).unwrap();
    assert_eq!(
        session.handle_timeout(2_100),
        Some(ClientEnd::TimedOut {
            stage: Stage::Message(2)
        })
    );
    assert_eq!(session.poll_timeout(), None);
    assert_eq!(session.submit(&MESSAGE, 2_200), Err(SubmitError::Ended));
}

#[test]
fn a_timeout_awaiting_only_close_is_a_clean_end() {
    let mut session = logged_in(8);
    session.set_timeout(Some(10));
    session.submit(&MESSAGE, 0).unwrap();
    session.submit(&Transaction::Close, 0).unwrap();
    assert_eq!(session.handle_input(&[0], 5), None);
    assert_eq!(session.handle_timeout(15), Some(ClientEnd::Closed));
}

#[test]
fn without_a_timeout_or_a_representable_deadline_nothing_times_out() {
    let mut session = logged_in(8);
    session.submit(&MESSAGE, 0).unwrap();
    assert_eq!(session.poll_timeout(), None);
    assert_eq!(session.handle_timeout(u64::MAX), None);
    session.set_timeout(Some(u64::MAX));
    assert_eq!(session.poll_timeout(), Some(u64::MAX));
    let mut session = logged_in(8);
    session.set_timeout(Some(2));
    session.submit(&MESSAGE, u64::MAX - 1).unwrap();
    assert_eq!(session.poll_timeout(), None, "beyond the clock: never");
}

/// A reference for what a sequence of status bytes does to `in_flight`
/// messages pipelined after a 0x00 login and followed by CLOSE.
fn model(in_flight: u64, statuses: &[u8]) -> (u64, Option<ClientEnd>) {
    for (i, &byte) in statuses.iter().enumerate() {
        let i = i as u64;
        if i == in_flight {
            return (in_flight, Some(ClientEnd::Closed));
        }
        match byte {
            0x00 => {}
            0xFF => {
                return (
                    i,
                    Some(ClientEnd::Rejected {
                        stage: Stage::Message(i),
                    }),
                )
            }
            _ => {
                return (
                    i,
                    Some(ClientEnd::InvalidStatus {
                        byte,
                        stage: Stage::Message(i),
                    }),
                )
            }
        }
    }
    (statuses.len() as u64, None)
}

proptest! {
    /// Any split of the status bytes into reads gives the same answers and
    /// the same end as the reference, and nothing after the end counts.
    #[test]
    fn statuses_are_matched_whatever_the_reads(
        in_flight in 0u64..12,
        statuses in proptest::collection::vec(prop_oneof![Just(0u8), Just(0xFF), any::<u8>()], 0..16),
        splits in proptest::collection::vec(1usize..5, 1..8),
    ) {
        let mut session = logged_in(16);
        for _ in 0..in_flight {
            session.submit(&MESSAGE, 0).unwrap();
        }
        session.submit(&Transaction::Close, 0).unwrap();
        let mut rest = &statuses[..];
        let mut ends = Vec::new();
        for size in splits.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (read, more) = rest.split_at((*size).min(rest.len()));
            ends.extend(session.handle_input(read, 0));
            rest = more;
        }
        let (acknowledged, end) = model(in_flight, &statuses);
        prop_assert_eq!(session.messages_acknowledged(), acknowledged);
        prop_assert_eq!(session.end(), end);
        prop_assert_eq!(ends, end.into_iter().collect::<Vec<_>>());
        prop_assert!(session.in_flight() <= 16);
    }
}
