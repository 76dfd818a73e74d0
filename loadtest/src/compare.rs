//! `ringmcp-load compare`: two builds' runs, already on disk, compared pair by pair.
//!
//! The runs come in pairs (base run i and new run i, made one after the other in the same
//! minutes, alternating), so what the machine did meanwhile weighs on both sides of a pair.
//! Per metric, each pair gives the ratio new / base; the effect is the geometric mean of the
//! ratios, with a 95% confidence interval from Student's t over their logarithms (the
//! ratios of a noisy machine are closer to log-normal than normal). A metric is `slower` or
//! `faster` only when the interval excludes "no change" and the effect passes the threshold;
//! otherwise no change is detected. Errors are not a ratio: a new build with errors where the
//! base had none is `slower` whatever the count.
//!
//! Everything here is a function of the JSON reports; reading the files is the caller's.

use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

/// A metric read from one report; lower is better for every one of them.
struct Metric {
    name: &'static str,
    unit: &'static str,
    read: fn(&Value) -> Option<f64>,
}

const METRICS: [Metric; 6] = [
    Metric {
        name: "p50",
        unit: "ms",
        read: |r| r.pointer("/latency/p50_ms")?.as_f64(),
    },
    Metric {
        name: "p99",
        unit: "ms",
        read: |r| r.pointer("/latency/p99_ms")?.as_f64(),
    },
    Metric {
        name: "p99.9",
        unit: "ms",
        read: |r| r.pointer("/latency/p999_ms")?.as_f64(),
    },
    Metric {
        name: "per-second p99, median",
        unit: "ms",
        read: median_second_p99,
    },
    Metric {
        name: "server busy per 1,000 requests/s",
        unit: "% of a core",
        read: busy_per_thousand,
    },
    Metric {
        name: "server bytes per connection",
        unit: "B",
        read: |r| r.get("server_bytes_per_connection")?.as_f64(),
    },
];

fn median_second_p99(report: &Value) -> Option<f64> {
    let mut p99s: Vec<f64> = report
        .get("latency_by_second")?
        .as_array()?
        .iter()
        // A second with no answer (only errors, or the tail after the phase) has no p99.
        .filter(|second| second.get("count").and_then(Value::as_u64) != Some(0))
        .filter_map(|second| second.get("p99_ms")?.as_f64())
        .collect();
    if p99s.is_empty() {
        return None;
    }
    p99s.sort_by(f64::total_cmp);
    Some(p99s[p99s.len() / 2])
}

fn busy_per_thousand(report: &Value) -> Option<f64> {
    let busy = report.get("server_busy_percent")?.as_f64()?;
    let rate = report.get("achieved_rate")?.as_f64()?;
    (rate > 0.0).then(|| busy / rate * 1000.0)
}

fn errors(report: &Value) -> u64 {
    report
        .get("error_total")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// What the comparison says of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse beyond the threshold, and the interval excludes no change.
    Slower,
    /// Better beyond the threshold, and the interval excludes no change.
    Faster,
    /// Neither: the runs cannot tell the builds apart by more than the threshold.
    NoChange,
    /// Fewer than two pairs carry the metric: no interval.
    TooFewPairs,
}

impl Verdict {
    /// Its name in the table and on the HTML page.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Slower => "slower",
            Verdict::Faster => "faster",
            Verdict::NoChange => "no change detected",
            Verdict::TooFewPairs => "too few pairs",
        }
    }
}

/// One metric's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct MetricComparison {
    /// The metric.
    pub metric: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Pairs in which both runs carry it.
    pub pairs: usize,
    /// The median over the base runs.
    pub base_median: f64,
    /// The median over the new runs.
    pub new_median: f64,
    /// new / base, the geometric mean of the pairs' ratios.
    pub ratio: f64,
    /// The 95% confidence interval of `ratio` (absent with fewer than two pairs).
    pub ratio_low: Option<f64>,
    /// Its upper end.
    pub ratio_high: Option<f64>,
    /// The verdict against the threshold.
    pub verdict: Verdict,
}

