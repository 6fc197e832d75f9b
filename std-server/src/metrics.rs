//! `--metrics ADDR`: Prometheus metrics on `http://ADDR/metrics`, in the
//! Prometheus text format (version 0.0.4), from one thread of their own.
//!
//! Nothing here touches an event loop: a scrape reads the counters the
//! loops add to once per iteration (`services::Stats`), merges their
//! latency histograms (`latency`), and briefly takes the locks of the
//! journal's sync state, the back-off table and the verification queue,
//! as the `-v` statistics line does. The format is `prometheus-client`'s
//! encoder; the request is parsed by `httparse`. Connections are served
//! one at a time, each within [`CONNECTION_DEADLINE`] and
//! [`MAX_REQUEST`] bytes, so a slow or hostile client costs this thread a
//! few seconds at most and the server nothing else.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::auth::Policy;
use crate::iteration::{COMMIT_STAGES, OUTCOMES, TAGS};
use crate::journal::BATCH_BOUNDS;
use crate::latency::{Snapshot, BOUNDS};
use crate::listen::{listen, BindError};
use crate::services::{Services, Stats};
use crate::verify_queue::CAPACITY;

/// A scrape's request head may be at most this long.
const MAX_REQUEST: usize = 8 * 1024;
/// A connection gets this long to send its request and take the answer.
pub(crate) const CONNECTION_DEADLINE: Duration = Duration::from_secs(5);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// The metrics thread; stopped and joined by [`MetricsServer::stop`].
#[derive(Debug)]
pub(crate) struct MetricsServer {
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
    /// Where it listens (the real port when port 0 was asked for).
    pub(crate) addr: SocketAddr,
}

/// The metrics address, bound: bound early, so that a bad `--metrics`
/// fails the start before the logs are touched.
#[derive(Debug)]
pub(crate) struct MetricsListener {
    poll: Poll,
    listener: TcpListener,
    waker: Arc<Waker>,
    /// Where it listens (the real port when port 0 was asked for).
    pub(crate) addr: SocketAddr,
}

impl MetricsListener {
    pub(crate) fn bind(addr: SocketAddr) -> Result<MetricsListener, BindError> {
        let fail = |source| BindError { addr, source };
        let listening = listen(Some(addr.ip()), addr.port(), 64)?;
        let bound = listening.addr;
        listening.listener.set_nonblocking(true).map_err(fail)?;
        let mut listener = TcpListener::from_std(listening.listener);
        let poll = Poll::new().map_err(fail)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(fail)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(fail)?);
        Ok(MetricsListener {
            poll,
            listener,
            waker,
            addr: bound,
        })
    }

    /// Serve `services`' metrics from a new thread.
    pub(crate) fn serve(self, services: Arc<Services>) -> std::io::Result<MetricsServer> {
        let MetricsListener {
            poll,
            listener,
            waker,
            addr,
        } = self;
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ServerMetrics {
            services,
            started: SystemTime::now(),
        }));
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve(poll, listener, &registry))?;
        Ok(MetricsServer {
            waker,
            thread: Some(thread),
            addr,
        })
    }
}

impl MetricsServer {
    /// Stop serving and wait for the thread (as dropping it does).
    pub(crate) fn stop(self) {}
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if self.waker.wake().is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

fn serve(mut poll: Poll, listener: TcpListener, registry: &Registry) {
    let mut events = Events::with_capacity(8);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            error!("metrics: waiting for connections failed: {e}");
            return;
        }
        for event in events.iter() {
            if event.token() == WAKER {
                return;
            }
        }
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let stream = crate::platform::into_std(stream);
                    if let Err(e) = answer(stream, registry) {
                        debug!("metrics: {peer}: {e}");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors, say: the next readiness retries.
                    debug!("metrics: cannot accept: {e}");
                    break;
                }
            }
        }
    }
}

/// An answer: its status line, its body, and whether the body is sent
/// (not for HEAD, which gets the GET body's length only).
struct Answer {
    status: &'static str,
    body: String,
    send_body: bool,
}

impl Answer {
    fn error(status: &'static str) -> Answer {
        Answer {
            status,
            body: format!("{status}\n"),
            send_body: true,
        }
    }
}

