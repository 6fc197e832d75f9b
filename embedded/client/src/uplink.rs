//! The device's job: deliver every message of the demo, in order, at least
//! once, over whatever link it has, and end with CLOSE.
//!
//! - The backlog goes out pipelined as soon as the device is logged in (up
//!   to `WINDOW` messages in flight). From the diagnostic dump on, messages
//!   are paced: the dump once the backlog is acknowledged, then a live
//!   reading every `READING_INTERVAL`. Before sleeping until the next one is
//!   due, the device waits for every status: a paced message travels alone.
//! - A message refused (0xFF) was not stored, and the server closed the
//!   connection. The device logs in again and sends that message once more,
//!   alone: a server may commit pipelined messages together and refuse the
//!   first of a batch it could not store, and over this link a refusal can
//!   also mean the session was gone (QEMU reconnects the UART to a restarted
//!   server without telling the device). Refused alone a second time, it is
//!   dropped and reported.
//! - No status in time, a byte that is not a status, or the stream ending:
//!   the link is lost. The device logs in again and resends every message
//!   not acknowledged (at least once: a server that stored one but could
//!   not answer before it died gets it twice).
//! - A login that fails is tried again after `LOGIN_RETRY_DELAY`. Logins
//!   that fail `MAX_FAILED_LOGINS` times in a row, or more than
//!   `MAX_SESSIONS` sessions, end the run: a demo must end.

use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::{Read, Write};
use msglog_core::asynch::Client;
use msglog_core::{ClientError, Stage};
use msglog_sensor_demo::{message, BACKLOG, COUNT, MAX_LEN, NAME, PASSWORD};

use crate::link::Link;
use crate::timer::EmbassyTimer;

/// Transactions written ahead of their statuses: the whole backlog, so its
/// 20 statuses, more than the 16-byte receive FIFO holds, can all be on
/// their way while the device still writes.
const WINDOW: usize = 24;

/// How long a status may take, in milliseconds (`EmbassyTimer`'s unit):
/// from the message that found nothing in flight, and again from every
/// status. Over the UART it is also how a lost link is noticed, so it is
/// generous for a loaded host: a status later than this would be taken
/// for the next transaction's.
const STATUS_TIMEOUT_MS: u64 = 5_000;

/// Wait after a failed login before the next attempt.
const LOGIN_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Between two paced messages.
const READING_INTERVAL: Duration = Duration::from_millis(1_000);

const MAX_FAILED_LOGINS: u32 = 8;
const MAX_SESSIONS: u32 = 16;

/// What happened, for the final report.
#[derive(Debug, Default)]
pub struct Report {
    /// Messages the server acknowledged.
    pub acknowledged: usize,
    /// The counter (index + 1) of a message dropped after two refusals.
    pub dropped: Option<usize>,
    /// Sessions that logged in.
    pub sessions: u32,
    /// Logins that failed (link down, or a refusal).
    pub failed_logins: u32,
    /// Messages refused (0xFF).
    pub refusals: u32,
    /// Sessions that ended without an answer (timeout, stream ended, garbled status).
    pub links_lost: u32,
}

/// Why the run was abandoned.
#[derive(Debug)]
pub enum Abandoned {
    /// Too many failed logins in a row.
    CannotLogIn,
    /// Too many sessions.
    TooManySessions,
    /// A message cannot be encoded or the client was misused: a bug.
    Bug,
}

/// Where the device is in its list of messages.
struct Progress {
    /// The first message not yet acknowledged (or dropped).
    next: usize,
    /// `next` was refused once: send it alone first.
    refused_once: bool,
    /// When the paced messages started (the dump went out).
    paced_since: Option<Instant>,
}

