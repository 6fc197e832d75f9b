//! The per-client limits of raw mode, which serves one client at a time: a
//! client that sends too slowly, too long, or nothing is dropped so that
//! the next one is served.
//!
//! Time counts only while the server waits for the client: time spent
//! writing to a slow stdout is the server's, never held against a client.

use std::fmt;
use std::time::Duration;

/// The limits, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Least bytes per second a client must average over each window; 0: no minimum.
    pub(crate) min_rate: u64,
    /// The window the minimum rate is checked over.
    pub(crate) window: Duration,
    /// Longest a client may be served, wall-clock; `None`: no limit.
    pub(crate) max_session: Option<Duration>,
    /// Longest wait for a client's next bytes.
    pub(crate) idle_timeout: Duration,
}

impl Limits {
    /// Bytes a client must send in each window.
    pub(crate) fn window_minimum(&self) -> u64 {
        let bytes = self.min_rate as f64 * self.window.as_secs_f64();
        bytes.ceil() as u64
    }
}

/// Why a client was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Breach {
    /// Fewer bytes than the minimum in a window.
    TooSlow { bytes: u64, limits: Limits },
    /// No byte within the idle timeout.
    Idle { limits: Limits },
    /// Served for the longest a session may last.
    TooLong { limits: Limits },
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Breach::TooSlow { bytes, limits } => write!(
                f,
                "sent {bytes} bytes in {:.1} s, under the minimum of {} bytes (--raw-min-rate {} B/s over --raw-rate-window {:.1} s)",
                limits.window.as_secs_f64(),
                limits.window_minimum(),
                limits.min_rate,
                limits.window.as_secs_f64(),
            ),
            Breach::Idle { limits } => write!(
                f,
                "no data for {:.1} s (--idle-timeout)",
                limits.idle_timeout.as_secs_f64()
            ),
            Breach::TooLong { limits } => write!(
                f,
                "served for {:.1} s (--raw-max-session)",
                limits.max_session.unwrap_or_default().as_secs_f64()
            ),
        }
    }
}

/// One client's standing against the limits.
#[derive(Debug)]
pub(crate) struct Pace {
    limits: Limits,
    /// Wall-clock time since the client was accepted.
    served: Duration,
    /// Time waited for the client in the current window.
    window_waited: Duration,
    /// Bytes received in the current window.
    window_bytes: u64,
    /// Time waited since the last byte.
    idle: Duration,
}

impl Pace {
    pub(crate) fn new(limits: Limits) -> Pace {
        Pace {
            limits,
            served: Duration::ZERO,
            window_waited: Duration::ZERO,
            window_bytes: 0,
            idle: Duration::ZERO,
        }
    }

    /// `bytes` arrived.
    pub(crate) fn received(&mut self, bytes: usize) {
        if bytes > 0 {
            self.window_bytes = self.window_bytes.saturating_add(bytes as u64);
            self.idle = Duration::ZERO;
        }
    }

    /// The client has been served for `served` in all (wall-clock).
    pub(crate) fn served_for(&mut self, served: Duration) -> Result<(), Breach> {
        self.served = served;
        match self.limits.max_session {
            Some(max) if served >= max => Err(Breach::TooLong {
                limits: self.limits,
            }),
            _ => Ok(()),
        }
    }

    /// The server waited `waited` for the client (and got nothing, or the
    /// bytes reported next). Checks the window that ends within it.
    pub(crate) fn waited(&mut self, waited: Duration) -> Result<(), Breach> {
        self.idle += waited;
        if self.idle >= self.limits.idle_timeout {
            return Err(Breach::Idle {
                limits: self.limits,
            });
        }
        if self.limits.min_rate == 0 {
            return Ok(());
        }
        self.window_waited += waited;
        if self.window_waited >= self.limits.window {
            if self.window_bytes < self.limits.window_minimum() {
                return Err(Breach::TooSlow {
                    bytes: self.window_bytes,
                    limits: self.limits,
                });
            }
            // A new window starts where this one ended.
            self.window_waited = self.window_waited.saturating_sub(self.limits.window);
            self.window_bytes = 0;
        }
        Ok(())
    }

