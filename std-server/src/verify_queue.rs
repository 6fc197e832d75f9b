//! Password checks waiting for a verifier thread: a bounded queue served by
//! class, and within a class round-robin by source, so that a flood from
//! many addresses cannot make everyone else wait behind it.
//!
//! - **Classes**: addresses that logged in recently are served first, then
//!   addresses the server knows nothing about, and addresses with recent
//!   failures last.
//! - **Sources**: an IPv4 /24 or an IPv6 /64 is one source (one host or one
//!   customer's network); within a class each source with waiting checks
//!   gets one turn in rotation, and its own checks are served oldest first.
//! - **Bound**: at most `capacity` checks wait. When full, a new check
//!   displaces the newest check of the busiest address of the longest
//!   source of the lowest class present, if it ranks above it: a higher
//!   class; or the same class and that source holds at least two checks
//!   more than the new check's source; or, within its own source, that
//!   address holds at least two more than the new check's address.
//!   Otherwise it is refused. So a flood cannot lock out an address that
//!   logged in before, nor one busy source (or address) everybody else.
//!
//! No threads, no clocks: the verifier pool (`auth.rs`) locks it.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Checks that may wait at once (besides the one each verifier thread is
/// running): about 2.5 s of Argon2 at the default cost (20 ms) on two threads.
pub(crate) const CAPACITY: usize = 256;

/// How an address is served, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Class {
    /// Failed recently (and is in back-off).
    Failing = 0,
    /// Nothing known.
    Unknown = 1,
    /// Logged in recently.
    Trusted = 2,
}

impl Class {
    /// Every class, served first to last.
    const SERVED: [Class; 3] = [Class::Trusted, Class::Unknown, Class::Failing];

    pub(crate) fn of(failed_recently: bool, logged_in_recently: bool) -> Class {
        match (failed_recently, logged_in_recently) {
            (true, _) => Class::Failing,
            (false, true) => Class::Trusted,
            (false, false) => Class::Unknown,
        }
    }
}

/// The network a check comes from: its address's /24 (IPv4) or /64 (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Source(IpAddr);

impl Source {
    pub(crate) fn of(ip: IpAddr) -> Source {
        Source(match ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(v4.to_bits() & !0xff)),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        })
    }
}

/// What became of a pushed check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed<T> {
    Queued,
    /// Queued in place of this one, which will not be checked.
    Displaced(T),
    /// The queue is full of checks that rank as high: not queued.
    Refused(T),
}

/// The checks of one class.
#[derive(Debug)]
struct Lane<T> {
    /// Sources with waiting checks, the next to be served first.
    turns: VecDeque<Source>,
    /// Each source's checks, oldest first, with the address they came from.
    waiting: HashMap<Source, VecDeque<(IpAddr, T)>>,
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Lane {
            turns: VecDeque::new(),
            waiting: HashMap::new(),
        }
    }
}

impl<T> Lane<T> {
    fn push(&mut self, from: IpAddr, job: T) {
        let source = Source::of(from);
        let queue = self.waiting.entry(source).or_default();
        if queue.is_empty() {
            self.turns.push_back(source);
        }
        queue.push_back((from, job));
    }

    fn held_by(&self, source: Source) -> usize {
        self.waiting.get(&source).map_or(0, VecDeque::len)
    }

    fn held_by_address(&self, from: IpAddr) -> usize {
        self.waiting.get(&Source::of(from)).map_or(0, |queue| {
            queue.iter().filter(|(ip, _)| *ip == from).count()
        })
    }

    /// The address of `source` holding the most checks (of equals, the one
    /// that queued last) and how many it holds.
    fn busiest_address(&self, source: Source) -> Option<(IpAddr, usize)> {
        let mut counts: Vec<(IpAddr, usize)> = Vec::new();
        for (ip, _) in self.waiting.get(&source)?.iter().rev() {
            match counts.iter_mut().find(|(seen, _)| seen == ip) {
                Some((_, count)) => *count += 1,
                None => counts.push((*ip, 1)),
            }
        }
        let mut busiest: Option<(IpAddr, usize)> = None;
        for (ip, count) in counts {
            if busiest.is_none_or(|(_, most)| count > most) {
                busiest = Some((ip, count));
            }
        }
        busiest
    }

