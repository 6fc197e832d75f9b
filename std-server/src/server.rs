//! The framed server: start-up, the accepting thread, signals, and the
//! graceful stop. Connections are handed round-robin to the event-loop
//! threads (`event_loop`); this thread only accepts and handles signals.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::auth::{Policy, VerifierPool};
use crate::backoff::Backoff;
use crate::config::{Auth, Config, Sink, Tls};
use crate::dir_lock;
use crate::error::ServerError;
use crate::event_loop::{EventLoop, WAKER};
use crate::journal::Journal;
use crate::listen::{canonical_peer, listen, Listening};
use crate::mailbox::{Accepted, AcceptedTls, Mailbox};
use crate::metrics::MetricsListener;
use crate::operator_log::debug_lines;
use crate::pid_file::PidFile;
use crate::platform::{Notifier, Request, Requests, NULL_DEVICE, RELOAD};
use crate::rate_limit::RateLimit;
use crate::services::{Services, Stats};
use crate::text::plural;
use crate::timestamp::Clock;
use crate::tls::{self, TlsLink};
use crate::transaction_log::{connection_fields, push_line, CloseReason, Line};
use crate::users::Users;
use crate::verify_queue::CAPACITY;

/// Pending connections the kernel keeps for us.
const BACKLOG: i32 = 1024;
/// Addresses remembered for authentication back-off.
const BACKOFF_ADDRESSES: usize = 10_000;
/// Pause before accepting again after an error that would recur at once.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Interval of `-v` statistics.
const STATS_INTERVAL: Duration = Duration::from_secs(10);

const LISTENER: Token = Token(0);
const REQUESTS: Token = Token(1);
/// The TLS listener beside the plaintext one (`--tls-port`).
const TLS_LISTENER: Token = Token(2);

/// Stop and reload requests, queued by the platform's thread for the
/// accepting thread, which its waker wakes.
struct RequestQueue {
    pending: Mutex<Vec<Request>>,
    waker: Waker,
}

impl RequestQueue {
    fn push(&self, request: Request) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.push(request);
        }
        if let Err(e) = self.waker.wake() {
            error!("cannot wake the server for a signal: {e}");
        }
    }

    fn take(&self) -> Vec<Request> {
        self.pending
            .lock()
            .map(|mut pending| std::mem::take(&mut *pending))
            .unwrap_or_default()
    }
}

struct WorkerHandle {
    mailbox: Arc<Mailbox>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// Run until a stop request (SIGINT/SIGTERM; Ctrl-C, Ctrl-Break or the
/// console closing on Windows); Ok after a clean stop.
pub(crate) fn run(config: Config) -> Result<(), ServerError> {
    // Before any thread starts: the descriptors systemd passed, if any.
    let activated = crate::activation::take()?;
    let notifier = Notifier::from_env();
    match msglog_std::raise_fd_limit() {
        Ok(limit) => debug!("file descriptor limit: {limit}"),
        Err(e) => warning!("cannot raise the file descriptor limit: {e}"),
    }
    let workers = config.workers.max(1);
    crate::platform::ignore_file_size_signal()
        .map_err(|e| ServerError::io("cannot ignore SIGXFSZ", e))?;

    let backoff = Arc::new(Mutex::new(Backoff::new(BACKOFF_ADDRESSES)));
    let policy = match &config.auth {
        Auth::Users(path) => {
            let users = Users::load(path)?;
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(2));
            Policy::Users(
                VerifierPool::start(path, users, &backoff, threads)
                    .map_err(|e| ServerError::io("cannot start verifier threads", e))?,
            )
        }
        Auth::LegacyParity => Policy::LegacyParity,
        Auth::AcceptAny => Policy::AcceptAny,
    };

    let mut poll = Poll::new().map_err(|e| ServerError::io("cannot create an event loop", e))?;
    let requested = Arc::new(RequestQueue {
        pending: Mutex::new(Vec::new()),
        waker: Waker::new(poll.registry(), REQUESTS)
            .map_err(|e| ServerError::io("cannot watch signals", e))?,
    });
    let on_request = {
        let requested = Arc::clone(&requested);
        Arc::new(move |request| requested.push(request))
    };

