//! The `--users` file (`name:$argon2id$...` lines, or `name:$2y$...` lines
//! from `htpasswd -B`) and password verification.
//!
//! Which names exist must not show in how long a wrong password takes.
//! Unknown names are checked against a dummy hash at the file's most
//! expensive cost; a failed check of an entry hashed more cheaply is
//! answered no earlier than a check at that cost would have taken
//! (`Checked::not_before`), using the measured duration of a randomly chosen
//! recent check at that cost, so that its time follows the same distribution.
//! Within one scheme the costliest entry is known from its parameters
//! (Argon2: memory blocks times passes; bcrypt: its cost); between the two
//! schemes it is measured at load, one check of each.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

use crate::capacity::{MAX_NAME, MAX_PASSWORD};

/// A UTF-8 byte order mark, which some editors put at the start of a file.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Durations of recent checks at the most expensive cost kept for padding.
const COST_SAMPLES: usize = 32;
/// bcrypt's costs (log2 of its rounds), as the `bcrypt` crate accepts them.
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// Why a users file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// The file cannot be read.
    #[error("cannot read users file {path}: {source}")]
    Read {
        /// The users file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A line is not a valid entry.
    #[error("{path}:{line}: {problem}")]
    Line {
        /// The users file.
        path: PathBuf,
        /// Its number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// The dummy hash for unknown names cannot be made.
    #[error("cannot hash: {0}")]
    Hash(String),
}

/// What is wrong with a line of the users file. Never quotes the line: it
/// may hold a hash or, mistyped, a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum LineProblem {
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("whitespace before the name")]
    LeadingWhitespace,
    #[error("trailing whitespace after the hash")]
    TrailingWhitespace,
    #[error("expected `name:$argon2id$...`, found no ':'")]
    NoSeparator,
    #[error("no user name before the ':'")]
    EmptyName,
    #[error("whitespace between the name and the ':'")]
    WhitespaceBeforeSeparator,
    #[error("no hash after the ':'")]
    NoHash,
    #[error("whitespace inside the hash")]
    WhitespaceInHash,
    #[error("{0}")]
    Name(NameError),
    #[error("the hash is not a PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`): {0}")]
    NotPhc(argon2::password_hash::phc::Error),
    #[error("the hash is not an Argon2 hash, nor bcrypt (`$2y$...`, what `htpasswd -B` makes)")]
    NotArgon2,
    #[error("invalid Argon2 parameters: {0}")]
    Parameters(argon2::password_hash::Error),
    #[error("the hash is not a bcrypt hash (`$2y$COST$` and 53 characters): {0}")]
    NotBcrypt(bcrypt::BcryptError),
    #[error("the bcrypt cost {cost} is outside 4..=31")]
    BcryptCost { cost: u32 },
    #[error("the name is already on line {first}")]
    Duplicate { first: usize },
}

/// Why a name cannot be a user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Longer than a session holds.
    #[error("the name is longer than {max} bytes, the most a session holds")]
    TooLong {
        /// The longest name a session holds.
        max: usize,
    },
    /// Not a name a client may send.
    #[error("the name is not one a client may send (PROTOCOL.md, decision 1: UTF-8 without brackets and without control, invisible or bidi characters)")]
    Invalid,
}

/// Whether `name` can log in: the rules of the wire and the session's capacity.
pub(crate) fn check_name(name: &str) -> Result<(), NameError> {
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong { max: MAX_NAME });
    }
    match msglog_core::valid_name(name.as_bytes()) {
        Some(_) => Ok(()),
        None => Err(NameError::Invalid),
    }
}

/// How a users-file entry is hashed, and at what cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scheme {
    Argon2(Params),
    /// bcrypt at this cost (`$2y$`, `$2b$`, `$2a$`: `htpasswd -B`).
    Bcrypt(u32),
}

impl Scheme {
    /// Ordering of costs within one scheme: Argon2's work (memory blocks
    /// filled times passes), bcrypt's cost. Not comparable across schemes.
    fn work(&self) -> u64 {
        match self {
            Scheme::Argon2(params) => params.block_count() as u64 * u64::from(params.t_cost()),
            Scheme::Bcrypt(cost) => u64::from(*cost),
        }
    }

