//! msglog-core's server on a Cortex-M3: QEMU's `lm3s6965evb` board, clients
//! on UART0, message records appended to `messages.log` on the host through
//! semihosting.
//!
//! The protocol (framing, state machine, status bytes, record escaping,
//! timeouts) is entirely `msglog-core`'s `serve_with_timer` and `Session`;
//! this crate adds the UART driver, the rules that cut the UART's byte
//! stream into sessions (see `line`), the clock, the users table and the
//! host file.
#![no_std]
#![no_main]

#[macro_use]
mod log;

mod clock;
mod host;
mod line;

use core::mem::size_of;

use cortex_m_rt::entry;
use msglog_board::polled_uart::Uart;
use msglog_core::{serve_with_timer, Decoded, RecordWriter, Session, StaticUsers, HEADER_LEN};
use panic_halt as _;

#[cfg(feature = "defmt")]
use defmt_semihosting as _;

use crate::clock::Clock;
use crate::host::HostFile;
use crate::line::{Line, LineTimer};

/// Names up to 32 bytes, passwords up to 32, messages up to 256.
type ServerSession = Session<32, 32, 256>;

/// The receive buffer holds the largest transaction a session accepts.
const RECEIVE_BUFFER: usize = ServerSession::MAX_FRAME;

/// The session keeps only the name (32 bytes); password and message are
/// borrowed from the receive buffer. Its bookkeeping must stay small.
const _: () = assert!(
    size_of::<ServerSession>() <= 32 + 128,
    "Session<32, 32, 256> must fit in its 32-byte name plus 128 bytes"
);

/// A started session's frame and idle timeouts (PROTOCOL.md, decision 6),
/// in milliseconds: a transaction must be complete 5 s after its first
/// byte, and the next must begin within 5 s of the last one's end; else
/// the session is rejected (0xFF). Short, since a stale session blocks the
/// single line for everyone.
const TIMEOUT_MS: u64 = 5_000;

/// Where records go, relative to QEMU's working directory.
const MESSAGE_LOG: &core::ffi::CStr = c"messages.log";

/// The firmware's accounts. A demo: a product would keep password hashes.
const USERS: &[(&str, &[u8])] = &[("alice", b"wonderland"), ("bob", b"builder")];

#[entry]
fn main() -> ! {
    let Some(core) = cortex_m::Peripherals::take() else {
        halt()
    };
    let clock = Clock::start(core.SYST);
    let Some(uart) = Uart::take() else { halt() };
    let mut line = Line::new(uart, &clock);
    let mut timer = LineTimer::new(&clock);
    let Some(buffer) = cortex_m::singleton!(: [u8; RECEIVE_BUFFER] = [0; RECEIVE_BUFFER]) else {
        halt()
    };
    // Static like the buffer: the stack keeps only what a call needs.
    let Some(session) = cortex_m::singleton!(: ServerSession = ServerSession::new()) else {
        halt()
    };
    let messages = HostFile::append(MESSAGE_LOG);
    announce(messages.is_open());

    let mut users = StaticUsers::new(USERS);
    let mut sink = RecordWriter::new(messages);
    loop {
        *session = ServerSession::new();
        session.set_frame_timeout(Some(TIMEOUT_MS));
        session.set_idle_timeout(Some(TIMEOUT_MS));
        let mut connection = line.connection(starts_session);
        let result = serve_with_timer(
            &mut connection,
            buffer,
            session,
            &mut users,
            &mut sink,
            &mut timer,
        );
        if connection.ignored() > 0 {
            info!(
                "ignored {} bytes before the session started",
                connection.ignored()
            );
        }
        match result {
            Ok(served) => info!(
                "session ended: {}, {} transactions, {} messages",
                served.ended, served.transactions, served.messages
            ),
            Err(error) => warn!("session abandoned: {}", error),
        }
    }
}

/// A session starts with a NAME header that a fresh session accepts: the
/// right tag and a length within its limits (the core's own rules).
fn starts_session(header: &[u8; HEADER_LEN]) -> bool {
    matches!(
        ServerSession::new().decode(header),
        Ok(Decoded::Partial { .. })
    )
}

/// Say on the host's console that the firmware is up, with its figures.
fn announce(log_open: bool) {
    let session = size_of::<ServerSession>();
    #[cfg(not(feature = "defmt"))]
    {
        semihosting::println!(
            "msglog-firmware: serving UART0; Session<32, 32, 256> is {} bytes, receive buffer {} bytes; records to messages.log{}",
            session,
            RECEIVE_BUFFER,
            if log_open { "" } else { " (cannot open it: every message will be refused)" }
        );
    }
    #[cfg(feature = "defmt")]
    {
        defmt::info!(
            "msglog-firmware: serving UART0; Session<32, 32, 256> is {} bytes, receive buffer {} bytes; messages.log open: {}",
            session,
            RECEIVE_BUFFER,
            log_open
        );
    }
}

/// Stop for good (start-up cannot go wrong twice: these are singletons).
fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
