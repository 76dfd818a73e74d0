//! WebSocket scenarios: ws-echo, ws-mcp, idle-hold (MCP and raw WebSocket) and slow-readers.
//!
//! Frames are decoded with ringmcp's sans-IO decoder in the client role and
//! encoded masked with its encoder. The shard's [`Sender`](crate::sender::Sender)
//! writes every request at its intended time; one task per connection runs an
//! event loop over its socket's readability, the output the sender left for it
//! to flush, and the timeouts of its requests in flight.

use crate::cli::{Protocol, Scenario, Transport};
use crate::ctx::Ctx;
use crate::mcp::{self, EchoTemplate, Incoming};
use crate::net::{self, Conn, Deadline, NetError};
use crate::sender::{random_mask, text_frame, InFlight, Link, Request};
use crate::stats::ShardStats;
use crate::sys;
use ringmcp::proto::ws::{
    encode_close, encode_frame, CloseCode, CompressPolicy, Decoder, Event, OpCode,
    PerMessageDeflate, Role,
};
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Largest message accepted from the server.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// How long to wait for the server's Close after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What this connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Raw echo: any message back, in order.
    Echo,
    /// MCP tools/call echo.
    Mcp,
    /// MCP session held open, no requests.
    Idle,
    /// Raw WebSocket held open, no messages.
    IdleRaw,
    /// MCP session whose client stops reading after setup.
    Slow,
}

/// Whether connection `global` is one of the slow readers.
pub fn is_slow(global: usize, total: usize, share: f64) -> bool {
    let slow = (total as f64 * share.clamp(0.0, 1.0)).round() as usize;
    // Spread the slow ones evenly over the index space (and so over the shards).
    slow > 0 && (global * slow) / total != ((global + 1) * slow) / total
}

/// Runs one WebSocket connection of the scenario.
pub async fn client(ctx: Rc<Ctx>, global: usize) {
    let mode = match ctx.args.scenario {
        Scenario::WsEcho => Mode::Echo,
        Scenario::IdleHold if ctx.args.transport == Transport::Echo => Mode::IdleRaw,
        Scenario::IdleHold => Mode::Idle,
        Scenario::SlowReaders if is_slow(global, ctx.total, ctx.args.slow_share) => Mode::Slow,
        _ => Mode::Mcp,
    };
    let began = Instant::now();
    ShardStats::add(&ctx.stats.attempted, 1);
    let mut decoder = Decoder::new(Role::Client, MAX_MESSAGE);
    let (mut conn, compress) = match setup(&ctx, mode, &mut decoder).await {
        Ok(setup) => setup,
        Err(e) => {
            ctx.setup_failed(&e);
            return;
        }
    };
    // The shard's sender writes this connection's requests; idle ones only hold.
    let request = match mode {
        Mode::Echo => Request::Echo,
        _ => Request::McpEcho,
    };
    // Over TLS the sender leaves its frames to this task's flush, which seals them.
    let fd = ctx.target.tls.is_none().then(|| conn.stream.as_raw_fd());
    let link = Rc::new(RefCell::new(Link::new(fd, global, request, compress)));
    if matches!(mode, Mode::Echo | Mode::Mcp) {
        ctx.sender.join(Rc::clone(&link));
    }
    ctx.setup_ok(began.elapsed());
    let start = ctx.start.wait().await;
    let result = if mode == Mode::Slow {
        let end = start + ctx.duration();
        slow_reader(&ctx, &mut conn, compress, start, end, global).await
    } else {
        drive(
            &ctx,
            &mut conn,
            &mut decoder,
            mode,
            &link,
            ctx.close_at(start),
        )
        .await
    };
    ShardStats::add(&ctx.stats.bytes_in, conn.bytes_in);
    ShardStats::add(
        &ctx.stats.bytes_out,
        conn.bytes_out + link.borrow().bytes_out,
    );
    if let Err(e) = result {
        ctx.stats.error(e.kind());
    }
}

