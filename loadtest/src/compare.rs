//! `ringmcp-load compare`: two builds' runs, already on disk, compared pair by pair.
//!
//! The runs come in pairs (base run i and new run i, made one after the other in the same
//! minutes, alternating), so what the machine did meanwhile weighs on both sides of a pair.
//! Per metric, each pair gives the ratio new / base; the effect is the geometric mean of the
//! ratios, with a confidence interval from Student's t over their logarithms (the ratios of a
//! noisy machine are closer to log-normal than normal). The intervals hold together: each is
//! at 1 − 5%/m for the m metrics compared (Bonferroni), so the chance that any of them misses
//! its true ratio is at most 5%. A metric is `slower` (or `faster`) only when its whole
//! interval lies past the threshold: a regression is reported when the runs show it is at
//! least that large, which keeps two identical builds on a noisy machine from being told
//! apart by chance. An interval that excludes "no change" but reaches inside the threshold
//! is reported as such, and does not fail the comparison. Errors are not a ratio: a new
//! build with errors where the base had none is a regression whatever the count.
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

const METRICS: [Metric; 7] = [
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
    Metric {
        name: "server heap in use per connection",
        unit: "B",
        read: |r| r.get("server_heap_bytes_per_connection")?.as_f64(),
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

/// Not for idle-hold: it sends no requests (its "rate" counts the sessions it set up), so its
/// busy share is the server's housekeeping and the metrics scrapes' own work, which moves with
/// the heap's layout (glibc's count walks its free chunks: 1-3 ms a scrape at 15,000
/// sessions), not a cost per request.
fn busy_per_thousand(report: &Value) -> Option<f64> {
    if report.get("scenario")?.as_str()? == "idle-hold" {
        return None;
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse by more than the threshold: the whole interval lies above 1 + threshold.
    Slower,
    /// Worse (the interval lies above 1), but not surely by the threshold.
    SlowerWithinThreshold,
    /// Better by more than the threshold: the whole interval lies below 1 / (1 + threshold).
    Faster,
    /// Better (the interval lies below 1), but not surely by the threshold.
    FasterWithinThreshold,
    /// The interval holds 1: the runs cannot tell the builds apart.
    NoChange,
    /// Fewer than two pairs carry the metric: no interval.
    TooFewPairs,
}

impl Verdict {
    /// Its name in the table and on the HTML page.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Slower => "slower",
            Verdict::SlowerWithinThreshold => "slower, not surely past the threshold",
            Verdict::Faster => "faster",
            Verdict::FasterWithinThreshold => "faster, not surely past the threshold",
            Verdict::NoChange => "no change detected",
            Verdict::TooFewPairs => "too few pairs",
        }
    }

    /// The verdict of an interval `[low, high]` of new / base against `threshold`.
    fn of(low: f64, high: f64, threshold: f64) -> Verdict {
        if low > 1.0 + threshold {
            Verdict::Slower
        } else if low > 1.0 {
            Verdict::SlowerWithinThreshold
        } else if high < 1.0 / (1.0 + threshold) {
            Verdict::Faster
        } else if high < 1.0 {
            Verdict::FasterWithinThreshold
        } else {
            Verdict::NoChange
        }
    }
}

/// One metric's comparison.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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
    /// The lower end of the confidence interval of `ratio`, at `confidence` (absent with
    /// fewer than two pairs).
    pub ratio_low: Option<f64>,
    /// The interval's upper end.
    pub ratio_high: Option<f64>,
    /// The verdict against the threshold.
    pub verdict: Verdict,
}

/// The comparison of two builds' paired runs.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Comparison {
    /// Format version of this JSON.
    pub schema_version: u32,
    /// The threshold, as a fraction (0.1: 10%).
    pub threshold: f64,
    /// The confidence of each metric's interval, as a fraction: 1 − 0.05 / the number of
    /// metrics compared, so all the intervals hold together with 95% confidence.
    pub confidence: f64,
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
    let carried: Vec<&Metric> = METRICS
        .iter()
        .filter(|metric| !pairs_of(metric, base, new).is_empty())
        .collect();
    let confidence = 1.0 - FAMILY_ERROR / carried.len().max(1) as f64;
    let metrics: Vec<MetricComparison> = carried
        .into_iter()
        .map(|metric| compare_metric(metric, base, new, threshold, confidence))
        .collect();
    let base_errors = base.iter().map(errors).sum();
    let new_errors: u64 = new.iter().map(errors).sum();
    let regression = metrics.iter().any(|m| m.verdict == Verdict::Slower)
        || (base_errors == 0 && new_errors > 0);
    Ok(Comparison {
        schema_version: 2,
        threshold,
        confidence,
        pairs: base.len(),
        metrics,
        base_errors,
        new_errors,
        regression,
    })
}

/// The chance, over all the metrics compared, that some interval misses its true ratio.
const FAMILY_ERROR: f64 = 0.05;

/// The pairs in which both runs carry `metric` (above zero: a ratio needs it).
fn pairs_of(metric: &Metric, base: &[Value], new: &[Value]) -> Vec<(f64, f64)> {
    base.iter()
        .zip(new)
        .filter_map(|(b, n)| Some(((metric.read)(b)?, (metric.read)(n)?)))
        .filter(|(b, n)| *b > 0.0 && *n > 0.0)
        .collect()
}

