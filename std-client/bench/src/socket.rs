//! Non-blocking socket steps shared by both modes.

use std::io::{ErrorKind, Write};

use mio::net::TcpStream;

use crate::failure::Failure;

/// Write once; `Ok(None)` when the socket would block.
pub fn write(stream: &mut Option<TcpStream>, bytes: &[u8]) -> Result<Option<usize>, Failure> {
    let stream = stream.as_mut().ok_or(Failure::Reset)?;
    loop {
        match stream.write(bytes) {
            Ok(0) => return Err(Failure::Reset),
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(Failure::Reset),
        }
    }
}

/// Whether a non-blocking connect has completed; `Err` if it failed.
pub fn connected(stream: &Option<TcpStream>) -> Result<bool, Failure> {
    let stream = stream.as_ref().ok_or(Failure::Connect)?;
    match stream.take_error() {
        Ok(None) => {}
        Ok(Some(_)) | Err(_) => return Err(Failure::Connect),
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
        Err(e) if e.kind() == ErrorKind::Interrupted => Ok(false),
        Err(_) => Err(Failure::Connect),
    }
}
