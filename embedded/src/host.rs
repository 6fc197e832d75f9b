//! The message log: a file on the host, written through semihosting.

use core::ffi::CStr;

use embedded_io::{ErrorKind, ErrorType, Write};
use semihosting::fs::{File, OpenOptions};
use semihosting::io::Write as _;

/// Why the host did not take a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HostError {
    /// The file could not be opened at boot.
    NotOpen,
    /// The host refused the write.
    WriteFailed,
}

impl core::fmt::Display for HostError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            HostError::NotOpen => "host file not open",
            HostError::WriteFailed => "host refused the write",
        })
    }
}

impl core::error::Error for HostError {}

impl embedded_io::Error for HostError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// A host file opened for appending (relative paths are relative to QEMU's
/// working directory). If it cannot be opened every write fails, so the
/// server answers each message 0xFF instead of acknowledging a lost record.
#[derive(Debug)]
pub struct HostFile {
    file: Option<File>,
}

impl HostFile {
    /// Open `path` for appending, creating it if missing.
    pub fn append(path: &CStr) -> Self {
        let file = OpenOptions::new()
            .write(true)
            .append(true)
            .create(true)
            .open(path)
            .ok();
        HostFile { file }
    }

    /// Whether the file is open.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }
}

impl ErrorType for HostFile {
    type Error = HostError;
}

impl Write for HostFile {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let file = self.file.as_mut().ok_or(HostError::NotOpen)?;
        file.write(buf).map_err(|_| HostError::WriteFailed)
    }

    /// Semihosting writes are synchronous: once `write` returns, the host has the bytes.
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