/// How this client compresses its requests once the server agreed to permessage-deflate: as
/// the server compresses its replies by default.
fn compress_policy(deflate: PerMessageDeflate) -> CompressPolicy {
    let defaults = ringmcp::Config::default();
    CompressPolicy::new(
        deflate.send_window_bits,
        defaults.ws_deflate_level,
        defaults.ws_deflate_min_bytes,
    )
}

/// Connects, upgrades and (for MCP 2025-11-25) initializes; how requests are compressed.
async fn setup(
    ctx: &Ctx,
    mode: Mode,
    decoder: &mut Decoder,
) -> Result<(Conn, Option<CompressPolicy>), NetError> {
    let deadline = ctx.setup_deadline();
    let stream = net::connect(&ctx.target, ctx.timeout()).await?;
    let mut conn = Conn::new(stream);
    let raw = matches!(mode, Mode::Echo | Mode::IdleRaw);
    let protocols: &[&str] = if raw { &[] } else { &["mcp"] };
    let target = &ctx.target;
    let deflate =
        net::ws_handshake(&mut conn, target, protocols, ctx.args.ws_deflate, deadline).await?;
    if deflate.is_some() {
        *decoder = Decoder::new(Role::Client, MAX_MESSAGE).with_deflate();
    }
    let compress = deflate.map(compress_policy);
    // Spec (2026-07-28, basic/versioning): "A request carrying modern per-request `_meta` is
    // served statelessly according to this revision": no `initialize` opens the connection.
    if raw || ctx.args.protocol == Protocol::Stateless {
        return Ok((conn, compress));
    }
    let mut out = Vec::new();
    text_frame(&mut out, &mcp::initialize(), compress);
    conn.write_all(&mut out, deadline).await?;
    loop {
        let reply = read_text(&mut conn, decoder, deadline).await?;
        match mcp::classify(reply.as_bytes()) {
            Incoming::Result { id: 0, .. } => break,
            Incoming::Error { .. } => return Err(NetError::Protocol("initialize refused")),
            Incoming::Notification => continue,
            _ => return Err(NetError::Protocol("unexpected reply to initialize")),
        }
    }
    text_frame(&mut out, mcp::initialized(), compress);
    conn.write_all(&mut out, deadline).await?;
    Ok((conn, compress))
}

/// Reads the next text message (answering pings), for the setup phase.
async fn read_text(
    conn: &mut Conn,
    decoder: &mut Decoder,
    deadline: Instant,
) -> Result<String, NetError> {
    loop {
        let mut pong = None;
        let decoded = decoder
            .decode(&mut conn.inbuf)
            .map_err(|_| NetError::Protocol("bad frame"))?;
        let consumed = decoded.consumed;
        let text = match decoded.event {
            Some(Event::Text(t)) => Some(t.to_owned()),
            Some(Event::Ping(p)) => {
                pong = Some(p.to_vec());
                None
            }
            Some(Event::Close(frame)) => {
                return Err(NetError::Closed(frame.map_or(0, |f| f.code.0)))
            }
            Some(Event::Binary(_)) | Some(Event::Pong(_)) | None => None,
        };
        conn.inbuf.drain(..consumed);
        if let Some(text) = text {
            return Ok(text);
        }
        if let Some(p) = pong {
            let mut out = Vec::new();
            encode_frame(&mut out, OpCode::Pong, true, &p, random_mask());
            conn.write_all(&mut out, deadline).await?;
        }
        if consumed == 0 {
            conn.fill(deadline).await?;
        }
    }
}

/// What woke the event loop.
enum Wake {
    Read,
    Timer,
}

