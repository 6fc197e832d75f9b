//! Splitting input into lines (or NUL-terminated records) with bounded
//! memory, and what to do with a line longer than a message can carry.

use std::io::{self, Read};

use msglog_core::MAX_PAYLOAD;
use msglog_std::retry_interrupted;

use crate::args::LongLines;

/// Bytes [`LineReader`] buffers: several maximal lines, so reads stay large.
const LINE_BUFFER: usize = 256 * 1024;

/// One input line, without its `\n` or `\r\n` (or its NUL), or one piece
/// of a line too long for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's number, from 1 (the pieces of a split line share it).
    pub number: u64,
    /// The line's bytes.
    pub bytes: &'a [u8],
    /// Whether bytes of the line were dropped after these (`--long-lines truncate`).
    pub truncated: bool,
}

/// Why [`LineReader::next_nonempty_line`] returned no line.
#[derive(Debug)]
pub enum LineError {
    /// The line is longer than a message can be (65535 bytes), and the
    /// policy is to fail. The reader skips it: the next call returns the
    /// line after it.
    TooLong {
        /// The line's number, from 1.
        line: u64,
    },
    /// Reading failed.
    Read(io::Error),
}

/// How records are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// `\n`, a `\r` before it removed too.
    Newline,
    /// NUL (`-z`), nothing removed.
    Nul,
}

/// Splits a byte stream into lines, holding at most a fixed buffer in
/// memory: a line longer than a message is failed, cut or split as the
/// policy says, never accumulated.
#[derive(Debug)]
pub struct LineReader<R> {
    reader: R,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    line: u64,
    eof: bool,
    delimiter: Delimiter,
    long_lines: LongLines,
    /// The rest of an over-long line is still to be skipped.
    skipping: bool,
    /// The next piece continues the current line (`--long-lines split`).
    continuing: bool,
}

impl<R: Read> LineReader<R> {
    /// Lines of `reader`, delimited by `delimiter`.
    pub fn new(reader: R, delimiter: Delimiter, long_lines: LongLines) -> Self {
        LineReader {
            reader,
            buffer: vec![0; LINE_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            line: 0,
            eof: false,
            delimiter,
            long_lines,
            skipping: false,
            continuing: false,
        }
    }

    /// Start over on the reader's next input (after it returned end of
    /// input once): line numbers from 1 again.
    pub fn next_input(&mut self) {
        self.start = 0;
        self.end = 0;
        self.line = 0;
        self.eof = false;
        self.skipping = false;
        self.continuing = false;
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
    #[cfg(test)]
    pub fn next_nonempty_line(&mut self) -> Result<Option<Line<'_>>, LineError> {
        let next = self.next_nonempty_piece()?;
        Ok(next.map(|piece| self.line_at(piece)))
    }

    /// Where the next line that is not empty is ([`line_at`](Self::line_at)
    /// gives it), or `None` at end of input. A last line without a line
    /// ending counts; `\r` is removed only before `\n`. A read error (e.g.
    /// `WouldBlock` from a reader that never blocks) leaves the reader as
    /// it was: call again once more input is there.
    pub fn next_nonempty_piece(&mut self) -> Result<Option<Piece>, LineError> {
        loop {
            match self.next_range()? {
                Some(Piece { len: 0, .. }) => continue,
                next => return Ok(next),
            }
        }
    }

    /// The line `piece` (from the last call) is.
    pub fn line_at(&self, piece: Piece) -> Line<'_> {
        Line {
            number: self.line,
            bytes: self
                .buffer
                .get(piece.start..piece.start + piece.len)
                .unwrap_or_default(),
            truncated: piece.truncated,
        }
    }

    fn separator(&self) -> u8 {
        match self.delimiter {
            Delimiter::Newline => b'\n',
            Delimiter::Nul => 0,
        }
    }

