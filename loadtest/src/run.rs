//! One shard's run: open its share of connections at the ramp rate, wait for
//! every shard (a cross-thread barrier on the setup path only), run the
//! measured phase, and hand the shard's results back.

use crate::cli::{Args, Scenario, Target};
use crate::ctx::Ctx;
use crate::listen::{self, Triggers};
use crate::report::ServerHeap;
use crate::stats::ShardResult;
use crate::sys::ServerGauges;
use crate::{http, net, sse, sys, ws};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Time from the barrier to the first intended send: every connection task wakes and arms its
/// first send in it (15,000 wake-ups take 20-30 ms on one core; with 20 ms of lead the first
/// second's p99 was 20-35 ms).
const START_LEAD: Duration = Duration::from_millis(250);

/// State every shard sees (setup and phase points only, never per request).
#[derive(Debug, Default)]
pub struct Shared {
    /// Shard 0 has read the server's heap before any connection opened (see
    /// [`take_heap_baseline`]).
    heap_baseline_taken: AtomicBool,
    /// Shards that finished opening their connections.
    arrived: AtomicUsize,
    /// The measured phase's start, set by the last shard to arrive.
    pub start: OnceLock<Instant>,
    /// Server samples at phase points.
    pub samples: Mutex<PhaseSamples>,
    /// The server's metrics endpoint (`--server-metrics`).
    server_metrics: Option<Target>,
    /// listen: when each change's trigger went out.
    triggers: Triggers,
    /// Live progress: each shard's counters, once a second (when stderr is a terminal).
    pub progress: Option<crate::progress::Board>,
}

impl Shared {
    /// Shared state for a run that reads the server's busy time from `server_metrics` (and
    /// for listen, sends `triggers`).
    pub fn new(server_metrics: Option<Target>, triggers: Triggers) -> Shared {
        Shared {
            server_metrics,
            triggers,
            ..Shared::default()
        }
    }

    /// The same, publishing each shard's progress to `board`.
    pub fn with_progress(self, board: Option<crate::progress::Board>) -> Shared {
        Shared {
            progress: board,
            ..self
        }
    }
}

/// Server memory and CPU at the phase points.
#[derive(Debug, Default, Clone)]
pub struct PhaseSamples {
    /// Server RSS when every connection was up.
    pub rss_connected: Option<u64>,
    /// Server RSS at the end of the measured phase.
    pub rss_end: Option<u64>,
    /// Server CPU seconds at the start of the measured phase.
    pub server_cpu_start: Option<f64>,
    /// Server CPU seconds at the end of the measured phase.
    pub server_cpu_end: Option<f64>,
    /// Our CPU seconds at the start of the measured phase.
    pub own_cpu_start: f64,
    /// Our CPU seconds at the end of the measured phase.
    pub own_cpu_end: f64,
    /// The server's busy seconds (`--server-metrics`) at the start of the measured phase.
    pub server_busy_start: Option<f64>,
    /// The server's busy seconds at the end of the measured phase.
    pub server_busy_end: Option<f64>,
    /// The server's heap in use (`--server-metrics`) at the phase points.
    pub server_heap: ServerHeap,
    /// The server's threads' time waiting for their core ([`sys::core_wait_seconds`]) at the
    /// start of the measured phase.
    pub server_core_wait_start: Option<f64>,
    /// The same at the end of the measured phase.
    pub server_core_wait_end: Option<f64>,
    /// Our threads' time waiting for their core at the start of the measured phase.
    pub own_core_wait_start: Option<f64>,
    /// The same at the end of the measured phase.
    pub own_core_wait_end: Option<f64>,
    /// When the measured phase started.
    pub start: Option<Instant>,
}

/// Global indices of the connections shard `shard` of `shards` runs.
pub fn shard_connections(total: usize, shard: usize, shards: usize) -> Vec<usize> {
    (shard..total).step_by(shards.max(1)).collect()
}

