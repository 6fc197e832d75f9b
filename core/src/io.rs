//! Writing to an `embedded_io::Write`: panic-free helpers shared by the
//! drivers, and transactions and status bytes written whole.

use embedded_io::Write;

use crate::encode::EncodeError;
use crate::wire::{Status, Transaction};

/// Why writing to an `embedded_io::Write` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WriteError<E> {
    /// The writer failed.
    Io(E),
    /// The writer accepted zero bytes of a non-empty buffer (it is closed or full).
    WriteZero,
    /// The transaction cannot be encoded.
    Encode(EncodeError),
}

impl<E: core::fmt::Display> core::fmt::Display for WriteError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WriteError::Io(e) => write!(f, "write failed: {e}"),
            WriteError::WriteZero => f.write_str("writer accepted no bytes"),
            WriteError::Encode(e) => write!(f, "cannot encode: {e}"),
        }
    }
}

impl<E: core::fmt::Debug + core::fmt::Display> core::error::Error for WriteError<E> {}

/// Like `Write::write_all`, but a writer that returns `Ok(0)` is an error, not a panic.
pub(crate) fn write_all<W: Write + ?Sized>(
    writer: &mut W,
    mut buf: &[u8],
) -> Result<(), WriteError<W::Error>> {
    while !buf.is_empty() {
        match writer.write(buf) {
            Ok(0) => return Err(WriteError::WriteZero),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(e) => return Err(WriteError::Io(e)),
        }
    }
    Ok(())
}

impl Transaction<'_> {
    /// Write this transaction to `writer` (header, then payload; no flush).
    pub fn write_to<W: Write>(&self, writer: &mut W) -> Result<(), WriteError<W::Error>> {
        let header = self.header().map_err(WriteError::Encode)?;
        write_all(writer, header.as_bytes())?;
        write_all(writer, self.payload())
    }
}

impl Status {
    /// Write this status byte to `writer` (no flush).
    pub fn write_to<W: Write>(&self, writer: &mut W) -> Result<(), WriteError<W::Error>> {
        write_all(writer, &[self.as_byte()])
    }
}
