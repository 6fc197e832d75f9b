//! QEMU's `lm3s6965evb` board (LM3S6965: Cortex-M3, 256 KiB flash, 64 KiB
//! RAM) for msglog's two firmwares: the only place either touches a
//! register.
//!
//! | module | what it is | used by |
//! |---|---|---|
//! | [`pl011`] | UART0's registers and byte operations | both |
//! | [`systick`] | the core clock, SysTick every millisecond | both |
//! | [`polled_uart`] | UART0 polled, waking `wfi` with interrupts masked | server |
//!
//! `memory.x` (the memory map) comes with this crate: its build script puts
//! it on the linker's search path.
#![no_std]

pub mod pl011;
pub mod polled_uart;
pub mod systick;
