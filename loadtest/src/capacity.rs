//! `--find-capacity P99_MS`: the highest rate at which a request scenario's p99 stays at or
//! below a bound with no errors.
//!
//! Short probing runs rise from `--rate` by doubling until one fails, then bisect between the
//! highest passing and the lowest failing rate until the two are within
//! `--capacity-resolution`; a confirming run at the rate found then lasts `--duration`.
//! [`Search`] makes those decisions from the probes' outcomes and does no I/O; [`find`] runs
//! the probes.
//!
//! Each probe is a whole run of its own: it opens its connections, runs its measured phase
//! and closes them. Keeping the connections open across probes would save the ramp (3 s for
//! 15,000 connections at --ramp 5000), but every connection task of a run is built around one
//! measured phase (one start, one schedule, one close), and a probe that is a plain run
//! measures exactly what `--rate R --duration D` does, so the rate found can be checked with
//! one.
//!
//! A failed probe whose own send lag takes a large part of the bound while the load
//! generator had no time to spare measured the load generator, not the server; one whose
//! server or load generator was kept off its core by other processes measured them. Either
//! is tried again at the same rate (a neighbour's burst passes); if it stays so, the search
//! stops there and says so rather than report a capacity that is ours or the neighbours'.

use crate::cli::{Args, Scenario};
use crate::report::Report;
use serde::Serialize;
use std::fmt::Write;

/// Probes at most: a run from 1,000/s that doubles to 10^9/s and bisects to 0.1% stays within.
const MAX_PROBES: usize = 40;

/// The lowest rate probed on the way down, per second.
const MIN_RATE: f64 = 1.0;

/// A failed probe whose send lag p99 exceeds this share of the bound, with the load
/// generator at least [`LOAD_SATURATED`] busy, was held back by the load generator.
const LAG_SHARE: f64 = 0.5;

/// The load generator's busy share (percent of its cores) from which it had no time to spare.
const LOAD_SATURATED: f64 = 90.0;

/// The share of a probe's measured phase either side's threads waited for their core from
/// which other processes, not the load, set the pace.
const CORE_WAIT_SHARE: f64 = 0.1;

/// Times a load-bound or disturbed probe is run again at the same rate before the search
/// gives up.
const RETRIES: usize = 2;

/// The scenarios a capacity search can drive: requests on a schedule fixed by `--rate`.
pub fn supports(scenario: Scenario) -> bool {
    matches!(
        scenario,
        Scenario::WsEcho | Scenario::WsMcp | Scenario::HttpMcp
    )
}

/// How a probe went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// p99 at or below the bound, no errors.
    Pass,
    /// p99 above the bound, or errors.
    Fail,
    /// Failed with the load generator the bottleneck (saturated): nothing is known about
    /// the server at this rate.
    LoadBound,
    /// Failed while the server or the load generator was kept off its core by other
    /// processes: nothing is known about the server at this rate.
    Disturbed,
}

/// Both sides' state over a probe, to tell the server's failure from others'.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    /// The load generator's send lag p99, ms.
    pub send_lag_p99_ms: f64,
    /// The load generator's busy share, percent of its cores.
    pub load_busy_percent: Option<f64>,
    /// The share of the measured phase the load generator's threads waited for their core.
    pub load_core_wait_share: Option<f64>,
    /// The same for the server's threads.
    pub server_core_wait_share: Option<f64>,
    /// The server's busy share, percent of its cores (`--server-metrics`).
    pub server_busy_percent: Option<f64>,
}

/// Judges a probe: `p99_ms` and `errors` against `bound_ms`. A pass stands whatever the
/// state of either side (the load generator's lateness only adds to the latencies). A
/// failure is the load generator's own when its send lag was over half the bound while it was
/// saturated (a large send lag alone is not enough: over HTTP a late reply delays the
/// connection's next send, so a slow server shows there too); it is disturbed when either
/// side waited for its core a tenth of the phase or more while the server had time to spare
/// (a saturated server's failure is its own: near saturation the kernel's own receive work
/// moves to `ksoftirqd`, which shows as core wait too).
pub fn judge(bound_ms: f64, p99_ms: f64, errors: u64, health: Health) -> Outcome {
    let saturated = |busy: Option<f64>| busy.is_none_or(|busy| busy >= LOAD_SATURATED);
    let waited = |share: Option<f64>| share.is_some_and(|w| w >= CORE_WAIT_SHARE);
    if errors == 0 && p99_ms <= bound_ms {
        Outcome::Pass
    } else if health.send_lag_p99_ms > bound_ms * LAG_SHARE && saturated(health.load_busy_percent) {
        Outcome::LoadBound
    } else if (waited(health.load_core_wait_share) || waited(health.server_core_wait_share))
        && health
            .server_busy_percent
            .is_some_and(|busy| busy < LOAD_SATURATED)
    {
        Outcome::Disturbed
    } else {
        Outcome::Fail
    }
}

