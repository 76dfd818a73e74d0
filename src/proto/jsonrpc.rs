//! JSON-RPC 2.0 message model, parser and serializers (sans-IO).
//!
//! Parsing borrows from the input: ids, params, results and error data stay
//! `&RawValue` slices, so a dispatcher only pays for the parts it reads, and
//! ids can be echoed back byte-exact. Serializers append straight to a
//! `Vec<u8>` without building an intermediate `serde_json::Value`.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal JSON-RPC error.
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP: the requested resource does not exist.
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// A server bound was reached (JSON-RPC 2.0: "-32000 to -32099 Server error. Reserved for
/// implementation-defined server-errors.").
pub const LIMIT_EXCEEDED: i64 = -32000;
/// ringmcp: the node running this request died before answering it, and the node that took
/// its session over tells the client to send it again (`data: {"retry": true}`). Outside the
/// JSON-RPC reserved range, as MCP 2026-07-28 (basic, error codes) asks: "New error codes for
/// purposes not defined by this specification **SHOULD** be allocated outside the JSON-RPC
/// reserved range (`-32768` to `-32000`)".
pub const REQUEST_LOST: i64 = -31000;
/// MCP 2026-07-28: a request header does not match the request body (`HeaderMismatch`).
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: the client did not declare a capability the request needs.
pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
/// MCP 2026-07-28: the request names a protocol version the server does not serve.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Everything that can go wrong at the JSON-RPC level, as sent to the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The bytes were not JSON (-32700).
    Parse,
    /// Valid JSON, but not a valid message, or not acceptable now (-32600).
    InvalidRequest(Cow<'static, str>),
    /// No such method (-32601); carries the method name.
    MethodNotFound(String),
    /// Parameters missing or of the wrong shape (-32602).
    InvalidParams(Cow<'static, str>),
    /// The server failed while handling a valid request (-32603).
    Internal(Cow<'static, str>),
    /// MCP: no resource has this URI (-32002); carries the URI.
    ResourceNotFound(String),
    /// MCP 2026-07-28: no resource has this URI, as invalid params (-32602, `data.uri`).
    /// Spec (2026-07-28, basic): implementations "MUST NOT emit these codes: `-32002` —
    /// resource not found ... (replaced by `-32602`)".
    NoSuchResource(String),
    /// A server bound refused the request (-32000); says which.
    LimitExceeded(Cow<'static, str>),
}

impl Error {
    /// The JSON-RPC error code of this error.
    pub fn code(&self) -> i64 {
        match self {
            Error::Parse => PARSE_ERROR,
            Error::InvalidRequest(_) => INVALID_REQUEST,
            Error::MethodNotFound(_) => METHOD_NOT_FOUND,
            Error::InvalidParams(_) | Error::NoSuchResource(_) => INVALID_PARAMS,
            Error::Internal(_) => INTERNAL_ERROR,
            Error::ResourceNotFound(_) => RESOURCE_NOT_FOUND,
            Error::LimitExceeded(_) => LIMIT_EXCEEDED,
        }
    }

    /// The one mapping to the wire: appends a complete error response.
    ///
    /// Spec (MCP basic): "Error responses MUST include the same ID as the
    /// request they correspond to (except in error cases where the ID could
    /// not be read due a malformed request)." — so `id` is `None` only then,
    /// and is written as `null`.
    pub fn write_response(&self, out: &mut Vec<u8>, id: Option<RawId<'_>>) {
        let message: Cow<'_, str> = match self {
            Error::Parse => Cow::Borrowed("Parse error"),
            Error::MethodNotFound(method) => Cow::Owned(format!("Method not found: {method}")),
            Error::InvalidRequest(m)
            | Error::InvalidParams(m)
            | Error::Internal(m)
            | Error::LimitExceeded(m) => Cow::Borrowed(m.as_ref()),
            // Spec (resources): the example error is code -32002 with
            // message "Resource not found" and data `{"uri": ...}`.
            Error::ResourceNotFound(uri) | Error::NoSuchResource(uri) => {
                write_error_head(out, id, self.code(), "Resource not found");
                out.extend_from_slice(br#","data":{"uri":"#);
                write_json_str(out, uri);
                out.extend_from_slice(b"}}}");
                return;
            }
        };
        write_error(out, id, self.code(), &message, None);
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse => write!(f, "parse error"),
            Error::MethodNotFound(m) => write!(f, "method not found: {m}"),
            Error::InvalidRequest(m)
            | Error::InvalidParams(m)
            | Error::Internal(m)
            | Error::LimitExceeded(m) => write!(f, "{m}"),
            Error::ResourceNotFound(uri) | Error::NoSuchResource(uri) => {
                write!(f, "resource not found: {uri}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// True if `raw` is a JSON string or a JSON integer (no fraction, no exponent).
///
/// `raw` is already known to be valid JSON, so a leading quote means a whole
/// valid string and a digit run means a valid integer.
fn is_string_or_integer(raw: &RawValue) -> bool {
    let text = raw.get().as_bytes();
    match text.first() {
        Some(b'"') => true,
        Some(b'-') => text.len() > 1 && text[1..].iter().all(u8::is_ascii_digit),
        Some(b) if b.is_ascii_digit() => text.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// A request id (or progress token) as received: a JSON string or integer,
/// borrowed from the message bytes.
#[derive(Clone, Copy, Debug)]
pub struct RawId<'a>(&'a RawValue);

impl<'a> RawId<'a> {
    /// Accepts `raw` only if it is a string or an integer.
    ///
    /// Spec (MCP basic): "Requests MUST include a string or integer ID." and
    /// "Unlike base JSON-RPC, the ID MUST NOT be `null`."
    pub fn new(raw: &'a RawValue) -> Option<Self> {
        is_string_or_integer(raw).then_some(RawId(raw))
    }

    /// The id's JSON text exactly as received (quotes and escapes included).
    pub fn get(self) -> &'a str {
        self.0.get()
    }

    /// An owned copy, comparable by value.
    pub fn to_id(self) -> Id {
        Id::from_checked(self.0)
    }

    /// The id as an unsigned integer, if it is one (a client that numbers its requests
    /// matches replies with this).
    pub fn as_u64(self) -> Option<u64> {
        self.0.get().parse().ok()
    }
}

/// Value identity of an id: `"1"` and `1` differ, `"a"` and `"\u0061"` match.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum IdKey {
    /// Integer digits; JSON integers have one spelling (leading zeros are invalid).
    Int(Box<str>),
    /// Decoded string contents.
    Str(String),
    /// A string serde_json would not decode (lone surrogate escape): compared raw.
    Undecodable(Box<str>),
}

/// An owned request id or progress token: keeps the exact bytes for echoing,
/// and compares/hashes by JSON value so cancellation can find requests.
#[derive(Clone, Debug)]
pub struct Id {
    raw: Box<RawValue>,
    key: IdKey,
}

impl Id {
    /// Parses a standalone id from JSON text; `None` unless string or integer.
    pub fn parse(json: &str) -> Option<Id> {
        let raw: &RawValue = serde_json::from_str(json).ok()?;
        RawId::new(raw).map(RawId::to_id)
    }

    fn from_checked(raw: &RawValue) -> Id {
        let text = raw.get();
        let key = if text.starts_with('"') {
            match serde_json::from_str::<String>(text) {
                Ok(s) => IdKey::Str(s),
                Err(_) => IdKey::Undecodable(text.into()),
            }
        } else {
            IdKey::Int(text.into())
        };
        Id {
            raw: raw.to_owned(),
            key,
        }
    }

    /// Borrows this id for the serializers.
    pub fn as_raw(&self) -> RawId<'_> {
        RawId(&self.raw)
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Id {}

impl Hash for Id {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

/// Writes the id's original JSON text.
impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw.get())
    }
}

/// A valid JSON-RPC 2.0 message.
#[derive(Debug)]
pub enum Message<'a> {
    /// Expects a reply.
    Request(Request<'a>),
    /// One-way; never replied to.
    Notification(Notification<'a>),
    /// A successful reply from the peer.
    Response(Response<'a>),
    /// A failed reply from the peer.
    ErrorResponse(ErrorResponse<'a>),
}

/// A call expecting a response.
#[derive(Debug)]
pub struct Request<'a> {
    /// The id to echo in the reply.
    pub id: RawId<'a>,
    /// The method name.
    pub method: Cow<'a, str>,
    /// Object or array params; absent (or `null`) is `None`.
    pub params: Option<&'a RawValue>,
}

/// A one-way message.
#[derive(Debug)]
pub struct Notification<'a> {
    /// The method name.
    pub method: Cow<'a, str>,
    /// Object or array params; absent (or `null`) is `None`.
    pub params: Option<&'a RawValue>,
}

/// A successful response.
#[derive(Debug)]
pub struct Response<'a> {
    /// Id of the request this answers.
    pub id: RawId<'a>,
    /// The result value, unparsed.
    pub result: &'a RawValue,
}

/// An error response.
#[derive(Debug)]
pub struct ErrorResponse<'a> {
    /// Id of the request this answers; `None` if the peer could not read it.
    pub id: Option<RawId<'a>>,
    /// The error object.
    pub error: ErrorObject<'a>,
}

/// The `error` member of an error response.
#[derive(Debug, Deserialize)]
pub struct ErrorObject<'a> {
    /// Integer error code.
    pub code: i64,
    /// Short description.
    #[serde(borrow)]
    pub message: Cow<'a, str>,
    /// Optional extra information, unparsed.
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

/// Why some input is not a valid message, and which id to answer with.
#[derive(Debug)]
pub struct Invalid<'a> {
    /// The id, if one could be read from the input.
    pub id: Option<RawId<'a>>,
    /// -32700 or -32600.
    pub error: Error,
}

/// One parsed message, or the reason it is not one.
pub type Item<'a> = Result<Message<'a>, Invalid<'a>>;

/// What the bytes contained: one message or a batch (JSON array).
#[derive(Debug)]
pub enum Parsed<'a> {
    /// A single message (or a top-level parse failure, incl. an empty batch).
    Single(Item<'a>),
    /// A non-empty batch, one item per element, in order.
    Batch(Vec<Item<'a>>),
}

/// All members read as raw JSON so that any JSON object deserializes and
/// shape rules are checked by hand, with the id available for the reply.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// `Option<&RawValue>` would turn an explicit `null` into `None`; an explicit
/// `"id": null` must stay distinguishable from a missing id.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Reads a JSON string, borrowing when it has no escapes.
fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .ok()
            .map(Cow::Owned),
    }
}

fn invalid<'a>(id: Option<RawId<'a>>, why: &'static str) -> Item<'a> {
    Err(Invalid {
        id,
        error: Error::InvalidRequest(Cow::Borrowed(why)),
    })
}

impl<'a> Envelope<'a> {
    fn into_item(self) -> Item<'a> {
        let id = self.id.and_then(RawId::new);
        // Spec (JSON-RPC 2.0): "jsonrpc: A String specifying the version of
        // the JSON-RPC protocol. MUST be exactly "2.0"."
        if self.jsonrpc.and_then(json_str).is_none_or(|v| v != "2.0") {
            return invalid(id, "Invalid Request: \"jsonrpc\" must be \"2.0\"");
        }
        match (self.method, self.result, self.error) {
            (Some(method), None, None) => {
                let Some(method) = json_str(method) else {
                    return invalid(id, "Invalid Request: \"method\" must be a string");
                };
                // Spec (JSON-RPC 2.0): "If present, parameters for the rpc call
                // MUST be provided as a Structured value." `null` is read as
                // absent, as common SDKs do.
                let params = match self.params {
                    None => None,
                    Some(p) if p.get() == "null" => None,
                    Some(p) if p.get().starts_with(['{', '[']) => Some(p),
                    Some(_) => {
                        return invalid(
                            id,
                            "Invalid Request: \"params\" must be an object or array",
                        )
                    }
                };
                match (self.id, id) {
                    // Spec (MCP basic): "Notifications MUST NOT include an ID."
                    (None, _) => Ok(Message::Notification(Notification { method, params })),
                    (Some(_), Some(id)) => Ok(Message::Request(Request { id, method, params })),
                    (Some(_), None) => invalid(
                        None,
                        "Invalid Request: \"id\" must be a string or integer (not null)",
                    ),
                }
            }
            (None, Some(result), None) => match id {
                Some(id) => Ok(Message::Response(Response { id, result })),
                None => invalid(
                    None,
                    "Invalid Request: response \"id\" must be a string or integer",
                ),
            },
            (None, None, Some(error)) => {
                // An error response may carry a null id when the peer could not
                // read ours; any other non-id value is malformed.
                if self.id.is_some_and(|raw| raw.get() != "null") && id.is_none() {
                    return invalid(
                        None,
                        "Invalid Request: response \"id\" must be a string or integer",
                    );
                }
                match serde_json::from_str::<ErrorObject<'a>>(error.get()) {
                    Ok(error) => Ok(Message::ErrorResponse(ErrorResponse { id, error })),
                    Err(_) => invalid(
                        id,
                        "Invalid Request: \"error\" must be an object with integer \"code\" and string \"message\"",
                    ),
                }
            }
            (Some(_), _, _) => invalid(
                id,
                "Invalid Request: a message cannot have both \"method\" and \"result\"/\"error\"",
            ),
            (None, Some(_), Some(_)) => invalid(
                id,
                "Invalid Request: a response cannot have both \"result\" and \"error\"",
            ),
            (None, None, None) => invalid(
                id,
                "Invalid Request: not a request, notification or response",
            ),
        }
    }
}

