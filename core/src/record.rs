//! Message-log records: `[name]: escaped message\r\n`, one per line.
//!
//! The escaping keeps every record on one line, so a message cannot forge a
//! record of another user, and keeps terminal escapes off the screen: `\`
//! becomes `\\`, CR `\r`, LF `\n`, TAB `\t`, any other control byte (0x00..=0x1F,
//! 0x7F) or byte that is not part of valid UTF-8 becomes `\xNN`, and so does
//! each byte of a code point that rewrites the display (C1 controls, U+2028,
//! U+2029, bidi controls). Other valid UTF-8 passes through, so a plain text
//! message gives the original server's record byte for byte.

use embedded_io::Write;

use crate::io::{write_all, WriteError};
use crate::unicode::{rewrites_display, REWRITES_DISPLAY_LEADS};

/// Write the record for `message` from `name` (no flush).
///
/// `name` is written as is: the session only admits names without control,
/// invisible or bidi characters or brackets (see [`valid_name`](crate::valid_name)).
pub fn write_record<W: Write + ?Sized>(
    writer: &mut W,
    name: &str,
    message: &[u8],
) -> Result<(), WriteError<W::Error>> {
    write_all(writer, b"[")?;
    write_all(writer, name.as_bytes())?;
    write_all(writer, b"]: ")?;
    write_escaped(writer, message)?;
    write_all(writer, b"\r\n")
}

/// Length in bytes of the record [`write_record`] writes.
pub fn record_len(name: &str, message: &[u8]) -> usize {
    name.len() + escaped_len(message) + 6
}

/// The longest record [`write_record`] writes for a name of at most `name`
/// bytes and a message of at most `message` bytes: `[`, the name, `]: `,
/// every message byte escaped to the longest escape (`\xNN`), `\r\n`.
pub const fn max_record_len(name: usize, message: usize) -> usize {
    /// `[`, `]: ` and `\r\n` around the name and the message.
    const FRAMING: usize = "[".len() + "]: ".len() + "\r\n".len();
    /// The longest escape of one byte, `\xNN` (see `Escape`).
    const LONGEST_ESCAPE: usize = 4;
    name.saturating_add(message.saturating_mul(LONGEST_ESCAPE))
        .saturating_add(FRAMING)
}

/// Write `message` escaped (no flush).
pub fn write_escaped<W: Write + ?Sized>(
    writer: &mut W,
    message: &[u8],
) -> Result<(), WriteError<W::Error>> {
    // Fast path: most messages are valid UTF-8 (usually plain text).
    if core::str::from_utf8(message).is_ok() {
        return write_escaped_text(writer, message);
    }
    for chunk in message.utf8_chunks() {
        if !chunk.valid().is_empty() {
            write_escaped_text(writer, chunk.valid().as_bytes())?;
        }
        for &byte in chunk.invalid() {
            write_all(writer, hex_escape(byte).as_bytes())?;
        }
    }
    Ok(())
}

/// Escape valid UTF-8, copying the runs between escapes in bulk.
fn write_escaped_text<W: Write + ?Sized>(
    writer: &mut W,
    mut text: &[u8],
) -> Result<(), WriteError<W::Error>> {
    while let Some((at, len)) = first_to_escape(text) {
        let Some((run, (escaped, rest))) = text
            .split_at_checked(at)
            .and_then(|(run, rest)| Some((run, rest.split_at_checked(len)?)))
        else {
            break;
        };
        write_all(writer, run)?;
        for &byte in escaped {
            write_all(writer, escape_byte(byte).as_bytes())?;
        }
        text = rest;
    }
    write_all(writer, text)
}

/// Length in bytes of `message` once escaped.
pub fn escaped_len(message: &[u8]) -> usize {
    let text_len = |mut text: &[u8]| {
        let mut len = text.len();
        while let Some((escaped, rest)) =
            first_to_escape(text).and_then(|(at, len)| text.get(at..)?.split_at_checked(len))
        {
            len += escaped
                .iter()
                .map(|&byte| escape_byte(byte).as_bytes().len() - 1)
                .sum::<usize>();
            text = rest;
        }
        len
    };
    if core::str::from_utf8(message).is_ok() {
        return text_len(message);
    }
    message
        .utf8_chunks()
        .map(|chunk| text_len(chunk.valid().as_bytes()) + 4 * chunk.invalid().len())
        .sum()
}

