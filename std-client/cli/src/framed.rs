//! Framed mode: messages over an authenticated, pipelined session, resent on
//! a new connection after a failure when `--retry` allows.
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
use std::thread;
use std::time::{Duration, Instant};

use msglog_client::{Connection, Credentials, Error, IdleState, Options};
use msglog_core::{valid_name, MAX_PAYLOAD};

use crate::args::Args;
use crate::exit::{say, Exit, Failure};
use crate::input::{Input, InputError, Origin, Remaining};
use crate::progress::Progress;
use crate::report::describe;
use crate::watch::Watch;

/// First pause before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A pause in the input at least this long makes the client check the
/// connection before the next send (see [`Delivery::refresh`]); a check
/// costs a system call or two, nothing next to such a pause.
const IDLE_CHECK: Duration = Duration::from_millis(1);

pub fn run(args: &Args, user: &str) -> Result<(), Failure> {
    if valid_name(user.as_bytes()).is_none() {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "invalid user name '{}': it must be non-empty, without brackets or control, invisible or bidi characters",
                user.escape_debug()
            ),
        ));
    }
    let credentials = Credentials::new(user, password(args)?);
    let cannot_read = |e: io::Error| Failure::new(Exit::Input, format!("cannot read stdin: {e}"));
    let (mut watch, waker) = Watch::new().map_err(cannot_read)?;
    let mut input = Input::new(&args.messages, waker).map_err(cannot_read)?;
    if let Some(origin) = input.first_too_long() {
        return Err(Failure::new(
            Exit::TooLong,
            format!("{origin} is longer than {MAX_PAYLOAD} bytes, the most a message can carry; nothing was sent"),
        ));
    }
    let mut delivery = Delivery::new(args, credentials);
    let mut progress = Progress::new(args.progress);
    let outcome = deliver(&mut delivery, &mut input, &mut watch, &mut progress);
    progress.finish();
    match outcome {
        Ok(()) => {
            if delivery.retries_used > 0 {
                let duplicates = match delivery.maybe_duplicates {
                    0 => "none was sent twice".to_owned(),
                    n => format!("up to {n} may have been logged twice (at-least-once delivery)"),
                };
                say(format!(
                    "all {} messages acknowledged after {}; {duplicates}",
                    delivery.acknowledged,
                    retries(delivery.retries_used)
                ));
            }
            Ok(())
        }
        Err(stop) => Err(report(args, &delivery, &mut input, stop)),
    }
}

fn retries(count: u32) -> String {
    match count {
        1 => "1 retry".to_owned(),
        n => format!("{n} retries"),
    }
}

/// Why delivery stopped early.
enum Stop {
    Delivery(Error),
    TooLong(Origin),
    Input(io::Error),
}

fn deliver(
    delivery: &mut Delivery<'_>,
    input: &mut Input,
    watch: &mut Watch,
    progress: &mut Progress,
) -> Result<(), Stop> {
    delivery.start().map_err(Stop::Delivery)?;
    loop {
        let stop = match input.next_message() {
            Err(InputError::Pending) => {
                delivery.await_input(watch)?;
                progress.update(
                    delivery.sent,
                    delivery.acknowledged,
                    delivery.bytes_acknowledged,
                );
                continue;
            }
            Ok(Some((origin, message))) => {
                delivery.push(origin, message).map_err(Stop::Delivery)?;
                progress.update(
                    delivery.sent,
                    delivery.acknowledged,
                    delivery.bytes_acknowledged,
                );
                continue;
            }
            Ok(None) => return delivery.finish().map_err(Stop::Delivery),
            Err(InputError::TooLong(origin)) => {
                delivery.unsent += 1;
                Stop::TooLong(origin)
            }
            Err(InputError::Read(e)) => Stop::Input(e),
        };
        // Deliver what came before the bad input, then report it.
        delivery.finish().map_err(Stop::Delivery)?;
        return Err(stop);
    }
}

/// The one-line report of a stop: what happened, and which messages were
/// not acknowledged.
fn report(args: &Args, delivery: &Delivery<'_>, input: &mut Input, stop: Stop) -> Failure {
    let acknowledged = delivery.acknowledged;
    let (unread, exact) = match input.count_remaining() {
        Remaining::Exactly(n) => (n, true),
        Remaining::AtLeast(n) => (n, false),
    };
    let missing = delivery.pending.len() as u64 + delivery.unsent + unread;
    let count = if exact {
        format!(
            "{missing} of {} messages not acknowledged",
            acknowledged + missing
        )
    } else {
        format!("at least {missing} messages not acknowledged ({acknowledged} acknowledged; the rest of stdin was not counted)")
    };
    match stop {
        Stop::TooLong(origin) => Failure::new(
            Exit::TooLong,
            format!(
                "{origin} is longer than {MAX_PAYLOAD} bytes, the most a message can carry; \
                 nothing from it on was sent: {count}"
            ),
        ),
        Stop::Input(e) => Failure::new(
            Exit::Input,
            format!("reading stdin failed: {e}; {acknowledged} messages before the failure were acknowledged"),
        ),
        Stop::Delivery(error) => {
            let first = delivery.pending.front().map(|pending| pending.origin);
            let mut failure = describe(args, &error, first);
            if delivery.retries_used > 0 {
                let retried = retries(delivery.retries_used);
                failure.message.push_str(&format!(" (after {retried})"));
            }
            match first {
                Some(origin) => failure.message.push_str(&format!("; {count}, the first from {origin}")),
                None if acknowledged == 0 && missing > 0 => {
                    failure.message.push_str(&format!("; nothing was sent: {count}"))
                }
                None if acknowledged == 0 => {}
                None => {
                    failure.message.push_str(&format!(
                        "; all {acknowledged} messages sent were acknowledged"
                    ));
                    if missing > 0 {
                        failure.message.push_str(&format!(", none after them: {count}"));
                    }
                }
            }
            failure
        }
    }
}

