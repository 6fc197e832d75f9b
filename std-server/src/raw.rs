//! Raw stream mode: the classic sockets exercise's server. Clients are served
//! one after another; each one's bytes go to stdout exactly, through the
//! core's `stream_copy` and one fixed 1 MiB buffer.
//!
//! Blocking I/O on purpose: there is one client at a time. A signal thread
//! makes SIGINT/SIGTERM end the blocking calls (by shutting the listener and
//! the current client's socket down), so the loop can stop cleanly.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use msglog_core::{embedded_io, stream_copy, CopyError};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socket2::Socket;

use crate::error::ServerError;
use crate::listen::{canonical_peer, listen};

/// Copy buffer: large reads and writes are what make raw mode fast.
const BUFFER: usize = 1024 * 1024;
/// The exercise asks for at least 10.
const BACKLOG: i32 = 128;

/// What the signal thread needs to interrupt blocking calls.
#[derive(Default)]
struct Stop {
    requested: AtomicBool,
    listener: Mutex<Option<Socket>>,
    client: Mutex<Option<TcpStream>>,
}

impl Stop {
    fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        if let Some(listener) = &*self.listener.lock().unwrap_or_else(PoisonError::into_inner) {
            // Wakes a blocked accept() (EINVAL on Linux).
            let _ = listener.shutdown(Shutdown::Both);
        }
        if let Some(client) = &*self.client.lock().unwrap_or_else(PoisonError::into_inner) {
            // Makes a blocked read() return end of stream.
            let _ = client.shutdown(Shutdown::Both);
        }
    }

    fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    fn set_client(&self, client: Option<TcpStream>) {
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = client;
    }
}

/// Serve raw clients until SIGINT/SIGTERM.
pub(crate) fn run(
    bind: Option<IpAddr>,
    port: u16,
    idle_timeout: Duration,
) -> Result<(), ServerError> {
    let listening = listen(bind, port, BACKLOG)?;
    let stop = Arc::new(Stop::default());
    let listener_clone = listening
        .listener
        .try_clone()
        .map_err(|e| ServerError::io("cannot duplicate the listener", e))?;
    *stop.listener.lock().unwrap_or_else(PoisonError::into_inner) =
        Some(Socket::from(listener_clone));
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| ServerError::io("cannot install signal handlers", e))?;
    {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    stop.request();
                }
            })
            .map_err(|e| ServerError::io("cannot start the signal thread", e))?;
    }

    // Unbuffered: every chunk goes out with one write(2), nothing is held back.
    let stdout = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| ServerError::io("cannot use stdout", e))?;
    let mut output = Retrying(File::from(stdout));
    let mut buffer = vec![0u8; BUFFER];

    info!(
        "listening on {} mode=raw{} output=stdout",
        listening.addr,
        if listening.dual_stack {
            " (dual-stack)"
        } else {
            ""
        }
    );
    let mut clients = 0u64;
    let mut total = 0u64;
    while !stop.requested() {
        let (stream, peer) = match listening.listener.accept() {
            Ok(accepted) => accepted,
            Err(_) if stop.requested() => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                error!("cannot accept: {e}");
                // EMFILE and the like: do not spin.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let peer = canonical_peer(peer);
        if let Err(e) = stream.set_read_timeout(Some(idle_timeout)) {
            error!("client {peer}: cannot set a read timeout: {e}");
        }
        match stream.try_clone() {
            Ok(clone) => stop.set_client(Some(clone)),
            Err(e) => error!("client {peer}: cannot register for shutdown: {e}"),
        }
        if stop.requested() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let started = Instant::now();
        let mut input = Retrying(stream);
        let result = stream_copy(&mut input, &mut output, &mut buffer);
        stop.set_client(None);
        clients += 1;
        match result {
            Ok(bytes) => {
                total += bytes;
                verbose!(
                    "client {peer}: {bytes} bytes in {:.3} s",
                    started.elapsed().as_secs_f64()
                );
            }
            Err(CopyError::Read(e)) => {
                let e = e.0;
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut {
                    error!(
                        "client {peer}: no data for {:.1} s, dropped",
                        idle_timeout.as_secs_f64()
                    );
                } else {
                    error!("client {peer}: {e}");
                }
            }
            Err(CopyError::Write(e)) => return Err(ServerError::Stdout(e.0)),
            Err(CopyError::WriteZero) => {
                return Err(ServerError::Stdout(io::ErrorKind::WriteZero.into()))
            }
            Err(CopyError::EmptyBuffer) => {
                return Err(ServerError::io(
                    "raw copy",
                    io::Error::other("empty copy buffer"),
                ));
            }
        }
    }
    info!("stopped: {clients} clients, {total} bytes");
    Ok(())
}

/// A std reader/writer as an `embedded_io` one, retrying EINTR (a read
/// timeout makes the kernel return EINTR rather than restart).
struct Retrying<T>(T);

/// `std::io::Error` as an `embedded_io` error.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct IoError(io::Error);

impl embedded_io::Error for IoError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self.0.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => embedded_io::ErrorKind::TimedOut,
            io::ErrorKind::ConnectionReset => embedded_io::ErrorKind::ConnectionReset,
            io::ErrorKind::BrokenPipe => embedded_io::ErrorKind::BrokenPipe,
            _ => embedded_io::ErrorKind::Other,
        }
    }
}

impl<T> embedded_io::ErrorType for Retrying<T> {
    type Error = IoError;
}

impl<T: Read> embedded_io::Read for Retrying<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other.map_err(IoError),
            }
        }
    }
}

impl<T: Write> embedded_io::Write for Retrying<T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other.map_err(IoError),
            }
        }
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush().map_err(IoError)
    }
}