    let tls = match &config.tls {
        Some(files) => Some(TlsListening {
            server: tls::load(files)?,
            files: files.clone(),
        }),
        None => None,
    };
    let main_is_tls = config.tls.as_ref().is_some_and(|t| t.port.is_none());
    let activation = activated.is_some();
    let listening = match activated {
        Some(listening) => listening,
        None => listen(config.bind, config.port, BACKLOG)?,
    };
    let (listener, listening) = watch_listener(&poll, listening, LISTENER)?;
    let mut tls_listener = match config.tls.as_ref().and_then(|t| t.port) {
        Some(port) => Some(watch_listener(
            &poll,
            listen(config.bind, port, BACKLOG)?,
            TLS_LISTENER,
        )?),
        None => None,
    };
    let metrics_listener = config
        .metrics
        .map(MetricsListener::bind)
        .transpose()
        .map_err(ServerError::Metrics)?;

    let dir = open_log_directory(&config.dir)?;
    // Reloads are asked for by the directory's canonical name on Windows.
    let _requests = Requests::start(Some(&dir), on_request)
        .map_err(|e| ServerError::io("cannot install signal handlers", e))?;
    // Before anything in the directory is opened or repaired; held until we return.
    let _dir_lock = dir_lock::lock(&dir)?;
    let keep_messages_log = match &config.sink {
        Sink::File => true,
        #[cfg(feature = "nats")]
        Sink::Nats(sink) => sink.keep_messages_log,
    };
    let journal = Journal::open_with(&dir, config.fsync, keep_messages_log)?;
    #[cfg(feature = "nats")]
    let stream = match &config.sink {
        Sink::Nats(sink) => Some((crate::nats::Publisher::start(sink)?, sink)),
        Sink::File => None,
    };

    let auth_description = policy.describe();
    let services = Arc::new(Services {
        timeouts: config.timeouts,
        journal,
        policy,
        backoff,
        open: AtomicUsize::new(0),
        stats: Stats::default(),
        latencies: Mutex::default(),
        #[cfg(feature = "nats")]
        nats: stream
            .as_ref()
            .map(|(started, _)| started.publisher.shared_stats()),
    });

    // Before the event loops start, so that a failure leaves no thread behind.
    let metrics = metrics_listener
        .map(|bound| bound.serve(Arc::clone(&services)))
        .transpose()
        .map_err(|e| ServerError::io("cannot start the metrics thread", e))?;
    let pid_file = config.pid_file.as_deref().map(PidFile::write).transpose()?;

