//! What one event-loop iteration produces before it is committed: the
//! records of its MESSAGEs (one batch for `messages.log`), an entry for
//! every line of `transactions.log`, the connections holding a 0x00 back,
//! and the connections with something left to do at its end.
//!
//! The per-connection state (`connection`) fills it, the commit (`commit`)
//! writes and empties it; its buffers are kept from one iteration to the
//! next, so a busy loop allocates nothing per transaction.
//!
//! Records are kept in one of two forms: escaped, as `messages.log` lines
//! (the file sink), or raw, the message bytes as received with where each
//! came from (a sink that stores them elsewhere: the NATS stream). A sink
//! that commits later takes the iteration's commit away whole (`defer`).

use std::ops::Range;
use std::time::Instant;

use msglog_core::{write_record, Reject, Tag};

/// Records of one iteration; past this, connections wait for the next one.
pub(crate) const MAX_BATCH: usize = 1024 * 1024;

/// Where a connection's 0x00 is in an iteration: its status byte (among the
/// connection's unsent ones) and its log entry, so that a failed commit can
/// take it back with everything that followed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeldMark {
    pub(crate) status: usize,
    pub(crate) entry: usize,
}

impl HeldMark {
    /// The index of its entry in the iteration.
    pub(crate) fn entry(&self) -> usize {
        self.entry
    }
}

/// A MESSAGE kept raw (see [`Iteration::push_record`]): its bytes and its
/// name in [`Iteration::batch`], and its 0x00.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRecord {
    pub(crate) slot: usize,
    pub(crate) connection: u64,
    /// The connection's count of MESSAGEs, this one included.
    pub(crate) sequence: u64,
    pub(crate) mark: HeldMark,
    pub(crate) name: Range<usize>,
    pub(crate) payload: Range<usize>,
}

/// A transaction-log entry of this iteration, formatted after the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) slot: usize,
    pub(crate) kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Open,
    Transaction {
        /// The tag byte as received.
        tag: u8,
        /// The announced length, if one was read.
        len: Option<u16>,
        /// `None` for `ok`.
        reject: Option<Reject>,
        name: NameField,
    },
    Close,
}

/// Which name a NAME line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameField {
    None,
    /// The session's (accepted) name.
    Session,
    /// A refused name, kept in [`Iteration::names`] at this index.
    Refused(usize),
}

/// The `tag` label of transaction counts: the tags, then any other byte.
pub(crate) const TAGS: [&str; 5] = ["NAME", "PASSWORD", "MESSAGE", "CLOSE", "unknown"];
/// The `outcome` label of transaction counts: `ok`, then the rejection
/// codes of `transactions.log` (PROTOCOL.md).
pub(crate) const OUTCOMES: [&str; 12] = [
    "ok",
    "unknown-tag",
    "zero-length",
    "too-long",
    "unexpected-tag",
    "invalid-name",
    "auth-failed",
    "write-failed",
    "timeout",
    "session-ended",
    "verification-pending",
    "overload",
];
/// The stages of a commit that can fail: `messages.log`'s write,
/// `transactions.log`'s write, their `fdatasync`.
pub(crate) const COMMIT_STAGES: [&str; 3] = ["records", "lines", "sync"];

/// Where a transaction is counted: (tag, outcome) indices into [`TAGS`]
/// and [`OUTCOMES`].
pub(crate) fn transaction_index(tag: u8, reject: Option<Reject>) -> (usize, usize) {
    let tag = match Tag::from_byte(tag) {
        Some(Tag::Name) => 0,
        Some(Tag::Password) => 1,
        Some(Tag::Message) => 2,
        Some(Tag::Close) => 3,
        None => 4,
    };
    let outcome = match reject {
        None => 0,
        Some(reject) => OUTCOMES
            .iter()
            .position(|&code| code == reject.code())
            .unwrap_or(0),
    };
    (tag, outcome)
}

/// Counts of one iteration, added to the server's statistics at its end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) messages: u64,
    pub(crate) write_failures: u64,
    pub(crate) rejected: u64,
    pub(crate) timeouts: u64,
    pub(crate) overloaded: u64,
    /// Bytes of records written to `messages.log`.
    pub(crate) bytes: u64,
    /// Transactions answered, by tag and outcome (as finally answered).
    pub(crate) transactions: [[u64; OUTCOMES.len()]; TAGS.len()],
    /// Failed commits, by [`COMMIT_STAGES`].
    pub(crate) commit_failures: [u64; COMMIT_STAGES.len()],
}

impl Counts {
    /// Complete MESSAGEs answered (0x00, or 0xFF for a failed write): what
    /// the latency from a message's last byte to its status is measured of.
    pub(crate) fn messages_answered(&self) -> u64 {
        let messages = &self.transactions[2];
        messages[0] + messages[7]
    }
}

/// Everything an iteration produces before it is committed; connections are
/// named by their slot in the event loop.
#[derive(Debug)]
pub(crate) struct Iteration {
    /// Counts iterations: a take-back's cut belongs to one.
    pub(crate) number: u64,
    /// When this iteration started (after `poll` returned).
    pub(crate) now: Instant,
    /// The records of this iteration's MESSAGEs: escaped `messages.log`
    /// lines, or (with `raw`) names and message bytes as received.
    pub(crate) batch: Vec<u8>,
    /// Keep records raw, described by `raw_records`.
    pub(crate) raw: bool,
    pub(crate) raw_records: Vec<RawRecord>,
    pub(crate) batch_records: u64,
    /// Connections with records in `batch`.
    pub(crate) batch_slots: Vec<usize>,
    /// Connections with a 0x00 held back until the commit.
    pub(crate) held: Vec<usize>,
    pub(crate) entries: Vec<Entry>,
    /// Names refused this iteration, for their NAME lines.
    pub(crate) names: Vec<Box<[u8]>>,
    /// Connections with status bytes to send, or ending.
    pub(crate) queued: Vec<usize>,
    /// Connections to read again without waiting for an event.
    pub(crate) ready: Vec<usize>,
    /// Connections to remove at the end of the iteration.
    pub(crate) dead: Vec<usize>,
    /// The lines of `entries`, formatted.
    pub(crate) text: Vec<u8>,
    pub(crate) counts: Counts,
}

