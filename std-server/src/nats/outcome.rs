//! What the publisher made of a deferred commit's records, as it reaches
//! the event loop that sent them (through its mailbox).

use std::fmt;

/// The records of commit `commit` of one event loop, in its order.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) commit: u64,
    pub(crate) outcomes: Vec<Outcome>,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// JetStream acknowledged it at this stream sequence (`duplicate`: a
    /// retry found it stored by an earlier attempt).
    Stored { sequence: u64, duplicate: bool },
    /// Not stored, or not known to be: it is answered 0xFF.
    Failed(Failure),
}

/// Why a record is answered 0xFF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// JetStream refused it (the text is its error).
    Refused(String),
    /// No acknowledgement before the deadline; the last attempt's reason.
    NotAcknowledged(&'static str),
    /// Stored, but before a record sent ahead of it on the same
    /// connection: acknowledging it would break the connection's order.
    OutOfOrder,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused(why) => write!(f, "JetStream refused it: {why}"),
            Failure::NotAcknowledged(last) => {
                write!(f, "not acknowledged in time (last attempt: {last})")
            }
            Failure::OutOfOrder => {
                f.write_str("stored after a record sent later on its connection")
            }
        }
    }
}
