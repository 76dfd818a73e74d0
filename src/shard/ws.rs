//! The WebSocket side of a connection: the transport's WebSocket state machine in the
//! shard's driver loop, one entry of the shard's drivers.

use super::conn::Driver;
use super::io::Socket;
use super::ConnGuard;
use crate::auth::Principal;
use crate::metrics::Transport;
use crate::proto::ws::PerMessageDeflate;
use crate::transport::ws::{WsConnection, WsKind};
use std::rc::Rc;
use std::time::Instant;

/// A WebSocket connection's driver, run until it closes. `inbuf` holds any bytes the client
/// sent right after its handshake; `deflate` is the compression it agreed on.
pub(super) fn serve(
    stream: Socket,
    inbuf: Vec<u8>,
    conn: ConnGuard,
    kind: WsKind,
    deflate: Option<PerMessageDeflate>,
    principal: Option<Rc<Principal>>,
) -> Driver<WsConnection> {
    conn.set_transport(match kind {
        WsKind::Mcp => Transport::WsMcp,
        WsKind::Echo => Transport::WsEcho,
    });
    let shard = &conn.shard;
    let machine = WsConnection::new(
        kind,
        deflate,
        &shard.config,
        &shard.metrics,
        Instant::now(),
        principal,
    );
    Driver::new(stream, inbuf, conn, machine)
}