/// Parses one element already known to be valid JSON.
fn parse_element(raw: &RawValue) -> Item<'_> {
    match serde_json::from_str::<Envelope<'_>>(raw.get()) {
        Ok(envelope) => envelope.into_item(),
        // Valid JSON that is not an object, or an object with a repeated member.
        Err(_) => invalid(None, "Invalid Request: expected a JSON-RPC message object"),
    }
}

/// Parses one message or batch from `bytes`.
///
/// Invalid JSON yields -32700 with no id; valid JSON that is not a valid
/// message yields -32600 with the id if it could be read. An empty array is a
/// single -32600 (JSON-RPC 2.0: "rpc call with an empty Array").
pub fn parse(bytes: &[u8]) -> Parsed<'_> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return match serde_json::from_slice::<Vec<&RawValue>>(bytes) {
            Ok(items) if items.is_empty() => {
                Parsed::Single(invalid(None, "Invalid Request: empty batch"))
            }
            Ok(items) => Parsed::Batch(items.into_iter().map(parse_element).collect()),
            Err(_) => Parsed::Single(Err(Invalid {
                id: None,
                error: Error::Parse,
            })),
        };
    }
    match serde_json::from_slice::<Envelope<'_>>(bytes) {
        Ok(envelope) => Parsed::Single(envelope.into_item()),
        Err(_) => {
            // The typed pass can stop early on a shape problem before reaching
            // a syntax error further on, so check the whole input is JSON.
            let error = if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
                Error::InvalidRequest(Cow::Borrowed(
                    "Invalid Request: expected a JSON-RPC message object",
                ))
            } else {
                Error::Parse
            };
            Parsed::Single(Err(Invalid { id: None, error }))
        }
    }
}