    let mut handles = Vec::with_capacity(workers);
    for index in 0..workers {
        let worker_poll =
            Poll::new().map_err(|e| ServerError::io("cannot create an event loop", e))?;
        let waker = Waker::new(worker_poll.registry(), WAKER)
            .map_err(|e| ServerError::io("cannot create a waker", e))?;
        let mailbox = Arc::new(Mailbox::new(waker));
        #[allow(unused_mut)]
        let mut event_loop =
            EventLoop::new(worker_poll, Arc::clone(&services), Arc::clone(&mailbox));
        #[cfg(feature = "nats")]
        if let Some((started, sink)) = &stream {
            event_loop.commit_to_stream(started.publisher.handle(), sink.keep_messages_log);
        }
        let thread = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || event_loop.run())
            .map_err(|e| ServerError::io("cannot start an event-loop thread", e))?;
        handles.push(WorkerHandle {
            mailbox,
            thread: Some(thread),
        });
    }

    #[allow(unused_mut)]
    let mut sink_description = String::new();
    #[cfg(feature = "nats")]
    if let Some((started, sink)) = &stream {
        sink_description = format!(
            " sink={} stream={} ({}) subject={} front-end={}",
            sink.connection.servers.join(","),
            sink.stream,
            started
                .replicas
                .map_or_else(|| "not reached yet".to_owned(), |r| format!("{r} replicas")),
            sink.subject,
            started.publisher.front_end,
        );
    }
    info!(
        "listening on {} mode=framed{}{} workers={} auth={} fsync={}{sink_description} messages={} transactions={}",
        listening.addr,
        if listening.dual_stack {
            " (dual-stack)"
        } else {
            ""
        },
        format!(
            "{}{}",
            match (&config.tls, main_is_tls) {
                (Some(files), true) => tls_description(files),
                _ => String::new(),
            },
            if activation {
                " (socket activation)"
            } else {
                ""
            }
        ),
        workers,
        auth_description,
        if config.fsync { "on" } else { "off" },
        services
            .journal
            .messages_path()
            .map_or_else(|| "(not kept)".into(), |path| path.display().to_string()),
        services.journal.transactions_path().display(),
    );
    if let (Some((_, tls_listening)), Some(files)) = (&tls_listener, &config.tls) {
        info!(
            "listening on {} mode=framed{}{} (beside the plaintext port {})",
            tls_listening.addr,
            if tls_listening.dual_stack {
                " (dual-stack)"
            } else {
                ""
            },
            tls_description(files),
            listening.addr.port(),
        );
    }
    if !main_is_tls && !listening.addr.ip().is_loopback() {
        warning!(
            "passwords and messages cross the network in clear on {} (a plaintext listener on a \
             non-loopback address): anyone on the path can read them and log in as their users. \
             Use --tls-cert/--tls-key (with --tls-port to keep this port plaintext for old clients), \
             or --bind 127.0.0.1.",
            listening.addr
        );
    }
    if matches!(services.policy, Policy::AcceptAny) {
        warning!(
            "no --users file: ANY name with ANY non-empty password is accepted. \
             Use --users FILE (lines from `msglog-server hash-password NAME`) unless every client is trusted."
        );
    }
    warn_about_policy(&services.policy);
    if let Some(metrics) = &metrics {
        info!("metrics on http://{}/metrics", metrics.addr);
    }
    notifier.ready(&format!(
        "serving on {}: {auth_description}",
        listening.addr
    ));

    let mut acceptor = Acceptor {
        services: Arc::clone(&services),
        workers: handles,
        next_worker: 0,
        next_id: 1,
        max_connections: config.max_connections,
        tls,
        main_is_tls,
        spare: File::open(NULL_DEVICE).ok(),
        retry_at: None,
        errors: RateLimit::new(Duration::from_secs(1)),
        notifier,
    };
    let started = Instant::now();
    let listeners = Listeners {
        main: Some(listener),
        tls: tls_listener.take().map(|(listener, _)| listener),
    };
    let served = acceptor.serve(&mut poll, listeners, &requested, config.grace);
    if let Some(metrics) = metrics {
        metrics.stop();
    }
    if let Some(pid_file) = pid_file {
        pid_file.remove();
    }
    served?;

    for (path, e) in services.journal.sync() {
        error!("{}: final sync failed: {e}", path.display());
    }
    #[allow(unused_mut)]
    let mut summary = summary(&services, started.elapsed());
    #[cfg(feature = "nats")]
    if let Some((started, _)) = stream {
        let stats = started.publisher.stats();
        let get = crate::nats::PublishStats::get;
        summary.push_str(&format!(
            "; NATS: {} records stored ({} found stored by an earlier attempt), {} retried attempts, {} not stored",
            get(&stats.stored),
            get(&stats.duplicates),
            get(&stats.retries),
            get(&stats.failed),
        ));
        started.publisher.stop();
    }
    acceptor.notifier.status(&summary);
    info!("{summary}");
    Ok(())
}

/// A bound listener, non-blocking and registered with `poll` under `token`.
fn watch_listener(
    poll: &Poll,
    listening: Listening,
    token: Token,
) -> Result<(TcpListener, Bound), ServerError> {
    listening
        .listener
        .set_nonblocking(true)
        .map_err(|e| ServerError::io("cannot make the listener non-blocking", e))?;
    let bound = Bound {
        addr: listening.addr,
        dual_stack: listening.dual_stack,
    };
    let mut listener = TcpListener::from_std(listening.listener);
    poll.registry()
        .register(&mut listener, token, Interest::READABLE)
        .map_err(|e| ServerError::io("cannot watch the listener", e))?;
    Ok((listener, bound))
}

/// Where a listener listens, for the start-up lines.
struct Bound {
    addr: SocketAddr,
    dual_stack: bool,
}

/// ` tls (client certificates required[, NAME from the certificate])` for a start-up line.
fn tls_description(files: &Tls) -> String {
    match (&files.client_ca, files.require_cert_name) {
        (None, _) => " tls".to_owned(),
        (Some(_), false) => " tls (client certificates required)".to_owned(),
        (Some(_), true) => {
            " tls (client certificates required, NAME must be the certificate's)".to_owned()
        }
    }
}

/// The TLS configuration new connections get, and the files it came from
/// (read again on SIGHUP).
struct TlsListening {
    server: Arc<rustls::ServerConfig>,
    files: Tls,
}

/// The accepting thread's listeners; each is closed (`None`) when stopping.
struct Listeners {
    /// On the server's port: plaintext, or TLS without `--tls-port`.
    main: Option<TcpListener>,
    /// On `--tls-port`.
    tls: Option<TcpListener>,
}

