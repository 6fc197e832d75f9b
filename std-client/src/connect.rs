//! Resolving a server address and opening a TCP connection: the resolved
//! addresses are tried as RFC 8305 ("Happy Eyeballs") suggests, each
//! attempt bounded by the connect timeout.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use crate::Error;

/// Connection settings shared by [`Connection`](crate::Connection),
/// [`Delivery`](crate::Delivery), [`ConnectionTable`](crate::ConnectionTable)
/// and [`send_raw`](crate::send_raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Longest wait for each connection attempt (one per address); `None`
    /// waits as long as the OS does.
    pub connect_timeout: Option<Duration>,
    /// Longest wait for a write to make progress (room in the send buffer)
    /// and for an awaited status byte (counted from the send that found
    /// nothing in flight, and again from every status); `None` waits forever.
    pub io_timeout: Option<Duration>,
    /// Transactions in flight per connection (at least 1).
    pub window: usize,
    /// Speak TLS (feature `tls`): every connection made with these options
    /// does the TLS handshake after connecting; `None`: plaintext.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::TlsConnector>,
}

impl Options {
    /// The defaults: 10 s to connect, 30 s per read or write, a window of 64.
    pub const DEFAULT: Options = Options {
        connect_timeout: Some(Duration::from_secs(10)),
        io_timeout: Some(Duration::from_secs(30)),
        window: 64,
        #[cfg(feature = "tls")]
        tls: None,
    };
}

impl Default for Options {
    fn default() -> Self {
        Options::DEFAULT
    }
}

/// How long an attempt has before the next address is tried alongside it
/// (RFC 8305, section 5: "Connection Attempt Delay", 250 ms recommended).
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connect to `server` and apply the I/O timeout to the socket.
///
/// The addresses it resolves to are tried as RFC 8305 (Happy Eyeballs)
/// suggests: in the resolver's order, but alternating address families
/// (IPv6 and IPv4) from the first one on; each attempt starts when the one
/// before it has failed or has not succeeded within [`ATTEMPT_DELAY`],
/// while the earlier ones go on; the first connection made wins and the
/// others are closed. Each attempt has its own
/// [`Options::connect_timeout`], so an address that does not answer costs
/// [`ATTEMPT_DELAY`] of the total, not the whole timeout. When every
/// attempt failed, the error is the last failure's ([`Error::Connect`]).
pub fn connect<A: ToSocketAddrs>(server: A, options: &Options) -> Result<TcpStream, Error> {
    let addresses: Vec<SocketAddr> = server.to_socket_addrs().map_err(Error::Resolve)?.collect();
    if addresses.is_empty() {
        return Err(Error::Resolve(io::Error::new(
            io::ErrorKind::NotFound,
            "the name has no addresses",
        )));
    }
    let timeout = options.connect_timeout.filter(|t| !t.is_zero());
    let stream = match addresses.as_slice() {
        [only] => attempt(*only, timeout).map_err(|source| Error::Connect {
            addr: *only,
            source,
        }),
        _ => race(&interleave_families(addresses), timeout),
    }?;
    let io_timeout = options.io_timeout.filter(|t| !t.is_zero());
    stream.set_read_timeout(io_timeout).map_err(Error::Io)?;
    stream.set_write_timeout(io_timeout).map_err(Error::Io)?;
    Ok(stream)
}

fn attempt(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
    match timeout {
        Some(timeout) => TcpStream::connect_timeout(&addr, timeout),
        None => TcpStream::connect(addr),
    }
}

