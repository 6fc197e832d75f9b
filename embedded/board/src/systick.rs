//! SysTick, the Cortex-M3's own timer, ticking every millisecond from the core clock.

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;

/// Core clock of QEMU's LM3S6965 model out of reset: its 200 MHz PLL
/// divided by SYSDIV + 1 = 16 (RCC reset value 0x078E_3AC0).
pub const CORE_HZ: u32 = 12_500_000;

/// Start SysTick wrapping every millisecond, with its interrupt enabled
/// (it pends every millisecond; whether a handler runs is up to PRIMASK).
pub fn start_millisecond_ticks(syst: &mut SYST) {
    syst.set_reload(CORE_HZ / 1_000 - 1);
    syst.set_clock_source(SystClkSource::Core);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}
