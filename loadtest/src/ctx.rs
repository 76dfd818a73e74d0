//! What every connection task of one shard shares: the command line, the shard's
//! measurements, the phase's start and schedule, and the setup count. The scenarios and the
//! orchestrator ([`crate::run`]) both use it; it uses neither.

use crate::cli::{Args, Target};
use crate::net::NetError;
use crate::schedule::Schedule;
use crate::sender::Sender;
use crate::stats::ShardStats;
use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How long after the measured phase finished connections wait before closing (see
/// [`Ctx::close_at`]).
const CLOSE_GRACE: Duration = Duration::from_millis(100);

/// A one-shot event many tasks of one shard wait for.
#[derive(Default)]
pub struct Gate {
    at: Cell<Option<Instant>>,
    waiters: RefCell<Vec<Waker>>,
}

impl Gate {
    /// Opens the gate with `at`, waking every waiter.
    pub fn open(&self, at: Instant) {
        self.at.set(Some(at));
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// The gate's instant, if it has opened.
    pub fn opened(&self) -> Option<Instant> {
        self.at.get()
    }

    /// Waits until the gate opens; returns its instant.
    pub async fn wait(&self) -> Instant {
        std::future::poll_fn(|cx| match self.at.get() {
            Some(at) => Poll::Ready(at),
            None => {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// What every connection task of one shard shares.
pub struct Ctx {
    /// The command line.
    pub args: Args,
    /// The parsed target.
    pub target: Target,
    /// This shard's measurements.
    pub stats: ShardStats,
    /// Opens when the measured phase starts.
    pub start: Gate,
    /// Writes the WebSocket scenarios' requests.
    pub sender: Sender,
    /// Connections still setting up on this shard.
    pending: Cell<usize>,
    /// Opens when every connection of this shard finished setting up.
    all_set_up: Gate,
    /// Total connections across shards.
    pub total: usize,
}

impl Ctx {
    /// The context of a shard that runs `connections` of the run's connections.
    pub fn new(args: Args, target: Target, connections: usize) -> Ctx {
        let ctx = Ctx {
            total: args.connections,
            pending: Cell::new(connections),
            args,
            target,
            stats: ShardStats::default(),
            start: Gate::default(),
            sender: Sender::default(),
            all_set_up: Gate::default(),
        };
        if connections == 0 {
            ctx.all_set_up.open(Instant::now());
        }
        ctx
    }

    /// Waits until every connection of this shard finished setting up.
    pub async fn all_set_up(&self) {
        self.all_set_up.wait().await;
    }

    /// The measured phase's length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.args.duration.max(0.0))
    }

    /// When a connection whose schedule is done closes: just after the measured phase, late
    /// enough that the replies still in flight at its end are not held up behind the other
    /// connections closing (15,000 closes keep a core busy for tens of milliseconds).
    pub fn close_at(&self, start: Instant) -> Instant {
        start + self.duration() + CLOSE_GRACE
    }

    /// Connection `global`'s share of the open-loop schedule of a phase starting at `start`.
    pub fn schedule(&self, start: Instant, global: usize) -> Schedule {
        Schedule::for_connection(start, self.duration(), self.args.rate, global, self.total)
    }

    /// Per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.args.timeout.max(0.001))
    }

    /// How long a stream cut off by a failure has to deliver again (`--patience`).
    pub fn patience(&self) -> Duration {
        Duration::from_secs_f64(self.args.patience.max(0.0))
    }

    /// Deadline for connecting and setting up a session.
    pub fn setup_deadline(&self) -> Instant {
        Instant::now() + self.timeout()
    }

    /// A connection task finished its setup (successfully or not).
    pub fn setup_done(&self) {
        let left = self.pending.get().saturating_sub(1);
        self.pending.set(left);
        if left == 0 {
            self.all_set_up.open(Instant::now());
        }
    }

    /// Records a failed setup.
    pub fn setup_failed(&self, err: &NetError) {
        self.stats.error(format!("setup:{}", err.kind()));
        self.setup_done();
    }

    /// Records a successful setup that took `took`.
    pub fn setup_ok(&self, took: Duration) {
        ShardStats::add(&self.stats.connected, 1);
        self.stats.record_connect(took);
        self.setup_done();
    }
}
