//! sse-fanout and sse-resume: every session asks the server's `stream` tool for
//! a run of notifications on its POST's SSE stream and checks what arrives.
//!
//! Delivery latency is measured from the send time the server writes into
//! each notification (`ts_us`, µs since the UNIX epoch, in the notification's
//! data) when it does; otherwise from the event's scheduled time (request
//! sent + (seq − 1) × interval), which also counts the server's timer drift.
//! sse-resume drops connections at random times and resumes with
//! `Last-Event-ID`, then checks by sequence number that every event arrived
//! exactly once and in order.

use crate::cli::Scenario;
use crate::ctx::Ctx;
use crate::failover;
use crate::http::{self, SseBody, SseEnd};
use crate::mcp::{self, Incoming};
use crate::net::{self, Conn, NetError};
use crate::stats::ShardStats;
use ringmcp::proto::http1::{Method, ResponseHead};
use ringmcp::proto::sse::{EventId, SseEvent};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The per-session stream shape and this shard's forced disconnects.
#[derive(Debug, Default)]
pub struct Plan {
    /// Milliseconds between a session's events.
    pub interval_ms: u64,
    /// Events per session.
    pub count: u64,
    /// Disconnect offsets from a session's stream start, by global session index.
    disconnects: HashMap<usize, Vec<Duration>>,
}

impl Plan {
    /// Derives the stream shape from --rate (events per second in total), --duration and
    /// --connections, and spreads this shard's share of --disconnects at random.
    pub fn new(ctx: &Ctx, mine: &[usize]) -> Plan {
        if !matches!(ctx.args.scenario, Scenario::SseFanout | Scenario::SseResume) {
            return Plan::default();
        }
        let (interval_ms, count) = shape(ctx.args.rate, ctx.total, ctx.args.duration);
        let disconnects = if ctx.args.scenario == Scenario::SseResume && ctx.total > 0 {
            let share = (ctx.args.disconnects * mine.len()).div_ceil(ctx.total);
            plan_disconnects(mine, share, interval_ms, count)
        } else {
            HashMap::new()
        };
        Plan {
            interval_ms,
            count,
            disconnects,
        }
    }
}

/// Spreads `share` forced disconnects at random over the sessions in `mine` (a session may get
/// several), each between 5% and 95% of a stream's life: the first event is due at once and
/// the last `interval_ms * (count - 1)` later, so every planned drop happens while the stream
/// still has events to come. A one-event stream has nothing to resume and gets none.
fn plan_disconnects(
    mine: &[usize],
    share: usize,
    interval_ms: u64,
    count: u64,
) -> HashMap<usize, Vec<Duration>> {
    let life_ms = (interval_ms * count.saturating_sub(1)) as f64;
    let mut disconnects: HashMap<usize, Vec<Duration>> = HashMap::new();
    if mine.is_empty() || life_ms == 0.0 {
        return disconnects;
    }
    for _ in 0..share {
        let who = mine[fastrand::usize(..mine.len())];
        let at = life_ms * (0.05 + 0.9 * fastrand::f64());
        disconnects
            .entry(who)
            .or_default()
            .push(Duration::from_secs_f64(at / 1000.0));
    }
    for times in disconnects.values_mut() {
        times.sort();
    }
    disconnects
}

/// (interval between a session's events in ms, events per session) for `rate` events per
/// second over `sessions` sessions lasting `duration` seconds.
pub fn shape(rate: f64, sessions: usize, duration: f64) -> (u64, u64) {
    let interval_ms = if rate > 0.0 && rate.is_finite() {
        ((sessions.max(1) as f64 * 1000.0 / rate).round() as u64).max(1)
    } else {
        1000
    };
    let count = ((duration.max(0.0) * 1000.0) as u64 / interval_ms).max(1);
    (interval_ms, count)
}