/// A message sent (or about to be) and not yet acknowledged.
struct Pending {
    origin: Origin,
    bytes: Vec<u8>,
}

/// The messages in flight, the connection carrying them, and the retry budget.
struct Delivery<'a> {
    args: &'a Args,
    credentials: Credentials,
    options: Options,
    /// `None` before the first connection and after the server's goodbye.
    connection: Option<Connection>,
    /// Counts the connections opened, so that a watch knows a new one.
    generation: u64,
    /// Unacknowledged messages, oldest first; kept to be resent after a failure.
    pending: VecDeque<Pending>,
    /// Buffers of acknowledged messages, reused for the next ones.
    spare: Vec<Vec<u8>>,
    /// Messages of the current connection already taken off `pending`.
    session_acknowledged: u64,
    retries_left: u32,
    retries_used: u32,
    /// Failed attempts since the last successful connection (sets the pause).
    failures_in_a_row: u32,
    /// Messages handed to the delivery.
    sent: u64,
    acknowledged: u64,
    bytes_acknowledged: u64,
    /// Messages read but not handed over (too long).
    unsent: u64,
    /// Messages resent after being sent, unacknowledged, on a failed connection.
    maybe_duplicates: u64,
    /// When the last submission returned: the input has paused since.
    last_submit: Instant,
    /// When the server last made progress on what is in flight (or the
    /// oldest of it was sent): `--timeout` counts from here while waiting.
    last_progress: Instant,
}

impl<'a> Delivery<'a> {
    fn new(args: &'a Args, credentials: Credentials) -> Self {
        let now = Instant::now();
        Delivery {
            args,
            credentials,
            options: Options {
                connect_timeout: args.timeout.0,
                io_timeout: args.timeout.0,
                window: args.window,
            },
            connection: None,
            generation: 0,
            pending: VecDeque::with_capacity(args.window + 1),
            spare: Vec::new(),
            session_acknowledged: 0,
            retries_left: args.retry,
            retries_used: 0,
            failures_in_a_row: 0,
            sent: 0,
            acknowledged: 0,
            bytes_acknowledged: 0,
            unsent: 0,
            maybe_duplicates: 0,
            last_submit: now,
            last_progress: now,
        }
    }

    fn start(&mut self) -> Result<(), Error> {
        match self.reopen() {
            Ok(()) => Ok(()),
            Err(error) => self.recover(error),
        }
    }

    /// Submit one message (pipelined), on a new connection if the server
    /// said goodbye since the last one.
    fn push(&mut self, origin: Origin, message: &[u8]) -> Result<(), Error> {
        self.refresh()?;
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(message);
        self.pending.push_back(Pending { origin, bytes });
        self.sent += 1;
        let result = match (self.connection.as_mut(), self.pending.back()) {
            (Some(connection), Some(pending)) => {
                if connection.in_flight() == 0 {
                    self.last_progress = Instant::now();
                }
                connection.submit(&pending.bytes)
            }
            // Sends every pending message, this one included.
            _ => self.reopen(),
        };
        self.last_submit = Instant::now();
        self.collect_acknowledged();
        match result {
            Ok(()) => Ok(()),
            Err(error) => self.recover(error),
        }
    }

    /// Before sending after a pause in the input: what arrived meanwhile
    /// (see [`Delivery::check`]). Streaming input skips this.
    fn refresh(&mut self) -> Result<(), Error> {
        if self.last_submit.elapsed() < IDLE_CHECK {
            return Ok(());
        }
        self.check()
    }

    /// Without blocking: count the statuses that arrived, and act on how
    /// the connection stands. A failure with messages in flight, and a
    /// close without a word with none, lose the connection (recovered with
    /// `--retry`, at once); the server's goodbye with none in flight (an
    /// idle timeout, whose 0xFF must not be read as the next message's
    /// status) only drops it: the next message opens a new one. In flight
    /// for longer than `--timeout` without an answer is a timeout.
    fn check(&mut self) -> Result<(), Error> {
        let Some(connection) = self.connection.as_mut() else {
            return Ok(());
        };
        let polled = connection.poll();
        let state = match polled {
            Ok(()) => connection.idle_state(),
            Err(_) => IdleState::Open,
        };
        let in_flight = connection.in_flight();
        self.collect_acknowledged();
        if let Err(error) = polled {
            return self.recover(error);
        }
        match state {
            IdleState::Goodbye => {
                self.connection = None;
                Ok(())
            }
            IdleState::Gone(e) => self.recover(Error::Io(e)),
            _ if in_flight > 0 && self.status_overdue() => self.recover(Error::Timeout),
            _ => Ok(()),
        }
    }