    fn same_kind(&self, other: &Scheme) -> bool {
        matches!(
            (self, other),
            (Scheme::Argon2(_), Scheme::Argon2(_)) | (Scheme::Bcrypt(_), Scheme::Bcrypt(_))
        )
    }

    /// The costlier of two of the same kind.
    fn costlier(self, other: &Scheme) -> Scheme {
        if other.work() > self.work() {
            other.clone()
        } else {
            self
        }
    }

    /// A hash of `password` at this cost, with a random salt.
    fn hash(&self, password: &[u8]) -> Result<String, String> {
        match self {
            Scheme::Argon2(params) => {
                // Without key or associated data: only the cost matters.
                let params = Params::new(params.m_cost(), params.t_cost(), params.p_cost(), None)
                    .map_err(|e| e.to_string())?;
                hash_password(password, params).map_err(|e| e.to_string())
            }
            Scheme::Bcrypt(cost) => bcrypt::hash(password, *cost).map_err(|e| e.to_string()),
        }
    }
}

/// Whether `password` matches the stored `hash` of `scheme`; a hash that
/// does not parse matches nothing.
pub(crate) fn matches(scheme: &Scheme, hash: &str, password: &[u8]) -> bool {
    match scheme {
        Scheme::Argon2(_) => PasswordHash::new(hash)
            .map(|parsed| Argon2::default().verify_password(password, &parsed).is_ok())
            .unwrap_or(false),
        Scheme::Bcrypt(_) => bcrypt::verify(password, hash).unwrap_or(false),
    }
}

/// A user's hash and whether it costs as much as the dummy.
struct Entry {
    hash: String,
    scheme: Scheme,
    most_expensive: bool,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checked {
    pub accepted: bool,
    /// A refusal must not be answered before this instant.
    pub not_before: Option<Instant>,
}

/// Users and their hashes, checked in constant time.
pub(crate) struct Users {
    entries: HashMap<String, Entry>,
    /// A hash of a random secret at the file's most expensive cost.
    dummy: String,
    dummy_scheme: Scheme,
    /// How long recent checks at that cost took.
    costs: Mutex<CostSamples>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print hashes.
        f.debug_struct("Users")
            .field("count", &self.entries.len())
            .finish()
    }
}

/// One parsed line of a users file.
#[derive(Debug)]
pub(crate) struct ParsedLine<'a> {
    pub(crate) name: &'a str,
    pub(crate) hash: &'a str,
    pub(crate) scheme: Scheme,
}

/// Every entry of a users file, checked: names to (hash, scheme, line
/// number). Blank lines, `#` comments and a leading byte order mark are
/// skipped; Windows line ends are fine.
pub(crate) fn parse_file(
    bytes: &[u8],
    path: &Path,
) -> Result<HashMap<String, (String, Scheme, usize)>, UsersError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let mut parsed: HashMap<String, (String, Scheme, usize)> = HashMap::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let fail = |problem| UsersError::Line {
            path: path.to_owned(),
            line: index + 1,
            problem,
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Some(line) = parse_line(raw).map_err(fail)? else {
            continue;
        };
        if let Some((_, _, first)) = parsed.get(line.name) {
            return Err(fail(LineProblem::Duplicate { first: *first }));
        }
        parsed.insert(
            line.name.to_owned(),
            (line.hash.to_owned(), line.scheme, index + 1),
        );
    }
    Ok(parsed)
}

impl Users {
    /// Read and check a users file: one `name:hash` per line, `#` comments
    /// and blank lines ignored, a leading UTF-8 byte order mark skipped. The
    /// name must be one a client can log in with. Takes as long as two
    /// checks at the file's most expensive cost (they are measured), and one
    /// of the other scheme's costliest when the file has both.
    pub(crate) fn load(path: &Path) -> Result<Users, UsersError> {
        let bytes = std::fs::read(path).map_err(|source| UsersError::Read {
            path: path.to_owned(),
            source,
        })?;
        Users::parse(&bytes, path)
    }

