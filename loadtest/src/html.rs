//! The HTML report: a self-contained page (inline CSS and SVG, no script, no network) of one
//! or more runs, or of two builds' runs compared.
//!
//! Everything is read from the JSON reports as `serde_json::Value`, so runs already on disk
//! render too, and a field a report lacks (an older ringmcp-load, a scenario that does not
//! measure it) gives a plot that says "not recorded", never an error. Each plot's `<svg>`
//! carries `data-plot` (its name) and `data-points` (the points its lines draw), which the
//! browser check (scripts/report_check.sh) holds against the page's polylines and the JSON.

use crate::compare::Comparison;
use serde_json::Value;
use std::fmt::Write as _;

/// A line's points, `(x, y)`.
type Points = Vec<(f64, f64)>;

/// A run on a page: its label (its file, say) and its report.
pub type Run = (String, Value);

/// One line of a plot, read from a report.
struct Line {
    /// Its legend label.
    name: &'static str,
    /// Its colour on a page of runs (on an A/B page the colour is the side's).
    colour: &'static str,
    /// Its SVG `stroke-dasharray`, which tells the lines apart on an A/B page.
    dash: &'static str,
    /// Its points, or `None` when the report does not carry them.
    read: fn(&Value) -> Option<Points>,
}

/// How a plot's x axis maps values.
#[derive(Clone, Copy, PartialEq)]
enum XAxis {
    /// Linear from the smallest value (or 0) to the largest.
    Linear,
    /// Percentiles on HdrHistogram's log axis: each decade of "distance to 100%" is one step
    /// (0%, 90%, 99%, 99.9%, …).
    Percentile,
}

/// What one plot shows.
struct PlotSpec {
    /// The `data-plot` name.
    name: &'static str,
    /// Its title.
    title: &'static str,
    /// The x axis's label, with its unit.
    x_label: &'static str,
    /// The y axis's label, with its unit.
    y_label: &'static str,
    /// The x axis's mapping.
    x_axis: XAxis,
    /// Its lines.
    lines: &'static [Line],
}

/// The plots of every run, in page order.
const PLOTS: [PlotSpec; 5] = [
    PlotSpec {
        name: "latency-by-second",
        title: "Latency per second of the measured phase (the seconds with an answer)",
        x_label: "second of the measured phase",
        y_label: "latency (ms)",
        x_axis: XAxis::Linear,
        lines: &[
            Line {
                name: "p50",
                colour: "#2a9d4b",
                dash: "",
                read: |r| per_second(r, "p50_ms", true),
            },
            Line {
                name: "p99",
                colour: "#1f5fbf",
                dash: "6 3",
                read: |r| per_second(r, "p99_ms", true),
            },
            Line {
                name: "max",
                colour: "#888888",
                dash: "2 3",
                read: |r| per_second(r, "max_ms", true),
            },
        ],
    },
    PlotSpec {
        name: "latency-distribution",
        title: "Latency distribution (HdrHistogram percentiles; the largest is the run's max)",
        x_label: "percentile",
        y_label: "latency (ms)",
        x_axis: XAxis::Percentile,
        lines: &[Line {
            name: "latency",
            colour: "#1f5fbf",
            dash: "",
            read: |r| pairs(r, "/latency_distribution", "percentile", "ms"),
        }],
    },
    PlotSpec {
        name: "throughput",
        title: "Throughput and errors per second",
        x_label: "second of the measured phase",
        y_label: "per second",
        x_axis: XAxis::Linear,
        lines: &[
            Line {
                name: "answered",
                colour: "#1f5fbf",
                dash: "",
                read: |r| per_second(r, "count", false),
            },
            Line {
                name: "errors",
                colour: "#d62828",
                dash: "6 3",
                read: |r| per_second(r, "errors", false),
            },
        ],
    },
    PlotSpec {
        name: "server-rss",
        title: "Server memory (VmRSS, every 500 ms)",
        x_label: "seconds since the run started",
        y_label: "RSS (MiB)",
        x_axis: XAxis::Linear,
        lines: &[Line {
            name: "server RSS",
            colour: "#7b3fa0",
            dash: "",
            read: rss_mib,
        }],
    },
    PlotSpec {
        name: "connection-ramp",
        title: "Connection ramp (every 100 ms)",
        x_label: "seconds since the first connection attempt",
        y_label: "connections up",
        x_axis: XAxis::Linear,
        lines: &[Line {
            name: "connections up",
            colour: "#e07b00",
            dash: "",
            read: |r| pairs(r, "/connection_ramp", "time_s", "connections_up"),
        }],
    },
];

