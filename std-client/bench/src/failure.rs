//! Why a connection failed, and the tally of failures.

/// How a connection failed; each failure ends its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Could not connect.
    Connect,
    /// A status 0xFF.
    Rejected,
    /// A byte that is neither 0x00 nor 0xFF.
    InvalidStatus,
    /// A status with no transaction awaiting it.
    UnexpectedStatus,
    /// The server closed the connection with statuses outstanding.
    Eof,
    /// Reset or another socket error.
    Reset,
    /// No progress for the stall timeout.
    Timeout,
    /// The event loop itself failed.
    EventLoop,
}

impl Failure {
    /// Every kind, in report order.
    pub const ALL: [Failure; 8] = [
        Failure::Connect,
        Failure::Rejected,
        Failure::InvalidStatus,
        Failure::UnexpectedStatus,
        Failure::Eof,
        Failure::Reset,
        Failure::Timeout,
        Failure::EventLoop,
    ];

    /// Short machine-readable name.
    pub const fn name(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Rejected => "rejected",
            Failure::InvalidStatus => "invalid_status",
            Failure::UnexpectedStatus => "unexpected_status",
            Failure::Eof => "eof",
            Failure::Reset => "reset",
            Failure::Timeout => "timeout",
            Failure::EventLoop => "event_loop",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Failed connections, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failures {
    counts: [u64; Failure::ALL.len()],
}

impl Failures {
    pub fn add(&mut self, failure: Failure) {
        if let Some(count) = self.counts.get_mut(failure.index()) {
            *count += 1;
        }
    }

    pub fn merge(&mut self, other: &Failures) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }

    /// Failed connections.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Kinds seen at least once, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (Failure, u64)> + '_ {
        Failure::ALL
            .iter()
            .zip(self.counts)
            .filter(|(_, count)| *count > 0)
            .map(|(kind, count)| (*kind, count))
    }
}
