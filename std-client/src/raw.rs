//! Raw stream mode: the input's bytes to the server, exactly, nothing added.
//!
//! There is no status byte in this mode, so the outcome is how the server
//! closes: a clean close (FIN; over TLS, close_notify and then FIN) after
//! the end of input confirms that it took every byte; a reset, a TLS close
//! without close_notify, or any byte it sends, does not.

use std::io::{self, Read};

use msglog_core::{stream_copy, CopyError};
use msglog_std::{retry_interrupted, Std};

use crate::transport::Peeked;
use crate::{Error, Transport};

/// A good size for [`send_raw`]'s buffer: large chunks keep the syscall
/// count low (the raw mode is meant to move gigabytes per second).
pub const RAW_BUFFER: usize = 1 << 20;

/// Copy `input` to `stream` through `buffer` until end of input, then shut
/// down the write side (over TLS: close_notify first) and wait until the
/// server closes the connection: its confirmation that it took every byte.
/// Returns the number of bytes sent.
///
/// `stream` is any [`Transport`]: `&TcpStream` as [`connect`](crate::connect)
/// returns it, a [`TlsStream`](crate::TlsStream) (feature `tls`), or the
/// caller's own. Memory use is `buffer`, whatever the input's size. Waits
/// are bounded by the stream's read and write timeouts: a send that makes
/// no progress fails with [`Error::Timeout`], a server that does not close
/// after the end of input with [`Error::Unconfirmed`]. A reset, a close
/// before the end of input, or a TLS close without close_notify is
/// [`Error::Lost`]; a byte from the server (a raw server never sends one,
/// a framed server answers with a status) is [`Error::Answered`], whenever
/// it arrives.
pub fn send_raw<T: Transport, R: Read + ?Sized>(
    mut stream: T,
    input: &mut R,
    buffer: &mut [u8],
) -> Result<u64, Error> {
    let sent = match stream_copy(&mut Std(input), &mut CheckedSocket(&mut stream), buffer) {
        Ok(sent) => sent,
        Err(CopyError::Read { error, .. }) => return Err(Error::Input(error)),
        Err(CopyError::Write { error, copied }) => return Err(failed(&mut stream, error, copied)),
        Err(CopyError::WriteZero { copied }) => {
            return Err(failed(&mut stream, io::ErrorKind::WriteZero.into(), copied))
        }
        Err(_) => {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the copy buffer is empty",
            )))
        }
    };
    if let Err(e) = stream.shutdown_write() {
        return Err(failed(&mut stream, e, sent));
    }
    await_close(&mut stream, buffer, sent)
}

/// The socket as the copy's writer: before each write it checks, without
/// waiting, that the server has neither sent a byte nor closed.
struct CheckedSocket<'a, T>(&'a mut T);

impl<T> embedded_io::ErrorType for CheckedSocket<'_, T> {
    type Error = io::Error;
}

impl<T: Transport> embedded_io::Write for CheckedSocket<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Peeked::from_result(self.0.peek_byte()) {
            // The byte itself is read again by `failed`.
            Peeked::Byte(_) => Err(io::Error::other("the server sent a byte")),
            Peeked::Closed(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before the end of the input",
                ))
            }
            Peeked::Closed(error) => Err(error),
            Peeked::Nothing => embedded_io::Write::write(&mut Std(&mut *self.0), buf),
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
fn failed<T: Transport>(stream: &mut T, error: io::Error, sent: u64) -> Error {
    let error = match Peeked::from_result(stream.peek_byte()) {
        Peeked::Byte(byte) => return Error::Answered { byte },
        // The reset itself says more than e.g. ENOTCONN from a shutdown after it.
        Peeked::Closed(reset) if reset.kind() == io::ErrorKind::ConnectionReset => reset,
        // A TLS alert (a refused client certificate, say) too.
        Peeked::Closed(tls) if Error::is_tls(&tls) => tls,
        _ => error,
    };
    match Error::from_io(error) {
        Error::Io(source) => Error::Lost { sent, source },
        other => other,
    }
}

/// Wait for the server's close after the end of input: a clean close
/// confirms every byte; a byte or a reset does not.
fn await_close<T: Transport>(stream: &mut T, buffer: &mut [u8], sent: u64) -> Result<u64, Error> {
    let mut byte = [0u8; 1];
    let buffer = if buffer.is_empty() {
        &mut byte[..]
    } else {
        buffer
    };
    match retry_interrupted(|| stream.read_to_close(buffer)) {
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