/// The comparison of two builds' paired runs.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Format version of this JSON.
    pub schema_version: u32,
    /// The threshold, as a fraction (0.1: 10%).
    pub threshold: f64,
    /// The pairs compared.
    pub pairs: usize,
    /// Every metric the runs carry.
    pub metrics: Vec<MetricComparison>,
    /// Errors over all base runs.
    pub base_errors: u64,
    /// Errors over all new runs.
    pub new_errors: u64,
    /// Slower on some metric, or errors the base did not have.
    pub regression: bool,
}

/// Compares paired runs: `base[i]` and `new[i]` were made together. `threshold` is the
/// smallest change that counts, as a fraction.
pub fn compare(base: &[Value], new: &[Value], threshold: f64) -> Result<Comparison, String> {
    if base.is_empty() || base.len() != new.len() {
        return Err(format!(
            "compare needs as many new runs as base runs, at least one each (got {} and {})",
            base.len(),
            new.len()
        ));
    }
    if !(threshold.is_finite() && threshold >= 0.0) {
        return Err("the threshold must be a finite fraction >= 0".into());
    }
    let metrics: Vec<MetricComparison> = METRICS
        .iter()
        .filter_map(|metric| compare_metric(metric, base, new, threshold))
        .collect();
    let base_errors = base.iter().map(errors).sum();
    let new_errors: u64 = new.iter().map(errors).sum();
    let regression = metrics.iter().any(|m| m.verdict == Verdict::Slower)
        || (base_errors == 0 && new_errors > 0);
    Ok(Comparison {
        schema_version: 1,
        threshold,
        pairs: base.len(),
        metrics,
        base_errors,
        new_errors,
        regression,
    })
}

fn compare_metric(
    metric: &Metric,
    base: &[Value],
    new: &[Value],
    threshold: f64,
) -> Option<MetricComparison> {
    let pairs: Vec<(f64, f64)> = base
        .iter()
        .zip(new)
        .filter_map(|(b, n)| Some(((metric.read)(b)?, (metric.read)(n)?)))
        .filter(|(b, n)| *b > 0.0 && *n > 0.0)
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let logs: Vec<f64> = pairs.iter().map(|(b, n)| (n / b).ln()).collect();
    let count = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / count;
    let ratio = mean.exp();
    let (ratio_low, ratio_high, verdict) = if logs.len() < 2 {
        (None, None, Verdict::TooFewPairs)
    } else {
        let variance = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (count - 1.0);
        let half = t95(logs.len() - 1) * (variance / count).sqrt();
        let (low, high) = ((mean - half).exp(), (mean + half).exp());
        let verdict = if low > 1.0 && ratio > 1.0 + threshold {
            Verdict::Slower
        } else if high < 1.0 && ratio < 1.0 / (1.0 + threshold) {
            Verdict::Faster
        } else {
            Verdict::NoChange
        };
        (Some(low), Some(high), verdict)
    };
    Some(MetricComparison {
        metric: metric.name,
        unit: metric.unit,
        pairs: pairs.len(),
        base_median: median(pairs.iter().map(|(b, _)| *b)),
        new_median: median(pairs.iter().map(|(_, n)| *n)),
        ratio,
        ratio_low,
        ratio_high,
        verdict,
    })
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Student's t for a two-sided 95% interval with `df` degrees of freedom.
fn t95(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        // Within 2% of the exact value beyond 30.
        _ => 1.96 + 2.4 / df as f64,
    }
}

