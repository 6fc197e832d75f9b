//! What both logs do with their files: open for appending, write counting
//! what reached the file, take back the bytes of a failed write, and at
//! start-up move an unfinished last line (a record torn by a crash) to a
//! side file instead of deleting it.
//!
//! A line is complete when it ends in `\n`, whatever precedes it (an
//! operator's `echo note >> messages.log` is a line). Only the bytes after
//! the last `\n` can be a torn write of ours; they are appended to
//! `<log>.torn`, that file is synced, and only then is the log truncated.
//! A crash in between leaves the tail in both: the next start moves it
//! again, so the side file may hold an entry twice, but no byte is lost.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use msglog_std::retry_interrupted;

use crate::platform::{create_mode, read_exact_at, sync_dir};

/// Bytes read at once while looking for the last `\n` or copying a tail.
const CHUNK: usize = 64 * 1024;

/// Open (creating with `mode`, less the umask) a log file for appending;
/// readable too, for the start-up repair.
pub(crate) fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    create_mode(
        OpenOptions::new().read(true).create(true).append(true),
        mode,
    )
    .open(path)
}

/// Write all of `bytes`, continuing short writes; on failure also report how
/// many bytes did reach the file.
pub(crate) fn write_counting(mut file: &File, mut bytes: &[u8]) -> Result<(), (io::Error, u64)> {
    let mut written = 0u64;
    while !bytes.is_empty() {
        match retry_interrupted(|| file.write(bytes)) {
            Ok(0) => return Err((io::ErrorKind::WriteZero.into(), written)),
            Ok(n) => {
                written += n as u64;
                bytes = &bytes[n..];
            }
            Err(e) => return Err((e, written)),
        }
    }
    Ok(())
}

/// Remove the last `written` bytes this handle appended (a failed or
/// rolled-back write). They must still be the file's end: if another
/// process appended after them, nothing is cut and an error says so.
pub(crate) fn truncate_tail(mut file: &File, written: u64) -> io::Result<()> {
    if written == 0 {
        return Ok(());
    }
    // After an append the position is the end of what it wrote (Windows too).
    let end = file.stream_position()?;
    let len = file.metadata()?.len();
    if len != end || end < written {
        return Err(io::Error::other(format!(
            "the file is {len} bytes, not the {end} our write ended at: another process wrote to it, so nothing was cut"
        )));
    }
    file.set_len(end - written)
}

/// The side file of a log: `messages.log` -> `messages.log.torn`.
pub(crate) fn side_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".torn");
    PathBuf::from(name)
}

/// Why a log could not be opened and repaired at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogOpenError {
    /// The log itself could not be opened, read or truncated.
    #[error("{action} {path}: {source}")]
    Log {
        /// What failed (`cannot open`, `cannot read`, ...).
        action: &'static str,
        /// The log.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The unfinished last line could not be saved in the side file; the
    /// log was not changed.
    #[error(
        "{log}: cannot move its unfinished last line ({len} bytes at offset {offset}) to {side}: {source}; nothing was changed"
    )]
    SideFile {
        /// The log.
        log: PathBuf,
        /// Its side file.
        side: PathBuf,
        /// Where the unfinished last line starts.
        offset: u64,
        /// Its length.
        len: u64,
        /// What the system said.
        source: io::Error,
    },
}

/// An unfinished last line that was moved to the side file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moved {
    pub offset: u64,
    pub len: u64,
    pub side: PathBuf,
    /// The RFC 3339 timestamp of the side file's entry.
    pub at: String,
}