/// Where the first sequence to escape in valid UTF-8 `text` starts, and
/// its length, scanning sixteen bytes at a time.
fn first_to_escape(text: &[u8]) -> Option<(usize, usize)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit of each byte set where the byte is zero; a borrow may also
    // flag a byte after a zero byte, so flagged bytes are only candidates.
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    // Bytes < 0x20 (ASCII bytes only: UTF-8 lead/continuation bytes have the high bit set).
    let ascii = |x: u64| {
        let control = x.wrapping_sub(0x20 * ONES) & !x & HIGH;
        control | zero_bytes(x ^ (0x7F * ONES)) | zero_bytes(x ^ (u64::from(b'\\') * ONES))
    };
    let leads = |x: u64| {
        REWRITES_DISPLAY_LEADS.iter().fold(0, |hits, &lead| {
            hits | zero_bytes(x ^ (u64::from(lead) * ONES))
        })
    };
    let word = |bytes: &[u8]| {
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(word)
    };
    let mut chunks = text.chunks_exact(16);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let (first, second) = chunk.split_at(8);
        let (x, y) = (word(first), word(second));
        let (mut at_x, mut at_y) = (ascii(x), ascii(y));
        // Only words with a non-ASCII byte can hold a lead byte.
        if (x | y) & HIGH != 0 {
            at_x |= leads(x);
            at_y |= leads(y);
        }
        if at_x | at_y != 0 {
            if let Some(found) =
                confirm(text, offset, at_x).or_else(|| confirm(text, offset + 8, at_y))
            {
                return Some(found);
            }
        }
        offset += 16;
    }
    let rest = chunks.remainder();
    (0..rest.len()).find_map(|i| match escape_len(rest.get(i..)?) {
        0 => None,
        len => Some((offset + i, len)),
    })
}

/// The first sequence to escape that starts at a byte of the word at
/// `offset` whose high bit is set in `candidates`.
#[inline]
fn confirm(text: &[u8], offset: usize, mut candidates: u64) -> Option<(usize, usize)> {
    while candidates != 0 {
        let at = offset + (candidates.trailing_zeros() / 8) as usize;
        match escape_len(text.get(at..)?) {
            0 => candidates &= candidates - 1,
            len => return Some((at, len)),
        }
    }
    None
}

/// Length of the sequence to escape at the start of valid UTF-8 `text`
/// (0: none): an ASCII control byte or `\`, or a whole code point that
/// rewrites the display.
fn escape_len(text: &[u8]) -> usize {
    let byte = |i: usize| u32::from(text.get(i).copied().unwrap_or(0) & 0x3F);
    // A lead byte starts a whole sequence: `text` is valid UTF-8.
    let (code, len) = match text.first() {
        Some(0x00..=0x1F | 0x7F | b'\\') => return 1,
        Some(&lead @ 0xC0..=0xDF) => ((u32::from(lead & 0x1F) << 6) | byte(1), 2),
        Some(&lead @ 0xE0..=0xEF) => ((u32::from(lead & 0x0F) << 12) | (byte(1) << 6) | byte(2), 3),
        _ => return 0,
    };
    if rewrites_display(code) {
        len
    } else {
        0
    }
}

/// A short escape sequence held inline (at most `\xNN`).
struct Escape {
    bytes: [u8; 4],
    len: usize,
}

impl Escape {
    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

fn escape_byte(byte: u8) -> Escape {
    let short = |c: u8| Escape {
        bytes: [b'\\', c, 0, 0],
        len: 2,
    };
    match byte {
        b'\\' => short(b'\\'),
        b'\r' => short(b'r'),
        b'\n' => short(b'n'),
        b'\t' => short(b't'),
        _ => hex_escape(byte),
    }
}

fn hex_escape(byte: u8) -> Escape {
    Escape {
        bytes: [b'\\', b'x', hex_digit(byte >> 4), hex_digit(byte & 0x0F)],
        len: 4,
    }
}

/// Lower-case hex digit of a nibble (`nibble` < 16).
fn hex_digit(nibble: u8) -> u8 {
    match nibble {
        0..=9 => b'0' + nibble,
        _ => b'a' + (nibble & 0x0F) - 10,
    }
}
