//! Reading input lines with bounded memory.

use std::io::{self, Read};

use msglog_core::MAX_PAYLOAD;

/// Bytes [`LineReader`] buffers: several maximal lines, so reads stay large.
const LINE_BUFFER: usize = 256 * 1024;

/// One input line, without its `\n` or `\r\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's number, from 1.
    pub number: u64,
    /// The line's bytes.
    pub bytes: &'a [u8],
}

/// Why [`LineReader::next_nonempty_line`] returned no line.
#[derive(Debug)]
pub enum LineError {
    /// The line is longer than a message can be (65535 bytes). The reader
    /// skips it: the next call returns the line after it.
    TooLong {
        /// The line's number, from 1.
        line: u64,
    },
    /// Reading failed.
    Read(io::Error),
}

/// Splits a byte stream into lines, holding at most a fixed buffer in
/// memory: a line longer than a message is reported, never accumulated.
#[derive(Debug)]
pub struct LineReader<R> {
    reader: R,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    line: u64,
    eof: bool,
    /// The rest of an over-long line is still to be skipped.
    skipping: bool,
}

impl<R: Read> LineReader<R> {
    /// Lines of `reader`.
    pub fn new(reader: R) -> Self {
        LineReader {
            reader,
            buffer: vec![0; LINE_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            line: 0,
            eof: false,
            skipping: false,
        }
    }

    /// The next line, empty ones included (the tests check the splitting with it).
    #[cfg(test)]
    fn next_line(&mut self) -> Result<Option<Line<'_>>, LineError> {
        let next = self.next_range()?;
        Ok(next.map(|range| self.line_at(range)))
    }