/// The event loop of one echo, MCP or idle connection: reads and matches replies, flushes
/// what the shard's [`Sender`](crate::sender::Sender) could not write at once, and expires
/// requests not answered within the timeout.
async fn drive(
    ctx: &Ctx,
    conn: &mut Conn,
    decoder: &mut Decoder,
    mode: Mode,
    link: &RefCell<Link>,
    close_at: Instant,
) -> Result<(), NetError> {
    let timeout = ctx.timeout();
    let stats = &ctx.stats;
    // Every connection holds until `close_at` (just after the measured phase) and then until
    // its last reply (bounded by the timeout): closing as soon as its own schedule ran out
    // would tear the connections down during the phase's last interval (0.25 s at 60k/s over
    // 15K connections), under load that the phase is not meant to have.
    let hard_stop = close_at + timeout;
    let mut timer = Deadline::at(close_at);
    loop {
        let now = Instant::now();
        {
            let mut link = link.borrow_mut();
            let inflight = &mut link.inflight.queue;
            while let Some(&(_, at)) = inflight.front() {
                if now < at + timeout {
                    break;
                }
                inflight.pop_front();
                stats.error("timeout");
            }
            let finished =
                link.schedule_done() && link.inflight.queue.is_empty() && now >= close_at;
            if finished || now >= hard_stop {
                for _ in link.inflight.queue.drain(..) {
                    stats.error("timeout");
                }
                break;
            }
            let mut wake_at = hard_stop;
            if now < close_at {
                wake_at = wake_at.min(close_at);
            }
            if let Some(&(_, at)) = link.inflight.queue.front() {
                wake_at = wake_at.min(at + timeout);
            }
            // The oldest request's timeout moves later with every reply: a later deadline is
            // left to the early wake-up (this loop then re-arms it), not re-armed per reply.
            timer.pull_in(wake_at);
        }

        let (stream, inbuf) = (&mut conn.stream, &mut conn.inbuf);
        let before = inbuf.len();
        let wake = std::future::poll_fn(|cx| {
            let mut link = link.borrow_mut();
            link.set_flusher(cx.waker());
            if !link.out.is_empty() {
                let out_before = link.out.len();
                let flushed = stream.poll_flush(cx, &mut link.out);
                link.bytes_out += (out_before - link.out.len()) as u64;
                if let Poll::Ready(Err(e)) = flushed {
                    return Poll::Ready(Err(NetError::from(e)));
                }
                link.record_flushed(stats);
            }
            match stream.poll_read_into(cx, inbuf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(NetError::Eof)),
                Poll::Ready(Ok(_)) => return Poll::Ready(Ok(Wake::Read)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(NetError::from(e))),
                Poll::Pending => {}
            }
            timer.poll_expired(cx).map(|()| Ok(Wake::Timer))
        })
        .await;
        let wake = match wake {
            Ok(w) => w,
            Err(e) => {
                let mut link = link.borrow_mut();
                link.retire();
                for _ in link.inflight.queue.drain(..) {
                    stats.error("lost_in_flight");
                }
                return Err(e);
            }
        };
        if let Wake::Timer = wake {
            continue;
        }
        conn.bytes_in += (conn.inbuf.len() - before) as u64;
        // Decode every complete message in the buffer.
        let mut used = 0;
        loop {
            let decoded = match decoder.decode(&mut conn.inbuf[used..]) {
                Ok(d) => d,
                Err(_) => {
                    link.borrow_mut().retire();
                    let mut close = Vec::new();
                    encode_close(&mut close, CloseCode::PROTOCOL_ERROR, "", random_mask());
                    let _ = conn
                        .write_all(&mut close, Instant::now() + CLOSE_WAIT)
                        .await;
                    return Err(NetError::Protocol("bad frame from server"));
                }
            };
            let consumed = decoded.consumed;
            let Some(event) = decoded.event else {
                if consumed == 0 {
                    break;
                }
                used += consumed;
                continue;
            };
            let now = Instant::now();
            // The server closed: what is left to send, and its close code.
            let closed = {
                let mut link = link.borrow_mut();
                match event {
                    Event::Text(text) => {
                        handle_reply(ctx, &mut link.inflight, mode, text.as_bytes(), now);
                        None
                    }
                    Event::Binary(bytes) => {
                        if mode == Mode::Echo {
                            handle_reply(ctx, &mut link.inflight, mode, bytes, now);
                        } else {
                            stats.error("unexpected_binary");
                        }
                        None
                    }
                    Event::Ping(payload) => {
                        encode_frame(&mut link.out, OpCode::Pong, true, payload, random_mask());
                        None
                    }
                    Event::Pong(_) => None,
                    Event::Close(frame) => {
                        for _ in link.inflight.queue.drain(..) {
                            stats.error("lost_in_flight");
                        }
                        Some((link.retire(), frame.map_or(0, |f| f.code.0)))
                    }
                }
            };
            if let Some((mut out, code)) = closed {
                // Answer the close (RFC 6455 5.5.1) and stop.
                encode_close(&mut out, CloseCode(1000), "", random_mask());
                let _ = conn.write_all(&mut out, Instant::now() + CLOSE_WAIT).await;
                return Err(NetError::Closed(code));
            }
            used += consumed;
        }
        conn.inbuf.drain(..used);
    }
    let mut out = link.borrow_mut().retire();
    close(conn, decoder, &mut out).await
}