/// The log directory, created (with its parents, mode 0755 less the
/// umask) if it does not exist, as an absolute path.
fn open_log_directory(dir: &Path) -> Result<PathBuf, ServerError> {
    let fail = |source| ServerError::LogDirectory {
        path: dir.to_owned(),
        source,
    };
    if !dir.exists() {
        crate::platform::create_dir_all(dir).map_err(fail)?;
        info!("created the log directory {}", dir.display());
    }
    crate::platform::canonical_dir(dir).map_err(fail)
}

/// Policies that let in more, or fewer, than an operator may think: said
/// at start-up and at each reload, like open authentication.
fn warn_about_policy(policy: &Policy) {
    match policy {
        Policy::LegacyParity => warning!(
            "--auth legacy-parity: any password whose first byte is odd is accepted (half of all \
             passwords), as the original C server did. Use it only for drop-in compatibility, \
             and --users FILE otherwise."
        ),
        Policy::Users(pool) if pool.current().len() == 0 => warning!(
            "the users file {} lists no users: every login is refused. Add one with \
             `msglog-server users add {} NAME`.",
            pool.path().display(),
            pool.path().display()
        ),
        _ => {}
    }
}

fn summary(services: &Services, elapsed: Duration) -> String {
    let stats = &services.stats;
    let mut text = format!(
        "stopped after {:.1} s: {} ({} refused as overload), {} logged, \
         {} not written, {} rejected, {} timed out",
        elapsed.as_secs_f64(),
        plural(Stats::get(&stats.accepted), "connection"),
        Stats::get(&stats.overloaded),
        plural(Stats::get(&stats.messages), "message"),
        Stats::get(&stats.write_failures),
        Stats::get(&stats.rejected),
        Stats::get(&stats.timeouts),
    );
    if let Policy::Users(pool) = &services.policy {
        let (_, peak) = pool.queue_len_and_peak();
        text.push_str(&format!(
            "; verification queue peak {peak} of {CAPACITY} checks, {} refused as overload",
            plural(Stats::get(&stats.passwords_overloaded), "password")
        ));
    }
    if services.journal.fsync() {
        let sync = services.journal.sync_stats();
        text.push_str(&format!(
            "; fdatasync: {}, mean batch {:.1} records per sync",
            plural(sync.syncs, "sync"),
            sync.mean_batch()
        ));
    }
    text
}

struct Acceptor {
    services: Arc<Services>,
    workers: Vec<WorkerHandle>,
    next_worker: usize,
    next_id: u64,
    max_connections: usize,
    tls: Option<TlsListening>,
    /// The server's port speaks TLS.
    main_is_tls: bool,
    /// Kept open to be closed when descriptors run out, so one pending
    /// connection can be accepted and closed instead of spinning on EMFILE.
    spare: Option<File>,
    retry_at: Option<Instant>,
    errors: RateLimit,
    notifier: Notifier,
}

