//! `msglog-server`, the library: msglog's std server, framed mode on mio
//! event loops and raw stream mode. The `msglog-server` binary is a thin
//! command line around it; see its `--help` and the repository's README.
//!
//! ```no_run
//! use std::time::Duration;
//! use msglog_server::{Auth, Config, Timeouts};
//!
//! let config = Config {
//!     port: 0,
//!     dir: "/srv/msglog".into(),
//!     auth: Auth::Users("/srv/msglog/users".into()),
//!     timeouts: Timeouts { frame: Duration::from_secs(5), ..Timeouts::default() },
//!     ..Config::default()
//! };
//! // Serves until SIGINT or SIGTERM (Ctrl-C, Ctrl-Break or the console
//! // closing on Windows).
//! msglog_server::run(config)?;
//! # Ok::<(), msglog_server::ServerError>(())
//! ```
//!
//! The API: [`run`] with a [`Config`] (framed mode), [`run_raw`] with a
//! [`RawConfig`], their typed [`ServerError`], [`check`] and [`check_raw`]
//! (a configuration checked as a start would check it), [`NewUser`] for
//! users-file lines and [`UsersFile`] to edit a users file. With the `nats`
//! feature (on with the default `cli` feature), [`Sink::Nats`] commits
//! records to a NATS JetStream stream and [`nats::export`] reads one back
//! as `messages.log`. What the server tells its operator goes through the [`log`]
//! facade (targets `msglog_server::*`): `Error` and `Warn` lines always
//! matter, `Info` is the start-up line and the summary, `Debug` statistics
//! and `Trace` details. Everything else is internal.
//!
//! # Modules
//!
//! Which module owns what, and which modules it uses. No module uses one
//! that uses it (none uses the crate root either), so each can be read,
//! and tested, after those it uses.
//!
//! | module | owns | uses |
//! |---|---|---|
//! | `config` | the public [`Config`], [`RawConfig`], [`Timeouts`], [`Auth`], [`Tls`], [`Sink`] | - |
//! | `error` | the public [`ServerError`] | `activation`, `dir_lock`, `listen`, `log_file`, `nats`, `pid_file`, `tls`, `users` (their errors) |
//! | `server` | start-up, the accepting threads' listeners (plaintext, TLS), signals, SIGHUP, the graceful stop and the summary | `activation`, `auth`, `backoff`, `config`, `dir_lock`, `error`, `event_loop`, `journal`, `listen`, `mailbox`, `metrics`, `nats`, `pid_file`, `platform`, `rate_limit`, `services`, `timestamp`, `tls`, `transaction_log`, `users`, `verify_queue` |
//! | `check` | [`check`]: a configuration checked without serving or writing | `config`, `dir_lock`, `error`, `listen`, `log_file`, `nats`, `pid_file`, `tls`, `users` |
//! | `activation`, `notify`, `pid_file` | a socket passed by systemd; the notify protocol (Unix only); `--pid-file` | `listen`, `platform` |
//! | `platform` | everything that differs between Unix and Windows: stop and reload requests (signals; console events and a named event), the notifier (a no-op on Windows), file modes, positioned reads, socket options, error codes | `notify` (Unix) |
//! | `metrics` | `--metrics`: the HTTP endpoint and the Prometheus exposition | `auth`, `iteration`, `journal`, `latency`, `listen`, `services`, `verify_queue` |
//! | `latency` | each event loop's histogram of a message's last byte to its status | - |
//! | `event_loop` | one event-loop thread: readiness, reads and writes (through `tls` on a TLS listener), timers, mail | `auth`, `capacity`, `commit`, `connection`, `iteration`, `latency`, `mailbox`, `nats`, `rate_limit`, `services`, `slab`, `timers`, `timestamp`, `tls` |
//! | `connection` | one connection without its socket: bytes and verdicts in; status bytes, log entries and records out; its one deadline (the TLS handshake's, the session's frame and idle timeouts, the back-off, the linger) | `capacity`, `config`, `instant`, `iteration`, `mailbox`, `tls`, `transaction_log` |
//! | `iteration` | what one iteration produces before its commit, and its counts (the metrics' labels) | - |
//! | `commit` | an iteration's records and lines written together, and the take-back of its 0x00s when that fails | `connection`, `iteration`, `journal`, `rate_limit`, `slab`, `transaction_log` |
//! | `capacity` | the session type, from which every size derives | `instant` |
//! | `instant` | std's `Instant` as the sessions' instant type, converted in one place | - |
//! | `services` | what all threads share: journal, policy, back-off, timeouts, counters, latency histograms | `auth`, `backoff`, `config`, `iteration`, `journal`, `latency` |
//! | `auth` | the password policy and the verifier pool; checking a connection's password | `backoff`, `connection`, `mailbox`, `users`, `verify_queue` |
//! | `verify_queue`, `backoff` | the pool's bounded fair queue; slowing down failed addresses | - |
//! | `users` | the users file (Argon2 and bcrypt lines), checks of even cost, [`NewUser`] | `capacity` |
//! | `users_file` | [`UsersFile`]: editing a users file, rewritten atomically | `users` |
//! | `journal` | both logs as one: commits, group commit, reopening | `log_file`, `rate_limit` |
//! | `log_file` | what both logs do with their files: append, take back, move a torn tail aside | `timestamp` |
//! | `transaction_log`, `text`, `timestamp` | the audit line format and its pieces | `text` |
//! | `mailbox`, `timers`, `slab` | an event loop's inbox, its deadlines, its connection table | `nats::outcome` (what the publisher mails), `tls` (a new connection's state) |
//! | `listen`, `dir_lock`, `rate_limit` | the listening socket; one server per log directory; rate-limited errors | `platform` |
//! | `raw` | raw stream mode | `error`, `listen`, `tls` |
//! | `tls` | the TLS files ([`TlsError`]) and one connection's TLS state, over rustls | `config` |
//! | `nats` (feature `nats`) | the NATS JetStream sink and `export`; its own table is in its documentation (its `outcome` is a leaf) | `commit`, `connection`, `iteration`, `journal`, `mailbox`, `rate_limit`, `services`, `slab`, `timestamp` |
//! | `operator_log` | the macros of the operator's lines (used everywhere) | - |
#![warn(missing_docs, unreachable_pub)]

