//! Non-blocking socket steps shared by both modes, and the one thing about
//! them that differs between platforms.

use std::io::{ErrorKind, Write};

use mio::net::TcpStream;
use msglog_std::retry_interrupted;

use crate::failure::FailureKind;

/// Whether a short read empties the socket and a short write fills it,
/// so that the next readiness event may be awaited without going on to
/// `WouldBlock`. True with epoll and kqueue, which report what changes
/// later; mio on Windows re-arms readiness only after an operation has
/// returned `WouldBlock`, so there every read and write goes on to it.
pub const SHORT_IO_IS_FINAL: bool = cfg!(unix);

/// Write once; `Ok(None)` when the socket would block.
pub fn write(stream: &mut Option<TcpStream>, bytes: &[u8]) -> Result<Option<usize>, FailureKind> {
    let stream = stream.as_mut().ok_or(FailureKind::Reset)?;
    match retry_interrupted(|| stream.write(bytes)) {
        Ok(0) => Err(FailureKind::Reset),
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
        Err(_) => Err(FailureKind::Reset),
    }
}

/// Whether a non-blocking connect has completed; `Err` if it failed.
pub fn connected(stream: &Option<TcpStream>) -> Result<bool, FailureKind> {
    let stream = stream.as_ref().ok_or(FailureKind::Connect)?;
    match stream.take_error() {
        Ok(None) => {}
        Ok(Some(_)) | Err(_) => return Err(FailureKind::Connect),
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
        Err(e) if e.kind() == ErrorKind::Interrupted => Ok(false),
        Err(_) => Err(FailureKind::Connect),
    }
}
