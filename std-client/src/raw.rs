//! Raw stream mode: the input's bytes to the server, exactly, nothing added.
//!
//! There is no status byte in this mode, so the outcome is how the server
//! closes: a clean close (FIN) after the end of input confirms that it took
//! every byte; a reset, or any byte it sends, does not.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};

use msglog_core::{stream_copy, CopyError};
use msglog_std::{retry_interrupted, Std};

use crate::transport::{peek, Peeked};
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
/// A reset, or a close before the end of input, is [`Error::Lost`]; a byte
/// from the server (a raw server never sends one, a framed server answers
/// with a status) is [`Error::Answered`], whenever it arrives.
pub fn send_raw<R: Read + ?Sized>(
    stream: &TcpStream,
    input: &mut R,
    buffer: &mut [u8],
) -> Result<u64, Error> {
    let sent = match stream_copy(&mut Std(input), &mut CheckedSocket(stream), buffer) {
        Ok(sent) => sent,
        Err(CopyError::Read { error, .. }) => return Err(Error::Input(error)),
        Err(CopyError::Write { error, copied }) => return Err(failed(stream, error, copied)),
        Err(CopyError::WriteZero { copied }) => {
            return Err(failed(stream, io::ErrorKind::WriteZero.into(), copied))
        }
        Err(_) => {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the copy buffer is empty",
            )))
        }
    };
    if let Err(e) = stream.shutdown(Shutdown::Write) {
        return Err(failed(stream, e, sent));
    }
    await_close(stream, buffer, sent)
}

/// The socket as the copy's writer: before each write it checks, without
/// waiting, that the server has neither sent a byte nor closed.
struct CheckedSocket<'a>(&'a TcpStream);

impl embedded_io::ErrorType for CheckedSocket<'_> {
    type Error = io::Error;
}

impl embedded_io::Write for CheckedSocket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match peek(self.0) {
            // The byte itself is read again by `failed`.
            Peeked::Byte(_) => Err(io::Error::other("the server sent a byte")),
            Peeked::Closed(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before the end of the input",
                ))
            }
            Peeked::Closed(error) => Err(error),
            Peeked::Nothing => embedded_io::Write::write(&mut Std(self.0), buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The error for a send that failed with `error` after `sent` bytes. A
/// byte from the server comes first: it explains the failure (a framed
/// server answers the first raw byte with 0xFF and closes, which resets a
/// large upload), and it can still be read after the reset.
fn failed(stream: &TcpStream, error: io::Error, sent: u64) -> Error {
    let error = match peek(stream) {
        Peeked::Byte(byte) => return Error::Answered { byte },
        // The reset itself says more than e.g. ENOTCONN from a shutdown after it.
        Peeked::Closed(reset) if reset.kind() == io::ErrorKind::ConnectionReset => reset,
        _ => error,
    };
    match Error::from_io(error) {
        Error::Io(source) => Error::Lost { sent, source },
        other => other,
    }
}

/// Wait for the server's close after the end of input: a clean close
/// confirms every byte; a byte or a reset does not.
fn await_close(mut stream: &TcpStream, buffer: &mut [u8], sent: u64) -> Result<u64, Error> {
    let mut byte = [0u8; 1];
    let buffer = if buffer.is_empty() {
        &mut byte[..]
    } else {
        buffer
    };
    match retry_interrupted(|| stream.read(buffer)) {
        Ok(0) => Ok(sent),
        Ok(_) => Err(Error::Answered {
            byte: buffer.first().copied().unwrap_or_default(),
        }),
        Err(e) => Err(match Error::from_io(e) {
            Error::Timeout => Error::Unconfirmed { sent },
            Error::Io(source) => Error::Lost { sent, source },
            other => other,
        }),
    }
}
