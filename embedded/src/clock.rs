//! Milliseconds from SysTick, and sleeping until something happens.
//!
//! The firmware runs with interrupts masked (PRIMASK set) from boot on and
//! has no interrupt handlers. SysTick and UART0 still *pend* their
//! interrupts, and a pending interrupt wakes `wfi` even while masked, so the
//! core sleeps until the next byte or the next millisecond instead of
//! spinning: under QEMU an idle firmware costs (almost) no host CPU.

use core::cell::Cell;

use cortex_m::peripheral::{SCB, SYST};
use msglog_board::systick;

/// A millisecond counter, shared by the line (which waits on it) and the
/// session's timer (which reads it). It only advances while someone calls
/// [`Clock::now`] (the waits in `line` do, on every wake-up); a millisecond
/// spent entirely in a host call is lost, which only makes timeouts longer,
/// never shorter.
pub struct Clock {
    /// SysTick, taken out only while its wrap flag is read (which clears it).
    syst: Cell<Option<SYST>>,
    millis: Cell<u64>,
}

impl Clock {
    /// Start SysTick wrapping every millisecond.
    pub fn start(mut syst: SYST) -> Self {
        cortex_m::interrupt::disable();
        systick::start_millisecond_ticks(&mut syst);
        Clock {
            syst: Cell::new(Some(syst)),
            millis: Cell::new(0),
        }
    }

    /// Milliseconds since [`Clock::start`].
    #[inline(never)] // called from the line and the timer: one copy is smaller
    pub fn now(&self) -> u64 {
        if let Some(mut syst) = self.syst.take() {
            if syst.has_wrapped() {
                self.millis.set(self.millis.get() + 1);
            }
            self.syst.set(Some(syst));
        }
        self.millis.get()
    }

    /// Sleep until an interrupt pends: the next tick at the latest.
    pub fn sleep(&self) {
        SCB::clear_pendst();
        cortex_m::asm::wfi();
    }
}