    /// Where the next line (or piece) is in the buffer.
    fn next_range(&mut self) -> Result<Option<Piece>, LineError> {
        if self.skipping {
            self.skip_line()?;
        }
        let separator = self.separator();
        // A `\r` may come before the `\n`: one byte more may be pending
        // before a line is known to be too long.
        let slack = usize::from(self.delimiter == Delimiter::Newline);
        let (start, len, complete) = loop {
            let pending = self.buffer.get(self.start..self.end).unwrap_or_default();
            if let Some(at) = pending.iter().position(|&b| b == separator) {
                let start = self.start;
                self.start += at + 1;
                let cr = self.delimiter == Delimiter::Newline
                    && at > 0
                    && pending.get(at - 1) == Some(&b'\r');
                break (start, at - usize::from(cr), true);
            }
            if pending.len() > MAX_PAYLOAD + slack {
                break (self.start, pending.len(), false);
            }
            if self.eof {
                if pending.is_empty() {
                    return Ok(None);
                }
                let start = self.start;
                self.start = self.end;
                break (start, pending.len(), true);
            }
            self.fill()?;
        };
        if !std::mem::take(&mut self.continuing) {
            self.line += 1;
        }
        if len <= MAX_PAYLOAD {
            return Ok(Some(Piece {
                start,
                len,
                truncated: false,
            }));
        }
        // Too long for one message.
        let bytes = self.buffer.get(start..start + len).unwrap_or_default();
        let cut = utf8_cut(bytes, MAX_PAYLOAD);
        match self.long_lines {
            LongLines::Fail => {
                if !complete {
                    self.start = self.end;
                    self.skipping = true;
                }
                Err(LineError::TooLong { line: self.line })
            }
            LongLines::Truncate => {
                if !complete {
                    self.start = self.end;
                    self.skipping = true;
                }
                Ok(Some(Piece {
                    start,
                    len: cut,
                    truncated: true,
                }))
            }
            LongLines::Split => {
                // The rest of the line, its ending included, is read again.
                self.start = start + cut;
                self.continuing = true;
                Ok(Some(Piece {
                    start,
                    len: cut,
                    truncated: false,
                }))
            }
        }
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
        match retry_interrupted(|| self.reader.read(free)) {
            Ok(0) => self.eof = true,
            Ok(n) => self.end += n.min(free.len()),
            Err(e) => return Err(LineError::Read(e)),
        }
        Ok(())
    }

