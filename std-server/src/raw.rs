//! Raw stream mode: the classic sockets exercise's server. Clients are served
//! one after another; each one's bytes go to stdout exactly, through the
//! core's `stream_copy` and one fixed 1 MiB buffer.
//!
//! There is no status byte in this mode, so the close carries the outcome:
//! a client's connection is closed cleanly (FIN) only after every byte it
//! sent has been written to stdout, and reset (RST) whenever that is not so:
//! stdout failed, a limit of [`pace`] dropped the client, or the server is
//! stopping mid-stream.
//!
//! With TLS (`--tls-cert`), the client ends its stream with close_notify;
//! the server confirms every byte with its own close_notify, then FIN, and
//! resets the connection whenever it does not (PROTOCOL.md, "Raw stream
//! mode"). A stream that ends in a TCP close without close_notify may have
//! been cut short by someone on the path: it is reset, not confirmed.
//!
//! One `mio::Poll` waits for the listener, the current client and a waker
//! the signal thread uses on SIGINT/SIGTERM; stdout is written with plain
//! blocking writes.

mod batching;
mod pace;

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use msglog_core::{stream_copy, CopyError};
use socket2::SockRef;

use self::batching::Batching;
pub(crate) use self::pace::Limits;
use self::pace::{Breach, Pace};
use crate::config::Tls;
use crate::error::ServerError;
use crate::listen::{canonical_peer, listen};
use crate::platform::{stdout_file, Notifier, OnRequest, Requests};
use crate::text::plural;
use crate::tls::{self, Staging, TlsFailure, TlsLink};

/// Copy buffer: large reads and writes are what make raw mode fast.
const BUFFER: usize = 1024 * 1024;
/// TLS: ciphertext read from the socket at once.
const STAGING: usize = 256 * 1024;
/// A client streaming in bulk wakes the server once per this many bytes
/// (see [`batching`]).
const BATCH: usize = 256 * 1024;
/// The exercise asks for at least 10.
const BACKLOG: i32 = 128;

const LISTENER: Token = Token(0);
const CLIENT: Token = Token(1);
const WAKER: Token = Token(2);

/// Serve raw clients until SIGINT/SIGTERM.
pub(crate) fn run(
    bind: Option<IpAddr>,
    port: u16,
    tls: Option<&Tls>,
    limits: Limits,
) -> Result<(), ServerError> {
    // Before any thread starts: the socket systemd passed, if any.
    let activated = crate::activation::take()?;
    let activation = activated.is_some();
    let notifier = Arc::new(Notifier::from_env());
    let tls_config = tls.map(tls::load).transpose()?;
    let listening = match activated {
        Some(listening) => listening,
        None => listen(bind, port, BACKLOG)?,
    };
    listening
        .listener
        .set_nonblocking(true)
        .map_err(|e| ServerError::io("cannot make the listener non-blocking", e))?;
    let mut listener = TcpListener::from_std(listening.listener);
    let mut poll = Poll::new().map_err(|e| ServerError::io("cannot create a poll", e))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| ServerError::io("cannot poll the listener", e))?;
    let waker = Waker::new(poll.registry(), WAKER)
        .map_err(|e| ServerError::io("cannot create a waker", e))?;
    let stop = Arc::new(Stop {
        requested: AtomicBool::new(false),
        waker,
    });
    let on_request: OnRequest = {
        let stop = Arc::clone(&stop);
        let notifier = Arc::clone(&notifier);
        Arc::new(move |_| {
            if !stop.requested() {
                notifier.stopping("stopping: the client being served is reset");
                stop.request();
            }
        })
    };
    // Stop requests only: raw mode has nothing to reload.
    let _requests = Requests::start(None, on_request)
        .map_err(|e| ServerError::io("cannot install signal handlers", e))?;

    // Unbuffered: every chunk goes out with one write(2), nothing is held back.
    let stdout = stdout_file().map_err(|e| ServerError::io("cannot use stdout", e))?;
    let mut output = Stdout(stdout);
    let mut buffer = vec![0u8; BUFFER];
    let mut events = Events::with_capacity(4);

    info!(
        "listening on {} mode=raw{}{} output=stdout",
        listening.addr,
        if listening.dual_stack {
            " (dual-stack)"
        } else {
            ""
        },
        format!(
            "{}{}",
            match tls {
                Some(Tls {
                    client_ca: Some(_), ..
                }) => " tls (client certificates required)",
                Some(_) => " tls",
                None => "",
            },
            if activation {
                " (socket activation)"
            } else {
                ""
            }
        )
    );
    notifier.ready(&format!(
        "serving raw clients on {} to stdout",
        listening.addr
    ));
    let mut clients = 0u64;
    let mut total = 0u64;
    while let Some((stream, peer)) = accept(&mut listener, &mut poll, &mut events, &stop) {
        clients += 1;
        let peer = canonical_peer(peer);
        let tls = match &tls_config {
            None => None,
            Some(config) => match TlsLink::new(Arc::clone(config)) {
                Ok(link) => Some(Box::new(link)),
                Err(e) => {
                    error!("client {peer}: cannot start TLS: {e}");
                    continue;
                }
            },
        };
        let mut client = Client {
            stream,
            staging: tls.as_ref().map(|_| Staging::new(STAGING)),
            batching: Batching::new(BATCH),
            tls,
            peer,
            started: Instant::now(),
        };
        let result = client.serve(
            &mut poll,
            &mut events,
            &stop,
            limits,
            &mut output,
            &mut buffer,
        );
        total += result.as_ref().map_or_else(CopyError::copied, |&n| n);
        client.end(&mut poll, result)?;
    }
    let summary = format!(
        "stopped: {}, {}",
        plural(clients, "client"),
        plural(total, "byte")
    );
    notifier.status(&summary);
    info!("{summary}");
    Ok(())
}

