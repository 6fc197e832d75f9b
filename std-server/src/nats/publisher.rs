//! The publisher: one thread with a small tokio runtime, holding the
//! async-nats client. Event loops hand it each deferred commit's records
//! (one [`Batch`] per commit, through an unbounded channel, so an event
//! loop never waits); it publishes them in order on one connection, keeps
//! every acknowledgement in flight at once (like a group commit), retries
//! what was not acknowledged under the same `Nats-Msg-Id`, and mails each
//! commit's outcomes back to its event loop.
//!
//! Retries come in rounds: what a round did not settle is published again,
//! in its order, after a pause (25 ms doubling to 1 s) or as soon as the
//! client has reconnected, until the record's deadline (`ack_timeout` after
//! the batch arrived). JetStream keeps one copy per message id within its
//! duplicate window, so a retry of a record it had stored answers with the
//! first copy's sequence (`duplicate`).

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::{Context, PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use async_nats::{Event, Subject};
use bytes::Bytes;
use futures_util::future::join_all;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::config::NatsSink;
use super::outcome::{Failure, Outcome, Stored};
use super::record::{self, encode_name, Origin};
use super::{connect, NatsError};
use crate::iteration::RawRecord;
use crate::mailbox::Mailbox;
use crate::timestamp;

/// Acknowledgements the client keeps waiting for at once.
const MAX_IN_FLIGHT: usize = 1 << 16;
/// The first pause between two rounds of retries; it doubles up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(25);
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// JetStream's "duplicate message id is in process" and "too many
/// requests": the record may yet be stored, or was dropped before it was.
const RETRIED_API_ERRORS: [u64; 2] = [10158, 10167];
/// "insufficient resources": a 503 that asking again does not change.
const INSUFFICIENT_RESOURCES: u64 = 10023;

/// One deferred commit's records, for the publisher.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Where the outcomes go.
    pub(crate) reply: Arc<Mailbox>,
    pub(crate) commit: u64,
    /// When the records were received (their `Msglog-Time`).
    pub(crate) time: [u8; timestamp::LEN],
    /// Names and payloads, described by `records`.
    pub(crate) bytes: Vec<u8>,
    pub(crate) records: Vec<RawRecord>,
}

/// How an event loop hands batches to the publisher.
#[derive(Debug, Clone)]
pub(crate) struct PublishHandle {
    sender: mpsc::UnboundedSender<Batch>,
}

impl PublishHandle {
    /// Hand `batch` over; it comes back if the publisher has stopped.
    pub(crate) fn publish(&self, batch: Batch) -> Result<(), Batch> {
        self.sender.send(batch).map_err(|e| e.0)
    }
}

/// What the publisher did, for the summary.
#[derive(Debug, Default)]
pub(crate) struct PublishStats {
    /// Records JetStream acknowledged.
    pub(crate) stored: AtomicU64,
    /// Of those, acknowledged as duplicates of an earlier attempt.
    pub(crate) duplicates: AtomicU64,
    /// Attempts after the first.
    pub(crate) retries: AtomicU64,
    /// Records not acknowledged (answered 0xFF).
    pub(crate) failed: AtomicU64,
}

impl PublishStats {
    fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The running publisher.
#[derive(Debug)]
pub(crate) struct Publisher {
    handle: PublishHandle,
    thread: Option<JoinHandle<()>>,
    stats: Arc<PublishStats>,
    /// This start's front end id (name and boot id).
    pub(crate) front_end: String,
}

/// What the start-up learned about the stream, for the start-up line.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) publisher: Publisher,
    /// `None` while NATS could not be reached.
    pub(crate) replicas: Option<usize>,
}

