//! Milliseconds from SysTick, and sleeping until something happens.
//!
//! The firmware runs with interrupts masked (PRIMASK set) from boot on and
//! has no interrupt handlers. SysTick and UART0 still *pend* their
//! interrupts, and a pending interrupt wakes `wfi` even while masked, so the
//! core sleeps until the next byte or the next millisecond instead of
//! spinning: under QEMU an idle firmware costs (almost) no host CPU.

use cortex_m::peripheral::{SCB, SYST};
use msglog_board::systick;

/// A millisecond counter. It only advances while someone calls [`Clock::now`]
/// (the waits in `line` do, on every wake-up); a millisecond spent entirely
/// in a host call is lost, which only makes timeouts longer, never shorter.
pub struct Clock {
    syst: SYST,
    millis: u32,
}

impl Clock {
    /// Start SysTick wrapping every millisecond.
    pub fn start(mut syst: SYST) -> Self {
        cortex_m::interrupt::disable();
        systick::start_millisecond_ticks(&mut syst);
        Clock { syst, millis: 0 }
    }

    /// Milliseconds since [`Clock::start`], wrapping after 49 days.
    pub fn now(&mut self) -> u32 {
        if self.syst.has_wrapped() {
            self.millis = self.millis.wrapping_add(1);
        }
        self.millis
    }

    /// Milliseconds elapsed since `since` (a value of [`Clock::now`]).
    pub fn elapsed(&mut self, since: u32) -> u32 {
        self.now().wrapping_sub(since)
    }

    /// Sleep until an interrupt pends: the next tick at the latest.
    pub fn sleep(&mut self) {
        SCB::clear_pendst();
        cortex_m::asm::wfi();
    }
}
