//! `--progress`: messages sent and acknowledged, and throughput, on stderr.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Redraws at most this often; updating costs nothing in between.
const REFRESH: Duration = Duration::from_millis(100);

/// A status line on stderr, present only if asked for and stderr is a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    last_draw: Instant,
}

impl Progress {
    pub fn new(wanted: bool) -> Self {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(REFRESH);
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            start: now,
            last_draw: now,
        }
    }

    /// Report the counts; redrawn only every [`REFRESH`].
    pub fn update(&mut self, sent: u64, acknowledged: u64, bytes: u64) {
        let Some(bar) = &self.bar else { return };
        if self.last_draw.elapsed() < REFRESH {
            return;
        }
        self.last_draw = Instant::now();
        let seconds = self.start.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{sent} sent, {acknowledged} acknowledged, {:.0} msg/s, {:.2} MB/s",
            acknowledged as f64 / seconds,
            bytes as f64 / seconds / 1e6,
        ));
    }

    /// The bar, to clear it from another thread (the signal handler's).
    pub fn handle(&self) -> Option<ProgressBar> {
        self.bar.clone()
    }

    /// Remove the line, leaving the terminal clean for the final report.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