    /// The source holding the most checks (of equals, the one served last).
    fn longest(&self) -> Option<(Source, usize)> {
        let mut longest: Option<(Source, usize)> = None;
        for &source in &self.turns {
            let held = self.held_by(source);
            if longest.is_none_or(|(_, most)| held >= most) {
                longest = Some((source, held));
            }
        }
        longest
    }

    /// The oldest check of the source whose turn it is.
    fn pop(&mut self) -> Option<T> {
        let source = self.turns.pop_front()?;
        let queue = self.waiting.get_mut(&source)?;
        let job = queue.pop_front();
        if queue.is_empty() {
            self.waiting.remove(&source);
        } else {
            self.turns.push_back(source);
        }
        job.map(|(_, job)| job)
    }

    /// The newest check from `from`.
    fn pop_newest(&mut self, from: IpAddr) -> Option<T> {
        let source = Source::of(from);
        let queue = self.waiting.get_mut(&source)?;
        let at = queue.iter().rposition(|(ip, _)| *ip == from)?;
        let job = queue.remove(at);
        if queue.is_empty() {
            self.waiting.remove(&source);
            self.turns.retain(|&s| s != source);
        }
        job.map(|(_, job)| job)
    }
}

/// The queue; see the module documentation.
#[derive(Debug)]
pub(crate) struct VerifyQueue<T> {
    capacity: usize,
    len: usize,
    peak: usize,
    /// Indexed by `Class as usize`.
    lanes: [Lane<T>; 3],
}

impl<T> VerifyQueue<T> {
    /// A queue of at most `capacity` (at least 1) checks.
    pub(crate) fn new(capacity: usize) -> Self {
        VerifyQueue {
            capacity: capacity.max(1),
            len: 0,
            peak: 0,
            lanes: Default::default(),
        }
    }

    /// Queue a check from `from` of `class`; see the module documentation.
    pub(crate) fn push(&mut self, from: IpAddr, class: Class, job: T) -> Pushed<T> {
        let displaced = if self.len < self.capacity {
            None
        } else {
            match self.victim(from, class) {
                Some((lowest, victim)) => self.lanes[lowest as usize].pop_newest(victim),
                None => return Pushed::Refused(job),
            }
        };
        self.lanes[class as usize].push(from, job);
        match displaced {
            Some(old) => Pushed::Displaced(old),
            None => {
                self.len += 1;
                self.peak = self.peak.max(self.len);
                Pushed::Queued
            }
        }
    }