/// Matches one reply to its request and records its latency from the intended send time.
fn handle_reply(ctx: &Ctx, inflight: &mut InFlight, mode: Mode, message: &[u8], now: Instant) {
    let stats = &ctx.stats;
    if mode == Mode::Echo {
        match inflight.take(None) {
            Some(intended) => {
                stats.record(now, now.saturating_duration_since(intended));
                ShardStats::add(&stats.ok, 1);
            }
            None => stats.error("unexpected_reply"),
        }
        return;
    }
    match mcp::classify(message) {
        Incoming::Result {
            id,
            tool_error,
            result_type,
        } => match inflight.take(Some(id)) {
            Some(intended) => {
                stats.record(now, now.saturating_duration_since(intended));
                if let Some(kind) = mcp::unfinished(ctx.args.protocol, result_type) {
                    stats.error(kind);
                } else if tool_error {
                    stats.error("tool_error");
                } else {
                    ShardStats::add(&stats.ok, 1);
                }
            }
            None => stats.error("unexpected_reply"),
        },
        Incoming::Error { id, code } => {
            if let Some(intended) = id.and_then(|id| inflight.take(Some(id))) {
                stats.record(now, now.saturating_duration_since(intended));
            }
            stats.error(format!("jsonrpc_{code}"));
        }
        Incoming::Notification => {}
        Incoming::Invalid => stats.error("invalid_reply"),
    }
}

/// Our orderly close: send Close 1000, wait (bounded) for the server's.
async fn close(conn: &mut Conn, decoder: &mut Decoder, out: &mut Vec<u8>) -> Result<(), NetError> {
    encode_close(out, CloseCode::NORMAL, "", random_mask());
    let deadline = Instant::now() + CLOSE_WAIT;
    conn.write_all(out, deadline).await?;
    loop {
        let decoded = decoder
            .decode(&mut conn.inbuf)
            .map_err(|_| NetError::Protocol("bad frame from server"))?;
        let consumed = decoded.consumed;
        if let Some(Event::Close(_)) = decoded.event {
            return Ok(());
        }
        let progressed = consumed > 0 || decoded.event.is_some();
        conn.inbuf.drain(..consumed);
        if !progressed {
            match conn.fill(deadline).await {
                Ok(_) => {}
                // The server may drop TCP right after its Close; that is fine.
                Err(NetError::Eof) | Err(NetError::Io(_)) => return Ok(()),
                Err(e) => return Err(NetError::Protocol(close_kind(&e))),
            }
        }
    }
}

fn close_kind(e: &NetError) -> &'static str {
    match e {
        NetError::Timeout => "no close reply",
        _ => "close failed",
    }
}

