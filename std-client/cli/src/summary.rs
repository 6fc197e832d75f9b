//! The summary line: on completion, and on SIGINT (Ctrl-C) or SIGTERM,
//! what was read, acknowledged, rejected and not sent, the time and the
//! rate. The main loop keeps the counts in a [`Tally`]; a thread waits for
//! the signals and, when one comes, prints the summary from the tally and
//! exits with 128 + the signal's number.

use std::io::{self, Write};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::exit::Exit;
use crate::platform::{on_stop, Stop};

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Framed mode: input lines (or pieces of split lines).
    Lines,
    /// Framed mode with `-z`.
    Records,
    /// Framed mode with `--message`.
    Messages,
    /// Raw mode.
    Bytes,
}

impl Unit {
    fn one(self) -> &'static str {
        match self {
            Unit::Lines => "line",
            Unit::Records => "record",
            Unit::Messages => "message",
            Unit::Bytes => "byte",
        }
    }
}

/// `count` and a noun, singular for one: "1 line", "2 lines".
pub fn plural(count: u64, one: &str) -> String {
    match count {
        1 => format!("1 {one}"),
        n => format!("{n} {one}s"),
    }
}

/// The counts so far, shared with the signal thread.
#[derive(Debug)]
pub struct Tally {
    unit: Unit,
    start: Instant,
    quiet: bool,
    /// Messages taken from the input (raw mode: bytes).
    read: AtomicU64,
    /// Messages handed to the connection (written or about to be).
    handed: AtomicU64,
    acknowledged: AtomicU64,
    rejected: AtomicU64,
    truncated: AtomicU64,
}

impl Tally {
    pub fn new(unit: Unit, quiet: bool) -> Arc<Tally> {
        Arc::new(Tally {
            unit,
            start: Instant::now(),
            quiet,
            read: AtomicU64::new(0),
            handed: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
        })
    }

    pub fn add_read(&self, count: u64) {
        self.read.fetch_add(count, Ordering::Relaxed);
    }

    pub fn add_truncated(&self) {
        self.truncated.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages handed to the connection, and acknowledged by the server, so far.
    pub fn set_delivery(&self, handed: u64, acknowledged: u64) {
        self.handed.store(handed, Ordering::Relaxed);
        self.acknowledged.store(acknowledged, Ordering::Relaxed);
    }

    pub fn set_rejected(&self, rejected: u64) {
        self.rejected.store(rejected, Ordering::Relaxed);
    }

    /// The framed summary: `3 lines read, 2 acknowledged, 1 rejected, 0
    /// not sent, 0.01 s, 200 lines/s` (`N unanswered` too when messages
    /// were sent and never answered).
    fn framed_line(&self) -> String {
        let read = self.read.load(Ordering::Relaxed);
        let acknowledged = self.acknowledged.load(Ordering::Relaxed);
        let rejected = self.rejected.load(Ordering::Relaxed);
        let handed = self
            .handed
            .load(Ordering::Relaxed)
            .max(acknowledged + rejected);
        let unanswered = handed - acknowledged - rejected;
        let not_sent = read.saturating_sub(handed);
        let truncated = self.truncated.load(Ordering::Relaxed);
        let seconds = self.start.elapsed().as_secs_f64();
        let mut line = format!(
            "{} read, {acknowledged} acknowledged, {rejected} rejected, ",
            plural(read, self.unit.one())
        );
        if unanswered > 0 {
            line.push_str(&format!("{unanswered} unanswered, "));
        }
        line.push_str(&format!("{not_sent} not sent, "));
        if truncated > 0 {
            line.push_str(&format!("{truncated} truncated, "));
        }
        let rate = acknowledged as f64 / seconds.max(1e-6);
        line.push_str(&format!("{seconds:.2} s, {rate:.0} {}s/s", self.unit.one()));
        line
    }

    /// The raw summary: `100010 bytes sent, confirmed by the server, 0.03 s, 3.3 MB/s`.
    fn raw_line(&self, confirmed: bool) -> String {
        let bytes = self.read.load(Ordering::Relaxed);
        let seconds = self.start.elapsed().as_secs_f64();
        let outcome = if confirmed {
            "sent, confirmed by the server"
        } else {
            "read, not confirmed by the server"
        };
        format!(
            "{} {outcome}, {seconds:.2} s, {}",
            plural(bytes, "byte"),
            byte_rate(bytes as f64 / seconds.max(1e-6))
        )
    }

    /// The summary of a run that completed (unless `-q`).
    pub fn print_completed(&self) {
        if self.quiet {
            return;
        }
        let line = match self.unit {
            Unit::Bytes => self.raw_line(true),
            _ => self.framed_line(),
        };
        say(&line);
    }

    /// The summary of a run stopped by a signal (unless `-q`).
    fn print_interrupted(&self, signal: &str) {
        if self.quiet {
            return;
        }
        let line = match self.unit {
            Unit::Bytes => self.raw_line(false),
            _ => self.framed_line(),
        };
        say(&format!("{signal}: {line}"));
    }
}

/// Bytes per second in the largest decimal unit that keeps a digit before the point.
fn byte_rate(per_second: f64) -> String {
    match per_second {
        r if r >= 1e9 => format!("{:.2} GB/s", r / 1e9),
        r if r >= 1e6 => format!("{:.1} MB/s", r / 1e6),
        r if r >= 1e3 => format!("{:.1} kB/s", r / 1e3),
        r => format!("{r:.0} B/s"),
    }
}

fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "msglog-client: {line}");
}

/// Print the summary and exit on SIGINT or SIGTERM (Ctrl-C, Ctrl-Break or
/// the console closing on Windows), from a thread of its own; `before_exit` runs first (to clear a progress line, say).
pub fn on_signal(tally: Arc<Tally>, before_exit: impl Fn() + Send + 'static) -> io::Result<()> {
    on_stop(move |stop| {
        before_exit();
        let (name, exit) = match stop {
            Stop::Terminated => ("stopped by SIGTERM", Exit::Terminated),
            Stop::Interrupted => ("interrupted", Exit::Interrupted),
        };
        tally.print_interrupted(name);
        process::exit(i32::from(exit.code_number()));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_rates_read_well() {
        assert_eq!(byte_rate(12.0), "12 B/s");
        assert_eq!(byte_rate(2_500.0), "2.5 kB/s");
        assert_eq!(byte_rate(264_200_000.0), "264.2 MB/s");
        assert_eq!(byte_rate(4_040_000_000.0), "4.04 GB/s");
    }

    #[test]
    fn one_is_singular() {
        assert_eq!(plural(0, "line"), "0 lines");
        assert_eq!(plural(1, "line"), "1 line");
        assert_eq!(plural(2, "byte"), "2 bytes");
    }

    #[test]
    fn the_framed_summary_adds_up() {
        let tally = Tally::new(Unit::Lines, false);
        tally.add_read(10);
        tally.set_delivery(8, 5);
        tally.set_rejected(1);
        let line = tally.framed_line();
        assert!(
            line.starts_with(
                "10 lines read, 5 acknowledged, 1 rejected, 2 unanswered, 2 not sent, "
            ),
            "{line}"
        );
        assert!(line.ends_with(" lines/s"), "{line}");
        let tally = Tally::new(Unit::Records, false);
        tally.add_read(1);
        tally.set_delivery(1, 1);
        assert!(tally
            .framed_line()
            .starts_with("1 record read, 1 acknowledged, 0 rejected, 0 not sent, "));
    }
}
