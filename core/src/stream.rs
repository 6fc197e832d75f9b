//! Raw stream mode: copy every byte from a reader to a writer, nothing added.

use embedded_io::{Read, Write};

/// Why [`stream_copy`] stopped before end of stream, with the number of
/// bytes the writer had accepted by then (see [`CopyError::copied`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CopyError<R, W> {
    /// Reading failed.
    Read {
        /// The reader's error.
        error: R,
        /// Bytes the writer accepted before.
        copied: u64,
    },
    /// Writing (or the final flush) failed.
    Write {
        /// The writer's error, as it returned it.
        error: W,
        /// Bytes the writer accepted before, including the accepted part of
        /// a chunk it then failed to take whole.
        copied: u64,
    },
    /// The writer accepted zero bytes of a non-empty chunk (it is closed or full).
    WriteZero {
        /// Bytes the writer accepted before.
        copied: u64,
    },
    /// The buffer is empty, so nothing could be copied.
    EmptyBuffer,
}

impl<R, W> CopyError<R, W> {
    /// Bytes the writer accepted before the failure: a writer that buffers
    /// may not have passed all of them on (a failed flush is a
    /// [`CopyError::Write`] with every byte counted).
    pub fn copied(&self) -> u64 {
        match self {
            CopyError::Read { copied, .. }
            | CopyError::Write { copied, .. }
            | CopyError::WriteZero { copied } => *copied,
            CopyError::EmptyBuffer => 0,
        }
    }
}

impl<R: core::fmt::Display, W: core::fmt::Display> core::fmt::Display for CopyError<R, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CopyError::Read { error, copied } => {
                write!(f, "read failed after {copied} bytes: {error}")
            }
            CopyError::Write { error, copied } => {
                write!(f, "write failed after {copied} bytes: {error}")
            }
            CopyError::WriteZero { copied } => {
                write!(f, "writer accepted no bytes after {copied} bytes")
            }
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
/// whatever the stream's size. Returns the number of bytes copied; on
/// failure the error says how many the writer had accepted.
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
    let mut copied: u64 = 0;
    loop {
        let n = match reader.read(buffer) {
            Ok(n) => n,
            Err(error) => return Err(CopyError::Read { error, copied }),
        };
        if n == 0 {
            return match writer.flush() {
                Ok(()) => Ok(copied),
                Err(error) => Err(CopyError::Write { error, copied }),
            };
        }
        let mut chunk = buffer.get(..n).unwrap_or_default();
        while !chunk.is_empty() {
            match writer.write(chunk) {
                Ok(0) => return Err(CopyError::WriteZero { copied }),
                Ok(written) => took(written, &mut chunk, &mut copied),
                Err(error) => return Err(CopyError::Write { error, copied }),
            }
        }
    }
}

/// The writer took `written` bytes of `chunk`: what is left, and the count.
pub(crate) fn took(written: usize, chunk: &mut &[u8], copied: &mut u64) {
    // A writer claiming more than it was given took the chunk.
    let written = written.min(chunk.len());
    *copied = copied.saturating_add(written as u64);
    *chunk = chunk.get(written..).unwrap_or_default();
}
