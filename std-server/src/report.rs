//! Operator output on stderr: one line per event, `msglog-server: ` first,
//! filtered by `-q`/`-v`.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// How much to say, from `-q` (0) to `-vv` (3).
static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// Importance of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Always shown.
    Error = 0,
    /// Always shown: something the operator must know (e.g. open authentication).
    Warning = 4,
    /// Shown unless `-q`.
    Info = 1,
    /// `-v`.
    Verbose = 2,
    /// `-vv`.
    Debug = 3,
}

/// Set the verbosity from the command line.
pub fn set_verbosity(quiet: bool, verbose: u8) {
    let level = if quiet { 0 } else { 1 + verbose.min(2) };
    VERBOSITY.store(level, Ordering::Relaxed);
}

/// Whether lines of `level` are shown.
pub fn enabled(level: Level) -> bool {
    level == Level::Warning || level as u8 <= VERBOSITY.load(Ordering::Relaxed)
}

/// Write one line to stderr (with a single write, so lines of different threads never mix).
pub fn emit(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let prefix = match level {
        Level::Error => "msglog-server: error: ",
        Level::Warning => "msglog-server: warning: ",
        _ => "msglog-server: ",
    };
    let line = format!("{prefix}{args}\n");
    // Nothing sensible is left to do if stderr itself fails.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// An error line.
macro_rules! error {
    ($($arg:tt)*) => { $crate::report::emit($crate::report::Level::Error, format_args!($($arg)*)) };
}

/// A warning (shown even with `-q`).
macro_rules! warning {
    ($($arg:tt)*) => { $crate::report::emit($crate::report::Level::Warning, format_args!($($arg)*)) };
}

/// A line for the operator (hidden by `-q`).
macro_rules! info {
    ($($arg:tt)*) => { $crate::report::emit($crate::report::Level::Info, format_args!($($arg)*)) };
}

/// A line shown with `-v`.
macro_rules! verbose {
    ($($arg:tt)*) => { $crate::report::emit($crate::report::Level::Verbose, format_args!($($arg)*)) };
}

/// A line shown with `-vv`.
macro_rules! debug {
    ($($arg:tt)*) => { $crate::report::emit($crate::report::Level::Debug, format_args!($($arg)*)) };
}

/// Lets a recurring error through at most once per interval, counting the rest,
/// so that a failing disk or an exhausted fd table cannot flood stderr.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// At most one line per `interval`.
    pub const fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be written now, `n` being how many were
    /// suppressed since the last one; `None` to stay silent.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}
