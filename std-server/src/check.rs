//! `msglog-server check`: a configuration checked as the server would
//! check it at start-up, without serving and without opening anything for
//! writing. Each failure is the [`ServerError`] the server would return,
//! so the binary exits with the same code.
//!
//! Checked: the users file (parsed as a start-up parses it); the address
//! (one that is not on this host, or a privileged port without the
//! permission to bind it); `--metrics` likewise; the log directory (that
//! it is a directory this process may create files in, or can be
//! created); the logs (writable regular files, and where a torn last line
//! would go); `--pid-file`'s directory; the TLS certificate, key and client
//! CA (loaded as the server loads them) and `--tls-port`; the NATS sink's
//! server URLs and secret files (without connecting). Not failed on: a running server
//! holding the port or the directory (a restart stops it first; both are
//! reported).

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use crate::config::{Auth, Config, RawConfig, Sink, Tls};
use crate::dir_lock::LOCK_FILE;
use crate::error::ServerError;
use crate::listen::{unprivileged_port_start, BindError};
use crate::log_file::{after_last_newline, side_path, LogOpenError};
use crate::pid_file::PidFileError;
use crate::platform::{is_char_device, may_write, not_a_directory, readable_by_everyone};
use crate::users::parse_file;

/// What `check` found: what the server would do, and what it would warn
/// about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// One line per thing the server would do (`would listen on ...`).
    pub lines: Vec<String>,
    /// The warnings the server would print at start-up, and a few more.
    pub warnings: Vec<String>,
}

/// Check a framed server's configuration (see the module documentation).
pub fn check(config: &Config) -> Result<CheckReport, ServerError> {
    let mut report = CheckReport::default();
    let auth = match &config.auth {
        Auth::Users(path) => {
            let bytes = std::fs::read(path).map_err(|source| crate::UsersError::Read {
                path: path.clone(),
                source,
            })?;
            let users = parse_file(&bytes, path)?;
            if users.is_empty() {
                report.warnings.push(format!(
                    "the users file {} lists no users: every login would be refused",
                    path.display()
                ));
            }
            format!(
                "argon2/bcrypt ({} users in {})",
                users.len(),
                path.display()
            )
        }
        Auth::AcceptAny => {
            report.warnings.push(
                "no --users file: ANY name with ANY non-empty password would be accepted".into(),
            );
            "any-password".into()
        }
        Auth::LegacyParity => {
            report.warnings.push(
                "--auth legacy-parity: any password whose first byte is odd would be accepted (half of all passwords)".into(),
            );
            "legacy-parity".into()
        }
    };
    let listen = check_listen(config.bind, config.port, &mut report)?;
    check_tls(config.tls.as_ref(), config.bind, &listen, &mut report)?;
    let main_is_tls = config.tls.as_ref().is_some_and(|tls| tls.port.is_none());
    if !main_is_tls && !config.bind.is_some_and(|ip| ip.is_loopback()) {
        report.warnings.push(format!(
            "passwords and messages would cross the network in clear on {listen} (a plaintext \
             listener on a non-loopback address); see --tls-cert"
        ));
    }
    let dir = check_log_directory(&config.dir, &mut report)?;
    report.lines.push(format!(
        "would listen on {listen} mode=framed workers={} auth={auth} fsync={} max-connections={} \
         frame-timeout={:?} idle-timeout={:?} grace={:?}",
        config.workers.max(1),
        if config.fsync { "on" } else { "off" },
        config.max_connections,
        config.timeouts.frame,
        config.timeouts.idle,
        config.grace,
    ));
    check_sink(config, &dir, &mut report)?;
    if let Some(addr) = config.metrics {
        check_address(addr, &mut report).map_err(ServerError::Metrics)?;
        report
            .lines
            .push(format!("would serve metrics on http://{addr}/metrics"));
    }
    if let Some(path) = &config.pid_file {
        check_pid_file(path)?;
        report
            .lines
            .push(format!("would write its PID to {}", path.display()));
    }
    Ok(report)
}

