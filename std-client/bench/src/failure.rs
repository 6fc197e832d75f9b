//! How a connection failed ([`FailureKind`]), and the failed connections by kind ([`FailureCounts`]).

/// How a connection failed; each failure ends its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
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
    /// TLS failed (handshake, certificate, a bad record).
    Tls,
}

impl FailureKind {
    /// Every kind, in report order.
    pub const ALL: [FailureKind; 9] = [
        FailureKind::Connect,
        FailureKind::Rejected,
        FailureKind::InvalidStatus,
        FailureKind::UnexpectedStatus,
        FailureKind::Eof,
        FailureKind::Reset,
        FailureKind::Timeout,
        FailureKind::EventLoop,
        FailureKind::Tls,
    ];

    /// Short machine-readable name.
    pub const fn name(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Rejected => "rejected",
            FailureKind::InvalidStatus => "invalid_status",
            FailureKind::UnexpectedStatus => "unexpected_status",
            FailureKind::Eof => "eof",
            FailureKind::Reset => "reset",
            FailureKind::Timeout => "timeout",
            FailureKind::EventLoop => "event_loop",
            FailureKind::Tls => "tls",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Failed connections, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureCounts {
    counts: [u64; FailureKind::ALL.len()],
}

impl FailureCounts {
    pub fn add(&mut self, failure: FailureKind) {
        if let Some(count) = self.counts.get_mut(failure.index()) {
            *count += 1;
        }
    }

    pub fn merge(&mut self, other: &FailureCounts) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }

    /// Failed connections.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Kinds seen at least once, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (FailureKind, u64)> + '_ {
        FailureKind::ALL
            .iter()
            .zip(self.counts)
            .filter(|(_, count)| *count > 0)
            .map(|(kind, count)| (*kind, count))
    }
}