    /// The class and address whose newest check a new one from `from` of
    /// `class` displaces, if it ranks above it.
    fn victim(&self, from: IpAddr, class: Class) -> Option<(Class, IpAddr)> {
        let lowest = Class::SERVED
            .into_iter()
            .rev()
            .find(|&c| !self.lanes[c as usize].turns.is_empty())?;
        let lane = &self.lanes[lowest as usize];
        let (longest, held) = lane.longest()?;
        let (busiest, most) = lane.busiest_address(longest)?;
        let outranks = match class.cmp(&lowest) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal if longest != Source::of(from) => {
                held >= lane.held_by(Source::of(from)) + 2
            }
            Ordering::Equal => most >= lane.held_by_address(from) + 2,
        };
        outranks.then_some((lowest, busiest))
    }

    /// The next check to run: the highest class first, sources in turn.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let job = Class::SERVED
            .into_iter()
            .find_map(|class| self.lanes[class as usize].pop())?;
        self.len -= 1;
        Some(job)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The most checks that ever waited at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn source(text: &str) -> Source {
        Source::of(ip(text))
    }

    fn drain<T>(queue: &mut VerifyQueue<T>) -> Vec<T> {
        std::iter::from_fn(|| queue.pop()).collect()
    }

    #[test]
    fn a_source_is_a_v4_slash_24_or_a_v6_slash_64() {
        assert_eq!(source("192.0.2.1"), source("192.0.2.254"));
        assert_ne!(source("192.0.2.1"), source("192.0.3.1"));
        assert_eq!(source("::ffff:192.0.2.9"), source("192.0.2.1"));
        assert_eq!(source("2001:db8::1"), source("2001:db8::ffff:ffff:ffff:1"));
        assert_ne!(source("2001:db8::1"), source("2001:db8:0:1::1"));
    }

    #[test]
    fn sources_take_turns_and_each_source_is_served_in_order() {
        let mut queue = VerifyQueue::new(100);
        for job in ["a1", "a2", "a3", "a4"] {
            queue.push(ip("10.0.0.1"), Class::Unknown, job);
        }
        // Another address of the same /24 is the same source.
        queue.push(ip("10.0.0.77"), Class::Unknown, "a5");
        queue.push(ip("10.0.1.1"), Class::Unknown, "b1");
        queue.push(ip("10.0.2.1"), Class::Unknown, "c1");
        queue.push(ip("10.0.2.1"), Class::Unknown, "c2");
        assert_eq!(queue.len(), 8);
        assert_eq!(
            drain(&mut queue),
            ["a1", "b1", "c1", "a2", "c2", "a3", "a4", "a5"]
        );
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.pop(), None);
        // A source that comes back waits for the others' turns.
        queue.push(ip("10.0.0.1"), Class::Unknown, "a6");
        queue.push(ip("10.0.1.1"), Class::Unknown, "b2");
        assert_eq!(queue.pop(), Some("a6"));
        queue.push(ip("10.0.0.1"), Class::Unknown, "a7");
        assert_eq!(drain(&mut queue), ["b2", "a7"]);
    }

    #[test]
    fn trusted_addresses_first_failing_ones_last() {
        let mut queue = VerifyQueue::new(100);
        queue.push(ip("10.0.0.1"), Class::Failing, "failing");
        queue.push(ip("10.0.1.1"), Class::Unknown, "unknown 1");
        queue.push(ip("10.0.1.1"), Class::Unknown, "unknown 2");
        queue.push(ip("10.0.2.1"), Class::Trusted, "trusted");
        queue.push(ip("10.0.3.1"), Class::Unknown, "unknown 3");
        assert_eq!(
            drain(&mut queue),
            ["trusted", "unknown 1", "unknown 3", "unknown 2", "failing"]
        );
        assert_eq!(Class::of(true, true), Class::Failing);
        assert_eq!(Class::of(false, true), Class::Trusted);
        assert_eq!(Class::of(false, false), Class::Unknown);
    }

    #[test]
    fn holds_at_most_its_capacity() {
        let mut queue = VerifyQueue::new(4);
        for i in 0..4u8 {
            let from = IpAddr::from([10, 0, i, 1]);
            assert_eq!(queue.push(from, Class::Unknown, i), Pushed::Queued);
        }
        // Four sources of one check each, all unknown: first come, first served.
        let late = ip("10.0.9.1");
        assert_eq!(queue.push(late, Class::Unknown, 9), Pushed::Refused(9));
        assert_eq!(queue.push(late, Class::Failing, 8), Pushed::Refused(8));
        assert_eq!((queue.len(), queue.peak()), (4, 4));
        queue.pop();
        assert_eq!(queue.push(late, Class::Unknown, 9), Pushed::Queued);
        assert_eq!(drain(&mut queue), [1, 2, 3, 9]);
        assert_eq!(queue.peak(), 4);
    }

    #[test]
    fn a_higher_class_displaces_the_newest_check_of_the_longest_lowest_source() {
        let mut queue = VerifyQueue::new(5);
        let flood = ip("10.0.0.1");
        let other = ip("10.0.1.1");
        queue.push(other, Class::Failing, "other failing");
        for job in ["flood 1", "flood 2", "flood 3"] {
            queue.push(flood, Class::Failing, job);
        }
        queue.push(other, Class::Unknown, "other unknown");
        // Full: the lowest class is Failing, its longest source the flood.
        assert_eq!(
            queue.push(ip("10.0.2.1"), Class::Trusted, "trusted"),
            Pushed::Displaced("flood 3")
        );
        assert_eq!(
            queue.push(ip("10.0.3.1"), Class::Unknown, "unknown"),
            Pushed::Displaced("flood 2")
        );
        // Equal shares in the lowest class: the one served last goes.
        assert_eq!(
            queue.push(ip("10.0.4.1"), Class::Trusted, "trusted 2"),
            Pushed::Displaced("flood 1")
        );
        assert_eq!(
            queue.push(ip("10.0.5.1"), Class::Unknown, "unknown 2"),
            Pushed::Displaced("other failing")
        );
        // Now only unknown and trusted: a failing address cannot get in.
        assert_eq!(
            queue.push(flood, Class::Failing, "flood 4"),
            Pushed::Refused("flood 4")
        );
        assert_eq!(queue.len(), 5);
        assert_eq!(
            drain(&mut queue),
            [
                "trusted",
                "trusted 2",
                "other unknown",
                "unknown",
                "unknown 2"
            ]
        );
    }

    #[test]
    fn within_a_source_an_address_displaces_only_a_much_busier_one() {
        let mut queue = VerifyQueue::new(4);
        let busy = ip("10.0.0.1");
        for job in ["busy 1", "busy 2", "busy 3", "busy 4"] {
            queue.push(busy, Class::Unknown, job);
        }
        // Another address of the same /24.
        let neighbour = ip("10.0.0.2");
        assert_eq!(
            queue.push(neighbour, Class::Unknown, "neighbour 1"),
            Pushed::Displaced("busy 4")
        );
        assert_eq!(
            queue.push(neighbour, Class::Unknown, "neighbour 2"),
            Pushed::Displaced("busy 3")
        );
        assert_eq!(
            queue.push(neighbour, Class::Unknown, "neighbour 3"),
            Pushed::Refused("neighbour 3")
        );
        // One source: served in the order queued.
        assert_eq!(
            drain(&mut queue),
            ["busy 1", "busy 2", "neighbour 1", "neighbour 2"]
        );
    }

    #[test]
    fn within_a_class_a_source_displaces_only_a_much_longer_one() {
        let mut queue = VerifyQueue::new(4);
        let busy = ip("10.0.0.1");
        for job in ["busy 1", "busy 2", "busy 3", "busy 4"] {
            queue.push(busy, Class::Unknown, job);
        }
        // The busy source cannot push out its own checks.
        assert_eq!(
            queue.push(busy, Class::Unknown, "busy 5"),
            Pushed::Refused("busy 5")
        );
        let quiet = ip("10.0.1.1");
        assert_eq!(
            queue.push(quiet, Class::Unknown, "quiet 1"),
            Pushed::Displaced("busy 4")
        );
        assert_eq!(
            queue.push(quiet, Class::Unknown, "quiet 2"),
            Pushed::Displaced("busy 3")
        );
        // Two each: the shares are even, the newcomer is refused.
        assert_eq!(
            queue.push(quiet, Class::Unknown, "quiet 3"),
            Pushed::Refused("quiet 3")
        );
        assert_eq!(
            queue.push(ip("10.0.2.1"), Class::Unknown, "third"),
            Pushed::Displaced("quiet 2")
        );
        assert_eq!(queue.len(), 4);
        assert_eq!(drain(&mut queue), ["busy 1", "quiet 1", "third", "busy 2"]);
    }
}