/// What the search does next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Probe this rate (per second).
    Probe(f64),
    /// The search is over.
    Done(Verdict),
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// The highest passing rate, with the lowest failing one within the resolution above it.
    Found(f64),
    /// Every probe down to [`MIN_RATE`] failed.
    NoneFound,
    /// The load generator was the bottleneck at `at`, three probes in a row; `passed` is the
    /// highest rate that passed before, a lower bound of the capacity.
    LoadBound { at: f64, passed: Option<f64> },
    /// Other processes held a core at `at`, three probes in a row; `passed` as above.
    Disturbed { at: f64, passed: Option<f64> },
    /// [`MAX_PROBES`] ran out (the outcomes contradicted each other, or the resolution is
    /// very fine); `passed` is the highest passing rate.
    Unsettled { passed: Option<f64> },
    /// Not all connections of the probe at `at` came up: the server refused or dropped
    /// them whatever the rate, so no later probe would measure more ([`find`] decides this,
    /// not [`Search`]).
    SetupFailed { at: f64, passed: Option<f64> },
}

/// The search: an exponential rise (or fall) from the first rate, then a bisection.
#[derive(Debug, Clone)]
pub struct Search {
    start: f64,
    /// Relative width at which bisection stops (0.05 for 5%).
    resolution: f64,
    /// The highest rate that passed.
    passed: Option<f64>,
    /// The lowest rate that failed.
    failed: Option<f64>,
    /// The rate and outcome of the last probe if it was load-bound or disturbed, and how
    /// many in a row were so at that rate.
    retry: Option<(f64, Outcome, usize)>,
    probes: usize,
}

impl Search {
    /// A search whose first probe runs at `start` per second, bisecting to `resolution`.
    pub fn new(start: f64, resolution: f64) -> Search {
        Search {
            start,
            resolution,
            passed: None,
            failed: None,
            retry: None,
            probes: 0,
        }
    }

    /// Takes the outcome of the probe at `rate`.
    pub fn record(&mut self, rate: f64, outcome: Outcome) {
        self.probes += 1;
        match outcome {
            Outcome::Pass => self.passed = Some(self.passed.map_or(rate, |p| p.max(rate))),
            Outcome::Fail => self.failed = Some(self.failed.map_or(rate, |f| f.min(rate))),
            Outcome::LoadBound | Outcome::Disturbed => {
                let tries = match self.retry {
                    Some((at, _, tries)) if at == rate => tries + 1,
                    _ => 1,
                };
                self.retry = Some((rate, outcome, tries));
                return;
            }
        }
        self.retry = None;
    }

    /// What to do next.
    pub fn next(&self) -> Step {
        match self.retry {
            Some((at, outcome, tries)) if tries > RETRIES => {
                let passed = self.passed;
                return Step::Done(match outcome {
                    Outcome::LoadBound => Verdict::LoadBound { at, passed },
                    _ => Verdict::Disturbed { at, passed },
                });
            }
            Some((at, _, _)) if self.probes < MAX_PROBES => return Step::Probe(at),
            _ => {}
        }
        if self.probes >= MAX_PROBES {
            return Step::Done(Verdict::Unsettled {
                passed: self.passed,
            });
        }
        match (self.passed, self.failed) {
            (None, None) => Step::Probe(self.start),
            (Some(passed), None) => Step::Probe(passed * 2.0),
            (None, Some(failed)) if failed / 2.0 < MIN_RATE => Step::Done(Verdict::NoneFound),
            (None, Some(failed)) => Step::Probe(failed / 2.0),
            (Some(passed), Some(failed)) => {
                let mid = ((passed + failed) / 2.0).round();
                if failed <= passed * (1.0 + self.resolution) || mid <= passed || mid >= failed {
                    Step::Done(Verdict::Found(passed))
                } else {
                    Step::Probe(mid)
                }
            }
        }
    }
}