    fn parse(bytes: &[u8], path: &Path) -> Result<Users, UsersError> {
        let parsed = parse_file(bytes, path)?;
        let mut argon2: Option<Scheme> = None;
        let mut bcrypt: Option<Scheme> = None;
        for (_, scheme, _) in parsed.values() {
            let top = match scheme {
                Scheme::Argon2(_) => &mut argon2,
                Scheme::Bcrypt(_) => &mut bcrypt,
            };
            *top = Some(match top.take() {
                Some(current) => current.costlier(scheme),
                None => scheme.clone(),
            });
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| UsersError::Hash(e.to_string()))?;
        let (dummy_scheme, dummy, took) = match (argon2, bcrypt) {
            (Some(argon2), Some(bcrypt)) => {
                // Which scheme's costliest is slower only a measurement says.
                let a = Measured::new(argon2, &secret)?;
                let b = Measured::new(bcrypt, &secret)?;
                if b.check > a.check {
                    b.into_parts()
                } else {
                    a.into_parts()
                }
            }
            (Some(only), None) | (None, Some(only)) => Measured::new(only, &secret)?.into_parts(),
            (None, None) => Measured::new(Scheme::Argon2(Params::default()), &secret)?.into_parts(),
        };
        let entries = parsed
            .into_iter()
            .map(|(name, (hash, scheme, _))| {
                let most_expensive =
                    scheme.same_kind(&dummy_scheme) && scheme.work() >= dummy_scheme.work();
                let entry = Entry {
                    hash,
                    scheme,
                    most_expensive,
                };
                (name, entry)
            })
            .collect();
        let mut costs = CostSamples::default();
        costs.add(took);
        let users = Users {
            entries,
            dummy,
            dummy_scheme,
            costs: Mutex::new(costs),
        };
        // A second measurement, of a check as logins make it.
        users.verify("", &secret);
        Ok(users)
    }

    /// Number of users.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `password` is `name`'s password. Slow on purpose (Argon2,
    /// bcrypt), and a refusal says when it may be answered.
    pub(crate) fn verify(&self, name: &str, password: &[u8]) -> Checked {
        let (hash, scheme, most_expensive, known) = match self.entries.get(name) {
            Some(entry) => (
                entry.hash.as_str(),
                &entry.scheme,
                entry.most_expensive,
                true,
            ),
            None => (self.dummy.as_str(), &self.dummy_scheme, true, false),
        };
        let started = Instant::now();
        let accepted = matches(scheme, hash, password) && known;
        let mut costs = self.costs.lock().unwrap_or_else(PoisonError::into_inner);
        if most_expensive {
            costs.add(started.elapsed());
        }
        let not_before = match (accepted, most_expensive) {
            // Success is no secret once answered 0x00; the costliest take their own time.
            (true, _) | (false, true) => None,
            (false, false) => Some(started + costs.pick(random_index)),
        };
        Checked {
            accepted,
            not_before,
        }
    }
}

/// A dummy hash at a scheme's cost, and how long one check of it took.
struct Measured {
    scheme: Scheme,
    hash: String,
    check: Duration,
}

impl Measured {
    fn new(scheme: Scheme, secret: &[u8]) -> Result<Measured, UsersError> {
        let hash = scheme.hash(secret).map_err(UsersError::Hash)?;
        let started = Instant::now();
        matches(&scheme, &hash, secret);
        let check = started.elapsed();
        Ok(Measured {
            scheme,
            hash,
            check,
        })
    }

    fn into_parts(self) -> (Scheme, String, Duration) {
        (self.scheme, self.hash, self.check)
    }
}

/// A random index below `n` (> 0), from the system's generator.
fn random_index(n: usize) -> usize {
    let mut bytes = [0u8; 8];
    // Without randomness, the first sample: still a real check's duration.
    if getrandom::fill(&mut bytes).is_err() {
        return 0;
    }
    (u64::from_le_bytes(bytes) % n as u64) as usize
}

