//! Slowing down repeated authentication failures from one address, and
//! remembering which addresses logged in recently (the verification queue
//! serves them first, and those with failures last).
//!
//! After `n` failures, the next verification from that address starts only
//! `BASE * 2^(n-1)` (at most `MAX`) after the last failure; the connection
//! waits on a timer meanwhile, so no thread blocks and nothing spins.
//! Attempts of a failed address on parallel connections take turns: one
//! starts per interval, the others wait again. An address is forgotten
//! after `FORGET` without failures or on a success. A success is
//! remembered for `REMEMBER_SUCCESS`. Both tables are bounded: when full,
//! the stalest addresses are dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const BASE: Duration = Duration::from_millis(250);
const MAX: Duration = Duration::from_secs(8);
const FORGET: Duration = Duration::from_secs(120);
const REMEMBER_SUCCESS: Duration = Duration::from_secs(24 * 3600);

/// Failure counts and last successes per address.
#[derive(Debug)]
pub(crate) struct Backoff {
    failures: HashMap<IpAddr, Failures>,
    successes: HashMap<IpAddr, Instant>,
    capacity: usize,
    /// Every verdict passes through here: counted for the metrics.
    pub(crate) counts: BackoffCounts,
}

/// Password checks and back-off waits so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BackoffCounts {
    pub(crate) accepted: u64,
    pub(crate) refused: u64,
    /// Verifications told to wait for their address's back-off.
    pub(crate) waits: u64,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// The next verification may not start before this (one per interval).
    next_start: Instant,
}

fn delay(count: u32) -> Duration {
    match count {
        0 => Duration::ZERO,
        n => BASE.saturating_mul(1 << (n - 1).min(16)).min(MAX),
    }
}

impl Backoff {
    /// A table of at most `capacity` addresses.
    pub(crate) fn new(capacity: usize) -> Self {
        Backoff {
            failures: HashMap::new(),
            successes: HashMap::new(),
            capacity: capacity.max(1),
            counts: BackoffCounts::default(),
        }
    }

    /// Whether `ip` has failures that are not forgotten yet.
    pub(crate) fn failed_recently(&self, ip: IpAddr, now: Instant) -> bool {
        self.failures.get(&ip).is_some_and(|entry| {
            now.saturating_duration_since(entry.last) < FORGET || entry.next_start > now
        })
    }

    /// Whether `ip` logged in within `REMEMBER_SUCCESS`.
    pub(crate) fn logged_in_recently(&self, ip: IpAddr, now: Instant) -> bool {
        self.successes
            .get(&ip)
            .is_some_and(|&at| now.saturating_duration_since(at) < REMEMBER_SUCCESS)
    }

    /// How long a verification from `ip` must still wait. Zero means it may
    /// start now, and takes the address's turn: another attempt asking
    /// before the next interval has passed must wait (and ask again).
    pub(crate) fn wait(&mut self, ip: IpAddr, now: Instant) -> Duration {
        let Some(entry) = self.failures.get_mut(&ip) else {
            return Duration::ZERO;
        };
        if now.saturating_duration_since(entry.last) >= FORGET && entry.next_start <= now {
            self.failures.remove(&ip);
            return Duration::ZERO;
        }
        let ready = (entry.last + delay(entry.count)).max(entry.next_start);
        if ready > now {
            self.counts.waits += 1;
            return ready - now;
        }
        entry.next_start = now + delay(entry.count);
        Duration::ZERO
    }