/// One metric's comparison over its pairs (at least one), with an interval at `confidence`.
fn compare_metric(
    metric: &Metric,
    base: &[Value],
    new: &[Value],
    threshold: f64,
    confidence: f64,
) -> MetricComparison {
    let pairs = pairs_of(metric, base, new);
    let logs: Vec<f64> = pairs.iter().map(|(b, n)| (n / b).ln()).collect();
    let count = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / count;
    let ratio = mean.exp();
    let (ratio_low, ratio_high, verdict) = if logs.len() < 2 {
        (None, None, Verdict::TooFewPairs)
    } else {
        let variance = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (count - 1.0);
        let half = student_t(logs.len() - 1, confidence) * (variance / count).sqrt();
        let (low, high) = ((mean - half).exp(), (mean + half).exp());
        (Some(low), Some(high), Verdict::of(low, high, threshold))
    };
    MetricComparison {
        metric: metric.name,
        unit: metric.unit,
        pairs: pairs.len(),
        base_median: median(pairs.iter().map(|(b, _)| *b)),
        new_median: median(pairs.iter().map(|(_, n)| *n)),
        ratio,
        ratio_low,
        ratio_high,
        verdict,
    }
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

/// Student's t for a two-sided interval at `confidence` with `df` (at least 1) degrees of
/// freedom.
fn student_t(df: usize, confidence: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    StudentsT::new(0.0, 1.0, df as f64)
        .map(|t| t.inverse_cdf(1.0 - (1.0 - confidence) / 2.0))
        .unwrap_or(f64::INFINITY)
}

/// A ratio in three decimals, or in scientific notation when it is far from 1 (the interval
/// of two or three noisy pairs can span orders of magnitude).
fn ratio_text(ratio: f64) -> String {
    if (0.001..1000.0).contains(&ratio) {
        format!("{ratio:.3}")
    } else {
        format!("{ratio:.1e}")
    }
}

/// The comparison as a table for a person.
pub fn render(comparison: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} pairs, threshold {:.0}%: new / base per metric, geometric mean of the pairs with its interval",
        comparison.pairs,
        comparison.threshold * 100.0
    );
    let _ = writeln!(
        out,
        "(each interval at {:.2}%, so that all hold together at 95%)",
        comparison.confidence * 100.0
    );
    let _ = writeln!(
        out,
        "{:<48} {:>12} {:>12} {:>8} {:>17}  verdict",
        "metric", "base", "new", "new/base", "interval"
    );
    for m in &comparison.metrics {
        let interval = match (m.ratio_low, m.ratio_high) {
            (Some(low), Some(high)) => format!("{} .. {}", ratio_text(low), ratio_text(high)),
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
            "scenario": "ws-mcp",
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
    fn an_idle_hold_has_no_busy_per_request() {
        // Its busy share doubling is housekeeping, not a slower request: not compared.
        let idle = |busy: f64| {
            let mut r = report(1.0, 0);
            r["scenario"] = json!("idle-hold");
            r["server_busy_percent"] = json!(busy);
            r
        };
        let (base, new) = (vec![idle(0.08); 3], vec![idle(0.16); 3]);
        let c = compare(&base, &new, 0.10).unwrap();
        assert!(
            c.metrics
                .iter()
                .all(|m| !m.metric.starts_with("server busy")),
            "{c:?}"
        );
        assert!(!c.regression);
        // The same figures from a load scenario are a regression.
        let load = |busy: f64| {
            let mut r = idle(busy);
            r["scenario"] = json!("http-mcp");
            r
        };
        let (base, new) = (vec![load(0.08); 3], vec![load(0.16); 3]);
        assert!(compare(&base, &new, 0.10).unwrap().regression);
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
    fn tails_higher_in_every_pair_by_chance_are_no_regression() {
        // Identical builds, p99 of four short runs on a busy machine: the new side happened
        // to be higher each time, ×1.25 to ×2.2. This metric's 95% interval starts at 1.08:
        // it excludes 1, which was enough for `slower` once, but not the 10% threshold.
        let base: Vec<Value> = [2.0, 4.0, 3.0, 1.0]
            .iter()
            .map(|p| json!({"latency": {"p99_ms": p}}))
            .collect();
        let new: Vec<Value> = [2.5, 5.6, 5.7, 2.2]
            .iter()
            .map(|p| json!({"latency": {"p99_ms": p}}))
            .collect();
        let c = compare(&base, &new, 0.10).unwrap();
        assert_eq!(verdict(&c, "p99"), Verdict::SlowerWithinThreshold);
        assert!(!c.regression);
    }

    #[test]
    fn one_metric_gets_the_whole_confidence_and_six_share_it() {
        let one = compare(
            &[json!({"latency": {"p99_ms": 1.0}})],
            &[json!({"latency": {"p99_ms": 1.0}})],
            0.1,
        )
        .unwrap();
        assert!((one.confidence - 0.95).abs() < 1e-12);
        let (base, new) = runs(&[1.0, 1.1], 1.0);
        let six = compare(&base, &new, 0.1).unwrap();
        assert_eq!(six.metrics.len(), 6);
        assert!((six.confidence - (1.0 - 0.05 / 6.0)).abs() < 1e-12);
        // Student's t at 95% with 4 degrees of freedom is 2.776.
        assert!((student_t(4, 0.95) - 2.776).abs() < 1e-3);
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
