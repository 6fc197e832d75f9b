//! Record escaping: exact vectors from PROTOCOL.md and properties.

use msglog_core::{escaped_len, record_len, write_escaped, write_record};
use proptest::prelude::*;

fn record(name: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_record(&mut out, name, message).unwrap();
    assert_eq!(out.len(), record_len(name, message));
    out
}

fn escaped(message: &[u8]) -> String {
    let mut out = Vec::new();
    write_escaped(&mut out, message).unwrap();
    assert_eq!(out.len(), escaped_len(message));
    String::from_utf8(out).expect("escaped output is UTF-8")
}

/// Inverse of the escaping, for the round-trip property.
fn unescape(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            match bytes[i + 1] {
                b'\\' => out.push(b'\\'),
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'x' => {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                other => panic!("bad escape {other}"),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn plain_text_is_the_original_record() {
    assert_eq!(
        record("MyUser", b"Hello, world!"),
        b"[MyUser]: Hello, world!\r\n"
    );
}

#[test]
fn escapes_from_protocol_md() {
    assert_eq!(escaped(b"a\\b"), "a\\\\b");
    assert_eq!(escaped(b"line1\r\nline2"), "line1\\r\\nline2");
    assert_eq!(escaped(b"col\tcol"), "col\\tcol");
    assert_eq!(escaped(b"\x00\x01\x1b\x7f"), "\\x00\\x01\\x1b\\x7f");
    assert_eq!(escaped(b"\xff\xfe"), "\\xff\\xfe");
    // A truncated UTF-8 sequence is not valid UTF-8: each byte escaped.
    assert_eq!(escaped(b"ok\xe2\x82"), "ok\\xe2\\x82");
    // Valid UTF-8 passes through, except the code points of decision 7 (byte-wise).
    assert_eq!(escaped("€ 日本 \u{85}".as_bytes()), "€ 日本 \\xc2\\x85");
}

/// Each code point PROTOCOL.md decision 7 escapes, with its UTF-8 bytes.
const ESCAPED_CODE_POINTS: [(char, &str); 21] = [
    ('\u{80}', "\\xc2\\x80"), // first C1 control
    ('\u{85}', "\\xc2\\x85"), // NEL: a line break for Unicode-aware readers
    ('\u{8a}', "\\xc2\\x8a"),
    ('\u{90}', "\\xc2\\x90"),
    ('\u{9b}', "\\xc2\\x9b"),        // CSI
    ('\u{9d}', "\\xc2\\x9d"),        // OSC
    ('\u{9f}', "\\xc2\\x9f"),        // last C1 control
    ('\u{61c}', "\\xd8\\x9c"),       // ARABIC LETTER MARK
    ('\u{200e}', "\\xe2\\x80\\x8e"), // LRM
    ('\u{200f}', "\\xe2\\x80\\x8f"), // RLM
    ('\u{2028}', "\\xe2\\x80\\xa8"), // LINE SEPARATOR
    ('\u{2029}', "\\xe2\\x80\\xa9"), // PARAGRAPH SEPARATOR
    ('\u{202a}', "\\xe2\\x80\\xaa"), // LRE
    ('\u{202b}', "\\xe2\\x80\\xab"), // RLE
    ('\u{202c}', "\\xe2\\x80\\xac"), // PDF
    ('\u{202d}', "\\xe2\\x80\\xad"), // LRO
    ('\u{202e}', "\\xe2\\x80\\xae"), // RLO
    ('\u{2066}', "\\xe2\\x81\\xa6"), // LRI
    ('\u{2067}', "\\xe2\\x81\\xa7"), // RLI
    ('\u{2068}', "\\xe2\\x81\\xa8"), // FSI
    ('\u{2069}', "\\xe2\\x81\\xa9"), // PDI
];

/// Neighbours of those code points, and invisible characters: kept as they are.
const KEPT_CODE_POINTS: [char; 24] = [
    '\u{7e}',   // ~
    '\u{a0}',   // NO-BREAK SPACE, right after C1
    '\u{a9}',   // ©: C2 A9
    '\u{c2}',   // Â: C3 82 (the lead byte C2 as a code point)
    '\u{61b}',  // ARABIC SEMICOLON
    '\u{61d}',  // ARABIC END OF TEXT MARK
    '\u{600}',  // D8 80
    '\u{63f}',  // D8 BF
    '\u{200b}', // ZERO WIDTH SPACE: invisible, but real text in several scripts
    '\u{200c}', // ZWNJ
    '\u{200d}', // ZWJ: builds emoji sequences
    '\u{2010}', // HYPHEN
    '\u{201c}', // left double quotation mark
    '\u{2026}', // HORIZONTAL ELLIPSIS
    '\u{2027}', // HYPHENATION POINT
    '\u{202f}', // NARROW NO-BREAK SPACE
    '\u{2060}', // WORD JOINER
    '\u{2065}', // reserved, before LRI
    '\u{206a}', // INHIBIT SYMMETRIC SWAPPING, after PDI
    '\u{20ac}', // €: E2 82 AC
    '\u{2800}', // BRAILLE PATTERN BLANK: E2 A0 80
    '\u{feff}', // ZERO WIDTH NO-BREAK SPACE
    '\u{1f600}',
    '\u{e0041}', // TAG LATIN CAPITAL LETTER A
];

#[test]
fn code_points_that_rewrite_the_display_are_escaped_byte_wise() {
    for (c, escapes) in ESCAPED_CODE_POINTS {
        // At every offset of the sixteen bytes the scan reads at once, and across their boundary.
        for pad in 0..=17 {
            let before = "p".repeat(pad);
            let message = format!("{before}{c}after{c}");
            assert_eq!(
                escaped(message.as_bytes()),
                format!("{before}{escapes}after{escapes}"),
                "U+{:04X} after {pad} bytes",
                c as u32
            );
        }
    }
    for c in KEPT_CODE_POINTS {
        for pad in 0..=17 {
            let message = format!("{}{c}x{c}", "p".repeat(pad));
            assert_eq!(escaped(message.as_bytes()), message, "U+{:04X}", c as u32);
        }
    }
    // The issue's examples: a forged line for Unicode-aware readers, 8-bit terminal escapes.
    assert_eq!(
        record("mallory", "one\u{2028}[admin]: forged".as_bytes()),
        b"[mallory]: one\\xe2\\x80\\xa8[admin]: forged\r\n"
    );
    assert_eq!(
        escaped("\u{9b}31mred\u{9d}0;title\u{7}".as_bytes()),
        "\\xc2\\x9b31mred\\xc2\\x9d0;title\\x07"
    );
    assert_eq!(
        escaped("abc\u{202e}fed".as_bytes()),
        "abc\\xe2\\x80\\xaefed"
    );
    // ZWJ sequences (emoji) are kept whole.
    let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
    assert_eq!(escaped(family.as_bytes()), family);
    // Invalid UTF-8 next to them: the code point is escaped, the stray bytes too.
    assert_eq!(
        escaped(b"\xe2\x80\xe2\x80\xa8\xc2"),
        "\\xe2\\x80\\xe2\\x80\\xa8\\xc2"
    );
}

#[test]
fn every_code_point_is_escaped_as_the_reference_says() {
    let all: Vec<char> = (0..=0x10FFFF_u32).filter_map(char::from_u32).collect();
    for (i, chars) in all.chunks(64).enumerate() {
        // Each code point after a different number of ASCII bytes, so that
        // every offset of the scan's sixteen-byte steps is covered.
        let mut message = "-".repeat(i % 16);
        for c in chars {
            message.push(*c);
            message.push_str("0123456");
        }
        if escaped(message.as_bytes()) != reference(message.as_bytes()) {
            for c in chars {
                let alone = format!("-{c}0123456");
                assert_eq!(
                    escaped(alone.as_bytes()),
                    reference(alone.as_bytes()),
                    "U+{:04X}",
                    *c as u32
                );
            }
            panic!("the block from U+{:04X} differs", chars[0] as u32);
        }
    }
}

/// Python's `str.splitlines` breaks lines at these code points.
fn splits_a_line(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\u{b}'
            | '\u{c}'
            | '\u{1c}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

#[test]
fn a_message_cannot_forge_a_record() {
    let forged = record("mallory", b"hi\r\n[alice]: I owe mallory $100");
    assert_eq!(
        forged,
        b"[mallory]: hi\\r\\n[alice]: I owe mallory $100\r\n".to_vec()
    );
    assert_eq!(forged.iter().filter(|&&b| b == b'\n').count(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn escaping_is_one_line_utf8_and_reversible(message in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = escaped(&message);
        prop_assert!(!text.bytes().any(|b| b < 0x20 || b == 0x7f));
        prop_assert!(!text.chars().any(|c| splits_a_line(c) || escaped_code_point(c)));
        prop_assert_eq!(unescape(&text), message);
    }

    #[test]
    fn valid_text_without_controls_is_unchanged(
        text in "[^\\x00-\\x1f\\x7f\\\\\\x80-\\x9f\\u{61c}\\u{200e}\\u{200f}\\u{2028}-\\u{202e}\\u{2066}-\\u{2069}]{0,100}"
    ) {
        prop_assert_eq!(escaped(text.as_bytes()), text);
    }
}

/// The code points PROTOCOL.md decision 7 escapes: the C1 controls,
/// U+2028, U+2029 and Unicode's Bidi_Control set, listed one by one.
fn escaped_code_point(c: char) -> bool {
    const SEPARATORS: [u32; 2] = [0x2028, 0x2029];
    const BIDI_CONTROLS: [u32; 12] = [
        0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068,
        0x2069,
    ];
    let code = c as u32;
    (0x80..0xA0).contains(&code) || SEPARATORS.contains(&code) || BIDI_CONTROLS.contains(&code)
}

/// The escaping rules of PROTOCOL.md, code point by code point, as a reference.
fn reference(message: &[u8]) -> String {
    let mut out = String::new();
    for chunk in message.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if escaped_code_point(c) => {
                    for byte in c.to_string().bytes() {
                        out.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn texty() -> impl Strategy<Value = Vec<u8>> {
    // Mostly printable text, with escapes and multi-byte sequences at any offset.
    let piece = prop_oneof![
        8 => (0x20u8..0x7f).prop_map(|b| vec![b]),
        1 => prop_oneof![Just(b'\\'), Just(b'\n'), Just(b'\r'), Just(b'\t'), Just(0u8), Just(0x7f), Just(0x1f), Just(0x20)].prop_map(|b| vec![b]),
        1 => prop_oneof![Just("é".as_bytes().to_vec()), Just("€".as_bytes().to_vec()), Just(vec![0xff]), Just(vec![0xe2, 0x82])],
        // The code points of decision 7, their neighbours, and their lead bytes alone or cut short.
        1 => proptest::sample::select(&ESCAPED_CODE_POINTS[..]).prop_map(|(c, _)| c.to_string().into_bytes()),
        1 => proptest::sample::select(&KEPT_CODE_POINTS[..]).prop_map(|c| c.to_string().into_bytes()),
        1 => prop_oneof![Just(vec![0xc2]), Just(vec![0xd8]), Just(vec![0xe2]), Just(vec![0xe2, 0x80]), Just(vec![0xe2, 0x81]), Just(vec![0x80]), Just(vec![0xa8])],
    ];
    proptest::collection::vec(piece, 0..120).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn escaping_matches_the_reference(message in texty()) {
        prop_assert_eq!(escaped(&message), reference(&message));
    }
}
