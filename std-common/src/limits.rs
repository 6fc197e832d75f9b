//! Process limits a server or a load generator raises at start-up.

use std::io;

/// Raise the soft limit on open files (`RLIMIT_NOFILE`) to the hard limit:
/// 10,000 connections need 10,000 descriptors. Returns the soft limit now
/// in force. Windows has no such limit (sockets and files are handles,
/// bounded by memory): there this does nothing and returns `u64::MAX`.
#[cfg(unix)]
pub fn raise_fd_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Raise the soft limit on open files: Windows has none (see the Unix
/// version), so this does nothing and returns `u64::MAX`.
#[cfg(windows)]
pub fn raise_fd_limit() -> io::Result<u64> {
    Ok(u64::MAX)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let raised = raise_fd_limit().unwrap();
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(raised, soft);
        assert_eq!(soft, hard);
        // Raising again changes nothing.
        assert_eq!(raise_fd_limit().unwrap(), soft);
    }
}
