//! Panic-free I/O helpers shared by the drivers.

use embedded_io::Write;

use crate::encode::EncodeError;

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
