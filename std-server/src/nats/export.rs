//! `export`: a stream read back as `messages.log` lines, `[name]: message\r\n`
//! escaped by the core's `write_record`, in the stream's order, from a
//! sequence or a time, to its end or (`follow`) until SIGINT or SIGTERM.
//! Messages that are not msglog records (no valid `Msglog-Name`, or an
//! empty payload) are skipped and counted, never written.

use std::io::{self, Write};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use msglog_core::write_record;

use super::config::{ExportConfig, ExportStart};
use super::record::name_of;
use super::{connect, NatsError};

/// Bytes of records gathered before they are written.
const WRITE_AT: usize = 64 * 1024;
/// Skipped messages named on stderr, one line each; the rest are counted.
const NAMED_SKIPS: u64 = 10;

/// What an export did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Records written.
    pub records: u64,
    /// Messages skipped: not msglog records.
    pub skipped: u64,
    /// The stream sequence of the last message read.
    pub last_sequence: Option<u64>,
    /// Stopped by SIGINT or SIGTERM (at a record boundary).
    pub interrupted: bool,
}

/// Why an export stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// NATS cannot be reached, refused us, or the stream does not exist.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// Reading the stream failed midway.
    #[error("reading NATS stream {stream} failed: {why}")]
    Read {
        /// The stream.
        stream: String,
        /// What went wrong.
        why: String,
    },
    /// The output cannot be written.
    #[error("writing the export failed: {0}")]
    Output(io::Error),
    /// The runtime could not be started.
    #[error("cannot start the NATS client: {0}")]
    Runtime(io::Error),
}

/// A stream lookup that may work if asked again: no answer, or
/// "JetStream system temporarily unavailable" (503).
fn lookup_may_work(kind: &jetstream::context::GetStreamErrorKind) -> bool {
    use jetstream::context::GetStreamErrorKind;
    match kind {
        GetStreamErrorKind::Request => true,
        GetStreamErrorKind::JetStream(j) => j.code() == 503,
        _ => false,
    }
}

/// The same for creating the consumer.
fn creation_may_work(kind: &jetstream::stream::ConsumerErrorKind) -> bool {
    use jetstream::stream::ConsumerErrorKind;
    match kind {
        ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request => true,
        ConsumerErrorKind::JetStream(j) => j.code() == 503,
        _ => false,
    }
}

/// The pause before asking again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How long `export` asks again when JetStream does not answer.
const LOOKUP_PATIENCE: Duration = Duration::from_secs(60);

/// Export the stream `config` names to `out`; see the module documentation.
pub fn export(config: &ExportConfig, out: impl Write) -> Result<ExportSummary, ExportError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ExportError::Runtime)?;
    runtime.block_on(run(config, out))
}

async fn run(config: &ExportConfig, mut out: impl Write) -> Result<ExportSummary, ExportError> {
    let options = connect::options(&config.connection, "msglog-server export", None).await?;
    let client = connect::connect(&config.connection, options).await?;
    let context = jetstream::new(client);
    let stream_error = |why: String| {
        ExportError::Nats(NatsError::Stream {
            stream: config.stream.clone(),
            why,
        })
    };
    // JetStream may not answer for a while (an election, a quorum being
    // restored): what timed out is asked again, for up to LOOKUP_PATIENCE.
    let give_up = tokio::time::Instant::now() + LOOKUP_PATIENCE;
    let stream = loop {
        match context.get_stream(&config.stream).await {
            Ok(stream) => break stream,
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    return Err(stream_error("it does not exist".into()))
                }
                kind if lookup_may_work(&kind) && tokio::time::Instant::now() < give_up => {
                    warning!(
                        "NATS stream {}: cannot look it up ({e}); asking again",
                        config.stream
                    );
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                _ => return Err(stream_error(format!("cannot look it up: {e}"))),
            },
        }
    };
    let deliver_policy = match config.start {
        ExportStart::First => consumer::DeliverPolicy::All,
        ExportStart::Sequence(start_sequence) => {
            consumer::DeliverPolicy::ByStartSequence { start_sequence }
        }
        ExportStart::Time(at) => consumer::DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::from(at),
        },
    };
    let read_error = |why: String| ExportError::Read {
        stream: config.stream.clone(),
        why,
    };
    let ordered = loop {
        let created = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: config.subject.clone().unwrap_or_default(),
                deliver_policy,
                ..Default::default()
            })
            .await;
        match created {
            Ok(ordered) => break ordered,
            Err(e) if creation_may_work(&e.kind()) && tokio::time::Instant::now() < give_up => {
                warning!(
                    "NATS stream {}: cannot create a consumer ({e}); asking again",
                    config.stream
                );
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => return Err(read_error(format!("cannot create a consumer: {e}"))),
        }
    };
    let mut summary = ExportSummary::default();
    if ordered.cached_info().num_pending == 0 && !config.follow {
        return Ok(summary);
    }
    let mut messages = ordered
        .messages()
        .await
        .map_err(|e| read_error(e.to_string()))?;
    let stop = crate::platform::stop_signal().map_err(ExportError::Runtime)?;
    tokio::pin!(stop);
    let mut buffer = Vec::with_capacity(2 * WRITE_AT);
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            () = &mut stop => None,
        };
        let Some(message) = next else {
            summary.interrupted = true;
            break;
        };
        let message = message.map_err(|e| read_error(e.to_string()))?;
        let info = message.info().map_err(|e| read_error(e.to_string()))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        summary.last_sequence = Some(sequence);
        match name_of(message.headers.as_ref()) {
            Ok(_) if message.payload.is_empty() => {
                skip(&mut summary, sequence, "its payload is empty")
            }
            Ok(name) => {
                // Writing to a Vec cannot fail.
                let _ = write_record(&mut buffer, &name, &message.payload);
                summary.records += 1;
            }
            Err(why) => skip(&mut summary, sequence, &why.to_string()),
        }
        if buffer.len() >= WRITE_AT || pending == 0 {
            out.write_all(&buffer).map_err(ExportError::Output)?;
            buffer.clear();
        }
        if pending == 0 {
            out.flush().map_err(ExportError::Output)?;
            if !config.follow {
                break;
            }
        }
    }
    out.write_all(&buffer)
        .and_then(|()| out.flush())
        .map_err(ExportError::Output)?;
    if summary.skipped > NAMED_SKIPS {
        warning!(
            "{} messages of stream {} were not msglog records and were skipped",
            summary.skipped,
            config.stream
        );
    }
    Ok(summary)
}

fn skip(summary: &mut ExportSummary, sequence: u64, why: &str) {
    summary.skipped += 1;
    if summary.skipped <= NAMED_SKIPS {
        warning!("stream sequence {sequence}: not a msglog record ({why}): skipped");
    }
}
