//! Reading `messages.log` back: every line must parse as a record
//! (`[name]: escaped\r\n`, the escaping of PROTOCOL.md, re-encoding to the
//! same bytes), and messages are found by their unique bodies.

use std::collections::HashMap;

/// A parsed message log.
#[derive(Debug, Default)]
pub struct Log {
    /// Whole records by message body: (name, times found).
    pub bodies: HashMap<Vec<u8>, (String, u32)>,
    pub records: usize,
    /// Lines that are not records.
    pub bad_lines: usize,
    /// The first few of them, with why.
    pub bad: Vec<String>,
    /// Bytes after the last `\r\n` (a torn record).
    pub torn_tail: usize,
}

impl Log {
    pub fn parse(bytes: &[u8]) -> Log {
        let mut log = Log::default();
        let mut rest = bytes;
        while let Some(end) = find_crlf(rest) {
            let line = &rest[..end];
            rest = &rest[end + 2..];
            match parse_record(line) {
                Ok((name, body)) => {
                    log.records += 1;
                    let entry = log.bodies.entry(body).or_insert((name, 0));
                    entry.1 += 1;
                }
                Err(why) => {
                    log.bad_lines += 1;
                    if log.bad.len() < 5 {
                        log.bad
                            .push(format!("{why}: {:?}", String::from_utf8_lossy(line)));
                    }
                }
            }
        }
        log.torn_tail = rest.len();
        log
    }

    /// Times `body` was logged by `name` (a record of another name counts as a failure).
    pub fn count(&self, name: &str, body: &[u8]) -> u32 {
        match self.bodies.get(body) {
            Some((logged_name, count)) => {
                assert_eq!(
                    logged_name,
                    name,
                    "record of {:?} under the wrong name",
                    String::from_utf8_lossy(body)
                );
                *count
            }
            None => 0,
        }
    }

    /// Panic unless every line is a record; a torn tail is reported, not accepted, unless `allow_torn_tail`.
    pub fn assert_well_formed(&self, what: &str, allow_torn_tail: bool) {
        assert_eq!(
            self.bad_lines, 0,
            "{what}: lines that are not records, e.g. {:?}",
            self.bad
        );
        if !allow_torn_tail {
            assert_eq!(
                self.torn_tail, 0,
                "{what}: a torn record of {} bytes at the end",
                self.torn_tail
            );
        }
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

/// `[name]: escaped` (without the `\r\n`) into the name and the message bytes.
pub fn parse_record(line: &[u8]) -> Result<(String, Vec<u8>), String> {
    let text = std::str::from_utf8(line)
        .map_err(|_| "not UTF-8 (raw bytes must be escaped)".to_string())?;
    let rest = text.strip_prefix('[').ok_or("no '[' at the start")?;
    let close = rest.find("]: ").ok_or("no ']: ' after the name")?;
    let name = &rest[..close];
    if name.is_empty() || msglog_core::valid_name(name.as_bytes()).is_none() {
        return Err(format!("invalid name {name:?}"));
    }
    let escaped = &rest[close + 3..];
    let message = unescape(escaped)?;
    if message.is_empty() {
        return Err("empty message".into());
    }
    // The record must be exactly what the core writes for this name and message.
    let mut again = Vec::with_capacity(line.len() + 2);
    let _ = msglog_core::write_record(&mut again, name, &message);
    if again.strip_suffix(b"\r\n") != Some(line) {
        return Err("does not re-encode to the same bytes".into());
    }
    Ok((name.to_owned(), message))
}

fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x20 || b == 0x7f {
            return Err(format!("raw control byte 0x{b:02x}"));
        }
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex = bytes.get(i + 2..i + 4).ok_or("truncated \\x escape")?;
                let hex = std::str::from_utf8(hex).map_err(|_| "bad \\x escape")?;
                if hex.bytes().any(|c| c.is_ascii_uppercase()) {
                    return Err("upper-case \\x escape".into());
                }
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad \\x escape")?);
                i += 2;
            }
            _ => return Err("unknown escape".into()),
        }
        i += 2;
    }
    Ok(out)
}

#[test]
fn records_parse_and_reencode() {
    let mut log = Vec::new();
    let _ = msglog_core::write_record(&mut log, "n", b"a\\b\r\n\t\x00\xff\xc3\xa9 ok");
    log.extend_from_slice(b"[bad: x\r\n[n]: torn");
    let parsed = Log::parse(&log);
    assert_eq!(parsed.records, 1);
    assert_eq!(parsed.count("n", b"a\\b\r\n\t\x00\xff\xc3\xa9 ok"), 1);
    assert_eq!(parsed.bad_lines, 1);
    assert_eq!(parsed.torn_tail, 9);
    assert!(parse_record(b"[n]: \\X41").is_err());
    assert!(parse_record(b"[n]: \\x4").is_err());
}
