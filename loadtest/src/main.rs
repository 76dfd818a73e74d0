//! `ringmcp-load`: the bundled load generator. Thread-per-core on glommio like
//! the server; reuses ringmcp's sans-IO codecs in the client role.
//!
//! Flow: parse and check the command line (loopback targets only), raise the
//! open-files limit, start one pinned executor per shard, each opening its
//! share of connections at the ramp rate; once every shard is ready the
//! measured phase runs on the open-loop schedule; each shard returns its
//! histograms and counters, which the main thread merges into the report.

mod capacity;
mod cli;
mod compare;
mod ctx;
mod failover;
mod html;
mod http;
mod listen;
mod mcp;
mod net;
mod nodes;
mod progress;
mod report;
mod run;
mod schedule;
#[cfg(test)]
mod schema;
mod sender;
mod sse;
mod stats;
mod sys;
mod ws;

use clap::Parser;
use cli::Args;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|first| first == "compare")
    {
        let args = cli::CompareArgs::parse_from(std::env::args_os().skip(1));
        match run_compare(&args) {
            Ok(regression) => std::process::exit(i32::from(regression)),
            Err(e) => {
                eprintln!("ringmcp-load compare: {e}");
                std::process::exit(2);
            }
        }
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|first| first == "report")
    {
        let args = cli::ReportArgs::parse_from(std::env::args_os().skip(1));
        if let Err(e) = run_report(&args) {
            eprintln!("ringmcp-load report: {e}");
            std::process::exit(2);
        }
        return;
    }
    let args = Args::parse();
    match real_main(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("ringmcp-load: {e}");
            std::process::exit(2);
        }
    }
}

/// Reads runs written with --json, each labelled with its path.
fn read_runs(paths: &[std::path::PathBuf]) -> Result<Vec<html::Run>, String> {
    paths
        .iter()
        .map(|path| {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let report =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((path.display().to_string(), report))
        })
        .collect()
}

/// Writes `text` to `path`, naming the file on failure.
fn write_file(path: &std::path::Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Compares the runs on disk and prints the table; `Ok(true)` on a regression.
fn run_compare(args: &cli::CompareArgs) -> Result<bool, String> {
    let (base, new) = (read_runs(&args.base)?, read_runs(&args.new)?);
    let values = |runs: &[html::Run]| -> Vec<serde_json::Value> {
        runs.iter().map(|(_, report)| report.clone()).collect()
    };
    let comparison = compare::compare(&values(&base), &values(&new), args.threshold / 100.0)?;
    print!("{}", compare::render(&comparison));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&comparison).map_err(|e| e.to_string())?;
        write_file(path, &json)?;
    }
    if let Some(path) = &args.report {
        write_file(path, &html::compare_page(&base, &new, &comparison))?;
    }
    Ok(comparison.regression)
}

/// Renders the runs on disk as one HTML page.
fn run_report(args: &cli::ReportArgs) -> Result<(), String> {
    write_file(&args.out, &html::runs_page(&read_runs(&args.runs)?))
}

fn real_main(args: Args) -> Result<i32, String> {
    let (target, server_metrics) = args.targets()?;
    let wants_ws = args.scenario.wants_ws(args.transport);
    match (wants_ws, target.scheme) {
        (true, cli::Scheme::Ws) | (false, cli::Scheme::Http) => {}
        (true, cli::Scheme::Http) => {
            return Err(format!(
                "scenario {} speaks WebSocket: use a ws:// or wss:// target",
                args.scenario.name()
            ))
        }
        (false, cli::Scheme::Ws) => {
            return Err(format!(
                "scenario {} speaks Streamable HTTP: use an http:// or https:// target",
                args.scenario.name()
            ))
        }
    }
    if !args.scenario.speaks(args.protocol) {
        let other = match args.protocol {
            cli::Protocol::Session => cli::Protocol::Stateless,
            cli::Protocol::Stateless => cli::Protocol::Session,
        };
        return Err(format!(
            "ringmcp-load has no MCP {} client for scenario {} (use --protocol {})",
            args.protocol.version(),
            args.scenario.name(),
            other.version()
        ));
    }
    if !(args.duration > 0.0 && args.duration <= 86_400.0) {
        return Err("--duration must be in (0, 86400] seconds".into());
    }
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        return Err("--rate must be a finite number >= 0".into());
    }
    if !(args.patience >= 0.0 && args.patience <= 3_600.0) {
        return Err("--patience must be in [0, 3600] seconds".into());
    }
    if !(0.0..=1.0).contains(&args.slow_share) {
        return Err("--slow-share must be between 0 and 1".into());
    }
    if let Some(bound) = args.find_capacity {
        if !capacity::supports(args.scenario) {
            return Err(format!(
                "--find-capacity drives requests at a rate: use ws-echo, ws-mcp or http-mcp, not {}",
                args.scenario.name()
            ));
        }
        if !(bound > 0.0 && bound.is_finite()) {
            return Err("--find-capacity must be a latency in milliseconds > 0".into());
        }
        if args.rate <= 0.0 {
            return Err("--find-capacity starts probing at --rate, which must be > 0".into());
        }
        if !(args.probe_duration > 0.0 && args.probe_duration <= 3_600.0) {
            return Err("--probe-duration must be in (0, 3600] seconds".into());
        }
        if !(args.capacity_resolution > 0.0 && args.capacity_resolution < 100.0) {
            return Err("--capacity-resolution must be in (0, 100) percent".into());
        }
    }
    let nofile =
        sys::raise_nofile_limit().map_err(|e| format!("cannot raise RLIMIT_NOFILE: {e}"))?;
    let fds_per_conn = if args.get_stream { 2 } else { 1 };
    let needed = (args.connections * fds_per_conn) as u64 + 64;
    if needed > nofile {
        return Err(format!(
            "{} connections need about {needed} file descriptors, but the open-files limit is {nofile}",
            args.connections
        ));
    }

    let shards = if args.shards == 0 {
        ringmcp::shard::allowed_cpus().len().max(1)
    } else {
        args.shards
    };
    let (report, code) = match args.find_capacity {
        Some(bound) => {
            let (mut report, found) = capacity::find(&args, bound, |args| {
                measure(args, &target, &server_metrics, shards)
            })?;
            let code = i32::from(!found.confirmed());
            report.capacity = Some(found);
            (report, code)
        }
        None => (measure(&args, &target, &server_metrics, shards)?, 0),
    };
    print!("{}", report.human());
    if let Some(found) = &report.capacity {
        print!("{}", found.human());
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        write_file(path, &(json + "\n"))?;
    }
    if let Some(path) = &args.report {
        let value = serde_json::to_value(&report).map_err(|e| e.to_string())?;
        let label = (args.json.as_ref()).map_or("this run".into(), |p| p.display().to_string());
        write_file(path, &html::runs_page(&[(label, value)]))?;
    }
    Ok(code)
}

