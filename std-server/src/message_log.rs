//! `messages.log`: the single writer of message records, with whole-batch
//! writes, truncation of torn batches, and group commit for `--fsync`.
//!
//! Every event-loop thread hands its iteration's records over as one batch;
//! the writer lock makes each batch one `write(2)` at the end of the file,
//! so records never interleave. In fsync mode, one `fdatasync` covers every
//! batch written before it started: a thread that finds a sync in progress
//! waits for it and syncs again only if its own batch is not covered.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Why a batch was not (durably) written; none of its messages may be acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// `write(2)` failed (disk full, file size limit, I/O error); the file was
    /// truncated back to the end of the last whole record.
    #[error("writing {path} failed: {source}")]
    Write { path: PathBuf, source: io::Error },
    /// The records were written but `fdatasync` failed, so they may not be on disk.
    #[error("syncing {path} failed: {source}")]
    Sync { path: PathBuf, source: io::Error },
}

/// Open (creating with mode 0644) a log file for appending.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)
}

/// Write all of `bytes`, continuing short writes; on failure also report how
/// many bytes did reach the file.
pub fn write_counting(mut file: &File, mut bytes: &[u8]) -> Result<(), (io::Error, u64)> {
    let mut written = 0u64;
    while !bytes.is_empty() {
        match file.write(bytes) {
            Ok(0) => return Err((io::ErrorKind::WriteZero.into(), written)),
            Ok(n) => {
                written += n as u64;
                bytes = &bytes[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, written)),
        }
    }
    Ok(())
}

/// Remove the last `partial` bytes of `file` (the torn tail of a failed batch).
pub fn truncate_tail(file: &File, partial: u64) -> io::Result<()> {
    if partial == 0 {
        return Ok(());
    }
    let len = file.metadata()?.len();
    file.set_len(len.saturating_sub(partial))
}

/// Longest record: `[`, a 255-byte name, `]: `, 65535 bytes escaped to 4 each, `\r\n`.
pub const MAX_RECORD: u64 = 1 + 255 + 3 + 4 * 65_535 + 2;

/// Remove an unfinished last line left by a crash (a `write(2)` cut short
/// by SIGKILL, or a tail lost with the power), so that the next line does
/// not continue it. A line is unfinished if it lacks `terminator`; one
/// longer than `max_line` cannot be ours and is left alone. Returns the
/// bytes removed. `file` is the append handle of `path`.
pub fn remove_torn_tail(
    path: &Path,
    file: &File,
    terminator: &[u8],
    max_line: u64,
) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let window = len.min(max_line + terminator.len() as u64);
    let mut tail = vec![0; window as usize];
    File::open(path)?.read_exact_at(&mut tail, len - window)?;
    if tail.is_empty() || tail.ends_with(terminator) {
        return Ok(0);
    }
    let keep = match tail
        .windows(terminator.len())
        .rposition(|w| w == terminator)
    {
        Some(end) => len - window + (end + terminator.len()) as u64,
        None if window == len => 0,
        None => {
            warning!(
                "{}: does not end with a whole line, and its last line is too long to be one of ours: left as it is",
                path.display()
            );
            return Ok(0);
        }
    };
    file.set_len(keep)?;
    warning!(
        "{}: removed an unfinished last line of {} bytes, left by a crash",
        path.display(),
        len - keep
    );
    Ok(len - keep)
}

/// The message log shared by all event-loop threads.
#[derive(Debug)]
pub struct MessageLog {
    path: PathBuf,
    fsync: bool,
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// Failed fdatasync calls so far; read under the writer lock (see `append`).
    sync_failures: AtomicU64,
}

#[derive(Debug)]
struct Writer {
    file: Arc<File>,
    /// Records written since start: the sequence number of the last one.
    records: u64,
}

#[derive(Debug, Default)]
struct SyncState {
    syncing: bool,
    /// Every record up to this sequence number is on disk.
    synced: u64,
    /// Highest sequence number a failed sync was meant to cover.
    failed_through: u64,
    syncs: u64,
    synced_records: u64,
}

/// Group-commit figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncStats {
    /// fdatasync calls.
    pub syncs: u64,
    /// Records those calls made durable.
    pub records: u64,
}

