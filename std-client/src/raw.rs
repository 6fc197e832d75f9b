//! Raw stream mode: the input's bytes to the server, exactly, nothing added.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};

use msglog_core::{stream_copy, CopyError};

use crate::transport::Std;
use crate::Error;

/// A good size for [`send_raw`]'s buffer: large chunks keep the syscall
/// count low (the raw mode is meant to move gigabytes per second).
pub const RAW_BUFFER: usize = 1 << 20;

/// Copy `input` to `stream` through `buffer` until end of input, then shut
/// down the write side and wait until the server closes the connection: its
/// confirmation that it took every byte. Returns the number of bytes sent.
///
/// Memory use is `buffer`, whatever the input's size. Waits are bounded by
/// the stream's read and write timeouts (see [`connect`](crate::connect)):
/// a send that makes no progress fails with [`Error::Timeout`], a server
/// that does not close after the end of input with [`Error::Unconfirmed`].
pub fn send_raw<R: Read + ?Sized>(
    stream: &TcpStream,
    input: &mut R,
    buffer: &mut [u8],
) -> Result<u64, Error> {
    let sent = stream_copy(&mut Std(input), &mut Std(stream), buffer).map_err(|e| match e {
        CopyError::Read(e) => Error::Input(e),
        CopyError::Write(e) => Error::from_io(e),
        CopyError::WriteZero => Error::Io(io::ErrorKind::WriteZero.into()),
        CopyError::EmptyBuffer => Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the copy buffer is empty",
        )),
    })?;
    stream.shutdown(Shutdown::Write).map_err(Error::from_io)?;
    await_close(stream, buffer).map_err(|e| match e {
        Error::Timeout => Error::Unconfirmed { sent },
        other => other,
    })?;
    Ok(sent)
}

/// Read (and discard) until the server closes its side.
fn await_close(mut stream: &TcpStream, buffer: &mut [u8]) -> Result<(), Error> {
    let mut byte = [0u8; 1];
    let buffer = if buffer.is_empty() {
        &mut byte[..]
    } else {
        buffer
    };
    loop {
        match stream.read(buffer) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from_io(e)),
        }
    }
}
