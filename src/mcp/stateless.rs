//! MCP 2026-07-28's per-request model: what a request carries in `_meta`
//! instead of an `initialize` handshake, and which methods the revision has.

use super::session::LogLevel;
use crate::auth::Principal;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::rc::Rc;

/// `params._meta` keys of a 2026-07-28 request.
///
/// Spec (2026-07-28, basic/index): `protocolVersion` (required), `clientInfo` (optional),
/// `clientCapabilities` (required), `logLevel` (optional), each under the
/// `io.modelcontextprotocol/` prefix.
#[derive(Debug, Default, Deserialize)]
pub struct MetaFields<'a> {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", borrow, default)]
    protocol_version: Option<Cow<'a, str>>,
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities", borrow, default)]
    client_capabilities: Option<&'a RawValue>,
    #[serde(rename = "io.modelcontextprotocol/clientInfo", borrow, default)]
    client_info: Option<&'a RawValue>,
    #[serde(rename = "io.modelcontextprotocol/logLevel", borrow, default)]
    log_level: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
struct ParamsFields<'a> {
    #[serde(rename = "_meta", borrow, default)]
    meta: Option<MetaFields<'a>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct EnvelopeFields<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// What the transport reads of one message before serving it: enough to pick the
/// revision, check the headers against the body and refuse it with its id.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// The request id's JSON text, if the message has one.
    pub id: Option<&'a RawValue>,
    /// The method, if any (a response has none).
    pub method: Option<Cow<'a, str>>,
    /// `params.name` (tools/call, prompts/get).
    pub name: Option<Cow<'a, str>>,
    /// `params.uri` (resources/read).
    pub uri: Option<Cow<'a, str>>,
    /// `params.arguments` (tools/call), as JSON text.
    pub arguments: Option<&'a RawValue>,
    /// `params._meta`, if present.
    pub meta: Option<MetaFields<'a>>,
}

/// Why a message has no envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON (-32700).
    Parse,
    /// JSON, but not one object (-32600): 2026-07-28 has no batches.
    NotAnObject,
}

impl<'a> Envelope<'a> {
    /// Reads the envelope of one JSON-RPC message.
    pub fn parse(body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let text = simdutf8::basic::from_utf8(body).map_err(|_| EnvelopeError::Parse)?;
        // One pass when it is an object (serde would also read a struct from an array, so
        // anything else is classified apart); a second only to tell bad JSON from JSON that
        // is not one object.
        let fields = match text.trim_start().starts_with('{') {
            true => serde_json::from_str::<EnvelopeFields<'a>>(text).ok(),
            false => None,
        };
        let Some(fields) = fields else {
            return Err(match serde_json::from_str::<&RawValue>(text) {
                Ok(_) => EnvelopeError::NotAnObject,
                Err(_) => EnvelopeError::Parse,
            });
        };
        // Params of the wrong shape are the dispatcher's to refuse; here they carry nothing.
        let params: ParamsFields<'a> = fields
            .params
            .filter(|p| p.get().starts_with('{'))
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        Ok(Envelope {
            id: fields.id,
            method: fields.method,
            name: params.name,
            uri: params.uri,
            arguments: params.arguments,
            meta: params.meta,
        })
    }

    /// Whether this is a request (it has an id and a method).
    pub fn is_request(&self) -> bool {
        self.id.is_some() && self.method.is_some()
    }
}

/// Why `_meta` does not make a valid 2026-07-28 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaError {
    /// No `_meta`, or no `protocolVersion` in it.
    MissingProtocolVersion,
    /// No `clientCapabilities` object.
    MissingClientCapabilities,
    /// `logLevel` is not a log level.
    InvalidLogLevel,
}

impl MetaError {
    /// Why, in words for the client.
    pub fn message(self) -> &'static str {
        match self {
            MetaError::MissingProtocolVersion => {
                "Invalid params: _meta[\"io.modelcontextprotocol/protocolVersion\"] is required"
            }
            MetaError::MissingClientCapabilities => {
                "Invalid params: _meta[\"io.modelcontextprotocol/clientCapabilities\"] must be an object"
            }
            MetaError::InvalidLogLevel => {
                "Invalid params: _meta[\"io.modelcontextprotocol/logLevel\"] is not a log level"
            }
        }
    }
}

/// A 2026-07-28 request's own context, owned for as long as it runs.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The client's capabilities (JSON text of an object).
    pub client_capabilities: Box<RawValue>,
    /// The client's identity, if sent.
    pub client_info: Option<Box<RawValue>>,
    /// The lowest level of `notifications/message` the client wants; none without it.
    pub log_level: Option<LogLevel>,
    /// Who the request acts for (authorization on): the transport sets it.
    pub principal: Option<Rc<Principal>>,
}

