//! The clock of the blocking drivers ([`Client`](crate::Client),
//! [`serve_with_timer`](crate::serve_with_timer)): the time, and how a
//! read is bounded by the session's [`poll_timeout`](crate::Session::poll_timeout).
//! (The async drivers' clock is `asynch::Timer`.)

use embedded_io::{Error as _, ErrorKind, ErrorType};

use crate::time::Instant;

/// The clock of a blocking driver, and how it bounds a read by the
/// session's deadline ([`ClientSession::poll_timeout`](crate::ClientSession::poll_timeout),
/// [`Session::poll_timeout`](crate::Session::poll_timeout)).
///
/// For a socket: the time since some epoch, and a receive timeout set to
/// the time left before the deadline.
pub trait Timer<T: ErrorType + ?Sized> {
    /// The clock's instants.
    type Instant: Instant;

    /// The current time.
    fn now(&mut self) -> Self::Instant;

    /// Called before every read: make it return by `deadline` if nothing
    /// arrives, with an error that [`timed_out`](Self::timed_out)
    /// recognises (returning earlier is fine: the driver reads again).
    /// `None`: no deadline, block as long as the transport does.
    fn bound_read(&mut self, io: &mut T, deadline: Option<Self::Instant>) -> Result<(), T::Error>;

    /// Whether a read failed because the bound of
    /// [`bound_read`](Self::bound_read) expired.
    fn timed_out(&self, error: &T::Error) -> bool {
        error.kind() == ErrorKind::TimedOut
    }
}

/// No clock: a driver that waits as long as its transport does. For the
/// client a transport's own timeout is an I/O error like any other;
/// [`serve`](crate::serve) answers it as [`Reject::Timeout`](crate::Reject::Timeout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoTimer;

impl<T: ErrorType + ?Sized> Timer<T> for NoTimer {
    type Instant = u64;

    fn now(&mut self) -> u64 {
        0
    }

    fn bound_read(&mut self, _io: &mut T, _deadline: Option<u64>) -> Result<(), T::Error> {
        Ok(())
    }

    fn timed_out(&self, _error: &T::Error) -> bool {
        false
    }
}