/// One message a client received, sorted as a client needs it (the client role of [`parse`]):
/// the reply to one of its requests, or a message the server started.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// The reply to the request with this id: its result, or its error.
    Reply {
        /// Id of the request answered.
        id: RawId<'a>,
        /// The result value, unparsed, or the error object.
        outcome: Result<&'a RawValue, ErrorObject<'a>>,
    },
    /// An error response tied to no request: the server could not read the request's id.
    UntiedError(ErrorObject<'a>),
    /// A notification, or a request from the server (with its id).
    FromServer {
        /// The method name.
        method: Cow<'a, str>,
        /// The id to answer a server-to-client request with; `None` for a notification.
        id: Option<RawId<'a>>,
    },
    /// Not one valid JSON-RPC message (a batch is not a reply either).
    Invalid,
}

/// Sorts one message a client received (see [`Incoming`]).
pub fn classify(bytes: &[u8]) -> Incoming<'_> {
    match parse(bytes) {
        Parsed::Single(Ok(message)) => match message {
            Message::Response(r) => Incoming::Reply {
                id: r.id,
                outcome: Ok(r.result),
            },
            Message::ErrorResponse(ErrorResponse {
                id: Some(id),
                error,
            }) => Incoming::Reply {
                id,
                outcome: Err(error),
            },
            Message::ErrorResponse(ErrorResponse { id: None, error }) => {
                Incoming::UntiedError(error)
            }
            Message::Request(r) => Incoming::FromServer {
                method: r.method,
                id: Some(r.id),
            },
            Message::Notification(n) => Incoming::FromServer {
                method: n.method,
                id: None,
            },
        },
        Parsed::Single(Err(_)) | Parsed::Batch(_) => Incoming::Invalid,
    }
}

