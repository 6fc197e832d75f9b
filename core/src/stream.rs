//! Raw stream mode: copy every byte from a reader to a writer, nothing added.

use embedded_io::{Read, Write};

use crate::io::{write_all, WriteError};

/// Why [`stream_copy`] stopped before end of stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CopyError<R, W> {
    /// Reading failed.
    Read(R),
    /// Writing failed.
    Write(W),
    /// The writer accepted zero bytes.
    WriteZero,
    /// The buffer is empty, so nothing could be copied.
    EmptyBuffer,
}

impl<R: core::fmt::Display, W: core::fmt::Display> core::fmt::Display for CopyError<R, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CopyError::Read(e) => write!(f, "read failed: {e}"),
            CopyError::Write(e) => write!(f, "write failed: {e}"),
            CopyError::WriteZero => f.write_str("writer accepted no bytes"),
            CopyError::EmptyBuffer => f.write_str("copy buffer is empty"),
        }
    }
}

impl<R, W> core::error::Error for CopyError<R, W>
where
    R: core::fmt::Debug + core::fmt::Display,
    W: core::fmt::Debug + core::fmt::Display,
{
}

/// Copy `reader` to `writer` through `buffer` until the reader reports end of
/// stream, then flush. Short writes are continued; memory use is the buffer,
/// whatever the stream's size. Returns the number of bytes copied.
pub fn stream_copy<R, W>(
    reader: &mut R,
    writer: &mut W,
    buffer: &mut [u8],
) -> Result<u64, CopyError<R::Error, W::Error>>
where
    R: Read + ?Sized,
    W: Write + ?Sized,
{
    if buffer.is_empty() {
        return Err(CopyError::EmptyBuffer);
    }
    let mut total: u64 = 0;
    loop {
        let n = reader.read(buffer).map_err(CopyError::Read)?;
        if n == 0 {
            writer.flush().map_err(CopyError::Write)?;
            return Ok(total);
        }
        let chunk = buffer.get(..n).unwrap_or_default();
        write_all(writer, chunk).map_err(|e| match e {
            WriteError::Io(e) => CopyError::Write(e),
            _ => CopyError::WriteZero,
        })?;
        total += chunk.len() as u64;
    }
}
