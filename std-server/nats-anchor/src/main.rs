//! `nats-anchor`: the anchor of the NATS sink's benchmark (scripts/bench.sh).
//! It publishes records shaped as msglog-server's (the same payload size
//! and the same headers: `Nats-Msg-Id`, `Nats-Expected-Stream`, the name,
//! front end, connection, sequence and time) straight into a JetStream
//! stream with the same async-nats client, keeping `--in-flight`
//! acknowledgements outstanding, and reports messages per second and the
//! latency from publish to acknowledgement. What a front end adds (the
//! msglog protocol, the event loops, transactions.log) is the difference.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use async_nats::HeaderMap;
use bytes::Bytes;
use clap::Parser;
use futures_util::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;

/// Publish msglog-shaped records straight into a JetStream stream.
#[derive(Debug, Parser)]
#[command(name = "nats-anchor")]
struct Args {
    /// NATS servers: nats://HOST:PORT[,...].
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The stream (it must exist and capture --subject).
    #[arg(long, default_value = "msglog")]
    stream: String,
    /// The subject.
    #[arg(long, default_value = "msglog")]
    subject: String,
    /// Records in total.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    count: u64,
    /// Payload bytes per record.
    #[arg(short = 's', long, default_value_t = 64)]
    size: usize,
    /// Acknowledgements outstanding at once (msglog-bench -c 50 -w 16: 800).
    #[arg(short = 'w', long, default_value_t = 800)]
    in_flight: usize,
    /// "Connections" the records' headers are spread over.
    #[arg(short = 'c', long, default_value_t = 50)]
    connections: u64,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nats-anchor: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let servers: Vec<&str> = args.nats.split(',').collect();
    let client = async_nats::ConnectOptions::new()
        .client_capacity(16 * 1024)
        .connect(servers.as_slice())
        .await?;
    let context = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(10))
        .max_ack_inflight(1 << 16)
        .backpressure_on_inflight(true)
        .build(client);
    let payload = Bytes::from(vec![b'x'; args.size]);
    let front_end = format!("anchor-{:016x}", std::process::id());
    let time = "2026-11-23T09:01:21.123Z";
    let message = |i: u64| {
        let connection = i % args.connections + 1;
        let sequence = i / args.connections + 1;
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{front_end}.{connection}.{sequence}"),
        );
        headers.insert("Nats-Expected-Stream", args.stream.as_str());
        headers.insert("Msglog-Name", "bench");
        headers.insert("Msglog-Front-End", front_end.as_str());
        headers.insert("Msglog-Connection", connection.to_string());
        headers.insert("Msglog-Sequence", sequence.to_string());
        headers.insert("Msglog-Time", time);
        PublishMessage::build()
            .payload(payload.clone())
            .headers(headers)
    };
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut pending = FuturesUnordered::new();
    let (mut sent, mut acknowledged, mut errors) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let wait = |ack: PublishAckFuture, at: Instant| async move { (ack.await, at) };
    while acknowledged + errors < args.count {
        while sent < args.count && pending.len() < args.in_flight {
            let at = Instant::now();
            let ack = context
                .send_publish(args.subject.clone(), message(sent))
                .await?;
            pending.push(wait(ack, at));
            sent += 1;
        }
        let Some((result, at)) = pending.next().await else {
            break;
        };
        match result {
            Ok(_) => {
                acknowledged += 1;
                latency.saturating_record(at.elapsed().as_micros() as u64);
            }
            Err(e) => {
                errors += 1;
                if errors == 1 {
                    eprintln!("nats-anchor: a publish failed: {e}");
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = acknowledged as f64 / elapsed;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "acknowledged": acknowledged,
                "errors": errors,
                "elapsed_s": elapsed,
                "msgs_per_s": rate,
                "latency_us": {
                    "p50": latency.value_at_quantile(0.5),
                    "p99": latency.value_at_quantile(0.99),
                    "p999": latency.value_at_quantile(0.999),
                    "max": latency.max(),
                },
            })
        );
    } else {
        println!(
            "nats-anchor: {acknowledged} of {} acknowledged ({errors} errors) in {elapsed:.3} s: {rate:.0} msgs/s; latency (us) p50 {}, p99 {}, p99.9 {}, max {}",
            args.count,
            latency.value_at_quantile(0.5),
            latency.value_at_quantile(0.99),
            latency.value_at_quantile(0.999),
            latency.max()
        );
    }
    if errors > 0 {
        return Err(format!("{errors} publishes failed").into());
    }
    Ok(())
}
