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
    // Valid UTF-8 passes through, C1 controls included (bytes are escaped, not code points).
    assert_eq!(escaped("€ 日本 \u{85}".as_bytes()), "€ 日本 \u{85}");
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
        prop_assert_eq!(unescape(&text), message);
    }

    #[test]
    fn valid_text_without_controls_is_unchanged(text in "[^\\x00-\\x1f\\x7f\\\\]{0,100}") {
        prop_assert_eq!(escaped(text.as_bytes()), text);
    }
}

/// The escaping rules of PROTOCOL.md, byte by byte, as a reference.
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