#[macro_use]
mod operator_log;

mod activation;
mod auth;
mod backoff;
mod capacity;
mod check;
mod commit;
mod config;
mod connection;
mod dir_lock;
mod error;
mod event_loop;
mod instant;
mod iteration;
mod journal;
mod latency;
mod listen;
mod log_file;
mod mailbox;
mod metrics;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(unix)]
mod notify;
mod pid_file;
mod platform;
mod rate_limit;
mod raw;
mod server;
mod services;
mod slab;
mod text;
mod timers;
mod timestamp;
mod tls;
mod transaction_log;
mod users;
mod users_file;
mod verify_queue;

pub use activation::ActivationError;
pub use check::{check, check_raw, CheckReport};
pub use config::{Auth, Config, RawConfig, Sink, Timeouts, Tls};
pub use dir_lock::LockError;
pub use error::ServerError;
pub use listen::BindError;
pub use log_file::LogOpenError;
pub use pid_file::PidFileError;
pub use tls::TlsError;
pub use users::{HashCost, LineProblem, NameError, NewUser, NewUserError, UsersError};
pub use users_file::{UserChange, UsersFile, UsersFileError};

/// Serve framed clients until SIGINT or SIGTERM (on Windows: Ctrl-C,
/// Ctrl-Break or the console closing; see the README's "The
/// server"): `Ok` after a clean stop. SIGHUP ([`request_reload`] where
/// there is none) reopens the logs and re-reads the users file. Raises the descriptor limit to the hard limit and
/// ignores SIGXFSZ for the whole process.
pub fn run(config: Config) -> Result<(), ServerError> {
    server::run(config)
}

/// Ask the framed server logging to `dir` to reload, as SIGHUP does:
/// SIGHUP to the process holding the directory's lock on Unix; on Windows,
/// which has no SIGHUP, the named event the server waits on
/// (`Global\msglog-reload-<hash of the directory>`, or `Local\` where the
/// server may not create a global one). `NotFound` if no server is there.
pub fn request_reload(dir: &std::path::Path) -> std::io::Result<()> {
    let holder = if cfg!(unix) {
        dir_lock::holder_of(dir)?
    } else {
        None
    };
    platform::request_reload(dir, holder)
}

/// Serve raw clients, one after another, to stdout until SIGINT or SIGTERM
/// (on Windows: Ctrl-C, Ctrl-Break or the console closing).
pub fn run_raw(config: RawConfig) -> Result<(), ServerError> {
    raw::run(
        config.bind,
        config.port,
        config.tls.as_ref(),
        raw::Limits {
            min_rate: config.min_rate,
            window: config.rate_window,
            max_session: config.max_session,
            idle_timeout: config.idle_timeout,
        },
    )
}
