//! The std helpers msglog's std crates share, one of each:
//!
//! | module | what |
//! |---|---|
//! | `io` | [`Std`], the `std::io` → `embedded_io` adapter the core's drivers need, and [`retry_interrupted`], the one `EINTR` loop |
//! | `duration` | [`parse_duration`]: `250ms`, `2s`, `5m`, `1h` or a bare number of seconds, on every command line |
//! | `limits` | [`raise_fd_limit`]: the soft descriptor limit raised to the hard one |
//! | `generate` | `Generate` (feature `cli`): every program's `--generate`, shell completions and a man page from its clap definition |
//!
//! The modules do not use one another.

mod duration;
#[cfg(feature = "cli")]
mod generate;
mod io;
mod limits;

pub use duration::{parse_duration, DurationError, Zero};
#[cfg(feature = "cli")]
pub use generate::Generate;
pub use io::{retry_interrupted, Std};
pub use limits::raise_fd_limit;
