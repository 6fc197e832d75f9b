//! The time from a message's last byte to its status, as a histogram each
//! event loop keeps for itself: one observation per iteration (the
//! iteration's answered MESSAGEs all share it), three relaxed atomic adds
//! on memory no other thread writes. A scrape reads and merges them.
//!
//! The last byte's time is when the iteration that read it began (its
//! `poll` returned); the status's, when the iteration's statuses were sent
//! (after the commit, and with `--fsync` its `fdatasync`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (the last one is `+Inf`).
pub(crate) const BOUNDS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// One event loop's histogram; its own cache lines, so that loops do not
/// slow one another down.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Latency {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A histogram's figures, merged over event loops.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) buckets: [u64; BOUNDS.len() + 1],
    pub(crate) count: u64,
    pub(crate) sum_seconds: f64,
}

impl Latency {
    /// `messages` answered `took` after their iteration began.
    pub(crate) fn observe(&self, took: Duration, messages: u64) {
        if messages == 0 {
            return;
        }
        let seconds = took.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BOUNDS.len());
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket].fetch_add(messages, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(nanos.saturating_mul(messages), Ordering::Relaxed);
        self.count.fetch_add(messages, Ordering::Relaxed);
    }

    /// Add this histogram's figures to `into`.
    pub(crate) fn merge_into(&self, into: &mut Snapshot) {
        for (total, bucket) in into.buckets.iter_mut().zip(&self.buckets) {
            *total += bucket.load(Ordering::Relaxed);
        }
        into.count += self.count.load(Ordering::Relaxed);
        into.sum_seconds += self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_merge() {
        let a = Latency::default();
        let b = Latency::default();
        a.observe(Duration::from_micros(40), 3);
        a.observe(Duration::from_millis(1), 1);
        b.observe(Duration::from_secs(60), 2);
        b.observe(Duration::from_secs(1), 0);
        let mut merged = Snapshot::default();
        a.merge_into(&mut merged);
        b.merge_into(&mut merged);
        assert_eq!(merged.count, 6);
        assert_eq!(merged.buckets[0], 3, "<= 50 us");
        assert_eq!(merged.buckets[4], 1, "<= 1 ms");
        assert_eq!(merged.buckets[BOUNDS.len()], 2, "+Inf");
        assert_eq!(merged.buckets.iter().sum::<u64>(), 6);
        let expected = 3.0 * 40e-6 + 1e-3 + 120.0;
        assert!(
            (merged.sum_seconds - expected).abs() < 1e-9,
            "{}",
            merged.sum_seconds
        );
    }
}