/// What one probe (or the confirming run) measured, as the search saw it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Probe {
    /// The rate asked for, requests per second.
    pub rate: f64,
    /// The measured phase's length, seconds.
    pub duration_s: f64,
    /// Latency p99 over the measured phase, ms (from each request's intended send time).
    pub p99_ms: f64,
    /// Errors of every kind, setup included.
    pub errors: u64,
    /// Successful replies per second of the measured phase.
    pub achieved_rate: f64,
    /// The load generator's own send lag, p99, ms.
    pub send_lag_p99_ms: f64,
    /// The server's busy share over the measured phase, percent of one core
    /// (`--server-metrics`).
    pub server_busy_percent: Option<f64>,
    /// The load generator's busy share, percent of one core.
    pub load_busy_percent: Option<f64>,
    /// Milliseconds the server's threads waited for their core (another process had it).
    pub server_core_wait_ms: Option<f64>,
    /// The same for the load generator's threads.
    pub load_core_wait_ms: Option<f64>,
    /// pass, fail, or load-bound.
    pub outcome: Outcome,
}

impl Probe {
    /// The figures of `report`, a run at `rate`, judged against `bound_ms`.
    pub fn of(report: &Report, rate: f64, duration_s: f64, bound_ms: f64) -> Probe {
        let share = |waited_ms: Option<f64>| waited_ms.map(|ms| ms / 1e3 / duration_s.max(1e-9));
        Probe {
            rate,
            duration_s,
            p99_ms: report.latency.p99_ms,
            errors: report.error_total,
            achieved_rate: report.achieved_rate,
            send_lag_p99_ms: report.send_lag.p99_ms,
            server_busy_percent: report.server_busy_percent,
            load_busy_percent: report.load_busy_percent,
            server_core_wait_ms: report.server_core_wait_ms,
            load_core_wait_ms: report.load_core_wait_ms,
            outcome: judge(
                bound_ms,
                report.latency.p99_ms,
                report.error_total,
                Health {
                    send_lag_p99_ms: report.send_lag.p99_ms,
                    load_busy_percent: report.load_busy_percent,
                    load_core_wait_share: share(report.load_core_wait_ms),
                    server_core_wait_share: share(report.server_core_wait_ms),
                    server_busy_percent: report.server_busy_percent,
                },
            ),
        }
    }
}

/// The result of `--find-capacity` (the `capacity` object of the JSON; the report's other
/// fields are the confirming run's, or without one the last probe's).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Capacity {
    /// The bound on the p99 latency, ms (`--find-capacity`).
    pub p99_bound_ms: f64,
    /// Bisection stopped once the lowest failing rate was within this many percent above the
    /// highest passing one (`--capacity-resolution`).
    pub resolution_percent: f64,
    /// Each probe's measured phase, seconds (`--probe-duration`).
    pub probe_duration_s: f64,
    /// How the search ended: `found`; `none-found` (every probe down to 1/s failed);
    /// `load-bound` (the load generator was the bottleneck at `stopped_at`, three probes in a
    /// row); `disturbed` (other processes held a core at `stopped_at`, three probes in a
    /// row); `unsettled` (the probe budget ran out); `setup-failed` (not every connection of
    /// the probe at `stopped_at` came up). But for `found`, `rate` is only a lower bound.
    pub verdict: &'static str,
    /// The highest rate that passed, requests per second: the capacity when `verdict` is
    /// `found`, else a lower bound; none if no probe passed.
    pub rate: Option<f64>,
    /// The lowest rate that failed, per second, if one did.
    pub lowest_failing_rate: Option<f64>,
    /// The rate whose probes ended the search (`load-bound`, `disturbed`, `setup-failed`).
    pub stopped_at: Option<f64>,
    /// The probes, in the order they ran.
    pub probes: Vec<Probe>,
    /// The confirming run at `rate` for `--duration` (verdict `found` only); its `outcome`
    /// says whether it held the bound.
    pub confirm: Option<Probe>,
}