/// Read one request and answer it; the connection is closed after it.
fn answer(mut stream: TcpStream, registry: &Registry) -> io::Result<()> {
    let deadline = Instant::now() + CONNECTION_DEADLINE;
    stream.set_nonblocking(false)?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let answer = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = msglog_std::retry_interrupted(|| stream.read(&mut chunk))?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => break route(&request, registry),
            Ok(httparse::Status::Partial) if head.len() < MAX_REQUEST => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                break Answer::error("431 Request Header Fields Too Large")
            }
            Err(_) => break Answer::error("400 Bad Request"),
        }
    };
    let content_type = if answer.status.starts_with("200") {
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = format!(
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    if answer.status.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if answer.send_body {
        response.push_str(&answer.body);
    }
    let left = deadline.saturating_duration_since(Instant::now());
    stream.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
    stream.write_all(response.as_bytes())?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

fn route(request: &httparse::Request<'_, '_>, registry: &Registry) -> Answer {
    let path = request.path.unwrap_or("");
    let path = path.split('?').next().unwrap_or(path);
    if path != "/metrics" {
        return Answer::error("404 Not Found");
    }
    let send_body = match request.method {
        Some("GET") => true,
        Some("HEAD") => false,
        _ => return Answer::error("405 Method Not Allowed"),
    };
    let mut body = String::with_capacity(16 * 1024);
    if prometheus_client::encoding::prometheus_text::encode(&mut body, registry).is_err() {
        return Answer::error("500 Internal Server Error");
    }
    Answer {
        status: "200 OK",
        body,
        send_body,
    }
}

/// Every metric of the server, read at each scrape.
#[derive(Debug)]
struct ServerMetrics {
    services: Arc<Services>,
    started: SystemTime,
}

/// Encode one metric without labels.
fn single(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let metric_encoder = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(metric_encoder)
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    single(encoder, name, help, &ConstCounter::new(value))
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    single(encoder, name, help, &ConstGauge::new(value))
}

fn gauge_f64(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    single(encoder, name, help, &ConstGauge::new(value))
}

fn counter_f64(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    single(encoder, name, help, &ConstCounter::new(value))
}

/// A histogram from per-bucket counts (not cumulative; the last is +Inf).
fn histogram(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    bounds: &[f64],
    buckets: &[u64],
    sum: f64,
) -> Result<(), std::fmt::Error> {
    let mut pairs: Vec<(f64, u64)> = bounds
        .iter()
        .copied()
        .zip(buckets.iter().copied())
        .collect();
    pairs.push((
        f64::INFINITY,
        buckets.get(bounds.len()).copied().unwrap_or(0),
    ));
    let count = buckets.iter().sum();
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &pairs, None)
}

fn saturating_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for ServerMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let services = &self.services;
        let stats = &services.stats;
        let e = &mut encoder;
        {
            let mut metric = e.encode_descriptor(
                "msglog_build_info",
                "The running msglog-server's version (always 1).",
                None,
                MetricType::Gauge,
            )?;
            let labels = [("version", env!("CARGO_PKG_VERSION"))];
            ConstGauge::new(1i64).encode(metric.encode_family(&labels)?)?;
        }
        gauge(
            e,
            "msglog_connections_open",
            "Connections accepted and not yet closed.",
            saturating_i64(services.open.load(Ordering::Relaxed)),
        )?;
        counter(
            e,
            "msglog_connections_accepted",
            "Connections accepted, those refused as overload included.",
            Stats::get(&stats.accepted),
        )?;
        counter(
            e,
            "msglog_connections_refused_overload",
            "Connections closed at once because --max-connections were open.",
            Stats::get(&stats.overloaded),
        )?;
        {
            let mut metric = e.encode_descriptor(
                "msglog_transactions",
                "Transactions answered, by tag and outcome (transactions.log's codes; write-failed: answered 0xFF because its commit failed).",
                None,
                MetricType::Counter,
            )?;
            for (tag, counters) in TAGS.iter().zip(&stats.transactions) {
                for (outcome, value) in OUTCOMES.iter().zip(counters) {
                    let value = Stats::get(value);
                    // Every tag's `ok`, and whatever else has happened.
                    if value == 0 && (*outcome != "ok" || *tag == "unknown") {
                        continue;
                    }
                    let labels = [("tag", *tag), ("outcome", *outcome)];
                    ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
                }
            }
        }
        counter(
            e,
            "msglog_messages_logged",
            "Records stored (in messages.log, or with --sink nats://... in the NATS stream) and answered 0x00.",
            Stats::get(&stats.messages),
        )?;
        counter(
            e,
            "msglog_messages_logged_bytes",
            "Bytes of records written to messages.log.",
            Stats::get(&stats.bytes),
        )?;
        counter(
            e,
            "msglog_messages_not_written",
            "Records whose write failed (their MESSAGE answered 0xFF).",
            Stats::get(&stats.write_failures),
        )?;
        {
            let mut metric = e.encode_descriptor(
                "msglog_commit_failures",
                "Failed commits, by stage: records (messages.log), lines (transactions.log), sync (fdatasync).",
                None,
                MetricType::Counter,
            )?;
            for (stage, value) in COMMIT_STAGES.iter().zip(&stats.commit_failures) {
                let labels = [("stage", *stage)];
                ConstCounter::new(Stats::get(value)).encode(metric.encode_family(&labels)?)?;
            }
        }
        let sync = services.journal.sync_stats();
        gauge(
            e,
            "msglog_fsync_enabled",
            "1 if acknowledgements wait for fdatasync (--fsync).",
            i64::from(services.journal.fsync()),
        )?;
        counter(
            e,
            "msglog_fsync_records",
            "Records made durable by group commits.",
            sync.records,
        )?;
        counter_f64(
            e,
            "msglog_fsync_seconds",
            "Time spent in fdatasync.",
            sync.sync_seconds,
        )?;
        histogram(
            e,
            "msglog_fsync_batch_records",
            "Group commits (an fdatasync of both logs) by the records each made durable.",
            &BATCH_BOUNDS,
            &sync.batches,
            sync.records as f64,
        )?;
        let counts = services
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counts;
        let failing = services
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        {
            let mut metric = e.encode_descriptor(
                "msglog_password_checks",
                "Passwords checked, by result.",
                None,
                MetricType::Counter,
            )?;
            for (result, value) in [("accepted", counts.accepted), ("refused", counts.refused)] {
                let labels = [("result", result)];
                ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
            }
        }
        counter(
            e,
            "msglog_password_backoff_waits",
            "Password checks told to wait for their address's back-off after failures.",
            counts.waits,
        )?;
        gauge(
            e,
            "msglog_password_backoff_addresses",
            "Addresses with recent failed logins remembered for the back-off.",
            saturating_i64(failing),
        )?;
        counter(
            e,
            "msglog_passwords_refused_overload",
            "PASSWORDs answered 0xFF unchecked because the verification queue was full.",
            Stats::get(&stats.passwords_overloaded),
        )?;
        if let Policy::Users(pool) = &services.policy {
            let (waiting, peak) = pool.queue_len_and_peak();
            gauge(
                e,
                "msglog_verify_queue_waiting",
                "Password checks waiting for a verifier thread.",
                saturating_i64(waiting),
            )?;
            gauge(
                e,
                "msglog_verify_queue_peak",
                "The most password checks that have waited at once.",
                saturating_i64(peak),
            )?;
            gauge(
                e,
                "msglog_verify_queue_capacity",
                "Password checks that may wait at once.",
                saturating_i64(CAPACITY),
            )?;
            gauge(
                e,
                "msglog_users",
                "Users in the users file in force.",
                saturating_i64(pool.current().len()),
            )?;
        }
        let mut latency = Snapshot::default();
        for loop_latency in services
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            loop_latency.merge_into(&mut latency);
        }
        histogram(
            e,
            "msglog_message_status_latency_seconds",
            "Time from the event-loop iteration that read a MESSAGE's last byte to its status being sent (after the commit, and fdatasync with --fsync).",
            &BOUNDS,
            &latency.buckets,
            latency.sum_seconds,
        )?;
        #[cfg(feature = "nats")]
        if let Some(sink) = &services.nats {
            nats_metrics(e, sink)?;
        }
        process_metrics(e, self.started)
    }
}