/// Exactly-once, in-order accounting of one stream's sequence numbers.
#[derive(Debug)]
pub struct Tracker {
    seen: Vec<bool>,
    /// Distinct events received.
    pub distinct: u64,
    /// Repeats.
    pub duplicated: u64,
    /// Events that arrived after a higher sequence number.
    pub out_of_order: u64,
    /// Sequence numbers outside 0..=count.
    pub out_of_range: u64,
    last: Option<u64>,
}

impl Tracker {
    /// A tracker for sequence numbers 0..=count (servers may count from 0 or 1).
    pub fn new(count: u64) -> Tracker {
        Tracker {
            seen: vec![false; count as usize + 1],
            distinct: 0,
            duplicated: 0,
            out_of_order: 0,
            out_of_range: 0,
            last: None,
        }
    }

    /// Records one event.
    pub fn observe(&mut self, seq: u64) {
        let Some(slot) = self.seen.get_mut(seq as usize) else {
            self.out_of_range += 1;
            return;
        };
        if *slot {
            self.duplicated += 1;
            return;
        }
        *slot = true;
        self.distinct += 1;
        if self.last.is_some_and(|last| seq < last) {
            self.out_of_order += 1;
        }
        self.last = Some(self.last.map_or(seq, |l| l.max(seq)));
    }

    /// The highest sequence number seen so far.
    pub fn highest(&self) -> Option<u64> {
        self.last
    }

    /// Events of `count` that never arrived.
    pub fn lost(&self, count: u64) -> u64 {
        count.saturating_sub(self.distinct)
    }
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// How the current call of a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallEnd {
    /// Its result (or an error other than the one below) arrived.
    Answered,
    /// It ended with -31000: the node running its handler stopped, and the client is asked
    /// to call again.
    Lost,
}

/// What one stream's events tell us, applied to the tracker and the latency histogram. The
/// stream is the session's run of sequence numbers 1..=count, over however many calls (one,
/// unless a handler died with its node) and responses (one per resume) it takes.
struct Observer<'a> {
    ctx: &'a Ctx,
    tracker: Tracker,
    interval: Duration,
    /// The current call's request id, first sequence number, and when it was sent (the
    /// fallback latency base).
    call_id: u64,
    call_from: u64,
    call_sent: Instant,
    /// How the current call ended, once it has.
    ended: Option<CallEnd>,
    timestamped: u64,
    /// Events seen (before dedup), for the ok counter.
    events: u64,
    /// When the stream was cut off by a failure, until its next event arrives.
    cut_at: Option<Instant>,
    /// Set when an event ends a cut; the reader then stops to lift the recovery deadline.
    recovered: bool,
}

impl Observer<'_> {
    /// Handles one event; true asks the reader to stop (to retry the call, or because the
    /// stream recovered from a cut).
    fn on_event(&mut self, event: &SseEvent) -> bool {
        if event.data.is_empty() {
            return false; // priming event
        }
        let now = Instant::now();
        match mcp::classify(event.data.as_bytes()) {
            Incoming::Notification => {
                self.events += 1;
                let facts = mcp::event_facts(event.data.as_bytes());
                let seq = facts.seq.or_else(|| {
                    event
                        .id
                        .as_deref()
                        .and_then(|id| EventId::parse(id).ok())
                        .map(|id| id.seq)
                });
                let Some(seq) = seq else {
                    self.ctx.stats.error("event_without_sequence");
                    return false;
                };
                self.tracker.observe(seq);
                if let Some(sent) = facts.sent_us {
                    self.timestamped += 1;
                    let us = unix_us().saturating_sub(sent);
                    self.ctx.stats.record(now, Duration::from_micros(us));
                } else {
                    // The call's first notification goes out at once, then one per interval.
                    let n = seq.saturating_sub(self.call_from) as u32;
                    let due = self.call_sent + self.interval * n;
                    self.ctx
                        .stats
                        .record(now, now.saturating_duration_since(due));
                }
                self.end_cut(now)
            }
            Incoming::Result { id, tool_error, .. } if id == self.call_id => {
                self.ended = Some(CallEnd::Answered);
                if tool_error {
                    self.ctx.stats.error("tool_error");
                }
                // A stream cut after its last event recovers with its result.
                self.end_cut(now);
                false
            }
            Incoming::Error {
                id: Some(id),
                code: mcp::REQUEST_LOST,
            } if id == self.call_id
                && mcp::asks_retry_after_request_lost(event.data.as_bytes()) =>
            {
                self.ended = Some(CallEnd::Lost);
                true
            }
            Incoming::Error { id, code } if id.is_none_or(|id| id == self.call_id) => {
                self.ended = Some(CallEnd::Answered);
                self.ctx.stats.error(format!("jsonrpc_{code}"));
                false
            }
            _ => {
                self.ctx.stats.error("unexpected_event");
                false
            }
        }
    }

    /// An event arrived: if the stream was cut, that ends the gap.
    fn end_cut(&mut self, now: Instant) -> bool {
        let Some(cut) = self.cut_at.take() else {
            return false;
        };
        self.ctx
            .stats
            .record_gap(now.saturating_duration_since(cut));
        self.recovered = true;
        true
    }

    /// The stream was cut off by a failure (a cut during a recovery keeps the first one's time).
    fn cut(&mut self, now: Instant) {
        self.cut_at.get_or_insert(now);
    }

    /// The next call of the stream: a new request id, from `from`, sent now.
    fn next_call(&mut self, from: u64) {
        self.call_id += 1;
        self.call_from = from;
        self.call_sent = Instant::now();
        self.ended = None;
    }
}

