//! Editing a users file, as `msglog-server users add|remove|verify|list`
//! does (in the manner of `htpasswd`): lines are replaced, appended or
//! removed; every other line (comments, blank lines, a byte order mark,
//! Windows line ends) is kept byte for byte.
//!
//! The new file is written beside the old one, synced, and renamed over
//! it (then the directory is synced), so a server reading it on SIGHUP, or
//! a crash, sees either the old file or the new one, never a mix. It keeps
//! the old file's mode and owner; a new file gets mode 0640 (less the
//! umask). A symbolic link is followed: the file it names is replaced.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::users::{matches, parse_file, parse_line, ParsedLine, Scheme, UsersError, BOM};

/// A new users file's mode: the server's group may read it, nobody else.
const NEW_FILE_MODE: u32 = 0o640;

/// Why a users file cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct UsersFileError {
    /// The file (or its temporary file) being written.
    pub path: PathBuf,
    /// What the system said.
    #[source]
    pub source: io::Error,
}

/// One line as read, with its line end.
#[derive(Debug, Clone)]
struct Line {
    bytes: Vec<u8>,
    /// The user it is the entry of, if it is one.
    user: Option<(String, String, Scheme)>,
}

/// A users file read for editing.
#[derive(Debug)]
pub struct UsersFile {
    path: PathBuf,
    exists: bool,
    bom: bool,
    lines: Vec<Line>,
}

/// What [`UsersFile::set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    /// A new line at the end.
    Added,
    /// The user's line replaced where it was.
    Replaced,
}

impl UsersFile {
    /// Read and check the file at `path` (as the server would: a file it
    /// would refuse is refused here too); with `missing_ok`, a file that
    /// does not exist is an empty one, created by [`save`](Self::save).
    pub fn open(path: &Path, missing_ok: bool) -> Result<UsersFile, UsersError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if missing_ok && e.kind() == io::ErrorKind::NotFound => {
                return Ok(UsersFile {
                    path: path.to_owned(),
                    exists: false,
                    bom: false,
                    lines: Vec::new(),
                })
            }
            Err(source) => {
                return Err(UsersError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        parse_file(&bytes, path)?;
        let bom = bytes.starts_with(BOM);
        let body = bytes.strip_prefix(BOM).unwrap_or(&bytes);
        let lines = body
            .split_inclusive(|&b| b == b'\n')
            .map(|raw| {
                let content = raw.strip_suffix(b"\n").unwrap_or(raw);
                let content = content.strip_suffix(b"\r").unwrap_or(content);
                let user = match parse_line(content) {
                    Ok(Some(ParsedLine { name, hash, scheme })) => {
                        Some((name.to_owned(), hash.to_owned(), scheme))
                    }
                    _ => None,
                };
                Line {
                    bytes: raw.to_vec(),
                    user,
                }
            })
            .collect();
        Ok(UsersFile {
            path: path.to_owned(),
            exists: true,
            bom,
            lines,
        })
    }

    /// The users' names, in the file's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .filter_map(|line| line.user.as_ref().map(|(name, _, _)| name.as_str()))
    }

    /// Whether `password` is `name`'s; `None` if there is no such user.
    /// As slow as the server's check of it (Argon2 or bcrypt).
    pub fn verify(&self, name: &str, password: &[u8]) -> Option<bool> {
        self.entry(name)
            .map(|(_, hash, scheme)| matches(scheme, hash, password))
    }

    /// Put `line` (a whole entry, as [`NewUser::line`](crate::NewUser::line)
    /// makes it, without a line end) in the file: in place of the user's
    /// line if it has one, else at the end.
    pub fn set(&mut self, line: &str) -> Result<UserChange, UsersError> {
        let parsed = parse_line(line.as_bytes())
            .map_err(|problem| UsersError::Line {
                path: self.path.clone(),
                line: 0,
                problem,
            })?
            .ok_or_else(|| UsersError::Hash("not a users-file entry".into()))?;
        let user = Some((
            parsed.name.to_owned(),
            parsed.hash.to_owned(),
            parsed.scheme,
        ));
        if let Some(existing) = self.lines.iter_mut().find(|l| {
            l.user
                .as_ref()
                .is_some_and(|(name, _, _)| name == parsed.name)
        }) {
            let ending: &[u8] = if existing.bytes.ends_with(b"\r\n") {
                b"\r\n"
            } else if existing.bytes.ends_with(b"\n") {
                b"\n"
            } else {
                b""
            };
            existing.bytes = [line.as_bytes(), ending].concat();
            existing.user = user;
            return Ok(UserChange::Replaced);
        }
        // The file's own line end, and a last line finished first.
        let crlf = self
            .lines
            .first()
            .is_some_and(|l| l.bytes.ends_with(b"\r\n"));
        let ending: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        if let Some(last) = self.lines.last_mut() {
            if !last.bytes.ends_with(b"\n") {
                last.bytes.extend_from_slice(ending);
            }
        }
        self.lines.push(Line {
            bytes: [line.as_bytes(), ending].concat(),
            user,
        });
        Ok(UserChange::Added)
    }

