//! Slowing down repeated authentication failures from one address.
//!
//! After `n` failures, the next verification from that address starts only
//! `BASE * 2^(n-1)` (at most `MAX`) after the last failure; the connection
//! waits on a timer meanwhile, so no thread blocks and nothing spins. An
//! address is forgotten after `FORGET` without failures or on a success. The
//! table is bounded: when full, the stalest address is dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const BASE: Duration = Duration::from_millis(250);
const MAX: Duration = Duration::from_secs(8);
const FORGET: Duration = Duration::from_secs(120);

/// Failure counts per address.
#[derive(Debug)]
pub struct Backoff {
    failures: HashMap<IpAddr, Failures>,
    capacity: usize,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

fn delay(count: u32) -> Duration {
    match count {
        0 => Duration::ZERO,
        n => BASE.saturating_mul(1 << (n - 1).min(16)).min(MAX),
    }
}

impl Backoff {
    /// A table of at most `capacity` addresses.
    pub fn new(capacity: usize) -> Self {
        Backoff {
            failures: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// How long a verification from `ip` must still wait.
    pub fn wait(&mut self, ip: IpAddr, now: Instant) -> Duration {
        let Some(entry) = self.failures.get(&ip).copied() else {
            return Duration::ZERO;
        };
        if now.saturating_duration_since(entry.last) >= FORGET {
            self.failures.remove(&ip);
            return Duration::ZERO;
        }
        (entry.last + delay(entry.count)).saturating_duration_since(now)
    }

    /// Record a failed verification.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
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
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    /// Record a successful verification.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
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
        backoff.succeeded(ip);
        assert_eq!(backoff.wait(ip, t0), Duration::ZERO);
        backoff.failed(ip, t0);
        assert_eq!(backoff.wait(ip, t0 + FORGET), Duration::ZERO);
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
    }
}