/// Move the bytes after the last `\n` of the log at `path` (open as `file`,
/// from [`open_append`]) to its side file, created with `side_mode`; see
/// the module comment. `None` if the log ends in `\n` or is empty.
pub(crate) fn move_torn_tail(
    path: &Path,
    file: &File,
    side_mode: u32,
) -> Result<Option<Moved>, LogOpenError> {
    let log_error = |action, source| LogOpenError::Log {
        path: path.to_owned(),
        action,
        source,
    };
    let len = file
        .metadata()
        .map_err(|e| log_error("cannot read", e))?
        .len();
    let keep = after_last_newline(file, len).map_err(|e| log_error("cannot read", e))?;
    if keep == len {
        return Ok(None);
    }
    let side = side_path(path);
    let at = String::from_utf8_lossy(&crate::timestamp::format_millis(now_millis())).into_owned();
    let header = format!(
        "# {at} moved from {} offset={keep} len={}\n",
        path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned()
        ),
        len - keep
    );
    save_entry(file, keep, len, &side, side_mode, header.as_bytes()).map_err(|source| {
        LogOpenError::SideFile {
            log: path.to_owned(),
            side: side.clone(),
            offset: keep,
            len: len - keep,
            source,
        }
    })?;
    file.set_len(keep)
        .and_then(|()| file.sync_data())
        .map_err(|e| {
            log_error(
                "saved the unfinished last line in its side file, but cannot truncate",
                e,
            )
        })?;
    Ok(Some(Moved {
        offset: keep,
        len: len - keep,
        side,
        at,
    }))
}

