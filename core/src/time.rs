//! Time as an input of the sans-I/O sessions: the caller's clock, never the core's.
//!
//! A session never reads a clock. The calls that start or end a wait take
//! the caller's `now`; `poll_timeout()` says when the session next needs
//! attention, and `handle_timeout(now)` lets it act once that time has come
//! (the quinn-proto model). A driver arms its timer with `poll_timeout()`
//! after every call into the session: a blocking driver bounds its next
//! read by it, an async driver races the read against a timer.
//!
//! The instant type is the caller's: a `u64` count of milliseconds,
//! microseconds, nanoseconds or ticks since any epoch, or any type that
//! implements [`Instant`] (a newtype around `std::time::Instant` or an
//! embedded HAL's instant).

/// A point in time on the caller's monotonic clock.
pub trait Instant: Copy + Ord + core::fmt::Debug {
    /// A span of time on this clock, e.g. a timeout.
    type Duration: Copy + core::fmt::Debug;

    /// `self + duration`, or `None` if the clock cannot express it (a
    /// deadline that never comes).
    fn checked_add(self, duration: Self::Duration) -> Option<Self>;
}

/// A count of any unit since any epoch (milliseconds since boot, ticks,
/// nanoseconds since a process started); durations are in the same unit.
impl Instant for u64 {
    type Duration = u64;

    fn checked_add(self, duration: u64) -> Option<u64> {
        u64::checked_add(self, duration)
    }
}

/// When a wait that began at `since` times out, if there is a timeout.
pub(crate) fn deadline<I: Instant>(since: Option<I>, timeout: Option<I::Duration>) -> Option<I> {
    since?.checked_add(timeout?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_needs_a_start_and_a_timeout_and_may_never_come() {
        assert_eq!(deadline(Some(10u64), Some(5)), Some(15));
        assert_eq!(deadline::<u64>(None, Some(5)), None);
        assert_eq!(deadline(Some(10u64), None), None);
        assert_eq!(deadline(Some(u64::MAX), Some(1)), None);
    }
}
