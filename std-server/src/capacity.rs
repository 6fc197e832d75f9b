//! The std server's capacities: one session type, from which every other
//! size or limit of the server is derived.

use msglog_core::Session;

use crate::instant::SessionInstant;

/// Names and passwords up to 255 bytes, messages up to 65535 (PROTOCOL.md),
/// timed on std's monotonic clock.
pub(crate) type ServerSession = Session<255, 255, 65535, SessionInstant>;

/// The longest name a session holds, and so the longest a users file may list.
pub(crate) const MAX_NAME: usize = ServerSession::LIMITS.name as usize;

/// The longest password a client can send this server.
pub(crate) const MAX_PASSWORD: usize = ServerSession::LIMITS.password as usize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capacities_of_protocol_md() {
        assert_eq!((MAX_NAME, MAX_PASSWORD), (255, 255));
        assert_eq!(ServerSession::LIMITS, msglog_core::Limits::STD);
        assert_eq!(ServerSession::MAX_FRAME, msglog_core::MAX_FRAME);
    }
}
