//! The event loop's side of the NATS sink.
//!
//! An iteration with records is not committed at its end: its whole commit
//! (records, lines, held 0x00s) is taken away (`Iteration::defer`), its
//! records go to the publisher, and every connection with a line in it is
//! *parked*: not read, timed, stopped or sent to until the commit is
//! finished, so nothing of it changes meanwhile. Other connections go on.
//!
//! When the publisher's outcomes arrive, each connection's records are
//! acknowledged up to the first one that may not be: one JetStream did not
//! acknowledge, or one stored at a lower stream sequence than a record sent
//! before it on the same connection (a retry that landed late); that one
//! is answered 0xFF and nothing after it (`Connection::records_lost`).
//! Then the commit is finished as a file commit is (`commit`): the lines
//! (and, if kept, the acknowledged records in `messages.log`) are written,
//! and a failure there takes the 0x00s back. The connections are unparked:
//! what arrived meanwhile is read, their statuses sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use msglog_core::write_record;

use super::outcome::{Failure, Outcome, Stored};
use super::publisher::{Batch, PublishHandle};
use crate::commit::{Committer, Logs};
use crate::connection::Connection;
use crate::iteration::{HeldMark, Iteration};
use crate::journal::{CommitError, Journal};
use crate::mailbox::{Mailbox, Verdict};
use crate::rate_limit::RateLimit;
use crate::services::Stats;
use crate::slab::Slab;
use crate::timestamp::{self, Clock};

/// Spare iterations kept for the next deferred commits.
const SPARES: usize = 4;

/// A registered connection the event loop can park.
pub(crate) trait Parking: AsRef<Connection> + AsMut<Connection> {
    fn parked(&self) -> bool;
    fn set_parked(&mut self, parked: bool);
}

/// A commit waiting for the publisher.
#[derive(Debug)]
struct Pending {
    commit: u64,
    iteration: Iteration,
    timestamp: [u8; timestamp::LEN],
    /// Its parked connections.
    slots: Vec<usize>,
}

/// One event loop's commits to the stream.
#[derive(Debug)]
pub(crate) struct StreamCommits {
    publisher: PublishHandle,
    mailbox: Arc<Mailbox>,
    keep_messages_log: bool,
    next_commit: u64,
    pending: Vec<Pending>,
    spares: Vec<Iteration>,
    /// Verdicts for parked connections, delivered when they are unparked.
    verdicts: Vec<Verdict>,
    errors: RateLimit,
}

/// The journal as a commit's logs when the records are in the stream:
/// `messages.log` gets only what is kept locally.
struct StreamLogs<'a>(&'a Journal);

impl Logs for StreamLogs<'_> {
    fn commit(
        &self,
        records: &[u8],
        count: u64,
        lines: &[u8],
        durable: bool,
    ) -> Result<(), CommitError> {
        let count = if records.is_empty() { 0 } else { count };
        self.0.commit(records, count, lines, durable)
    }

    fn append_lines(&self, lines: &[u8]) {
        self.0.append_lines(lines);
    }
}

impl StreamCommits {
    pub(crate) fn new(
        publisher: PublishHandle,
        mailbox: Arc<Mailbox>,
        keep_messages_log: bool,
    ) -> Self {
        StreamCommits {
            publisher,
            mailbox,
            keep_messages_log,
            next_commit: 0,
            pending: Vec::new(),
            spares: Vec::new(),
            verdicts: Vec::new(),
            errors: RateLimit::new(Duration::from_secs(5)),
        }
    }

    /// At the end of an iteration: if it has records, take its commit away,
    /// park its connections and hand the records to the publisher (the
    /// iteration is then left with nothing to commit). Without records it
    /// is committed as usual.
    pub(crate) fn defer<C: Parking>(
        &mut self,
        iteration: &mut Iteration,
        conns: &mut Slab<C>,
        clock: &Clock,
    ) {
        if iteration.batch_records == 0 {
            return;
        }
        let spare = self
            .spares
            .pop()
            .unwrap_or_else(|| Iteration::new(iteration.now));
        let mut deferred = iteration.defer(spare);
        let mut slots = Vec::new();
        for entry in &deferred.entries {
            if let Some(conn) = conns.get_mut(entry.slot) {
                if !conn.parked() {
                    conn.set_parked(true);
                    slots.push(entry.slot);
                }
            }
        }
        let commit = self.next_commit;
        self.next_commit += 1;
        let mut time = [0; timestamp::LEN];
        time.copy_from_slice(clock.text());
        let bytes = if self.keep_messages_log {
            deferred.batch.clone()
        } else {
            std::mem::take(&mut deferred.batch)
        };
        let batch = Batch {
            reply: Arc::clone(&self.mailbox),
            commit,
            time,
            bytes,
            records: deferred.raw_records.clone(),
        };
        let count = deferred.raw_records.len();
        self.pending.push(Pending {
            commit,
            iteration: deferred,
            timestamp: time,
            slots,
        });
        if self.publisher.publish(batch).is_err() {
            let outcomes =
                vec![
                    Outcome::Failed(Failure::NotAcknowledged("the NATS publisher has stopped"));
                    count
                ];
            self.mailbox.stored(Stored { commit, outcomes });
        }
    }

