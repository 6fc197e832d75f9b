//! The human table and the JSON object of a run. MB and GB are 10^6 and 10^9 bytes.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::failure::FailureCounts;
use crate::{framed, raw};

/// Messages per second over the message phase.
fn rate(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

fn error_kinds(failures: &FailureCounts) -> Value {
    let kinds: Map<String, Value> = failures
        .iter()
        .map(|(kind, count)| (kind.name().to_owned(), Value::from(count)))
        .collect();
    Value::Object(kinds)
}

/// `1234567` as `1,234,567`.
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn errors_line(failures: &FailureCounts) -> String {
    let total = failures.total();
    if total == 0 {
        return "0".into();
    }
    let kinds: Vec<String> = failures
        .iter()
        .map(|(kind, count)| format!("{} {}", kind.name(), grouped(count)))
        .collect();
    format!(
        "{} failed ({})",
        plural(total, "connection"),
        kinds.join(", ")
    )
}

/// `count` and a noun, singular for one: "1 thread", "1,000 connections".
fn plural(count: u64, one: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{} {one}s", grouped(count))
    }
}

/// The framed run as an aligned table.
pub fn framed_table(plan: &framed::Plan, totals: &framed::RunTotals) -> String {
    let latency = &totals.latency_us;
    let payload = totals.acknowledged.saturating_mul(plan.size as u64);
    let amount = match plan.until {
        framed::Until::Count(n) => format!(
            "{} per connection ({} in all)",
            grouped(n),
            grouped(n.saturating_mul(plan.connections as u64))
        ),
        framed::Until::After(d) => format!("for {:.1} s", d.as_secs_f64()),
    };
    let acknowledged = match totals.expected {
        Some(expected) => format!("{} of {}", grouped(totals.acknowledged), grouped(expected)),
        None => format!(
            "{} of {} sent",
            grouped(totals.acknowledged),
            grouped(totals.sent)
        ),
    };
    let mut errors = errors_line(&totals.failures);
    if totals.unacknowledged() > 0 {
        let _ = write!(
            errors,
            "; {} not acknowledged ({} lost in flight)",
            plural(totals.unacknowledged(), "message"),
            grouped(totals.lost_in_flight)
        );
    }
    let rows = [
        (
            "connections",
            format!(
                "{} ({} authenticated in {:.3} s), {}",
                grouped(plan.connections as u64),
                grouped(totals.authenticated as u64),
                totals.connect_elapsed.as_secs_f64(),
                plural(plan.threads_used() as u64, "thread")
            ),
        ),
        (
            "messages",
            format!("{amount}, {} B, window {}", plan.size, plan.window),
        ),
        ("elapsed", format!("{:.3} s", totals.elapsed.as_secs_f64())),
        ("acknowledged", acknowledged),
        ("errors", errors),
        (
            "throughput",
            format!(
                "{} msgs/s, {:.2} MB/s of payload",
                grouped(rate(totals.acknowledged, totals.elapsed).round() as u64),
                rate(payload, totals.elapsed) / 1e6
            ),
        ),
        (
            "latency (us)",
            format!(
                "p50 {}, p99 {}, p99.9 {}, max {}",
                latency.value_at_quantile(0.50),
                latency.value_at_quantile(0.99),
                latency.value_at_quantile(0.999),
                latency.max()
            ),
        ),
    ];
    let mut text = format!(
        "msglog-bench: framed mode{}, {}\n",
        if plan.tls.is_some() { " over TLS" } else { "" },
        plan.addr
    );
    for (label, value) in rows {
        let _ = writeln!(text, "  {label:<15} {value}");
    }
    if plan.tls.is_some() {
        let _ = writeln!(
            text,
            "  {:<15} {} handshakes ({} resumed, {} full) with the login in {:.3} s: {} handshakes/s",
            "tls",
            grouped(totals.authenticated as u64),
            grouped(totals.resumed as u64),
            grouped(totals.authenticated.saturating_sub(totals.resumed) as u64),
            totals.connect_elapsed.as_secs_f64(),
            grouped(rate(totals.authenticated as u64, totals.connect_elapsed).round() as u64),
        );
    }
    text
}

/// The TLS part of a framed run's JSON (`null` without `--tls`).
fn tls_json(plan: &framed::Plan, totals: &framed::RunTotals) -> Value {
    if plan.tls.is_none() {
        return Value::Null;
    }
    json!({
        "handshakes": totals.authenticated,
        "resumed": totals.resumed,
        "handshakes_per_s": rate(totals.authenticated as u64, totals.connect_elapsed),
    })
}

/// The framed run as one line, as `redis-benchmark -q` reports:
/// `framed 64 B, 50 connections, window 16: 2,450,953 msgs/s, p50 0.313 ms, p99 0.706 ms`.
pub fn framed_line(plan: &framed::Plan, totals: &framed::RunTotals) -> String {
    let latency = &totals.latency_us;
    let ms = |quantile: f64| latency.value_at_quantile(quantile) as f64 / 1000.0;
    let mut line = format!(
        "{}: {}, p50 {:.3} ms, p99 {:.3} ms",
        plot_title(plan),
        throughput(totals),
        ms(0.50),
        ms(0.99),
    );
    if !totals.is_clean() {
        let _ = write!(line, ", {}", errors_line(&totals.failures));
        if totals.unacknowledged() > 0 {
            let _ = write!(
                line,
                ", {} not acknowledged",
                plural(totals.unacknowledged(), "message")
            );
        }
    }
    line
}

