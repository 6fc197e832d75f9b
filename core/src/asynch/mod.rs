//! The async drivers (feature `async`): the blocking drivers' twins over
//! [`embedded_io_async`], with the same names, errors and results, and the
//! same sans-I/O sessions underneath ([`Session`](crate::Session),
//! [`ClientSession`](crate::ClientSession)): no protocol rule is written
//! here.
//!
//! | blocking | async |
//! |---|---|
//! | [`serve`](crate::serve), [`serve_with_timer`](crate::serve_with_timer) | [`serve`], [`serve_with_timer`] |
//! | [`Client`](crate::Client) | [`Client`] |
//! | [`stream_copy`](crate::stream_copy) | [`stream_copy`] |
//! | [`Timer`](crate::Timer), [`NoTimer`](crate::NoTimer) | [`Timer`], [`NoTimer`] |
//!
//! No executor is needed or assumed. Time comes from the caller's
//! [`Timer`]: the drivers ask it for the time and for a future that ends at
//! the session's deadline ([`Session::poll_timeout`](crate::Session::poll_timeout),
//! [`ClientSession::poll_timeout`](crate::ClientSession::poll_timeout)),
//! and race every read against it. With `embassy-time`:
//!
//! ```ignore
//! struct EmbassyTimer;
//!
//! impl msglog_core::asynch::Timer for EmbassyTimer {
//!     type Instant = u64; // milliseconds since boot
//!     fn now(&self) -> u64 {
//!         embassy_time::Instant::now().as_millis()
//!     }
//!     fn sleep_until(&self, deadline: u64) -> impl core::future::Future<Output = ()> {
//!         embassy_time::Timer::at(embassy_time::Instant::from_millis(deadline))
//!     }
//! }
//! ```
//!
//! A read that loses the race is dropped, so a transport's `read` should
//! be cancel-safe, as `embedded-io-async` recommends (embassy-net's
//! `TcpSocket`, `embedded-io-adapters`' tokio adapter): the session ends
//! then anyway, unless the timer woke early, when the same read goes on.

mod client;
mod serve;
mod stream;
mod timer;

pub use client::Client;
pub use serve::{serve, serve_with_timer};
pub use stream::stream_copy;
pub use timer::{NoTimer, Timer};

/// Like `Write::write_all`, but a writer that returns `Ok(0)` is an error, not a panic.
async fn write_all<W: embedded_io_async::Write + ?Sized>(
    writer: &mut W,
    mut buf: &[u8],
) -> Result<(), crate::WriteError<W::Error>> {
    use crate::WriteError;
    while !buf.is_empty() {
        match writer.write(buf).await {
            Ok(0) => return Err(WriteError::WriteZero),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(e) => return Err(WriteError::Io(e)),
        }
    }
    Ok(())
}
