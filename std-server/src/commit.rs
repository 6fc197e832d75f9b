//! The commit of an iteration: its records to `messages.log` and its lines
//! to `transactions.log` together, and only then its 0x00s.
//!
//! 1. Write the batch of records and the lines, one `write(2)` each under
//!    the journal's lock (and, with `--fsync`, wait for the group commit of
//!    both); if either fails, neither remains.
//! 2. If the records failed, each affected connection's first MESSAGE is
//!    answered 0xFF (nothing after it) and the lines are committed again.
//! 3. If the lines failed (or their sync did), the first 0x00 of each
//!    connection that held one becomes 0xFF, nothing after it is answered,
//!    and the lines saying so are written best effort.
//!
//! So a 0x00 never leaves before its record and its line are written, and a
//! line never says `ok` for a record that is not in the log. The event loop
//! sends the statuses after this.

use crate::connection::Connection;
use crate::iteration::{transaction_index, EntryKind, Iteration};
use crate::journal::{CommitError, Journal};
use crate::operator_log::debug_lines;
use crate::rate_limit::RateLimit;
use crate::slab::Slab;
use crate::transaction_log::push_line;

/// Count the iteration's transactions as they were finally answered (a
/// take-back turned the first 0x00 into `write-failed` and cut what
/// followed it, which was not answered).
fn count_transactions<C>(iteration: &mut Iteration, conns: &Slab<C>)
where
    C: AsRef<Connection>,
{
    let Iteration {
        number,
        entries,
        names,
        counts,
        ..
    } = iteration;
    for (index, entry) in entries.iter().enumerate() {
        let EntryKind::Transaction { tag, reject, .. } = entry.kind else {
            continue;
        };
        let Some(conn) = conns.get(entry.slot).map(AsRef::as_ref) else {
            continue;
        };
        if conn.line(index, entry.kind, *number, names).is_some() {
            let (tag, outcome) = transaction_index(tag, reject);
            counts.transactions[tag][outcome] += 1;
        }
    }
}

/// Where a commit goes: the [`Journal`], or a fake that fails on demand.
pub(crate) trait Logs {
    /// Append `records` (`count` whole records) and `lines`; on error
    /// neither remains (see [`Journal::commit`]).
    fn commit(
        &self,
        records: &[u8],
        count: u64,
        lines: &[u8],
        durable: bool,
    ) -> Result<(), CommitError>;

    /// Append lines that answer nothing, best effort.
    fn append_lines(&self, lines: &[u8]);
}

impl Logs for Journal {
    fn commit(
        &self,
        records: &[u8],
        count: u64,
        lines: &[u8],
        durable: bool,
    ) -> Result<(), CommitError> {
        Journal::commit(self, records, count, lines, durable)
    }

    fn append_lines(&self, lines: &[u8]) {
        Journal::append_lines(self, lines);
    }
}

/// What the commit needs besides the iteration and its connections.
pub(crate) struct Committer<'a, L> {
    pub(crate) logs: &'a L,
    /// The iteration's timestamp text, for every line.
    pub(crate) timestamp: &'a [u8],
    /// Failed commits said on stderr.
    pub(crate) errors: &'a mut RateLimit,
}

