//! Every reason the transport refuses an HTTP request, and the one place
//! where a refusal becomes a status line, headers, a body and a counter tick.

use crate::auth::{Answer, TokenError};
use crate::mcp::stateless::{EnvelopeError, MetaError};
use crate::mcp::version;
use crate::metrics::{ErrorKind, Metrics};
use crate::proto::http1::{self, HttpError};
use crate::proto::jsonrpc;
use crate::proto::origin::PolicyError;
use crate::proto::sse::LastEventIdError;
use crate::proto::ws::handshake::{self, HandshakeError};
use crate::store::ring::ResumeError;
use crate::store::sessions::CreateError;
use std::fmt;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    // The connection and its requests.
    /// The shard holds its maximum number of connections.
    ConnectionLimit,
    /// The client's address holds `--max-connections-per-ip` connections on this shard.
    ConnectionsPerIp,
    /// The client's address opens connections faster than its rate.
    ConnectionRate {
        /// Seconds until it may open the next one.
        retry_after: u64,
    },
    /// The shard tracks as many clients as it may, none of them idle.
    TooManyClients,
    /// The request head or body broke an HTTP rule or limit.
    Malformed(HttpError),
    /// The head did not arrive within the header timeout.
    HeadTimedOut,
    /// The body did not arrive within the header timeout.
    BodyTimedOut,
    /// The shard holds its budget of partly received input.
    InboundBudget,
    /// The Origin or Host is not allowed (DNS rebinding protection).
    Forbidden(PolicyError),
    /// No endpoint at this path.
    NotFound,
    /// The endpoint does not take this method; `allow` lists those it takes.
    MethodNotAllowed {
        /// The value of the `Allow` header.
        allow: &'static str,
    },
    /// A WebSocket endpoint asked without an upgrade.
    UpgradeRequired,
    /// The WebSocket opening handshake is broken.
    Handshake(HandshakeError),
    /// Authorization refused the request: no token, a token that is not good, one without
    /// the scope the request needs, or one that could not be checked.
    Unauthorized {
        /// Why (its text is the body).
        error: TokenError,
        /// The status and challenge, made by [`TokenError::answer`].
        answer: Answer,
    },

    // MCP over HTTP: answered with a JSON-RPC error body.
    /// `MCP-Protocol-Version` names a revision this server does not speak.
    UnsupportedProtocolVersion(String),
    /// `Accept` does not list what the response may be.
    NotAcceptable(&'static str),
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The session id the request must carry is missing (the header or query parameter named).
    MissingSession(&'static str),
    /// More than one `Mcp-Session-Id`.
    DuplicateSessionId,
    /// The id names no live session of this transport.
    UnknownSession,
    /// The session's standalone GET stream is already open.
    StreamAlreadyOpen,
    /// `Last-Event-ID` is not an id this server could have sent.
    BadLastEventId(LastEventIdError),
    /// The stream cannot be resumed from that id.
    CannotResume(ResumeError),
    /// No session could be created.
    SessionRefused(CreateError),
    /// The session belongs to another node and only the shared event store, which is
    /// unreachable, could hand it over.
    EventStoreUnavailable,
    /// The body is not a valid JSON-RPC message; the dispatcher's error reply is the body.
    InvalidMessage(Vec<u8>),
    /// The client sends JSON-RPC messages faster than its rate (-32000).
    RequestRate {
        /// Seconds until its next message is admitted.
        retry_after: u64,
        /// The request id's JSON text, when the error answers the request itself (on the
        /// legacy transport's stream); an HTTP 429 answers its POST.
        id: Option<String>,
    },

    // MCP 2026-07-28 requests: a JSON-RPC error carrying the request's id.
    /// A standard header is missing or does not match the body (-32020).
    HeaderMismatch {
        /// The request id's JSON text.
        id: Option<String>,
        /// What does not match.
        detail: String,
    },
    /// `_meta` lacks a required field or has an invalid one (-32602).
    InvalidMeta {
        /// The request id's JSON text.
        id: Option<String>,
        /// Why.
        error: MetaError,
    },
    /// `_meta` names a revision not served statelessly (-32022).
    UnsupportedRevision {
        /// The request id's JSON text.
        id: Option<String>,
        /// The version asked for.
        requested: String,
    },
    /// The revision has no such method, or this server does not serve it (-32601).
    NoSuchMethod {
        /// The request id's JSON text.
        id: Option<String>,
        /// The method asked for.
        method: String,
    },
    /// Not one JSON-RPC request or notification (-32700 for bytes that are not JSON,
    /// else -32600).
    NotARequest(EnvelopeError),
    /// The tool needs client capabilities the request did not declare (-32021).
    MissingClientCapability {
        /// The request id's JSON text.
        id: Option<String>,
        /// The capabilities missing.
        missing: Vec<&'static str>,
    },
    /// A request reuses the id of one still running on the connection (-32600).
    IdInUse {
        /// The request id's JSON text.
        id: Option<String>,
    },
}

impl TransportError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            TransportError::ConnectionLimit
            | TransportError::InboundBudget
            | TransportError::SessionRefused(_)
            | TransportError::EventStoreUnavailable
            | TransportError::TooManyClients => 503,
            // RFC 6585 §4: "The 429 status code indicates that the user has sent too many
            // requests in a given amount of time ("rate limiting")."
            TransportError::ConnectionsPerIp
            | TransportError::ConnectionRate { .. }
            | TransportError::RequestRate { .. } => 429,
            TransportError::Malformed(e) => e.status(),
            TransportError::HeadTimedOut | TransportError::BodyTimedOut => 408,
            TransportError::Forbidden(_) => 403,
            TransportError::NotFound | TransportError::UnknownSession => 404,
            TransportError::MethodNotAllowed { .. } => 405,
            TransportError::UpgradeRequired => 426,
            TransportError::Handshake(e) => e.status(),
            TransportError::Unauthorized { answer, .. } => answer.status,
            TransportError::UnsupportedProtocolVersion(_)
            | TransportError::MissingSession(_)
            | TransportError::DuplicateSessionId
            | TransportError::BadLastEventId(_)
            | TransportError::InvalidMessage(_)
            | TransportError::CannotResume(ResumeError::UnknownEvent)
            | TransportError::HeaderMismatch { .. }
            | TransportError::InvalidMeta { .. }
            | TransportError::UnsupportedRevision { .. }
            | TransportError::NotARequest(_)
            | TransportError::MissingClientCapability { .. }
            | TransportError::IdInUse { .. } => 400,
            // Spec (2026-07-28, streamable-http): "If the server does not implement the
            // requested RPC method, it MUST respond with `404 Not Found` and a JSON-RPC error
            // with code `-32601`".
            TransportError::NoSuchMethod { .. } => 404,
            TransportError::NotAcceptable(_) => 406,
            TransportError::UnsupportedMediaType => 415,
            TransportError::StreamAlreadyOpen => 409,
            // The events are gone: say so instead of a silently empty stream.
            TransportError::CannotResume(ResumeError::Evicted | ResumeError::UnknownStream) => 410,
        }
    }

    /// Whether the connection closes after the answer: its input can no longer be trusted
    /// to start at a request, or the server sheds it.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            TransportError::ConnectionLimit
                | TransportError::ConnectionsPerIp
                | TransportError::ConnectionRate { .. }
                | TransportError::TooManyClients
                | TransportError::Malformed(_)
                | TransportError::HeadTimedOut
                | TransportError::BodyTimedOut
                | TransportError::InboundBudget
        )
    }

    /// The error counter this refusal ticks besides its status, if any.
    fn counted_as(&self) -> Option<ErrorKind> {
        match self {
            TransportError::ConnectionLimit => Some(ErrorKind::ConnectionCap),
            TransportError::Malformed(_) => Some(ErrorKind::HttpParse),
            TransportError::HeadTimedOut | TransportError::BodyTimedOut => Some(ErrorKind::Timeout),
            TransportError::Forbidden(_) => Some(ErrorKind::Policy),
            TransportError::Unauthorized { .. } => Some(ErrorKind::Auth),
            TransportError::Handshake(_) => Some(ErrorKind::WsHandshake),
            TransportError::InvalidMessage(_) => Some(ErrorKind::JsonRpc),
            _ => None,
        }
    }

    /// Whether the body is a JSON-RPC error (the MCP endpoints) rather than a line of text.
    fn speaks_json_rpc(&self) -> bool {
        matches!(
            self,
            TransportError::UnsupportedProtocolVersion(_)
                | TransportError::NotAcceptable(_)
                | TransportError::UnsupportedMediaType
                | TransportError::MissingSession(_)
                | TransportError::DuplicateSessionId
                | TransportError::UnknownSession
                | TransportError::StreamAlreadyOpen
                | TransportError::BadLastEventId(_)
                | TransportError::CannotResume(_)
                | TransportError::SessionRefused(_)
                | TransportError::EventStoreUnavailable
                | TransportError::HeaderMismatch { .. }
                | TransportError::InvalidMeta { .. }
                | TransportError::UnsupportedRevision { .. }
                | TransportError::NoSuchMethod { .. }
                | TransportError::NotARequest(_)
                | TransportError::MissingClientCapability { .. }
                | TransportError::IdInUse { .. }
                | TransportError::RequestRate { .. }
        )
    }

    /// The JSON-RPC error body of a refusal on an MCP endpoint (and the error message a
    /// 2026-07-28 WebSocket gets instead of a response).
    pub(crate) fn json_rpc_error(&self) -> Vec<u8> {
        // Spec (2026-07-28): every error echoes the request's id.
        let id = match self {
            TransportError::HeaderMismatch { id, .. }
            | TransportError::InvalidMeta { id, .. }
            | TransportError::UnsupportedRevision { id, .. }
            | TransportError::NoSuchMethod { id, .. }
            | TransportError::MissingClientCapability { id, .. }
            | TransportError::IdInUse { id }
            | TransportError::RequestRate { id, .. } => id.as_deref().and_then(raw_id),
            _ => None,
        };
        let (code, data) = match self {
            TransportError::HeaderMismatch { .. } => (jsonrpc::HEADER_MISMATCH, None),
            TransportError::InvalidMeta { .. } => (jsonrpc::INVALID_PARAMS, None),
            // Spec (2026-07-28, basic/index): UnsupportedProtocolVersionError carries
            // `data: {supported, requested}`.
            TransportError::UnsupportedRevision { requested, .. } => {
                let data = serde_json::json!({
                    "supported": [version::STATELESS],
                    "requested": requested,
                });
                let data = serde_json::value::to_raw_value(&data).ok();
                (jsonrpc::UNSUPPORTED_PROTOCOL_VERSION, data)
            }
            TransportError::NoSuchMethod { .. } => (jsonrpc::METHOD_NOT_FOUND, None),
            TransportError::MissingClientCapability { missing, .. } => {
                let required: serde_json::Map<String, serde_json::Value> = missing
                    .iter()
                    .map(|c| (c.to_string(), serde_json::json!({})))
                    .collect();
                let data = serde_json::json!({ "requiredCapabilities": required });
                let data = serde_json::value::to_raw_value(&data).ok();
                (jsonrpc::MISSING_CLIENT_CAPABILITY, data)
            }
            TransportError::NotARequest(EnvelopeError::Parse) => (jsonrpc::PARSE_ERROR, None),
            TransportError::SessionRefused(_) | TransportError::EventStoreUnavailable => {
                (jsonrpc::INTERNAL_ERROR, None)
            }
            TransportError::RequestRate { .. } => (jsonrpc::LIMIT_EXCEEDED, None),
            _ => (jsonrpc::INVALID_REQUEST, None),
        };
        let mut body = Vec::new();
        let id = id.as_deref().and_then(jsonrpc::RawId::new);
        jsonrpc::write_error(&mut body, id, code, &self.to_string(), data.as_deref());
        body
    }

    /// Queues the response in `out` and counts it.
    pub fn respond(&self, out: &mut Vec<u8>, keep_alive: bool, metrics: &Metrics) {
        let keep_alive = keep_alive && !self.closes_connection();
        let status = self.status();
        let retry_after: String;
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(3);
        let body = match self {
            TransportError::InvalidMessage(reply) => reply.clone(),
            _ if self.speaks_json_rpc() => self.json_rpc_error(),
            _ => format!("{self}\n").into_bytes(),
        };
        headers.push((
            "content-type",
            if self.speaks_json_rpc() || matches!(self, TransportError::InvalidMessage(_)) {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            },
        ));
        match self {
            TransportError::MethodNotAllowed { allow } => headers.push(("allow", allow)),
            // RFC 9110 §15.6.4: 503 "indicates that the server is currently unable to handle
            // the request due to a temporary overload"; Retry-After says when to come back.
            TransportError::ConnectionLimit
            | TransportError::InboundBudget
            | TransportError::SessionRefused(_)
            | TransportError::EventStoreUnavailable
            | TransportError::TooManyClients
            // A connection frees when a client closes one: no better time to name.
            | TransportError::ConnectionsPerIp => headers.push(("retry-after", "1")),
            // RFC 6585 §4: the 429 response "MAY include a Retry-After header indicating how
            // long to wait before making a new request"; the wait until the client's next token.
            TransportError::ConnectionRate { retry_after: secs }
            | TransportError::RequestRate {
                retry_after: secs, ..
            } => {
                retry_after = secs.to_string();
                headers.push(("retry-after", &retry_after));
            }
            // RFC 6750 §3: "If the protected resource request does not include authentication
            // credentials or does not contain an access token that enables access to the
            // protected resource, the resource server MUST include the HTTP
            // "WWW-Authenticate" response header field".
            TransportError::Unauthorized { answer, .. } => {
                if let Some(challenge) = &answer.www_authenticate {
                    headers.push(("www-authenticate", challenge));
                }
            }
            TransportError::UpgradeRequired => {
                headers.push(("upgrade", "websocket"));
                headers.push(("sec-websocket-version", handshake::VERSION));
            }
            // RFC 6455 §4.4: a server that does not speak the client's version "MUST
            // respond with an appropriate HTTP error code (such as 426 Upgrade Required) and a
            // |Sec-WebSocket-Version| header field indicating the version(s) the server is capable
            // of understanding".
            TransportError::Handshake(e) if e.status() == 426 => {
                headers.push(("sec-websocket-version", handshake::VERSION))
            }
            _ => {}
        }
        http1::write_response(out, status, &headers, &body, keep_alive);
        metrics.status(status);
        if let Some(kind) = self.counted_as() {
            metrics.error(kind);
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::ConnectionLimit => f.write_str("connection limit reached"),
            TransportError::ConnectionsPerIp => {
                f.write_str("Too Many Requests: too many connections from this address")
            }
            TransportError::ConnectionRate { retry_after } => write!(
                f,
                "Too Many Requests: new connections from this address are rate limited; \
                 retry after {retry_after} s"
            ),
            TransportError::TooManyClients => {
                f.write_str("Service Unavailable: too many clients; retry later")
            }
            TransportError::RequestRate { retry_after, .. } => {
                write!(f, "rate limited; retry after {retry_after} s")
            }
            TransportError::Malformed(e) => write!(f, "{e}"),
            TransportError::HeadTimedOut => f.write_str("request head timed out"),
            TransportError::BodyTimedOut => f.write_str("request body timed out"),
            TransportError::InboundBudget => {
                f.write_str("server inbound budget exhausted; retry later")
            }
            TransportError::Forbidden(e) => f.write_str(e.message()),
            TransportError::NotFound => f.write_str("not found"),
            TransportError::MethodNotAllowed { .. } => f.write_str("method not allowed"),
            TransportError::UpgradeRequired => f.write_str("this endpoint speaks WebSocket"),
            TransportError::Handshake(e) => write!(f, "{e}"),
            TransportError::Unauthorized { error, .. } => write!(f, "{error}"),
            TransportError::UnsupportedProtocolVersion(v) => {
                write!(f, "Bad Request: unsupported MCP-Protocol-Version {v}")
            }
            TransportError::NotAcceptable(what) => write!(f, "Not Acceptable: {what}"),
            TransportError::UnsupportedMediaType => {
                f.write_str("Unsupported Media Type: Content-Type must be application/json")
            }
            TransportError::MissingSession(name) => write!(f, "Bad Request: {name} is required"),
            TransportError::DuplicateSessionId => {
                f.write_str("Bad Request: more than one Mcp-Session-Id")
            }
            TransportError::UnknownSession => f.write_str("Not Found: no such session"),
            TransportError::StreamAlreadyOpen => {
                f.write_str("Conflict: this session's GET stream is already open")
            }
            TransportError::BadLastEventId(e) => write!(f, "Bad Request: {e}"),
            TransportError::CannotResume(e) if self.status() == 410 => {
                write!(f, "Gone: cannot resume: {e}")
            }
            TransportError::CannotResume(e) => write!(f, "Bad Request: cannot resume: {e}"),
            TransportError::SessionRefused(CreateError::Full) => {
                f.write_str("Service Unavailable: session limit reached, retry later")
            }
            TransportError::SessionRefused(CreateError::NoRandomness) => {
                f.write_str("Service Unavailable: no randomness for a session id")
            }
            TransportError::EventStoreUnavailable => f.write_str(
                "Service Unavailable: this session's node is gone and the event store that \
                 would hand it over is unreachable; retry later",
            ),
            TransportError::InvalidMessage(_) => f.write_str("Bad Request: invalid JSON-RPC"),
            TransportError::HeaderMismatch { detail, .. } => {
                write!(f, "Header mismatch: {detail}")
            }
            TransportError::InvalidMeta { error, .. } => f.write_str(error.message()),
            TransportError::UnsupportedRevision { requested, .. } => write!(
                f,
                "Unsupported protocol version {requested}: this server serves {} per request \
                 and earlier revisions through initialize",
                version::STATELESS
            ),
            TransportError::NoSuchMethod { method, .. } => {
                write!(f, "Method not found: {method}")
            }
            TransportError::MissingClientCapability { missing, .. } => write!(
                f,
                "Missing required client capability: {}",
                missing.join(", ")
            ),
            TransportError::IdInUse { .. } => f.write_str(
                "Invalid Request: a request with this id is still running on this connection",
            ),
            TransportError::NotARequest(EnvelopeError::Parse) => f.write_str("Parse error"),
            TransportError::NotARequest(EnvelopeError::NotAnObject) => f.write_str(
                "Invalid Request: the body must be one JSON-RPC request or notification",
            ),
        }
    }
}

impl std::error::Error for TransportError {}

/// The id's JSON text back as a raw value (it came from one).
fn raw_id(text: &str) -> Option<Box<serde_json::value::RawValue>> {
    serde_json::value::RawValue::from_string(text.to_owned()).ok()
}
