//! UART0 polled byte by byte, for a firmware that runs with interrupts
//! masked (the server firmware).
//!
//! The receive interrupts are unmasked in the UART and the NVIC only so
//! that a byte arriving *pends* UART0's interrupt: with PRIMASK set no
//! handler runs, but a pending interrupt still wakes the core from `wfi`.

use cortex_m::peripheral::NVIC;

use crate::pl011::{irq, Pl011, Uart0Interrupt};

pub use crate::pl011::LineError;

/// Exclusive owner of UART0, polled.
#[derive(Debug)]
pub struct Uart {
    pl011: Pl011,
}

impl Uart {
    /// Configure UART0, mask interrupts in the core (PRIMASK) for good, and
    /// return its only handle (`None` if already taken).
    pub fn take() -> Option<Self> {
        let pl011 = Pl011::take(irq::RX | irq::RX_TIMEOUT)?;
        // This driver never handles an interrupt; make sure none is taken.
        cortex_m::interrupt::disable();
        // SAFETY: with PRIMASK set the line can only pend and wake `wfi`; no
        // handler ever runs, so no critical section or handler invariant is broken.
        unsafe { NVIC::unmask(Uart0Interrupt) };
        Some(Uart { pl011 })
    }

    /// Whether a received byte (or error) is waiting.
    pub fn readable(&self) -> bool {
        self.pl011.readable()
    }

    /// The next received byte, `None` if the receive FIFO is empty.
    pub fn read_byte(&mut self) -> Result<Option<u8>, LineError> {
        self.pl011.read_byte()
    }

    /// Whether the transmit FIFO has room for a byte.
    pub fn writable(&self) -> bool {
        self.pl011.writable()
    }

    /// Queue `byte` for sending if the transmit FIFO has room.
    pub fn write_byte(&mut self, byte: u8) -> bool {
        self.pl011.write_byte(byte)
    }

    /// Whether the UART is still sending.
    pub fn busy(&self) -> bool {
        self.pl011.busy()
    }

    /// Forget an earlier receive interrupt, so that `wfi` waits for a new one.
    /// Call before checking [`readable`](Self::readable), then sleep only if
    /// nothing is readable: a byte that arrives in between pends it again.
    pub fn clear_wakeup(&mut self) {
        NVIC::unpend(Uart0Interrupt);
    }
}
