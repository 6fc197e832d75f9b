//! The LM3S6965's interrupt vectors (cortex-m-rt's `device` feature leaves
//! them to the device crate): UART0's handler, `DefaultHandler` for every
//! other line, zero for the reserved ones.

use crate::async_uart::on_uart0_interrupt;

/// One slot of the vector table: a handler, or zero for a reserved line.
#[derive(Clone, Copy)]
pub union Vector {
    handler: unsafe extern "C" fn(),
    reserved: usize,
}

extern "C" {
    /// cortex-m-rt's handler for interrupts nobody handles (it loops forever).
    fn DefaultHandler();
}

const DEFAULT: Vector = Vector {
    handler: DefaultHandler,
};
const RESERVED: Vector = Vector { reserved: 0 };

/// Interrupt lines 0..=43 (LM3S6965 datasheet, table 2-9): 27, 32, 34 and
/// 39..=41 are reserved; UART0 is line 5 (`pl011::UART0_IRQ`).
// SAFETY: cortex-m-rt's linker script places this symbol right after the
// exception vectors, where the core reads the handler of interrupt line N
// from slot N; every slot holds a valid handler or zero for a line that
// cannot fire.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
pub static __INTERRUPTS: [Vector; 44] = {
    let mut table = [DEFAULT; 44];
    table[crate::pl011::UART0_IRQ as usize] = Vector {
        handler: on_uart0_interrupt,
    };
    let mut line = 0;
    while line < table.len() {
        if matches!(line, 27 | 32 | 34 | 39..=41) {
            table[line] = RESERVED;
        }
        line += 1;
    }
    table
};
