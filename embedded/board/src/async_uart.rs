//! UART0, interrupt-driven, as an `embedded-io-async` byte stream.
//!
//! No buffer of its own: the PL011's 16-byte FIFOs are the buffers, and a
//! waker is the handoff. A read takes what the receive FIFO holds; when it
//! is empty, the read unmasks the receive interrupts and waits; the
//! handler masks them again and wakes the reader, which then drains the
//! FIFO. Writes work the same way with the transmit FIFO and its
//! interrupt. Transfers longer than a FIFO are simply several rounds.
//!
//! While nobody reads, received bytes stay in the FIFO. Under QEMU a full
//! FIFO stops the emulator from taking more bytes off the TCP connection,
//! so nothing is lost; on a physical line bytes arriving faster than the
//! firmware reads would overrun the FIFO and the next read reports
//! [`LineError::Overrun`] (a ring buffer filled by the handler would be the
//! next step there; this protocol's client receives one status byte per
//! transaction sent).

use core::future::poll_fn;
use core::task::Poll;

use cortex_m::peripheral::NVIC;
use embassy_sync::waitqueue::AtomicWaker;
use embedded_io_async::{ErrorType, Read, ReadReady, Write};

use crate::pl011::{self, irq, Pl011, Uart0Interrupt};

pub use crate::pl011::LineError;

/// The receive interrupts: FIFO at its trigger level, or bytes left waiting.
const RX_INTERRUPTS: u32 = irq::RX | irq::RX_TIMEOUT;

static RX_WAKER: AtomicWaker = AtomicWaker::new();
static TX_WAKER: AtomicWaker = AtomicWaker::new();

/// Exclusive owner of UART0, interrupt-driven.
#[derive(Debug)]
pub struct AsyncUart {
    pl011: Pl011,
    /// A receive error met after some bytes of a read; reported by the next read.
    deferred: Option<LineError>,
}

impl AsyncUart {
    /// Configure UART0 with its interrupts masked, enable its line in the
    /// NVIC, and return its only handle (`None` if already taken).
    pub fn take() -> Option<Self> {
        let pl011 = Pl011::take(0)?;
        // SAFETY: the handler (`UART0` below) touches only the interrupt
        // registers, through `pl011`'s critical-section-guarded mask updates,
        // and the wakers, which are made for interrupt context; it takes no
        // lock a task could hold.
        unsafe { NVIC::unmask(Uart0Interrupt) };
        Some(AsyncUart {
            pl011,
            deferred: None,
        })
    }

    /// Copy what the receive FIFO holds into `buf`, without waiting.
    fn take_received(&mut self, buf: &mut [u8]) -> Result<usize, LineError> {
        let mut filled = 0;
        for slot in buf.iter_mut() {
            match self.pl011.read_byte() {
                Ok(Some(byte)) => *slot = byte,
                Ok(None) => break,
                Err(error) if filled == 0 => return Err(error),
                Err(error) => {
                    self.deferred = Some(error);
                    break;
                }
            }
            filled += 1;
        }
        Ok(filled)
    }

    /// Queue as much of `buf` as the transmit FIFO takes, without waiting.
    fn queue_for_sending(&mut self, buf: &[u8]) -> usize {
        buf.iter()
            .take_while(|&&byte| self.pl011.write_byte(byte))
            .count()
    }
}

impl ErrorType for AsyncUart {
    type Error = LineError;
}

impl Read for AsyncUart {
    /// Wait for at least one byte, then take what has arrived, up to `buf.len()`.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(error) = self.deferred.take() {
            return Err(error);
        }
        poll_fn(|cx| {
            // Register before looking: a byte that arrives after the look
            // asserts the (level) receive interrupt, which fires once unmasked.
            RX_WAKER.register(cx.waker());
            match self.take_received(buf) {
                Ok(0) => {
                    pl011::enable_interrupts(RX_INTERRUPTS);
                    Poll::Pending
                }
                done => Poll::Ready(done),
            }
        })
        .await
    }
}

impl ReadReady for AsyncUart {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(self.deferred.is_some() || self.pl011.readable())
    }
}

impl Write for AsyncUart {
    /// Wait for room in the transmit FIFO, then queue what fits.
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| {
            let sent = self.queue_for_sending(buf);
            if sent > 0 {
                return Poll::Ready(Ok(sent));
            }
            // The FIFO is full. Its interrupt fires when it drains to the
            // trigger level; clear a stale one, unmask, and look again in
            // case it drained in between.
            TX_WAKER.register(cx.waker());
            pl011::clear_interrupts(irq::TX);
            pl011::enable_interrupts(irq::TX);
            let sent = self.queue_for_sending(buf);
            if sent > 0 {
                pl011::disable_interrupts(irq::TX);
                return Poll::Ready(Ok(sent));
            }
            Poll::Pending
        })
        .await
    }

    /// Wait until the last byte has left the UART. The PL011 has no
    /// "transmission complete" interrupt, so this yields to other tasks
    /// while at most a FIFO's worth of bytes goes out.
    async fn flush(&mut self) -> Result<(), Self::Error> {
        poll_fn(|cx| {
            if self.pl011.busy() {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        })
        .await
    }
}

/// UART0's interrupt handler (its slot in `vectors::__INTERRUPTS`): mask
/// what fired and wake whoever waits for it.
pub(crate) extern "C" fn on_uart0_interrupt() {
    let pending = pl011::pending_interrupts();
    if pending & RX_INTERRUPTS != 0 {
        pl011::disable_interrupts(RX_INTERRUPTS);
        RX_WAKER.wake();
    }
    if pending & irq::TX != 0 {
        pl011::disable_interrupts(irq::TX);
        TX_WAKER.wake();
    }
}
