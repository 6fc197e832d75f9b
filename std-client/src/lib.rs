//! The msglog client library, over `std::net`: [`Connection`] for one
//! framed session, [`Delivery`] for at-least-once delivery across lost
//! connections, [`ConnectionTable`] for many servers, and [`send_raw`] for
//! the raw stream mode.
//!
//! The protocol itself (framing, status matching, the window, when an
//! answer is overdue) is the no_std core's
//! [`ClientSession`](msglog_core::ClientSession) and
//! [`stream_copy`](msglog_core::stream_copy); this crate drives them over
//! a [`Transport`] (a TCP socket with timeouts, TLS, or the caller's own
//! stream), coalesces the frames that are ready into as few writes as the
//! window allows (never splitting a frame across two: the original server
//! requires it), reads statuses in bulk, and turns their errors into
//! [`Error`]. Its dependencies are the core, `msglog-std` (only its I/O
//! helpers), `embedded-io`, `socket2`, `libc` (on Unix) and `thiserror`, and with
//! the `tls` feature (on by default) `rustls` (ring provider) and
//! `rustls-native-certs`; the `msglog-client` and `msglog-bench` programs
//! are packages of their own.
//!
//! | module | owns |
//! |---|---|
//! | `connect` | resolving, and connecting as RFC 8305 (Happy Eyeballs) suggests, with timeouts: [`connect`], [`Options`] |
//! | `credentials` | [`Credentials`] |
//! | `connection` | one framed session: [`Connection`], [`IdleState`] |
//! | `pipeline` | the coalescing driver of the core's `ClientSession`: frames queued for one write, statuses read in bulk, reads bounded by the session's deadline (crate-private) |
//! | `delivery` | at-least-once delivery: [`Delivery`], [`RetryPolicy`], [`DeliveryStats`] |
//! | `table` | connections to many servers: [`ConnectionTable`], [`Endpoint`] |
//! | `raw` | the raw stream mode: [`send_raw`], [`RAW_BUFFER`] |
//! | `platform` | what differs between Unix and Windows: a peek that does not wait, the socket as `AsFd` or `AsSocket` (crate-private) |
//! | `transport` | [`Transport`], what a connection runs over (TCP, TLS, a caller's own stream), and what the drivers need of it: peeking, the receive timeout as the session's deadline |
//! | `tls` | TLS (feature `tls`, on by default): [`TlsConnector`], [`TlsStream`], [`TlsFailure`] |
//! | `error` | [`Error`]; [`Stage`] (from the core) names the transaction an error is about |
//!
//! One acknowledged session:
//!
//! ```no_run
//! use msglog_client::{Connection, Credentials, Options};
//!
//! let options = Options { window: 16, ..Options::default() };
//! let credentials = Credentials::new("alice", "secret");
//! let mut connection = Connection::open(("localhost", 5555), &credentials, &options)?;
//! connection.send_pipelined(["first", "second", "third"])?;
//! connection.close()?;
//! # Ok::<(), msglog_client::Error>(())
//! ```
//!
//! At-least-once delivery, reconnecting up to ten times (what
//! `msglog-client --retry 10` does; `examples/deliver.rs` is this as a
//! program):
//!
//! ```no_run
//! use msglog_client::{Credentials, Delivery, Options, RetryPolicy};
//!
//! let credentials = Credentials::new("alice", "secret");
//! let retry = RetryPolicy::attempts(10);
//! let mut delivery = Delivery::new("localhost:5555", credentials, Options::default(), retry);
//! for message in ["first", "second", "third"] {
//!     delivery.submit(message.as_bytes())?;
//! }
//! let stats = delivery.finish()?;
//! println!("{} acknowledged, up to {} logged twice", stats.acknowledged, stats.maybe_duplicates);
//! # Ok::<(), msglog_client::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connect;
mod connection;
mod credentials;
mod delivery;
mod error;
mod pipeline;
mod platform;
mod raw;
mod table;
#[cfg(feature = "tls")]
mod tls;
mod transport;

pub use connect::{connect, Options, ATTEMPT_DELAY};
pub use connection::{Connection, IdleState};
pub use credentials::Credentials;
pub use delivery::{Delivery, DeliveryStats, RetryPolicy};
pub use error::Error;
pub use raw::{send_raw, RAW_BUFFER};
pub use table::{ConnectionTable, Endpoint};
#[cfg(feature = "tls")]
pub use tls::{TlsConnector, TlsFailure, TlsFiles, TlsSetupError, TlsStream};
pub use transport::Transport;

/// Re-exported from the core: which transaction an error is about.
pub use msglog_core::Stage;