/// What the signal thread shares with the loop.
struct Stop {
    requested: AtomicBool,
    waker: Waker,
}

impl Stop {
    fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            error!("cannot wake the server to stop: {e}");
        }
    }

    fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

/// The next client, or `None` once a stop is requested.
fn accept(
    listener: &mut TcpListener,
    poll: &mut Poll,
    events: &mut Events,
    stop: &Stop,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        if stop.requested() {
            return None;
        }
        match listener.accept() {
            Ok(accepted) => return Some(accepted),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait(poll, events, None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                error!("cannot accept: {e}");
                // EMFILE and the like: do not spin.
                wait(poll, events, Some(Duration::from_millis(100)));
            }
        }
    }
}

/// Wait for any event (or the timeout). A failed wait is retried by the
/// caller's loop, after a pause so that it cannot spin.
fn wait(poll: &mut Poll, events: &mut Events, timeout: Option<Duration>) {
    match poll.poll(events, timeout) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => {
            error!("cannot wait for events: {e}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Why a client's stream ended before its end.
#[derive(Debug)]
enum Cut {
    /// Reading from the client failed (it reset the connection, ...).
    Io(io::Error),
    /// A limit was reached.
    Breach(Breach),
    /// The server is stopping.
    Stopping,
    /// TLS failed: a bad handshake or record, or a close without
    /// close_notify (the stream may have been cut short).
    Tls(String),
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::Io(e) => write!(f, "{e}"),
            Cut::Breach(breach) => write!(f, "{breach}"),
            Cut::Stopping => f.write_str("the server is stopping"),
            Cut::Tls(text) => write!(f, "TLS: {text}"),
        }
    }
}

impl std::error::Error for Cut {}

impl embedded_io::Error for Cut {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            Cut::Io(e) => embedded_io::Error::kind(e),
            Cut::Breach(_) => embedded_io::ErrorKind::TimedOut,
            Cut::Stopping => embedded_io::ErrorKind::Interrupted,
            Cut::Tls(_) => embedded_io::ErrorKind::InvalidData,
        }
    }
}

/// The client being served.
struct Client {
    stream: TcpStream,
    /// On a TLS listener.
    tls: Option<Box<TlsLink>>,
    /// TLS: ciphertext read ahead of rustls.
    staging: Option<Staging>,
    /// Fewer wake-ups while the client streams in bulk.
    batching: Batching,
    peer: SocketAddr,
    started: Instant,
}

type Outcome = Result<u64, CopyError<Cut, io::Error>>;

impl Client {
    /// Copy the client's stream to stdout until its end or a cut.
    fn serve(
        &mut self,
        poll: &mut Poll,
        events: &mut Events,
        stop: &Stop,
        limits: Limits,
        output: &mut Stdout,
        buffer: &mut [u8],
    ) -> Outcome {
        let interest = match self.tls {
            // The handshake writes too.
            Some(_) => Interest::READABLE | Interest::WRITABLE,
            None => Interest::READABLE,
        };
        if let Err(e) = poll.registry().register(&mut self.stream, CLIENT, interest) {
            return Err(CopyError::Read {
                error: Cut::Io(e),
                copied: 0,
            });
        }
        let mut reader = Reader {
            client: self,
            poll,
            events,
            stop,
            pace: Pace::new(limits),
        };
        let copied = stream_copy(&mut reader, output, buffer);
        match copied {
            // TLS: the server's close_notify confirms, before its FIN.
            Ok(bytes) if reader.client.tls.is_some() => match reader.close_notify() {
                Ok(()) => Ok(bytes),
                Err(error) => Err(CopyError::Read {
                    error,
                    copied: bytes,
                }),
            },
            other => other,
        }
    }

