//! `--pid-file FILE`: the server's PID for scripts and logrotate's
//! `postrotate`, on systems without a service manager that tracks it.
//!
//! Written once the server serves, atomically (a temporary file beside it,
//! synced, renamed over it), so a reader never sees a partial PID; removed
//! at a clean stop if it still holds this PID. A PID file left by a crash
//! is simply replaced at the next start (the directory lock, not the PID
//! file, keeps two servers apart).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why the PID file cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the PID file {path}: {source}")]
pub struct PidFileError {
    /// The file asked for.
    pub path: PathBuf,
    /// What the system said.
    #[source]
    pub source: io::Error,
}

/// A written PID file, removed again by [`PidFile::remove`].
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    contents: String,
}

impl PidFile {
    /// Write this process's PID to `path` (mode 0644 less the umask).
    pub(crate) fn write(path: &Path) -> Result<PidFile, PidFileError> {
        let fail = |source| PidFileError {
            path: path.to_owned(),
            source,
        };
        let contents = format!("{}\n", std::process::id());
        let name = path
            .file_name()
            .ok_or_else(|| fail(io::Error::other("not a file name")))?;
        let mut temporary = name.to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = path.with_file_name(temporary);
        let written = (|| {
            let mut file: File = crate::platform::create_mode(
                OpenOptions::new().write(true).create(true).truncate(true),
                0o644,
            )
            .open(&temporary)?;
            file.write_all(contents.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(fail(e));
        }
        Ok(PidFile {
            path: path.to_owned(),
            contents,
        })
    }

    /// Remove the file, unless another process has replaced it since.
    pub(crate) fn remove(self) {
        match std::fs::read_to_string(&self.path) {
            Ok(text) if text == self.contents => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    error!("cannot remove {}: {e}", self.path.display());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_pid_and_is_removed_only_while_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("msglog.pid");
        let pid = PidFile::write(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        pid.remove();
        assert!(!path.exists());

        let pid = PidFile::write(&path).unwrap();
        std::fs::write(&path, "4242\n").unwrap();
        pid.remove();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");

        let error = PidFile::write(&dir.path().join("missing/x.pid")).unwrap_err();
        assert!(
            error.to_string().starts_with("cannot write the PID file "),
            "{error}"
        );
    }
}
