//! The byte stream to the server, and how to get a fresh one after a failure.
//!
//! The uplink asks its [`Link`] for a stream before each login. Over
//! UART0 ([`SerialLink`]) QEMU owns the TCP connection: it connects to the
//! server at start-up and again, by itself, a second after the server
//! closed it (`-serial tcp:HOST:PORT,reconnect=1`). Nothing on the UART says
//! whether that connection is up, so "connecting" is giving QEMU
//! [`LINK_SETTLE`] to (re)connect and dropping what a previous connection
//! left in the receive FIFO (a status that came too late). A login into a
//! link that is still down goes nowhere and times out, and the uplink tries
//! again. With a network stack the same trait opens a real connection (see
//! embedded/README.md).

use embassy_time::{Duration, Timer};
use embedded_io_async::{Read, ReadReady, Write};
use msglog_board::async_uart::{AsyncUart, LineError};

/// Longer than QEMU's reconnect interval (1 s), so that the link is
/// usually up again when the NAME goes out; and at start-up, time for
/// QEMU's first connection, which it makes while the firmware boots.
pub const LINK_SETTLE: Duration = Duration::from_millis(1_500);

/// A way to (re)open the byte stream to the server.
pub trait Link {
    /// The stream the protocol runs on.
    type Stream: Read + Write;
    /// Why no stream could be opened.
    type Error: core::fmt::Debug;

    /// A stream for a new session (after a failure: a new connection).
    async fn connect(&mut self) -> Result<&mut Self::Stream, Self::Error>;
}

/// UART0, which QEMU connects to the server's TCP port.
pub struct SerialLink {
    uart: AsyncUart,
}

impl SerialLink {
    pub fn new(uart: AsyncUart) -> Self {
        SerialLink { uart }
    }
}

impl Link for SerialLink {
    type Stream = AsyncUart;
    type Error = LineError;

    /// Give QEMU time to (re)connect, drop the bytes a previous connection
    /// left behind, then hand out UART0.
    async fn connect(&mut self) -> Result<&mut AsyncUart, LineError> {
        Timer::after(LINK_SETTLE).await;
        let mut stale = [0u8; 16];
        while self.uart.read_ready()? {
            self.uart.read(&mut stale).await?;
        }
        Ok(&mut self.uart)
    }
}