/// The offset just after the last `\n` of the first `len` bytes (0 if none).
pub(crate) fn after_last_newline(file: &File, len: u64) -> io::Result<u64> {
    let mut chunk = vec![0u8; CHUNK];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let part = &mut chunk[..(end - start) as usize];
        read_exact_at(file, part, start)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Append one entry (`header`, the log's bytes `from..to`, `\n`) to the side
/// file and sync it; on failure, undo what was appended (best effort).
fn save_entry(
    log: &File,
    from: u64,
    to: u64,
    side: &Path,
    mode: u32,
    header: &[u8],
) -> io::Result<()> {
    let existed = match side.symlink_metadata() {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let out = create_mode(OpenOptions::new().create(true).append(true), mode).open(side)?;
    let before = out.metadata()?;
    let result = copy_entry(log, from, to, &out, header).and_then(|()| {
        out.sync_data()?;
        if !existed {
            // The new file's name must be as durable as the truncation that follows.
            sync_parent(side)?;
        }
        Ok(())
    });
    if result.is_err() {
        if !existed {
            let _ = std::fs::remove_file(side);
        } else if before.is_file() {
            let _ = out.set_len(before.len());
        }
    }
    result
}

fn copy_entry(log: &File, from: u64, to: u64, out: &File, header: &[u8]) -> io::Result<()> {
    let write = |bytes: &[u8]| write_counting(out, bytes).map_err(|(e, _)| e);
    write(header)?;
    let mut chunk = vec![0u8; CHUNK];
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK as u64) as usize;
        read_exact_at(log, &mut chunk[..n], at)?;
        write(&chunk[..n])?;
        at += n as u64;
    }
    write(b"\n")
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sync_dir(parent)
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the repair on a file holding `content`; (log after, side file after).
    fn repair(content: &[u8]) -> (Vec<u8>, Option<Vec<u8>>, Option<Moved>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        std::fs::write(&path, content).unwrap();
        let file = open_append(&path, 0o644).unwrap();
        let moved = move_torn_tail(&path, &file, 0o644).unwrap();
        (
            std::fs::read(&path).unwrap(),
            std::fs::read(side_path(&path)).ok(),
            moved,
        )
    }

    /// The side file's entries: (header, raw bytes).
    fn entries(side: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut rest = side;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let end = rest.iter().position(|&b| b == b'\n').unwrap();
            let header = String::from_utf8(rest[..end].to_vec()).unwrap();
            let len: usize = header.rsplit_once("len=").unwrap().1.parse().unwrap();
            let bytes = rest[end + 1..end + 1 + len].to_vec();
            assert_eq!(rest[end + 1 + len], b'\n');
            rest = &rest[end + 2 + len..];
            out.push((header, bytes));
        }
        out
    }

    /// An operator reads a log, or moves it aside for rotation, while the
    /// server has it open: on Windows this needs the share modes std opens
    /// files with (read, write and delete), which nothing here may narrow.
    #[test]
    fn an_open_log_can_be_read_and_moved_aside_by_an_operator() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        let file = open_append(&path, 0o640).unwrap();
        write_counting(&file, b"[a]: one\r\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"[a]: one\r\n");
        let moved = dir.path().join("messages.log.1");
        std::fs::rename(&path, &moved).unwrap();
        write_counting(&file, b"[a]: two\r\n").unwrap();
        assert_eq!(std::fs::read(&moved).unwrap(), b"[a]: one\r\n[a]: two\r\n");
    }

    #[test]
    fn complete_lines_are_never_touched() {
        for content in [
            &b""[..],
            b"[a]: 1\r\n",
            b"lf only\n",
            b"[a]: 1\r\nnote\n",
            b"\n",
            b"\xff\xfe not utf-8\n",
        ] {
            let (log, side, moved) = repair(content);
            assert_eq!(log, content);
            assert_eq!(side, None);
            assert_eq!(moved, None);
        }
    }

    #[test]
    fn the_bytes_after_the_last_newline_move_to_the_side_file() {
        for (content, kept, tail) in [
            (
                &b"[a]: 1\r\n[a]: 2\r"[..],
                &b"[a]: 1\r\n"[..],
                &b"[a]: 2\r"[..],
            ),
            (b"[a]: 1\r\n[a", b"[a]: 1\r\n", b"[a"),
            (b"[a]: tor", b"", b"[a]: tor"),
            (
                b"line\nnote without newline",
                b"line\n",
                b"note without newline",
            ),
            (b"\r", b"", b"\r"),
            (b"a\nb\xff\x00\n\r", b"a\nb\xff\x00\n", b"\r"),
        ] {
            let (log, side, moved) = repair(content);
            assert_eq!(log, kept);
            let moved = moved.unwrap();
            assert_eq!(
                (moved.offset, moved.len),
                (kept.len() as u64, tail.len() as u64)
            );
            let entries = entries(&side.unwrap());
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].1, tail);
            assert_eq!(
                entries[0].0,
                format!(
                    "# {} moved from messages.log offset={} len={}",
                    moved.at,
                    kept.len(),
                    tail.len()
                )
            );
        }
    }

    #[test]
    fn a_tail_longer_than_a_chunk_moves_whole_and_entries_accumulate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transactions.log");
        // Odd bytes only: no `\n` (0x0A) among them.
        let big: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8 | 1).collect();
        std::fs::write(&path, [&b"kept\n"[..], &big].concat()).unwrap();
        let file = open_append(&path, 0o640).unwrap();
        move_torn_tail(&path, &file, 0o640).unwrap().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"kept\n");
        // A second torn tail is appended as a second entry.
        crate::platform::write_all_at(&file, b"again", 5).unwrap();
        move_torn_tail(&path, &file, 0o640).unwrap().unwrap();
        let side = std::fs::read(side_path(&path)).unwrap();
        let entries = entries(&side);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].1, big);
        assert_eq!(entries[1].1, b"again");
        assert!(entries[1]
            .0
            .contains("moved from transactions.log offset=5 len=5"));
    }

    #[test]
    fn a_side_file_that_cannot_be_written_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        std::fs::write(&path, b"[a]: 1\r\n[a]: tor").unwrap();
        std::fs::create_dir(side_path(&path)).unwrap();
        let file = open_append(&path, 0o644).unwrap();
        let error = move_torn_tail(&path, &file, 0o644).unwrap_err();
        assert!(
            matches!(
                error,
                LogOpenError::SideFile {
                    offset: 8,
                    len: 8,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"[a]: 1\r\n[a]: tor");
        assert!(side_path(&path).is_dir());
    }

    #[test]
    fn truncate_tail_removes_only_its_own_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let file = open_append(&path, 0o644).unwrap();
        write_counting(&file, b"one\n").unwrap();
        write_counting(&file, b"two\n").unwrap();
        truncate_tail(&file, 4).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        write_counting(&file, b"three\n").unwrap();
        // Someone else appends after our write: we cut nothing.
        let mut other = OpenOptions::new().append(true).open(&path).unwrap();
        other.write_all(b"theirs\n").unwrap();
        assert!(truncate_tail(&file, 6).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"one\nthree\ntheirs\n");
    }
}
