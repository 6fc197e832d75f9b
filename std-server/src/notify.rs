//! The systemd notify protocol (`sd_notify(3)`), spoken only when the
//! service manager set `NOTIFY_SOCKET`: `READY=1` once the server listens
//! and its logs are open, `RELOADING=1` (with `MONOTONIC_USEC`) and then
//! `READY=1` around a SIGHUP, `STOPPING=1` when a stop begins, and
//! `STATUS=` with a one-line summary at each of these and every 10 s.
//!
//! A message that cannot be sent is said once on stderr; the server does
//! not depend on the service manager to serve.

use std::sync::atomic::{AtomicBool, Ordering};

use sd_notify::NotifyState;

/// Sends the service manager the server's state, if it asked for it.
#[derive(Debug)]
pub(crate) struct Notifier {
    enabled: bool,
    failed: AtomicBool,
}

impl Notifier {
    /// Speak the protocol if `NOTIFY_SOCKET` is set.
    pub(crate) fn from_env() -> Notifier {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            failed: AtomicBool::new(false),
        }
    }

    /// Serving: `READY=1`.
    pub(crate) fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A reload begins: `RELOADING=1` with the monotonic clock's time.
    pub(crate) fn reloading(&self) {
        if !self.enabled {
            return;
        }
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[
                NotifyState::Reloading,
                now,
                NotifyState::Status("reloading: reopening the logs and re-reading the users file"),
            ]),
            Err(e) => self.failed_once(&e),
        }
    }

    /// The stop begins: `STOPPING=1`.
    pub(crate) fn stopping(&self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// A new one-line summary.
    pub(crate) fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            self.failed_once(&e);
        }
    }

    fn failed_once(&self, e: &std::io::Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            warning!("cannot notify the service manager (NOTIFY_SOCKET): {e}");
        }
    }
}
