//! State shared by the acceptor, the event loops and the verifier pool.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::auth::Policy;
use crate::backoff::Backoff;
use crate::journal::Journal;

/// Settings the event loops need.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub frame_timeout: Duration,
    pub idle_timeout: Duration,
}

#[derive(Debug)]
pub struct Shared {
    pub limits: Limits,
    /// messages.log and transactions.log.
    pub journal: Journal,
    pub policy: Policy,
    /// Shared with the verifier pool, which applies it to Argon2 checks.
    pub backoff: Arc<Mutex<Backoff>>,
    /// Connections accepted and not yet closed.
    pub open: AtomicUsize,
    pub stats: Stats,
}

impl Shared {
    pub fn backoff(&self) -> MutexGuard<'_, Backoff> {
        self.backoff.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counters for the summary and `-v`.
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    pub overloaded: AtomicU64,
    pub messages: AtomicU64,
    pub write_failures: AtomicU64,
    pub rejected: AtomicU64,
    pub timeouts: AtomicU64,
    /// Passwords refused because the verification queue was full.
    pub passwords_overloaded: AtomicU64,
}

/// A worker's counts for one iteration, added to [`Stats`] at its end.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub messages: u64,
    pub write_failures: u64,
    pub rejected: u64,
    pub timeouts: u64,
    pub overloaded: u64,
}

impl Stats {
    pub fn add(&self, counts: &mut Counts) {
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
        *counts = Counts::default();
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
