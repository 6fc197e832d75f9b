//! Resolving a server address and opening a TCP connection with timeouts.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::Error;

/// Connection settings shared by [`Connection`](crate::Connection),
/// [`Delivery`](crate::Delivery), [`ConnectionTable`](crate::ConnectionTable)
/// and [`send_raw`](crate::send_raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Longest wait for each connection attempt; `None` waits as long as the OS does.
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

/// Connect to the first address of `server` that accepts, trying each in
/// turn (IPv6 and IPv4), and apply the I/O timeout to the socket.
pub fn connect<A: ToSocketAddrs>(server: A, options: &Options) -> Result<TcpStream, Error> {
    let addresses = server.to_socket_addrs().map_err(Error::Resolve)?;
    let mut last_error = None;
    for addr in addresses {
        let attempt = match options.connect_timeout {
            Some(timeout) if !timeout.is_zero() => TcpStream::connect_timeout(&addr, timeout),
            _ => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => {
                let timeout = options.io_timeout.filter(|t| !t.is_zero());
                stream.set_read_timeout(timeout).map_err(Error::Io)?;
                stream.set_write_timeout(timeout).map_err(Error::Io)?;
                return Ok(stream);
            }
            Err(source) => last_error = Some(Error::Connect { addr, source }),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        Error::Resolve(io::Error::new(
            io::ErrorKind::NotFound,
            "the name has no addresses",
        ))
    }))
}