impl Capacity {
    /// Whether a rate was found and the confirming run held the bound with no errors.
    pub fn confirmed(&self) -> bool {
        self.confirm
            .as_ref()
            .is_some_and(|c| c.outcome == Outcome::Pass)
    }

    /// The summary's capacity lines.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let rate = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.0}/s"));
        let _ = writeln!(
            s,
            "  capacity     p99 <= {} ms with no errors: {} {} (lowest failing {}, resolution {}%, probes of {} s)",
            self.p99_bound_ms,
            self.verdict,
            rate(self.rate),
            rate(self.lowest_failing_rate),
            self.resolution_percent,
            self.probe_duration_s
        );
        let why = match self.verdict {
            "load-bound" => format!(
                "the load generator was the bottleneck (send lag p99 over {:.0}% of the bound while {LOAD_SATURATED:.0}%+ busy) {} times in a row",
                LAG_SHARE * 100.0,
                RETRIES + 1
            ),
            "disturbed" => format!(
                "other processes held a core (a side waited for it {:.0}%+ of the phase) {} times in a row",
                CORE_WAIT_SHARE * 100.0,
                RETRIES + 1
            ),
            _ => "not every connection came up".to_owned(),
        };
        if let Some(at) = self.stopped_at {
            let _ = writeln!(
                s,
                "               stopped at {at:.0}/s: {why}; the server's capacity is not known above {}",
                rate(self.rate),
            );
        }
        let _ = writeln!(
            s,
            "  probe        rate/s   outcome      p99 ms  errors  achieved/s  lag p99 ms  busy server  load  core wait ms server  load"
        );
        let pct = |p: Option<f64>| p.map_or("?".to_owned(), |p| format!("{p:.0}%"));
        let ms = |w: Option<f64>| w.map_or("?".to_owned(), |w| format!("{w:.0}"));
        let named = self
            .probes
            .iter()
            .enumerate()
            .map(|(n, p)| (format!("{}", n + 1), p));
        for (name, p) in named.chain(self.confirm.iter().map(|p| ("confirm".to_owned(), p))) {
            let outcome = match p.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "fail",
                Outcome::LoadBound => "load-bound",
                Outcome::Disturbed => "disturbed",
            };
            let _ = writeln!(
                s,
                "  {name:<9} {:>9.0}   {outcome:<10} {:>8.3} {:>7} {:>11.0} {:>11.3} {:>12} {:>5} {:>19} {:>5}",
                p.rate,
                p.p99_ms,
                p.errors,
                p.achieved_rate,
                p.send_lag_p99_ms,
                pct(p.server_busy_percent),
                pct(p.load_busy_percent),
                ms(p.server_core_wait_ms),
                ms(p.load_core_wait_ms),
            );
        }
        s
    }
}