/// A client that stops reading after setup but keeps sending large requests on
/// its schedule; records what the server does about it.
async fn slow_reader(
    ctx: &Ctx,
    conn: &mut Conn,
    compress: Option<CompressPolicy>,
    start: Instant,
    end: Instant,
    global: usize,
) -> Result<(), NetError> {
    let stats = &ctx.stats;
    stats.slow.borrow_mut().clients += 1;
    let template = EchoTemplate::new(ctx.args.slow_payload);
    let mut schedule = ctx.schedule(start, global);
    let mut out = Vec::new();
    let mut next_id = 1;
    let mut timer = Deadline::at(end);
    let check_every = Duration::from_millis(250);
    let mut written = 0u64;
    let mut outcome = None;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        match sys::tcp_state(&conn.stream) {
            Some(sys::TCP_CLOSE_WAIT) => {
                outcome = Some(("closed", now));
                break;
            }
            Some(sys::TCP_CLOSE) => {
                outcome = Some(("reset", now));
                break;
            }
            _ => {}
        }
        // Only queue more while the last request went out: a stalled socket needs no backlog.
        if out.is_empty() {
            if let Some(_intended) = schedule.take_due(now) {
                let mut body = Vec::with_capacity(template.len(next_id));
                template.write(&mut body, next_id);
                text_frame(&mut out, &body, compress);
                next_id += 1;
                ShardStats::add(&stats.sent, 1);
            }
        }
        let mut wake_at = (now + check_every).min(end);
        if out.is_empty() {
            if let Some(at) = schedule.peek() {
                wake_at = wake_at.min(at);
            }
        }
        timer.reset(wake_at);
        let stream = &mut conn.stream;
        let before = out.len();
        let r = std::future::poll_fn(|cx| {
            if !out.is_empty() {
                if let Poll::Ready(Err(e)) = stream.poll_flush(cx, &mut out) {
                    return Poll::Ready(Err(e));
                }
            }
            timer.poll_expired(cx).map(|()| Ok(()))
        })
        .await;
        written += before.saturating_sub(out.len()) as u64;
        if r.is_err() {
            outcome = Some(("reset", Instant::now()));
            break;
        }
    }
    conn.bytes_out += written;
    {
        let mut slow = stats.slow.borrow_mut();
        slow.bytes_written += written;
        match outcome {
            Some(("closed", at)) => {
                slow.closed_by_server += 1;
                slow.seconds_to_close
                    .push(at.saturating_duration_since(start).as_secs_f64());
            }
            Some((_, at)) => {
                slow.resets += 1;
                slow.seconds_to_close
                    .push(at.saturating_duration_since(start).as_secs_f64());
            }
            None => slow.still_open += 1,
        }
    }
    // Now read what the server sent, looking for its Close frame (bounded in time and bytes).
    let code = drain_for_close(conn, Instant::now() + Duration::from_secs(2)).await;
    *stats
        .slow
        .borrow_mut()
        .close_codes
        .entry(code.map_or_else(|| "none".to_owned(), |c| c.to_string()))
        .or_insert(0) += 1;
    Ok(())
}

/// Reads and decodes until a Close frame, EOF, error or `deadline`; the close code, if any.
async fn drain_for_close(conn: &mut Conn, deadline: Instant) -> Option<u16> {
    // Only the Close counts: compressed replies still queued before it (when permessage-deflate
    // was agreed) are passed over like the rest.
    let mut decoder = Decoder::new(Role::Client, MAX_MESSAGE).with_deflate();
    let mut budget: usize = 256 * 1024 * 1024;
    loop {
        loop {
            let decoded = decoder.decode(&mut conn.inbuf).ok()?;
            let consumed = decoded.consumed;
            if let Some(Event::Close(frame)) = decoded.event {
                return Some(frame.map_or(1005, |f| f.code.0));
            }
            conn.inbuf.drain(..consumed);
            if consumed == 0 {
                break;
            }
        }
        let n = conn.fill(deadline).await.ok()?;
        budget = budget.checked_sub(n)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_share_picks_the_right_count() {
        for (total, share, want) in [
            (100, 0.1, 10),
            (15000, 0.1, 1500),
            (7, 0.5, 4),
            (10, 0.0, 0),
        ] {
            let n = (0..total).filter(|&g| is_slow(g, total, share)).count();
            assert_eq!(n, want, "total {total} share {share}");
        }
        assert!((0..10).all(|g| is_slow(g, 10, 1.0)));
    }
}