    /// No complete line is buffered: check the connection, then wait for
    /// more input, the connection, or the `--timeout` of what is in flight.
    fn await_input(&mut self, watch: &mut Watch) -> Result<(), Stop> {
        self.check().map_err(Stop::Delivery)?;
        let timeout = match (&self.connection, self.options.io_timeout) {
            (Some(connection), Some(limit)) if connection.in_flight() > 0 => {
                Some(limit.saturating_sub(self.last_progress.elapsed()))
            }
            _ => None,
        };
        let socket = self.connection.as_ref().map(|c| (self.generation, c));
        watch.wait(socket, timeout).map_err(Stop::Input)
    }

    /// Whether what is in flight has waited longer than `--timeout`.
    fn status_overdue(&self) -> bool {
        self.options
            .io_timeout
            .is_some_and(|limit| self.last_progress.elapsed() >= limit)
    }

    /// Wait for every status, then CLOSE.
    fn finish(&mut self) -> Result<(), Error> {
        loop {
            let result = match self.connection.as_mut() {
                Some(connection) => connection.close(),
                None => Err(Error::SessionEnded),
            };
            self.collect_acknowledged();
            match result {
                Ok(()) => return Ok(()),
                // Every message is acknowledged; only the goodbye failed.
                Err(_) if self.pending.is_empty() => return Ok(()),
                Err(error) => self.recover(error)?,
            }
        }
    }

    /// Take the messages the connection acknowledged off `pending`.
    fn collect_acknowledged(&mut self) {
        let Some(connection) = &self.connection else {
            return;
        };
        let acknowledged = connection.messages_acknowledged();
        if self.session_acknowledged < acknowledged {
            self.last_progress = Instant::now();
        }
        while self.session_acknowledged < acknowledged {
            let Some(done) = self.pending.pop_front() else {
                break;
            };
            self.session_acknowledged += 1;
            self.acknowledged += 1;
            self.bytes_acknowledged += done.bytes.len() as u64;
            self.spare.push(done.bytes);
        }
    }

    /// After `error`, reconnect and resend `pending` while retries are left.
    fn recover(&mut self, mut error: Error) -> Result<(), Error> {
        loop {
            if let Some(failed) = self.connection.take() {
                // The server may have written these before the connection broke.
                self.maybe_duplicates += failed.messages_sent() - failed.messages_acknowledged();
            }
            if self.retries_left == 0 || !retryable(&error) {
                return Err(error);
            }
            self.retries_left -= 1;
            self.retries_used += 1;
            let pause = FIRST_BACKOFF
                .saturating_mul(1 << self.failures_in_a_row.min(6))
                .min(MAX_BACKOFF);
            self.failures_in_a_row += 1;
            thread::sleep(pause);
            match self.reopen() {
                Ok(()) => return Ok(()),
                Err(next) => error = next,
            }
        }
    }

    /// Connect, authenticate, and resend every unacknowledged message in order.
    fn reopen(&mut self) -> Result<(), Error> {
        let server = (self.args.host.as_str(), self.args.port);
        let mut connection = Connection::open(server, &self.credentials, &self.options)?;
        self.generation += 1;
        self.failures_in_a_row = 0;
        self.session_acknowledged = 0;
        self.last_progress = Instant::now();
        let resent = self
            .pending
            .iter()
            .try_for_each(|pending| connection.submit(&pending.bytes));
        self.connection = Some(connection);
        self.collect_acknowledged();
        resent
    }
}

/// Whether a new connection may succeed where this one failed. A server's
/// rejection is final; so is an address that does not resolve.
fn retryable(error: &Error) -> bool {
    matches!(
        error,
        Error::Connect { .. } | Error::Timeout | Error::Io(_) | Error::Disconnected { .. }
    )
}

/// The password: `--password-file` (without a trailing line ending), else `$MSGLOG_PASSWORD`.
fn password(args: &Args) -> Result<Vec<u8>, Failure> {
    let password = match &args.password_file {
        Some(path) => read_password_file(path)?,
        None => match env::var_os("MSGLOG_PASSWORD") {
            Some(value) => value.into_vec(),
            None => {
                return Err(Failure::new(
                    Exit::Password,
                    "no password: give --password-file FILE or set MSGLOG_PASSWORD",
                ))
            }
        },
    };
    if password.is_empty() {
        return Err(Failure::new(Exit::Password, "the password is empty"));
    }
    if password.len() > MAX_PAYLOAD {
        return Err(Failure::new(
            Exit::Password,
            format!("the password is longer than {MAX_PAYLOAD} bytes"),
        ));
    }
    Ok(password)
}

fn read_password_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let unreadable = |e: io::Error| {
        Failure::new(
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
