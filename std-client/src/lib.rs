//! The msglog client library: [`Connection`] for one framed session,
//! [`ConnectionTable`] for many servers, and [`send_raw`] for the raw stream
//! mode, all over `std::net`.
//!
//! The protocol itself (framing, status matching, the window, when an
//! answer is overdue) is the no_std core's
//! [`ClientSession`](msglog_core::ClientSession), driven by its blocking
//! [`Client`](msglog_core::Client), and
//! [`stream_copy`](msglog_core::stream_copy); this crate connects them to
//! TCP sockets with timeouts, gathers each transaction into one write (the
//! original server requires it), and turns their errors into [`Error`].
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
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connect;
mod connection;
mod credentials;
mod delivery;
mod error;
mod raw;
mod table;
mod transport;

pub use connect::{connect, Options};
pub use connection::{Connection, IdleState};
pub use credentials::Credentials;
pub use delivery::{Delivery, DeliveryStats, RetryPolicy};
pub use error::Error;
pub use raw::{send_raw, RAW_BUFFER};
pub use table::{ConnectionTable, Endpoint};

/// Re-exported from the core: which transaction an error is about.
pub use msglog_core::Stage;