/// Runs shard `shard`'s part of the load; returns its results.
pub async fn run_shard(
    args: Args,
    target: Target,
    shared: Arc<Shared>,
    shard: usize,
    shards: usize,
) -> ShardResult {
    take_heap_baseline(&shared, shard).await;
    let mine = shard_connections(args.connections, shard, shards);
    fastrand::seed(args.seed.wrapping_add(shard as u64));
    let ctx = Rc::new(Ctx::new(args, target, mine.len()));
    let plan = Rc::new(sse::Plan::new(&ctx, &mine));
    let opened_at = Instant::now();
    ctx.stats.begin_ramp(opened_at);
    let per_shard_ramp = ctx.args.ramp / shards as f64;
    let publisher = shared.progress.is_some().then(|| {
        let ctx = Rc::clone(&ctx);
        let shared = Arc::clone(&shared);
        glommio::spawn_local(async move {
            if let Some(board) = &shared.progress {
                crate::progress::publish(&ctx, board, shard).await;
            }
        })
    });
    let listen_control = (ctx.args.scenario == Scenario::Listen && shard == 0).then(|| {
        let ctx = Rc::clone(&ctx);
        let shared = Arc::clone(&shared);
        glommio::spawn_local(async move { listen::control(ctx, &shared.triggers).await })
    });
    let mut tasks = Vec::with_capacity(mine.len());
    for (k, &global) in mine.iter().enumerate() {
        if per_shard_ramp > 0.0 {
            net::sleep_until(opened_at + Duration::from_secs_f64(k as f64 / per_shard_ramp)).await;
        }
        let ctx = Rc::clone(&ctx);
        let plan = Rc::clone(&plan);
        let shared = Arc::clone(&shared);
        tasks.push(glommio::spawn_local(async move {
            match ctx.args.scenario {
                Scenario::WsEcho | Scenario::WsMcp | Scenario::SlowReaders => {
                    ws::client(ctx, global).await
                }
                Scenario::IdleHold if ctx.args.scenario.wants_ws(ctx.args.transport) => {
                    ws::client(ctx, global).await
                }
                Scenario::IdleHold => http::idle_client(ctx, global).await,
                Scenario::HttpMcp => http::client(ctx, global).await,
                Scenario::SseFanout | Scenario::SseResume => sse::client(ctx, plan, global).await,
                Scenario::Listen => listen::client(ctx, &shared.triggers, global).await,
            }
        }));
    }
    // Every setup is bounded by the timeout, so this wait is too.
    ctx.all_set_up().await;
    let connect_window = opened_at.elapsed().as_secs_f64();

    // Barrier: the measured phase starts when every shard has its connections up.
    shared.arrived.fetch_add(1, Ordering::AcqRel);
    let barrier_deadline = Instant::now() + ctx.timeout() * 4 + Duration::from_secs(30);
    wait_for(
        || shared.arrived.load(Ordering::Acquire) >= shards,
        barrier_deadline,
    )
    .await;
    let start = *shared.start.get_or_init(|| {
        let start = Instant::now() + START_LEAD;
        if let Ok(mut s) = shared.samples.lock() {
            s.start = Some(start);
            s.own_cpu_start = sys::own_cpu_seconds();
            s.own_core_wait_start = sys::core_wait_seconds(std::process::id());
            if let Some(pid) = ctx.args.server_pid {
                s.rss_connected = sys::rss_bytes(pid);
                s.server_cpu_start = sys::cpu_seconds(pid);
                s.server_core_wait_start = sys::core_wait_seconds(pid);
            }
        }
        start
    });
    // The end-of-phase samples, taken at the phase's end. Request/response connections close
    // only after `Ctx::close_at`, but SSE streams may end with their last event, so the shard
    // awaits this task too rather than return before the samples are taken.
    let end = start + ctx.duration();
    let phase_samples = {
        let ctx = Rc::clone(&ctx);
        let shared = Arc::clone(&shared);
        glommio::spawn_local(async move {
            // During the lead-in, before any request is due.
            let at_start = match shard {
                0 => server_gauges(&shared).await,
                _ => None,
            };
            net::sleep_until(start).await;
            let busy_at_start = ringmcp::shard::busy_time();
            net::sleep_until(end).await;
            ctx.stats
                .busy
                .set(ringmcp::shard::busy_time().saturating_sub(busy_at_start));
            if shard != 0 {
                return;
            }
            if let Ok(mut s) = shared.samples.lock() {
                s.own_cpu_end = sys::own_cpu_seconds();
                s.own_core_wait_end = sys::core_wait_seconds(std::process::id());
                if let Some(pid) = ctx.args.server_pid {
                    s.rss_end = sys::rss_bytes(pid);
                    s.server_cpu_end = sys::cpu_seconds(pid);
                    s.server_core_wait_end = sys::core_wait_seconds(pid);
                }
            }
            let at_end = server_gauges(&shared).await;
            if let Ok(mut s) = shared.samples.lock() {
                s.server_busy_start = at_start.and_then(|g| g.busy_seconds);
                s.server_busy_end = at_end.and_then(|g| g.busy_seconds);
                s.server_heap.connected = at_start.and_then(|g| g.heap_in_use);
                s.server_heap.end = at_end.and_then(|g| g.heap_in_use);
            }
        })
    };
    ctx.stats.begin_phase(start);
    let sending = {
        let ctx = Rc::clone(&ctx);
        glommio::spawn_local(async move {
            let (protocol, payload) = (ctx.args.protocol, ctx.args.payload);
            let schedule = |global| ctx.schedule(start, global);
            ctx.sender
                .run(&ctx.stats, protocol, payload, schedule)
                .await
        })
    };
    ctx.start.open(start);
    for task in tasks {
        task.await;
    }
    sending.await;
    if let Some(control) = listen_control {
        control.await;
    }
    phase_samples.await;
    if let Some(publisher) = publisher {
        publisher.cancel().await;
    }
    let mut result = ctx.stats.take_result();
    result.connect_window = Some(connect_window);
    result
}

/// The server's busy seconds and heap from `--server-metrics`, if given and readable.
async fn server_gauges(shared: &Shared) -> Option<ServerGauges> {
    net::server_gauges(shared.server_metrics.as_ref()?).await
}

/// Before any connection opens, the server's heap in use (`--server-metrics`): the baseline
/// its per-connection figure is measured from. Shard 0 reads it; the others wait until it has
/// (bounded: the read gives up after two seconds), so none of their connections is in it.
async fn take_heap_baseline(shared: &Shared, shard: usize) {
    if shared.server_metrics.is_none() {
        return;
    }
    if shard == 0 {
        let heap = server_gauges(shared).await.and_then(|g| g.heap_in_use);
        if let Ok(mut s) = shared.samples.lock() {
            s.server_heap.before = heap;
        }
        shared.heap_baseline_taken.store(true, Ordering::Release);
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    wait_for(
        || shared.heap_baseline_taken.load(Ordering::Acquire),
        deadline,
    )
    .await;
}

/// Waits a millisecond at a time until another shard made `done` true, or until `deadline`
/// (setup points only, where shards wait for each other).
async fn wait_for(done: impl Fn() -> bool, deadline: Instant) {
    while !done() && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_split_evenly_and_completely() {
        let mut all: Vec<usize> = (0..3).flat_map(|s| shard_connections(10, s, 3)).collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(shard_connections(10, 0, 3).len(), 4);
        assert_eq!(shard_connections(10, 2, 3).len(), 3);
        assert!(shard_connections(0, 0, 1).is_empty());
    }
}
