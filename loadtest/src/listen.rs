//! listen: MCP 2026-07-28 `subscriptions/listen` streams told of tool-list changes.
//!
//! Every connection opens one listen stream (a POST answered with SSE) for
//! `toolsListChanged`, and is set up once its acknowledgment arrives. In the measured phase
//! one control connection, run by load shard 0 beside its streams, calls the server's
//! [`TRIGGER_TOOL`] on the open-loop schedule (--rate changes per second, at most --changes,
//! within --duration), and each stream records how long after the trigger went out it heard
//! of the change. A change carries no number of its own: the server announces changes in
//! order, so a stream's n-th `list_changed` is taken for change n, and a stream that misses
//! one counts as missing a change whichever one it was.

use crate::cli::{Args, Protocol, Scenario};
use crate::ctx::Ctx;
use crate::http::{self, Session, SseBody, SseEnd};
use crate::mcp::{self, Incoming, ListenMessage};
use crate::net::{self, NetError};
use crate::schedule::Schedule;
use crate::stats::ShardStats;
use ringmcp::proto::http1::Method;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The tool whose call announces a tools/list change to every listen stream: a fixture of
/// the ringmcp binary (`src/fixtures.rs`); another server needs a tool of that name.
pub const TRIGGER_TOOL: &str = "test_trigger_tool_change";

/// When each planned change's trigger went out, shared by the load shards. The control
/// connection fills a change's slot just before it writes the trigger, so a stream that hears
/// of the change (which the server announces only after reading the trigger) finds it.
#[derive(Debug, Default)]
pub struct Triggers {
    sent: Box<[OnceLock<Instant>]>,
}