/// The comparison as a table for a person.
pub fn render(comparison: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} pairs, threshold {:.0}%: new / base per metric, geometric mean of the pairs with its 95% interval",
        comparison.pairs,
        comparison.threshold * 100.0
    );
    let _ = writeln!(
        out,
        "{:<48} {:>12} {:>12} {:>8} {:>17}  verdict",
        "metric", "base", "new", "new/base", "95% interval"
    );
    for m in &comparison.metrics {
        let interval = match (m.ratio_low, m.ratio_high) {
            (Some(low), Some(high)) => format!("{low:.3} .. {high:.3}"),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<48} {:>12} {:>12} {:>8.3} {:>17}  {}",
            format!("{} ({})", m.metric, m.unit),
            format!("{:.4}", m.base_median),
            format!("{:.4}", m.new_median),
            m.ratio,
            interval,
            m.verdict.label()
        );
    }
    let _ = writeln!(
        out,
        "errors: base {}, new {}",
        comparison.base_errors, comparison.new_errors
    );
    let _ = writeln!(
        out,
        "{}",
        if comparison.regression {
            "REGRESSION"
        } else {
            "no regression detected"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A report with latency percentiles scaled by `factor`.
    fn report(factor: f64, errors: u64) -> Value {
        json!({
            "latency": {"p50_ms": 0.2 * factor, "p99_ms": 1.0 * factor, "p999_ms": 3.0 * factor},
            "latency_by_second": [{"p99_ms": 0.9 * factor}, {"p99_ms": 1.1 * factor}, {"p99_ms": 1.0 * factor}],
            "server_busy_percent": 40.0,
            "achieved_rate": 50_000.0,
            "server_bytes_per_connection": 2_000.0,
            "error_total": errors,
        })
    }

    /// Runs with multiplicative noise: each pair's machine state weighs on both sides.
    fn runs(noise: &[f64], slowdown: f64) -> (Vec<Value>, Vec<Value>) {
        let base = noise.iter().map(|n| report(*n, 0)).collect();
        let new = noise
            .iter()
            .enumerate()
            .map(|(i, n)| report(n * slowdown * if i % 2 == 0 { 1.03 } else { 0.98 }, 0))
            .collect();
        (base, new)
    }

    fn verdict(comparison: &Comparison, metric: &str) -> Verdict {
        comparison
            .metrics
            .iter()
            .find(|m| m.metric == metric)
            .map(|m| m.verdict)
            .unwrap()
    }

    #[test]
    fn a_build_a_third_slower_is_flagged_though_the_machine_moves_by_tens_of_percent() {
        let noise = [1.0, 1.4, 0.8, 1.2, 0.9];
        let (base, new) = runs(&noise, 1.33);
        let c = compare(&base, &new, 0.10).unwrap();
        assert_eq!(verdict(&c, "p99"), Verdict::Slower);
        assert_eq!(
            verdict(&c, "server bytes per connection"),
            Verdict::NoChange
        );
        assert!(c.regression);
        assert!(render(&c).contains("REGRESSION"));
    }

    #[test]
    fn identical_builds_on_a_noisy_machine_show_no_change() {
        let noise = [1.0, 1.4, 0.8, 1.2, 0.9];
        let (base, new) = runs(&noise, 1.0);
        let c = compare(&base, &new, 0.10).unwrap();
        assert!(
            c.metrics.iter().all(|m| m.verdict == Verdict::NoChange),
            "{c:?}"
        );
        assert!(!c.regression);
    }

    #[test]
    fn a_faster_build_is_faster_and_no_regression() {
        let (base, new) = runs(&[1.0, 1.1, 0.9], 0.5);
        let c = compare(&base, &new, 0.10).unwrap();
        assert_eq!(verdict(&c, "p50"), Verdict::Faster);
        assert!(!c.regression);
    }

    #[test]
    fn errors_the_base_did_not_have_are_a_regression_and_one_pair_gives_no_verdict() {
        let c = compare(&[report(1.0, 0)], &[report(1.0, 3)], 0.10).unwrap();
        assert!(c.metrics.iter().all(|m| m.verdict == Verdict::TooFewPairs));
        assert_eq!((c.base_errors, c.new_errors), (0, 3));
        assert!(c.regression);
    }

    #[test]
    fn unpaired_runs_are_refused() {
        assert!(compare(&[report(1.0, 0)], &[], 0.1).is_err());
        assert!(compare(&[], &[], 0.1).is_err());
        assert!(compare(&[report(1.0, 0)], &[report(1.0, 0)], f64::NAN).is_err());
    }
}
