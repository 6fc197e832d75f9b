//! What the demo device sends: its (demo-only) credentials and its
//! messages, in order. The client firmware sends them; the host program
//! `sensor-demo-records` prints the records `msglog-server` must write for
//! them, escaped by `msglog-core` itself, so that `scripts/qemu-client-demo.sh`
//! checks `messages.log` byte for byte without copying the escaping rules.
//!
//! The messages, by index:
//!
//! - `0..BACKLOG`: readings taken while the device was offline, sent
//!   pipelined as soon as it logs in (their 20 status bytes are more than
//!   the UART's 16-byte receive FIFO holds). Every one is longer than
//!   the transmit FIFO; [`LONG_READING`] is over 200 bytes and
//!   [`ESCAPED_READING`] holds bytes that `messages.log` escapes.
//! - [`DIAGNOSTIC_DUMP`]: a 1,000-byte dump the demo's server has no room
//!   for, so it refuses it.
//! - `FIRST_LIVE..COUNT`: live readings, one per reporting interval.
#![no_std]

use core::fmt::Write;

/// The demo device's user name.
pub const NAME: &str = "sensor-7";

/// The demo device's password. DEMO ONLY: baked into the image in clear
/// text so that the demo runs unattended; a product would provision a
/// per-device secret at manufacture, not ship one in the firmware.
pub const PASSWORD: &[u8] = b"demo-only-not-a-secret";

/// Readings stored while offline, sent at once after the first login.
pub const BACKLOG: usize = 20;

/// The index of the diagnostic dump, right after the backlog.
pub const DIAGNOSTIC_DUMP: usize = BACKLOG;

/// The index of the first live reading.
pub const FIRST_LIVE: usize = DIAGNOSTIC_DUMP + 1;

/// How many messages the device sends in all.
pub const COUNT: usize = FIRST_LIVE + 12;

/// A reading over 200 bytes (calibration values attached).
pub const LONG_READING: usize = 4;

/// A reading with a TAB, a backslash, U+0085 (NEL, a C1 control) and
/// U+2028 (LINE SEPARATOR) in it.
pub const ESCAPED_READING: usize = 8;

/// Length of the diagnostic dump, the longest message.
pub const DUMP_LEN: usize = 1_000;

/// The longest message: a buffer this long holds any of them.
pub const MAX_LEN: usize = DUMP_LEN;

/// Write message `index` into `buf` and return it; `None` if there is no
/// such message or `buf` is shorter than [`MAX_LEN`].
pub fn message(index: usize, buf: &mut [u8]) -> Option<&[u8]> {
    if index >= COUNT || buf.len() < MAX_LEN {
        return None;
    }
    let mut out = Cursor { buf, len: 0 };
    let written = if index == DIAGNOSTIC_DUMP {
        write_dump(&mut out)
    } else {
        write_reading(&mut out, index)
    };
    written.ok()?;
    let Cursor { buf, len } = out;
    buf.get(..len)
}

/// A sensor reading: made-up but deterministic values, with a counter.
fn write_reading(out: &mut Cursor<'_>, index: usize) -> core::fmt::Result {
    let seq = index + 1;
    let tenths = 200 + (index * 37) % 50;
    let humidity = 40 + (index * 13) % 20;
    let pressure = 1_005 + (index * 7) % 15;
    write!(
        out,
        "reading {seq}: t={}.{}C rh={humidity}% p={pressure}hPa",
        tenths / 10,
        tenths % 10
    )?;
    if index == LONG_READING {
        out.write_str(" calibration=")?;
        for step in 0..32 {
            write!(out, " 1.{:03}", (step * 29) % 1_000)?;
        }
    }
    if index == ESCAPED_READING {
        out.write_str(" note=tab\there back\\slash nel\u{85} ls\u{2028} end")?;
    }
    Ok(())
}

/// `diagnostic dump seq=21: 0000 0001 ...`, cut at exactly [`DUMP_LEN`] bytes.
fn write_dump(out: &mut Cursor<'_>) -> core::fmt::Result {
    write!(out, "diagnostic dump seq={}:", DIAGNOSTIC_DUMP + 1)?;
    let mut word = 0u32;
    while out.len + 5 <= DUMP_LEN {
        write!(out, " {word:04x}")?;
        word += 1;
    }
    while out.len < DUMP_LEN {
        out.write_str(".")?;
    }
    Ok(())
}

/// `core::fmt::Write` into a byte buffer; fails when it is full.
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