    /// Close the connection cleanly if every byte was written, else reset
    /// it; report the outcome. A failure of stdout ends the server.
    fn end(mut self, poll: &mut Poll, outcome: Outcome) -> Result<(), ServerError> {
        let _ = poll.registry().deregister(&mut self.stream);
        let peer = self.peer;
        let seconds = self.started.elapsed().as_secs_f64();
        match outcome {
            Ok(bytes) => {
                // Dropping the stream closes it: the FIN confirms every byte.
                verbose!("client {peer}: {bytes} bytes in {seconds:.3} s");
                Ok(())
            }
            Err(CopyError::Read { error, copied }) => {
                self.reset();
                match error {
                    Cut::Stopping => {
                        info!(
                            "client {peer}: reset, the server is stopping ({copied} bytes written)"
                        )
                    }
                    other => {
                        error!("client {peer}: {other}; reset ({copied} bytes written)")
                    }
                }
                Ok(())
            }
            Err(CopyError::Write { error, copied }) => {
                self.reset();
                error!("client {peer}: reset, stdout failed ({copied} bytes written)");
                Err(ServerError::Stdout(error))
            }
            Err(CopyError::WriteZero { copied }) => {
                self.reset();
                error!("client {peer}: reset, stdout failed ({copied} bytes written)");
                Err(ServerError::Stdout(io::ErrorKind::WriteZero.into()))
            }
            Err(_) => {
                self.reset();
                Err(ServerError::io(
                    "raw copy",
                    io::Error::other("empty copy buffer"),
                ))
            }
        }
    }

    /// Close with a reset (linger 0): the client learns that not every
    /// byte it sent was taken.
    fn reset(self) {
        if let Err(e) = SockRef::from(&self.stream).set_linger(Some(Duration::ZERO)) {
            error!("client {}: cannot reset the connection: {e}", self.peer);
        }
    }
}

/// The client's socket as the copy's reader: waits for it (and for a stop)
/// in the poll, applying the limits.
struct Reader<'a> {
    client: &'a mut Client,
    poll: &'a mut Poll,
    events: &'a mut Events,
    stop: &'a Stop,
    pace: Pace,
}

impl embedded_io::ErrorType for Reader<'_> {
    type Error = Cut;
}

impl Reader<'_> {
    /// One read from the client: its socket, or its TLS (decrypting as
    /// much as has arrived and `buf` holds, and writing what the handshake
    /// needs written).
    fn read_once(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Client {
            stream,
            tls,
            staging,
            peer,
            ..
        } = &mut *self.client;
        let (Some(tls), Some(staging)) = (tls, staging) else {
            return stream.read(buf);
        };
        if let (_, Some(e)) = tls.flush(stream, &[]) {
            return Err(e);
        }
        let read = tls.read_staged(stream, buf, staging);
        if let Some(established) = tls.take_established() {
            match established.subject {
                Some(subject) => verbose!(
                    "client {peer}: TLS {} established, client certificate {subject}",
                    established.version
                ),
                None => verbose!("client {peer}: TLS {} established", established.version),
            }
        }
        if let Err(e) = &read {
            if e.kind() == io::ErrorKind::WouldBlock {
                // The handshake may have more to say.
                if let (_, Some(e)) = tls.flush(stream, &[]) {
                    return Err(e);
                }
            }
        }
        read
    }

    /// Send close_notify after the whole stream was written, waiting (as
    /// for the stream, within the limits) until the socket took it.
    fn close_notify(&mut self) -> Result<(), Cut> {
        let Client { stream, tls, .. } = &mut *self.client;
        let Some(tls) = tls else {
            return Ok(());
        };
        tls.close_notify(stream);
        loop {
            let Client { stream, tls, .. } = &mut *self.client;
            let Some(tls) = tls else {
                return Ok(());
            };
            if let (_, Some(e)) = tls.flush(stream, &[]) {
                return Err(Cut::Io(e));
            }
            if tls.is_flushed() {
                return Ok(());
            }
            if self.stop.requested() {
                return Err(Cut::Stopping);
            }
            let waiting = Instant::now();
            wait(self.poll, self.events, Some(self.pace.next_check()));
            self.pace.waited(waiting.elapsed()).map_err(Cut::Breach)?;
        }
    }
}

impl embedded_io::Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Cut> {
        loop {
            if self.stop.requested() {
                return Err(Cut::Stopping);
            }
            self.pace
                .served_for(self.client.started.elapsed())
                .map_err(Cut::Breach)?;
            match self.read_once(buf) {
                Ok(n) => {
                    self.pace.received(n);
                    if self.client.batching.read(&self.client.stream, n) {
                        verbose!(
                            "client {}: streaming in bulk, woken per {BATCH} bytes",
                            self.client.peer
                        );
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && self.client.tls.is_some() => {
                    return Err(Cut::Tls(
                        "the client closed the connection without close_notify: its stream may have been cut short"
                            .into(),
                    ))
                }
                Err(e) if TlsFailure::is(&e) => return Err(Cut::Tls(e.to_string())),
                Err(e) => return Err(Cut::Io(e)),
            }
            let waiting = Instant::now();
            let limit = self.client.batching.wait_limit(self.pace.next_check());
            wait(self.poll, self.events, Some(limit));
            if self.events.is_empty() && self.client.batching.paused(&self.client.stream) {
                verbose!("client {}: paused, woken per byte again", self.client.peer);
                // Bytes may wait below the mark: they are read before this
                // wait (at most batching::LATENCY, once per bulk read) could
                // count against the client's pace.
                continue;
            }
            self.pace.waited(waiting.elapsed()).map_err(Cut::Breach)?;
        }
    }
}

/// Standard output, unbuffered, retrying EINTR.
struct Stdout(File);

impl embedded_io::ErrorType for Stdout {
    type Error = io::Error;
}

impl embedded_io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
