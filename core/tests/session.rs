//! State-machine tests: every transition, every wrong tag, names, auth, sinks.

use msglog_core::{
    valid_name, AcceptAny, Action, Decoded, FrameError, LegacyParity, Outcome, Reject, Session,
    Sink, State, StaticUsers, Status, Tag, Transaction,
};

type Small = Session<16, 16, 64>;

/// A sink that records messages, and fails when told to.
#[derive(Default)]
struct Recorder {
    records: Vec<(String, Vec<u8>)>,
    fail: bool,
}

impl Sink for Recorder {
    type Error = ();
    fn append(&mut self, name: &str, message: &[u8]) -> Result<(), ()> {
        if self.fail {
            return Err(());
        }
        self.records.push((name.to_owned(), message.to_vec()));
        Ok(())
    }
}

fn tx_for(tag: Tag) -> Transaction<'static> {
    match tag {
        Tag::Name => Transaction::Name(b"alice"),
        Tag::Password => Transaction::Password(b"secret"),
        Tag::Message => Transaction::Message(b"hello"),
        Tag::Close => Transaction::Close,
    }
}

/// A session driven to `state` through the public API.
fn session_in(state: State) -> Small {
    let mut s = Small::new();
    let mut sink = Recorder::default();
    let steps: &[Tag] = match state {
        State::Connected => &[],
        State::Named | State::Verifying => &[Tag::Name],
        State::Ready => &[Tag::Name, Tag::Password],
        State::Closed => &[Tag::Close],
    };
    for &tag in steps {
        assert_ne!(
            s.handle(tx_for(tag), &mut AcceptAny, &mut sink).status(),
            Status::Rejected
        );
    }
    if state == State::Verifying {
        assert!(matches!(
            s.receive(tx_for(Tag::Password)),
            Action::Verify { .. }
        ));
    }
    assert_eq!(s.state(), state);
    s
}

#[test]
fn happy_path() {
    let mut s = Small::new();
    let mut sink = Recorder::default();
    assert_eq!(s.state(), State::Connected);
    assert_eq!(s.name(), None);
    assert_eq!(
        s.handle(Transaction::Name(b"MyUser"), &mut AcceptAny, &mut sink),
        Outcome::Named
    );
    assert_eq!(s.name(), Some("MyUser"));
    assert_eq!(
        s.handle(Transaction::Password(b"pw"), &mut AcceptAny, &mut sink),
        Outcome::Authenticated
    );
    for m in [&b"one"[..], b"two"] {
        assert_eq!(
            s.handle(Transaction::Message(m), &mut AcceptAny, &mut sink),
            Outcome::Logged
        );
    }
    assert_eq!(
        s.handle(Transaction::Close, &mut AcceptAny, &mut sink),
        Outcome::Closed
    );
    assert!(s.is_closed());
    assert_eq!(
        sink.records,
        vec![
            ("MyUser".to_owned(), b"one".to_vec()),
            ("MyUser".to_owned(), b"two".to_vec())
        ]
    );
}

#[test]
fn close_is_accepted_in_every_open_state() {
    for state in [State::Connected, State::Named, State::Ready] {
        let mut s = session_in(state);
        assert_eq!(
            s.receive(Transaction::Close),
            Action::Reply(Outcome::Closed)
        );
        assert_eq!(s.state(), State::Closed);
    }
}

#[test]
fn every_wrong_tag_is_rejected_in_receive_and_at_the_first_byte() {
    let cases = [
        (State::Connected, Tag::Name, [Tag::Password, Tag::Message]),
        (State::Named, Tag::Password, [Tag::Name, Tag::Message]),
        (State::Ready, Tag::Message, [Tag::Name, Tag::Password]),
    ];
    for (state, expected, wrong) in cases {
        for received in wrong {
            let reject = Reject::UnexpectedTag { expected, received };
            let mut s = session_in(state);
            assert_eq!(
                s.receive(tx_for(received)),
                Action::Reply(Outcome::Rejected(reject)),
                "{state:?} receiving {received:?}"
            );
            assert!(s.is_closed());

            // The decoder rejects it from the tag byte alone.
            let mut s = session_in(state);
            assert_eq!(s.decode(&[received.as_byte()]), Err(reject));
            assert!(s.is_closed());
        }
    }
}

#[test]
fn nothing_is_accepted_while_verifying_or_after_close() {
    for tag in [Tag::Name, Tag::Password, Tag::Message, Tag::Close] {
        let mut s = session_in(State::Verifying);
        assert_eq!(
            s.receive(tx_for(tag)),
            Action::Reply(Outcome::Rejected(Reject::VerificationPending))
        );
        let mut s = session_in(State::Closed);
        assert_eq!(
            s.receive(tx_for(tag)),
            Action::Reply(Outcome::Rejected(Reject::SessionEnded))
        );
        assert_eq!(s.decode(&[tag.as_byte()]), Err(Reject::SessionEnded));
    }
}

#[test]
fn decode_applies_the_session_capacities() {
    let mut s = Small::new();
    assert_eq!(
        s.decode(&[0x01, 17, 0]),
        Err(Reject::Frame(FrameError::TooLong {
            tag: Tag::Name,
            length: 17,
            max: 16
        }))
    );
    let mut s = session_in(State::Ready);
    assert!(matches!(
        s.decode(&[0x03, 64, 0]),
        Ok(Decoded::Partial { .. })
    ));
    assert!(matches!(
        s.decode(&[0x03, 65, 0]),
        Err(Reject::Frame(FrameError::TooLong { .. }))
    ));
    let mut s = Small::new();
    assert_eq!(
        s.decode(&[0x09]),
        Err(Reject::Frame(FrameError::UnknownTag(9)))
    );
    assert_eq!(Small::MAX_FRAME, 67);
}

