//! The server loop, async: [`serve`] and [`serve_with_timer`].

use embedded_io::{Error as _, ErrorKind};
use embedded_io_async::{Read, Write};

use super::timer::{read_until, NoTimer, Raced, Timer};
use super::write_all;
use crate::io::WriteError;
use crate::serve::{check_buffer, Replies, ServeError, Served, Serving};
use crate::session::{Authenticator, Reject, Session, Sink};

/// Serve one connection to its end: the async twin of [`crate::serve`],
/// with the same answers, results and errors (a read that fails with
/// `ErrorKind::TimedOut` ends the connection as [`Reject::Timeout`]).
///
/// `auth` and `sink` are called in line, as the blocking loop does; a
/// server whose verification or log is itself async drives the
/// [`Session`] directly ([`Action`](crate::Action)).
pub async fn serve<T, A, S, const NAME: usize, const PASSWORD: usize, const MESSAGE: usize>(
    io: &mut T,
    buffer: &mut [u8],
    session: &mut Session<NAME, PASSWORD, MESSAGE>,
    auth: &mut A,
    sink: &mut S,
) -> Result<Served, ServeError<T::Error>>
where
    T: Read + Write + ?Sized,
    A: Authenticator + ?Sized,
    S: Sink + ?Sized,
{
    serve_with_timer(io, buffer, session, auth, sink, &NoTimer).await
}

/// [`serve`], with the session's frame and idle timeouts on `timer`'s
/// clock: every read races [`Timer::sleep_until`] the session's
/// [`poll_timeout`](Session::poll_timeout), and a connection whose deadline
/// passes is answered 0xFF and ended as [`Reject::Timeout`]. The idle
/// timeout runs from [`Session::start`] if the caller called it, else from
/// here. The async twin of [`crate::serve_with_timer`].
pub async fn serve_with_timer<
    T,
    A,
    S,
    M,
    const NAME: usize,
    const PASSWORD: usize,
    const MESSAGE: usize,
>(
    io: &mut T,
    buffer: &mut [u8],
    session: &mut Session<NAME, PASSWORD, MESSAGE, M::Instant>,
    auth: &mut A,
    sink: &mut S,
    timer: &M,
) -> Result<Served, ServeError<T::Error>>
where
    T: Read + Write + ?Sized,
    A: Authenticator + ?Sized,
    S: Sink + ?Sized,
    M: Timer + ?Sized,
{
    check_buffer(session, buffer).map_err(|needed| ServeError::BufferTooSmall { needed })?;
    let mut serving = Serving::new();
    let mut replies = Replies::new();
    let mut now = timer.now();
    session.start(now);
    let mut filled = 0;
    loop {
        let mut start = 0;
        loop {
            let pending = buffer.get(start..filled).unwrap_or_default();
            let answered = serving.answer(session, pending, now, (auth, sink), &mut replies);
            start += answered.consumed;
            send(io, &mut replies).await.map_err(ServeError::Write)?;
            if answered.ended {
                return Ok(serving.served());
            }
            if answered.consumed == 0 {
                break;
            }
        }
        buffer.copy_within(start..filled, 0);
        filled -= start;
        let free = buffer.get_mut(filled..).unwrap_or_default();
        let room = free.len();
        let outcome = match read_until(io.read(free), timer, session.poll_timeout()).await {
            Raced::Read(Ok(0)) => {
                serving.eof(filled);
                return Ok(serving.served());
            }
            Raced::Read(Ok(n)) => {
                filled += n.min(room);
                now = timer.now();
                continue;
            }
            Raced::Deadline(at) => match session.handle_timeout(at) {
                Some(outcome) => outcome,
                None => continue,
            },
            Raced::Read(Err(e)) if e.kind() == ErrorKind::TimedOut => session.fail(Reject::Timeout),
            Raced::Read(Err(e)) => return Err(ServeError::Read(e)),
        };
        serving.time_out(outcome, &mut replies);
        // Best effort: the peer may be gone.
        let _ = send(io, &mut replies).await;
        return Ok(serving.served());
    }
}

/// Send the replies with one write, and flush.
async fn send<T: Write + ?Sized>(
    io: &mut T,
    replies: &mut Replies,
) -> Result<(), WriteError<T::Error>> {
    if !replies.pending().is_empty() {
        write_all(io, replies.pending()).await?;
        replies.sent();
        io.flush().await.map_err(WriteError::Io)?;
    }
    Ok(())
}