    /// Remove `name`'s line; false if there is none.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|line| line.user.as_ref().is_none_or(|(user, _, _)| user != name));
        self.lines.len() != before
    }

    /// Write the file atomically (see the module documentation).
    pub fn save(&self) -> Result<(), UsersFileError> {
        // Replace the file a symbolic link names, not the link.
        let target = if self.exists {
            self.path.canonicalize().map_err(|source| UsersFileError {
                path: self.path.clone(),
                source,
            })?
        } else {
            self.path.clone()
        };
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = target.file_name().unwrap_or_default();
        let mut temporary_name = std::ffi::OsString::from(".");
        temporary_name.push(name);
        temporary_name.push(format!(".{}.tmp", std::process::id()));
        let temporary = dir.join(temporary_name);
        let fail = |path: &Path| {
            let path = path.to_owned();
            move |source| UsersFileError { path, source }
        };
        let old = if self.exists {
            Some(std::fs::metadata(&target).map_err(fail(&target))?)
        } else {
            None
        };
        let written = (|| -> io::Result<()> {
            let mut file: File = crate::platform::create_mode(
                OpenOptions::new().write(true).create_new(true),
                NEW_FILE_MODE,
            )
            .open(&temporary)?;
            if let Some(old) = &old {
                crate::platform::copy_owner_and_mode(&file, old)?;
            }
            let mut text = Vec::new();
            if self.bom {
                text.extend_from_slice(BOM);
            }
            for line in &self.lines {
                text.extend_from_slice(&line.bytes);
            }
            file.write_all(&text)?;
            file.sync_all()
        })();
        if let Err(source) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(UsersFileError {
                path: temporary,
                source,
            });
        }
        if let Err(source) = std::fs::rename(&temporary, &target) {
            let _ = std::fs::remove_file(&temporary);
            return Err(UsersFileError {
                path: target,
                source,
            });
        }
        crate::platform::sync_dir(&dir).map_err(fail(&dir))
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.names().count()
    }

    /// Whether it lists no user.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry(&self, name: &str) -> Option<&(String, String, Scheme)> {
        self.lines
            .iter()
            .filter_map(|line| line.user.as_ref())
            .find(|(user, _, _)| user == name)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::users::{HashCost, NewUser};

    fn cheap() -> HashCost {
        HashCost {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        }
    }

    fn line(name: &str, password: &[u8]) -> String {
        NewUser::new(name, cheap()).unwrap().line(password).unwrap()
    }

    #[test]
    fn edits_keep_every_other_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let alice = line("alice", b"a");
        let bob = line("bob", b"b");
        let original = format!("\u{feff}# team\r\n{alice}\r\n\r\n  # bob below\r\n{bob}");
        std::fs::write(&path, &original).unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&path, PermissionsExt::from_mode(0o600)).unwrap();

        let mut file = UsersFile::open(&path, false).unwrap();
        assert_eq!(file.names().collect::<Vec<_>>(), ["alice", "bob"]);
        assert_eq!(file.verify("alice", b"a"), Some(true));
        assert_eq!(file.verify("alice", b"b"), Some(false));
        assert_eq!(file.verify("carol", b"a"), None);

        let alice2 = line("alice", b"new");
        assert_eq!(file.set(&alice2).unwrap(), UserChange::Replaced);
        let carol = line("carol", b"c");
        assert_eq!(file.set(&carol).unwrap(), UserChange::Added);
        assert!(file.remove("bob"));
        assert!(!file.remove("bob"));
        file.save().unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("\u{feff}# team\r\n{alice2}\r\n\r\n  # bob below\r\n{carol}\r\n")
        );
        #[cfg(unix)]
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "the old file's mode is kept"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
        let file = UsersFile::open(&path, false).unwrap();
        assert_eq!(file.verify("alice", b"new"), Some(true));
    }

    #[test]
    #[cfg(unix)] // Symbolic links need a privilege on Windows.
    fn a_missing_file_is_created_and_a_link_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        assert!(UsersFile::open(&path, false).is_err());
        let mut file = UsersFile::open(&path, true).unwrap();
        assert!(file.is_empty());
        file.set(&line("alice", b"a")).unwrap();
        file.save().unwrap();
        assert_eq!(UsersFile::open(&path, false).unwrap().len(), 1);

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let mut file = UsersFile::open(&link, false).unwrap();
        file.set(&line("bob", b"b")).unwrap();
        file.save().unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(UsersFile::open(&path, false).unwrap().len(), 2);
    }

    #[test]
    fn a_file_the_server_would_refuse_is_not_edited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "alice:not-a-hash\n").unwrap();
        let error = UsersFile::open(&path, false).unwrap_err();
        assert!(error.to_string().contains(":1: "), "{error}");
    }
}