impl Iteration {
    pub(crate) fn new(now: Instant) -> Self {
        Iteration {
            number: 0,
            now,
            batch: Vec::new(),
            raw: false,
            raw_records: Vec::new(),
            batch_records: 0,
            batch_slots: Vec::new(),
            held: Vec::new(),
            entries: Vec::new(),
            names: Vec::new(),
            queued: Vec::new(),
            ready: Vec::new(),
            dead: Vec::new(),
            text: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Begin the next iteration at `now`.
    pub(crate) fn start(&mut self, now: Instant) {
        self.number += 1;
        self.now = now;
    }

    /// Add a MESSAGE's record, whose 0x00 is `mark`, to the batch.
    pub(crate) fn push_record(
        &mut self,
        slot: usize,
        connection: u64,
        sequence: u64,
        mark: HeldMark,
        name: &str,
        message: &[u8],
    ) {
        self.batch_records += 1;
        if !self.raw {
            // Writing to a Vec cannot fail.
            let _ = write_record(&mut self.batch, name, message);
            return;
        }
        // A connection's records follow each other: its name is kept once.
        let name = match self.raw_records.last() {
            Some(last) if last.connection == connection => last.name.clone(),
            _ => {
                let start = self.batch.len();
                self.batch.extend_from_slice(name.as_bytes());
                start..self.batch.len()
            }
        };
        let start = self.batch.len();
        self.batch.extend_from_slice(message);
        self.raw_records.push(RawRecord {
            slot,
            connection,
            sequence,
            mark,
            name,
            payload: start..self.batch.len(),
        });
    }

    /// Take this iteration's commit (its number and time, entries, names,
    /// records, held connections) into `spare`, which is returned; this
    /// iteration goes on with `spare`'s empty buffers. For a sink that
    /// commits later: the commit is finished on the returned iteration.
    #[cfg(feature = "nats")]
    pub(crate) fn defer(&mut self, mut spare: Iteration) -> Iteration {
        spare.number = self.number;
        spare.now = self.now;
        spare.raw = self.raw;
        std::mem::swap(&mut self.batch, &mut spare.batch);
        std::mem::swap(&mut self.raw_records, &mut spare.raw_records);
        std::mem::swap(&mut self.batch_slots, &mut spare.batch_slots);
        std::mem::swap(&mut self.held, &mut spare.held);
        std::mem::swap(&mut self.entries, &mut spare.entries);
        std::mem::swap(&mut self.names, &mut spare.names);
        std::mem::swap(&mut self.text, &mut spare.text);
        spare.batch_records = std::mem::take(&mut self.batch_records);
        // Nothing of it is left to do here: the caller keeps what is.
        spare.queued.clear();
        spare.ready.clear();
        spare.dead.clear();
        spare
    }

    /// Forget the committed entries and records (`held`: the emptied list of
    /// held connections, given back); keep the buffers unless huge.
    pub(crate) fn forget_committed(&mut self, mut held: Vec<usize>) {
        self.entries.clear();
        self.names.clear();
        self.batch.clear();
        self.raw_records.clear();
        self.batch_records = 0;
        self.batch_slots.clear();
        held.clear();
        self.held = held;
        if self.batch.capacity() > 4 * MAX_BATCH {
            self.batch = Vec::new();
        }
        if self.text.capacity() > 4 * MAX_BATCH {
            self.text = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_keeps_the_buffers_and_the_lists_to_do() {
        let mut iteration = Iteration::new(Instant::now());
        iteration.start(Instant::now());
        iteration.batch.extend_from_slice(b"[a]: 1\r\n");
        iteration.batch_records = 1;
        iteration.batch_slots.push(3);
        iteration.entries.push(Entry {
            slot: 3,
            kind: EntryKind::Open,
        });
        iteration.names.push(b"x".to_vec().into());
        iteration.queued.push(3);
        iteration.ready.push(4);
        let held = vec![3, 5];
        let capacity = iteration.batch.capacity();
        iteration.forget_committed(held);
        assert!(iteration.batch.is_empty() && iteration.batch.capacity() == capacity);
        assert_eq!(iteration.batch_records, 0);
        assert!(iteration.entries.is_empty() && iteration.names.is_empty());
        assert!(iteration.batch_slots.is_empty() && iteration.held.is_empty());
        assert!(iteration.held.capacity() >= 2, "the list is given back");
        // What is still to do this iteration stays.
        assert_eq!(
            (&iteration.queued[..], &iteration.ready[..]),
            (&[3][..], &[4][..])
        );
        assert_eq!(iteration.number, 1);
    }

    #[test]
    fn huge_buffers_are_let_go() {
        let mut iteration = Iteration::new(Instant::now());
        iteration.batch.reserve(4 * MAX_BATCH + 1);
        iteration.text.reserve(4 * MAX_BATCH + 1);
        iteration.forget_committed(Vec::new());
        assert_eq!(iteration.batch.capacity(), 0);
        assert_eq!(iteration.text.capacity(), 0);
    }
}