    /// Discard input up to and including the next separator.
    fn skip_line(&mut self) -> Result<(), LineError> {
        let separator = self.separator();
        loop {
            let pending = self.buffer.get(self.start..self.end).unwrap_or_default();
            if let Some(at) = pending.iter().position(|&b| b == separator) {
                self.start += at + 1;
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

/// Where a line (or a piece of one) is in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    start: usize,
    len: usize,
    truncated: bool,
}

/// How many bytes of `bytes` (longer than `max`) to take: `max`, or fewer
/// so as not to cut a UTF-8 character in two. Bytes that are not UTF-8
/// are cut at `max`.
fn utf8_cut(bytes: &[u8], max: usize) -> usize {
    let is_continuation = |at: usize| bytes.get(at).is_some_and(|b| b & 0xC0 == 0x80);
    // The byte after the cut continues a character: back up to its start
    // (at most 3 bytes; further means it is not UTF-8).
    let mut cut = max;
    while cut > max.saturating_sub(3) && is_continuation(cut) {
        cut -= 1;
    }
    let lead = bytes.get(cut).copied().unwrap_or(0);
    let starts_a_sequence = lead & 0xC0 == 0xC0;
    if cut < max && starts_a_sequence {
        cut
    } else {
        max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Result<(u64, Vec<u8>), u64>> {
        let mut reader = LineReader::new(input, Delimiter::Newline, LongLines::Fail);
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
        let mut reader = LineReader::new(
            Stuttering {
                chunks,
                ready: true,
            },
            Delimiter::Newline,
            LongLines::Fail,
        );
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
        let mut reader = LineReader::new(
            Trickle(b"hello\r\n\nworld\n\r\nx"),
            Delimiter::Newline,
            LongLines::Fail,
        );
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

    /// A line or piece read: (number, bytes, truncated), or the number of a line too long.
    type Got = Result<(u64, Vec<u8>, bool), u64>;

    /// Every line or piece read from `input`.
    fn lines_with(input: &[u8], delimiter: Delimiter, long_lines: LongLines) -> Vec<Got> {
        let mut reader = LineReader::new(input, delimiter, long_lines);
        let mut out = Vec::new();
        loop {
            match reader.next_nonempty_line() {
                Ok(Some(line)) => out.push(Ok((line.number, line.bytes.to_vec(), line.truncated))),
                Ok(None) => return out,
                Err(LineError::TooLong { line }) => out.push(Err(line)),
                Err(LineError::Read(e)) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn nul_terminated_records_keep_every_other_byte() {
        assert_eq!(
            lines_with(b"a\r\nb\0\0c\n\0last", Delimiter::Nul, LongLines::Fail),
            vec![
                Ok((1, b"a\r\nb".to_vec(), false)),
                Ok((3, b"c\n".to_vec(), false)),
                Ok((4, b"last".to_vec(), false)),
            ]
        );
    }

    #[test]
    fn long_lines_are_truncated_or_split() {
        for (delimiter, ending) in [
            (Delimiter::Newline, &b"\r\n"[..]),
            (Delimiter::Newline, b"\n"),
            (Delimiter::Nul, b"\0"),
        ] {
            // Complete in the buffer, and far longer than it.
            for len in [MAX_PAYLOAD + 1, 2 * MAX_PAYLOAD + 7, 5 * LINE_BUFFER] {
                let long: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                let mut input = b"first".to_vec();
                input.extend_from_slice(ending);
                input.extend_from_slice(&long);
                input.extend_from_slice(ending);
                input.extend_from_slice(b"after");

                let truncated = lines_with(&input, delimiter, LongLines::Truncate);
                assert_eq!(
                    truncated,
                    vec![
                        Ok((1, b"first".to_vec(), false)),
                        Ok((2, long[..MAX_PAYLOAD].to_vec(), true)),
                        Ok((3, b"after".to_vec(), false)),
                    ],
                    "{len}"
                );

                let split = lines_with(&input, delimiter, LongLines::Split);
                let pieces: Vec<_> = long
                    .chunks(MAX_PAYLOAD)
                    .map(|piece| Ok((2, piece.to_vec(), false)))
                    .collect();
                assert_eq!(split.len(), pieces.len() + 2, "{len}");
                assert_eq!(split[0], Ok((1, b"first".to_vec(), false)));
                assert_eq!(split[1..=pieces.len()], pieces[..], "{len}");
                assert_eq!(split.last(), Some(&Ok((3, b"after".to_vec(), false))));

                assert_eq!(
                    lines_with(&input, delimiter, LongLines::Fail),
                    vec![
                        Ok((1, b"first".to_vec(), false)),
                        Err(2),
                        Ok((3, b"after".to_vec(), false))
                    ]
                );
            }
        }
    }

    #[test]
    fn cuts_fall_between_utf8_characters() {
        // 65534 ASCII bytes, then a 4-byte character straddling the limit.
        let mut line = vec![b'x'; MAX_PAYLOAD - 1];
        line.extend_from_slice("🦀".as_bytes());
        line.extend_from_slice("é".as_bytes());
        line.push(b'\n');
        let split = lines_with(&line, Delimiter::Newline, LongLines::Split);
        assert_eq!(
            split,
            vec![
                Ok((1, vec![b'x'; MAX_PAYLOAD - 1], false)),
                Ok((1, "🦀é".as_bytes().to_vec(), false)),
            ]
        );
        let truncated = lines_with(&line, Delimiter::Newline, LongLines::Truncate);
        assert_eq!(truncated, vec![Ok((1, vec![b'x'; MAX_PAYLOAD - 1], true))]);
        // Not UTF-8: cut at the limit.
        let mut binary = vec![0x80u8; MAX_PAYLOAD + 2];
        binary.push(b'\n');
        let split = lines_with(&binary, Delimiter::Newline, LongLines::Split);
        assert_eq!(split[0], Ok((1, vec![0x80; MAX_PAYLOAD], false)));
        assert_eq!(split[1], Ok((1, vec![0x80; 2], false)));
        assert_eq!(utf8_cut("aé".as_bytes(), 2), 1);
        assert_eq!(utf8_cut("aé".as_bytes(), 1), 1);
        assert_eq!(utf8_cut(b"abc", 2), 2);
    }
}