/// Deliver the demo's messages over `link`, then CLOSE.
pub async fn run<L: Link>(link: &mut L) -> Result<Report, Abandoned> {
    let mut report = Report::default();
    let mut buf = [0u8; MAX_LEN];
    let mut progress = Progress {
        next: 0,
        refused_once: false,
        paced_since: None,
    };
    let mut failed_logins_in_a_row = 0;
    loop {
        if failed_logins_in_a_row > 0 {
            Timer::after(LOGIN_RETRY_DELAY).await;
        }
        let login = match link.connect().await {
            Ok(stream) => {
                let mut client =
                    Client::with_timer(stream, WINDOW, EmbassyTimer, Some(STATUS_TIMEOUT_MS));
                match client.login(NAME, PASSWORD).await {
                    Ok(()) => Some(client),
                    Err(error) => {
                        semihosting::println!("login failed: {:?}", error);
                        None
                    }
                }
            }
            Err(error) => {
                semihosting::println!("cannot connect: {:?}", error);
                None
            }
        };
        let Some(mut client) = login else {
            report.failed_logins += 1;
            failed_logins_in_a_row += 1;
            if failed_logins_in_a_row >= MAX_FAILED_LOGINS {
                return Err(Abandoned::CannotLogIn);
            }
            continue;
        };
        failed_logins_in_a_row = 0;
        report.sessions += 1;
        if report.sessions > MAX_SESSIONS {
            return Err(Abandoned::TooManySessions);
        }
        semihosting::println!(
            "session {}: logged in, from message {}",
            report.sessions,
            progress.next + 1
        );

        let base = progress.next;
        let result = send_remaining(&mut client, &mut progress, &mut buf).await;
        let acknowledged = usize::try_from(client.messages_acknowledged()).unwrap_or(usize::MAX);
        report.acknowledged += acknowledged;
        progress.next = base + acknowledged;
        match result {
            Ok(()) => {
                // Everything is acknowledged; any answer to CLOSE ends cleanly.
                let _clean = client.close().await;
                semihosting::println!("session {}: closed", report.sessions);
                return Ok(report);
            }
            Err(ClientError::Rejected {
                stage: Stage::Message(_),
            }) => {
                report.refusals += 1;
                let counter = progress.next + 1;
                if progress.refused_once {
                    semihosting::println!("message {} refused alone: dropped", counter);
                    report.dropped = Some(counter);
                    progress.next += 1;
                    progress.refused_once = false;
                } else {
                    semihosting::println!("message {} refused: sending it again, alone", counter);
                    progress.refused_once = true;
                }
            }
            Err(
                ClientError::Encode(_)
                | ClientError::SessionEnded
                | ClientError::NotLoggedIn
                | ClientError::AlreadyLoggedIn,
            ) => return Err(Abandoned::Bug),
            Err(error) => {
                semihosting::println!("link lost ({:?}): logging in again", error);
                report.links_lost += 1;
            }
        }
    }
}

/// Send the messages from `progress.next` on in this session, paced, and
/// wait for their statuses.
async fn send_remaining<T: Read + Write>(
    client: &mut Client<T, EmbassyTimer>,
    progress: &mut Progress,
    buf: &mut [u8; MAX_LEN],
) -> Result<(), ClientError<T::Error>> {
    for index in progress.next..COUNT {
        if index >= BACKLOG {
            let since = match progress.paced_since {
                Some(since) => since,
                // Paced messages start once the backlog is acknowledged.
                None => {
                    client.wait().await?;
                    *progress.paced_since.insert(Instant::now())
                }
            };
            let offset = u32::try_from(index - BACKLOG).unwrap_or(u32::MAX);
            let due = since + READING_INTERVAL * offset;
            if due > Instant::now() {
                client.wait().await?;
                Timer::at(due).await;
            }
        }
        let Some(text) = message(index, buf) else {
            return Err(ClientError::SessionEnded);
        };
        client.send(text).await?;
        if progress.refused_once {
            // Alone: its status before anything else goes out.
            client.wait().await?;
            progress.refused_once = false;
        }
    }
    client.wait().await
}
