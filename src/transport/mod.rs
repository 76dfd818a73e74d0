//! Sans-IO transport rules above the codecs: Streamable HTTP sessions and
//! streams, the WebSocket connection, and the outbound queue they share.
//! Nothing here names glommio or a socket: the shard feeds bytes, deadlines
//! and stop requests in and carries out what comes back.

pub mod admission;
pub mod auth;
mod error;
mod held;
pub mod http;
pub mod outbound;
mod stamp;
mod stateless;
pub mod streamable;
pub mod tls;
pub mod ws;

pub use error::TransportError;
pub(crate) use held::HeldBytes;

use crate::auth::Principal;
use crate::config::Config;
use crate::mcp::Dispatcher;
use crate::metrics::Metrics;
use crate::proto::origin::OriginPolicy;
use std::cell::RefCell;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Instant;

/// Work that outlives the call that started it (a handler still waiting).
pub type Task = Pin<Box<dyn Future<Output = ()>>>;

/// How the transport starts a [`Task`] on the shard's executor.
pub type Spawn = fn(Task);

/// What the transport rules use of their shard, lent for each call.
pub struct Env<'a> {
    /// The server's configuration (limits and timeouts).
    pub config: &'a Config,
    /// Which origins and hosts may call (DNS rebinding protection).
    pub policy: &'a OriginPolicy,
    /// The MCP dispatcher of this shard.
    pub dispatcher: &'a Dispatcher,
    /// This shard's counters.
    pub metrics: &'a Rc<Metrics>,
    /// This shard's Streamable HTTP and legacy sessions.
    pub sessions: &'a streamable::HttpSessions,
    /// This shard's admission control (per-client connection counts and rates).
    pub admission: &'a RefCell<admission::Admission>,
    /// This shard's authorization, when it is on.
    pub auth: Option<&'a auth::Authorizer>,
    /// Who the request being answered acts for (authorization on and the token good).
    pub principal: Option<&'a Rc<Principal>>,
    /// The address of the client being answered, when it could be read.
    pub peer: Option<IpAddr>,
    /// When the shard began to drain for shutdown, once it has.
    pub stopped_at: Option<Instant>,
    /// Starts a task on this shard.
    pub spawn: Spawn,
}

impl Env<'_> {
    /// Runs `task` to its first pause now; if it must wait, it goes on as a task of its
    /// own. Most handlers finish without waiting, and then no task is made.
    pub fn run(&self, task: impl Future<Output = ()> + 'static) {
        let mut task: Task = Box::pin(task);
        let waker = std::task::Waker::noop();
        if task
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_pending()
        {
            (self.spawn)(task);
        }
    }
}

/// What a connection does after a turn of its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving.
    Continue,
    /// Done and flushed: the connection may carry the next HTTP request.
    Reusable,
    /// Drop the connection now.
    Drop,
}

/// The rules of a connection past its HTTP head (a WebSocket, an SSE
/// response): the shard's one driver loop feeds them bytes, deadlines and
/// the stop request, and writes out their [`outbound::Outbound`] queue.
pub trait Connection {
    /// The bytes to write.
    fn outbound(&self) -> &outbound::Outbound;

    /// Takes up what `inbuf` holds (and any input held back at the bound).
    fn on_input(&mut self, inbuf: &mut Vec<u8>, env: &Env, now: Instant);

    /// Bytes arrived (already appended to `inbuf`).
    fn on_read(&mut self, inbuf: &mut Vec<u8>, now: Instant);

    /// The deadline passed; what now.
    fn on_timer(&mut self, env: &Env, now: Instant) -> Flow;

    /// The shard started draining.
    fn on_stop(&mut self, env: &Env, now: Instant);

    /// The next instant something time-driven is due.
    fn next_deadline(&self, env: &Env) -> Instant;

    /// Whether input is held back until the queue drains (see [`outbound::Outbound::has_room_again`]).
    fn is_holding(&self) -> bool;

    /// Whether more input may be read now (`buffered`: bytes already waiting).
    fn wants_read(&self, buffered: usize, config: &Config) -> bool;

    /// What to do once everything queued was written.
    fn when_flushed(&self) -> FlushedFlow;

    /// The input this connection holds partly received, counted against the shard's budget.
    fn inbound_held(&self, inbuf: &[u8]) -> usize;

    /// The shard's inbound budget refused that input.
    fn over_inbound_budget(&mut self, inbuf: &mut Vec<u8>, env: &Env);

    /// The connection ends (for whatever reason): release what it holds.
    fn on_end(&mut self, env: &Env);
}

/// What a connection does once its queue is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushedFlow {
    /// Keep going.
    Continue,
    /// Close the write side and keep reading until the peer closes (RFC 6455 §7.1.1).
    HalfClose,
    /// It is finished (see [`Flow`]).
    Finish(Flow),
}

#[cfg(test)]
mod tests;