/// A framed run's throughput: `2,450,953 msgs/s`.
pub fn throughput(totals: &framed::RunTotals) -> String {
    format!(
        "{} msgs/s",
        grouped(rate(totals.acknowledged, totals.elapsed).round() as u64)
    )
}

/// What a framed run was: `framed 64 B, 50 connections, window 16`.
pub fn plot_title(plan: &framed::Plan) -> String {
    format!(
        "framed {} B, {}, window {}",
        plan.size,
        plural(plan.connections as u64, "connection"),
        plan.window
    )
}

/// The framed run as one JSON object.
pub fn framed_json(plan: &framed::Plan, totals: &framed::RunTotals) -> Value {
    let latency = &totals.latency_us;
    let (messages, duration) = match plan.until {
        framed::Until::Count(n) => (Some(n), None),
        framed::Until::After(d) => (None, Some(d.as_secs_f64())),
    };
    let payload = totals.acknowledged.saturating_mul(plan.size as u64);
    json!({
        "mode": "framed",
        "server": plan.addr.to_string(),
        "connections": plan.connections,
        "authenticated": totals.authenticated,
        "threads": plan.threads_used(),
        "messages_per_connection": messages,
        "duration_s": duration,
        "size": plan.size,
        "window": plan.window,
        "connect_s": totals.connect_elapsed.as_secs_f64(),
        "elapsed_s": totals.elapsed.as_secs_f64(),
        "sent": totals.sent,
        "acknowledged": totals.acknowledged,
        "expected": totals.expected,
        "unacknowledged": totals.unacknowledged(),
        "lost_in_flight": totals.lost_in_flight,
        "errors": totals.failures.total(),
        "error_kinds": error_kinds(&totals.failures),
        "msgs_per_s": rate(totals.acknowledged, totals.elapsed),
        "mb_per_s": rate(payload, totals.elapsed) / 1e6,
        "latency_us": {
            "p50": latency.value_at_quantile(0.50),
            "p99": latency.value_at_quantile(0.99),
            "p999": latency.value_at_quantile(0.999),
            "max": latency.max(),
            "mean": latency.mean(),
        },
        "clean": totals.is_clean(),
        "tls": tls_json(plan, totals),
    })
}

/// The raw run as an aligned table.
pub fn raw_table(plan: &raw::Plan, totals: &raw::RunTotals) -> String {
    let bytes_per_s = rate(totals.sent, totals.elapsed);
    let mut text = format!(
        "msglog-bench: raw mode{}, {}\n",
        if plan.tls.is_some() { " over TLS" } else { "" },
        plan.addr
    );
    let rows = [
        (
            "connections",
            format!(
                "{} ({} completed), {}",
                grouped(plan.connections as u64),
                grouped(totals.completed as u64),
                plural(plan.threads_used() as u64, "thread")
            ),
        ),
        (
            "bytes",
            format!("{} of {}", grouped(totals.sent), grouped(plan.bytes)),
        ),
        ("elapsed", format!("{:.3} s", totals.elapsed.as_secs_f64())),
        ("errors", errors_line(&totals.failures)),
        (
            "throughput",
            format!(
                "{:.1} MB/s ({:.3} GB/s)",
                bytes_per_s / 1e6,
                bytes_per_s / 1e9
            ),
        ),
    ];
    for (label, value) in rows {
        let _ = writeln!(text, "  {label:<15} {value}");
    }
    text
}

/// The raw run as one line (`-q`): `raw, 1 connection: 4.04 GB/s`.
pub fn raw_line(plan: &raw::Plan, totals: &raw::RunTotals) -> String {
    let mut line = format!(
        "raw, {}: {:.2} GB/s",
        plural(plan.connections as u64, "connection"),
        rate(totals.sent, totals.elapsed) / 1e9
    );
    if !totals.is_clean(plan) {
        let _ = write!(line, ", {}", errors_line(&totals.failures));
    }
    line
}

/// The raw run as one JSON object.
pub fn raw_json(plan: &raw::Plan, totals: &raw::RunTotals) -> Value {
    let bytes_per_s = rate(totals.sent, totals.elapsed);
    json!({
        "mode": "raw",
        "server": plan.addr.to_string(),
        "connections": plan.connections,
        "threads": plan.threads_used(),
        "bytes": plan.bytes,
        "sent": totals.sent,
        "completed": totals.completed,
        "errors": totals.failures.total(),
        "error_kinds": error_kinds(&totals.failures),
        "elapsed_s": totals.elapsed.as_secs_f64(),
        "mb_per_s": bytes_per_s / 1e6,
        "gb_per_s": bytes_per_s / 1e9,
        "clean": totals.is_clean(plan),
        "tls": plan.tls.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
