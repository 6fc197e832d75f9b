//! What the accepting thread, the event loops and the verifier pool of one
//! server all use: the journal, the password policy, the back-off table,
//! the timeouts and the counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::auth::Policy;
use crate::backoff::Backoff;
use crate::config::Timeouts;
use crate::iteration::{Counts, COMMIT_STAGES, OUTCOMES, TAGS};
use crate::journal::Journal;
use crate::latency::Latency;

#[derive(Debug)]
pub(crate) struct Services {
    pub(crate) timeouts: Timeouts,
    /// messages.log and transactions.log.
    pub(crate) journal: Journal,
    pub(crate) policy: Policy,
    /// Shared with the verifier pool, which applies it to Argon2 checks.
    pub(crate) backoff: Arc<Mutex<Backoff>>,
    /// Connections accepted and not yet closed.
    pub(crate) open: AtomicUsize,
    pub(crate) stats: Stats,
    /// Each event loop's latency histogram, merged when metrics are read.
    pub(crate) latencies: Mutex<Vec<Arc<Latency>>>,
    /// The NATS sink's publisher counters, with that sink.
    #[cfg(feature = "nats")]
    pub(crate) nats: Option<Arc<crate::nats::PublishStats>>,
}

/// Counters for the summary and `-v`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) accepted: AtomicU64,
    pub(crate) overloaded: AtomicU64,
    pub(crate) messages: AtomicU64,
    pub(crate) write_failures: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    /// Passwords refused because the verification queue was full.
    pub(crate) passwords_overloaded: AtomicU64,
    /// Bytes of records written to `messages.log`.
    pub(crate) bytes: AtomicU64,
    /// Transactions answered, by tag and outcome (see `iteration::TAGS`).
    pub(crate) transactions: [[AtomicU64; OUTCOMES.len()]; TAGS.len()],
    /// Failed commits, by stage (see `iteration::COMMIT_STAGES`).
    pub(crate) commit_failures: [AtomicU64; COMMIT_STAGES.len()],
}

impl Stats {
    /// Add an iteration's counts, and zero them.
    pub(crate) fn add(&self, counts: &mut Counts) {
        let add = |counter: &AtomicU64, value: u64| {
            if value > 0 {
                counter.fetch_add(value, Ordering::Relaxed);
            }
        };
        add(&self.messages, counts.messages);
        add(&self.write_failures, counts.write_failures);
        add(&self.rejected, counts.rejected);
        add(&self.timeouts, counts.timeouts);
        add(&self.passwords_overloaded, counts.overloaded);
        add(&self.bytes, counts.bytes);
        for (counters, values) in self.transactions.iter().zip(&counts.transactions) {
            for (counter, &value) in counters.iter().zip(values) {
                add(counter, value);
            }
        }
        for (counter, &value) in self.commit_failures.iter().zip(&counts.commit_failures) {
            add(counter, value);
        }
        *counts = Counts::default();
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iterations_counts_are_added_once() {
        let stats = Stats::default();
        let mut counts = Counts {
            messages: 3,
            write_failures: 1,
            rejected: 2,
            timeouts: 4,
            overloaded: 5,
            bytes: 6,
            ..Counts::default()
        };
        counts.transactions[2][7] = 7;
        counts.commit_failures[1] = 8;
        stats.add(&mut counts);
        stats.add(&mut counts);
        assert_eq!(
            [
                &stats.messages,
                &stats.write_failures,
                &stats.rejected,
                &stats.timeouts,
                &stats.passwords_overloaded
            ]
            .map(Stats::get),
            [3, 1, 2, 4, 5]
        );
        assert_eq!(Stats::get(&stats.bytes), 6);
        assert_eq!(Stats::get(&stats.transactions[2][7]), 7);
        assert_eq!(Stats::get(&stats.transactions[2][0]), 0);
        assert_eq!(Stats::get(&stats.commit_failures[1]), 8);
    }
}