impl Acceptor {
    fn serve(
        &mut self,
        poll: &mut Poll,
        mut listeners: Listeners,
        requested: &RequestQueue,
        grace: Duration,
    ) -> Result<(), ServerError> {
        // Closed when stopping, so that new connections are refused at once.
        let mut events = Events::with_capacity(64);
        let mut stopping = false;
        let mut next_stats = Instant::now() + STATS_INTERVAL;
        let mut last_messages = 0;
        loop {
            let mut timeout = if stopping {
                Duration::from_millis(20)
            } else {
                next_stats.saturating_duration_since(Instant::now())
            };
            if let Some(retry) = self.retry_at {
                timeout = timeout.min(retry.saturating_duration_since(Instant::now()));
            }
            if let Err(e) = poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(ServerError::io("waiting for connections failed", e));
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => {
                        if let Some(listener) = &listeners.main {
                            self.accept_all(listener, self.main_is_tls);
                        }
                    }
                    TLS_LISTENER => {
                        if let Some(listener) = &listeners.tls {
                            self.accept_all(listener, true);
                        }
                    }
                    REQUESTS => {
                        for request in requested.take() {
                            match request {
                                Request::Reload => {
                                    self.notifier.reloading();
                                    self.reopen_logs();
                                    self.reload_users();
                                    self.reload_tls();
                                    self.notifier.ready(&self.status_line());
                                }
                                _ if stopping => {
                                    info!("second stop signal: closing every connection now");
                                    for worker in &self.workers {
                                        worker.mailbox.stop(Instant::now());
                                    }
                                }
                                _ => {
                                    stopping = true;
                                    for listener in [&mut listeners.main, &mut listeners.tls] {
                                        if let Some(mut listener) = listener.take() {
                                            let _ = poll.registry().deregister(&mut listener);
                                        }
                                    }
                                    let stopping_line = format!(
                                        "stopping: {} get up to {:.1} s to finish",
                                        plural(
                                            self.services.open.load(Ordering::Relaxed) as u64,
                                            "connection"
                                        ),
                                        grace.as_secs_f64()
                                    );
                                    self.notifier.stopping(&stopping_line);
                                    info!("{stopping_line}");
                                    let deadline = Instant::now() + grace;
                                    for worker in &self.workers {
                                        worker.mailbox.stop(deadline);
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            let now = Instant::now();
            if self.retry_at.is_some_and(|at| at <= now) {
                self.retry_at = None;
                if let Some(listener) = &listeners.main {
                    self.accept_all(listener, self.main_is_tls);
                }
                if let Some(listener) = &listeners.tls {
                    self.accept_all(listener, true);
                }
            }
            if !stopping && now >= next_stats {
                next_stats = now + STATS_INTERVAL;
                self.notifier.status(&self.status_line());
                let messages = Stats::get(&self.services.stats.messages);
                let sync = if self.services.journal.fsync() {
                    let stats = self.services.journal.sync_stats();
                    format!(
                        ", {} fdatasyncs (mean batch {:.1})",
                        stats.syncs,
                        stats.mean_batch()
                    )
                } else {
                    String::new()
                };
                let checks = match &self.services.policy {
                    Policy::Users(pool) => {
                        let (waiting, peak) = pool.queue_len_and_peak();
                        format!(
                            ", {waiting} password checks waiting (peak {peak} of {CAPACITY}), {} refused as overload",
                            Stats::get(&self.services.stats.passwords_overloaded)
                        )
                    }
                    _ => String::new(),
                };
                verbose!(
                    "{} open, {} logged ({:.0}/s){sync}{checks}",
                    plural(
                        self.services.open.load(Ordering::Relaxed) as u64,
                        "connection"
                    ),
                    plural(messages, "message"),
                    (messages - last_messages) as f64 / STATS_INTERVAL.as_secs_f64()
                );
                last_messages = messages;
            }
            if self.reap_workers()? && stopping {
                return Ok(());
            }
        }
    }

    /// Join finished workers. True when all have finished; an error if one
    /// failed or ended on its own (the server cannot go on without it).
    fn reap_workers(&mut self) -> Result<bool, ServerError> {
        let mut all_done = true;
        for worker in &mut self.workers {
            match worker.thread.take_if(|t| t.is_finished()) {
                Some(thread) => match thread.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(ServerError::io("an event loop failed", e)),
                    Err(_) => {
                        return Err(ServerError::io(
                            "an event loop panicked",
                            io::Error::other("panic"),
                        ))
                    }
                },
                None => all_done &= worker.thread.is_none(),
            }
        }
        Ok(all_done)
    }

    fn accept_all(&mut self, listener: &TcpListener, tls: bool) {
        if self.spare.is_none() {
            self.spare = File::open(NULL_DEVICE).ok();
        }
        loop {
            match listener.accept() {
                Ok((stream, peer)) => self.dispatch(stream, peer, tls),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // Errors of one pending connection: take the next.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) || crate::platform::accept_error_of_one_connection(&e) => {}
                Err(e) if crate::platform::out_of_descriptors(&e) => {
                    self.report(&format!(
                        "cannot accept: {e}; refusing connections until descriptors are free"
                    ));
                    // accept(2) reserves a descriptor before it looks for a
                    // connection, so EMFILE does not mean one is waiting.
                    let Some(spare) = self.spare.take() else {
                        self.retry_at = Some(Instant::now() + ACCEPT_RETRY);
                        return;
                    };
                    drop(spare);
                    let accepted = listener.accept();
                    if let Ok((stream, peer)) = accepted {
                        // Closed before the spare is reopened in its place.
                        let id = self.next_id;
                        self.next_id += 1;
                        self.overload(stream, canonical_peer(peer), id);
                    } else {
                        self.spare = File::open(NULL_DEVICE).ok();
                        if !matches!(&accepted, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                            self.retry_at = Some(Instant::now() + ACCEPT_RETRY);
                        }
                        return;
                    }
                    self.spare = File::open(NULL_DEVICE).ok();
                    if self.spare.is_none() {
                        self.retry_at = Some(Instant::now() + ACCEPT_RETRY);
                        return;
                    }
                }
                Err(e) => {
                    self.report(&format!("cannot accept: {e}"));
                    self.retry_at = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    fn report(&mut self, message: &str) {
        if let Some(suppressed) = self.errors.admit(Instant::now()) {
            if suppressed > 0 {
                error!("{message} ({suppressed} similar errors not shown)");
            } else {
                error!("{message}");
            }
        }
    }

    fn dispatch(&mut self, stream: mio::net::TcpStream, peer: SocketAddr, tls: bool) {
        let peer = canonical_peer(peer);
        let id = self.next_id;
        self.next_id += 1;
        if self.services.open.load(Ordering::Relaxed) >= self.max_connections {
            self.overload(stream, peer, id);
            return;
        }
        let tls = match (tls, &self.tls) {
            (false, _) | (true, None) => None,
            (true, Some(listening)) => match TlsLink::new(Arc::clone(&listening.server)) {
                Ok(link) => Some(AcceptedTls {
                    link: Box::new(link),
                    require_cert_name: listening.files.require_cert_name,
                }),
                Err(e) => {
                    self.report(&format!("cannot start TLS for connection {id}: {e}"));
                    return;
                }
            },
        };
        self.services.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.services.open.fetch_add(1, Ordering::Relaxed);
        let worker = &self.workers[self.next_worker];
        self.next_worker = (self.next_worker + 1) % self.workers.len();
        worker.mailbox.accept(Accepted {
            stream,
            peer,
            id,
            tls,
        });
    }

    /// Accept-and-close: log it, drop the socket.
    fn overload(&mut self, stream: mio::net::TcpStream, peer: SocketAddr, id: u64) {
        drop(stream);
        self.services.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.services
            .stats
            .overloaded
            .fetch_add(1, Ordering::Relaxed);
        let clock = Clock::new();
        let fields = connection_fields(id, peer);
        let mut lines = Vec::with_capacity(160);
        push_line(&mut lines, clock.text(), &fields, Line::Open { tls: None });
        push_line(
            &mut lines,
            clock.text(),
            &fields,
            Line::Close {
                reason: CloseReason::Overload,
                error: None,
            },
        );
        debug_lines(&lines);
        self.services.journal.append_lines(&lines);
    }

    /// The one-line summary for the service manager's `STATUS=`.
    fn status_line(&self) -> String {
        let stats = &self.services.stats;
        format!(
            "serving: {} connections open, {} accepted, {} messages logged, {} not written",
            self.services.open.load(Ordering::Relaxed),
            Stats::get(&stats.accepted),
            Stats::get(&stats.messages),
            Stats::get(&stats.write_failures),
        )
    }

    /// Re-read `--users`, so users can be added, removed or given new
    /// passwords without a restart. Sessions already logged in stay.
    fn reload_users(&self) {
        let Policy::Users(pool) = &self.services.policy else {
            return;
        };
        match pool.reload() {
            Ok(count) => {
                info!(
                    "{RELOAD}: reloaded {} ({})",
                    pool.path().display(),
                    plural(count as u64, "user")
                );
                warn_about_policy(&self.services.policy);
            }
            Err(e) => error!("cannot reload the users file: {e} (keeping the users loaded before)"),
        }
    }

    /// Re-read the TLS certificate, key and client CA: new connections use
    /// them; a file that does not load is reported and the old ones stay.
    fn reload_tls(&mut self) {
        let Some(listening) = &mut self.tls else {
            return;
        };
        match tls::load(&listening.files) {
            Ok(server) => {
                listening.server = server;
                info!(
                    "{RELOAD}: reloaded the TLS certificate {} and key{}",
                    listening.files.cert.display(),
                    if listening.files.client_ca.is_some() {
                        " and the client CA"
                    } else {
                        ""
                    }
                );
            }
            Err(e) => {
                error!("cannot reload TLS: {e} (keeping the certificate and key loaded before)")
            }
        }
    }

    fn reopen_logs(&self) {
        let failed = self.services.journal.reopen();
        for (path, e) in &failed {
            error!(
                "cannot reopen {}: {e} (still writing the old file)",
                path.display()
            );
        }
        if failed.is_empty() {
            info!("{RELOAD}: reopened messages.log and transactions.log");
        }
    }
}
