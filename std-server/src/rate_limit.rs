//! Keeping a recurring error from flooding the operator's log.

use std::time::{Duration, Instant};

/// Lets a recurring error through at most once per interval, counting the rest,
/// so that a failing disk or an exhausted fd table cannot flood stderr.
#[derive(Debug)]
pub(crate) struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// At most one line per `interval`.
    pub(crate) const fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be written now, `n` being how many were
    /// suppressed since the last one; `None` to stay silent.
    pub(crate) fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_the_count_of_the_rest() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(Duration::from_secs(5));
        assert_eq!(limit.admit(t0), Some(0));
        assert_eq!(limit.admit(t0 + Duration::from_secs(1)), None);
        assert_eq!(limit.admit(t0 + Duration::from_secs(4)), None);
        assert_eq!(limit.admit(t0 + Duration::from_secs(5)), Some(2));
        assert_eq!(limit.admit(t0 + Duration::from_secs(6)), None);
        assert_eq!(limit.admit(t0 + Duration::from_secs(60)), Some(1));
    }
}
