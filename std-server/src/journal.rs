//! The two logs as one journal: every event-loop iteration commits its
//! message records (`messages.log`) and its audit lines (`transactions.log`)
//! together, so that no status byte 0x00 leaves without both.
//!
//! One writer lock covers both files. A commit writes the records with one
//! `write(2)`, then the lines with one `write(2)`; if the lines fail, the
//! records are taken back out of `messages.log` too, so nothing of the
//! commit remains and a client's retry cannot make a duplicate. In fsync
//! mode one group commit covers both files: a thread that finds a sync in
//! progress waits for it and syncs again only if its own commit is not
//! covered.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::log_file::{move_torn_tail, open_append, truncate_tail, write_counting, LogOpenError};
use crate::rate_limit::RateLimit;

/// `messages.log` is for everyone who may read the messages.
pub(crate) const MESSAGES_MODE: u32 = 0o644;
/// `transactions.log` is an audit log (peer addresses, names, failed logins).
pub(crate) const TRANSACTIONS_MODE: u32 = 0o640;

/// Why a commit was not (durably) written; none of its 0x00 may leave.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitError {
    /// The records' `write(2)` failed (disk full, file size limit, I/O
    /// error); what it wrote was removed again, and no line was written.
    #[error("writing {path} failed: {source}")]
    Records { path: PathBuf, source: io::Error },
    /// The lines' `write(2)` failed; what it wrote and the records were
    /// removed again.
    #[error("writing {path} failed: {source}")]
    Lines { path: PathBuf, source: io::Error },
    /// Both writes succeeded but an `fdatasync` covering them failed, so
    /// they may not be on disk; they stay in the files.
    #[error("syncing the logs failed: {source}")]
    Sync { source: io::Error },
}

/// `messages.log` and `transactions.log`, shared by all threads.
#[derive(Debug)]
pub(crate) struct Journal {
    messages_path: PathBuf,
    transactions_path: PathBuf,
    fsync: bool,
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// Failed fdatasync calls so far; read under the writer lock (see `commit`).
    sync_failures: AtomicU64,
}

#[derive(Debug)]
struct Writer {
    /// `None` when records go elsewhere (the NATS sink without a local copy).
    messages: Option<Arc<File>>,
    transactions: Arc<File>,
    /// Commits so far: the sequence number of the last one.
    commits: u64,
    /// Records written so far.
    records: u64,
    /// Lines that answer nothing and could not be written.
    lost_lines: RateLimit,
}

#[derive(Debug, Default)]
struct SyncState {
    syncing: bool,
    /// Every commit up to this sequence number is on disk.
    synced: u64,
    /// Records on disk (of `Writer::records`).
    synced_records: u64,
    /// Highest sequence number a failed sync was meant to cover.
    failed_through: u64,
    syncs: u64,
    /// Group commits by records made durable, per [`BATCH_BOUNDS`] bucket.
    batches: [u64; BATCH_BOUNDS.len() + 1],
    /// Time spent in fdatasync.
    sync_seconds: f64,
}

