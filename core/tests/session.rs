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

/// Names that look like another name, reorder or split their line, or
/// use code points with no meaning between users (PROTOCOL.md decision 1).
const REFUSED_IN_NAMES: [char; 52] = [
    '\u{85}',
    '\u{9b}',
    '\u{9d}',  // C1: NEL, CSI, OSC
    '\u{ad}',  // SOFT HYPHEN
    '\u{34f}', // COMBINING GRAPHEME JOINER
    '\u{61c}', // ARABIC LETTER MARK
    '\u{115f}',
    '\u{1160}', // HANGUL fillers
    '\u{17b4}',
    '\u{17b5}', // KHMER inherent vowels
    '\u{180b}',
    '\u{180e}',
    '\u{180f}', // MONGOLIAN variation selectors, vowel separator
    '\u{200b}',
    '\u{200c}',
    '\u{200d}', // ZWSP, ZWNJ, ZWJ
    '\u{200e}',
    '\u{200f}', // LRM, RLM
    '\u{2028}',
    '\u{2029}', // LINE and PARAGRAPH SEPARATOR
    '\u{202a}',
    '\u{202b}',
    '\u{202c}',
    '\u{202d}',
    '\u{202e}', // LRE RLE PDF LRO RLO
    '\u{2060}',
    '\u{2064}',
    '\u{2065}', // WORD JOINER, INVISIBLE PLUS, reserved
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}', // LRI RLI FSI PDI
    '\u{206a}',
    '\u{206f}', // deprecated format characters
    '\u{3164}',
    '\u{ffa0}', // HANGUL FILLER, HALFWIDTH HANGUL FILLER
    '\u{fe00}',
    '\u{fe0f}', // VARIATION SELECTORS
    '\u{feff}', // BOM
    '\u{fff9}',
    '\u{fffb}', // interlinear annotation controls
    '\u{1bca0}',
    '\u{1d173}', // shorthand format, musical format controls
    '\u{e0001}',
    '\u{e0041}',
    '\u{e0100}', // LANGUAGE TAG, TAG A, VARIATION SELECTOR-17
    '\u{e000}',
    '\u{f8ff}',
    '\u{f0000}',
    '\u{10fffd}', // private use
    '\u{fdd0}',
    '\u{fffe}', // noncharacters
];

/// Their neighbours, and text a real name may hold.
const ACCEPTED_IN_NAMES: [char; 22] = [
    '\u{a0}',    // NO-BREAK SPACE
    '\u{a1}',    // ¡
    '\u{301}',   // COMBINING ACUTE ACCENT
    '\u{61b}',   // ARABIC SEMICOLON
    '\u{61d}',   // ARABIC END OF TEXT MARK
    '\u{627}',   // ARABIC LETTER ALEF: right-to-left letters are not controls
    '\u{5d0}',   // HEBREW LETTER ALEF
    '\u{17b6}',  // KHMER VOWEL SIGN AA
    '\u{200a}',  // HAIR SPACE
    '\u{2010}',  // HYPHEN
    '\u{2027}',  // HYPHENATION POINT
    '\u{202f}',  // NARROW NO-BREAK SPACE
    '\u{205f}',  // MEDIUM MATHEMATICAL SPACE
    '\u{2070}',  // SUPERSCRIPT ZERO
    '\u{f900}',  // CJK COMPATIBILITY IDEOGRAPH, after private use
    '\u{fdcf}',  // before the noncharacters
    '\u{fdf0}',  // after them
    '\u{fffc}',  // OBJECT REPLACEMENT CHARACTER
    '\u{fffd}',  // REPLACEMENT CHARACTER
    '\u{1f600}', // an emoji
    '\u{378}',   // unassigned: accepted (no Unicode tables)
    '\u{efffd}', // unassigned, plane 14, after the tags
];

