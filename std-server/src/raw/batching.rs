//! Fewer wake-ups while a client streams in bulk.
//!
//! Every time data reaches a server that sleeps in its poll, the kernel
//! wakes it, and on loopback the sending process pays for that wake-up
//! inside its own `write`. So once a read shows the client streaming in
//! bulk, the server sets `SO_RCVLOWAT` to a chunk and is woken once per
//! chunk instead of once per segment. Measured against the server without
//! it, alternating runs: raw mode over TLS +22 % (there the sender is the
//! bottleneck), `msglog-bench --raw` +37 %, `msglog-client` reading a file
//! within the spread of runs (README.md, "Performance"). The kernel still wakes the server at once
//! for the end of the stream, an error, or a receive window about to close.
//!
//! Bytes below the mark must not wait for more that may never come (a
//! client that pauses, types, or ends with close_notify and then waits), so
//! while the mark is raised a wait lasts at most [`LATENCY`], and a wait
//! that ends with nothing lowers the mark again.
//!
//! Linux only; elsewhere nothing changes.

use std::time::Duration;

use mio::net::TcpStream;

use crate::platform::set_receive_low_water;

/// The longest bytes may wait below the mark before they are read anyway.
pub(crate) const LATENCY: Duration = Duration::from_millis(10);

/// One client's receive low-water mark.
#[derive(Debug)]
pub(crate) struct Batching {
    /// The mark while the client streams in bulk.
    chunk: usize,
    raised: bool,
}

impl Batching {
    pub(crate) fn new(chunk: usize) -> Batching {
        Batching {
            chunk,
            raised: false,
        }
    }

    /// After a read of `bytes`: a chunk at once means bulk. Whether this
    /// raised the mark.
    pub(crate) fn read(&mut self, socket: &TcpStream, bytes: usize) -> bool {
        if self.raised || bytes < self.chunk {
            return false;
        }
        match set_receive_low_water(socket, self.chunk) {
            Ok(raised) => self.raised = raised,
            // Never fatal: the stream goes on with a wake-up per segment.
            Err(e) => verbose!("cannot set SO_RCVLOWAT: {e}"),
        }
        self.raised
    }

    /// The longest the next wait may last, given the caller's own `limit`.
    pub(crate) fn wait_limit(&self, limit: Duration) -> Duration {
        if self.raised {
            limit.min(LATENCY)
        } else {
            limit
        }
    }

    /// After a wait that ended with no event: the stream paused, so bytes
    /// below the mark are read now and the next ones wake the server.
    /// Whether this lowered the mark (at most once per raise).
    pub(crate) fn paused(&mut self, socket: &TcpStream) -> bool {
        if !self.raised {
            return false;
        }
        match set_receive_low_water(socket, 1) {
            Ok(_) => self.raised = false,
            // Still raised: waits stay short, so nothing is held for long.
            Err(e) => verbose!("cannot reset SO_RCVLOWAT: {e}"),
        }
        !self.raised
    }

    /// Whether the mark is raised now.
    #[cfg(test)]
    pub(crate) fn raised(&self) -> bool {
        self.raised
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (std::net::TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        (client, TcpStream::from_std(accepted))
    }

    #[test]
    fn small_reads_leave_the_mark_alone_and_waits_unbounded() {
        let (_client, server) = pair();
        let mut batching = Batching::new(64 * 1024);
        assert!(!batching.read(&server, 64 * 1024 - 1));
        assert!(!batching.raised());
        assert_eq!(
            batching.wait_limit(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_bulk_read_raises_the_mark_and_a_pause_lowers_it() {
        use std::io::{Read, Write};

        let (mut client, mut server) = pair();
        let mut batching = Batching::new(64 * 1024);
        assert!(batching.read(&server, 64 * 1024));
        assert!(batching.raised());
        assert!(!batching.read(&server, 64 * 1024), "raised once");
        assert_eq!(batching.wait_limit(Duration::from_secs(30)), LATENCY);

        // Below the mark, the kernel holds the wake-up...
        let mut poll = mio::Poll::new().unwrap();
        poll.registry()
            .register(&mut server, mio::Token(0), mio::Interest::READABLE)
            .unwrap();
        let mut events = mio::Events::with_capacity(4);
        client.write_all(b"tail").unwrap();
        poll.poll(&mut events, Some(Duration::from_millis(200)))
            .unwrap();
        assert!(events.is_empty(), "woken below the mark");
        // ...but a read takes the bytes all the same, and a pause lowers it.
        let mut buffer = [0u8; 16];
        assert_eq!((&server).read(&mut buffer).unwrap(), 4);
        assert!(batching.paused(&server));
        assert!(!batching.raised());
        assert!(!batching.paused(&server), "lowered once");
        client.write_all(b"x").unwrap();
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(!events.is_empty(), "one byte wakes the server again");
    }
}
