//! Message-log records: `[name]: escaped message\r\n`, one per line.
//!
//! The escaping keeps every record on one line, so a message cannot forge a
//! record of another user: `\` becomes `\\`, CR `\r`, LF `\n`, TAB `\t`, any
//! other control byte (0x00..=0x1F, 0x7F) or byte that is not part of valid
//! UTF-8 becomes `\xNN`. Printable ASCII and valid UTF-8 pass through, so a
//! plain text message gives the original server's record byte for byte.

use embedded_io::Write;

use crate::io::{write_all, WriteError};

/// Write the record for `message` from `name` (no flush).
///
/// `name` is written as is: the session only admits names without control
/// characters or brackets (see [`valid_name`](crate::valid_name)).
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
        write_escaped_text(writer, chunk.valid().as_bytes())?;
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
    while let Some(i) = first_to_escape(text) {
        let (run, rest) = text.split_at(i);
        write_all(writer, run)?;
        let Some((&byte, rest)) = rest.split_first() else {
            break;
        };
        write_all(writer, escape_byte(byte).as_bytes())?;
        text = rest;
    }
    write_all(writer, text)
}

/// Length in bytes of `message` once escaped.
pub fn escaped_len(message: &[u8]) -> usize {
    let text_len = |mut text: &[u8]| {
        let mut len = text.len();
        while let Some((&byte, rest)) = first_to_escape(text)
            .and_then(|i| text.get(i..))
            .and_then(<[u8]>::split_first)
        {
            len += escape_byte(byte).as_bytes().len() - 1;
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

/// Index of the first byte that needs escaping, scanning eight bytes at a time.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit of each byte set where the byte is zero (exact for the first hit).
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Bytes < 0x20 (ASCII bytes only: UTF-8 lead/continuation bytes have the high bit set).
        let control = x.wrapping_sub(0x20 * ONES) & !x & HIGH;
        let hits =
            control | zero_bytes(x ^ (0x7F * ONES)) | zero_bytes(x ^ (u64::from(b'\\') * ONES));
        if hits != 0 {
            // The borrow-based tricks can flag bytes after the first real hit; rescan this word exactly.
            if let Some(i) = chunk.iter().position(|&b| needs_escape(b)) {
                return Some(offset + i);
            }
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| needs_escape(b))
        .map(|i| offset + i)
}

#[inline]
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7F || byte == b'\\'
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
