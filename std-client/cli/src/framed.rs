//! Framed mode: each message through the library's [`Delivery`], which
//! keeps what is not acknowledged and resends it on a new connection after
//! a failure when `--retry` allows.
//!
//! While no complete line is buffered, the client waits for stdin and the
//! connection at once ([`Watch`]): acknowledgements are counted as they
//! come, a lost connection is reported (or, with `--retry`, replaced) at
//! once, and the server's idle-timeout goodbye drops the connection until
//! the next line needs one.

use std::collections::VecDeque;
use std::env;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use msglog_client::{Credentials, Delivery, Error, Options, RetryPolicy};
use msglog_core::{valid_name, MAX_PAYLOAD};

use crate::args::Args;
use crate::exit::{say, CliError, Exit};
use crate::explain::explain;
use crate::input::{Input, InputError, Origin, Remaining};
use crate::progress::Progress;
use crate::watch::Watch;

pub fn run(args: &Args, user: &str) -> Result<(), CliError> {
    if valid_name(user.as_bytes()).is_none() {
        return Err(CliError::new(
            Exit::Usage,
            format!(
                "invalid user name '{}': it must be non-empty, without brackets or control, invisible or bidi characters",
                user.escape_debug()
            ),
        ));
    }
    let credentials = Credentials::new(user, password(args)?);
    let cannot_read = |e: io::Error| CliError::new(Exit::Input, format!("cannot read stdin: {e}"));
    let (mut watch, waker) = Watch::new().map_err(cannot_read)?;
    let mut input = Input::new(&args.messages, waker).map_err(cannot_read)?;
    if let Some(origin) = input.first_too_long() {
        return Err(CliError::new(
            Exit::TooLong,
            format!("{origin} is longer than {MAX_PAYLOAD} bytes, the most a message can carry; nothing was sent"),
        ));
    }
    let options = Options {
        connect_timeout: args.timeout.0,
        io_timeout: args.timeout.0,
        window: args.window,
        tls: args.tls.connector(&args.host)?,
    };
    let server = (args.host.clone(), args.port);
    let delivery = Delivery::new(
        server,
        credentials,
        options,
        RetryPolicy::attempts(args.retry),
    );
    let mut outbox = Outbox::new(delivery, args.window);
    let mut progress = Progress::new(args.progress);
    let result = deliver(&mut outbox, &mut input, &mut watch, &mut progress);
    progress.finish();
    let stats = outbox.delivery.stats();
    match result {
        Ok(()) => {
            if stats.retries > 0 {
                let duplicates = match stats.maybe_duplicates {
                    0 => "none was sent twice".to_owned(),
                    n => format!("up to {n} may have been logged twice (at-least-once delivery)"),
                };
                say(format!(
                    "all {} messages acknowledged after {}; {duplicates}",
                    stats.acknowledged,
                    retries(stats.retries)
                ));
            }
            Ok(())
        }
        Err(stop) => Err(explain_stop(args, &outbox, &mut input, stop)),
    }
}

fn retries(count: u32) -> String {
    match count {
        1 => "1 retry".to_owned(),
        n => format!("{n} retries"),
    }
}

/// Why delivery stopped before the end of the input.
enum EarlyStop {
    Delivery(Error),
    TooLong(Origin),
    Input(io::Error),
}

fn deliver(
    outbox: &mut Outbox,
    input: &mut Input,
    watch: &mut Watch,
    progress: &mut Progress,
) -> Result<(), EarlyStop> {
    outbox.delivery.connect().map_err(EarlyStop::Delivery)?;
    loop {
        let stop = match input.next_message() {
            Err(InputError::Pending) => {
                outbox.await_input(watch)?;
                outbox.show(progress);
                continue;
            }
            Ok(Some((origin, message))) => {
                outbox.send(origin, message).map_err(EarlyStop::Delivery)?;
                outbox.show(progress);
                continue;
            }
            Ok(None) => return outbox.finish().map_err(EarlyStop::Delivery),
            Err(InputError::TooLong(origin)) => {
                outbox.unsent += 1;
                EarlyStop::TooLong(origin)
            }
            Err(InputError::Read(e)) => EarlyStop::Input(e),
        };
        // Deliver what came before the bad input, then report it.
        outbox.finish().map_err(EarlyStop::Delivery)?;
        return Err(stop);
    }
}