/// One sse-fanout or sse-resume session.
pub async fn client(ctx: Rc<Ctx>, plan: Rc<Plan>, global: usize) {
    let began = Instant::now();
    ShardStats::add(&ctx.stats.attempted, 1);
    let mut session = match http::open_session(&ctx).await {
        Ok(s) => s,
        Err(e) => return ctx.setup_failed(&e),
    };
    let holder = if ctx.args.get_stream && ctx.args.scenario == Scenario::SseFanout {
        match open_get(&ctx, &session, None).await {
            Ok(conn) => Some(conn),
            Err(e) => return ctx.setup_failed(&e),
        }
    } else {
        None
    };
    ctx.setup_ok(began.elapsed());
    ctx.stats.nodes.borrow_mut().session(session.id.as_deref());
    let start = ctx.start.wait().await;
    if let Some((mut conn, head)) = holder {
        let ctx = Rc::clone(&ctx);
        let end = start + ctx.duration() + ctx.timeout();
        glommio::spawn_local(async move {
            let mut events = 0u64;
            let r = SseBody::new(&head)
                .read(&mut conn, end, Some(end), &mut |e| {
                    events += u64::from(!e.data.is_empty());
                    false
                })
                .await;
            if let Err(e) = r {
                ctx.stats.error(format!("get_stream:{}", e.kind()));
            }
            ctx.stats.sse.borrow_mut().get_stream_events += events;
        })
        .detach();
    }
    let interval = Duration::from_millis(plan.interval_ms);
    // Spread stream starts over one interval so the sessions' events interleave evenly.
    let offset = interval.mul_f64(global as f64 / ctx.total.max(1) as f64);
    net::sleep_until(start + offset).await;
    let mut observer = Observer {
        ctx: &ctx,
        tracker: Tracker::new(plan.count),
        interval,
        call_id: 1,
        call_from: 1,
        call_sent: Instant::now(),
        ended: None,
        timestamped: 0,
        events: 0,
        cut_at: None,
        recovered: false,
    };
    let disconnects = plan.disconnects.get(&global).cloned().unwrap_or_default();
    let outcome = stream(&ctx, &plan, &mut session, &mut observer, &disconnects).await;
    let stats = &ctx.stats;
    if let Err(e) = outcome {
        stats.error(e.kind());
    }
    ShardStats::add(&stats.sent, plan.count);
    ShardStats::add(&stats.ok, observer.tracker.distinct);
    ShardStats::add(&stats.bytes_in, session.conn.bytes_in);
    ShardStats::add(&stats.bytes_out, session.conn.bytes_out);
    let mut sse = stats.sse.borrow_mut();
    sse.streams += 1;
    sse.completed += u64::from(observer.ended == Some(CallEnd::Answered));
    sse.expected += plan.count;
    sse.received += observer.tracker.distinct;
    sse.duplicated += observer.tracker.duplicated;
    sse.out_of_order += observer.tracker.out_of_order;
    sse.lost += observer.tracker.lost(plan.count);
    sse.timestamped += observer.timestamped;
    if observer.tracker.out_of_range > 0 {
        drop(sse);
        *stats
            .errors
            .borrow_mut()
            .entry("event_seq_out_of_range".into())
            .or_insert(0) += observer.tracker.out_of_range;
    }
}

