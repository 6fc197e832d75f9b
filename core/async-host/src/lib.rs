//! What a tokio program needs to run `msglog-core`'s async drivers
//! ([`msglog_core::asynch`]), and the tests (`tests/`) that run them
//! against the real `msglog-server` and `msglog-client` programs: tokio's
//! sockets through `embedded-io-adapters` ([`connect`]), tokio's clock as the
//! drivers' [`Timer`] ([`TokioTimer`]), and a [`Sink`] several connections
//! share ([`SharedLog`]).
//!
//! A package of its own so that tokio never becomes a dependency of the core.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use msglog_core::asynch::Timer;
use msglog_core::{write_record, Sink};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::time::Instant;

/// A TCP connection as the async drivers' transport.
pub type Connection = FromTokio<TcpStream>;

/// Connect to `addr`.
pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<Connection> {
    Ok(FromTokio::new(TcpStream::connect(addr).await?))
}

/// tokio's clock: instants are nanoseconds since the timer was made.
#[derive(Debug, Clone, Copy)]
pub struct TokioTimer {
    epoch: Instant,
}

impl TokioTimer {
    pub fn new() -> Self {
        TokioTimer {
            epoch: Instant::now(),
        }
    }
}

impl Default for TokioTimer {
    fn default() -> Self {
        TokioTimer::new()
    }
}

/// `duration` in nanoseconds, the unit of [`TokioTimer`]'s instants.
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Timer for TokioTimer {
    type Instant = u64;

    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    fn sleep_until(&self, deadline: u64) -> impl Future<Output = ()> {
        tokio::time::sleep_until(self.epoch + Duration::from_nanos(deadline))
    }
}

/// A `messages.log` in memory that every connection appends to.
#[derive(Debug, Clone, Default)]
pub struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl SharedLog {
    /// Its records so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().map(|log| log.clone()).unwrap_or_default()
    }
}

impl Sink for SharedLog {
    type Error = ();

    fn append(&mut self, name: &str, message: &[u8]) -> Result<(), ()> {
        let mut log = self.0.lock().map_err(|_| ())?;
        write_record(&mut *log, name, message).map_err(|_| ())
    }
}