impl Publisher {
    /// Start the publisher's thread and connect. Returns once connected and
    /// the stream checked (or created), or once the first attempt to connect
    /// failed: then it connects in the background, and records are answered
    /// 0xFF until it has. Options that cannot work (a secret file that
    /// cannot be read, a stream that does not exist or does not take the
    /// subject) are errors.
    pub(crate) fn start(sink: &NatsSink) -> Result<Started, NatsError> {
        let front_end = format!("{}-{:016x}", sink.front_end, run_id());
        let (sender, receiver) = mpsc::unbounded_channel();
        let (ready, started) = std::sync::mpsc::channel();
        let stats = Arc::new(PublishStats::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(NatsError::Runtime)?;
        let thread = {
            let sink = sink.clone();
            let stats = Arc::clone(&stats);
            let front_end = front_end.clone();
            std::thread::Builder::new()
                .name("nats".into())
                .spawn(move || {
                    runtime.block_on(run(sink, front_end, stats, receiver, ready));
                })
                .map_err(NatsError::Runtime)?
        };
        let replicas = started.recv().unwrap_or_else(|_| {
            Err(NatsError::Runtime(std::io::Error::other(
                "the NATS thread ended",
            )))
        })?;
        Ok(Started {
            publisher: Publisher {
                handle: PublishHandle { sender },
                thread: Some(thread),
                stats,
                front_end,
            },
            replicas,
        })
    }

    pub(crate) fn handle(&self) -> PublishHandle {
        self.handle.clone()
    }

    pub(crate) fn stats(&self) -> &PublishStats {
        &self.stats
    }

    /// The counters, for `--metrics`.
    pub(crate) fn shared_stats(&self) -> Arc<PublishStats> {
        Arc::clone(&self.stats)
    }

    /// Stop once every batch handed over is settled (the event loops have
    /// ended, so none is left), and close the connection.
    pub(crate) fn stop(mut self) {
        drop(self.handle);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What every store task needs.
struct Shared {
    client: async_nats::Client,
    context: Context,
    subject: Subject,
    stream: String,
    front_end: String,
    ack_timeout: Duration,
    /// How long one attempt waits for its acknowledgement.
    attempt_timeout: Duration,
    /// Counts connections made: a change means the client reconnected.
    connections: watch::Receiver<u64>,
    stats: Arc<PublishStats>,
}

/// One attempt's wait for an acknowledgement: an eighth of the deadline,
/// between 250 ms and 2 s.
fn attempt_timeout(ack_timeout: Duration) -> Duration {
    (ack_timeout / 8).clamp(Duration::from_millis(250), Duration::from_secs(2))
}

async fn run(
    sink: NatsSink,
    front_end: String,
    stats: Arc<PublishStats>,
    mut batches: mpsc::UnboundedReceiver<Batch>,
    ready: std::sync::mpsc::Sender<Result<Option<usize>, NatsError>>,
) {
    let servers = sink.connection.servers.join(",");
    let (event_sender, events) = mpsc::unbounded_channel();
    let (connections_sender, connections) = watch::channel(0u64);
    let name = format!("msglog-server {front_end}");
    let probe = match connect::options(&sink.connection, &name, Some(event_sender.clone())).await {
        Ok(options) => connect::connect(&sink.connection, options).await,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let attempt = attempt_timeout(sink.ack_timeout);
    let context_of = |client: async_nats::Client| {
        jetstream::ContextBuilder::new()
            .timeout(attempt)
            .ack_timeout(attempt)
            .max_ack_inflight(MAX_IN_FLIGHT)
            .backpressure_on_inflight(true)
            .build(client)
    };
    let (client, connected, replicas) = match probe {
        Ok(client) => {
            let context = context_of(client.clone());
            match check_stream(&context, &sink).await {
                Ok(replicas) => (client, true, Some(replicas)),
                Err(StreamCheck::Failed(e)) => {
                    let _ = ready.send(Err(e));
                    return;
                }
                Err(StreamCheck::NotYet(e)) => {
                    error!(
                        "{e}; serving anyway: every MESSAGE is answered 0xFF (after --nats-ack-timeout {:.1} s) until JetStream can store it; checking again in the background",
                        sink.ack_timeout.as_secs_f64()
                    );
                    tokio::spawn(check_until_ready(context, sink.clone(), None));
                    (client, true, None)
                }
            }
        }
        Err(e) => {
            error!(
                "{e}; serving anyway: every MESSAGE is answered 0xFF (after --nats-ack-timeout {:.1} s) until JetStream can store it; connecting again in the background",
                sink.ack_timeout.as_secs_f64()
            );
            let options = match connect::options(&sink.connection, &name, Some(event_sender)).await
            {
                Ok(options) => options.retry_on_initial_connect(),
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            match connect::connect(&sink.connection, options).await {
                Ok(client) => {
                    let context = context_of(client.clone());
                    // The stream is checked once NATS is reachable.
                    tokio::spawn(check_until_ready(
                        context,
                        sink.clone(),
                        Some(connections.clone()),
                    ));
                    (client, false, None)
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            }
        }
    };
    if connected {
        // The probe connected before the event task ran: count it.
        connections_sender.send_modify(|n| *n += 1);
    }
    tokio::spawn(watch_events(
        events,
        connections_sender,
        client.clone(),
        servers,
        connected,
    ));
    let shared = Arc::new(Shared {
        context: context_of(client.clone()),
        client: client.clone(),
        subject: Subject::from(sink.subject.as_str()),
        stream: sink.stream.clone(),
        front_end,
        ack_timeout: sink.ack_timeout,
        attempt_timeout: attempt,
        connections,
        stats,
    });
    let _ = ready.send(Ok(replicas));
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(batch) = batches.recv().await {
        tasks.spawn(store(Arc::clone(&shared), batch));
        // Reap what has finished, so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    // Every record is settled now: nothing is left to flush, and a flush
    // would wait for a NATS that may never come back.
}

/// Say what the connection does, and count (re)connections.
async fn watch_events(
    mut events: mpsc::UnboundedReceiver<Event>,
    connections: watch::Sender<u64>,
    client: async_nats::Client,
    servers: String,
    mut connected: bool,
) {
    // Failed attempts are said at growing intervals while NATS stays away.
    const FIRST_QUIET: Duration = Duration::from_secs(1);
    const LONGEST_QUIET: Duration = Duration::from_secs(60);
    let mut quiet_until = std::time::Instant::now();
    let mut quiet = FIRST_QUIET;
    let mut unsaid = 0u64;
    while let Some(event) = events.recv().await {
        match event {
            Event::Connected => {
                quiet = FIRST_QUIET;
                unsaid = 0;
                connections.send_modify(|n| *n += 1);
                if !connected {
                    let info = client.server_info();
                    info!(
                        "NATS: connected to {} ({}:{})",
                        info.server_name, info.host, info.port
                    );
                }
                connected = true;
            }
            Event::Disconnected => {
                connected = false;
                error!("NATS: connection lost; reconnecting to {servers} (records wait for it, up to --nats-ack-timeout)");
            }
            Event::ClientError(e) => {
                // While reconnecting, once per attempt (about twice a second).
                let now = std::time::Instant::now();
                if now < quiet_until {
                    unsaid += 1;
                    continue;
                }
                quiet_until = now + quiet;
                quiet = (quiet * 2).min(LONGEST_QUIET);
                let more = std::mem::take(&mut unsaid);
                if more > 0 {
                    error!(
                        "NATS: cannot connect to {servers}: {e} ({more} similar errors not shown)"
                    );
                } else {
                    error!("NATS: cannot connect to {servers}: {e}");
                }
            }
            Event::ServerError(e) => error!("NATS: server error: {e}"),
            Event::LameDuckMode => warning!("NATS: the server is entering lame duck mode"),
            Event::Closed => error!("NATS: connection closed"),
            other => debug!("NATS: {other}"),
        }
    }
}

/// Whether NATS subject `filter` (with `*` and `>` wildcards) matches `subject`.
pub(crate) fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for pattern in filter.split('.') {
        match (pattern, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (pattern, Some(token)) if pattern == token => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// Why the stream check failed.
enum StreamCheck {
    /// For good: the stream is missing, or cannot take the records.
    Failed(NatsError),
    /// For now: JetStream did not answer (no quorum, a cluster still
    /// forming, an election) or lacks the nodes for the replicas yet.
    NotYet(NatsError),
}

/// Check the stream (after the client's first connection, if `connected`
/// is given) until JetStream answers; say the outcome.
async fn check_until_ready(
    context: Context,
    sink: NatsSink,
    connected: Option<watch::Receiver<u64>>,
) {
    const FIRST_PAUSE: Duration = Duration::from_secs(1);
    const LONGEST_PAUSE: Duration = Duration::from_secs(30);
    if let Some(mut connected) = connected {
        if connected.changed().await.is_err() {
            return;
        }
    }
    let mut pause = FIRST_PAUSE;
    loop {
        match check_stream(&context, &sink).await {
            Ok(replicas) => {
                info!("NATS: stream {} ready ({replicas} replicas)", sink.stream);
                return;
            }
            Err(StreamCheck::Failed(e)) => {
                error!("{e}: every MESSAGE is answered 0xFF");
                return;
            }
            Err(StreamCheck::NotYet(e)) => {
                error!(
                    "{e}; checking again in {:.0} s (MESSAGEs answered 0xFF meanwhile)",
                    pause.as_secs_f64()
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
    }
}

/// Check that the stream exists (creating it if asked to), captures the
/// subject and keeps message ids longer than a record may be retried;
/// returns its replicas.
async fn check_stream(context: &Context, sink: &NatsSink) -> Result<usize, StreamCheck> {
    use jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
    let error = |why: String| NatsError::Stream {
        stream: sink.stream.clone(),
        why,
    };
    let stream_error = |why: String| StreamCheck::Failed(error(why));
    let config = match context.get_stream(&sink.stream).await {
        Ok(stream) => stream.cached_info().config.clone(),
        // No answer, or "JetStream system temporarily unavailable" (503).
        Err(e)
            if matches!(e.kind(), GetStreamErrorKind::Request)
                || matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.code() == 503) =>
        {
            return Err(StreamCheck::NotYet(error(format!(
                "cannot look it up: {e}"
            ))))
        }
        Err(e) => {
            let missing = matches!(e.kind(), GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND);
            match (missing, sink.create_replicas) {
                (true, Some(replicas)) => {
                    let config = stream::Config {
                        name: sink.stream.clone(),
                        subjects: vec![sink.subject.clone()],
                        storage: stream::StorageType::File,
                        num_replicas: replicas,
                        duplicate_window: Duration::from_secs(120).max(sink.ack_timeout * 2),
                        ..Default::default()
                    };
                    let created = context.create_stream(config).await.map_err(|e| {
                        let error = error(format!("cannot create it: {e}"));
                        match e.kind() {
                            CreateStreamErrorKind::TimedOut
                            | CreateStreamErrorKind::JetStreamUnavailable => {
                                StreamCheck::NotYet(error)
                            }
                            CreateStreamErrorKind::JetStream(j)
                                if j.code() == 503
                                    || j.error_code().0 == INSUFFICIENT_RESOURCES =>
                            {
                                StreamCheck::NotYet(error)
                            }
                            _ => StreamCheck::Failed(error),
                        }
                    })?;
                    info!(
                        "NATS: created stream {} (subject {}, {} replicas)",
                        sink.stream, sink.subject, replicas
                    );
                    created.cached_info().config.clone()
                }
                (true, None) => return Err(stream_error(
                    "it does not exist (create it, or start with --nats-create-stream REPLICAS)"
                        .into(),
                )),
                (false, _) => return Err(stream_error(format!("cannot look it up: {e}"))),
            }
        }
    };
    if !config
        .subjects
        .iter()
        .any(|filter| subject_matches(filter, &sink.subject))
    {
        return Err(stream_error(format!(
            "it does not capture subject {} (its subjects: {})",
            sink.subject,
            config.subjects.join(", ")
        )));
    }
    if config.duplicate_window <= sink.ack_timeout {
        return Err(stream_error(format!(
            "its duplicate window ({:.1} s) must be longer than --nats-ack-timeout ({:.1} s), or a retried record could be stored twice",
            config.duplicate_window.as_secs_f64(),
            sink.ack_timeout.as_secs_f64()
        )));
    }
    Ok(config.num_replicas.max(1))
}

/// One round's attempt at a record.
enum Attempt {
    Sent(PublishAckFuture),
    Done(Outcome),
    /// Not settled; the reason, for the record's failure if this was its last attempt.
    Retry(&'static str),
}

/// Publish a batch and mail its outcomes back.
async fn store(shared: Arc<Shared>, batch: Batch) {
    let Batch {
        reply,
        commit,
        time,
        bytes,
        records,
    } = batch;
    let deadline = Instant::now() + shared.ack_timeout;
    let bytes = Bytes::from(bytes);
    let time = String::from_utf8_lossy(&time).into_owned();
    // A connection's records follow each other: its name is encoded once.
    let mut names: Vec<String> = Vec::new();
    let mut name_of = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        if i == 0 || records[i - 1].connection != record.connection {
            let name = String::from_utf8_lossy(&bytes[record.name.clone()]);
            names.push(encode_name(&name));
        }
        name_of.push(names.len() - 1);
    }
    let message = |i: usize| {
        let record = &records[i];
        PublishMessage::build()
            .payload(bytes.slice(record.payload.clone()))
            .headers(record::headers(&Origin {
                stream: &shared.stream,
                front_end: &shared.front_end,
                connection: record.connection,
                sequence: record.sequence,
                name: &names[name_of[i]],
                time: &time,
            }))
    };
    let outcomes = settle(&shared, records.len(), message, deadline).await;
    reply.stored(Stored { commit, outcomes });
}

/// Publish records `0..count` (`message(i)` builds one) until each is
/// acknowledged, refused, or out of time.
async fn settle(
    shared: &Shared,
    count: usize,
    message: impl Fn(usize) -> PublishMessage,
    deadline: Instant,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; count];
    let mut todo: Vec<usize> = (0..count).collect();
    let mut reasons = vec![""; count];
    let mut connections = shared.connections.clone();
    let mut pause = FIRST_PAUSE;
    loop {
        connections.borrow_and_update();
        let attempt_end = (Instant::now() + shared.attempt_timeout).min(deadline);
        let mut attempts = Vec::with_capacity(todo.len());
        for &i in &todo {
            attempts.push(send(shared, message(i), deadline).await);
        }
        let settled = join_all(attempts.into_iter().map(|attempt| {
            let mut reconnected = connections.clone();
            async move {
                match attempt {
                    Attempt::Sent(ack) => tokio::select! {
                        result = ack.into_future() => classify(result),
                        () = tokio::time::sleep_until(attempt_end) => Attempt::Retry("no acknowledgement"),
                        () = changed(&mut reconnected) => Attempt::Retry("the connection was lost"),
                    },
                    other => other,
                }
            }
        }))
        .await;
        let mut retry = Vec::new();
        for (i, attempt) in todo.iter().copied().zip(settled) {
            match attempt {
                Attempt::Done(outcome) => outcomes[i] = Some(outcome),
                Attempt::Retry(why) => {
                    reasons[i] = why;
                    retry.push(i);
                }
                Attempt::Sent(_) => unreachable!("every sent attempt is awaited"),
            }
        }
        todo = retry;
        let now = Instant::now();
        if todo.is_empty() || now >= deadline {
            break;
        }
        PublishStats::add(&shared.stats.retries, todo.len() as u64);
        // Again after a pause, or at once when the client has reconnected.
        tokio::select! {
            () = tokio::time::sleep(pause.min(deadline - now)) => {}
            () = changed(&mut connections) => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
    let mut stored = 0;
    let mut duplicates = 0;
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .zip(reasons)
        .map(|(outcome, why)| {
            let outcome = outcome.unwrap_or(Outcome::Failed(Failure::NotAcknowledged(why)));
            if let Outcome::Stored { duplicate, .. } = outcome {
                stored += 1;
                duplicates += u64::from(duplicate);
            }
            outcome
        })
        .collect();
    PublishStats::add(&shared.stats.stored, stored);
    PublishStats::add(&shared.stats.duplicates, duplicates);
    PublishStats::add(&shared.stats.failed, count as u64 - stored);
    outcomes
}

/// Wait for the next (re)connection; never, if the client is gone.
async fn changed(connections: &mut watch::Receiver<u64>) {
    if connections.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Hand one record to the client, unless it is not connected (it would
/// only queue it).
async fn send(shared: &Shared, message: PublishMessage, deadline: Instant) -> Attempt {
    if shared.client.connection_state() != State::Connected {
        return Attempt::Retry("not connected to NATS");
    }
    let publish = shared.context.send_publish(shared.subject.clone(), message);
    match tokio::time::timeout_at(deadline, publish).await {
        Ok(Ok(ack)) => Attempt::Sent(ack),
        Ok(Err(e)) => classify(Err(e)),
        Err(_) => Attempt::Retry("the client's queue stayed full"),
    }
}

/// What an acknowledgement (or its failure) means for the record.
fn classify(
    result: Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
) -> Attempt {
    let error = match result {
        Ok(ack) => {
            return Attempt::Done(Outcome::Stored {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            })
        }
        Err(error) => error,
    };
    match error.kind() {
        PublishErrorKind::TimedOut => Attempt::Retry("no acknowledgement"),
        PublishErrorKind::BrokenPipe => Attempt::Retry("the connection was lost"),
        // No responders: no stream leader right now (an election), or no stream.
        PublishErrorKind::StreamNotFound => Attempt::Retry("no responders (no stream leader)"),
        PublishErrorKind::MaxAckPending => Attempt::Retry("too many acknowledgements pending"),
        PublishErrorKind::WrongLastMessageId
        | PublishErrorKind::WrongLastSequence
        | PublishErrorKind::Other => {
            let api = std::error::Error::source(&error)
                .and_then(|source| source.downcast_ref::<jetstream::Error>());
            match api {
                Some(api) if RETRIED_API_ERRORS.contains(&api.error_code().0) => {
                    Attempt::Retry("JetStream was busy with it")
                }
                Some(api) if api.code() == 503 && api.error_code().0 != INSUFFICIENT_RESOURCES => {
                    Attempt::Retry("JetStream was unavailable")
                }
                Some(api) => Attempt::Done(Outcome::Failed(Failure::Refused(api.to_string()))),
                None => Attempt::Done(Outcome::Failed(Failure::Refused(error.to_string()))),
            }
        }
    }
}

/// A random number naming this run of the front end, so that message ids
/// never repeat across restarts; the clock and the PID if the system has no
/// randomness to give.
fn run_id() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        nanos ^ u64::from(std::process::id()).rotate_left(32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_as_nats_matches_them() {
        assert!(subject_matches("msglog", "msglog"));
        assert!(subject_matches("msglog.>", "msglog.a.b"));
        assert!(!subject_matches("msglog.>", "msglog"));
        assert!(subject_matches("msglog.*", "msglog.a"));
        assert!(!subject_matches("msglog.*", "msglog.a.b"));
        assert!(subject_matches(">", "anything.at.all"));
        assert!(!subject_matches("msglog", "msglog.a"));
        assert!(!subject_matches("other", "msglog"));
    }

    #[test]
    fn an_attempt_waits_an_eighth_of_the_deadline_within_bounds() {
        assert_eq!(
            attempt_timeout(Duration::from_secs(20)),
            Duration::from_secs(2)
        );
        assert_eq!(
            attempt_timeout(Duration::from_secs(8)),
            Duration::from_secs(1)
        );
        assert_eq!(
            attempt_timeout(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
    }
}