/// Requests the stream and follows it to its end: through planned disconnects (resumed with
/// `Last-Event-ID`), through cuts a failure made (resumed the same way, on whichever node the
/// balancer now sends the session to), and through calls that ended with -31000 (called
/// again from the next sequence number). Every resume and call is tried again on failures
/// another try may fix, within `--patience`.
async fn stream(
    ctx: &Ctx,
    plan: &Plan,
    session: &mut http::Session,
    observer: &mut Observer<'_>,
    disconnects: &[Duration],
) -> Result<(), NetError> {
    let requested = observer.call_sent;
    let interval = Duration::from_millis(plan.interval_ms);
    let patience = ctx.patience();
    let session_id = session.id.clone().unwrap_or_default();
    // Bounded: the stream's own length plus the timeout, moved on by every recovery.
    let mut deadline = requested + interval * (plan.count as u32) + ctx.timeout();
    let mut body = send_call(ctx, session, observer, plan, plan.count, Instant::now()).await?;
    // The node answering the current response, and the events counted to it so far.
    let mut node = session.node.clone();
    let mut counted = 0;
    let mut last_id: Option<String> = None;
    let mut next_drop = 0;
    // After a cut: the time by which the stream must deliver again.
    let mut recover_by: Option<Instant> = None;
    // Every resume and retried call is planned, or made by a failure; bound them anyway.
    let mut resumes_left = disconnects.len() + 16;
    loop {
        let stop_at = disconnects.get(next_drop).map(|d| requested + *d);
        let until = recover_by.map_or(deadline, |r| r.min(deadline));
        let ended = body
            .read(&mut session.conn, until, stop_at, &mut |e| {
                observer.on_event(e)
            })
            .await;
        if let Some(id) = body.last_event_id() {
            last_id = Some(id.to_owned());
        }
        if std::mem::take(&mut observer.recovered) {
            recover_by = None;
            if observer.ended.is_none() && matches!(ended, Ok(SseEnd::Stopped)) {
                continue; // the reader stopped only to lift the recovery deadline
            }
        }
        let now = Instant::now();
        let events = observer.events - counted;
        ctx.stats.nodes.borrow_mut().events(&node, events);
        counted = observer.events;
        match (observer.ended, ended) {
            (Some(CallEnd::Answered), _) => return Ok(()),
            (Some(CallEnd::Lost), _) => {}
            (None, Ok(SseEnd::Stopped)) => {
                next_drop += 1;
                ctx.stats.sse.borrow_mut().disconnects += 1;
            }
            (None, Ok(SseEnd::Complete)) => cut(ctx, observer, "stream_ended_before_result"),
            (None, Err(NetError::Timeout)) if recover_by.is_some() => return Err(NetError::Hung),
            (None, Err(NetError::Timeout)) => return Err(NetError::Timeout),
            (None, Err(e)) => cut(ctx, observer, &e.kind()),
        }
        if observer.cut_at.is_some() && recover_by.is_none() {
            let by = now + patience;
            recover_by = Some(by);
            deadline = deadline.max(by);
        }
        if resumes_left == 0 {
            return Err(NetError::Protocol("gave up resuming"));
        }
        resumes_left -= 1;
        let until = recover_by.unwrap_or(now + patience);
        let lost = observer.ended == Some(CallEnd::Lost);
        // Cut before its first event: the node died before answering anything, and without
        // an event id there is nothing to resume. As after -31000, the call goes again.
        let unanswered = !lost && last_id.is_none() && observer.cut_at.is_some();
        if lost || unanswered {
            // The handler died with its node: call again from the next event.
            {
                let mut sse = ctx.stats.sse.borrow_mut();
                if lost {
                    sse.retried_calls += 1;
                } else {
                    sse.unanswered_calls += 1;
                }
            }
            let (from, owed) = failover::continuation(plan.count, observer.tracker.highest());
            observer.next_call(from);
            body = match send_call(ctx, session, observer, plan, owed, until).await {
                Err(e) if failover::retryable(&e) => return Err(NetError::Hung),
                other => other?,
            };
            last_id = None;
            deadline = deadline.max(Instant::now() + interval * (owed as u32) + ctx.timeout());
        } else {
            let Some(id) = last_id.as_deref() else {
                return Err(NetError::Protocol("no event id to resume from"));
            };
            let mut retried = |e: &NetError| {
                let kind = format!("resume:{}", e.kind());
                ShardStats::count(&mut ctx.stats.sse.borrow_mut().retried, kind);
            };
            let shared: &http::Session = session;
            let resumed = failover::with_retries(until, &mut retried, async || {
                open_get(ctx, shared, Some(id)).await
            })
            .await;
            let (conn, head) = match resumed {
                Ok(done) => done,
                Err(NetError::Status(s)) if !failover::retryable(&NetError::Status(s)) => {
                    ctx.stats.sse.borrow_mut().resume_refused += 1;
                    return Err(NetError::Status(s));
                }
                Err(e) if failover::retryable(&e) => return Err(NetError::Hung),
                Err(e) => return Err(e),
            };
            let old = std::mem::replace(&mut session.conn, conn);
            ShardStats::add(&ctx.stats.bytes_in, old.bytes_in);
            ShardStats::add(&ctx.stats.bytes_out, old.bytes_out);
            session.answered_by(&head);
            body = SseBody::new(&head);
            ctx.stats.sse.borrow_mut().resumes += 1;
            ctx.stats.nodes.borrow_mut().resume(&session.node);
        }
        node = session.node.clone();
        ctx.stats.nodes.borrow_mut().answered(&session_id, &node);
    }
}