/// Where the records would go. The NATS sink is checked without
/// connecting (the server starts, and answers 0xFF, while NATS cannot be
/// reached): the URLs and the secret files.
fn check_sink(config: &Config, dir: &Path, report: &mut CheckReport) -> Result<(), ServerError> {
    let messages = dir.join("messages.log");
    let transactions = dir.join("transactions.log");
    match &config.sink {
        Sink::File => report.lines.push(format!(
            "would write {} and {}",
            messages.display(),
            transactions.display()
        )),
        #[cfg(feature = "nats")]
        Sink::Nats(sink) => {
            crate::nats::check_offline(&sink.connection)?;
            report.lines.push(format!(
                "would publish records to NATS stream {} (subject {}{}) at {} as front end {}, \
                 answering 0x00 after JetStream's acknowledgement and 0xFF after {:?} without one",
                sink.stream,
                sink.subject,
                sink.create_replicas.map_or_else(String::new, |r| format!(
                    ", created with {r} replicas if missing"
                )),
                sink.connection.servers.join(","),
                sink.front_end,
                sink.ack_timeout,
            ));
            report.warnings.push(
                "check does not connect to NATS: whether it answers and the stream exists is known when the server starts"
                    .into(),
            );
            if sink.keep_messages_log {
                report.lines.push(format!(
                    "would write {} (a copy) and {}",
                    messages.display(),
                    transactions.display()
                ));
            } else {
                report
                    .lines
                    .push(format!("would write {}", transactions.display()));
            }
        }
    }
    Ok(())
}

/// Check a raw server's configuration: its address.
pub fn check_raw(config: &RawConfig) -> Result<CheckReport, ServerError> {
    let mut report = CheckReport::default();
    let listen = check_listen(config.bind, config.port, &mut report)?;
    check_tls(config.tls.as_ref(), config.bind, &listen, &mut report)?;
    report.lines.push(format!(
        "would listen on {listen} mode=raw output=stdout min-rate={} B/s over {:?}{}",
        config.min_rate,
        config.rate_window,
        config
            .max_session
            .map_or_else(String::new, |d| format!(" max-session={d:?}"))
    ));
    Ok(report)
}

/// Where the server would listen, checked as far as it can be without
/// taking the port.
fn check_listen(
    bind: Option<IpAddr>,
    port: u16,
    report: &mut CheckReport,
) -> Result<String, ServerError> {
    if std::env::var_os("LISTEN_FDS").is_some() {
        report.warnings.push(
            "LISTEN_FDS is set: a server started here would use the socket passed to it, not the address below"
                .into(),
        );
    }
    let ip = bind.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let addr = SocketAddr::new(ip, port);
    check_address(addr, report)?;
    Ok(match bind {
        Some(_) => addr.to_string(),
        None => format!("{addr} (dual-stack, or 0.0.0.0:{port} without IPv6)"),
    })
}

/// The address is on this host, and a privileged port may be bound by
/// this process. A port in use is reported, not failed on.
fn check_address(addr: SocketAddr, report: &mut CheckReport) -> Result<(), BindError> {
    let fail = |source| BindError { addr, source };
    // Port 0 tests the address without taking the port.
    if !addr.ip().is_unspecified() {
        TcpListener::bind(SocketAddr::new(addr.ip(), 0)).map_err(fail)?;
    }
    if addr.port() != 0 && addr.port() < unprivileged_port_start() && !may_bind_privileged() {
        return Err(fail(crate::platform::permission_denied()));
    }
    if addr.port() != 0 && TcpListener::bind(addr).is_err() {
        report.warnings.push(format!(
            "{addr} cannot be bound now (a server running there? a restart stops it first)"
        ));
    }
    Ok(())
}

use crate::platform::may_bind_privileged;

/// The TLS files, loaded as the server loads them at start-up, so that a
/// bad certificate, key or client CA fails `check` with the server's exit
/// code; and `--tls-port`'s address. Nothing to check without TLS.
fn check_tls(
    tls: Option<&Tls>,
    bind: Option<IpAddr>,
    listen: &str,
    report: &mut CheckReport,
) -> Result<(), ServerError> {
    let Some(tls) = tls else {
        return Ok(());
    };
    crate::tls::load(tls)?;
    let clients = match (&tls.client_ca, tls.require_cert_name) {
        (None, _) => String::new(),
        (Some(ca), false) => format!(", client certificates from {}", ca.display()),
        (Some(ca), true) => format!(", client certificates from {} proving NAME", ca.display()),
    };
    let on = match tls.port {
        Some(port) => format!(
            "on {} beside the plaintext port",
            check_listen(bind, port, report)?
        ),
        None => format!("only, on {listen}"),
    };
    report.lines.push(format!(
        "would speak TLS {on} with {} and {}{clients}",
        tls.cert.display(),
        tls.key.display()
    ));
    Ok(())
}

