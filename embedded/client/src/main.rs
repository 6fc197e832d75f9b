//! msglog's client role on a Cortex-M3: QEMU's `lm3s6965evb` board runs the
//! async client under `embassy-executor` (thread mode,
//! `msglog_board::executor`) and sends a demo sensor's messages over UART0,
//! which QEMU connects to `msglog-server`'s TCP port (`-serial
//! tcp:127.0.0.1:PORT,reconnect=1`).
//!
//! `uplink` is the device's policy (what to send, when, what to do when it
//! fails) over `msglog-core`'s async client (`msglog_core::asynch::Client`),
//! `link` the byte stream, `timer` `embassy-time` as the client's clock.
//! The board's interrupt-driven UART and its `embassy-time` driver are in
//! msglog-board.
//!
//! At the end the firmware prints a report through semihosting and exits
//! QEMU with status 0 (every message acknowledged, or dropped after two
//! refusals) or 1 (it gave up). Started with the argument
//! `--wait-for-monitor` (`-semihosting-config
//! enable=on,target=native,arg=msglog-client-firmware,arg=--wait-for-monitor`),
//! it sleeps after a successful report instead of exiting, so that the demo
//! can dump its RAM through QEMU's monitor (the stack high-water mark)
//! before quitting QEMU there.
#![no_std]
#![no_main]

mod link;
mod timer;
mod uplink;

use cortex_m_rt::entry;
use msglog_board::async_uart::AsyncUart;
use msglog_board::{executor, time_driver};

use crate::link::SerialLink;
use crate::uplink::Report;

#[entry]
fn main() -> ! {
    let (Some(core), Some(uart)) = (cortex_m::Peripherals::take(), AsyncUart::take()) else {
        semihosting::process::exit(2)
    };
    time_driver::start(core.SYST);
    executor::run(|spawner| match device(uart) {
        Ok(task) => spawner.spawn(task),
        Err(_pool_full) => semihosting::process::exit(2),
    })
}

/// The device's one task: deliver the demo's messages, report, and end.
#[embassy_executor::task]
async fn device(uart: AsyncUart) {
    semihosting::println!(
        "msglog-client-firmware: logging to the server over UART0 as {}",
        msglog_sensor_demo::NAME
    );
    let mut link = SerialLink::new(uart);
    let succeeded = match uplink::run(&mut link).await {
        Ok(report) => {
            print_report(&report);
            report.acknowledged + usize::from(report.dropped.is_some()) == msglog_sensor_demo::COUNT
        }
        Err(reason) => {
            semihosting::println!("msglog-client-firmware: gave up: {:?}", reason);
            false
        }
    };
    if succeeded && wait_for_monitor() {
        loop {
            cortex_m::asm::wfi();
        }
    }
    semihosting::process::exit(if succeeded { 0 } else { 1 })
}

fn print_report(report: &Report) {
    semihosting::println!(
        "msglog-client-firmware: done: {} messages acknowledged, dropped: {:?}; {} sessions, {} failed logins, {} refusals, {} links lost",
        report.acknowledged,
        report.dropped,
        report.sessions,
        report.failed_logins,
        report.refusals,
        report.links_lost
    );
}

/// A bug: say where on the host's console and fail the run (QEMU exits 101).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    semihosting::eprintln!("msglog-client-firmware: {}", info);
    semihosting::process::exit(101)
}

/// Whether QEMU passed `--wait-for-monitor` (semihosting's command line).
fn wait_for_monitor() -> bool {
    semihosting::experimental::env::args::<64>().is_ok_and(|args| {
        (&args)
            .into_iter()
            .any(|arg| arg == Ok("--wait-for-monitor"))
    })
}