/// `field` of each second of `latency_by_second` against the second; with `answered_only`,
/// only the seconds in which something was answered (the others have no latency).
fn per_second(report: &Value, field: &str, answered_only: bool) -> Option<Points> {
    (report.get("latency_by_second")?.as_array()?.iter())
        .filter(|s| !answered_only || s.get("count").and_then(Value::as_u64) != Some(0))
        .map(|s| Some((s.get("second")?.as_f64()?, s.get(field)?.as_f64()?)))
        .collect()
}

/// `(x, y)` of each object in the array at `pointer`.
fn pairs(report: &Value, pointer: &str, x: &str, y: &str) -> Option<Points> {
    (report.pointer(pointer)?.as_array()?.iter())
        .map(|p| Some((p.get(x)?.as_f64()?, p.get(y)?.as_f64()?)))
        .collect()
}

/// The server's RSS series, `[seconds, bytes]` pairs, in MiB.
fn rss_mib(report: &Value) -> Option<Points> {
    (report.pointer("/server_rss/series")?.as_array()?.iter())
        .map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()? / 1048576.0)))
        .collect()
}

/// A line as drawn: its legend label and style, and its points.
struct Series {
    label: String,
    colour: &'static str,
    dash: &'static str,
    points: Points,
}

/// The colours of the two sides of an A/B page.
const BASE_COLOUR: &str = "#1f5fbf";
const NEW_COLOUR: &str = "#e07b00";

/// Plot size and margins, in SVG user units (pixels).
const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 34.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 46.0;

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A step of 1, 2 or 5 times a power of ten near `span / 5`.
fn nice_step(span: f64) -> f64 {
    let raw = (span / 5.0).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * power >= raw)
        .unwrap_or(10.0);
    step * power
}

/// A tick label: as many decimals as the step needs.
fn tick_label(value: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{value:.decimals$}")
}

/// The percentile of `x` decades on the percentile axis ("99.9%" for 3).
fn percentile_label(decades: usize) -> String {
    match decades {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        _ => format!("99.{}%", "9".repeat(decades - 2)),
    }
}

/// Where a percentile sits on the percentile axis: decades of its distance to 100%.
fn percentile_position(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).max(1e-12).log10()
}

/// An axis: its range and its ticks, `(value, label)`.
struct Axis {
    low: f64,
    high: f64,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A linear axis from 0 (or below, for negative values) over `values`, ending on a tick.
    fn linear(values: impl Iterator<Item = f64>) -> Axis {
        let (low, high) = values.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
        let step = nice_step(if high > low { high - low } else { 1.0 });
        let low = (low / step).floor() * step;
        let high = ((high / step).ceil() * step).max(low + step);
        let count = ((high - low) / step).round() as usize;
        let ticks = (0..=count)
            .map(|i| {
                let v = low + i as f64 * step;
                (v, tick_label(v, step))
            })
            .collect();
        Axis { low, high, ticks }
    }

    /// The percentile axis up to the decade past the highest position in `positions`.
    fn percentile(positions: impl Iterator<Item = f64>) -> Axis {
        let top = positions.fold(1.0f64, f64::max).ceil() as usize;
        let ticks = (0..=top).map(|d| (d as f64, percentile_label(d))).collect();
        Axis {
            low: 0.0,
            high: top as f64,
            ticks,
        }
    }

    /// The fraction of the axis at which `v` sits.
    fn fraction(&self, v: f64) -> f64 {
        (v - self.low) / (self.high - self.low)
    }
}