/// The log directory, absolute, after checking that the server could
/// create it or create and write its files there.
fn check_log_directory(dir: &Path, report: &mut CheckReport) -> Result<PathBuf, ServerError> {
    let fail = |source| ServerError::LogDirectory {
        path: dir.to_owned(),
        source,
    };
    if !dir.exists() {
        // The nearest existing ancestor must let us create the rest.
        let absolute = std::path::absolute(dir).map_err(fail)?;
        let mut ancestor = absolute.as_path();
        while !ancestor.exists() {
            ancestor = ancestor.parent().unwrap_or(Path::new("/"));
        }
        may_create_in(ancestor).map_err(fail)?;
        report.lines.push(format!(
            "would create the log directory {} (mode 0755 less the umask)",
            absolute.display()
        ));
        return Ok(absolute);
    }
    let dir = crate::platform::canonical_dir(dir).map_err(fail)?;
    if !dir.is_dir() {
        return Err(fail(not_a_directory()));
    }
    may_create_in(&dir).map_err(fail)?;
    for name in ["messages.log", "transactions.log"] {
        check_log(&dir.join(name), report)?;
    }
    let lock = dir.join(LOCK_FILE);
    if let Some(pid) = lock_holder(&lock) {
        report.warnings.push(format!(
            "{} is held by another process (PID {pid}): a server started now would exit 9; a restart stops it first",
            lock.display()
        ));
    }
    Ok(dir)
}

/// An existing log must be a regular file the server may append to; a torn
/// last line needs a side file that can take it.
fn check_log(path: &Path, report: &mut CheckReport) -> Result<(), ServerError> {
    let fail = |source| LogOpenError::Log {
        action: "cannot open",
        path: path.to_owned(),
        source,
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail(e).into()),
    };
    if !metadata.is_file() {
        return Err(fail(io::Error::other("not a regular file")).into());
    }
    may_write(path).map_err(fail)?;
    if let Some(mode) = readable_by_everyone(&metadata) {
        if path.ends_with("transactions.log") {
            report.warnings.push(format!(
                "{} is readable by everyone (mode {mode:04o}): it holds peer addresses, names and failed logins",
                path.display(),
            ));
        }
    }
    let file = File::open(path).map_err(fail)?;
    let keep = after_last_newline(&file, metadata.len()).map_err(fail)?;
    if keep < metadata.len() {
        let side = side_path(path);
        let side_ok = match std::fs::metadata(&side) {
            Ok(m) if m.is_file() || is_char_device(&m) => may_write(&side),
            Ok(_) => Err(io::Error::other("not a regular file")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        side_ok.map_err(|source| LogOpenError::SideFile {
            log: path.to_owned(),
            side: side.clone(),
            offset: keep,
            len: metadata.len() - keep,
            source,
        })?;
        report.lines.push(format!(
            "would move the {} bytes after the last newline of {} to {} (a record torn by a crash?)",
            metadata.len() - keep,
            path.display(),
            side.display()
        ));
    }
    Ok(())
}

/// `--pid-file`'s directory lets us create the file.
fn check_pid_file(path: &Path) -> Result<(), PidFileError> {
    let fail = |source| PidFileError {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if path.file_name().is_none() {
        return Err(fail(io::Error::other("not a file name")));
    }
    may_create_in(dir).map_err(fail)
}

/// Files can be created in `dir` by this process (by its effective ids).
fn may_create_in(dir: &Path) -> io::Result<()> {
    if !dir.is_dir() {
        return Err(not_a_directory());
    }
    may_write(dir)
}

/// The PID in a lock file that some process holds a lock on (nothing is
/// locked or opened for writing to find out).
fn lock_holder(lock: &Path) -> Option<String> {
    if !crate::platform::lock_is_held(lock) {
        return None;
    }
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    Some(match text.trim() {
        "" => "not yet written".to_owned(),
        pid => pid.to_owned(),
    })
}
