//! `embassy-time` as the clock of `msglog-core`'s async client: instants
//! are milliseconds since boot, and the client races each read against
//! `embassy_time::Timer::at` the session's deadline.

use core::future::Future;

use embassy_time::{Instant, Timer};

/// The device's clock, for `msglog_core::asynch::Client::with_timer`.
pub struct EmbassyTimer;

impl msglog_core::asynch::Timer for EmbassyTimer {
    type Instant = u64;

    fn now(&self) -> u64 {
        Instant::now().as_millis()
    }

    fn sleep_until(&self, deadline: u64) -> impl Future<Output = ()> {
        Timer::at(Instant::from_millis(deadline))
    }
}