impl<L: Logs> Committer<'_, L> {
    /// Commit `iteration`'s records and lines together; see the module
    /// documentation for what a failure answers.
    pub(crate) fn commit<C>(&mut self, iteration: &mut Iteration, conns: &mut Slab<C>)
    where
        C: AsRef<Connection> + AsMut<Connection>,
    {
        if iteration.entries.is_empty() {
            return;
        }
        self.format_lines(iteration, conns, |_| true);
        let mut result = self.logs.commit(
            &iteration.batch,
            iteration.batch_records,
            &iteration.text,
            !iteration.held.is_empty(),
        );
        if let Err(e) = &result {
            self.report(iteration, e, iteration.batch_records);
        }
        let records_failed = matches!(result, Err(CommitError::Records { .. }));
        if result.is_ok() {
            iteration.counts.messages += iteration.batch_records;
            iteration.counts.bytes += iteration.batch.len() as u64;
        } else {
            iteration.counts.write_failures += iteration.batch_records;
        }
        let records = std::mem::take(&mut iteration.batch_slots);
        for &slot in &records {
            let Some(conn) = conns.get_mut(slot).map(AsMut::as_mut) else {
                continue;
            };
            let Some(mark) = conn.take_batch_mark() else {
                continue;
            };
            if records_failed {
                conn.records_lost(iteration, mark);
            }
        }
        iteration.batch_slots = records;
        if records_failed {
            // Nothing was written: the lines again, with the 0xFF answers,
            // for the 0x00s (NAME, PASSWORD) that came before a first MESSAGE.
            iteration
                .held
                .retain(|&slot| conns.get(slot).is_some_and(|c| c.as_ref().holds()));
            iteration.text.clear();
            self.format_lines(iteration, conns, |_| true);
            result = self
                .logs
                .commit(&[], 0, &iteration.text, !iteration.held.is_empty());
            if let Err(e) = &result {
                self.report(iteration, e, 0);
            }
        }
        iteration.text.clear();
        let logged = iteration.entries.len();
        let mut rewritten = Vec::new();
        let held = std::mem::take(&mut iteration.held);
        for &slot in &held {
            let Some(conn) = conns.get_mut(slot).map(AsMut::as_mut) else {
                continue;
            };
            let Some(mark) = conn.take_held_mark() else {
                continue;
            };
            if result.is_err() {
                rewritten.push(mark.entry());
                conn.take_back(iteration, mark);
            }
        }
        if let Err(e) = &result {
            // Best effort: the failure's lines, and every other line of the
            // commit unless it was written (the lines' fdatasync failed).
            let written = matches!(e, CommitError::Sync { .. });
            self.format_lines(iteration, conns, |index| {
                !written || index >= logged || rewritten.contains(&index)
            });
            self.logs.append_lines(&iteration.text);
            iteration.text.clear();
        }
        count_transactions(iteration, conns);
        iteration.forget_committed(held);
    }

    /// Lines of closes found while sending (the peer reset): best effort.
    pub(crate) fn append_late_lines<C>(&mut self, iteration: &mut Iteration, conns: &Slab<C>)
    where
        C: AsRef<Connection>,
    {
        if iteration.entries.is_empty() {
            return;
        }
        self.format_lines(iteration, conns, |_| true);
        self.logs.append_lines(&iteration.text);
        iteration.text.clear();
        let held = std::mem::take(&mut iteration.held);
        iteration.forget_committed(held);
    }

    /// Format the lines of the entries `include` selects into the
    /// iteration's text (none of those a take-back cut).
    fn format_lines<C>(
        &self,
        iteration: &mut Iteration,
        conns: &Slab<C>,
        include: impl Fn(usize) -> bool,
    ) where
        C: AsRef<Connection>,
    {
        let Iteration {
            number,
            entries,
            names,
            text,
            ..
        } = iteration;
        let start = text.len();
        for (index, entry) in entries.iter().enumerate() {
            if !include(index) {
                continue;
            }
            let Some(conn) = conns.get(entry.slot).map(AsRef::as_ref) else {
                continue;
            };
            if let Some(line) = conn.line(index, entry.kind, *number, names) {
                push_line(text, self.timestamp, conn.fields(), line);
            }
        }
        debug_lines(text.get(start..).unwrap_or_default());
    }

    /// Count a failed commit, and say on stderr (rate-limited) what it did
    /// not keep.
    fn report(&mut self, iteration: &mut Iteration, e: &CommitError, records: u64) {
        let stage = match e {
            CommitError::Records { .. } => 0,
            CommitError::Lines { .. } => 1,
            CommitError::Sync { .. } => 2,
        };
        iteration.counts.commit_failures[stage] += 1;
        let Some(suppressed) = self.errors.admit(iteration.now) else {
            return;
        };
        let lines = iteration.text.iter().filter(|&&b| b == b'\n').count();
        let connections = iteration.held.len();
        match e {
            CommitError::Records { .. } => error!(
                "{e}: {records} messages not written; {} connections answered 0xFF at their first one ({suppressed} similar errors not shown)",
                iteration.batch_slots.len()
            ),
            CommitError::Lines { .. } => error!(
                "{e}: {lines} lines and {records} records taken back; {connections} connections answered 0xFF at their first 0x00 of them ({suppressed} similar errors not shown)"
            ),
            CommitError::Sync { .. } => error!(
                "{e}: {connections} connections answered 0xFF at their first 0x00 of it ({suppressed} similar errors not shown)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io;
    use std::path::PathBuf;
    use std::time::Instant;

    use super::*;
    use crate::config::Timeouts;
    use crate::connection::tests::{accepting, feed, message, LOGIN};

    impl AsRef<Connection> for Connection {
        fn as_ref(&self) -> &Connection {
            self
        }
    }

    impl AsMut<Connection> for Connection {
        fn as_mut(&mut self) -> &mut Connection {
            self
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fail {
        Records,
        Lines,
        Sync,
    }

    /// Logs in memory whose first commit fails as told.
    #[derive(Default)]
    struct Memory {
        fail: RefCell<Option<Fail>>,
        records: RefCell<Vec<u8>>,
        lines: RefCell<Vec<u8>>,
        /// Lines of `append_lines`.
        appended: RefCell<Vec<u8>>,
        commits: RefCell<usize>,
    }

    impl Logs for Memory {
        fn commit(
            &self,
            records: &[u8],
            _count: u64,
            lines: &[u8],
            _durable: bool,
        ) -> Result<(), CommitError> {
            *self.commits.borrow_mut() += 1;
            let source = || io::Error::other("no space");
            let path = || PathBuf::from("log");
            match self.fail.borrow_mut().take() {
                Some(Fail::Records) => {
                    return Err(CommitError::Records {
                        path: path(),
                        source: source(),
                    })
                }
                Some(Fail::Lines) => {
                    return Err(CommitError::Lines {
                        path: path(),
                        source: source(),
                    })
                }
                Some(Fail::Sync) => {
                    self.records.borrow_mut().extend_from_slice(records);
                    self.lines.borrow_mut().extend_from_slice(lines);
                    return Err(CommitError::Sync { source: source() });
                }
                None => {}
            }
            self.records.borrow_mut().extend_from_slice(records);
            self.lines.borrow_mut().extend_from_slice(lines);
            Ok(())
        }

        fn append_lines(&self, lines: &[u8]) {
            self.appended.borrow_mut().extend_from_slice(lines);
        }
    }

    fn text(bytes: &RefCell<Vec<u8>>) -> Vec<String> {
        String::from_utf8(bytes.borrow().clone())
            .unwrap()
            .lines()
            .map(|line| line.strip_prefix("T ").unwrap().to_owned())
            .collect()
    }

    /// Connection 1 logs in and sends two messages; connection 2 logs in.
    fn iteration() -> (Iteration, Slab<Connection>) {
        let mut it = Iteration::new(Instant::now());
        it.start(Instant::now());
        let mut conns = Slab::default();
        for id in [1, 2] {
            let slot = conns.vacant_key();
            let peer = "127.0.0.1:5000".parse().unwrap();
            conns.insert(Connection::open(
                id,
                slot,
                peer,
                &Timeouts::default(),
                &mut it,
            ));
        }
        let one = [LOGIN, &message(b"a"), &message(b"b")].concat();
        feed(conns.get_mut(0).unwrap(), &mut it, &one, &mut accepting());
        feed(conns.get_mut(1).unwrap(), &mut it, LOGIN, &mut accepting());
        (it, conns)
    }

    fn commit(logs: &Memory, it: &mut Iteration, conns: &mut Slab<Connection>) {
        let mut errors = RateLimit::new(std::time::Duration::from_secs(5));
        let mut committer = Committer {
            logs,
            timestamp: b"T",
            errors: &mut errors,
        };
        committer.commit(it, conns);
    }

    fn unsent(conns: &Slab<Connection>, slot: usize) -> &[u8] {
        conns.get(slot).unwrap().unsent()
    }

    #[test]
    fn a_written_commit_keeps_every_0x00() {
        let (mut it, mut conns) = iteration();
        let logs = Memory::default();
        commit(&logs, &mut it, &mut conns);
        assert_eq!(*logs.records.borrow(), b"[alice]: a\r\n[alice]: b\r\n");
        assert_eq!(text(&logs.lines).len(), 2 + 4 + 2);
        assert!(logs.appended.borrow().is_empty());
        assert_eq!(
            (unsent(&conns, 0), unsent(&conns, 1)),
            (&[0; 4][..], &[0; 2][..])
        );
        assert_eq!((it.counts.messages, it.counts.write_failures), (2, 0));
        assert!(it.entries.is_empty() && it.batch.is_empty() && it.held.is_empty());
        assert!(!conns.get(0).unwrap().holds());
    }

    #[test]
    fn lost_records_answer_0xff_at_each_first_message_and_the_lines_are_committed_again() {
        let (mut it, mut conns) = iteration();
        let logs = Memory::default();
        *logs.fail.borrow_mut() = Some(Fail::Records);
        commit(&logs, &mut it, &mut conns);
        assert_eq!(*logs.commits.borrow(), 2);
        assert!(logs.records.borrow().is_empty());
        assert_eq!(
            text(&logs.lines),
            [
                "conn=1 peer=127.0.0.1:5000 event=open",
                "conn=2 peer=127.0.0.1:5000 event=open",
                "conn=1 peer=127.0.0.1:5000 tag=NAME len=5 outcome=ok name=\"alice\"",
                "conn=1 peer=127.0.0.1:5000 tag=PASSWORD len=- outcome=ok",
                "conn=1 peer=127.0.0.1:5000 tag=MESSAGE len=1 outcome=write-failed",
                "conn=2 peer=127.0.0.1:5000 tag=NAME len=5 outcome=ok name=\"alice\"",
                "conn=2 peer=127.0.0.1:5000 tag=PASSWORD len=- outcome=ok",
                "conn=1 peer=127.0.0.1:5000 event=close reason=rejected",
            ]
        );
        assert_eq!(
            (unsent(&conns, 0), unsent(&conns, 1)),
            (&[0, 0, 0xFF][..], &[0, 0][..])
        );
        assert_eq!((it.counts.messages, it.counts.write_failures), (0, 2));
        assert_eq!(it.counts.rejected, 1);
    }

    #[test]
    fn lost_lines_answer_0xff_at_each_first_0x00_and_say_so_best_effort() {
        let (mut it, mut conns) = iteration();
        let logs = Memory::default();
        *logs.fail.borrow_mut() = Some(Fail::Lines);
        commit(&logs, &mut it, &mut conns);
        assert!(logs.records.borrow().is_empty() && logs.lines.borrow().is_empty());
        assert_eq!(
            text(&logs.appended),
            [
                "conn=1 peer=127.0.0.1:5000 event=open",
                "conn=2 peer=127.0.0.1:5000 event=open",
                "conn=1 peer=127.0.0.1:5000 tag=NAME len=5 outcome=write-failed name=\"alice\"",
                "conn=2 peer=127.0.0.1:5000 tag=NAME len=5 outcome=write-failed name=\"alice\"",
                "conn=1 peer=127.0.0.1:5000 event=close reason=rejected",
                "conn=2 peer=127.0.0.1:5000 event=close reason=rejected",
            ]
        );
        assert_eq!(
            (unsent(&conns, 0), unsent(&conns, 1)),
            (&[0xFF][..], &[0xFF][..])
        );
        assert_eq!((it.counts.write_failures, it.counts.rejected), (2, 2));
    }

    #[test]
    fn a_failed_sync_appends_only_the_lines_it_changed() {
        let (mut it, mut conns) = iteration();
        let logs = Memory::default();
        *logs.fail.borrow_mut() = Some(Fail::Sync);
        commit(&logs, &mut it, &mut conns);
        assert_eq!(text(&logs.lines).len(), 2 + 4 + 2, "written, not synced");
        assert_eq!(
            text(&logs.appended),
            [
                "conn=1 peer=127.0.0.1:5000 tag=NAME len=5 outcome=write-failed name=\"alice\"",
                "conn=2 peer=127.0.0.1:5000 tag=NAME len=5 outcome=write-failed name=\"alice\"",
                "conn=1 peer=127.0.0.1:5000 event=close reason=rejected",
                "conn=2 peer=127.0.0.1:5000 event=close reason=rejected",
            ]
        );
        assert_eq!(
            (unsent(&conns, 0), unsent(&conns, 1)),
            (&[0xFF][..], &[0xFF][..])
        );
    }

    #[test]
    fn late_lines_are_appended_and_forgotten() {
        let mut it = Iteration::new(Instant::now());
        let mut conns = Slab::default();
        let peer = "127.0.0.1:5000".parse().unwrap();
        conns.insert(Connection::open(1, 0, peer, &Timeouts::default(), &mut it));
        let logs = Memory::default();
        let mut errors = RateLimit::new(std::time::Duration::from_secs(5));
        let mut committer = Committer {
            logs: &logs,
            timestamp: b"T",
            errors: &mut errors,
        };
        committer.append_late_lines(&mut it, &conns);
        assert_eq!(
            text(&logs.appended),
            ["conn=1 peer=127.0.0.1:5000 event=open"]
        );
        assert!(it.entries.is_empty() && it.text.is_empty());
    }
}