impl SyncStats {
    /// Mean records per fdatasync.
    pub fn mean_batch(&self) -> f64 {
        if self.syncs == 0 {
            0.0
        } else {
            self.records as f64 / self.syncs as f64
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not stop the logging of everyone else.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MessageLog {
    /// Open (or create) the log at `path`.
    pub fn open(path: PathBuf, fsync: bool) -> io::Result<MessageLog> {
        let file = open_append(&path)?;
        remove_torn_tail(&path, &file, b"\r\n", MAX_RECORD)?;
        Ok(MessageLog {
            path,
            fsync,
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                records: 0,
            }),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            sync_failures: AtomicU64::new(0),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append a batch of `records` whole records with one write; in fsync
    /// mode, return only once they are on disk. On error nothing of the
    /// batch may be acknowledged, and no torn record is left behind.
    pub fn append(&self, batch: &[u8], records: u64) -> Result<(), AppendError> {
        let (sequence, failures_before) = {
            let mut writer = lock(&self.writer);
            if let Err((source, partial)) = write_counting(&writer.file, batch) {
                if let Err(e) = truncate_tail(&writer.file, partial) {
                    error!(
                        "{}: cannot remove the {partial} bytes of a failed write: {e}",
                        self.path.display()
                    );
                }
                return Err(AppendError::Write {
                    path: self.path.clone(),
                    source,
                });
            }
            writer.records += records;
            // Read while holding the writer lock: any sync that can cover this
            // batch snapshots its target under the same lock, later, so a
            // failure of that sync is counted after this read.
            (writer.records, self.sync_failures.load(Ordering::Acquire))
        };
        if self.fsync {
            self.wait_synced(sequence, failures_before)
        } else {
            Ok(())
        }
    }

    fn wait_synced(&self, sequence: u64, failures_before: u64) -> Result<(), AppendError> {
        let mut state = lock(&self.sync);
        loop {
            // Failure first: after a failed fdatasync a later one may succeed
            // without the lost pages being on disk.
            if self.sync_failures.load(Ordering::Acquire) > failures_before
                && state.failed_through >= sequence
            {
                return Err(AppendError::Sync {
                    path: self.path.clone(),
                    source: io::Error::other("an fdatasync covering these records failed"),
                });
            }
            if state.synced >= sequence {
                return Ok(());
            }
            if state.syncing {
                state = self
                    .synced
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.syncing = true;
            drop(state);
            let (target, file) = {
                let writer = lock(&self.writer);
                (writer.records, Arc::clone(&writer.file))
            };
            let result = file.sync_data();
            state = lock(&self.sync);
            state.syncing = false;
            match result {
                Ok(()) => {
                    state.syncs += 1;
                    state.synced_records += target.saturating_sub(state.synced);
                    state.synced = state.synced.max(target);
                }
                Err(e) => {
                    error!("{}: fdatasync failed: {e}", self.path.display());
                    state.failed_through = state.failed_through.max(target);
                    self.sync_failures.fetch_add(1, Ordering::AcqRel);
                }
            }
            self.synced.notify_all();
        }
    }

    /// Reopen the file at its path (after logrotate moved it). In fsync mode
    /// the old file is synced first, so no acknowledged record is left behind.
    pub fn reopen(&self) -> io::Result<()> {
        let file = open_append(&self.path)?;
        let mut writer = lock(&self.writer);
        if self.fsync {
            writer.file.sync_data()?;
        }
        writer.file = Arc::new(file);
        Ok(())
    }

    /// Flush to disk (at shutdown).
    pub fn sync(&self) -> io::Result<()> {
        let file = Arc::clone(&lock(&self.writer).file);
        file.sync_data()
    }

    /// Group-commit figures so far.
    pub fn sync_stats(&self) -> SyncStats {
        let state = lock(&self.sync);
        SyncStats {
            syncs: state.syncs,
            records: state.synced_records,
        }
    }

    /// Whether acknowledgements wait for fdatasync.
    pub fn fsync(&self) -> bool {
        self.fsync
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_append_and_group_commit_counts() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(MessageLog::open(dir.path().join("messages.log"), true).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let record = format!("[t{t}]: {i}\r\n");
                        log.append(record.as_bytes(), 1).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), 200);
        let stats = log.sync_stats();
        assert_eq!(stats.records, 200);
        assert!(stats.syncs >= 1 && stats.syncs <= 200);
    }

    #[test]
    fn open_removes_a_record_torn_by_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        for (before, after) in [
            (&b""[..], &b""[..]),
            (b"[a]: 1\r\n", b"[a]: 1\r\n"),
            (b"[a]: 1\r\n[a]: 2\r", b"[a]: 1\r\n"),
            (b"[a]: 1\r\n[a", b"[a]: 1\r\n"),
            (b"[a]: tor", b""),
        ] {
            std::fs::write(&path, before).unwrap();
            let log = MessageLog::open(path.clone(), false).unwrap();
            log.append(b"[b]: next\r\n", 1).unwrap();
            assert_eq!(
                std::fs::read(&path).unwrap(),
                [after, b"[b]: next\r\n"].concat()
            );
        }
    }

    #[test]
    fn reopen_follows_a_renamed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        let log = MessageLog::open(path.clone(), false).unwrap();
        log.append(b"[a]: 1\r\n", 1).unwrap();
        std::fs::rename(&path, dir.path().join("messages.log.1")).unwrap();
        log.reopen().unwrap();
        log.append(b"[a]: 2\r\n", 1).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"[a]: 2\r\n");
        assert_eq!(
            std::fs::read(dir.path().join("messages.log.1")).unwrap(),
            b"[a]: 1\r\n"
        );
    }
}
