//! How other threads hand work to an event-loop thread: a locked inbox and
//! a `mio::Waker` that interrupts its `poll`.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::Waker;

use crate::tls::TlsLink;

/// A connection accepted for a worker.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub id: u64,
    /// From a TLS listener: its TLS state, not yet handshaken.
    pub tls: Option<AcceptedTls>,
}

/// The TLS side of a connection accepted on a TLS listener.
#[derive(Debug)]
pub(crate) struct AcceptedTls {
    pub link: Box<TlsLink>,
    /// `--tls-require-cert-name`.
    pub require_cert_name: bool,
}

/// What the verifier pool did with a password.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub slot: usize,
    pub connection: u64,
    pub decision: Decision,
}

pub(crate) enum Decision {
    /// Verified: accepted or not. A refusal is not answered before
    /// `not_before` (so that it takes as long as the costliest check).
    Verified {
        accepted: bool,
        not_before: Option<Instant>,
    },
    /// Not verified: the address's back-off has not passed. The password
    /// goes back to the connection, which asks again after `wait`.
    Deferred { wait: Duration, password: Box<[u8]> },
    /// Not verified: displaced from the full verification queue.
    Overloaded,
}

impl Decision {
    /// Let go of a decision nobody will act on (its connection is gone),
    /// overwriting a deferred password first.
    pub(crate) fn discard(self) {
        if let Decision::Deferred { mut password, .. } = self {
            password.fill(0);
            std::hint::black_box(&password);
        }
    }
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a password.
        match self {
            Decision::Verified {
                accepted,
                not_before,
            } => write!(f, "Verified({accepted}, not before {not_before:?})"),
            Decision::Deferred { wait, .. } => write!(f, "Deferred({wait:?})"),
            Decision::Overloaded => f.write_str("Overloaded"),
        }
    }
}

/// What a worker finds when it wakes up.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pub accepted: Vec<Accepted>,
    pub verdicts: Vec<Verdict>,
    /// Commits the NATS publisher has settled.
    #[cfg(feature = "nats")]
    pub stored: Vec<crate::nats::Stored>,
    /// Stop: finish in-progress transactions until this deadline, then exit.
    pub stop: Option<Instant>,
}

impl Inbox {
    fn is_empty(&self) -> bool {
        #[cfg(feature = "nats")]
        if !self.stored.is_empty() {
            return false;
        }
        self.accepted.is_empty() && self.verdicts.is_empty() && self.stop.is_none()
    }
}

/// The inbox of one worker.
#[derive(Debug)]
pub(crate) struct Mailbox {
    waker: Waker,
    inbox: Mutex<Inbox>,
}

impl Mailbox {
    pub(crate) fn new(waker: Waker) -> Self {
        Mailbox {
            waker,
            inbox: Mutex::new(Inbox::default()),
        }
    }

    fn deliver(&self, put: impl FnOnce(&mut Inbox)) {
        let was_empty = {
            let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
            let was_empty = inbox.is_empty();
            put(&mut inbox);
            was_empty
        };
        // One wake-up per batch of deliveries; the worker takes them all.
        if was_empty {
            if let Err(e) = self.waker.wake() {
                error!("cannot wake an event loop: {e}");
            }
        }
    }

    pub(crate) fn accept(&self, accepted: Accepted) {
        self.deliver(|inbox| inbox.accepted.push(accepted));
    }

    pub(crate) fn verdict(&self, verdict: Verdict) {
        self.deliver(|inbox| inbox.verdicts.push(verdict));
    }

    /// The outcome of a commit handed to the NATS publisher.
    #[cfg(feature = "nats")]
    pub(crate) fn stored(&self, stored: crate::nats::Stored) {
        self.deliver(|inbox| inbox.stored.push(stored));
    }

    /// Ask the worker to stop by `deadline` (an earlier deadline replaces a later one).
    pub(crate) fn stop(&self, deadline: Instant) {
        self.deliver(|inbox| {
            inbox.stop = Some(inbox.stop.map_or(deadline, |d| d.min(deadline)));
        });
    }

    /// Take everything delivered so far, leaving `spare`'s (empty) vectors in its place.
    pub(crate) fn take(&self, spare: &mut Inbox) {
        let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *inbox, spare);
    }
}