/// Attempts staggered by [`ATTEMPT_DELAY`], each on a thread of its own
/// (a blocking connect cannot be waited on together with another without
/// an event loop); the first success is returned, a later one is closed by
/// its thread when nobody takes it.
fn race(addresses: &[SocketAddr], timeout: Option<Duration>) -> Result<TcpStream, Error> {
    let (results, outcomes) = mpsc::channel();
    let mut started = 0;
    let mut finished = 0;
    let mut last_failure = None;
    loop {
        if let Some(&addr) = addresses.get(started) {
            let results = results.clone();
            let spawned = thread::Builder::new()
                .name("connect".into())
                .spawn(move || {
                    // Nobody waits any more once another attempt won.
                    let _ = results.send((addr, attempt(addr, timeout)));
                });
            if let Err(source) = spawned {
                return Err(Error::Connect { addr, source });
            }
            started += 1;
        }
        let outcome = if started < addresses.len() {
            match outcomes.recv_timeout(ATTEMPT_DELAY) {
                Ok(outcome) => outcome,
                // No success yet: the next address joins the race.
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match outcomes.recv() {
                Ok(outcome) => outcome,
                Err(_) => break,
            }
        };
        finished += 1;
        match outcome {
            (_, Ok(stream)) => return Ok(stream),
            (addr, Err(source)) => last_failure = Some(Error::Connect { addr, source }),
        }
        if finished == addresses.len() {
            break;
        }
    }
    Err(last_failure
        .unwrap_or_else(|| Error::Io(io::Error::other("no connection attempt reported back"))))
}

/// The resolver's order (RFC 6724), reordered so that the address
/// families alternate, starting with the first address's (RFC 8305, 4).
fn interleave_families(addresses: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_is_v6 = addresses.first().is_some_and(SocketAddr::is_ipv6);
    let (mut preferred, mut other): (Vec<_>, Vec<_>) = addresses
        .into_iter()
        .partition(|addr| addr.is_ipv6() == first_is_v6);
    let mut ordered = Vec::with_capacity(preferred.len() + other.len());
    preferred.reverse();
    other.reverse();
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return ordered,
            (a, b) => ordered.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
    use std::time::Instant;

    use super::*;

    fn v4(port: u16) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, port).into()
    }

    fn v6(port: u16) -> SocketAddr {
        (Ipv6Addr::LOCALHOST, port).into()
    }

    #[test]
    fn families_alternate_from_the_first_address_on() {
        let ordered = interleave_families(vec![v6(1), v6(2), v6(3), v4(4), v4(5)]);
        assert_eq!(ordered, [v6(1), v4(4), v6(2), v4(5), v6(3)]);
        let ordered = interleave_families(vec![v4(1), v6(2), v6(3)]);
        assert_eq!(ordered, [v4(1), v6(2), v6(3)]);
        assert_eq!(interleave_families(vec![v4(1), v4(2)]), [v4(1), v4(2)]);
    }

    /// An address that never answers a connection attempt: a listener on
    /// ::1 whose accept queue (of one) is full, so that the kernel drops
    /// the SYNs of further attempts. Kept alive by the returned values.
    fn unanswering() -> (SocketAddr, TcpListener, TcpStream) {
        let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)
            .expect("an IPv6 socket");
        socket.bind(&v6(0).into()).expect("::1 is there");
        socket.listen(0).unwrap();
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr().unwrap();
        let filler = TcpStream::connect(addr).unwrap();
        (addr, listener, filler)
    }

    #[test]
    fn an_address_that_does_not_answer_costs_the_attempt_delay_not_the_timeout() {
        let (silent, _listener, _filler) = unanswering();
        // Sanity: the silent address really does not answer.
        let probe = Instant::now();
        assert!(TcpStream::connect_timeout(&silent, Duration::from_millis(500)).is_err());
        assert!(probe.elapsed() >= Duration::from_millis(400));

        let server = TcpListener::bind(v4(0)).unwrap();
        let good = server.local_addr().unwrap();
        let options = Options {
            connect_timeout: Some(Duration::from_secs(30)),
            ..Options::default()
        };
        let start = Instant::now();
        let stream = connect(&[silent, good][..], &options).unwrap();
        let took = start.elapsed();
        assert_eq!(stream.peer_addr().unwrap(), good);
        assert!(took >= ATTEMPT_DELAY, "{took:?}");
        // Far below the 30 s an attempt may take (a loaded machine may be slow).
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn a_refused_address_hands_over_to_the_next_at_once() {
        let closed = TcpListener::bind(v6(0)).unwrap();
        let refused = closed.local_addr().unwrap();
        drop(closed);
        let server = TcpListener::bind(v4(0)).unwrap();
        let good = server.local_addr().unwrap();
        let stream = connect(&[refused, good][..], &Options::default()).unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good);
    }

    #[test]
    fn each_attempt_has_the_connect_timeout_and_the_last_failure_is_reported() {
        let (silent, _listener, _filler) = unanswering();
        let closed = TcpListener::bind(v4(0)).unwrap();
        let refused = closed.local_addr().unwrap();
        drop(closed);
        let options = Options {
            connect_timeout: Some(Duration::from_millis(600)),
            ..Options::default()
        };
        let start = Instant::now();
        let error = connect(&[silent, refused][..], &options).unwrap_err();
        let took = start.elapsed();
        // The refusal comes first; the silent attempt times out after it.
        match error {
            Error::Connect { addr, source } => {
                assert_eq!(addr, silent);
                assert_eq!(source.kind(), io::ErrorKind::TimedOut, "{source}");
            }
            other => panic!("{other:?}"),
        }
        assert!(took >= Duration::from_millis(500), "{took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
}