/// One plot as an `<svg>` with its title above, or a "not recorded" box when no line has a
/// point.
fn plot(spec: &PlotSpec, series: &[Series]) -> String {
    let mut out = String::new();
    let points: usize = series.iter().map(|s| s.points.len()).sum();
    let _ = write!(
        out,
        "<figure style=\"width:{WIDTH}px\"><figcaption>{}</figcaption>\n<svg data-plot=\"{}\" data-points=\"{points}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">",
        escape(spec.title),
        spec.name
    );
    if points == 0 {
        let _ = write!(
            out,
            "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\"/>\
             <text class=\"missing\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">not recorded</text>\
             </svg></figure>",
            WIDTH - LEFT - RIGHT,
            HEIGHT - TOP - BOTTOM,
            (WIDTH + LEFT - RIGHT) / 2.0,
            (HEIGHT + TOP - BOTTOM) / 2.0
        );
        out.push('\n');
        return out;
    }
    let all = || series.iter().flat_map(|s| s.points.iter());
    let x_axis = match spec.x_axis {
        XAxis::Linear => Axis::linear(all().map(|p| p.0)),
        XAxis::Percentile => Axis::percentile(all().map(|p| percentile_position(p.0))),
    };
    let y_axis = Axis::linear(all().map(|p| p.1));
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |x: f64| {
        let x = match spec.x_axis {
            XAxis::Linear => x,
            XAxis::Percentile => percentile_position(x),
        };
        LEFT + x_axis.fraction(x) * plot_w
    };
    let py = |y: f64| TOP + plot_h - y_axis.fraction(y) * plot_h;
    for (v, label) in &x_axis.ticks {
        let x = LEFT + x_axis.fraction(*v) * plot_w;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            TOP + plot_h,
            TOP + plot_h + 16.0
        );
    }
    for (v, label) in &y_axis.ticks {
        let y = py(*v);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let _ = write!(
        out,
        "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\"/>\
         <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text class=\"axis\" transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0,
        escape(spec.x_label),
        TOP + plot_h / 2.0,
        escape(spec.y_label)
    );
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        let coords: Vec<String> = (s.points.iter())
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"series\" data-series=\"{}\" points=\"{}\" stroke=\"{}\" \
             stroke-dasharray=\"{}\"/>",
            escape(&s.label),
            coords.join(" "),
            s.colour,
            s.dash
        );
    }
    // One legend entry per label: an A/B page draws every run of a side under one label.
    let mut x = LEFT;
    let mut seen: Vec<&str> = Vec::new();
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        if seen.contains(&s.label.as_str()) {
            continue;
        }
        seen.push(&s.label);
        let _ = write!(
            out,
            "<line class=\"key\" x1=\"{x:.1}\" y1=\"16\" x2=\"{:.1}\" y2=\"16\" stroke=\"{}\" \
             stroke-dasharray=\"{}\"/><text class=\"tick\" x=\"{:.1}\" y=\"20\">{}</text>",
            x + 22.0,
            s.colour,
            s.dash,
            x + 27.0,
            escape(&s.label)
        );
        x += 40.0 + 7.0 * s.label.chars().count() as f64;
    }
    out.push_str("</svg></figure>\n");
    out
}

/// The runs of one build on an A/B page (or the one run of a section).
struct Side<'a> {
    /// Its name in the legend.
    name: &'a str,
    /// Its colour.
    colour: &'static str,
    /// Its runs.
    runs: &'a [Run],
}

/// The five plots of `sides` overlaid: with one side, each line in its own colour; with two,
/// each in its side's colour (and its own dash).
fn plots(sides: &[Side]) -> String {
    let mut out = String::from("<div class=\"plots\">\n");
    let single = sides.len() == 1;
    for spec in &PLOTS {
        let mut series = Vec::new();
        for side in sides {
            for (_, report) in side.runs {
                for line in spec.lines {
                    series.push(Series {
                        label: if single {
                            line.name.to_owned()
                        } else {
                            format!("{}: {}", side.name, line.name)
                        },
                        colour: if single { line.colour } else { side.colour },
                        dash: line.dash,
                        points: (line.read)(report).unwrap_or_default(),
                    });
                }
            }
        }
        out.push_str(&plot(spec, &series));
    }
    out.push_str("</div>\n");
    out
}

