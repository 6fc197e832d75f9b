//! The std helpers msglog's std crates share, one of each:
//!
//! | module | what |
//! |---|---|
//! | `io` | [`Std`], the `std::io` → `embedded_io` adapter the core's drivers need, and [`retry_interrupted`], the one `EINTR` loop |
//! | `duration` | `parse_duration`: `250ms`, `2s`, `5m`, `1h` or a bare number of seconds, on every command line (feature `duration`) |
//! | `password` | [`read_password_file`]: a password file as the client programs read it |
//! | `limits` | `raise_fd_limit`: the soft descriptor limit raised to the hard one (feature `fd-limit`) |
//! | `usage` | `usage_error`, `exit_for_command_line`, `USAGE_EXIT_CODE`: a command-line error as one line that says `try --help` once and exit code 2, the same in every program (feature `clap`) |
//! | `generate` | `Generate`: every program's `--generate`, shell completions and a man page from its clap definition (feature `clap`) |
//!
//! The modules do not use one another. `duration` and `fd-limit` are
//! default features; the client library turns them off.

#[cfg(feature = "duration")]
mod duration;
#[cfg(feature = "clap")]
mod generate;
mod io;
#[cfg(feature = "fd-limit")]
mod limits;
mod password;
#[cfg(feature = "clap")]
mod usage;

#[cfg(feature = "duration")]
pub use duration::{parse_duration, DurationError, Zero};
#[cfg(feature = "clap")]
pub use generate::Generate;
pub use io::{retry_interrupted, Std};
#[cfg(feature = "fd-limit")]
pub use limits::raise_fd_limit;
pub use password::read_password_file;
#[cfg(feature = "clap")]
pub use usage::{exit_for_command_line, usage_error, USAGE_EXIT_CODE};
