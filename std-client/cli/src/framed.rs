//! Framed mode: each message through the library's [`Delivery`], which
//! keeps what is not acknowledged and resends it on a new connection after
//! a failure when `--retry` allows.
//!
//! Messages that are ready go out together (the library's
//! `Delivery::queue`), in as few writes as the window allows. While no
//! complete line is buffered, the client waits for the input and the
//! connection at once ([`Watch`]): acknowledgements are counted as they
//! come, a lost connection is reported (or, with `--retry`, replaced) at
//! once, and the server's idle-timeout goodbye drops the connection until
//! the next line needs one.

use std::collections::VecDeque;
use std::env;
use std::io;
use std::path::Path;
use std::sync::Arc;

use msglog_client::{Credentials, Delivery, Error, Options, RetryPolicy, Stage};
use msglog_core::{valid_name, MAX_PAYLOAD};

use crate::args::Settings;
use crate::exit::{say, CliError, Exit};
use crate::explain::explain;
use crate::input::{Input, InputError, Opened, Origin, Remaining};
use crate::lines::Delimiter;
use crate::progress::Progress;
use crate::summary::{on_signal, plural, Tally, Unit};
use crate::watch::Watch;

pub fn run(settings: &Settings, user: &str) -> Result<(), CliError> {
    let args = &settings.args;
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
    let opened = if args.messages.is_empty() {
        Opened::open(&settings.inputs)?
    } else {
        Opened::open(&[])?
    };
    let cannot_read =
        |e: io::Error| CliError::new(Exit::Input, format!("cannot read the input: {e}"));
    let (mut watch, waker) = Watch::new().map_err(cannot_read)?;
    let delimiter = if args.null {
        Delimiter::Nul
    } else {
        Delimiter::Newline
    };
    let mut input = Input::new(&args.messages, opened, delimiter, args.long_lines, waker)
        .map_err(cannot_read)?;
    if let Some(origin) = input.first_too_long() {
        return Err(CliError::new(
            Exit::TooLong,
            format!(
                "{} is longer than {MAX_PAYLOAD} bytes, the most a message can carry; nothing was sent",
                input.describe(origin)
            ),
        ));
    }
    let unit = match (args.messages.is_empty(), args.null) {
        (false, _) => Unit::Messages,
        (true, true) => Unit::Records,
        (true, false) => Unit::Lines,
    };
    let tally = Tally::new(unit, args.quiet);
    let mut progress = Progress::new(args.progress);
    let bar = progress.handle();
    on_signal(Arc::clone(&tally), move || {
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
    })
    .map_err(|e| CliError::new(Exit::Input, format!("cannot watch for signals: {e}")))?;

    let options = Options {
        connect_timeout: args.timeout.0,
        io_timeout: args.timeout.0,
        window: args.window,
        tls: args.tls.connector(&settings.host)?,
    };
    let server = (settings.host.clone(), settings.port);
    let delivery = Delivery::new(
        server,
        credentials,
        options,
        RetryPolicy::attempts(args.retry),
    );
    let mut outbox = Outbox::new(delivery, args.window, tally);
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
                    "all {} acknowledged after {}; {duplicates}",
                    plural(stats.acknowledged, "message"),
                    retries(stats.retries)
                ));
            }
            outbox.tally.print_completed();
            Ok(())
        }
        Err(stop) => Err(explain_stop(settings, &outbox, &mut input, stop)),
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
            Ok(Some(message)) => {
                if message.truncated {
                    outbox.tally.add_truncated();
                }
                outbox
                    .send(message.origin, message.bytes)
                    .map_err(EarlyStop::Delivery)?;
                outbox.show(progress);
                continue;
            }
            Ok(None) => return outbox.finish().map_err(EarlyStop::Delivery),
            Err(InputError::TooLong(origin)) => {
                outbox.tally.add_read(1);
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
fn explain_stop(
    settings: &Settings,
    outbox: &Outbox,
    input: &mut Input,
    stop: EarlyStop,
) -> CliError {
    let acknowledged = outbox.delivery.stats().acknowledged;
    let (unread, exact) = match input.count_remaining() {
        Remaining::Exactly(n) => (n, true),
        Remaining::AtLeast(n) => (n, false),
    };
    let missing = outbox.delivery.stats().unacknowledged() + outbox.unsent + unread;
    let count = if exact {
        format!(
            "{missing} of {} not acknowledged",
            plural(acknowledged + missing, "message")
        )
    } else {
        format!(
            "at least {} not acknowledged ({acknowledged} acknowledged; the rest of {} was not counted)",
            plural(missing, "message"),
            input.noun()
        )
    };
    match stop {
        EarlyStop::TooLong(origin) => CliError::new(
            Exit::TooLong,
            format!(
                "{} is longer than {MAX_PAYLOAD} bytes, the most a message can carry; \
                 nothing from it on was sent: {count} (--long-lines truncate or split would send it)",
                input.describe(origin)
            ),
        ),
        EarlyStop::Input(e) => CliError::new(
            Exit::Input,
            format!(
                "reading {} failed: {e}; {} before the failure acknowledged",
                input.noun(),
                plural(acknowledged, "message")
            ),
        ),
        EarlyStop::Delivery(error) => {
            let first = outbox.first_unacknowledged().map(|origin| input.describe(origin));
            let mut reported = explain(settings, &error, first.as_deref());
            let retries_used = outbox.delivery.stats().retries;
            if retries_used > 0 {
                reported
                    .message
                    .push_str(&format!(" (after {})", retries(retries_used)));
            }
            match first {
                Some(origin) => reported.message.push_str(&format!("; {count}, the first from {origin}")),
                None if acknowledged == 0 && missing > 0 => {
                    reported.message.push_str(&format!("; nothing was sent: {count}"))
                }
                None if acknowledged == 0 => {}
                None => {
                    let were = if acknowledged == 1 { "was" } else { "were" };
                    reported.message.push_str(&format!(
                        "; all {} sent {were} acknowledged",
                        plural(acknowledged, "message")
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
    tally: Arc<Tally>,
}

impl Outbox {
    fn new(delivery: Delivery, window: usize, tally: Arc<Tally>) -> Self {
        Outbox {
            delivery,
            origins: VecDeque::with_capacity(window + 1),
            unsent: 0,
            tally,
        }
    }

    /// Queue one message: it goes out with the others that are ready, in
    /// as few writes as the window allows.
    fn send(&mut self, origin: Origin, message: &[u8]) -> Result<(), Error> {
        self.tally.add_read(1);
        let queued = self.delivery.stats().submitted;
        let sent = self.delivery.queue(message);
        if self.delivery.stats().submitted > queued {
            self.origins.push_back(origin);
        } else {
            self.unsent += 1;
        }
        self.forget_acknowledged(&sent);
        sent
    }

    /// No complete line is buffered: write what is queued and look at the
    /// connection, then wait for more input, the connection, or the
    /// `--timeout` of what is in flight.
    fn await_input(&mut self, watch: &mut Watch) -> Result<(), EarlyStop> {
        let polled = self.delivery.poll();
        self.forget_acknowledged(&polled);
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
        let finished = self.delivery.finish().map(|_| ());
        self.forget_acknowledged(&finished);
        finished
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

    /// Drop the origins of the messages acknowledged since the last look,
    /// and bring the tally up to date (a rejected message after `result`).
    fn forget_acknowledged(&mut self, result: &Result<(), Error>) {
        let stats = self.delivery.stats();
        let left = stats.unacknowledged();
        while self.origins.len() as u64 > left {
            self.origins.pop_front();
        }
        self.tally.set_delivery(stats.submitted, stats.acknowledged);
        if let Err(Error::Rejected {
            stage: Stage::Message(_),
        }) = result
        {
            self.tally.set_rejected(1);
        }
    }
}

/// The password: `--password-file` (without a trailing line ending), else `$MSGLOG_PASSWORD`.
fn password(args: &crate::args::Args) -> Result<Vec<u8>, CliError> {
    let password = match &args.password_file {
        Some(path) => read_password_file(path)?,
        None => match env::var_os("MSGLOG_PASSWORD") {
            Some(value) => value.into_encoded_bytes(),
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
    msglog_std::read_password_file(path).map_err(|e| {
        CliError::new(
            Exit::Password,
            format!("cannot read password file '{}': {e}", path.display()),
        )
    })
}