/// One line: `None` for a blank line or a comment, else the name, the
/// hash and its scheme and cost.
pub(crate) fn parse_line(raw: &[u8]) -> Result<Option<ParsedLine<'_>>, LineProblem> {
    let line = std::str::from_utf8(raw).map_err(|_| LineProblem::NotUtf8)?;
    let content = line.trim_start();
    if content.is_empty() || content.starts_with('#') {
        return Ok(None);
    }
    if content.len() != line.len() {
        return Err(LineProblem::LeadingWhitespace);
    }
    if line.trim_end().len() != line.len() {
        return Err(LineProblem::TrailingWhitespace);
    }
    // Neither PHC strings nor bcrypt hashes contain ':', so the last one ends the name.
    let (name, hash) = line.rsplit_once(':').ok_or(LineProblem::NoSeparator)?;
    if name.is_empty() {
        return Err(LineProblem::EmptyName);
    }
    if name.trim_end().len() != name.len() {
        return Err(LineProblem::WhitespaceBeforeSeparator);
    }
    if hash.is_empty() {
        return Err(LineProblem::NoHash);
    }
    if hash.contains(char::is_whitespace) {
        return Err(LineProblem::WhitespaceInHash);
    }
    check_name(name).map_err(LineProblem::Name)?;
    let scheme = scheme_of(hash)?;
    Ok(Some(ParsedLine { name, hash, scheme }))
}

/// The scheme and cost of a stored hash.
fn scheme_of(hash: &str) -> Result<Scheme, LineProblem> {
    if ["$2y$", "$2b$", "$2a$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
    {
        let parts: bcrypt::HashParts = hash.parse().map_err(LineProblem::NotBcrypt)?;
        let cost = parts.get_cost();
        if !BCRYPT_COSTS.contains(&cost) {
            return Err(LineProblem::BcryptCost { cost });
        }
        return Ok(Scheme::Bcrypt(cost));
    }
    if !hash.starts_with("$argon2") {
        // htpasswd's MD5 (`$apr1$`), SHA-1 (`{SHA}`), crypt(3) hashes, ...
        return Err(LineProblem::NotArgon2);
    }
    let parsed = PasswordHash::new(hash).map_err(LineProblem::NotPhc)?;
    Algorithm::try_from(parsed.algorithm.as_str()).map_err(|_| LineProblem::NotArgon2)?;
    let params = Params::try_from(&parsed).map_err(LineProblem::Parameters)?;
    Ok(Scheme::Argon2(params))
}

/// The durations of the last few checks at the most expensive cost.
#[derive(Debug, Default)]
struct CostSamples {
    recent: Vec<Duration>,
    next: usize,
}

impl CostSamples {
    fn add(&mut self, took: Duration) {
        if self.recent.len() < COST_SAMPLES {
            self.recent.push(took);
        } else {
            self.recent[self.next] = took;
        }
        self.next = (self.next + 1) % COST_SAMPLES;
    }

    /// One of them, at random (`index(n)` picks one below `n`): padding to
    /// it gives a cheaper check the time distribution of a costliest one,
    /// not just its average.
    fn pick(&self, index: impl FnOnce(usize) -> usize) -> Duration {
        match self.recent.len() {
            0 => Duration::ZERO,
            n => self.recent[index(n).min(n - 1)],
        }
    }
}

/// The Argon2id cost of a new users-file entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism (lanes).
    pub p_cost: u32,
}

impl HashCost {
    /// Argon2's defaults (19456 KiB, 2 iterations, 1 lane), as OWASP advises.
    pub const DEFAULT: HashCost = HashCost {
        m_cost: Params::DEFAULT_M_COST,
        t_cost: Params::DEFAULT_T_COST,
        p_cost: Params::DEFAULT_P_COST,
    };

    /// Argon2's least memory per lane, in KiB: `--m-cost` must be at
    /// least this times `--p-cost`.
    pub const MIN_M_COST_PER_LANE: u32 = 8;
}

impl Default for HashCost {
    fn default() -> Self {
        HashCost::DEFAULT
    }
}