    /// The next line that is not empty, or `None` at end of input. A last
    /// line without a line ending counts; `\r` is removed only before `\n`.
    /// A read error (e.g. `WouldBlock` from a reader that never blocks)
    /// leaves the reader as it was: call again once more input is there.
    pub fn next_nonempty_line(&mut self) -> Result<Option<Line<'_>>, LineError> {
        loop {
            match self.next_range()? {
                Some((_, 0)) => continue,
                next => return Ok(next.map(|range| self.line_at(range))),
            }
        }
    }

    fn line_at(&self, (start, len): (usize, usize)) -> Line<'_> {
        Line {
            number: self.line,
            bytes: self.buffer.get(start..start + len).unwrap_or_default(),
        }
    }

    /// Where the next line is in the buffer: its start and length.
    fn next_range(&mut self) -> Result<Option<(usize, usize)>, LineError> {
        if self.skipping {
            self.skip_line()?;
        }
        let (start, len) = loop {
            let pending = self.buffer.get(self.start..self.end).unwrap_or_default();
            if let Some(newline) = pending.iter().position(|&b| b == b'\n') {
                let start = self.start;
                self.start += newline + 1;
                let ends_in_cr = newline > 0 && pending.get(newline - 1) == Some(&b'\r');
                break (start, newline - usize::from(ends_in_cr));
            }
            // Even a `\r\n` ending cannot make this partial line short enough.
            if pending.len() > MAX_PAYLOAD + 1 {
                self.start = self.end;
                self.skipping = true;
                self.line += 1;
                return Err(LineError::TooLong { line: self.line });
            }
            if self.eof {
                if pending.is_empty() {
                    return Ok(None);
                }
                let start = self.start;
                self.start = self.end;
                break (start, pending.len());
            }
            self.fill()?;
        };
        self.line += 1;
        if len > MAX_PAYLOAD {
            return Err(LineError::TooLong { line: self.line });
        }
        Ok(Some((start, len)))
    }

    /// The underlying reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Move the unread bytes to the front and read more after them.
    fn fill(&mut self) -> Result<(), LineError> {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let free = self.buffer.get_mut(self.end..).unwrap_or_default();
        loop {
            match self.reader.read(free) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n.min(free.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Read(e)),
            }
            return Ok(());
        }
    }

    /// Discard input up to and including the next `\n`.
    fn skip_line(&mut self) -> Result<(), LineError> {
        loop {
            let pending = self.buffer.get(self.start..self.end).unwrap_or_default();
            if let Some(newline) = pending.iter().position(|&b| b == b'\n') {
                self.start += newline + 1;
                break;
            }
            self.start = 0;
            self.end = 0;
            if self.eof {
                break;
            }
            self.fill()?;
        }
        self.skipping = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Result<(u64, Vec<u8>), u64>> {
        let mut reader = LineReader::new(input);
        let mut out = Vec::new();
        loop {
            match reader.next_line() {
                Ok(Some(line)) => out.push(Ok((line.number, line.bytes.to_vec()))),
                Ok(None) => return out,
                Err(LineError::TooLong { line }) => out.push(Err(line)),
                Err(LineError::Read(e)) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn splits_on_lf_and_crlf() {
        assert_eq!(
            lines(b"a\r\nb\n\nc\rd\n\r\nlast"),
            vec![
                Ok((1, b"a".to_vec())),
                Ok((2, b"b".to_vec())),
                Ok((3, b"".to_vec())),
                Ok((4, b"c\rd".to_vec())),
                Ok((5, b"".to_vec())),
                Ok((6, b"last".to_vec())),
            ]
        );
        assert!(lines(b"").is_empty());
        assert_eq!(lines(b"\n"), vec![Ok((1, Vec::new()))]);
    }

    #[test]
    fn the_longest_message_passes_and_one_byte_more_is_reported() {
        let longest = vec![b'x'; MAX_PAYLOAD];
        for ending in [&b"\n"[..], b"\r\n", b""] {
            let mut input = longest.clone();
            input.extend_from_slice(ending);
            assert_eq!(lines(&input), vec![Ok((1, longest.clone()))]);
        }
        for ending in [&b"\n"[..], b"\r\n"] {
            let mut input = vec![b'x'; MAX_PAYLOAD + 1];
            input.extend_from_slice(ending);
            input.extend_from_slice(b"next\n");
            assert_eq!(lines(&input), vec![Err(1), Ok((2, b"next".to_vec()))]);
        }
        assert_eq!(lines(&vec![b'x'; MAX_PAYLOAD + 1]), vec![Err(1)]);
    }

    #[test]
    fn a_huge_line_is_skipped_in_bounded_memory() {
        let mut input = b"first\n".to_vec();
        input.extend(std::iter::repeat_n(b'y', 3 * LINE_BUFFER + 17));
        input.extend_from_slice(b"\nafter\n");
        assert_eq!(
            lines(&input),
            vec![
                Ok((1, b"first".to_vec())),
                Err(2),
                Ok((3, b"after".to_vec()))
            ]
        );
        let mut unterminated = b"x\n".to_vec();
        unterminated.extend(std::iter::repeat_n(b'y', 2 * LINE_BUFFER));
        assert_eq!(lines(&unterminated), vec![Ok((1, b"x".to_vec())), Err(2)]);
    }

    #[test]
    fn a_read_that_would_block_loses_nothing() {
        /// Hands out one chunk per call, `WouldBlock` in between.
        struct Stuttering {
            chunks: Vec<&'static [u8]>,
            ready: bool,
        }
        impl Read for Stuttering {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.ready = !self.ready;
                if !self.ready {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                if self.chunks.is_empty() {
                    return Ok(0);
                }
                let chunk = self.chunks.remove(0);
                buf[..chunk.len()].copy_from_slice(chunk);
                Ok(chunk.len())
            }
        }
        let mut long = vec![b'z'; MAX_PAYLOAD + 10];
        long.push(b'\n');
        let chunks: Vec<&'static [u8]> = vec![
            b"par",
            b"tial\r",
            b"\n\nnext",
            Box::leak(long.into_boxed_slice()),
            b"la",
            b"st",
        ];
        let mut reader = LineReader::new(Stuttering {
            chunks,
            ready: true,
        });
        let mut got = Vec::new();
        let mut would_block = 0;
        loop {
            match reader.next_nonempty_line() {
                Ok(Some(line)) => got.push(Ok((line.number, line.bytes.to_vec()))),
                Ok(None) => break,
                Err(LineError::TooLong { line }) => got.push(Err(line)),
                Err(LineError::Read(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    would_block += 1
                }
                Err(LineError::Read(e)) => panic!("{e}"),
            }
        }
        assert!(would_block >= 5);
        assert_eq!(
            got,
            vec![
                Ok((1, b"partial".to_vec())),
                Err(3),
                Ok((4, b"last".to_vec()))
            ]
        );
    }

    #[test]
    fn lines_split_across_reads() {
        /// Hands out its input a few bytes at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut reader = LineReader::new(Trickle(b"hello\r\n\nworld\n\r\nx"));
        let mut got = Vec::new();
        while let Some(line) = reader.next_nonempty_line().unwrap() {
            got.push((line.number, line.bytes.to_vec()));
        }
        assert_eq!(
            got,
            vec![
                (1, b"hello".to_vec()),
                (3, b"world".to_vec()),
                (5, b"x".to_vec())
            ]
        );
    }
}