#[test]
fn names_refuse_invisible_bidi_and_line_breaking_code_points() {
    for c in REFUSED_IN_NAMES {
        for name in [
            format!("ad{c}min"),
            format!("{c}admin"),
            format!("admin{c}"),
        ] {
            assert_eq!(valid_name(name.as_bytes()), None, "U+{:04X}", c as u32);
            let mut s = Small::new();
            assert_eq!(
                s.receive(Transaction::Name(name.as_bytes())),
                Action::Reply(Outcome::Rejected(Reject::InvalidName)),
                "U+{:04X}",
                c as u32
            );
        }
    }
    for c in ACCEPTED_IN_NAMES {
        let name = format!("ad{c}min");
        assert_eq!(
            valid_name(name.as_bytes()),
            Some(name.as_str()),
            "U+{:04X}",
            c as u32
        );
    }
    // The examples.
    assert_eq!(valid_name("ad\u{200b}min".as_bytes()), None);
    assert_eq!(valid_name("user\u{202e}nimda".as_bytes()), None);
    assert_eq!(valid_name("one\u{2028}[admin]".as_bytes()), None);
    assert_eq!(valid_name("عليّ".as_bytes()), Some("عليّ"));
}

/// PROTOCOL.md decision 1, as a list of the code points a name refuses.
fn refused_by_decision_1(c: char) -> bool {
    const RANGES: [(u32, u32); 24] = [
        (0x0000, 0x001F), // C0
        (0x007F, 0x009F), // DEL, C1
        (0x00AD, 0x00AD),
        (0x034F, 0x034F),
        (0x061C, 0x061C),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180F),
        (0x200B, 0x200F),
        (0x2028, 0x202E),
        (0x2060, 0x206F),
        (0x3164, 0x3164),
        (0xE000, 0xF8FF), // private use
        (0xFDD0, 0xFDEF), // noncharacters
        (0xFE00, 0xFE0F),
        (0xFEFF, 0xFEFF),
        (0xFFA0, 0xFFA0),
        (0xFFF0, 0xFFFB),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0000, 0xE0FFF),
        (0xF0000, 0x10FFFF), // private use, planes 15 and 16
        (0x5B, 0x5B),        // [
        (0x5D, 0x5D),        // ]
    ];
    let code = c as u32;
    let last_two_of_a_plane = code % 0x10000 >= 0xFFFE; // noncharacters
    last_two_of_a_plane
        || RANGES
            .iter()
            .any(|&(first, last)| (first..=last).contains(&code))
}

