//! Per-shard counters. Each shard owns one [`Metrics`] (plain `Cell`s: no
//! atomics on the request path); a scrape gathers them by message passing.

use std::cell::Cell;

/// Which transport a connection ended up speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP/1.1 (before or without an upgrade).
    Http,
    /// WebSocket carrying MCP at /mcp.
    WsMcp,
    /// Raw WebSocket echo at /echo.
    WsEcho,
}

impl Transport {
    /// Every transport, in label order.
    pub const ALL: [Transport; 3] = [Transport::Http, Transport::WsMcp, Transport::WsEcho];

    /// The Prometheus label value.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::WsMcp => "ws_mcp",
            Transport::WsEcho => "ws_echo",
        }
    }
}

/// Kinds of error the server counts; each bad input ticks exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A request head or body that broke an HTTP rule.
    HttpParse,
    /// A refused WebSocket opening handshake.
    WsHandshake,
    /// A WebSocket frame or message that broke an RFC 6455 rule.
    WsProtocol,
    /// A request head or message that did not arrive in time.
    Timeout,
    /// Origin or Host refused by policy.
    Policy,
    /// A JSON-RPC message that failed to parse or validate.
    JsonRpc,
    /// A socket error other than a clean close.
    Io,
    /// A connection refused because the shard was at its cap.
    ConnectionCap,
}

impl ErrorKind {
    /// Every kind, in label order.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::HttpParse,
        ErrorKind::WsHandshake,
        ErrorKind::WsProtocol,
        ErrorKind::Timeout,
        ErrorKind::Policy,
        ErrorKind::JsonRpc,
        ErrorKind::Io,
        ErrorKind::ConnectionCap,
    ];

    /// The Prometheus label value.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::HttpParse => "http_parse",
            ErrorKind::WsHandshake => "ws_handshake",
            ErrorKind::WsProtocol => "ws_protocol",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Policy => "policy",
            ErrorKind::JsonRpc => "jsonrpc",
            ErrorKind::Io => "io",
            ErrorKind::ConnectionCap => "connection_cap",
        }
    }
}

/// The HTTP statuses the server sends, for the per-status counter.
pub const STATUSES: [u16; 22] = [
    101, 200, 202, 204, 400, 403, 404, 405, 406, 408, 409, 410, 413, 414, 415, 421, 426, 429, 431,
    500, 501, 503,
];

/// The close codes counted when sent or received.
pub const CLOSE_CODES: [u16; 9] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 0];

/// One shard's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections currently open, by [`Transport`].
    pub open: [Cell<u64>; 3],
    /// Connections accepted since start.
    pub accepted: Cell<u64>,
    /// Responses sent, by index into [`STATUSES`].
    pub statuses: [Cell<u64>; STATUSES.len()],
    /// Close frames sent, by index into [`CLOSE_CODES`] (last slot: any other code).
    pub close_sent: [Cell<u64>; CLOSE_CODES.len()],
    /// Errors by [`ErrorKind`].
    pub errors: [Cell<u64>; ErrorKind::ALL.len()],
    /// WebSocket or JSON-RPC messages received.
    pub messages_in: Cell<u64>,
    /// WebSocket or JSON-RPC messages sent.
    pub messages_out: Cell<u64>,
    /// Bytes read from sockets.
    pub bytes_in: Cell<u64>,
    /// Bytes written to sockets.
    pub bytes_out: Cell<u64>,
}

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().wrapping_add(by));
}

impl Metrics {
    /// Counts one error of `kind`.
    pub fn error(&self, kind: ErrorKind) {
        bump(&self.errors[kind as usize], 1);
    }

    /// Counts one response with `status`.
    pub fn status(&self, status: u16) {
        if let Some(i) = STATUSES.iter().position(|&s| s == status) {
            bump(&self.statuses[i], 1);
        }
    }

    /// Counts one Close frame sent with `code`.
    pub fn close_sent(&self, code: u16) {
        let i = CLOSE_CODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(CLOSE_CODES.len() - 1);
        bump(&self.close_sent[i], 1);
    }

    /// A connection of `transport` opened.
    pub fn opened(&self, transport: Transport) {
        bump(&self.open[transport as usize], 1);
    }

    /// A connection of `transport` closed.
    pub fn closed(&self, transport: Transport) {
        let cell = &self.open[transport as usize];
        cell.set(cell.get().saturating_sub(1));
    }

    /// Counts bytes read.
    pub fn read(&self, n: usize) {
        bump(&self.bytes_in, n as u64);
    }

    /// Counts bytes written.
    pub fn wrote(&self, n: usize) {
        bump(&self.bytes_out, n as u64);
    }

    /// Counts one message received.
    pub fn message_in(&self) {
        bump(&self.messages_in, 1);
    }

    /// Counts one message sent.
    pub fn message_out(&self) {
        bump(&self.messages_out, 1);
    }
}