/// Appends `s` as a JSON string literal. Infallible, unlike a generic writer.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Runs `body`; on a serialization failure, leaves `out` as it was.
fn all_or_nothing(
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
) -> Result<(), serde_json::Error> {
    let start = out.len();
    let result = body(out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends a success response: `{"jsonrpc":"2.0","id":<id>,"result":<result>}`.
/// On error `out` is unchanged.
pub fn write_result<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    id: RawId<'_>,
    result: &T,
) -> Result<(), serde_json::Error> {
    all_or_nothing(out, |out| {
        out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        out.extend_from_slice(id.get().as_bytes());
        out.extend_from_slice(br#","result":"#);
        serde_json::to_writer(&mut *out, result)?;
        out.push(b'}');
        Ok(())
    })
}

/// Puts `members` (`"name":value` pairs joined by commas) first in the result object of
/// `reply`, a response [`write_result`] wrote for `id`; false (nothing changed) when the
/// result is not an object.
pub fn prepend_result_members(reply: &mut Vec<u8>, id: RawId<'_>, members: &str) -> bool {
    let at = br#"{"jsonrpc":"2.0","id":"#.len() + id.get().len() + br#","result":"#.len();
    if reply.get(at) != Some(&b'{') || members.is_empty() {
        return false;
    }
    let empty = reply.get(at + 1) == Some(&b'}');
    let mut inserted = Vec::with_capacity(members.len() + 1);
    inserted.extend_from_slice(members.as_bytes());
    if !empty {
        inserted.push(b',');
    }
    reply.splice(at + 1..at + 1, inserted);
    true
}

/// Appends an error response; `id: None` is written as `null`.
pub fn write_error(
    out: &mut Vec<u8>,
    id: Option<RawId<'_>>,
    code: i64,
    message: &str,
    data: Option<&RawValue>,
) {
    write_error_head(out, id, code, message);
    if let Some(data) = data {
        out.extend_from_slice(br#","data":"#);
        out.extend_from_slice(data.get().as_bytes());
    }
    out.extend_from_slice(b"}}");
}

/// Appends an error response up to and including its `message` member.
fn write_error_head(out: &mut Vec<u8>, id: Option<RawId<'_>>, code: i64, message: &str) {
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.map_or("null", RawId::get).as_bytes());
    out.extend_from_slice(br#","error":{"code":"#);
    out.extend_from_slice(code.to_string().as_bytes());
    out.extend_from_slice(br#","message":"#);
    write_json_str(out, message);
}

/// Appends a notification; on error `out` is unchanged.
pub fn write_notification<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    method: &str,
    params: Option<&T>,
) -> Result<(), serde_json::Error> {
    all_or_nothing(out, |out| {
        out.extend_from_slice(br#"{"jsonrpc":"2.0","method":"#);
        write_json_str(out, method);
        write_params(out, params)
    })
}

/// Appends a request; on error `out` is unchanged.
pub fn write_request<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    id: RawId<'_>,
    method: &str,
    params: Option<&T>,
) -> Result<(), serde_json::Error> {
    all_or_nothing(out, |out| {
        out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        out.extend_from_slice(id.get().as_bytes());
        out.extend_from_slice(br#","method":"#);
        write_json_str(out, method);
        write_params(out, params)
    })
}

fn write_params<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    params: Option<&T>,
) -> Result<(), serde_json::Error> {
    if let Some(params) = params {
        out.extend_from_slice(br#","params":"#);
        serde_json::to_writer(&mut *out, params)?;
    }
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn single(input: &str) -> Item<'_> {
        match parse(input.as_bytes()) {
            Parsed::Single(item) => item,
            Parsed::Batch(_) => panic!("unexpected batch for {input}"),
        }
    }

    fn err_of(input: &str) -> (Option<String>, i64) {
        match single(input) {
            Err(inv) => (inv.id.map(|i| i.get().to_owned()), inv.error.code()),
            Ok(m) => panic!("expected invalid, got {m:?} for {input}"),
        }
    }

    #[test]
    fn parses_request_with_borrowed_parts() {
        let input = r#" {"jsonrpc":"2.0","id": "a\"b" ,"method":"tools/list","params":{"x":1}} "#;
        match single(input) {
            Ok(Message::Request(r)) => {
                assert_eq!(r.id.get(), r#""a\"b""#);
                assert_eq!(r.method, "tools/list");
                assert!(matches!(r.method, Cow::Borrowed(_)));
                assert_eq!(r.params.map(RawValue::get), Some(r#"{"x":1}"#));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_notification_response_and_error_response() {
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification(n)) if n.method == "notifications/initialized" && n.params.is_none()
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#),
            Ok(Message::Response(r)) if r.id.get() == "7" && r.result.get() == "{}"
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m","data":[1]}}"#),
            Ok(Message::ErrorResponse(e)) if e.id.is_none() && e.error.code == -1 && e.error.data.is_some()
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","method":"m","params":null}"#),
            Ok(Message::Notification(n)) if n.params.is_none()
        ));
        // Escaped method names are decoded, not rejected.
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":1,"method":"p\u0069ng"}"#),
            Ok(Message::Request(r)) if r.method == "ping"
        ));
    }

    #[test]
    fn invalid_json_is_parse_error_with_null_id() {
        for input in [
            "",
            "{",
            "not json",
            r#"{"jsonrpc":"2.0","id":1,"method":"x"} trailing"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2, oops"#,
            "[1,",
            "\u{feff}{}",
        ] {
            assert_eq!(err_of(input), (None, PARSE_ERROR), "{input:?}");
        }
        assert_eq!(
            parse(b"\xff\xfe").single_error_code(),
            Some(PARSE_ERROR),
            "non-UTF-8"
        );
    }

    impl Parsed<'_> {
        fn single_error_code(&self) -> Option<i64> {
            match self {
                Parsed::Single(Err(inv)) => Some(inv.error.code()),
                _ => None,
            }
        }
    }

    #[test]
    fn invalid_requests_are_32600_with_id_when_readable() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"id":1,"method":"ping"}"#, Some("1")),
            (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, Some("1")),
            (
                r#"{"jsonrpc":2.0,"id":"x","method":"ping"}"#,
                Some(r#""x""#),
            ),
            (r#"{"jsonrpc":"2.0","id":1,"method":5}"#, Some("1")),
            (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, None),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, None),
            (r#"{"jsonrpc":"2.0","id":1e3,"method":"ping"}"#, None),
            (r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, None),
            (r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#, None),
            (r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#, None),
            (
                r#"{"jsonrpc":"2.0","id":2,"result":1,"error":{"code":1,"message":""}}"#,
                Some("2"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":3,"method":"m","result":1}"#,
                Some("3"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":4,"method":"m","params":5}"#,
                Some("4"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"m","params":"s"}"#,
                Some("5"),
            ),
            (r#"{"jsonrpc":"2.0","id":6}"#, Some("6")),
            (
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":"x","message":""}}"#,
                Some("7"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":8,"error":{"code":1.5,"message":""}}"#,
                Some("8"),
            ),
            (r#"{"jsonrpc":"2.0","result":{}}"#, None),
            (r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}"#, None),
            ("5", None),
            (r#""str""#, None),
            ("null", None),
            ("[]", None),
            (" [ ] ", None),
        ];
        for (input, id) in cases {
            assert_eq!(
                err_of(input),
                (id.map(str::to_owned), INVALID_REQUEST),
                "{input}"
            );
        }
    }

    #[test]
    fn batches_are_exposed_per_element() {
        let Parsed::Batch(items) = parse(
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}, 1, {"jsonrpc":"2.0","method":"n"}, {"jsonrpc":"2.0","id":"z","result":{}}]"#,
        ) else {
            panic!("expected a batch");
        };
        assert_eq!(items.len(), 4);
        assert!(matches!(items[0], Ok(Message::Request(_))));
        assert!(matches!(&items[1], Err(inv) if inv.error.code() == INVALID_REQUEST));
        assert!(matches!(items[2], Ok(Message::Notification(_))));
        assert!(matches!(items[3], Ok(Message::Response(_))));
    }

    #[test]
    fn ids_compare_by_value_and_echo_byte_exact() {
        let a = Id::parse(r#""a""#).expect("string id");
        let escaped = Id::parse(r#""\u0061""#).expect("escaped id");
        assert_eq!(a, escaped);
        assert_eq!(escaped.to_string(), r#""\u0061""#);
        assert_ne!(Id::parse("1"), Id::parse(r#""1""#));
        assert_eq!(Id::parse("-12"), Id::parse("-12"));
        assert!(Id::parse("null").is_none());
        assert!(Id::parse("1.0").is_none());
        assert!(Id::parse("-").is_none());
    }

    fn value(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("serializer output is JSON")
    }

    #[test]
    fn serializers_write_valid_json() {
        let id = Id::parse(r#""x\n""#).expect("id");
        let mut out = Vec::new();
        write_result(&mut out, id.as_raw(), &json!({"ok": true})).expect("result");
        assert!(out.starts_with(br#"{"jsonrpc":"2.0","id":"x\n","#));
        assert_eq!(
            value(&out),
            json!({"jsonrpc":"2.0","id":"x\n","result":{"ok":true}})
        );

        out.clear();
        let data = RawValue::from_string("[1,2]".into()).expect("raw");
        write_error(
            &mut out,
            None,
            INVALID_PARAMS,
            "bad \"q\"\u{1}\t",
            Some(&data),
        );
        assert_eq!(
            value(&out),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"bad \"q\"\u{1}\t","data":[1,2]}})
        );

        out.clear();
        write_notification::<Value>(&mut out, "notifications/x", None).expect("notification");
        assert_eq!(
            value(&out),
            json!({"jsonrpc":"2.0","method":"notifications/x"})
        );

        out.clear();
        let seven = Id::parse("7").expect("id");
        write_request(&mut out, seven.as_raw(), "ping", Some(&json!({}))).expect("request");
        assert_eq!(
            value(&out),
            json!({"jsonrpc":"2.0","id":7,"method":"ping","params":{}})
        );
    }

    #[test]
    fn failed_serialization_leaves_output_unchanged() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut out = b"keep".to_vec();
        let id = Id::parse("1").expect("id");
        assert!(write_result(&mut out, id.as_raw(), &Fails).is_err());
        assert!(write_notification(&mut out, "m", Some(&Fails)).is_err());
        assert!(write_request(&mut out, id.as_raw(), "m", Some(&Fails)).is_err());
        assert_eq!(out, b"keep");
    }

    #[test]
    fn error_enum_maps_to_wire_codes() {
        let id = Id::parse("9").expect("id");
        for (error, code) in [
            (Error::Parse, PARSE_ERROR),
            (Error::InvalidRequest("r".into()), INVALID_REQUEST),
            (Error::MethodNotFound("m".into()), METHOD_NOT_FOUND),
            (Error::InvalidParams("p".into()), INVALID_PARAMS),
            (Error::Internal("i".into()), INTERNAL_ERROR),
            (Error::ResourceNotFound("u".into()), RESOURCE_NOT_FOUND),
            (Error::NoSuchResource("u".into()), INVALID_PARAMS),
        ] {
            let mut out = Vec::new();
            error.write_response(&mut out, Some(id.as_raw()));
            let v = value(&out);
            assert_eq!(v["error"]["code"], json!(code));
            assert_eq!(v["id"], json!(9));
            assert!(v["error"]["message"].is_string());
        }
        let mut out = Vec::new();
        Error::ResourceNotFound("file:///a \"b\"".into()).write_response(&mut out, None);
        assert_eq!(
            value(&out),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32002,"message":"Resource not found",
                "data":{"uri":"file:///a \"b\""}}})
        );
    }

    #[test]
    fn classifies_what_a_client_receives() {
        let reply = |bytes: &'static [u8]| match classify(bytes) {
            Incoming::Reply { id, outcome } => {
                (id.as_u64(), outcome.map(RawValue::get).map_err(|e| e.code))
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reply(br#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#),
            (Some(7), Ok(r#"{"content":[]}"#))
        );
        assert_eq!(
            reply(br#"{"jsonrpc":"2.0","id":"s","error":{"code":-32601,"message":"x"}}"#),
            (None, Err(METHOD_NOT_FOUND))
        );
        assert!(matches!(
            classify(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#),
            Incoming::UntiedError(ErrorObject {
                code: PARSE_ERROR,
                ..
            })
        ));
        assert!(matches!(
            classify(br#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#),
            Incoming::FromServer { method, id: None } if method == "notifications/message"
        ));
        assert!(matches!(
            classify(br#"{"jsonrpc":"2.0","id":"r1","method":"sampling/createMessage"}"#),
            Incoming::FromServer { id: Some(id), .. } if id.get() == r#""r1""#
        ));
        for invalid in [
            &b"not json"[..],
            br#"{"id":1,"result":{}}"#,
            br#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#,
            br#"{"jsonrpc":"2.0","id":1.5,"result":{}}"#,
        ] {
            assert!(
                matches!(classify(invalid), Incoming::Invalid),
                "{invalid:?}"
            );
        }
        let id = |json: &'static str| RawId::new(serde_json::from_str(json).unwrap()).unwrap();
        assert_eq!(id("18446744073709551615").as_u64(), Some(u64::MAX));
        assert_eq!(id("-1").as_u64(), None);
        assert_eq!(id(r#""1""#).as_u64(), None);
    }

    #[test]
    fn result_members_go_first_in_the_result_object() {
        let raw = RawValue::from_string(r#""a,\"result\":{""#.to_owned()).unwrap();
        let id = RawId::new(&raw).unwrap();
        for (result, expected) in [
            (json!({"x": 1}), r#"{"resultType":"complete","x":1}"#),
            (json!({}), r#"{"resultType":"complete"}"#),
        ] {
            let mut reply = Vec::new();
            write_result(&mut reply, id, &result).unwrap();
            assert!(prepend_result_members(
                &mut reply,
                id,
                r#""resultType":"complete""#
            ));
            let parsed: serde_json::Value = serde_json::from_slice(&reply).unwrap();
            assert_eq!(
                parsed["result"],
                serde_json::from_str::<serde_json::Value>(expected).unwrap()
            );
            assert_eq!(parsed["id"], "a,\"result\":{");
        }
        let mut reply = Vec::new();
        write_result(&mut reply, id, &json!([1])).unwrap();
        let before = reply.clone();
        assert!(!prepend_result_members(
            &mut reply,
            id,
            r#""resultType":"complete""#
        ));
        assert_eq!(reply, before);
    }
}