    /// The longest the server may wait for the client before a limit must
    /// be checked again.
    pub(crate) fn next_check(&self) -> Duration {
        let mut wait = self.limits.idle_timeout.saturating_sub(self.idle);
        if self.limits.min_rate > 0 {
            wait = wait.min(self.limits.window.saturating_sub(self.window_waited));
        }
        if let Some(max) = self.limits.max_session {
            wait = wait.min(max.saturating_sub(self.served));
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        min_rate: 1024,
        window: Duration::from_secs(30),
        max_session: None,
        idle_timeout: Duration::from_secs(600),
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_dribbler_is_dropped_at_the_end_of_the_first_window() {
        // One byte every 0.4 s.
        let mut pace = Pace::new(LIMITS);
        let mut waited = Duration::ZERO;
        let breach = loop {
            if let Err(breach) = pace.waited(ms(400)) {
                break breach;
            }
            waited += ms(400);
            pace.received(1);
        };
        assert_eq!(
            breach,
            Breach::TooSlow {
                bytes: 74,
                limits: LIMITS
            }
        );
        assert!(waited < LIMITS.window);
        assert!(breach.to_string().contains("sent 74 bytes in 30.0 s"));
    }

    #[test]
    fn a_silent_client_is_dropped_after_one_window_and_never_waits_longer() {
        let mut pace = Pace::new(LIMITS);
        assert_eq!(pace.next_check(), LIMITS.window);
        assert!(pace.waited(ms(29_999)).is_ok());
        assert_eq!(pace.next_check(), ms(1));
        assert!(matches!(
            pace.waited(ms(1)),
            Err(Breach::TooSlow { bytes: 0, .. })
        ));
    }

    #[test]
    fn a_steady_client_over_the_minimum_passes_window_after_window() {
        let mut pace = Pace::new(LIMITS);
        for _ in 0..10 * 30 {
            // 1100 bytes every second, all of it spent waiting.
            pace.waited(ms(1000)).unwrap();
            pace.received(1100);
        }
    }

    #[test]
    fn a_fast_client_that_never_waits_is_never_checked() {
        let mut pace = Pace::new(LIMITS);
        for _ in 0..1000 {
            pace.received(1 << 20);
            pace.served_for(Duration::from_secs(3600)).unwrap();
        }
        // A burst then a pause: the bytes of the burst count for the window.
        pace.received(40_000);
        assert!(pace.waited(ms(30_000)).is_ok());
        assert!(pace.waited(ms(30_000)).is_err());
    }

    #[test]
    fn without_a_minimum_only_the_idle_timeout_applies() {
        let limits = Limits {
            min_rate: 0,
            ..LIMITS
        };
        let mut pace = Pace::new(limits);
        assert_eq!(pace.next_check(), limits.idle_timeout);
        assert!(pace.waited(ms(599_000)).is_ok());
        pace.received(1);
        assert!(pace.waited(ms(599_000)).is_ok());
        assert_eq!(pace.waited(ms(1_000)), Err(Breach::Idle { limits }));
    }

    #[test]
    fn the_session_limit_is_wall_clock() {
        let limits = Limits {
            max_session: Some(Duration::from_secs(60)),
            ..LIMITS
        };
        let mut pace = Pace::new(limits);
        pace.served_for(Duration::from_secs(50)).unwrap();
        assert_eq!(pace.next_check(), Duration::from_secs(10));
        assert_eq!(
            pace.served_for(Duration::from_secs(60)),
            Err(Breach::TooLong { limits })
        );
    }

    #[test]
    fn the_window_minimum_rounds_up() {
        let limits = Limits {
            min_rate: 3,
            window: ms(500),
            ..LIMITS
        };
        assert_eq!(limits.window_minimum(), 2);
        assert_eq!(LIMITS.window_minimum(), 30 * 1024);
    }
}
