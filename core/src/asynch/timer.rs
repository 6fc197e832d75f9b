//! The async drivers' clock, and a read raced against a deadline on it.

use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use crate::time::Instant;

/// The clock of an async driver: the time, and a future that ends at a
/// given time, on the caller's executor (`embassy_time::Timer::at`,
/// `tokio::time::sleep_until`, ...). The driver races each read against
/// [`sleep_until`](Self::sleep_until) the session's deadline; the core
/// depends on no executor.
pub trait Timer {
    /// The clock's instants (e.g. `u64` milliseconds since boot).
    type Instant: Instant;

    /// The current time.
    fn now(&self) -> Self::Instant;

    /// A future that ends once [`now`](Self::now) has reached `deadline`
    /// (at once if it has). Ending earlier is harmless: the driver looks at
    /// the time and waits again.
    fn sleep_until(&self, deadline: Self::Instant) -> impl Future<Output = ()>;
}

/// No clock: a driver that waits as long as its transport does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoTimer;

impl Timer for NoTimer {
    type Instant = u64;

    fn now(&self) -> u64 {
        0
    }

    fn sleep_until(&self, _deadline: u64) -> impl Future<Output = ()> {
        core::future::pending()
    }
}

/// How a read raced against a deadline ended.
pub(crate) enum Raced<R, I> {
    /// The read completed (first, or at the same poll as the deadline).
    Read(R),
    /// The deadline passed first; the time then.
    Deadline(I),
}

/// Run `read` until it completes or `timer` reaches `deadline` (`None`:
/// until it completes). A timer that wakes early is set again; the read
/// goes on meanwhile.
pub(crate) async fn read_until<F, M>(
    read: F,
    timer: &M,
    deadline: Option<M::Instant>,
) -> Raced<F::Output, M::Instant>
where
    F: Future,
    M: Timer + ?Sized,
{
    let Some(deadline) = deadline else {
        return Raced::Read(read.await);
    };
    let mut read = pin!(read);
    loop {
        let mut sleep = pin!(timer.sleep_until(deadline));
        let woke = poll_fn(|cx| {
            if let Poll::Ready(output) = read.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            sleep.as_mut().poll(cx).map(|()| None)
        })
        .await;
        if let Some(output) = woke {
            return Raced::Read(output);
        }
        let now = timer.now();
        if now >= deadline {
            return Raced::Deadline(now);
        }
    }
}