/// Runs the search: `measure` makes one run of the given arguments and returns its report.
/// Returns the confirming run's report (without one, the last probe's) and the search.
pub fn find(
    args: &Args,
    bound_ms: f64,
    mut measure: impl FnMut(&Args) -> Result<Report, String>,
) -> Result<(Report, Capacity), String> {
    let mut search = Search::new(args.rate, args.capacity_resolution / 100.0);
    let mut probes = Vec::new();
    let mut last = None;
    let verdict = loop {
        let rate = match search.next() {
            Step::Probe(rate) => rate,
            Step::Done(verdict) => break verdict,
        };
        if crate::progress::wanted() {
            eprintln!(
                "probe {}: {rate:.0}/s for {} s",
                probes.len() + 1,
                args.probe_duration
            );
        }
        let probe_args = Args {
            rate,
            duration: args.probe_duration,
            ..args.clone()
        };
        let report = measure(&probe_args)?;
        let probe = Probe::of(&report, rate, args.probe_duration, bound_ms);
        let set_up = report.connected >= args.connections as u64;
        search.record(rate, probe.outcome);
        probes.push(probe);
        last = Some(report);
        if !set_up {
            let passed = (probes.iter())
                .filter(|p| p.outcome == Outcome::Pass)
                .map(|p| p.rate)
                .max_by(f64::total_cmp);
            break Verdict::SetupFailed { at: rate, passed };
        }
    };
    let lowest_failing_rate = (probes.iter())
        .filter(|p| p.outcome == Outcome::Fail)
        .map(|p| p.rate)
        .min_by(f64::total_cmp);
    let (name, rate, stopped_at) = match verdict {
        Verdict::Found(rate) => ("found", Some(rate), None),
        Verdict::NoneFound => ("none-found", None, None),
        Verdict::LoadBound { at, passed } => ("load-bound", passed, Some(at)),
        Verdict::Disturbed { at, passed } => ("disturbed", passed, Some(at)),
        Verdict::Unsettled { passed } => ("unsettled", passed, None),
        Verdict::SetupFailed { at, passed } => ("setup-failed", passed, Some(at)),
    };
    let (report, confirm) = match verdict {
        Verdict::Found(rate) => {
            if crate::progress::wanted() {
                eprintln!("confirming: {rate:.0}/s for {} s", args.duration);
            }
            let report = measure(&Args {
                rate,
                ..args.clone()
            })?;
            let confirm = Probe::of(&report, rate, args.duration, bound_ms);
            (report, Some(confirm))
        }
        _ => (last.ok_or("no probe ran")?, None),
    };
    let capacity = Capacity {
        p99_bound_ms: bound_ms,
        resolution_percent: args.capacity_resolution,
        probe_duration_s: args.probe_duration,
        verdict: name,
        rate,
        lowest_failing_rate,
        stopped_at,
        probes,
        confirm,
    };
    Ok((report, capacity))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a server whose p99 passes up to `capacity` per second, with
    /// the load generator the bottleneck from `load_limit`; the rates probed and the verdict.
    fn search(start: f64, capacity: f64, load_limit: f64) -> (Vec<f64>, Verdict) {
        let mut s = Search::new(start, 0.05);
        let mut rates = Vec::new();
        loop {
            match s.next() {
                Step::Done(v) => return (rates, v),
                Step::Probe(rate) => {
                    rates.push(rate);
                    let outcome = if rate >= load_limit {
                        Outcome::LoadBound
                    } else if rate <= capacity {
                        Outcome::Pass
                    } else {
                        Outcome::Fail
                    };
                    s.record(rate, outcome);
                }
            }
        }
    }

    #[test]
    fn rises_by_doubling_then_bisects_to_the_resolution() {
        let (rates, verdict) = search(10_000.0, 61_000.0, f64::INFINITY);
        assert_eq!(
            rates,
            [10_000.0, 20_000.0, 40_000.0, 80_000.0, 60_000.0, 70_000.0, 65_000.0, 62_500.0]
        );
        // 62,500 failed, 60,000 passed: within 5%.
        assert_eq!(verdict, Verdict::Found(60_000.0));
    }

    #[test]
    fn falls_by_halving_when_the_first_probe_fails() {
        let (rates, verdict) = search(10_000.0, 3_000.0, f64::INFINITY);
        assert_eq!(rates[..3], [10_000.0, 5_000.0, 2_500.0]);
        let Verdict::Found(found) = verdict else {
            panic!("{verdict:?}");
        };
        assert!((2_850.0..=3_000.0).contains(&found), "{found}");
        // Nothing passes: down to 1/s, then no capacity.
        let (rates, verdict) = search(1_000.0, 0.0, f64::INFINITY);
        assert_eq!(verdict, Verdict::NoneFound);
        assert_eq!(rates.last().copied(), Some(1_000.0 / 512.0));
    }

    #[test]
    fn a_load_bound_probe_is_tried_again_then_ends_the_search_without_a_capacity() {
        let (rates, verdict) = search(10_000.0, 1e9, 50_000.0);
        assert_eq!(
            rates,
            [10_000.0, 20_000.0, 40_000.0, 80_000.0, 80_000.0, 80_000.0]
        );
        assert_eq!(
            verdict,
            Verdict::LoadBound {
                at: 80_000.0,
                passed: Some(40_000.0)
            }
        );
    }

    #[test]
    fn a_load_bound_probe_that_clears_on_retry_counts_as_what_it_then_measured() {
        let mut s = Search::new(10_000.0, 0.05);
        s.record(10_000.0, Outcome::Pass);
        s.record(20_000.0, Outcome::LoadBound);
        assert_eq!(s.next(), Step::Probe(20_000.0));
        s.record(20_000.0, Outcome::LoadBound);
        assert_eq!(s.next(), Step::Probe(20_000.0));
        s.record(20_000.0, Outcome::Fail);
        assert_eq!(s.next(), Step::Probe(15_000.0));
        // A later load-bound or disturbed probe starts its own count, and the last one names
        // the verdict.
        s.record(15_000.0, Outcome::LoadBound);
        s.record(15_000.0, Outcome::Disturbed);
        assert_eq!(s.next(), Step::Probe(15_000.0));
        s.record(15_000.0, Outcome::Disturbed);
        assert_eq!(
            s.next(),
            Step::Done(Verdict::Disturbed {
                at: 15_000.0,
                passed: Some(10_000.0)
            })
        );
    }

    #[test]
    fn the_probe_budget_bounds_a_search() {
        // Every probe passes and the load generator never tires: doubling stops at the budget.
        let (rates, verdict) = search(1.0, f64::INFINITY, f64::INFINITY);
        assert_eq!(rates.len(), MAX_PROBES);
        assert!(matches!(verdict, Verdict::Unsettled { passed: Some(_) }));
    }

    #[test]
    fn judging_a_probe() {
        let load = |lag: f64, busy: f64, waited: f64| Health {
            send_lag_p99_ms: lag,
            load_busy_percent: Some(busy),
            load_core_wait_share: Some(waited),
            server_core_wait_share: Some(0.0),
            server_busy_percent: Some(50.0),
        };
        let idle = load(0.1, 50.0, 0.0);
        // Within the bound, no errors.
        assert_eq!(judge(5.0, 4.9, 0, idle), Outcome::Pass);
        assert_eq!(judge(5.0, 5.0, 0, idle), Outcome::Pass);
        // Over the bound, or any error.
        assert_eq!(judge(5.0, 5.1, 0, idle), Outcome::Fail);
        assert_eq!(judge(5.0, 1.0, 1, idle), Outcome::Fail);
        // A large send lag from a server that pushes back (the load generator with time to
        // spare, on its core) is the server's.
        assert_eq!(judge(5.0, 30.0, 0, load(20.0, 60.0, 0.05)), Outcome::Fail);
        // A large send lag from a saturated load generator is its own.
        let saturated = load(20.0, 97.0, 0.0);
        assert_eq!(judge(5.0, 30.0, 0, saturated), Outcome::LoadBound);
        assert_eq!(judge(5.0, 6.0, 0, load(2.6, 95.0, 0.0)), Outcome::LoadBound);
        assert_eq!(judge(5.0, 6.0, 0, load(2.4, 95.0, 0.0)), Outcome::Fail);
        // Either side kept off its core a tenth of the phase: disturbed.
        assert_eq!(
            judge(5.0, 30.0, 0, load(20.0, 60.0, 0.3)),
            Outcome::Disturbed
        );
        let server_waited = Health {
            server_core_wait_share: Some(0.1),
            ..idle
        };
        assert_eq!(judge(5.0, 9.0, 0, server_waited), Outcome::Disturbed);
        // Within the bound in spite of it all: a pass.
        assert_eq!(judge(5.0, 4.0, 0, load(2.6, 95.0, 0.3)), Outcome::Pass);
        assert_eq!(judge(5.0, 4.0, 0, server_waited), Outcome::Pass);
        // A saturated server's failure is its own, whatever waited (or when its busy share
        // is unknown).
        for busy in [Some(92.0), None] {
            let server_saturated = Health {
                server_busy_percent: busy,
                ..server_waited
            };
            assert_eq!(judge(5.0, 900.0, 0, server_saturated), Outcome::Fail);
        }
    }

    #[test]
    fn only_request_scenarios_are_searched() {
        assert!(supports(Scenario::WsMcp) && supports(Scenario::HttpMcp));
        assert!(supports(Scenario::WsEcho));
        assert!(!supports(Scenario::IdleHold) && !supports(Scenario::SseFanout));
        assert!(!supports(Scenario::Listen) && !supports(Scenario::SlowReaders));
    }
}
