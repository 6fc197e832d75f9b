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

/// Write `message` escaped (no flush).
pub fn write_escaped<W: Write + ?Sized>(
    writer: &mut W,
    message: &[u8],
) -> Result<(), WriteError<W::Error>> {
    for chunk in message.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        let mut start = 0;
        for (i, &byte) in valid.iter().enumerate() {
            if needs_escape(byte) {
                write_all(writer, valid.get(start..i).unwrap_or_default())?;
                write_all(writer, escape_byte(byte).as_bytes())?;
                start = i + 1;
            }
        }
        write_all(writer, valid.get(start..).unwrap_or_default())?;
        for &byte in chunk.invalid() {
            write_all(writer, hex_escape(byte).as_bytes())?;
        }
    }
    Ok(())
}

/// Length in bytes of `message` once escaped.
pub fn escaped_len(message: &[u8]) -> usize {
    let mut len = 0;
    for chunk in message.utf8_chunks() {
        for &byte in chunk.valid().as_bytes() {
            len += if needs_escape(byte) {
                escape_byte(byte).as_bytes().len()
            } else {
                1
            };
        }
        len += 4 * chunk.invalid().len();
    }
    len
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
