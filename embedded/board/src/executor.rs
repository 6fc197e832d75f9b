//! `embassy-executor` in thread mode, sleeping with `wfi`.
//!
//! embassy's stock cortex-m thread-mode `Executor` sleeps with `wfe` and is
//! woken by `sev`. QEMU 7.2 (Debian 12's) implements `wfe` on M-profile as
//! a no-op, so that executor spins: an idle firmware keeps a host core
//! busy (measured: half of this machine's CPU time instead of 5 %), and on
//! a loaded host the emulated SysTick then falls further behind. This loop
//! is the same executor (`embassy_executor::raw::Executor`, thread mode)
//! with the sleep embassy leaves to chips that need another one: it
//! checks, with interrupts masked, whether a task was woken since the last
//! poll, and if not sleeps in `wfi`, which a pending interrupt ends even
//! while masked; unmasking then runs the handler that woke the task.

use core::sync::atomic::{AtomicBool, Ordering};

use embassy_executor::{raw, Spawner};

/// A task was woken since the executor last looked.
static WOKEN: AtomicBool = AtomicBool::new(false);

/// Run the executor forever: `init` spawns the first task(s).
pub fn run(init: impl FnOnce(Spawner)) -> ! {
    let Some(executor) =
        cortex_m::singleton!(: raw::Executor = raw::Executor::new(core::ptr::null_mut()))
    else {
        // `run` was called twice: the first call never returns, so this cannot happen.
        loop {
            cortex_m::asm::wfi();
        }
    };
    let executor: &'static raw::Executor = executor;
    init(executor.spawner());
    loop {
        WOKEN.store(false, Ordering::Release);
        // SAFETY: `poll`'s contract: called on the executor's own thread
        // (this loop, in thread mode) and never re-entered (interrupt
        // handlers only wake tasks, through `__pender` below).
        unsafe { executor.poll() };
        cortex_m::interrupt::free(|_| {
            if !WOKEN.load(Ordering::Acquire) {
                cortex_m::asm::wfi();
            }
        });
    }
}

/// embassy-executor calls this when a task is woken (from a task or an
/// interrupt handler): the loop above polls again instead of sleeping.
#[export_name = "__pender"]
fn pender(_context: *mut ()) {
    WOKEN.store(true, Ordering::Release);
}
