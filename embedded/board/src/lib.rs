//! QEMU's `lm3s6965evb` board (LM3S6965: Cortex-M3, 256 KiB flash, 64 KiB
//! RAM) for msglog's two firmwares: the only place either touches a
//! register.
//!
//! | module | what it is | used by |
//! |---|---|---|
//! | [`pl011`] | UART0's registers and byte operations | both |
//! | [`systick`] | the core clock, SysTick every millisecond | both |
//! | [`polled_uart`] | UART0 polled, waking `wfi` with interrupts masked | server |
//! | `async_uart` | UART0 interrupt-driven, `embedded-io-async` | client (`async`) |
//! | `executor` | `embassy-executor` in thread mode, sleeping in `wfi` | client (`async`) |
//! | `time_driver` | the `embassy-time` driver on SysTick | client (`async`) |
//! | `vectors` | the interrupt vector table (UART0's handler) | client (`async`) |
//!
//! `memory.x` (the memory map) comes with this crate: its build script puts
//! it on the linker's search path.
#![no_std]

pub mod pl011;
pub mod polled_uart;
pub mod systick;

#[cfg(feature = "async")]
pub mod async_uart;
#[cfg(feature = "async")]
pub mod executor;
#[cfg(feature = "async")]
pub mod time_driver;
#[cfg(feature = "async")]
mod vectors;
