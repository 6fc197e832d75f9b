//! The `--users` file (`name:$argon2id$...` lines) and Argon2 verification.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use rand::RngCore;

/// Why a users file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("cannot read users file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot hash: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Users and their PHC hashes, checked in constant time; unknown names are
/// checked against a dummy hash of the same cost, so that a wrong password
/// and an unknown user take the same time.
pub struct Users {
    hashes: HashMap<String, String>,
    dummy: String,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print hashes.
        f.debug_struct("Users")
            .field("count", &self.hashes.len())
            .finish()
    }
}

impl Users {
    /// Read and check a users file: one `name:phc` per line, `#` comments and
    /// blank lines ignored. The name must be a valid session name.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.to_owned(),
            source,
        })?;
        Users::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Users, UsersError> {
        let mut hashes = HashMap::new();
        let mut first_params = None;
        for (index, raw) in text.lines().enumerate() {
            let fail = |reason: &str| UsersError::Line {
                path: path.to_owned(),
                line: index + 1,
                reason: reason.to_owned(),
            };
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            // PHC strings contain no ':', so the last one ends the name.
            let (name, hash) = line
                .rsplit_once(':')
                .ok_or_else(|| fail("expected `name:$argon2id$...`"))?;
            if name.len() > 255 || msglog_core::valid_name(name.as_bytes()).is_none() {
                return Err(fail(
                    "invalid user name (1..=255 bytes of UTF-8, no control characters or brackets)",
                ));
            }
            let parsed = PasswordHash::new(hash)
                .map_err(|e| fail(&format!("not a PHC hash string: {e}")))?;
            Algorithm::try_from(parsed.algorithm).map_err(|_| fail("not an Argon2 hash"))?;
            let params = Params::try_from(&parsed)
                .map_err(|e| fail(&format!("invalid Argon2 parameters: {e}")))?;
            first_params.get_or_insert(params);
            if hashes.insert(name.to_owned(), hash.to_owned()).is_some() {
                return Err(fail(&format!("user `{name}` appears twice")));
            }
        }
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let dummy =
            hash_password(&secret, first_params.unwrap_or_default()).map_err(UsersError::Hash)?;
        Ok(Users { hashes, dummy })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether `password` is `name`'s password. Slow on purpose (Argon2).
    pub fn verify(&self, name: &str, password: &[u8]) -> bool {
        let (hash, known) = match self.hashes.get(name) {
            Some(hash) => (hash.as_str(), true),
            None => (self.dummy.as_str(), false),
        };
        let matches = PasswordHash::new(hash)
            .map(|parsed| Argon2::default().verify_password(password, &parsed).is_ok())
            .unwrap_or(false);
        matches && known
    }
}

/// An Argon2id PHC string for `password` with a random salt.
pub fn hash_password(
    password: &[u8],
    params: Params,
) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    Ok(hasher.hash_password(password, &salt)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    #[test]
    fn verifies_known_users_only() {
        let alice = hash_password(b"secret", cheap()).unwrap();
        let text = format!(
            "# users\n\nalice:{alice}\nbo:b:{}\n",
            hash_password(b"pw", cheap()).unwrap()
        );
        let users = Users::parse(&text, Path::new("users")).unwrap();
        assert_eq!(users.len(), 2);
        assert!(users.verify("alice", b"secret"));
        assert!(!users.verify("alice", b"secreT"));
        assert!(users.verify("bo:b", b"pw"));
        assert!(!users.verify("mallory", b"secret"));
        // The dummy takes the cost of the file's hashes.
        assert!(users.dummy.contains("m=64,t=1,p=1"));
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        let good = hash_password(b"x", cheap()).unwrap();
        for (text, line) in [
            (format!("alice:{good}\nbob\n"), 2),
            (format!("[x]:{good}\n"), 1),
            ("alice:$md5$abc\n".to_owned(), 1),
            (format!("alice:{good}\nalice:{good}\n"), 2),
        ] {
            match Users::parse(&text, Path::new("u")) {
                Err(UsersError::Line { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
