//! Connection deadlines: a min-heap of (instant, slot, connection id) with
//! lazy deletion. Each connection remembers the instant of its live entry;
//! an entry that no longer matches is skipped when it comes due, and a
//! deadline that moved later is rescheduled then. So activity (which only
//! ever pushes an idle deadline later) costs no heap operation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, slot: usize, connection: u64) {
        self.heap.push(Reverse((at, slot, connection)));
    }

    /// The earliest instant in the heap.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next entry due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, usize, u64)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_order_only_when_due() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.push(t0 + Duration::from_secs(2), 2, 20);
        timers.push(t0 + Duration::from_secs(1), 1, 10);
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None);
        assert_eq!(
            timers.pop_due(t0 + Duration::from_secs(5)).map(|e| e.1),
            Some(1)
        );
        assert_eq!(
            timers.pop_due(t0 + Duration::from_secs(5)).map(|e| e.1),
            Some(2)
        );
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(5)), None);
    }
}