impl MetaFields<'_> {
    /// Whether any of the revision's per-request fields is present (a 2025 `_meta` carries
    /// only a progress token).
    pub fn is_modern(&self) -> bool {
        self.protocol_version.is_some()
            || self.client_capabilities.is_some()
            || self.client_info.is_some()
            || self.log_level.is_some()
    }

    /// The protocol version the request names, if any.
    pub fn protocol_version(&self) -> Option<&str> {
        self.protocol_version.as_deref()
    }

    /// Checks the required fields.
    ///
    /// Spec (2026-07-28, basic/index): "A request missing any required field is malformed;
    /// the server MUST reject it with JSON-RPC error code `-32602` (Invalid params)."
    pub fn validate(&self) -> Result<RequestMeta, MetaError> {
        if self.protocol_version.is_none() {
            return Err(MetaError::MissingProtocolVersion);
        }
        let client_capabilities = self
            .client_capabilities
            .filter(|c| c.get().starts_with('{'))
            .ok_or(MetaError::MissingClientCapabilities)?;
        // Spec (2026-07-28, logging): an invalid level SHOULD be refused with -32602.
        let log_level = match self.log_level {
            None => None,
            Some(raw) => Some(
                serde_json::from_str::<LogLevel>(raw.get())
                    .map_err(|_| MetaError::InvalidLogLevel)?,
            ),
        };
        Ok(RequestMeta {
            client_capabilities: client_capabilities.to_owned(),
            client_info: self.client_info.map(|c| c.to_owned()),
            log_level,
            principal: None,
        })
    }
}

/// Whether the 2026-07-28 revision has `method` as a client request this server serves.
///
/// Spec (2026-07-28, changelog): `initialize`, `ping`, `logging/setLevel`,
/// `resources/subscribe` and `resources/unsubscribe` are gone; for anything else not served,
/// streamable-http: "If the server does not implement the requested RPC method, it MUST
/// respond with `404 Not Found` and a JSON-RPC error with code `-32601`".
pub fn serves(method: &str) -> bool {
    matches!(
        method,
        "server/discover"
            | "subscriptions/listen"
            | "tools/list"
            | "tools/call"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "prompts/list"
            | "prompts/get"
            | "completion/complete"
    )
}

/// Whether a complete result of `method` carries caching hints.
///
/// Spec (2026-07-28, server/utilities/caching): "Servers MUST include caching hints on
/// results with `resultType: "complete"` returned by ... `server/discover`, `tools/list`,
/// `prompts/list`, `resources/list`, `resources/templates/list`, `resources/read`."
pub fn is_cacheable(method: &str) -> bool {
    matches!(
        method,
        "server/discover"
            | "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(text: &str) -> Envelope<'_> {
        Envelope::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_envelope_has_what_headers_and_refusals_need() {
        let e = envelope(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t","arguments":{},
            "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
            "io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        );
        assert_eq!(e.id.unwrap().get(), "7");
        assert_eq!(e.method.as_deref(), Some("tools/call"));
        assert_eq!(e.name.as_deref(), Some("t"));
        let meta = e.meta.unwrap();
        assert_eq!(meta.protocol_version(), Some("2026-07-28"));
        let valid = meta.validate().unwrap();
        assert_eq!(valid.client_capabilities.get(), "{}");
        assert_eq!(valid.log_level, None);
        assert!(envelope(r#"{"id":1,"method":"ping","params":[1]}"#)
            .meta
            .is_none());
        assert_eq!(
            Envelope::parse(b"[{}]").unwrap_err(),
            EnvelopeError::NotAnObject
        );
        assert_eq!(Envelope::parse(b"{").unwrap_err(), EnvelopeError::Parse);
    }

    #[test]
    fn meta_needs_its_required_fields() {
        let check = |meta: &str| {
            let text = format!(r#"{{"id":1,"method":"tools/list","params":{{"_meta":{meta}}}}}"#);
            let envelope = Envelope::parse(text.as_bytes()).unwrap();
            envelope.meta.unwrap().validate().map(|m| m.log_level)
        };
        let version = r#""io.modelcontextprotocol/protocolVersion":"2026-07-28""#;
        let caps = r#""io.modelcontextprotocol/clientCapabilities":{}"#;
        assert_eq!(
            check(&format!("{{{caps}}}")),
            Err(MetaError::MissingProtocolVersion)
        );
        assert_eq!(
            check(&format!("{{{version}}}")),
            Err(MetaError::MissingClientCapabilities)
        );
        let level = r#""io.modelcontextprotocol/logLevel":"#;
        assert_eq!(
            check(&format!(r#"{{{version},{caps},{level}"loud"}}"#)),
            Err(MetaError::InvalidLogLevel)
        );
        assert_eq!(
            check(&format!(r#"{{{version},{caps},{level}"info"}}"#)),
            Ok(Some(LogLevel::Info))
        );
    }

    #[test]
    fn removed_methods_are_not_served() {
        for gone in [
            "initialize",
            "ping",
            "logging/setLevel",
            "resources/subscribe",
            "x",
        ] {
            assert!(!serves(gone), "{gone}");
        }
        assert!(serves("server/discover") && serves("tools/call"));
        assert!(is_cacheable("resources/read") && !is_cacheable("tools/call"));
    }
}