impl Triggers {
    /// A slot for each change `args` plans (none unless the scenario is listen).
    pub fn new(args: &Args) -> Triggers {
        let planned = match args.scenario {
            Scenario::Listen => change_schedule(args, Instant::now()).remaining(),
            _ => 0,
        };
        Triggers {
            sent: (0..planned).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Changes on the control connection's schedule.
    pub fn planned(&self) -> usize {
        self.sent.len()
    }

    /// Notes that change `change`'s trigger goes out at `at`.
    fn record(&self, change: usize, at: Instant) {
        if let Some(slot) = self.sent.get(change) {
            let _ = slot.set(at);
        }
    }

    /// When change `change`'s trigger went out, if it did.
    pub fn sent_at(&self, change: usize) -> Option<Instant> {
        self.sent.get(change)?.get().copied()
    }

    /// Triggers sent so far (the slots fill in order).
    pub fn sent(&self) -> usize {
        self.sent
            .iter()
            .take_while(|slot| slot.get().is_some())
            .count()
    }
}

/// The control connection's schedule from `start`: --rate changes per second, at most
/// --changes of them, all within --duration.
fn change_schedule(args: &Args, start: Instant) -> Schedule {
    let duration = Duration::from_secs_f64(args.duration.max(0.0));
    Schedule::for_connection(start, duration, args.rate, 0, 1).at_most(args.changes as u64)
}

/// One listen stream: opens it, then records each tool-list change it hears of until it has
/// heard of every planned one or the phase is over, and holds it to the phase's end.
pub async fn client(ctx: Rc<Ctx>, triggers: &Triggers, global: usize) {
    let began = Instant::now();
    ShardStats::add(&ctx.stats.attempted, 1);
    // The listen request's id is the stream's subscription id. Unique across the load shards,
    // so a notification meant for another stream shows.
    let id = global as u64;
    let (mut session, mut body) = match open(&ctx, id).await {
        Ok(opened) => opened,
        Err(e) => return ctx.setup_failed(&e),
    };
    ctx.setup_ok(began.elapsed());
    let start = ctx.start.wait().await;
    let stats = &ctx.stats;
    // The last trigger goes out before the phase ends (see `control`); a stream that has not
    // heard of it within the timeout after that never will.
    let give_up = ctx.close_at(start) + ctx.timeout();
    let mut heard = 0;
    let read = body
        .read(&mut session.conn, give_up, Some(give_up), &mut |event| {
            if event.data.is_empty() {
                return false;
            }
            let now = Instant::now();
            let ListenMessage::ToolsListChanged { subscription_id } =
                mcp::listen_message(event.data.as_bytes())
            else {
                stats.error("unexpected_listen_message");
                return false;
            };
            // Spec (2026-07-28, subscriptions): "All notifications delivered on the stream
            // carry `io.modelcontextprotocol/subscriptionId` in `_meta` ... The value is the
            // JSON-RPC ID of the `subscriptions/listen` request".
            if subscription_id != Some(id) {
                stats.error("list_changed_not_for_this_subscription");
            }
            match triggers.sent_at(heard) {
                Some(sent) => {
                    stats.record_change(heard, now, now.saturating_duration_since(sent));
                    ShardStats::add(&stats.ok, 1);
                }
                None => stats.error("list_changed_without_trigger"),
            }
            heard += 1;
            heard == triggers.planned()
        })
        .await;
    match read {
        Ok(SseEnd::Stopped) => {}
        Ok(SseEnd::Complete) => stats.error("listen_stream_ended"),
        Err(e) => stats.error(format!("listen_stream:{}", e.kind())),
    }
    // Held past the phase, as in every scenario: no teardown lands in it.
    net::sleep_until(ctx.close_at(start)).await;
    // The control sends nothing after the phase, so the count is final.
    let triggered = triggers.sent();
    ShardStats::add(&stats.sent, triggered as u64);
    ShardStats::add(&stats.bytes_in, session.conn.bytes_in);
    ShardStats::add(&stats.bytes_out, session.conn.bytes_out);
    let mut listen = stats.listen.borrow_mut();
    listen.streams += 1;
    listen.streams_missing_changes += u64::from(heard < triggered);
}

/// Connects, sends the listen request and reads up to its acknowledgment, which must carry
/// the request's id and agree to send tool-list changes; the stream reads on from there.
///
/// Spec (2026-07-28, subscriptions): "The server MUST send
/// `notifications/subscriptions/acknowledged` as the first message".
async fn open(ctx: &Ctx, id: u64) -> Result<(Session, SseBody), NetError> {
    let deadline = ctx.setup_deadline();
    let mut session = http::open_stateless(ctx).await?;
    let headers = http::stateless_headers("subscriptions/listen", None);
    let mut request = session.request(ctx, Some(&mcp::listen_request(id)), &headers);
    session.conn.write_all(&mut request, deadline).await?;
    let head = session.conn.read_head(Method::Post, deadline).await?;
    if head.status() != 200 {
        return Err(NetError::Status(head.status()));
    }
    if !http::is_sse(&head) {
        // A plain JSON answer: the server refused the stream.
        let reply = session.conn.read_body(&head, deadline).await?;
        return Err(refusal(&reply));
    }
    let mut body = SseBody::new(&head);
    let mut first = None;
    body.read(&mut session.conn, deadline, None, &mut |event| {
        if event.data.is_empty() {
            return false;
        }
        first = Some(event.data.clone().into_bytes());
        true
    })
    .await?;
    let Some(first) = first else {
        return Err(NetError::Protocol(
            "listen stream ended before its acknowledgment",
        ));
    };
    match mcp::listen_message(&first) {
        ListenMessage::Acknowledged {
            subscription_id, ..
        } if subscription_id != Some(id) => {
            Err(NetError::Protocol("acknowledged another subscription id"))
        }
        ListenMessage::Acknowledged {
            tools_list_changed: false,
            ..
        } => Err(NetError::Protocol("toolsListChanged not agreed")),
        ListenMessage::Acknowledged { .. } => Ok((session, body)),
        _ => Err(refusal(&first)),
    }
}

/// Why a listen request was answered with something other than its acknowledgment.
fn refusal(reply: &[u8]) -> NetError {
    match mcp::classify(reply) {
        Incoming::Error { code, .. } => NetError::JsonRpc(code),
        _ => NetError::Protocol("listen not acknowledged"),
    }
}

/// The control connection: calls [`TRIGGER_TOOL`] at each change's intended time, noting each
/// send in `triggers` first, and counts the changes.
pub async fn control(ctx: Rc<Ctx>, triggers: &Triggers) {
    // Connected during the setup, so the first change does not wait for it.
    let opened = http::open_stateless(&ctx).await;
    let start = ctx.start.wait().await;
    let mut schedule = change_schedule(&ctx.args, start);
    let planned = schedule.remaining();
    let stats = &ctx.stats;
    match opened {
        Ok(mut session) => {
            let end = start + ctx.duration();
            trigger_changes(&ctx, &mut session, &mut schedule, triggers, end).await;
        }
        Err(e) => stats.error(format!("trigger:{}", e.kind())),
    }
    let unsent = schedule.remaining();
    if unsent > 0 {
        *stats
            .errors
            .borrow_mut()
            .entry("trigger:unsent".into())
            .or_insert(0) += unsent;
    }
    let mut listen = stats.listen.borrow_mut();
    listen.changes_planned = planned;
    listen.changes_sent = triggers.sent() as u64;
}

/// Sends the triggers on `schedule` until it runs out, the phase `end`s or the connection
/// fails. One call is in flight at a time (HTTP/1.1): a slow reply delays the next trigger,
/// whose latency still counts from when it went out.
async fn trigger_changes(
    ctx: &Ctx,
    session: &mut Session,
    schedule: &mut Schedule,
    triggers: &Triggers,
    end: Instant,
) {
    let stats = &ctx.stats;
    let headers = http::stateless_headers("tools/call", Some(TRIGGER_TOOL));
    let mut change = 0;
    while let Some(at) = schedule.peek() {
        net::sleep_until(at).await;
        let now = Instant::now();
        // Late past the phase: the streams stop waiting soon after it, so the rest stay unsent.
        if now >= end {
            return;
        }
        if schedule.take_due(now).is_none() {
            continue;
        }
        let id = change as u64 + 1;
        let mut request = session.request(
            ctx,
            Some(&mcp::stateless_tool_call(id, TRIGGER_TOOL)),
            &headers,
        );
        triggers.record(change, Instant::now());
        change += 1;
        let reply = session
            .exchange(&mut request, now + ctx.timeout(), &mut |_| {})
            .await;
        match reply.as_deref().map(mcp::classify) {
            Ok(Incoming::Result {
                id: got,
                tool_error,
                result_type,
            }) if got == id => {
                if let Some(kind) = mcp::unfinished(Protocol::Stateless, result_type) {
                    stats.error(format!("trigger:{kind}"));
                } else if tool_error {
                    stats.error("trigger:tool_error");
                }
            }
            Ok(Incoming::Error { code, .. }) => stats.error(format!("trigger:jsonrpc_{code}")),
            Ok(_) => stats.error("trigger:unexpected_reply"),
            Err(e) => {
                // The connection is in an unknown state: no more changes.
                stats.error(format!("trigger:{}", e.kind()));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let base = [
            "ringmcp-load",
            "--scenario",
            "listen",
            "--protocol",
            "2026-07-28",
        ];
        Args::try_parse_from(base.iter().chain(extra)).expect("args")
    }

    #[test]
    fn changes_are_bounded_by_count_and_time() {
        // One a second for 10 s: ten, cut to --changes.
        let a = args(&["--rate", "1", "--duration", "10", "--changes", "4"]);
        assert_eq!(Triggers::new(&a).planned(), 4);
        // Two a second for 3 s: six, fewer than --changes.
        let a = args(&["--rate", "2", "--duration", "3", "--changes", "100"]);
        assert_eq!(Triggers::new(&a).planned(), 6);
        let a = args(&["--rate", "0"]);
        assert_eq!(Triggers::new(&a).planned(), 0);
        // Other scenarios plan none.
        let a = Args::try_parse_from(["ringmcp-load", "--scenario", "ws-mcp"]).expect("args");
        assert_eq!(Triggers::new(&a).planned(), 0);
    }

    #[test]
    fn triggers_fill_in_order() {
        let triggers = Triggers::new(&args(&["--rate", "1", "--changes", "3"]));
        let at = Instant::now();
        assert_eq!((triggers.sent(), triggers.sent_at(0)), (0, None));
        triggers.record(0, at);
        triggers.record(1, at + Duration::from_secs(1));
        assert_eq!(triggers.sent(), 2);
        assert_eq!(triggers.sent_at(1), Some(at + Duration::from_secs(1)));
        assert_eq!(triggers.sent_at(2), None);
        // Past the plan: nothing to note, nothing to find.
        triggers.record(7, at);
        assert_eq!(triggers.sent_at(7), None);
    }
}