/// A number from a report at `pointer`, formatted with `decimals`, or "-".
fn figure(report: &Value, pointer: &str, decimals: usize) -> String {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// The headline figures of one run as a table.
fn summary(report: &Value) -> String {
    let errors = match report.get("errors").and_then(Value::as_object) {
        Some(kinds) if !kinds.is_empty() => {
            let list: Vec<String> = kinds.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{} ({})",
                figure(report, "/error_total", 0),
                escape(&list.join(", "))
            )
        }
        _ => figure(report, "/error_total", 0),
    };
    let rows = [
        (
            "connections",
            format!(
                "{} up of {} attempted",
                figure(report, "/connected", 0),
                figure(report, "/attempted", 0)
            ),
        ),
        (
            "rate",
            format!(
                "{}/s achieved, {}/s asked, for {} s",
                figure(report, "/achieved_rate", 0),
                figure(report, "/settings/rate", 0),
                figure(report, "/settings/duration_s", 1)
            ),
        ),
        (
            "latency (ms)",
            format!(
                "p50 {} · p90 {} · p99 {} · p99.9 {} · max {} (n = {})",
                figure(report, "/latency/p50_ms", 3),
                figure(report, "/latency/p90_ms", 3),
                figure(report, "/latency/p99_ms", 3),
                figure(report, "/latency/p999_ms", 3),
                figure(report, "/latency/max_ms", 3),
                figure(report, "/latency/count", 0)
            ),
        ),
        ("errors", errors),
        (
            "server",
            format!(
                "busy {}% of a core · {} bytes of RSS and {} of heap in use per connection",
                figure(report, "/server_busy_percent", 1),
                figure(report, "/server_bytes_per_connection", 0),
                figure(report, "/server_heap_bytes_per_connection", 0)
            ),
        ),
    ];
    let mut out = String::from("<table class=\"summary\">\n");
    for (name, value) in rows {
        let _ = writeln!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    out.push_str("</table>\n");
    out
}

/// The page around `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title>\n<style>{CSS}</style></head>\n<body>\n<h1>{title}</h1>\n{body}</body></html>\n",
        title = escape(title)
    )
}