/// The one-line report of an early stop: what happened, and which messages
/// were not acknowledged.
fn explain_stop(args: &Args, outbox: &Outbox, input: &mut Input, stop: EarlyStop) -> CliError {
    let acknowledged = outbox.delivery.stats().acknowledged;
    let (unread, exact) = match input.count_remaining() {
        Remaining::Exactly(n) => (n, true),
        Remaining::AtLeast(n) => (n, false),
    };
    let missing = outbox.delivery.stats().unacknowledged() + outbox.unsent + unread;
    let count = if exact {
        format!(
            "{missing} of {} messages not acknowledged",
            acknowledged + missing
        )
    } else {
        format!("at least {missing} messages not acknowledged ({acknowledged} acknowledged; the rest of stdin was not counted)")
    };
    match stop {
        EarlyStop::TooLong(origin) => CliError::new(
            Exit::TooLong,
            format!(
                "{origin} is longer than {MAX_PAYLOAD} bytes, the most a message can carry; \
                 nothing from it on was sent: {count}"
            ),
        ),
        EarlyStop::Input(e) => CliError::new(
            Exit::Input,
            format!("reading stdin failed: {e}; {acknowledged} messages before the failure were acknowledged"),
        ),
        EarlyStop::Delivery(error) => {
            let first = outbox.first_unacknowledged();
            let mut reported = explain(args, &error, first);
            let retries_used = outbox.delivery.stats().retries;
            if retries_used > 0 {
                let retried = retries(retries_used);
                reported.message.push_str(&format!(" (after {retried})"));
            }
            match first {
                Some(origin) => reported.message.push_str(&format!("; {count}, the first from {origin}")),
                None if acknowledged == 0 && missing > 0 => {
                    reported.message.push_str(&format!("; nothing was sent: {count}"))
                }
                None if acknowledged == 0 => {}
                None => {
                    reported.message.push_str(&format!(
                        "; all {acknowledged} messages sent were acknowledged"
                    ));
                    if missing > 0 {
                        reported.message.push_str(&format!(", none after them: {count}"));
                    }
                }
            }
            reported
        }
    }
}

/// The library's delivery, and where each message it has not had
/// acknowledged came from (for the reports).
struct Outbox {
    delivery: Delivery,
    /// Origins of the unacknowledged messages, oldest first.
    origins: VecDeque<Origin>,
    /// Messages read but not handed over (too long).
    unsent: u64,
}

impl Outbox {
    fn new(delivery: Delivery, window: usize) -> Self {
        Outbox {
            delivery,
            origins: VecDeque::with_capacity(window + 1),
            unsent: 0,
        }
    }

    /// Submit one message (pipelined).
    fn send(&mut self, origin: Origin, message: &[u8]) -> Result<(), Error> {
        let queued = self.delivery.stats().submitted;
        let sent = self.delivery.submit(message);
        if self.delivery.stats().submitted > queued {
            self.origins.push_back(origin);
        } else {
            self.unsent += 1;
        }
        self.forget_acknowledged();
        sent
    }

    /// No complete line is buffered: look at the connection, then wait for
    /// more input, the connection, or the `--timeout` of what is in flight.
    fn await_input(&mut self, watch: &mut Watch) -> Result<(), EarlyStop> {
        let polled = self.delivery.poll();
        self.forget_acknowledged();
        polled.map_err(EarlyStop::Delivery)?;
        let socket = self
            .delivery
            .connection()
            .map(|connection| (self.delivery.connections_opened(), connection));
        watch
            .wait(socket, self.delivery.poll_timeout())
            .map_err(EarlyStop::Input)
    }

    /// Wait for every status, then CLOSE.
    fn finish(&mut self) -> Result<(), Error> {
        let finished = self.delivery.finish();
        self.forget_acknowledged();
        finished.map(|_| ())
    }

    fn show(&self, progress: &mut Progress) {
        let stats = self.delivery.stats();
        progress.update(
            stats.submitted,
            stats.acknowledged,
            stats.bytes_acknowledged,
        );
    }

    /// Where the first message not acknowledged came from.
    fn first_unacknowledged(&self) -> Option<Origin> {
        self.origins.front().copied()
    }

    /// Drop the origins of the messages acknowledged since the last look.
    fn forget_acknowledged(&mut self) {
        let left = self.delivery.stats().unacknowledged();
        while self.origins.len() as u64 > left {
            self.origins.pop_front();
        }
    }
}

/// The password: `--password-file` (without a trailing line ending), else `$MSGLOG_PASSWORD`.
fn password(args: &Args) -> Result<Vec<u8>, CliError> {
    let password = match &args.password_file {
        Some(path) => read_password_file(path)?,
        None => match env::var_os("MSGLOG_PASSWORD") {
            Some(value) => value.into_vec(),
            None => {
                return Err(CliError::new(
                    Exit::Password,
                    "no password: give --password-file FILE or set MSGLOG_PASSWORD",
                ))
            }
        },
    };
    if password.is_empty() {
        return Err(CliError::new(Exit::Password, "the password is empty"));
    }
    if password.len() > MAX_PAYLOAD {
        return Err(CliError::new(
            Exit::Password,
            format!("the password is longer than {MAX_PAYLOAD} bytes"),
        ));
    }
    Ok(password)
}

fn read_password_file(path: &Path) -> Result<Vec<u8>, CliError> {
    let unreadable = |e: io::Error| {
        CliError::new(
            Exit::Password,
            format!("cannot read password file '{}': {e}", path.display()),
        )
    };
    let mut password = Vec::new();
    File::open(path)
        .and_then(|file| file.take(MAX_PAYLOAD as u64 + 3).read_to_end(&mut password))
        .map_err(unreadable)?;
    if password.last() == Some(&b'\n') {
        password.pop();
        if password.last() == Some(&b'\r') {
            password.pop();
        }
    }
    Ok(password)
}
