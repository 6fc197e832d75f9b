//! UART0 of the LM3S6965: an ARM PL011 at `0x4000_C000`, its registers and
//! the byte-level operations both drivers build on.
//!
//! Every UART register access of both firmwares is in this module. It sets
//! up just what QEMU's PL011 model needs: 8N1 with the 16-byte FIFOs on,
//! transmitter and receiver enabled. A physical board also needs the UART0
//! clock gate, the PA0/PA1 pin mux and a baud rate; QEMU's model has no baud
//! rate and needs none of them.

use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::interrupt::InterruptNumber;

const BASE: usize = 0x4000_C000;

/// Register offsets (PL011 Technical Reference Manual, table 3-1).
mod reg {
    pub const DR: usize = 0x000;
    pub const FR: usize = 0x018;
    pub const LCRH: usize = 0x02C;
    pub const CR: usize = 0x030;
    pub const IMSC: usize = 0x038;
    pub const MIS: usize = 0x040;
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

/// Interrupt sources, as bits of the mask (IMSC), status (MIS) and clear (ICR) registers.
pub mod irq {
    /// The receive FIFO reached its trigger level.
    pub const RX: u32 = 1 << 4;
    /// The transmit FIFO drained to its trigger level.
    pub const TX: u32 = 1 << 5;
    /// Bytes wait in the receive FIFO and the line has been idle for 32 bit periods.
    pub const RX_TIMEOUT: u32 = 1 << 6;
    /// Every source, for the clear register.
    pub const ALL: u32 = 0x7FF;
}

/// UART0's interrupt line on the LM3S6965's NVIC.
#[derive(Debug, Clone, Copy)]
pub struct Uart0Interrupt;

/// UART0's interrupt number (LM3S6965 datasheet, table 2-9).
pub const UART0_IRQ: u16 = 5;

// SAFETY: 5 is UART0's interrupt number on the LM3S6965 (datasheet table 2-9),
// a valid NVIC line on this part.
unsafe impl InterruptNumber for Uart0Interrupt {
    fn number(self) -> u16 {
        UART0_IRQ
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

impl core::fmt::Display for LineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            LineError::Overrun => "receive overrun",
            LineError::Break => "break on the line",
            LineError::Framing => "framing error",
            LineError::Parity => "parity error",
        })
    }
}

impl core::error::Error for LineError {}

impl embedded_io::Error for LineError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::InvalidData
    }
}

/// Exclusive owner of UART0's data path (the interrupt handler of the
/// async driver only masks, reads and clears interrupt bits).
#[derive(Debug)]
pub struct Pl011 {
    _owned: (),
}

static TAKEN: AtomicBool = AtomicBool::new(false);

impl Pl011 {
    /// Configure UART0 (8N1, FIFOs on, enabled) with the interrupt sources
    /// in `interrupts` unmasked, and return its only handle (`None` if
    /// already taken).
    pub fn take(interrupts: u32) -> Option<Self> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        write(reg::CR, 0);
        write(reg::ICR, irq::ALL);
        write(reg::LCRH, LCRH_8_BITS | LCRH_FIFO_ENABLE);
        write(reg::IMSC, interrupts);
        write(reg::CR, CR_UART_ENABLE | CR_TX_ENABLE | CR_RX_ENABLE);
        Some(Pl011 { _owned: () })
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

    /// Whether the UART is still sending (transmit FIFO or shift register not empty).
    pub fn busy(&self) -> bool {
        read(reg::FR) & fr::BUSY != 0
    }
}

/// Unmask the interrupt sources in `bits`.
pub fn enable_interrupts(bits: u32) {
    modify_mask(|mask| mask | bits);
}

/// Mask the interrupt sources in `bits`.
pub fn disable_interrupts(bits: u32) {
    modify_mask(|mask| mask & !bits);
}

/// The unmasked interrupt sources that are asserted.
pub fn pending_interrupts() -> u32 {
    read(reg::MIS)
}

/// Clear the interrupt sources in `bits` (those that latch, like TX).
pub fn clear_interrupts(bits: u32) {
    write(reg::ICR, bits);
}

/// Read-modify-write of the mask register, which both a driver and its
/// interrupt handler change: in a critical section, so neither loses the
/// other's change.
fn modify_mask(change: impl FnOnce(u32) -> u32) {
    cortex_m::interrupt::free(|_| write(reg::IMSC, change(read(reg::IMSC))));
}

fn read(offset: usize) -> u32 {
    // SAFETY: `offset` is one of the `reg` constants: an aligned, readable
    // PL011 register inside UART0's 4 KiB block, always mapped on this part.
    unsafe { ptr::read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`. The data path (DR) is written only through the
    // `Pl011` singleton; the mask register only inside a critical section
    // (`modify_mask`) or at set-up; ICR writes only clear latched bits.
    unsafe { ptr::write_volatile((BASE + offset) as *mut u32, value) }
}