/// Counts a cut of `kind` and starts its gap.
fn cut(ctx: &Ctx, observer: &mut Observer<'_>, kind: &str) {
    ShardStats::count(&mut ctx.stats.sse.borrow_mut().cuts, kind);
    observer.cut(Instant::now());
}

/// POSTs the observer's current call for `owed` events (tried again until `until` on failures
/// another try may fix) and returns its SSE body.
async fn send_call(
    ctx: &Ctx,
    session: &mut http::Session,
    observer: &mut Observer<'_>,
    plan: &Plan,
    owed: u64,
    until: Instant,
) -> Result<SseBody, NetError> {
    let call = mcp::stream_call(
        observer.call_id,
        observer.call_from,
        owed,
        plan.interval_ms,
        ctx.args.payload,
    );
    let mut retried = |e: &NetError| {
        let kind = format!("call:{}", e.kind());
        ShardStats::count(&mut ctx.stats.sse.borrow_mut().retried, kind);
    };
    // The first call goes on the connection initialize used; a later one, and every retry, on
    // a new one (the old may still carry an unfinished response).
    let mut fresh = observer.call_id > 1;
    let head = failover::with_retries(until, &mut retried, async || {
        let sent = post(ctx, session, &call, fresh).await;
        fresh = true;
        sent
    })
    .await?;
    session.answered_by(&head);
    if !http::is_sse(&head) {
        // A plain JSON answer: no events at all.
        let deadline = ctx.setup_deadline();
        let body = session.conn.read_body(&head, deadline).await?;
        observer.on_event(&SseEvent {
            id: None,
            event: None,
            data: String::from_utf8_lossy(&body).into_owned(),
            retry: None,
        });
        return Err(NetError::Protocol("stream answered without SSE"));
    }
    Ok(SseBody::new(&head))
}