#[test]
fn receive_enforces_capacities_for_transactions_not_from_decode() {
    let mut s = Small::new();
    let long = [b'a'; 17];
    assert!(matches!(
        s.receive(Transaction::Name(&long)),
        Action::Reply(Outcome::Rejected(Reject::Frame(FrameError::TooLong { .. })))
    ));
}

#[test]
fn names_are_validated() {
    for bad in [
        &b"\xff\xfe"[..],
        b"a\nb",
        b"a\rb",
        b"tab\there",
        b"nul\0",
        b"del\x7f",
        "c1\u{85}".as_bytes(),
        b"bob]: forged",
        b"[admin",
        b"",
    ] {
        assert_eq!(valid_name(bad), None, "{bad:?}");
        let mut s = Small::new();
        if !bad.is_empty() {
            assert_eq!(
                s.receive(Transaction::Name(bad)),
                Action::Reply(Outcome::Rejected(Reject::InvalidName))
            );
        }
    }
    for good in ["MyUser", "Ünïcødé", "with space", "日本"] {
        assert_eq!(valid_name(good.as_bytes()), Some(good));
    }
}

#[test]
fn verification_is_resolved_by_the_caller() {
    let mut s = session_in(State::Named);
    match s.receive(Transaction::Password(b"pw")) {
        Action::Verify { name, password } => {
            assert_eq!(name, "alice");
            assert_eq!(password, b"pw");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.state(), State::Verifying);
    assert_eq!(s.verified(true), Outcome::Authenticated);
    assert_eq!(s.state(), State::Ready);

    let mut s = session_in(State::Named);
    let _ = s.receive(Transaction::Password(b"pw"));
    assert_eq!(
        s.verified(false),
        Outcome::Rejected(Reject::AuthenticationFailed)
    );
    assert!(s.is_closed());

    // A verdict nobody asked for is a driver bug: the session closes.
    let mut s = session_in(State::Ready);
    assert_eq!(
        s.verified(true),
        Outcome::Rejected(Reject::VerificationPending)
    );
}

#[test]
fn log_action_leaves_the_status_to_the_caller() {
    let mut s = session_in(State::Ready);
    assert_eq!(
        s.receive(Transaction::Message(b"m")),
        Action::Log {
            name: "alice",
            message: b"m"
        }
    );
    assert_eq!(s.state(), State::Ready);
    assert_eq!(s.fail(Reject::SinkFailed).status(), Status::Rejected);
    assert!(s.is_closed());
}

#[test]
fn a_failing_sink_is_never_acknowledged() {
    let mut s = session_in(State::Ready);
    let mut sink = Recorder {
        fail: true,
        ..Recorder::default()
    };
    let outcome = s.handle(Transaction::Message(b"lost"), &mut AcceptAny, &mut sink);
    assert_eq!(outcome, Outcome::Rejected(Reject::SinkFailed));
    assert_eq!(outcome.status(), Status::Rejected);
    assert!(s.is_closed());
}

#[test]
fn authenticators() {
    let mut s = session_in(State::Named);
    let mut sink = Recorder::default();
    assert_eq!(
        s.handle(Transaction::Password(b"b"), &mut LegacyParity, &mut sink),
        Outcome::Rejected(Reject::AuthenticationFailed)
    );
    let mut s = session_in(State::Named);
    assert_eq!(
        s.handle(Transaction::Password(b"a"), &mut LegacyParity, &mut sink),
        Outcome::Authenticated
    );

    let mut users = StaticUsers::new(&[("alice", b"secret"), ("bob", b"hunter2")]);
    for (name, pw, ok) in [
        ("alice", &b"secret"[..], true),
        ("alice", b"hunter2", false),
        ("bob", b"hunter2", true),
        ("carol", b"secret", false),
        ("alice", b"secre", false),
        ("alice", b"secret!", false),
    ] {
        use msglog_core::Authenticator;
        assert_eq!(users.verify(name, pw), ok, "{name} {pw:?}");
    }

    // Closures are authenticators.
    let mut s = session_in(State::Named);
    let mut only_alice = |name: &str, _: &[u8]| name == "alice";
    assert_eq!(
        s.handle(Transaction::Password(b"x"), &mut only_alice, &mut sink),
        Outcome::Authenticated
    );
}

#[test]
fn reject_codes_match_protocol_md() {
    let codes = [
        (Reject::Frame(FrameError::UnknownTag(7)), "unknown-tag"),
        (
            Reject::Frame(FrameError::ZeroLength(Tag::Name)),
            "zero-length",
        ),
        (
            Reject::Frame(FrameError::TooLong {
                tag: Tag::Name,
                length: 300,
                max: 255,
            }),
            "too-long",
        ),
        (
            Reject::UnexpectedTag {
                expected: Tag::Name,
                received: Tag::Message,
            },
            "unexpected-tag",
        ),
        (Reject::InvalidName, "invalid-name"),
        (Reject::AuthenticationFailed, "auth-failed"),
        (Reject::SinkFailed, "write-failed"),
        (Reject::Timeout, "timeout"),
        (Reject::Overload, "overload"),
    ];
    for (reject, code) in codes {
        assert_eq!(reject.code(), code);
        assert!(!reject.to_string().is_empty());
    }
}

#[test]
fn session_size_is_its_name_buffer_plus_little() {
    let size = std::mem::size_of::<Session<32, 32, 256>>();
    assert!(size <= 32 + 128, "{size}");
}
