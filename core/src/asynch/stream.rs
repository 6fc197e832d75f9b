//! Raw stream mode, async: [`stream_copy`].

use embedded_io_async::{Read, Write};

use crate::stream::{took, CopyError};

/// Copy `reader` to `writer` through `buffer` until the reader reports end
/// of stream, then flush: the async twin of [`crate::stream_copy`], with
/// the same results and errors.
pub async fn stream_copy<R, W>(
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
        let n = match reader.read(buffer).await {
            Ok(n) => n,
            Err(error) => return Err(CopyError::Read { error, copied }),
        };
        if n == 0 {
            return match writer.flush().await {
                Ok(()) => Ok(copied),
                Err(error) => Err(CopyError::Write { error, copied }),
            };
        }
        let mut chunk = buffer.get(..n).unwrap_or_default();
        while !chunk.is_empty() {
            match writer.write(chunk).await {
                Ok(0) => return Err(CopyError::WriteZero { copied }),
                Ok(written) => took(written, &mut chunk, &mut copied),
                Err(error) => return Err(CopyError::Write { error, copied }),
            }
        }
    }
}