#[test]
fn every_code_point_is_judged_as_decision_1_says() {
    for code in 0..=0x10FFFF_u32 {
        let Some(c) = char::from_u32(code) else {
            continue;
        };
        let name = format!("a{c}b");
        let expected = (!refused_by_decision_1(c)).then_some(name.as_str());
        assert_eq!(valid_name(name.as_bytes()), expected, "U+{code:04X}");
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

/// NAME "alice" in pieces: header, then the name.
const NAME_HEADER: &[u8] = b"\x01\x05\x00";
const NAME_WHOLE: &[u8] = b"\x01\x05\x00alice";

/// Idle 100 and frame 30, on a clock in milliseconds.
fn timed() -> Small {
    let mut s = Small::new();
    s.set_idle_timeout(Some(100));
    s.set_frame_timeout(Some(30));
    s
}

#[test]
fn the_frame_timeout_runs_from_a_transactions_first_byte_and_the_idle_timeout_between() {
    let mut s = timed();
    assert_eq!(s.poll_timeout(), None, "not started");
    s.start(0);
    assert_eq!(s.poll_timeout(), Some(100), "idle from the start");
    assert!(matches!(
        s.decode_at(NAME_HEADER, 10),
        Ok(Decoded::Partial { .. })
    ));
    assert_eq!(s.poll_timeout(), Some(40), "frame from the first byte");
    assert!(matches!(
        s.decode_at(&NAME_WHOLE[..5], 20),
        Ok(Decoded::Partial { .. })
    ));
    assert_eq!(s.poll_timeout(), Some(40), "more bytes do not move it");
    let Ok(Decoded::Complete { transaction, .. }) = s.decode_at(NAME_WHOLE, 35) else {
        panic!("a whole NAME");
    };
    assert_eq!(s.poll_timeout(), Some(135), "idle from its end");
    assert_eq!(
        s.handle(transaction, &mut AcceptAny, &mut Recorder::default()),
        Outcome::Named
    );
    assert_eq!(s.handle_timeout(134), None);
    assert_eq!(s.state(), State::Named);
    assert_eq!(
        s.handle_timeout(135),
        Some(Outcome::Rejected(Reject::Timeout))
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.poll_timeout(), None, "nothing once closed");
    assert_eq!(s.handle_timeout(1_000), None);
}

#[test]
fn a_frame_timeout_ends_an_unfinished_transaction() {
    let mut s = timed();
    s.start(0);
    assert!(s.decode_at(NAME_HEADER, 50).is_ok());
    assert_eq!(s.handle_timeout(79), None);
    assert_eq!(
        s.handle_timeout(80),
        Some(Outcome::Rejected(Reject::Timeout))
    );
    assert_eq!(
        Outcome::Rejected(Reject::Timeout).status(),
        Status::Rejected
    );
}

#[test]
fn a_transaction_that_ends_and_one_that_begins_in_one_read_start_the_frame_there() {
    let mut s = timed();
    s.start(0);
    assert!(s.decode_at(NAME_HEADER, 10).is_ok());
    let input = [NAME_WHOLE, b"\x02\x02"].concat();
    let Ok(Decoded::Complete { consumed, .. }) = s.decode_at(&input, 20) else {
        panic!("a whole NAME");
    };
    let _ = s.receive(Transaction::Name(b"alice"));
    assert!(matches!(
        s.decode_at(&input[consumed..], 20),
        Ok(Decoded::Partial { .. })
    ));
    assert_eq!(s.poll_timeout(), Some(50), "the PASSWORD's frame, from 20");
}

#[test]
fn nothing_is_timed_while_a_password_awaits_its_verdict_and_idle_runs_from_the_verdict() {
    let mut s = timed();
    s.start(0);
    let input = b"\x01\x05\x00alice\x02\x02\x00pw";
    let Ok(Decoded::Complete { consumed, .. }) = s.decode_at(input, 5) else {
        panic!("a whole NAME");
    };
    let _ = s.receive(Transaction::Name(b"alice"));
    assert!(s.decode_at(&input[consumed..], 5).is_ok());
    assert!(matches!(
        s.receive(Transaction::Password(b"pw")),
        Action::Verify { .. }
    ));
    assert_eq!(s.poll_timeout(), None, "the caller is the one waiting");
    assert_eq!(s.handle_timeout(10_000), None);
    assert_eq!(s.verified_at(true, 10_000), Outcome::Authenticated);
    assert_eq!(s.poll_timeout(), Some(10_100));
}

#[test]
fn without_timeouts_or_timed_calls_nothing_times_out() {
    let mut untimed = Small::new();
    untimed.start(0);
    assert_eq!(untimed.poll_timeout(), None, "no timeouts set");
    assert!(untimed.decode_at(NAME_HEADER, 5).is_ok());
    assert_eq!(untimed.handle_timeout(u64::MAX), None);

    let mut s = timed();
    assert!(s.decode(NAME_HEADER).is_ok());
    assert_eq!(s.poll_timeout(), None, "no time given");
    s.set_frame_timeout(None);
    assert!(s.decode_at(NAME_HEADER, 5).is_ok());
    assert_eq!(s.poll_timeout(), None, "no frame timeout");

    let mut late = timed();
    late.set_idle_timeout(Some(u64::MAX));
    late.start(1);
    assert_eq!(
        late.poll_timeout(),
        None,
        "a deadline past the clock's end never comes"
    );
}

#[test]
fn start_counts_once() {
    let mut s = timed();
    s.start(10);
    s.start(50);
    assert_eq!(s.poll_timeout(), Some(110));
    let mut fed = timed();
    assert!(fed.decode_at(NAME_HEADER, 20).is_ok());
    fed.start(30);
    assert_eq!(fed.poll_timeout(), Some(50), "bytes came first");
}
