//! The latency distribution for people and tools: HdrHistogram's
//! percentile distribution text (`.hgrm`, what HdrHistogram's plotter and
//! wrk2 read) and an SVG picture of the latency by percentile.
//!
//! Latencies are recorded in microseconds; both outputs show milliseconds,
//! as HdrHistogram's tools do.

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

/// Microseconds per millisecond: the output unit's scaling.
const SCALE: f64 = 1000.0;

/// Percentile steps per halving of the distance to 100 %: HdrHistogram's default.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Significant digits the histograms keep (see `framed::new_histogram`).
const SIGNIFICANT_DIGITS: u32 = 3;

/// One point of the distribution: the value (ms) at or below which
/// `quantile` of the recorded values lie, and how many those are.
struct Point {
    value_ms: f64,
    quantile: f64,
    total_count: u64,
}

fn points(histogram: &Histogram<u64>) -> Vec<Point> {
    let mut total_count = 0;
    histogram
        .iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|step| {
            total_count += step.count_since_last_iteration();
            Point {
                value_ms: step.value_iterated_to() as f64 / SCALE,
                quantile: step.quantile_iterated_to(),
                total_count,
            }
        })
        .collect()
}

/// `histogram` (microseconds) as HdrHistogram's `outputPercentileDistribution`
/// writes it, values in milliseconds.
pub fn hgrm(histogram: &Histogram<u64>) -> String {
    let mut text = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for point in points(histogram) {
        if point.quantile < 1.0 {
            let _ = writeln!(
                text,
                "{:12.3} {:2.12} {:10} {:14.2}",
                point.value_ms,
                point.quantile,
                point.total_count,
                1.0 / (1.0 - point.quantile)
            );
        } else {
            let _ = writeln!(
                text,
                "{:12.3} {:2.12} {:10}",
                point.value_ms, point.quantile, point.total_count
            );
        }
    }
    let sub_buckets = (2 * 10u32.pow(SIGNIFICANT_DIGITS)).next_power_of_two();
    let _ = writeln!(
        text,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        histogram.mean() / SCALE,
        histogram.stdev() / SCALE
    );
    let _ = writeln!(
        text,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        histogram.max() as f64 / SCALE,
        histogram.len()
    );
    let _ = writeln!(
        text,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_buckets
    );
    text
}

/// Write [`hgrm`] to `path`.
pub fn write_hgrm(histogram: &Histogram<u64>, path: &Path) -> Result<(), String> {
    std::fs::write(path, hgrm(histogram))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The percentile axis: 0 at 0 %, 1 at 90 %, 2 at 99 %, 3 at 99.9 %, ...
fn nines(quantile: f64) -> f64 {
    -(1.0 - quantile).max(1e-7).log10()
}

fn percentile_label(nines: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    let decimals = (nines.round() as usize).saturating_sub(2);
    format!("{percent:.decimals$}%")
}

/// Draw the latency by percentile (HdrHistogram's plot: the percentile on
/// a scale of nines, the latency in milliseconds) into an SVG file.
pub fn write_plot(histogram: &Histogram<u64>, title: &str, path: &Path) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let points = points(histogram);
    if points.is_empty() {
        return Err(failed(&"no latency was recorded"));
    }
    // The axis ends at the last percentile short of 100 %, rounded up to
    // whole nines; the maximum (100 %) is drawn there.
    let x_max = points
        .iter()
        .filter(|point| point.quantile < 1.0)
        .map(|point| nines(point.quantile))
        .fold(1.0f64, f64::max)
        .ceil();
    let curve: Vec<(f64, f64)> = points
        .iter()
        .map(|point| (nines(point.quantile).min(x_max), point.value_ms))
        .collect();
    let y_max = (histogram.max() as f64 / SCALE * 1.1).max(0.001);
    let decimals = match y_max {
        y if y >= 10.0 => 0,
        y if y >= 1.0 => 1,
        _ => 3,
    };
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .margin_right(48)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| failed(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(x_max as usize + 1)
        .x_max_light_lines(1)
        .y_max_light_lines(1)
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| format!("{y:.decimals$}"))
        .draw()
        .map_err(|e| failed(&e))?;
    chart
        .draw_series(LineSeries::new(curve, BLUE.stroke_width(2)))
        .map_err(|e| failed(&e))?;
    root.present().map_err(|e| failed(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram() -> Histogram<u64> {
        let mut histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for us in 1..=10_000u64 {
            histogram.record(us).unwrap();
        }
        histogram
    }

    #[test]
    fn the_percentile_distribution_reads_like_hdrhistograms() {
        let text = hgrm(&histogram());
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        // The first value, in milliseconds, at percentile 0.
        assert_eq!(
            lines.next(),
            Some("       0.001 0.000000000000          1           1.00")
        );
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(2)
            .collect();
        // Percentiles and counts only grow; the last row is 100 %, all values, no 1/(1-p).
        let parsed: Vec<(f64, f64, u64)> = rows
            .iter()
            .map(|row| {
                let fields: Vec<&str> = row.split_whitespace().collect();
                (
                    fields[0].parse().unwrap(),
                    fields[1].parse().unwrap(),
                    fields[2].parse().unwrap(),
                )
            })
            .collect();
        assert!(parsed
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2));
        let last = rows.last().unwrap();
        assert_eq!(last.split_whitespace().count(), 3, "{last}");
        assert_eq!(parsed.last().unwrap().1, 1.0);
        assert_eq!(parsed.last().unwrap().2, 10_000);
        assert!(
            text.contains("#[Max     =       10.007, Total count    =        10000]"),
            "{text}"
        );
        assert!(text.contains("SubBuckets     =         2048]"), "{text}");
        // The median is about 5 ms.
        let median = parsed.iter().find(|p| p.1 >= 0.5).unwrap();
        assert!((4.9..=5.1).contains(&median.0), "{median:?}");
    }

    #[test]
    fn the_plot_is_an_svg_with_its_axes() {
        let dir = std::env::temp_dir().join(format!("msglog-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latency.svg");
        write_plot(&histogram(), "a test", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        for text in [
            "a test",
            "percentile",
            "latency (ms)",
            "99%",
            "99.9%",
            "<polyline",
        ] {
            assert!(svg.contains(text), "no {text} in the SVG");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(4.0), "99.99%");
    }
}