/// Upper bounds of the group-commit size buckets, in records (the last
/// bucket is `+Inf`).
pub(crate) const BATCH_BOUNDS: [f64; 12] = [
    0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Group-commit figures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SyncStats {
    /// Group commits (an fdatasync of each file written since the last one).
    pub syncs: u64,
    /// Records those made durable.
    pub records: u64,
    /// Group commits per number of records (see [`BATCH_BOUNDS`]).
    pub batches: [u64; BATCH_BOUNDS.len() + 1],
    /// Time spent in fdatasync.
    pub sync_seconds: f64,
}

impl SyncStats {
    /// Mean records per group commit.
    pub(crate) fn mean_batch(&self) -> f64 {
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

/// Open a log, moving an unfinished last line to its side file (with a warning).
fn open_log(path: &Path, mode: u32) -> Result<File, LogOpenError> {
    let file = open_append(path, mode).map_err(|source| LogOpenError::Log {
        action: "cannot open",
        path: path.to_owned(),
        source,
    })?;
    if let Some(moved) = move_torn_tail(path, &file, mode)? {
        warning!(
            "{}: its last {} bytes (from offset {}) did not end with a newline, so they may be a record torn by a crash: moved to {} (entry of {})",
            path.display(),
            moved.len,
            moved.offset,
            moved.side.display(),
            moved.at
        );
    }
    Ok(file)
}

/// Take back the `written` bytes of a failed or rolled-back write.
fn undo(file: &File, written: u64, path: &Path) {
    if let Err(e) = truncate_tail(file, written) {
        error!(
            "{}: cannot remove the {written} bytes of a failed write: {e}",
            path.display()
        );
    }
}

impl Journal {
    /// Open (or create) both logs in `dir`, repairing a torn last line of
    /// each. The caller holds the directory's lock.
    #[cfg(test)]
    pub(crate) fn open(dir: &Path, fsync: bool) -> Result<Journal, LogOpenError> {
        Journal::open_with(dir, fsync, true)
    }

    /// As [`open`](Self::open); without `messages`, `messages.log` is
    /// neither opened nor created, and commits carry no records.
    pub(crate) fn open_with(
        dir: &Path,
        fsync: bool,
        messages: bool,
    ) -> Result<Journal, LogOpenError> {
        let messages_path = dir.join("messages.log");
        let transactions_path = dir.join("transactions.log");
        let messages = if messages {
            Some(Arc::new(open_log(&messages_path, MESSAGES_MODE)?))
        } else {
            None
        };
        let transactions = open_log(&transactions_path, TRANSACTIONS_MODE)?;
        Ok(Journal {
            messages_path,
            transactions_path,
            fsync,
            writer: Mutex::new(Writer {
                messages,
                transactions: Arc::new(transactions),
                commits: 0,
                records: 0,
                lost_lines: RateLimit::new(Duration::from_secs(10)),
            }),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            sync_failures: AtomicU64::new(0),
        })
    }

    /// `messages.log`, if this journal writes it.
    pub(crate) fn messages_path(&self) -> Option<&Path> {
        let writer = lock(&self.writer);
        writer
            .messages
            .as_ref()
            .map(|_| self.messages_path.as_path())
    }

    pub(crate) fn transactions_path(&self) -> &Path {
        &self.transactions_path
    }

    /// Whether acknowledgements wait for fdatasync.
    pub(crate) fn fsync(&self) -> bool {
        self.fsync
    }

    /// Append `records` (`count` whole records) and `lines` (whole lines),
    /// each with one write. On error neither remains. With `durable` in
    /// fsync mode, return only once both are on disk.
    pub(crate) fn commit(
        &self,
        records: &[u8],
        count: u64,
        lines: &[u8],
        durable: bool,
    ) -> Result<(), CommitError> {
        let (sequence, failures_before) = {
            let mut writer = lock(&self.writer);
            let messages = writer.messages.clone();
            let written = match &messages {
                Some(messages) => write_counting(messages, records).map_err(|(source, partial)| {
                    undo(messages, partial, &self.messages_path);
                    source
                }),
                None if records.is_empty() => Ok(()),
                None => Err(io::Error::other("messages.log is not kept")),
            };
            if let Err(source) = written {
                return Err(CommitError::Records {
                    path: self.messages_path.clone(),
                    source,
                });
            }
            if let Err((source, partial)) = write_counting(&writer.transactions, lines) {
                undo(&writer.transactions, partial, &self.transactions_path);
                if let Some(messages) = &messages {
                    undo(messages, records.len() as u64, &self.messages_path);
                }
                return Err(CommitError::Lines {
                    path: self.transactions_path.clone(),
                    source,
                });
            }
            writer.commits += 1;
            writer.records += count;
            // Read while holding the writer lock: any sync that can cover this
            // commit snapshots its target under the same lock, later, so a
            // failure of that sync is counted after this read.
            (writer.commits, self.sync_failures.load(Ordering::Acquire))
        };
        if self.fsync && durable {
            self.wait_synced(sequence, failures_before)
        } else {
            Ok(())
        }
    }

    /// Append lines that answer nothing (or describe a failure), best
    /// effort: on failure they are removed whole and counted on stderr
    /// (rate-limited); the service goes on.
    pub(crate) fn append_lines(&self, lines: &[u8]) {
        if lines.is_empty() {
            return;
        }
        let mut writer = lock(&self.writer);
        if let Err((e, partial)) = write_counting(&writer.transactions, lines) {
            undo(&writer.transactions, partial, &self.transactions_path);
            let lost = lines.iter().filter(|&&b| b == b'\n').count();
            if let Some(suppressed) = writer.lost_lines.admit(Instant::now()) {
                error!(
                    "writing {} failed: {e} ({lost} lines lost; {suppressed} similar errors not shown)",
                    self.transactions_path.display()
                );
            }
        }
    }

    fn wait_synced(&self, sequence: u64, failures_before: u64) -> Result<(), CommitError> {
        let mut state = lock(&self.sync);
        loop {
            // ServerError first: after a failed fdatasync a later one may succeed
            // without the lost pages being on disk.
            if self.sync_failures.load(Ordering::Acquire) > failures_before
                && state.failed_through >= sequence
            {
                return Err(CommitError::Sync {
                    source: io::Error::other("an fdatasync covering this commit failed"),
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
            let records_before = state.synced_records;
            drop(state);
            let (target, records, messages, transactions) = {
                let writer = lock(&self.writer);
                (
                    writer.commits,
                    writer.records,
                    writer.messages.clone(),
                    Arc::clone(&writer.transactions),
                )
            };
            // messages.log only if records were written since the last sync.
            // The two files' fdatasyncs run at once: one after the other
            // they took twice as long, halving --fsync's throughput.
            let started = Instant::now();
            let messages = messages.filter(|_| records > records_before);
            let (messages_synced, transactions_synced) = std::thread::scope(|scope| {
                let messages_synced = messages.map(|file| scope.spawn(move || file.sync_data()));
                let transactions_synced = transactions.sync_data();
                let messages_synced = messages_synced.map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|_| Err(io::Error::other("the fdatasync thread panicked")))
                });
                (messages_synced, transactions_synced)
            });
            let result = messages_synced
                .unwrap_or(Ok(()))
                .map_err(|e| (&self.messages_path, e))
                .and_then(|()| transactions_synced.map_err(|e| (&self.transactions_path, e)));
            let took = started.elapsed();
            state = lock(&self.sync);
            state.syncing = false;
            state.sync_seconds += took.as_secs_f64();
            match result {
                Ok(()) => {
                    state.syncs += 1;
                    let batch = records.saturating_sub(records_before) as f64;
                    let bucket = BATCH_BOUNDS
                        .iter()
                        .position(|&bound| batch <= bound)
                        .unwrap_or(BATCH_BOUNDS.len());
                    state.batches[bucket] += 1;
                    state.synced_records = state.synced_records.max(records);
                    state.synced = state.synced.max(target);
                }
                Err((path, e)) => {
                    error!("{}: fdatasync failed: {e}", path.display());
                    state.failed_through = state.failed_through.max(target);
                    self.sync_failures.fetch_add(1, Ordering::AcqRel);
                }
            }
            self.synced.notify_all();
        }
    }

    /// Reopen both files at their paths (after logrotate moved them). In
    /// fsync mode the old files are synced first, so nothing acknowledged is
    /// left behind. Returns the files that could not be reopened (they go on
    /// being written where they are).
    pub(crate) fn reopen<'a>(&'a self) -> Vec<(&'a Path, io::Error)> {
        let mut failed = Vec::new();
        let kept = lock(&self.writer).messages.is_some();
        let messages = kept
            .then(|| {
                open_append(&self.messages_path, MESSAGES_MODE)
                    .map_err(|e| failed.push((self.messages_path.as_path(), e)))
                    .ok()
            })
            .flatten();
        let transactions = open_append(&self.transactions_path, TRANSACTIONS_MODE)
            .map_err(|e| failed.push((self.transactions_path.as_path(), e)))
            .ok();
        let mut writer = lock(&self.writer);
        let fsync = self.fsync;
        // In fsync mode the old file is synced before it is let go.
        let mut switch = |old: &mut Arc<File>, new: Option<File>, path: &'a Path| {
            let Some(new) = new else { return };
            match if fsync { old.sync_data() } else { Ok(()) } {
                Ok(()) => *old = Arc::new(new),
                Err(e) => failed.push((path, e)),
            }
        };
        let writer = &mut *writer;
        if let Some(old) = &mut writer.messages {
            switch(old, messages, &self.messages_path);
        }
        switch(
            &mut writer.transactions,
            transactions,
            &self.transactions_path,
        );
        failed
    }

    /// Flush both files to disk (at shutdown); returns those that failed.
    pub(crate) fn sync(&self) -> Vec<(&Path, io::Error)> {
        let (messages, transactions) = {
            let writer = lock(&self.writer);
            (writer.messages.clone(), Arc::clone(&writer.transactions))
        };
        let mut failed = Vec::new();
        if let Some(Err(e)) = messages.map(|m| m.sync_data()) {
            failed.push((self.messages_path.as_path(), e));
        }
        if let Err(e) = transactions.sync_data() {
            failed.push((self.transactions_path.as_path(), e));
        }
        failed
    }

    /// Group-commit figures so far.
    pub(crate) fn sync_stats(&self) -> SyncStats {
        let state = lock(&self.sync);
        SyncStats {
            syncs: state.syncs,
            records: state.synced_records,
            batches: state.batches,
            sync_seconds: state.sync_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_append_and_group_commit_counts() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(dir.path(), true).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let journal = Arc::clone(&journal);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let record = format!("[t{t}]: {i}\r\n");
                        let line = format!("t{t} {i}\n");
                        journal
                            .commit(record.as_bytes(), 1, line.as_bytes(), true)
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(journal.messages_path().unwrap()).unwrap();
        assert_eq!(text.lines().count(), 200);
        let lines = std::fs::read_to_string(journal.transactions_path()).unwrap();
        assert_eq!(lines.lines().count(), 200);
        let stats = journal.sync_stats();
        assert_eq!(stats.records, 200);
        assert!(stats.syncs >= 1 && stats.syncs <= 200);
    }

    #[test]
    fn open_moves_a_torn_last_line_aside_and_keeps_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        for (before, after, moved) in [
            (&b""[..], &b""[..], &b""[..]),
            (b"[a]: 1\r\n", b"[a]: 1\r\n", b""),
            (b"[a]: 1\r\n[a]: 2\r", b"[a]: 1\r\n", b"[a]: 2\r"),
            (b"[a]: 1\r\n[a", b"[a]: 1\r\n", b"[a"),
            (b"[a]: tor", b"", b"[a]: tor"),
            (b"lf only\n", b"lf only\n", b""),
            (b"[a]: 1\r\nnote\n", b"[a]: 1\r\nnote\n", b""),
        ] {
            let side = dir.path().join("messages.log.torn");
            let _ = std::fs::remove_file(&side);
            std::fs::write(&path, before).unwrap();
            let journal = Journal::open(dir.path(), false).unwrap();
            journal.commit(b"[b]: next\r\n", 1, b"", false).unwrap();
            assert_eq!(
                std::fs::read(&path).unwrap(),
                [after, b"[b]: next\r\n"].concat()
            );
            let saved = std::fs::read(&side).unwrap_or_default();
            assert!(saved.ends_with(&[moved, b"\n"].concat()) || moved.is_empty());
            assert_eq!(saved.is_empty(), moved.is_empty());
        }
    }

    #[test]
    fn a_failed_line_write_takes_the_records_back() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), false).unwrap();
        journal
            .commit(b"[a]: 1\r\n", 1, b"line 1\n", false)
            .unwrap();
        // A read-only handle in place of transactions.log makes its write fail.
        {
            let mut writer = lock(&journal.writer);
            writer.transactions = Arc::new(File::open(journal.transactions_path()).unwrap());
        }
        let error = journal
            .commit(b"[a]: 2\r\n", 1, b"line 2\n", false)
            .unwrap_err();
        assert!(
            matches!(&error, CommitError::Lines { path, .. } if path.ends_with("transactions.log")),
            "{error}"
        );
        assert_eq!(
            std::fs::read(journal.messages_path().unwrap()).unwrap(),
            b"[a]: 1\r\n"
        );
        assert_eq!(
            std::fs::read(journal.transactions_path()).unwrap(),
            b"line 1\n"
        );
    }

    #[test]
    fn reopen_follows_renamed_files() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), false).unwrap();
        journal.commit(b"[a]: 1\r\n", 1, b"one\n", false).unwrap();
        for file in ["messages.log", "transactions.log"] {
            std::fs::rename(dir.path().join(file), dir.path().join(format!("{file}.1"))).unwrap();
        }
        assert!(journal.reopen().is_empty());
        journal.commit(b"[a]: 2\r\n", 1, b"two\n", false).unwrap();
        assert_eq!(
            std::fs::read(journal.messages_path().unwrap()).unwrap(),
            b"[a]: 2\r\n"
        );
        assert_eq!(
            std::fs::read(dir.path().join("messages.log.1")).unwrap(),
            b"[a]: 1\r\n"
        );
        assert_eq!(
            std::fs::read(dir.path().join("transactions.log.1")).unwrap(),
            b"one\n"
        );
    }
}
