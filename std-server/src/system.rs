//! Process-wide settings made once at start-up.

use std::io;

/// Ignore SIGXFSZ, so that writing past `ulimit -f` fails with EFBIG (which
/// the server answers with 0xFF) instead of killing the process.
pub(crate) fn ignore_file_size_signal() -> io::Result<()> {
    // SAFETY: installing SIG_IGN has no preconditions.
    if unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