    /// Record a failed verification.
    pub(crate) fn failed(&mut self, ip: IpAddr, now: Instant) {
        if !self.failures.contains_key(&ip) && self.failures.len() >= self.capacity {
            self.failures
                .retain(|_, entry| now.saturating_duration_since(entry.last) < FORGET);
            if self.failures.len() >= self.capacity {
                let stalest = self
                    .failures
                    .iter()
                    .min_by_key(|(_, e)| e.last)
                    .map(|(ip, _)| *ip);
                if let Some(stalest) = stalest {
                    self.failures.remove(&stalest);
                }
            }
        }
        let entry = self.failures.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
            next_start: now,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    /// Record a successful verification.
    pub(crate) fn succeeded(&mut self, ip: IpAddr, now: Instant) {
        self.failures.remove(&ip);
        if !self.successes.contains_key(&ip) && self.successes.len() >= self.capacity {
            // Keep the newer half: amortized, each success costs O(1).
            let mut times: Vec<Instant> = self.successes.values().copied().collect();
            let middle = times.len() / 2;
            let (_, &mut median, _) = times.select_nth_unstable(middle);
            self.successes.retain(|_, at| *at > median);
        }
        self.successes.insert(ip, now);
    }

    /// Record a verification's result.
    pub(crate) fn record(&mut self, ip: IpAddr, accepted: bool, now: Instant) {
        if accepted {
            self.counts.accepted += 1;
            self.succeeded(ip, now);
        } else {
            self.counts.refused += 1;
            self.failed(ip, now);
        }
    }

    /// Addresses with failures remembered (some of them waiting).
    pub(crate) fn len(&self) -> usize {
        self.failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_forgives() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        let mut backoff = Backoff::new(10);
        assert_eq!(backoff.wait(ip, t0), Duration::ZERO);
        backoff.failed(ip, t0);
        assert_eq!(backoff.wait(ip, t0), BASE);
        backoff.failed(ip, t0);
        assert_eq!(backoff.wait(ip, t0), BASE * 2);
        for _ in 0..40 {
            backoff.failed(ip, t0);
        }
        assert_eq!(backoff.wait(ip, t0), MAX);
        assert_eq!(backoff.wait(ip, t0 + MAX), Duration::ZERO);
        backoff.succeeded(ip, t0 + MAX);
        assert_eq!(backoff.wait(ip, t0), Duration::ZERO);
        backoff.failed(ip, t0);
        assert_eq!(backoff.wait(ip, t0 + FORGET), Duration::ZERO);
    }

    #[test]
    fn parallel_attempts_of_a_failed_address_take_turns() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = Instant::now();
        let mut backoff = Backoff::new(10);
        backoff.failed(ip, t0);
        // Two connections ask at once; both wait for the first turn.
        assert_eq!(backoff.wait(ip, t0), BASE);
        assert_eq!(backoff.wait(ip, t0), BASE);
        // At the turn, the first to ask starts; the other waits a full interval.
        assert_eq!(backoff.wait(ip, t0 + BASE), Duration::ZERO);
        assert_eq!(backoff.wait(ip, t0 + BASE), BASE);
        // Its verification fails: the next turn is after the doubled delay.
        backoff.failed(ip, t0 + BASE);
        assert_eq!(backoff.wait(ip, t0 + BASE * 2), BASE);
        assert_eq!(backoff.wait(ip, t0 + BASE * 3), Duration::ZERO);
        assert_eq!(backoff.wait(ip, t0 + BASE * 3), BASE * 2);
    }

    #[test]
    fn remembers_recent_failures_and_successes() {
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let t0 = Instant::now();
        let mut backoff = Backoff::new(10);
        assert!(!backoff.failed_recently(ip, t0) && !backoff.logged_in_recently(ip, t0));
        backoff.record(ip, false, t0);
        assert!(backoff.failed_recently(ip, t0 + FORGET / 2));
        assert!(!backoff.failed_recently(ip, t0 + FORGET));
        backoff.record(ip, true, t0 + FORGET);
        assert!(!backoff.failed_recently(ip, t0 + FORGET));
        assert!(backoff.logged_in_recently(ip, t0 + FORGET + REMEMBER_SUCCESS / 2));
        assert!(!backoff.logged_in_recently(ip, t0 + FORGET + REMEMBER_SUCCESS));
        // A failure after a success: failed recently (it comes first).
        backoff.record(ip, false, t0 + FORGET * 2);
        assert!(backoff.failed_recently(ip, t0 + FORGET * 2));
        assert!(backoff.logged_in_recently(ip, t0 + FORGET * 2));
    }

    #[test]
    fn stays_bounded() {
        let t0 = Instant::now();
        let mut backoff = Backoff::new(100);
        for i in 0..10_000u32 {
            backoff.failed(
                IpAddr::from(i.to_be_bytes()),
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert_eq!(backoff.len(), 100);
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            backoff.succeeded(ip, t0 + Duration::from_millis(u64::from(i)));
            assert!(backoff.successes.len() <= 100);
        }
        // The newest are kept.
        assert!(backoff.logged_in_recently(IpAddr::from(9_999u32.to_be_bytes()), t0));
    }
}