/// One run of `args` against `target` on `shards` load shards: connections up, the measured
/// phase, connections closed; its report.
fn measure(
    args: &Args,
    target: &cli::Target,
    server_metrics: &Option<cli::Target>,
    shards: usize,
) -> Result<report::Report, String> {
    let rss_before = args.server_pid.and_then(sys::rss_bytes);
    let shared = Arc::new(
        run::Shared::new(server_metrics.clone(), listen::Triggers::new(args))
            .with_progress(progress::wanted().then(|| progress::Board::new(shards))),
    );
    let series = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = args.server_pid.map(|pid| {
        let series = Arc::clone(&series);
        let done = Arc::clone(&done);
        let began = Instant::now();
        std::thread::spawn(move || {
            // Bounded by `done`, which is set once the shards are joined.
            while !done.load(Ordering::Acquire) {
                if let (Some(rss), Ok(mut s)) = (sys::rss_bytes(pid), series.lock()) {
                    s.push((began.elapsed().as_secs_f64(), rss));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    });

    let stop_printing = Arc::new(AtomicBool::new(false));
    let printer = shared.progress.is_some().then(|| {
        let shared = Arc::clone(&shared);
        let stop_printing = Arc::clone(&stop_printing);
        let (connections, duration) = (args.connections, Duration::from_secs_f64(args.duration));
        std::thread::spawn(move || {
            if let Some(board) = &shared.progress {
                let stderr = &mut std::io::stderr();
                let start = &shared.start;
                progress::print_until(board, start, &stop_printing, connections, duration, stderr);
            }
        })
    });
    let next_index = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let pool = {
        let args = args.clone();
        let target = target.clone();
        let shared = Arc::clone(&shared);
        ringmcp::shard::pool("ringmcp-load", shards)?
            .on_all_shards(move || async move {
                // The server's receive path: multishot where the kernel has it.
                ringmcp::shard::io::choose_receive(false);
                let shard = next_index.fetch_add(1, Ordering::AcqRel);
                run::run_shard(args, target, shared, shard, shards).await
            })
            .map_err(|e| format!("cannot start the load shards: {e}"))?
    };
    let mut merged: Option<stats::ShardResult> = None;
    for result in pool.join_all() {
        let result = result.map_err(|e| format!("a load shard failed: {e}"))?;
        match &mut merged {
            Some(m) => m.merge(&result),
            None => merged = Some(result),
        }
    }
    let wall = began.elapsed();
    stop_printing.store(true, Ordering::Release);
    if let Some(t) = printer {
        let _ = t.join();
    }
    let rss_after_close = args.server_pid.and_then(|pid| {
        std::thread::sleep(Duration::from_millis(500));
        sys::rss_bytes(pid)
    });
    done.store(true, Ordering::Release);
    if let Some(t) = sampler {
        let _ = t.join();
    }
    let merged = merged.ok_or("no shard ran")?;
    let samples = shared.samples.lock().map(|s| s.clone()).unwrap_or_default();
    let series = series.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(report::Report::build(
        args,
        target,
        shards,
        &merged,
        report::ServerMemory {
            before: rss_before,
            connected: samples.rss_connected,
            end: samples.rss_end,
            after_close: rss_after_close,
            series,
        },
        &samples,
        wall,
    ))
}
