//! UART0 of the LM3S6965: an ARM PL011 at `0x4000_C000`, polled byte by byte.
//!
//! This module is the firmware's only register access, and so the only
//! `unsafe` code between the wire and `msglog-core`. It sets up just what
//! QEMU's PL011 model needs: 8N1 with the 16-byte FIFOs on, transmitter and
//! receiver enabled, and the receive interrupts unmasked so that a byte
//! arriving wakes the core from `wfi` (see `clock`). A physical board also
//! needs the UART0 clock gate, the PA0/PA1 pin mux and a baud rate; QEMU's
//! model has no baud rate and needs none of them.

use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;

const BASE: usize = 0x4000_C000;

/// Register offsets (PL011 Technical Reference Manual, table 3-1).
mod reg {
    pub const DR: usize = 0x000;
    pub const FR: usize = 0x018;
    pub const LCRH: usize = 0x02C;
    pub const CR: usize = 0x030;
    pub const IMSC: usize = 0x038;
    pub const ICR: usize = 0x044;
}

/// Data register: receive error bits above the data byte.
mod dr {
    pub const FRAMING: u32 = 1 << 8;
    pub const PARITY: u32 = 1 << 9;
    pub const BREAK: u32 = 1 << 10;
    pub const OVERRUN: u32 = 1 << 11;
}

/// Flag register.
mod fr {
    pub const BUSY: u32 = 1 << 3;
    pub const RXFE: u32 = 1 << 4;
    pub const TXFF: u32 = 1 << 5;
}

const LCRH_FIFO_ENABLE: u32 = 1 << 4;
const LCRH_8_BITS: u32 = 0b11 << 5;
const CR_UART_ENABLE: u32 = 1 << 0;
const CR_TX_ENABLE: u32 = 1 << 8;
const CR_RX_ENABLE: u32 = 1 << 9;
const IMSC_RX: u32 = 1 << 4;
const IMSC_RX_TIMEOUT: u32 = 1 << 6;
const ICR_ALL: u32 = 0x7FF;

/// UART0's interrupt line on the LM3S6965's NVIC.
#[derive(Debug, Clone, Copy)]
struct Uart0Interrupt;

// SAFETY: 5 is UART0's interrupt number on the LM3S6965 (datasheet table 2-9),
// a valid NVIC line on this part.
unsafe impl InterruptNumber for Uart0Interrupt {
    fn number(self) -> u16 {
        5
    }
}

/// A receive error the PL011 reported with a byte; the byte is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LineError {
    /// The receive FIFO overflowed: bytes were lost.
    Overrun,
    /// The line was held low for longer than a character (a break).
    Break,
    /// The stop bit was missing.
    Framing,
    /// The parity bit was wrong.
    Parity,
}

/// Exclusive owner of UART0.
#[derive(Debug)]
pub struct Uart {
    _owned: (),
}

static TAKEN: AtomicBool = AtomicBool::new(false);

impl Uart {
    /// Configure UART0 and return its only handle (`None` if already taken).
    pub fn take() -> Option<Self> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        write(reg::CR, 0);
        write(reg::ICR, ICR_ALL);
        write(reg::LCRH, LCRH_8_BITS | LCRH_FIFO_ENABLE);
        write(reg::IMSC, IMSC_RX | IMSC_RX_TIMEOUT);
        write(reg::CR, CR_UART_ENABLE | CR_TX_ENABLE | CR_RX_ENABLE);
        // The firmware never unmasks interrupts (see `clock`); make sure of it here.
        cortex_m::interrupt::disable();
        // SAFETY: with PRIMASK set the line can only pend and wake `wfi`; no
        // handler ever runs, so no critical section or handler invariant is broken.
        unsafe { NVIC::unmask(Uart0Interrupt) };
        Some(Uart { _owned: () })
    }

    /// Whether a received byte (or error) is waiting.
    pub fn readable(&self) -> bool {
        read(reg::FR) & fr::RXFE == 0
    }

    /// The next received byte, `None` if the receive FIFO is empty.
    pub fn read_byte(&mut self) -> Result<Option<u8>, LineError> {
        if !self.readable() {
            return Ok(None);
        }
        let word = read(reg::DR);
        let error = if word & dr::OVERRUN != 0 {
            Some(LineError::Overrun)
        } else if word & dr::BREAK != 0 {
            Some(LineError::Break)
        } else if word & dr::FRAMING != 0 {
            Some(LineError::Framing)
        } else if word & dr::PARITY != 0 {
            Some(LineError::Parity)
        } else {
            None
        };
        match error {
            Some(e) => Err(e),
            None => Ok(Some(word.to_le_bytes()[0])),
        }
    }

    /// Whether the transmit FIFO has room for a byte.
    pub fn writable(&self) -> bool {
        read(reg::FR) & fr::TXFF == 0
    }

    /// Queue `byte` for sending if the transmit FIFO has room.
    pub fn write_byte(&mut self, byte: u8) -> bool {
        if !self.writable() {
            return false;
        }
        write(reg::DR, u32::from(byte));
        true
    }

    /// Whether the UART is still sending.
    pub fn busy(&self) -> bool {
        read(reg::FR) & fr::BUSY != 0
    }

    /// Forget an earlier receive interrupt, so that `wfi` waits for a new one.
    /// Call before checking [`readable`](Self::readable), then sleep only if
    /// nothing is readable: a byte that arrives in between pends it again.
    pub fn clear_wakeup(&mut self) {
        NVIC::unpend(Uart0Interrupt);
    }
}

fn read(offset: usize) -> u32 {
    // SAFETY: `offset` is one of the `reg` constants: an aligned, readable
    // PL011 register inside UART0's 4 KiB block, always mapped on this part.
    unsafe { ptr::read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`; only `Uart` (a singleton) calls this, so writes
    // never race another owner of the registers.
    unsafe { ptr::write_volatile((BASE + offset) as *mut u32, value) }
}