/// One POST of `call` (on a new connection if `fresh`); its 200 response head.
async fn post(
    ctx: &Ctx,
    session: &mut http::Session,
    call: &[u8],
    fresh: bool,
) -> Result<ResponseHead, NetError> {
    let deadline = ctx.setup_deadline();
    if fresh {
        reconnect(ctx, session).await?;
    }
    let mut request = session.request(ctx, Some(call), &[]);
    session.conn.write_all(&mut request, deadline).await?;
    let head = session.conn.read_head(Method::Post, deadline).await?;
    if head.status() != 200 {
        let _ = session.conn.read_body(&head, deadline).await;
        return Err(NetError::Status(head.status()));
    }
    Ok(head)
}

/// Replaces the session's connection with a new one to the target.
async fn reconnect(ctx: &Ctx, session: &mut http::Session) -> Result<(), NetError> {
    let stream = net::connect(&ctx.target, ctx.timeout()).await?;
    let old = std::mem::replace(&mut session.conn, Conn::new(stream));
    ShardStats::add(&ctx.stats.bytes_in, old.bytes_in);
    ShardStats::add(&ctx.stats.bytes_out, old.bytes_out);
    Ok(())
}

/// Opens a new connection with a GET on the session's endpoint (resuming after `last_id`).
async fn open_get(
    ctx: &Ctx,
    session: &http::Session,
    last_id: Option<&str>,
) -> Result<(Conn, ResponseHead), NetError> {
    let deadline = ctx.setup_deadline();
    let stream = net::connect(&ctx.target, ctx.timeout()).await?;
    let mut conn = Conn::new(stream);
    let extra: Vec<(&str, &str)> = last_id
        .map(|id| ("Last-Event-ID", id))
        .into_iter()
        .collect();
    let mut request = session.request(ctx, None, &extra);
    conn.write_all(&mut request, deadline).await?;
    let head = conn.read_head(Method::Get, deadline).await?;
    if head.status() != 200 || !http::is_sse(&head) {
        return Err(NetError::Status(head.status()));
    }
    Ok((conn, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_loss_duplicates_and_order() {
        let mut t = Tracker::new(5);
        for seq in [1, 2, 2, 4, 3, 5, 9] {
            t.observe(seq);
        }
        assert_eq!(t.distinct, 5);
        assert_eq!(t.duplicated, 1);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.out_of_range, 1);
        assert_eq!(t.lost(5), 0);

        let mut t = Tracker::new(4);
        t.observe(1);
        t.observe(4);
        assert_eq!(t.lost(4), 2);
    }

    #[test]
    fn planned_disconnects_fall_within_the_stream_life() {
        let mine: Vec<usize> = (0..50).collect();
        // Six events 500 ms apart: the last is due 2,500 ms after the first.
        let plan = plan_disconnects(&mine, 200, 500, 6);
        let times: Vec<Duration> = plan.values().flatten().copied().collect();
        assert_eq!(times.len(), 200);
        assert!(times
            .iter()
            .all(|t| *t >= Duration::from_millis(125) && *t <= Duration::from_millis(2375)));
        assert!(plan.keys().all(|who| mine.contains(who)));
        assert!(plan_disconnects(&mine, 10, 500, 1).is_empty());
    }

    #[test]
    fn stream_shape_from_rate() {
        // 1000 sessions sharing 10k events/s: one event per 100 ms each, 50 in 5 s.
        assert_eq!(shape(10_000.0, 1000, 5.0), (100, 50));
        // Faster than 1 ms per event is clamped to 1 ms.
        assert_eq!(shape(1e9, 10, 1.0), (1, 1000));
        // No rate: one event per second.
        assert_eq!(shape(0.0, 10, 3.0), (1000, 3));
        // At least one event.
        assert_eq!(shape(1.0, 100, 1.0).1, 1);
    }
}
