//! The msglog protocol without `std`: codec, record escaping, both roles as
//! sans-I/O state machines, and blocking drivers for server, client and raw
//! stream mode, all over [`embedded_io`] traits with caller-supplied storage;
//! with the `async` feature, the same drivers over `embedded-io-async`
//! (`asynch`), on any executor.
//!
//! The wire format is specified in `PROTOCOL.md` at the repository root.
//!
//! # Where things are
//!
//! | concept | items | module |
//! |---|---|---|
//! | the wire's vocabulary | [`Tag`], [`Transaction`], [`Status`], [`MAX_FRAME`] | `wire` |
//! | decoding | [`decode`], [`Frames`], [`Limits`], [`FrameError`] | `decode` |
//! | encoding | [`Transaction::header`] ([`Header`]), [`Transaction::encode`] | `encode` |
//! | writing to `embedded_io` | [`Transaction::write_to`], [`WriteError`] | `io` |
//! | the server role, sans-I/O | [`Session`], [`Action`], [`Outcome`], [`Reject`] | `session` |
//! | the server role, blocking | [`serve`], [`serve_with_timer`] | `serve` |
//! | the client role, sans-I/O | [`ClientSession`], [`ClientEnd`], [`Stage`], [`SubmitError`] | `client_session` |
//! | the client role, blocking | [`Client`] | `client` |
//! | the blocking drivers' clock | [`Timer`], [`NoTimer`] | `timer` |
//! | time as an input of the sessions | [`Instant`] | `time` |
//! | records of `messages.log` | [`write_record`], [`RecordWriter`] | `record`, `sink` |
//! | raw stream mode | [`stream_copy`] | `stream` |
//! | authenticators | [`StaticUsers`], [`LegacyParity`], [`AcceptAny`] | `auth` |
//! | the async drivers (feature `async`) | `asynch::{serve, serve_with_timer, Client, stream_copy, Timer}` | `asynch` |
//!
//! Diagnostics go through `defmt` (feature `defmt`, for no_std targets)
//! or the `log` crate (feature `log`); without either they compile away.
//!
//! # Contract
//!
//! No function in this crate panics, allocates, or reads outside the slices
//! it is given, whatever the input bytes (the `fuzz/` targets check this).
//! Capacities are const generics of [`Session`]; a field longer than its
//! capacity is rejected, never truncated. Payloads are borrowed from the
//! caller's receive buffer, never copied.
//!
//! # Example
//!
//! A server session fed the original Python client's bytes, in one read:
//!
//! ```
//! use msglog_core::{serve, Ended, LegacyParity, RecordWriter, Session};
//!
//! // NAME "MyUser", PASSWORD "a" (odd first byte: the original server's rule),
//! // MESSAGE "hello", bare CLOSE.
//! let input: &[u8] = b"\x01\x06\x00MyUser\x02\x01\x00a\x03\x05\x00hello\x04";
//! let mut io = Duplex { input, output: [0; 8], sent: 0 };
//!
//! let mut log = [0u8; 64];
//! let mut sink = RecordWriter::new(&mut log[..]);
//! let mut session = Session::<32, 32, 256>::new();
//! let mut buffer = [0u8; Session::<32, 32, 256>::MAX_FRAME];
//!
//! let served = serve(&mut io, &mut buffer, &mut session, &mut LegacyParity, &mut sink).unwrap();
//! assert_eq!(served.ended, Ended::Closed);
//! assert_eq!(&io.output[..io.sent], &[0x00, 0x00, 0x00, 0x00]);
//! assert!(log.starts_with(b"[MyUser]: hello\r\n"));
//!
//! // An in-memory connection: reads come from `input`, writes go to `output`.
//! struct Duplex<'a> { input: &'a [u8], output: [u8; 8], sent: usize }
//! impl embedded_io::ErrorType for Duplex<'_> { type Error = embedded_io::ErrorKind; }
//! impl embedded_io::Read for Duplex<'_> {
//!     fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
//!         let n = buf.len().min(self.input.len());
//!         buf[..n].copy_from_slice(&self.input[..n]);
//!         self.input = &self.input[n..];
//!         Ok(n)
//!     }
//! }
//! impl embedded_io::Write for Duplex<'_> {
//!     fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
//!         let n = buf.len().min(self.output.len() - self.sent);
//!         self.output[self.sent..self.sent + n].copy_from_slice(&buf[..n]);
//!         self.sent += n;
//!         Ok(n)
//!     }
//!     fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

#[macro_use]
mod fmt;

#[cfg(feature = "async")]
pub mod asynch;
mod auth;
mod client;
mod client_session;
mod decode;
mod encode;
mod io;
mod record;
mod serve;
mod session;
mod sink;
mod stream;
mod time;
mod timer;
mod unicode;
mod wire;

pub use auth::{constant_time_eq, AcceptAny, LegacyParity, StaticUsers};
pub use client::{Client, ClientError};
pub use client_session::{ClientEnd, ClientSession, Stage, SubmitError};
pub use decode::{decode, peek_header, Announced, Decoded, FrameError, Frames, Limits};
pub use encode::{EncodeError, Header};
pub use io::WriteError;
pub use record::{escaped_len, max_record_len, record_len, write_escaped, write_record};
pub use serve::{serve, serve_with_timer, Ended, ServeError, Served};
pub use session::{valid_name, Action, Authenticator, Outcome, Reject, Session, Sink, State};
pub use sink::RecordWriter;
pub use stream::{stream_copy, CopyError};
pub use time::Instant;
pub use timer::{NoTimer, Timer};
pub use wire::{Status, Tag, Transaction, DEFAULT_PORT, HEADER_LEN, MAX_FRAME, MAX_PAYLOAD};

/// Re-exported so users name the same trait versions as this crate.
pub use embedded_io;
/// Re-exported so users name the same trait versions as this crate.
#[cfg(feature = "async")]
pub use embedded_io_async;
