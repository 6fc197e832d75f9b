//! What the server tells its operator: one line per event, through the
//! [`log`] facade (target `msglog_server::...`), at the levels the
//! `msglog-server` binary maps to its flags. Passwords, hashes and message
//! bodies never go in a line.
//!
//! | macro | `log` level | shown by the binary |
//! |---|---|---|
//! | `error!` | `Error` | always |
//! | `warning!` | `Warn` | always, even with `-q` (e.g. open authentication) |
//! | `info!` | `Info` | unless `-q` |
//! | `verbose!` | `Debug` | with `-v` (statistics) |
//! | `debug!` | `Trace` | with `-vv`: details, and every `transactions.log` line ([`debug_lines`]) |

/// An error line.
macro_rules! error {
    ($($arg:tt)*) => { ::log::error!($($arg)*) };
}

/// A warning: something the operator must know.
macro_rules! warning {
    ($($arg:tt)*) => { ::log::warn!($($arg)*) };
}

/// A line for the operator.
macro_rules! info {
    ($($arg:tt)*) => { ::log::info!($($arg)*) };
}

/// A line for `-v`.
macro_rules! verbose {
    ($($arg:tt)*) => { ::log::debug!($($arg)*) };
}

/// A line for `-vv`.
macro_rules! debug {
    ($($arg:tt)*) => { ::log::trace!($($arg)*) };
}

/// With `-vv`, each of `lines` (`transactions.log` lines, `\n`-ended) as
/// a line of its own: a connection's events and transactions as they
/// happen, for whoever is debugging a client. Costs nothing otherwise.
pub(crate) fn debug_lines(lines: &[u8]) {
    if !log::log_enabled!(log::Level::Trace) {
        return;
    }
    for line in lines.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        debug!("{}", String::from_utf8_lossy(line));
    }
}
