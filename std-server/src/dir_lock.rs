//! One server per log directory: an exclusive lock on `msglog-server.lock`
//! beside the logs, held for the server's life and taken before anything in
//! the directory is opened or repaired. A second server on the same
//! directory would otherwise "repair" the live logs and interleave its own
//! records with the first one's.
//!
//! The lock is `flock(2)`: the kernel releases it when
//! the process ends however it ends, so a stale file never blocks a start.
//! The holder's PID is written into the file so that a refused server can
//! name it. The file is left in place at exit: removing it could let a
//! starting server lock a file that is about to disappear.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use msglog_std::retry_interrupted;

use crate::platform::{create_mode, read_at, write_all_at};

/// The lock file's name, in the log directory.
pub(crate) const LOCK_FILE: &str = "msglog-server.lock";

/// Why the directory could not be locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds the lock.
    #[error("{dir} is in use by another msglog-server ({}; it holds {lock}): one server per log directory", match pid { Some(pid) => format!("PID {pid}"), None => "PID not yet written".to_owned() })]
    Held {
        /// The log directory.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
        /// The holder's PID, if it has written it yet.
        pid: Option<u32>,
    },
    /// The lock file could not be created, locked or written.
    #[error("cannot lock {lock}: {source}")]
    Io {
        /// The lock file.
        lock: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Lock `dir` for this process. A refused caller changes nothing: an
/// existing lock file is opened without truncating it.
pub(crate) fn lock(dir: &Path) -> Result<DirLock, LockError> {
    let path = dir.join(LOCK_FILE);
    let io_error = |source| LockError::Io {
        lock: path.clone(),
        source,
    };
    let file = create_mode(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
        0o644,
    )
    .open(&path)
    .map_err(io_error)?;
    match try_lock(&file) {
        Ok(true) => {}
        Ok(false) => {
            return Err(LockError::Held {
                dir: dir.to_owned(),
                lock: path.clone(),
                pid: holder(&file),
            })
        }
        Err(e) => return Err(io_error(e)),
    }
    let pid = format!("{}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| write_all_at(&file, pid.as_bytes(), 0))
        .map_err(io_error)?;
    Ok(DirLock { _file: file })
}

/// The PID of the server holding `dir`'s lock; `None` if none holds it
/// (the lock is taken and let go at once, without writing anything).
pub(crate) fn holder_of(dir: &Path) -> io::Result<Option<u32>> {
    let file = File::open(dir.join(LOCK_FILE))?;
    if try_lock(&file)? {
        return Ok(None);
    }
    Ok(holder(&file))
}

/// An exclusive `flock` without waiting: false if another open file holds it.
fn try_lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The PID written by the lock's holder, if it has written it yet.
fn holder(file: &File) -> Option<u32> {
    let mut text = [0u8; 32];
    let mut len = 0;
    while len < text.len() {
        match retry_interrupted(|| read_at(file, &mut text[len..], len as u64)) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(_) => return None,
        }
    }
    std::str::from_utf8(&text[..len]).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let lock_file = dir.path().join(LOCK_FILE);
        let before = std::fs::read(&lock_file).unwrap();
        assert_eq!(before, format!("{}\n", std::process::id()).as_bytes());
        match lock(dir.path()) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&lock_file).unwrap(), before);
        drop(held);
        lock(dir.path()).unwrap();
    }
}