    /// Hold a verdict for a parked connection.
    pub(crate) fn hold_verdict(&mut self, verdict: Verdict) {
        self.verdicts.push(verdict);
    }

    /// The verdicts held for `slot`.
    pub(crate) fn take_verdicts(&mut self, slot: usize) -> Vec<Verdict> {
        let (mine, others) = std::mem::take(&mut self.verdicts)
            .into_iter()
            .partition(|v| v.slot == slot);
        self.verdicts = others;
        mine
    }

    /// Finish the commit the publisher settled (see the module
    /// documentation); returns the connections it unparked.
    pub(crate) fn finish<C: Parking>(
        &mut self,
        stored: Stored,
        conns: &mut Slab<C>,
        journal: &Journal,
        stats: &Stats,
    ) -> Vec<usize> {
        let Some(index) = self.pending.iter().position(|p| p.commit == stored.commit) else {
            return Vec::new();
        };
        let Pending {
            mut iteration,
            timestamp,
            slots,
            ..
        } = self.pending.swap_remove(index);
        let records = std::mem::take(&mut iteration.raw_records);

        // Per connection: the last stream sequence acknowledged, and whether it was cut.
        let mut connections: HashMap<u64, (u64, bool)> = HashMap::new();
        let mut acknowledged = Vec::with_capacity(records.len());
        let mut cuts: Vec<(usize, HeldMark, bool, Failure)> = Vec::new();
        for (record, outcome) in records.iter().zip(&stored.outcomes) {
            let first = !connections.contains_key(&record.connection);
            let (last, cut) = connections.entry(record.connection).or_insert((0, false));
            if *cut {
                continue;
            }
            let failure = match outcome {
                Outcome::Stored { sequence, .. } if *sequence > *last => {
                    *last = *sequence;
                    acknowledged.push(record);
                    continue;
                }
                Outcome::Stored { .. } => Failure::OutOfOrder,
                Outcome::Failed(failure) => failure.clone(),
            };
            *cut = true;
            cuts.push((record.slot, record.mark, first, failure));
        }
        let lost = records.len() - acknowledged.len();
        for (slot, mark, first, _) in &cuts {
            let Some(conn) = conns.get_mut(*slot).map(AsMut::as_mut) else {
                continue;
            };
            if *first {
                // No record of it is left for messages.log to take back.
                let _ = conn.take_batch_mark();
            }
            conn.records_lost(&mut iteration, *mark);
        }
        iteration.counts.write_failures += lost as u64;
        if let Some((_, _, _, failure)) = cuts.first() {
            if let Some(suppressed) = self.errors.admit(iteration.now) {
                error!(
                    "NATS: {lost} of {} records not stored: {failure}; {} connections answered 0xFF at their first such record ({suppressed} similar errors not shown)",
                    records.len(),
                    cuts.len()
                );
            }
        }

        let mut kept = Vec::new();
        if self.keep_messages_log {
            for record in &acknowledged {
                let name = String::from_utf8_lossy(&iteration.batch[record.name.clone()]);
                let _ = write_record(&mut kept, &name, &iteration.batch[record.payload.clone()]);
            }
        }
        iteration.batch = kept;
        iteration.batch_records = acknowledged.len() as u64;
        let mut committer = Committer {
            logs: &StreamLogs(journal),
            timestamp: &timestamp,
            errors: &mut self.errors,
        };
        committer.commit(&mut iteration, conns);
        stats.add(&mut iteration.counts);

        for &slot in &slots {
            if let Some(conn) = conns.get_mut(slot) {
                conn.set_parked(false);
            }
        }
        iteration.raw_records = records;
        iteration.raw_records.clear();
        if self.spares.len() < SPARES {
            self.spares.push(iteration);
        }
        slots
    }
}