/// The page's style: plain, printable, no web fonts.
const CSS: &str =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1600px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-top:1px solid #ccc;padding-top:12px}\
table{border-collapse:collapse;margin:8px 0}th,td{padding:3px 10px;text-align:left;\
border-bottom:1px solid #e4e4e4}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.plots{display:flex;flex-wrap:wrap;gap:8px 24px}figure{margin:8px 0}\
figcaption{font-weight:600;margin-bottom:2px}svg{background:#fff}\
.frame{fill:none;stroke:#999}.grid{stroke:#eee}.tick{font-size:11px;fill:#444}\
.axis{font-size:12px;fill:#222}.missing{font-size:16px;fill:#999}\
.series{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}\
.key{stroke-width:2}.slower{color:#b00020;font-weight:600}.faster{color:#1b7f3b;font-weight:600}\
.regression{color:#b00020}.ok{color:#1b7f3b}";

/// A page with one section per run: its headline figures and its five plots. Each run is
/// `(label, report)`, the label naming it (its file, say).
pub fn runs_page(runs: &[Run]) -> String {
    let mut body = String::new();
    for run in runs {
        let (label, report) = run;
        let text = |key: &str| report.get(key).and_then(Value::as_str).unwrap_or("?");
        let _ = writeln!(
            body,
            "<section><h2>{} — {} → {}</h2>",
            escape(label),
            escape(text("scenario")),
            escape(text("target"))
        );
        body.push_str(&summary(report));
        body.push_str(&plots(&[Side {
            name: "",
            colour: "",
            runs: std::slice::from_ref(run),
        }]));
        body.push_str("</section>\n");
    }
    page("ringmcp-load report", &body)
}

/// The A/B page: the verdict table on top, then every plot with both builds' runs overlaid,
/// one colour per side.
pub fn compare_page(base: &[Run], new: &[Run], comparison: &Comparison) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<p class=\"{}\">{}: {} pairs, threshold {:.0}%; errors: base {}, new {}</p>",
        if comparison.regression {
            "regression"
        } else {
            "ok"
        },
        if comparison.regression {
            "REGRESSION"
        } else {
            "no regression detected"
        },
        comparison.pairs,
        comparison.threshold * 100.0,
        comparison.base_errors,
        comparison.new_errors
    );
    body.push_str(
        "<table class=\"verdicts\"><tr><th>metric</th><th>base (median)</th><th>new (median)</th>\
         <th>new / base</th><th>95% interval</th><th>verdict</th></tr>\n",
    );
    for m in &comparison.metrics {
        let interval = match (m.ratio_low, m.ratio_high) {
            (Some(low), Some(high)) => format!("{low:.3} .. {high:.3}"),
            _ => "-".into(),
        };
        let _ = writeln!(
            body,
            "<tr><td>{} ({})</td><td class=\"num\">{:.4}</td><td class=\"num\">{:.4}</td>\
             <td class=\"num\">{:.3}</td><td class=\"num\">{interval}</td>\
             <td class=\"{}\">{}</td></tr>",
            escape(m.metric),
            escape(m.unit),
            m.base_median,
            m.new_median,
            m.ratio,
            m.verdict.label().replace(' ', "-"),
            m.verdict.label()
        );
    }
    body.push_str("</table>\n");
    let sides = [
        Side {
            name: "base",
            colour: BASE_COLOUR,
            runs: base,
        },
        Side {
            name: "new",
            colour: NEW_COLOUR,
            runs: new,
        },
    ];
    for side in &sides {
        let labels: Vec<String> = side.runs.iter().map(|(label, _)| escape(label)).collect();
        let _ = writeln!(
            body,
            "<p><span style=\"color:{}\">■</span> {}: {}</p>",
            side.colour,
            side.name,
            labels.join(", ")
        );
    }
    body.push_str(&plots(&sides));
    page("ringmcp-load A/B comparison", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A report of `seconds` seconds, one error in the last.
    fn report(seconds: usize, target: &str) -> Value {
        let by_second: Vec<Value> = (0..seconds)
            .map(|s| {
                json!({"second": s, "count": 1000, "p50_ms": 0.2, "p99_ms": 1.0 + s as f64,
                       "max_ms": 4.0, "errors": u64::from(s + 1 == seconds)})
            })
            .collect();
        json!({
            "scenario": "ws-mcp",
            "target": target,
            "latency": {"p50_ms": 0.2, "p90_ms": 0.5, "p99_ms": 1.0, "p999_ms": 3.0, "max_ms": 4.0},
            "latency_by_second": by_second,
            "latency_distribution": [
                {"percentile": 0.0, "ms": 0.1}, {"percentile": 50.0, "ms": 0.2},
                {"percentile": 99.0, "ms": 1.0}, {"percentile": 99.9, "ms": 3.0}
            ],
            "server_rss": {"series": [[0.0, 10_000_000], [0.5, 12_000_000]]},
            "connection_ramp": [{"time_s": 0.1, "connections_up": 50}, {"time_s": 0.2, "connections_up": 100}],
            "errors": {"timeout": 1},
            "error_total": 1,
        })
    }

    /// The `data-points` of each plot, by name, in page order.
    fn counts(html: &str) -> Vec<(String, usize)> {
        html.split("<svg data-plot=\"")
            .skip(1)
            .map(|rest| {
                let name = rest.split('"').next().unwrap_or_default().to_owned();
                let points = rest
                    .split("data-points=\"")
                    .nth(1)
                    .and_then(|p| p.split('"').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(usize::MAX);
                (name, points)
            })
            .collect()
    }

    /// The vertices of every polyline in `svg` (up to its end).
    fn vertices(svg: &str) -> usize {
        let svg = svg.split("</svg>").next().unwrap_or_default();
        svg.split(" points=\"")
            .skip(1)
            .map(|p| p.split('"').next().unwrap_or_default().split(' ').count())
            .sum()
    }

    #[test]
    fn every_plot_draws_as_many_points_as_the_report_holds() {
        let html = runs_page(&[("run.json".into(), report(7, "ws://127.0.0.1:1/mcp"))]);
        let want = [
            ("latency-by-second", 21),
            ("latency-distribution", 4),
            ("throughput", 14),
            ("server-rss", 2),
            ("connection-ramp", 2),
        ];
        let got = counts(&html);
        let want: Vec<(String, usize)> = want.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        assert_eq!(got, want);
        for (name, points) in got {
            let at = html.find(&format!("data-plot=\"{name}\"")).unwrap_or(0);
            assert_eq!(vertices(&html[at..]), points, "{name}");
        }
        assert!(html.contains(">99.9%<"), "no percentile tick");
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_report_without_the_plots_data_renders_not_recorded() {
        let html = runs_page(&[("old.json".into(), json!({"scenario": "ws-mcp"}))]);
        let got = counts(&html);
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|(_, n)| *n == 0), "{got:?}");
        assert_eq!(html.matches(">not recorded<").count(), 5);
        // An older report: latencies per second but no p50 or errors.
        let old =
            json!({"latency_by_second": [{"second": 0, "count": 5, "p99_ms": 1.0, "max_ms": 2.0}]});
        let html = runs_page(&[("older.json".into(), old)]);
        let got = counts(&html);
        assert_eq!((got[0].1, got[2].1), (2, 1), "{got:?}");
    }

    #[test]
    fn strings_from_the_report_are_escaped() {
        let target = "ws://127.0.0.1:1/<script>alert('x')</script>&\"";
        let html = runs_page(&[("a<b>.json".into(), report(1, target))]);
        assert!(!html.contains("<script>") && !html.contains("a<b>"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
        assert!(html.contains("a&lt;b&gt;.json"));
    }

    #[test]
    fn an_ab_page_overlays_every_run_of_both_sides_under_the_verdicts() {
        let base = vec![
            ("a1.json".to_owned(), report(3, "ws://127.0.0.1:1/mcp")),
            ("a2.json".to_owned(), report(3, "ws://127.0.0.1:1/mcp")),
        ];
        let new = vec![
            ("b1.json".to_owned(), report(4, "ws://127.0.0.1:1/mcp")),
            ("b2.json".to_owned(), report(4, "ws://127.0.0.1:1/mcp")),
        ];
        let values =
            |runs: &[(String, Value)]| runs.iter().map(|r| r.1.clone()).collect::<Vec<_>>();
        let comparison =
            crate::compare::compare(&values(&base), &values(&new), 0.1).expect("comparison");
        let html = compare_page(&base, &new, &comparison);
        let got = counts(&html);
        assert_eq!(got[0], ("latency-by-second".into(), 3 * (3 + 3 + 4 + 4)));
        assert_eq!(got[1], ("latency-distribution".into(), 16));
        // The verdicts come first, and each side has one colour and one legend entry per line.
        assert!(html.find("<table class=\"verdicts\">") < html.find("<svg"));
        assert!(html.contains(">p99 (ms)<") && html.contains(">slower<"));
        assert_eq!(html.matches(">base: p99</text>").count(), 1);
        assert!(html.matches(&format!("stroke=\"{NEW_COLOUR}\"")).count() > 8);
    }

    #[test]
    fn axes_end_on_round_ticks() {
        let axis = Axis::linear([0.0, 13.7].into_iter());
        assert_eq!((axis.low, axis.high), (0.0, 15.0));
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "5", "10", "15"]);
        let axis = Axis::linear([0.0, 0.037].into_iter());
        assert_eq!((axis.high, axis.ticks[1].1.as_str()), (0.04, "0.01"));
        let axis = Axis::percentile([percentile_position(99.95)].into_iter());
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }
}
