//! Allocation-free text building for log lines: decimal numbers and quoted,
//! escaped values, appended to a `Vec<u8>`.

use msglog_core::write_escaped;

/// `count` and a noun, singular for one: "1 connection", "2 connections".
pub(crate) fn plural(count: impl Into<u64>, one: &str) -> String {
    match count.into() {
        1 => format!("1 {one}"),
        n => format!("{n} {one}s"),
    }
}

/// Append `value` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Append `value` as a double-quoted string with PROTOCOL.md's message
/// escaping (the core's `write_escaped`) plus `\"` for a quote, so a value
/// can never end its field or its line early.
pub(crate) fn push_quoted(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'"');
    // `"` is ASCII, so splitting at it never cuts a UTF-8 sequence.
    for (i, part) in value.split(|&b| b == b'"').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\\\"");
        }
        // Writing to a Vec cannot fail.
        let _ = write_escaped(out, part);
    }
    out.push(b'"');
}

/// Append `byte` as `0xNN` (lower-case hex).
pub(crate) fn push_hex_byte(out: &mut Vec<u8>, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'0',
        b'x',
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0x0F)],
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for value in [0, 7, 10, 99, 1234567890, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, value);
            assert_eq!(out, value.to_string().as_bytes());
        }
    }

    #[test]
    fn quoted_values_stay_on_their_line() {
        let mut out = Vec::new();
        push_quoted(&mut out, b"a \"b\"\r\n\\ \x01\xff\xc3\xa9");
        assert_eq!(out, b"\"a \\\"b\\\"\\r\\n\\\\ \\x01\\xff\xc3\xa9\"");
    }

    #[test]
    fn hex() {
        let mut out = Vec::new();
        push_hex_byte(&mut out, 0xAB);
        push_hex_byte(&mut out, 0x05);
        assert_eq!(out, b"0xab0x05");
    }
}