/// Why no users-file entry could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NewUserError {
    /// The name cannot log in.
    #[error("cannot use `{}`: {problem}", .name.escape_debug())]
    Name {
        /// The name as given.
        name: String,
        /// Why it cannot log in.
        problem: NameError,
    },
    /// Argon2 refuses the cost.
    #[error("invalid Argon2 parameters: {0}")]
    Parameters(argon2::Error),
    /// An empty password cannot log in.
    #[error("the password is empty")]
    EmptyPassword,
    /// Longer than a client can send.
    #[error("the password is longer than {max} bytes, the longest a client can send")]
    PasswordTooLong {
        /// The longest password a client can send.
        max: usize,
    },
    /// Hashing failed.
    #[error("cannot hash: {0}")]
    Hash(argon2::password_hash::Error),
}

/// A user to add to a users file (`msglog-server hash-password`, `users
/// add`): the name and cost are checked before a password is asked for.
#[derive(Debug, Clone)]
pub struct NewUser {
    name: String,
    params: Params,
}

impl NewUser {
    /// A user named `name` (one a client can log in with), hashed at `cost`.
    pub fn new(name: &str, cost: HashCost) -> Result<NewUser, NewUserError> {
        check_name(name).map_err(|problem| NewUserError::Name {
            name: name.to_owned(),
            problem,
        })?;
        let params = Params::new(cost.m_cost, cost.t_cost, cost.p_cost, None)
            .map_err(NewUserError::Parameters)?;
        Ok(NewUser {
            name: name.to_owned(),
            params,
        })
    }

    /// The users-file line (`name:$argon2id$...`, no newline) for `password`.
    pub fn line(&self, password: &[u8]) -> Result<String, NewUserError> {
        if password.is_empty() {
            return Err(NewUserError::EmptyPassword);
        }
        if password.len() > MAX_PASSWORD {
            return Err(NewUserError::PasswordTooLong { max: MAX_PASSWORD });
        }
        let hash = hash_password(password, self.params.clone()).map_err(NewUserError::Hash)?;
        Ok(format!("{}:{hash}", self.name))
    }
}

