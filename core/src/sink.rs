//! A [`Sink`] that writes message-log records to any `embedded_io::Write`.

use embedded_io::Write;

use crate::io::WriteError;
use crate::record::write_record;
use crate::session::Sink;

/// Writes each message as a record (`[name]: escaped\r\n`) and flushes, so
/// that `append` returns only once the writer has taken the whole record.
#[derive(Debug)]
pub struct RecordWriter<W> {
    writer: W,
}

impl<W: Write> RecordWriter<W> {
    /// Write records to `writer`.
    pub const fn new(writer: W) -> Self {
        RecordWriter { writer }
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }

    /// The underlying writer, mutably.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Give back the underlying writer.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<W: Write> Sink for RecordWriter<W> {
    type Error = WriteError<W::Error>;

    fn append(&mut self, name: &str, message: &[u8]) -> Result<(), Self::Error> {
        write_record(&mut self.writer, name, message)?;
        self.writer.flush().map_err(WriteError::Io)
    }
}
