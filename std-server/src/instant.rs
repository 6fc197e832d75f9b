//! The std server's clock as the core sessions see it: `std::time::Instant`
//! as a [`msglog_core::Instant`], converted both ways here and nowhere else.

use std::time::{Duration, Instant};

/// A `std::time::Instant`, as the instant type of the server's
/// [`ServerSession`](crate::capacity::ServerSession); durations are
/// `std::time::Duration`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SessionInstant(Instant);

impl msglog_core::Instant for SessionInstant {
    type Duration = Duration;

    fn checked_add(self, duration: Duration) -> Option<Self> {
        self.0.checked_add(duration).map(SessionInstant)
    }
}

impl From<Instant> for SessionInstant {
    fn from(instant: Instant) -> Self {
        SessionInstant(instant)
    }
}

impl From<SessionInstant> for Instant {
    fn from(instant: SessionInstant) -> Self {
        instant.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msglog_core::Instant as _;

    #[test]
    fn converts_exactly_both_ways() {
        let now = Instant::now();
        let later = SessionInstant::from(now).checked_add(Duration::from_nanos(1_500_000_001));
        assert_eq!(
            later.map(Instant::from),
            Some(now + Duration::from_nanos(1_500_000_001))
        );
    }
}
