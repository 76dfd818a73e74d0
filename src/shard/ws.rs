//! The WebSocket side of a connection: a task of its own that runs the
//! transport's WebSocket state machine in the shard's driver loop.

use super::conn::drive;
use super::io::Socket;
use super::ConnGuard;
use crate::auth::Principal;
use crate::metrics::Transport;
use crate::proto::ws::PerMessageDeflate;
use crate::transport::ws::{WsConnection, WsKind};
use std::future::Future;
use std::rc::Rc;
use std::time::Instant;

/// Runs a WebSocket connection until it closes. `inbuf` holds any bytes the
/// client sent right after its handshake; `deflate` is the compression it agreed on.
///
/// Not an `async fn`: one would keep its arguments in the task beside the locals made from
/// them; the block below works on its captures in place (736 B per connection against 528).
pub(super) fn serve(
    mut stream: Socket,
    mut inbuf: Vec<u8>,
    conn: ConnGuard,
    kind: WsKind,
    deflate: Option<PerMessageDeflate>,
    principal: Option<Rc<Principal>>,
) -> impl Future<Output = ()> {
    conn.set_transport(match kind {
        WsKind::Mcp => Transport::WsMcp,
        WsKind::Echo => Transport::WsEcho,
    });
    let shard = &conn.shard;
    let mut machine = WsConnection::new(
        kind,
        deflate,
        &shard.config,
        &shard.metrics,
        Instant::now(),
        conn.peer,
        principal,
    );
    async move {
        drive(&mut stream, &mut inbuf, &conn, &mut machine).await;
    }
}
