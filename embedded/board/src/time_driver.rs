//! The `embassy-time` driver: SysTick interrupts every millisecond
//! (`tick-hz-1_000`), a 64-bit tick count, and embassy's timer queue.
//!
//! A periodic tick is the simplest correct driver for a 24-bit down-counter
//! that cannot be read and extended without races: the handler counts, and
//! wakes the timers that are due. It costs one short interrupt per
//! millisecond; `Timer::after` and `with_timeout` resolve to 1 ms.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

use crate::systick;

struct SysTickDriver {
    /// Milliseconds since [`start`].
    ticks: Mutex<Cell<u64>>,
    /// When the earliest timer in `queue` is due (`u64::MAX`: none).
    next_due: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    next_due: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                let now = self.ticks.borrow(cs).get();
                self.next_due.borrow(cs).set(queue.next_expiration(now));
            }
        });
    }
}

impl SysTickDriver {
    fn on_tick(&self) {
        critical_section::with(|cs| {
            let ticks = self.ticks.borrow(cs);
            let now = ticks.get() + 1;
            ticks.set(now);
            let next_due = self.next_due.borrow(cs);
            if now >= next_due.get() {
                next_due.set(self.queue.borrow_ref_mut(cs).next_expiration(now));
            }
        });
    }
}

/// Start the clock: SysTick interrupts every millisecond from now on.
pub fn start(mut syst: SYST) {
    systick::start_millisecond_ticks(&mut syst);
}

#[exception]
fn SysTick() {
    DRIVER.on_tick();
}
