//! The library's log on stderr: one line per record, `msglog-server: `
//! first, written with a single `write(2)` so that lines of different
//! threads never mix; `-q`, `-v` and `-vv` choose the levels.

use std::fmt;
use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Only the server's own records (not those of its dependencies).
const TARGET: &str = "msglog_server";

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level() && metadata.target().starts_with(TARGET)
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            write_line(record.level(), *record.args());
        }
    }

    fn flush(&self) {}
}

/// Show the library's records from now on: errors and warnings always,
/// the start-up line and summary unless `quiet`, statistics with one
/// `verbose`, details with two.
pub fn install(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => LevelFilter::Warn,
        (false, 0) => LevelFilter::Info,
        (false, 1) => LevelFilter::Debug,
        (false, _) => LevelFilter::Trace,
    };
    // Only fails if a logger is already installed, which is then used.
    let _ = log::set_logger(&Stderr);
    log::set_max_level(level);
}

/// An error line of the binary itself.
pub fn error(args: fmt::Arguments<'_>) {
    write_line(Level::Error, args);
}

/// A warning line of the binary itself.
pub fn warning(args: fmt::Arguments<'_>) {
    write_line(Level::Warn, args);
}

fn write_line(level: Level, args: fmt::Arguments<'_>) {
    let prefix = match level {
        Level::Error => "msglog-server: error: ",
        Level::Warn => "msglog-server: warning: ",
        _ => "msglog-server: ",
    };
    let line = format!("{prefix}{args}\n");
    // Nothing sensible is left to do if stderr itself fails.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