/// An Argon2id PHC string for `password` with a random salt (argon2's own).
fn hash_password(password: &[u8], params: Params) -> Result<String, argon2::password_hash::Error> {
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    Ok(hasher.hash_password(password)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    fn costlier() -> Params {
        Params::new(256, 2, 1, None).unwrap()
    }

    fn parse(text: &[u8]) -> Result<Users, UsersError> {
        Users::parse(text, Path::new("users"))
    }

    #[test]
    fn verifies_known_users_only() {
        let alice = hash_password(b"secret", cheap()).unwrap();
        let text = format!(
            "# users\n\nalice:{alice}\nbo:b:{}\n",
            hash_password(b"pw", cheap()).unwrap()
        );
        let users = parse(text.as_bytes()).unwrap();
        assert_eq!(users.len(), 2);
        assert!(users.verify("alice", b"secret").accepted);
        assert!(!users.verify("alice", b"secreT").accepted);
        assert!(users.verify("bo:b", b"pw").accepted);
        assert!(!users.verify("mallory", b"secret").accepted);
        // The dummy takes the cost of the file's hashes.
        assert!(users.dummy.contains("m=64,t=1,p=1"));
    }

    #[test]
    fn unknown_names_cost_the_most_expensive_entry_and_cheap_refusals_wait_for_it() {
        let text = format!(
            "old:{}\nnew:{}\n",
            hash_password(b"old pw", cheap()).unwrap(),
            hash_password(b"new pw", costlier()).unwrap()
        );
        let users = parse(text.as_bytes()).unwrap();
        // Not the first entry's cost: the most expensive one's.
        assert!(users.dummy.contains("m=256,t=2,p=1"), "{}", users.dummy);
        for (name, password) in [("new", &b"wrong"[..]), ("nobody", b"new pw")] {
            let checked = users.verify(name, password);
            assert!(!checked.accepted);
            assert_eq!(checked.not_before, None, "{name}: takes its own time");
        }
        let before = Instant::now();
        let checked = users.verify("old", b"wrong");
        assert!(!checked.accepted);
        let not_before = checked.not_before.expect("a cheap refusal is padded");
        let recent = users.costs.lock().unwrap().recent.clone();
        assert!(
            recent.len() >= 4,
            "measured at load and at every costly check"
        );
        assert!(
            recent.iter().any(|&took| not_before >= before + took),
            "padded to a measured duration"
        );
        // Success is not padded.
        assert_eq!(
            users.verify("old", b"old pw"),
            Checked {
                accepted: true,
                not_before: None
            }
        );
    }

    #[test]
    fn cost_samples_keep_the_last_ones_and_pick_among_them() {
        let mut samples = CostSamples::default();
        assert_eq!(samples.pick(random_index), Duration::ZERO);
        for ms in 0..(COST_SAMPLES as u64 + 8) {
            samples.add(Duration::from_millis(ms));
        }
        assert_eq!(samples.recent.len(), COST_SAMPLES);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let picked = samples.pick(random_index);
            assert!(
                picked >= Duration::from_millis(8),
                "{picked:?} was replaced"
            );
            seen.insert(picked);
        }
        assert_eq!(seen.len(), COST_SAMPLES, "every recent sample is picked");
    }

    #[test]
    fn bcrypt_lines_verify_and_the_slower_schemes_costliest_is_the_dummy() {
        let bcrypt_cheap = bcrypt::hash("pw", 4).unwrap().replacen("$2b$", "$2y$", 1);
        let argon2 = hash_password(b"pw", Params::new(2048, 1, 1, None).unwrap()).unwrap();
        let users = parse(format!("old:{bcrypt_cheap}\nnew:{argon2}\n").as_bytes()).unwrap();
        assert!(users.verify("old", b"pw").accepted);
        assert!(!users.verify("old", b"px").accepted);
        assert!(users.verify("new", b"pw").accepted);
        // bcrypt at cost 4 is faster than Argon2 at 2 MiB.
        assert!(matches!(users.dummy_scheme, Scheme::Argon2(_)));
        assert!(users.verify("old", b"px").not_before.is_some(), "padded");
        assert_eq!(users.verify("new", b"px").not_before, None);

        let bcrypt_costly = bcrypt::hash("pw", 8).unwrap();
        let argon2_cheap = hash_password(b"pw", cheap()).unwrap();
        let users =
            parse(format!("slow:{bcrypt_costly}\nquick:{argon2_cheap}\n").as_bytes()).unwrap();
        assert_eq!(users.dummy_scheme, Scheme::Bcrypt(8));
        assert!(users.dummy.starts_with("$2b$08$"), "{}", users.dummy);
        assert!(users.verify("quick", b"px").not_before.is_some(), "padded");
        assert!(users.verify("slow", b"pw").accepted);
    }

    #[test]
    fn a_leading_byte_order_mark_is_not_part_of_the_first_name() {
        let text = [
            BOM,
            format!("alice:{}\n", hash_password(b"pw", cheap()).unwrap()).as_bytes(),
        ]
        .concat();
        let users = parse(&text).unwrap();
        assert!(users.verify("alice", b"pw").accepted);
        assert!(!users.verify("\u{feff}alice", b"pw").accepted);
    }

    #[test]
    fn rejects_bad_lines_with_their_number_and_what_is_wrong() {
        let good = hash_password(b"x", cheap()).unwrap();
        let long = "n".repeat(MAX_NAME + 1);
        let at_most = "n".repeat(MAX_NAME);
        assert_eq!(
            parse(format!("{at_most}:{good}").as_bytes()).unwrap().len(),
            1
        );
        let cases: Vec<(Vec<u8>, usize, &str)> = vec![
            (format!("alice:{good}\nbob\n").into(), 2, "found no ':'"),
            (
                format!("[x]:{good}\n").into(),
                1,
                "not one a client may send",
            ),
            (
                format!("{long}:{good}\n").into(),
                1,
                "longer than 255 bytes",
            ),
            (
                "alice:$md5$abc\n".into(),
                1,
                "not an Argon2 hash, nor bcrypt",
            ),
            ("alice:$argon2id$abc\n".into(), 1, "not a PHC string"),
            (
                "alice:$apr1$Oe0xKcmr$0b3sG5uU1iF5hKQbbK.8f/\n".into(),
                1,
                "not an Argon2 hash, nor bcrypt (`$2y$...`, what `htpasswd -B` makes)",
            ),
            ("alice:$2y$05$tooshort\n".into(), 1, "not a bcrypt hash"),
            (
                format!("alice:{}\n", good.replace("argon2id", "scrypt")).into(),
                1,
                "not an Argon2 hash",
            ),
            (
                format!("alice:{}\n", good.replace("m=64", "m=1")).into(),
                1,
                "invalid Argon2 parameters",
            ),
            (
                format!("# users\nalice:{good}\nalice:{good}\n").into(),
                3,
                "already on line 2",
            ),
            (
                [
                    format!("alice:{good}\n").as_bytes(),
                    b"b\xffb:",
                    good.as_bytes(),
                ]
                .concat(),
                2,
                "not valid UTF-8",
            ),
            (
                format!("alice:{good} \n").into(),
                1,
                "trailing whitespace after the hash",
            ),
            (
                format!("alice:{good}\t\r\n").into(),
                1,
                "trailing whitespace after the hash",
            ),
            (
                format!(" alice:{good}\n").into(),
                1,
                "whitespace before the name",
            ),
            (
                format!("alice :{good}\n").into(),
                1,
                "between the name and the ':'",
            ),
            (
                format!("alice: {good}\n").into(),
                1,
                "whitespace inside the hash",
            ),
            (format!(":{good}\n").into(), 1, "no user name"),
            ("\n\nalice:\n".into(), 3, "no hash after the ':'"),
        ];
        for (text, line, says) in cases {
            let shown = String::from_utf8_lossy(&text).into_owned();
            match parse(&text) {
                Err(error @ UsersError::Line { line: l, .. }) => {
                    assert_eq!(l, line, "{shown}");
                    let message = error.to_string();
                    assert!(message.starts_with(&format!("users:{line}: ")), "{message}");
                    assert!(message.contains(says), "{shown}: {message}");
                    let digest = good.rsplit('$').next().unwrap();
                    assert!(!message.contains(digest), "{message}");
                }
                other => panic!("{shown}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_new_users_line_is_one_the_file_accepts() {
        let cheap = HashCost {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        };
        let line = NewUser::new("alice", cheap).unwrap().line(b"pw").unwrap();
        assert!(
            line.starts_with("alice:$argon2id$v=19$m=64,t=1,p=1$"),
            "{line}"
        );
        let users = parse(line.as_bytes()).unwrap();
        assert!(users.verify("alice", b"pw").accepted);
        let says = |e: NewUserError| e.to_string();
        assert_eq!(
            says(NewUser::new("a]b", cheap).unwrap_err()),
            "cannot use `a]b`: the name is not one a client may send (PROTOCOL.md, decision 1: UTF-8 without brackets and without control, invisible or bidi characters)"
        );
        assert!(
            says(NewUser::new(&"n".repeat(MAX_NAME + 1), cheap).unwrap_err())
                .contains("longer than 255 bytes")
        );
        let zero = HashCost { m_cost: 1, ..cheap };
        assert!(says(NewUser::new("alice", zero).unwrap_err())
            .starts_with("invalid Argon2 parameters: "));
        let user = NewUser::new("alice", cheap).unwrap();
        assert_eq!(says(user.line(b"").unwrap_err()), "the password is empty");
        assert!(user.line(&[b'p'; MAX_PASSWORD]).is_ok());
        assert_eq!(
            says(user.line(&[b'p'; MAX_PASSWORD + 1]).unwrap_err()),
            "the password is longer than 255 bytes, the longest a client can send"
        );
    }

    #[test]
    fn windows_line_ends_comments_and_blank_lines_are_fine() {
        let good = hash_password(b"x", cheap()).unwrap();
        let text = format!("# users\r\n\r\n   \r\n  # indented comment\r\nalice:{good}\r\n");
        assert_eq!(parse(text.as_bytes()).unwrap().len(), 1);
    }
}