/// The NATS sink's publisher: what JetStream acknowledged and what not.
#[cfg(feature = "nats")]
fn nats_metrics(
    e: &mut DescriptorEncoder<'_>,
    stats: &crate::nats::PublishStats,
) -> Result<(), std::fmt::Error> {
    use crate::nats::PublishStats;
    counter(
        e,
        "msglog_nats_records_published",
        "Records handed to the NATS publisher and settled: acknowledged by JetStream or given up on.",
        PublishStats::get(&stats.stored) + PublishStats::get(&stats.failed),
    )?;
    counter(
        e,
        "msglog_nats_records_acknowledged",
        "Records JetStream acknowledged (stored with the stream's replication).",
        PublishStats::get(&stats.stored),
    )?;
    counter(
        e,
        "msglog_nats_records_duplicate",
        "Of those, acknowledged as duplicates of an earlier attempt (Nats-Msg-Id seen).",
        PublishStats::get(&stats.duplicates),
    )?;
    counter(
        e,
        "msglog_nats_records_refused",
        "Records not acknowledged within --nats-ack-timeout or refused by JetStream (their MESSAGE answered 0xFF).",
        PublishStats::get(&stats.failed),
    )?;
    counter(
        e,
        "msglog_nats_publish_retries",
        "Publish attempts after a record's first.",
        PublishStats::get(&stats.retries),
    )
}

/// The usual `process_*` metrics, from `/proc/self`.
fn process_metrics(
    e: &mut DescriptorEncoder<'_>,
    started: SystemTime,
) -> Result<(), std::fmt::Error> {
    let (ticks, page) = crate::platform::clock_ticks_and_page_size();
    if let Some(stat) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| Some(text.get(text.rfind(')')? + 1..)?.to_owned()))
    {
        // Fields from the third (state) on; see proc(5).
        let fields: Vec<&str> = stat.split_whitespace().collect();
        let field = |n: usize| -> f64 {
            fields
                .get(n - 3)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        if ticks > 0 {
            counter_f64(
                e,
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds.",
                (field(14) + field(15)) / ticks as f64,
            )?;
        }
        gauge_f64(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            field(23),
        )?;
        gauge_f64(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            field(24) * page.max(0) as f64,
        )?;
        gauge_f64(e, "process_threads", "Number of OS threads.", field(20))?;
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        // The directory's own descriptor is among them.
        let open = entries.count().saturating_sub(1);
        gauge(
            e,
            "process_open_fds",
            "Number of open file descriptors.",
            saturating_i64(open),
        )?;
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<f64>().ok()
        });
    if let Some(max_fds) = max_fds {
        gauge_f64(
            e,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max_fds,
        )?;
    }
    let start = started
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge_f64(
        e,
        "process_start_time_seconds",
        "When the server started serving, in seconds since the Unix epoch.",
        start,
    )?;
    Ok(())
}
