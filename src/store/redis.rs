//! One pipelined connection to Redis, without its I/O: the commands it carries, the RESP2
//! replies it gets back, and which command each reply answers. The Redis Streams event store
//! (`--event-store redis://…`) sends through it; the shard only moves its bytes
//! (`src/shard/redis.rs`) and reports the connection's state to it.
//!
//! Redis answers a connection's commands in the order it received them, so a reply is paired
//! with the oldest command still awaiting one (a `VecDeque` of completions), and any number of
//! commands may be on the wire at once. The client is shared as `Rc<Client>` on one shard's
//! thread; its state sits in a `RefCell` that is never borrowed while a completion runs, so a
//! completion may queue the next command and sees [`Client::is_up`] as it is.
//!
//! Memory is bounded twice: the commands queued or awaiting a reply count against
//! `max_queued_bytes` (a command over it is refused with [`Unavailable`], as when Redis is
//! down), and one reply may be at most [`MAX_REPLY_BYTES`] (more is a [`ProtocolError`] and the
//! connection is dropped), decided from the reply's headers where they tell.
//!
//! Time is bounded too: while commands await replies, Redis must answer one within the
//! client's `reply_timeout` of the last (or of the first command, when none was awaited).
//! A Redis that accepts connections and then answers nothing (stopped, wedged, a black-holed
//! route) would otherwise hold every command and every caller awaiting one for as long as the
//! TCP connection stands; past the timeout the I/O side drops the connection
//! ([`Client::check_reply_wait`]), so the commands complete [`Unavailable`] and it connects
//! again.

use crate::proto::{hex, Status};
use crate::wake::WakeSlot;
use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::types::RangeFrame;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The port Redis listens on unless the URL names another.
pub const DEFAULT_PORT: u16 = 6379;

/// The largest single reply accepted (Redis's own default `proto-max-bulk-len` is 512 MB;
/// the event store's replies are a small part of that).
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// The deepest nesting of arrays in a reply. XREAD nests four (streams, entries, an entry,
/// its fields); the decoder recurses once per level, so the stack stays bounded too.
pub const MAX_DEPTH: usize = 32;

/// What a queued command costs against the queue bound besides its encoded bytes: its slot
/// in the queue and its boxed completion, so a flood of tiny commands is bounded as well.
pub const COMMAND_OVERHEAD: usize = 64;

/// Where Redis is: `redis://[[username]:password@]host[:port][/db]`.
///
/// The username and password may be percent-encoded (`%40` for `@`); the port defaults to
/// 6379 and the database to 0. An IPv6 address goes in brackets: `redis://[::1]:6379`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database selected with SELECT after connecting (0: none sent).
    pub db: u32,
    /// ACL user for AUTH (Redis 6+); `None` authenticates as the default user.
    pub username: Option<String>,
    /// Password for AUTH; `None` sends no AUTH.
    pub password: Option<String>,
}

/// The URL shape, for error messages.
const URL_SHAPE: &str = "redis://[[user]:password@]host[:port][/db]";

impl FromStr for RedisUrl {
    type Err = String;

    /// Parses a URL; no error repeats the password.
    fn from_str(url: &str) -> Result<RedisUrl, String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!("expected {URL_SHAPE}"));
        };
        if scheme.eq_ignore_ascii_case("rediss") {
            return Err("rediss:// (TLS) is not supported: use redis://".into());
        }
        if !scheme.eq_ignore_ascii_case("redis") {
            return Err(format!("unknown scheme {scheme}://: expected {URL_SHAPE}"));
        }
        // Host, port and database never hold an '@', so the last one ends the credentials
        // (which may then hold '/', ':' or '@' even when not percent-encoded).
        let (credentials, location) = match rest.rsplit_once('@') {
            Some((credentials, location)) => (Some(credentials), location),
            None => (None, rest),
        };
        if location.contains(['?', '#']) {
            return Err(format!(
                "query parameters are not supported: expected {URL_SHAPE}"
            ));
        }
        let (authority, db) = location.split_once('/').unwrap_or((location, ""));
        let (host, port) = split_host_port(authority)?;
        let db = match db {
            "" => 0,
            db if db.bytes().all(|b| b.is_ascii_digit()) => db
                .parse()
                .map_err(|_| format!("bad db {db:?}: expected a number"))?,
            db => return Err(format!("bad db {db:?}: expected a number")),
        };
        let (username, password) = match credentials {
            None => (None, None),
            Some(credentials) => {
                let Some((user, password)) = credentials.split_once(':') else {
                    return Err(format!(
                        "credentials go as user:password@ or :password@ ({URL_SHAPE})"
                    ));
                };
                if password.is_empty() {
                    return Err("empty password".into());
                }
                let user = match user {
                    "" => None,
                    user => Some(percent_decode(user).map_err(|e| format!("username: {e}"))?),
                };
                let password = percent_decode(password).map_err(|e| format!("password: {e}"))?;
                (user, Some(password))
            }
        };
        Ok(RedisUrl {
            host: host.to_owned(),
            port,
            db,
            username,
            password,
        })
    }
}

/// The host and port of `host[:port]` or `[v6]:port`.
fn split_host_port(authority: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(format!("unclosed '[' in host {authority:?}"));
        };
        match after {
            "" => (host, None),
            after => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("bad host {authority:?}")),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(format!(
                    "an IPv6 address goes in brackets: redis://[{authority}]:{DEFAULT_PORT}"
                ))
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("empty host: expected {URL_SHAPE}"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => port,
            _ => return Err(format!("bad port {text:?}: expected 1 to 65535")),
        },
    };
    Ok((host, port))
}

/// `%XX` escapes decoded (RFC 3986, section 2.1); the result must be UTF-8.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let Some(byte) = bytes.get(i + 1..i + 3).and_then(hex::pair) else {
            return Err("a '%' not followed by two hex digits".into());
        };
        out.push(byte);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 once percent-decoded".into())
}

impl fmt::Display for RedisUrl {
    /// The URL with its password shown as `***`, fit for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redis://")?;
        if self.password.is_some() {
            write!(f, "{}:***@", self.username.as_deref().unwrap_or(""))?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        write!(f, ":{}/{}", self.port, self.db)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A simple string (`+OK`).
    Status(String),
    /// An error reply (`-ERR …`, `-WRONGTYPE …`): Redis answered, and said no.
    Error(String),
    /// An integer (`:1`).
    Integer(i64),
    /// A bulk string; `None` is the nil bulk string (`$-1`), e.g. GET of a missing key.
    Bulk(Option<Vec<u8>>),
    /// An array; `None` is the nil array (`*-1`), e.g. a blocking read that timed out.
    Array(Option<Vec<Reply>>),
}

/// The command was not carried to a reply: Redis is down, the connection broke before its
/// reply came, or the queue bound was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event store is unavailable")
    }
}

impl std::error::Error for Unavailable {}

/// What runs once a command has its reply, or once it is known that it will not get one.
pub type Completion = Box<dyn FnOnce(Result<Reply, Unavailable>)>;

/// Why a connection cannot go on: Redis broke RESP2, or refused the connection's preamble.
/// The I/O side drops the connection (every command awaiting a reply gets [`Unavailable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A reply arrived with no command awaiting it.
    Unsolicited,
    /// A reply's first byte names no RESP2 type (`+ - : $ *`).
    UnknownType(u8),
    /// A bulk string or array length that is neither -1 nor a count.
    BadLength,
    /// A bulk string's payload not followed by CRLF.
    UnterminatedBulk,
    /// One reply larger than [`MAX_REPLY_BYTES`].
    TooLarge,
    /// Arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The RESP2 decoder refused the reply (an integer that is not one, say).
    Malformed(String),
    /// AUTH or SELECT answered with an error, so the connection is of no use.
    Refused(String),
    /// Commands awaited a reply and none came within the client's reply timeout.
    NoReply(Duration),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Unsolicited => f.write_str("a reply with no command awaiting it"),
            ProtocolError::UnknownType(b) => write!(f, "no RESP2 type starts with byte {b:#04x}"),
            ProtocolError::BadLength => f.write_str("a length that is neither -1 nor a count"),
            ProtocolError::UnterminatedBulk => f.write_str("a bulk string not ended by CRLF"),
            ProtocolError::TooLarge => write!(f, "a reply over {MAX_REPLY_BYTES} bytes"),
            ProtocolError::TooDeep => write!(f, "arrays nested over {MAX_DEPTH} deep"),
            ProtocolError::Malformed(e) => write!(f, "a malformed reply: {e}"),
            ProtocolError::Refused(e) => write!(f, "the connection was refused: {e}"),
            ProtocolError::NoReply(timeout) => write!(f, "no reply within {timeout:?}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The bytes of one command: "Clients send commands to a Redis server as an array of bulk
/// strings" (RESP specification). Written here rather than with redis-protocol's encoder,
/// which takes a frame per argument gathered in a slice first and a buffer already sized and
/// zeroed: this way the bytes go straight onto the queue, with no allocation per command.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "*{}\r\n", args.len());
    for arg in args {
        let _ = write!(out, "${}\r\n", arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// How many bytes [`encode_command`] writes for `args`.
pub fn encoded_len(args: &[&[u8]]) -> usize {
    let digits = |n: usize| n.checked_ilog10().map_or(1, |d| d as usize + 1);
    let header = 1 + digits(args.len()) + 2;
    header
        + args
            .iter()
            .map(|a| 1 + digits(a.len()) + 2 + a.len() + 2)
            .sum::<usize>()
}

/// Decodes RESP2 replies one at a time from the front of a buffer.
///
/// A scan finds where a reply ends without building it, so the limits hold as soon as a
/// header tells (a bulk string's length, an array's count and depth) and a reply that
/// arrives over many reads is scanned once, not once per read; redis-protocol then decodes
/// the whole reply. The scan's progress is kept between calls: until a reply is complete,
/// the caller may only add bytes at the end of the buffer.
#[derive(Debug)]
pub struct ReplyDecoder {
    max_reply_bytes: usize,
    /// Bytes of the current reply scanned so far.
    pos: usize,
    /// Where the search for the current line's CRLF goes on from.
    searched: usize,
    /// A bulk string's payload and CRLF still to come, from `pos` on.
    bulk: Option<usize>,
    /// Elements still to come in each open array, innermost last.
    open: Vec<usize>,
    /// The reply's nulls seen so far, and which of them (by position among them) are nil
    /// arrays: redis-protocol decodes `$-1` and `*-1` alike, as `Null`.
    nulls: usize,
    array_nulls: Vec<usize>,
}

impl ReplyDecoder {
    /// A decoder that refuses replies over `max_reply_bytes`.
    pub fn new(max_reply_bytes: usize) -> ReplyDecoder {
        ReplyDecoder {
            max_reply_bytes,
            pos: 0,
            searched: 0,
            bulk: None,
            open: Vec::new(),
            nulls: 0,
            array_nulls: Vec::new(),
        }
    }

    /// The reply at the front of `buf` and its length, or `Partial` until all of it arrived.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Status<Reply>, ProtocolError> {
        let Some(end) = self.scan(buf)? else {
            return Ok(Status::Partial);
        };
        let array_nulls = std::mem::take(&mut self.array_nulls);
        // Ready for the next reply (`open` keeps its allocation: it is empty again).
        self.pos = 0;
        self.searched = 0;
        self.nulls = 0;
        let whole = &buf[..end];
        let frame = match decode_range(whole) {
            Ok(Some((frame, used))) if used == end => frame,
            Ok(_) => {
                return Err(ProtocolError::Malformed(
                    "the decoder and the scan disagree on where the reply ends".into(),
                ))
            }
            Err(e) => return Err(ProtocolError::Malformed(e.to_string())),
        };
        let mut nulls = NullKinds {
            seen: 0,
            arrays: &array_nulls,
        };
        Ok(Status::Complete(build(whole, frame, &mut nulls)?, end))
    }

    /// Where the reply at the front of `buf` ends, once all of it is there.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        loop {
            if let Some(rest) = self.bulk {
                let end = self.pos + rest;
                if buf.len() < end {
                    return self.partial(buf);
                }
                // "$<length>\r\n<data>\r\n" (RESP specification, bulk strings).
                if &buf[end - 2..end] != b"\r\n" {
                    return Err(ProtocolError::UnterminatedBulk);
                }
                self.bulk = None;
                self.pos = end;
            } else {
                let Some(&kind) = buf.get(self.pos) else {
                    return self.partial(buf);
                };
                if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
                    return Err(ProtocolError::UnknownType(kind));
                }
                let Some(cr) = self.find_crlf(buf) else {
                    return self.partial(buf);
                };
                let line = &buf[self.pos + 1..cr];
                self.pos = cr + 2;
                match kind {
                    b'$' => match length(line)? {
                        None => self.null(false),
                        Some(len) => {
                            if self.pos.saturating_add(len).saturating_add(2) > self.max_reply_bytes
                            {
                                return Err(ProtocolError::TooLarge);
                            }
                            self.bulk = Some(len + 2);
                            continue;
                        }
                    },
                    b'*' => match length(line)? {
                        None => self.null(true),
                        Some(0) => {}
                        Some(count) => {
                            if self.open.len() >= MAX_DEPTH {
                                return Err(ProtocolError::TooDeep);
                            }
                            // Every element takes three bytes at least ("+\r\n").
                            let room = self.max_reply_bytes.saturating_sub(self.pos);
                            if count.saturating_mul(3) > room {
                                return Err(ProtocolError::TooLarge);
                            }
                            self.open.push(count);
                            continue;
                        }
                    },
                    _ => {}
                }
            }
            if self.element_done() {
                return Ok(Some(self.pos));
            }
        }
    }

    /// Not complete yet: fine while the reply is within its bound. Every byte of `buf` is
    /// the current reply's, since a reply is taken off the buffer once complete.
    fn partial(&self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if buf.len() > self.max_reply_bytes {
            return Err(ProtocolError::TooLarge);
        }
        Ok(None)
    }

    /// The end of the line that starts at `pos` (the index of its CR), if it arrived.
    fn find_crlf(&mut self, buf: &[u8]) -> Option<usize> {
        let from = self.searched.max(self.pos + 1);
        let found = buf.get(from..)?.windows(2).position(|w| w == b"\r\n");
        match found {
            Some(at) => Some(from + at),
            None => {
                // The last byte may be the CR of a CRLF that has not all arrived.
                self.searched = buf.len().saturating_sub(1).max(from);
                None
            }
        }
    }

    fn null(&mut self, array: bool) {
        if array {
            self.array_nulls.push(self.nulls);
        }
        self.nulls += 1;
    }

    /// One element ended: it counts against the innermost open array, and an array it
    /// completes is itself an element of the one around it. True once the reply is whole.
    fn element_done(&mut self) -> bool {
        while let Some(left) = self.open.last_mut() {
            *left -= 1;
            if *left > 0 {
                return false;
            }
            self.open.pop();
        }
        true
    }
}

/// A length line: `Some(n)`, or `None` for -1 (the nil bulk string or nil array).
fn length(line: &[u8]) -> Result<Option<usize>, ProtocolError> {
    if line == b"-1" {
        return Ok(None);
    }
    if line.is_empty() || line.len() > 19 || !line.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::BadLength);
    }
    std::str::from_utf8(line)
        .ok()
        .and_then(|n| n.parse().ok())
        .map(Some)
        .ok_or(ProtocolError::BadLength)
}

/// Tells, for each `Null` the decoder gives in order, whether it was a nil array.
struct NullKinds<'a> {
    seen: usize,
    arrays: &'a [usize],
}

impl NullKinds<'_> {
    fn next_is_array(&mut self) -> bool {
        let array = self.arrays.contains(&self.seen);
        self.seen += 1;
        array
    }
}

/// The reply a decoded frame stands for; `buf` holds the bytes its ranges point into.
fn build(buf: &[u8], frame: RangeFrame, nulls: &mut NullKinds<'_>) -> Result<Reply, ProtocolError> {
    let bytes = |(start, end): (usize, usize)| {
        buf.get(start..end)
            .ok_or_else(|| ProtocolError::Malformed("a range outside the reply".into()))
    };
    // Redis's statuses and errors are text; one that is not UTF-8 is still worth reading.
    let text = |range| bytes(range).map(|b| String::from_utf8_lossy(b).into_owned());
    Ok(match frame {
        RangeFrame::SimpleString(range) => Reply::Status(text(range)?),
        RangeFrame::Error(range) => Reply::Error(text(range)?),
        RangeFrame::Integer(n) => Reply::Integer(n),
        RangeFrame::BulkString(range) => Reply::Bulk(Some(bytes(range)?.to_vec())),
        RangeFrame::Null if nulls.next_is_array() => Reply::Array(None),
        RangeFrame::Null => Reply::Bulk(None),
        RangeFrame::Array(items) => Reply::Array(Some(
            items
                .into_iter()
                .map(|item| build(buf, item, nulls))
                .collect::<Result<_, _>>()?,
        )),
    })
}

/// Counters of one client, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Whether the connection is up (see [`Client::is_up`]).
    pub up: bool,
    /// Commands accepted onto the connection.
    pub commands: u64,
    /// Commands completed with [`Unavailable`] (refused, or cut off by a broken connection).
    pub unavailable: u64,
    /// Connections made after the first one.
    pub reconnects: u64,
    /// Connections dropped because Redis answered nothing within the reply timeout.
    pub reply_timeouts: u64,
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No connection.
    Down,
    /// Connected, AUTH and SELECT not answered yet.
    Preamble,
    /// Connected and ready.
    Up,
}

/// A command written or queued, waiting for its reply.
enum Awaiting {
    /// AUTH or SELECT, sent by the client itself.
    Preamble,
    /// A caller's command, and what it counts against the queue bound.
    Command { done: Completion, cost: usize },
}

struct State {
    link: Link,
    /// Encoded commands the I/O side has not taken yet.
    output: Vec<u8>,
    awaiting: VecDeque<Awaiting>,
    /// While commands await replies: since when Redis has owed one (the last reply, or the
    /// first command queued when none was awaited).
    owed_since: Option<Instant>,
    /// What the awaiting commands count against the bound (see [`Client::command`]).
    queued: usize,
    decoder: ReplyDecoder,
    stats: ClientStats,
    connected_before: bool,
}

impl State {
    /// Adds a command written or queued to those awaiting a reply.
    fn await_reply(&mut self, awaiting: Awaiting) {
        if self.awaiting.is_empty() {
            self.owed_since = Some(Instant::now());
        }
        self.awaiting.push_back(awaiting);
    }
}

/// One pipelined connection's worth of commands and replies, shared as `Rc<Client>` by the
/// callers on one shard and the task that carries its bytes.
///
/// The I/O side calls [`Client::connected`] once a connection stands, then writes what
/// [`Client::poll_output`] says is there ([`Client::take_output`]), hands what it reads to
/// [`Client::received`], and calls [`Client::disconnected`] when the connection ends or
/// `received` fails.
pub struct Client {
    state: RefCell<State>,
    /// The task that writes the output.
    writer: WakeSlot,
    /// AUTH and SELECT, encoded once: the first commands of every connection.
    preamble: Vec<u8>,
    preamble_commands: usize,
    max_queued_bytes: usize,
    reply_timeout: Duration,
}

impl Client {
    /// A client for `url`, not connected. Commands queued or awaiting a reply may count up to
    /// `max_queued_bytes` (see [`Client::command`]); while any await one, Redis must answer
    /// within `reply_timeout` of its last reply (see [`Client::check_reply_wait`]), which
    /// must exceed the longest wait a command asks for itself (`XREAD BLOCK`).
    pub fn new(url: &RedisUrl, max_queued_bytes: usize, reply_timeout: Duration) -> Rc<Client> {
        let mut preamble = Vec::new();
        let mut preamble_commands = 0;
        if let Some(password) = &url.password {
            match &url.username {
                Some(user) => encode_command(
                    &mut preamble,
                    &[b"AUTH", user.as_bytes(), password.as_bytes()],
                ),
                None => encode_command(&mut preamble, &[b"AUTH", password.as_bytes()]),
            }
            preamble_commands += 1;
        }
        if url.db != 0 {
            encode_command(&mut preamble, &[b"SELECT", url.db.to_string().as_bytes()]);
            preamble_commands += 1;
        }
        Rc::new(Client {
            state: RefCell::new(State {
                link: Link::Down,
                output: Vec::new(),
                awaiting: VecDeque::new(),
                owed_since: None,
                queued: 0,
                decoder: ReplyDecoder::new(MAX_REPLY_BYTES),
                stats: ClientStats::default(),
                connected_before: false,
            }),
            writer: WakeSlot::default(),
            preamble,
            preamble_commands,
            max_queued_bytes,
            reply_timeout,
        })
    }

    /// Whether commands are taken: connected, and AUTH and SELECT (when the URL asks for
    /// them) answered without an error.
    pub fn is_up(&self) -> bool {
        self.state.borrow().link == Link::Up
    }

    /// Queues a command (`args[0]` is its name); `done` runs with its reply, and completions
    /// run in the order their commands were queued. A Redis error is a reply
    /// (`Ok(Reply::Error(…))`).
    ///
    /// `done` runs at once with `Err(Unavailable)` when the client is not up (also while
    /// AUTH and SELECT are still on their way after a reconnection: refusing is simpler and
    /// more predictable than holding commands for a connection that may yet fail), or when
    /// the command would take the queue past its bound: each command queued or awaiting its
    /// reply counts its encoded size plus [`COMMAND_OVERHEAD`]. A completion must not retry
    /// at once on `Unavailable`: it would be refused again, recursively.
    pub fn command(&self, args: &[&[u8]], done: Completion) {
        let accepted = {
            let mut state = self.state.borrow_mut();
            let cost = encoded_len(args) + COMMAND_OVERHEAD;
            if state.link != Link::Up || state.queued + cost > self.max_queued_bytes {
                state.stats.unavailable += 1;
                Err(done)
            } else {
                encode_command(&mut state.output, args);
                state.queued += cost;
                state.await_reply(Awaiting::Command { done, cost });
                state.stats.commands += 1;
                Ok(())
            }
        };
        match accepted {
            Ok(()) => self.writer.wake(),
            Err(done) => done(Err(Unavailable)),
        }
    }

    /// [`Client::command`] as a future. The command is queued now, not when the future is
    /// first polled, so the future holds no arguments (and the command goes out even if the
    /// future is dropped).
    pub fn call(&self, args: &[&[u8]]) -> Call {
        let slot = Rc::new(CallSlot::default());
        let filled = Rc::clone(&slot);
        self.command(
            args,
            Box::new(move |result| {
                filled.result.set(Some(result));
                filled.waker.wake();
            }),
        );
        Call(slot)
    }

    /// A connection stands: AUTH and SELECT (when the URL asks for them) go first, and the
    /// client is up once they are answered; without them it is up at once. Anything left
    /// from an earlier connection completes with `Unavailable` first.
    pub fn connected(&self) {
        self.disconnected();
        {
            let mut state = self.state.borrow_mut();
            if state.connected_before {
                state.stats.reconnects += 1;
            }
            state.connected_before = true;
            if self.preamble_commands == 0 {
                state.link = Link::Up;
                return;
            }
            state.link = Link::Preamble;
            state.output.extend_from_slice(&self.preamble);
            for _ in 0..self.preamble_commands {
                state.await_reply(Awaiting::Preamble);
            }
        }
        self.writer.wake();
    }

    /// Ready when there are bytes to write; otherwise the task is woken once there are.
    pub fn poll_output(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.state.borrow().output.is_empty() {
            return Poll::Ready(());
        }
        self.writer.register(cx.waker());
        Poll::Pending
    }

    /// Moves the bytes waiting to be written to the end of `out`.
    pub fn take_output(&self, out: &mut Vec<u8>) {
        let mut state = self.state.borrow_mut();
        if out.is_empty() {
            std::mem::swap(out, &mut state.output);
        } else {
            out.append(&mut state.output);
        }
    }

    /// Decodes every whole reply at the front of `inbuf`, takes it off, and completes its
    /// command. An error means the connection cannot go on (replies before the error were
    /// delivered): the I/O side drops it and calls [`Client::disconnected`].
    pub fn received(&self, inbuf: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let mut ready = Vec::new();
        let outcome = self.take_replies(inbuf, &mut ready);
        // No borrow is held here: a completion may queue the next command.
        for (done, reply) in ready {
            done(Ok(reply));
        }
        outcome
    }

    fn take_replies(
        &self,
        inbuf: &mut Vec<u8>,
        ready: &mut Vec<(Completion, Reply)>,
    ) -> Result<(), ProtocolError> {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let mut used = 0;
        let outcome = loop {
            let reply = match state.decoder.decode(&inbuf[used..]) {
                Ok(Status::Complete(reply, len)) => {
                    used += len;
                    reply
                }
                Ok(Status::Partial) => break Ok(()),
                Err(e) => break Err(e),
            };
            match state.awaiting.pop_front() {
                None => break Err(ProtocolError::Unsolicited),
                Some(Awaiting::Preamble) => {
                    if let Reply::Error(e) = reply {
                        break Err(ProtocolError::Refused(e));
                    }
                    if state.awaiting.is_empty() {
                        state.link = Link::Up;
                    }
                }
                Some(Awaiting::Command { done, cost }) => {
                    state.queued -= cost;
                    ready.push((done, reply));
                }
            }
        };
        if used > 0 {
            // Redis answered: it owes the next reply from now (or nothing).
            state.owed_since = (!state.awaiting.is_empty()).then(Instant::now);
        }
        // Taken off once, not reply by reply: a read may hold thousands of small replies.
        inbuf.drain(..used);
        outcome
    }

    /// When Redis must have answered by, while commands await replies: `reply_timeout` after
    /// its last reply, or after the first command queued when none was awaited.
    pub fn reply_due(&self) -> Option<Instant> {
        Some(self.state.borrow().owed_since? + self.reply_timeout)
    }

    /// Fails (and counts it) once Redis is past [`Client::reply_due`] at `now`: the I/O side
    /// then drops the connection, as for any [`ProtocolError`].
    pub fn check_reply_wait(&self, now: Instant) -> Result<(), ProtocolError> {
        match self.reply_due() {
            Some(due) if due <= now => {
                self.state.borrow_mut().stats.reply_timeouts += 1;
                Err(ProtocolError::NoReply(self.reply_timeout))
            }
            _ => Ok(()),
        }
    }

    /// The connection ended: every command queued or awaiting a reply completes with
    /// `Unavailable`, in order, and the client is down until [`Client::connected`].
    pub fn disconnected(&self) {
        let cut_off = {
            let mut state = self.state.borrow_mut();
            state.link = Link::Down;
            state.output = Vec::new();
            state.decoder = ReplyDecoder::new(MAX_REPLY_BYTES);
            state.queued = 0;
            state.owed_since = None;
            let cut_off = std::mem::take(&mut state.awaiting);
            let commands = cut_off
                .iter()
                .filter(|a| matches!(a, Awaiting::Command { .. }))
                .count();
            state.stats.unavailable += commands as u64;
            cut_off
        };
        for awaiting in cut_off {
            if let Awaiting::Command { done, .. } = awaiting {
                done(Err(Unavailable));
            }
        }
    }

    /// The client's counters now.
    pub fn stats(&self) -> ClientStats {
        let state = self.state.borrow();
        ClientStats {
            up: state.link == Link::Up,
            ..state.stats
        }
    }
}

#[derive(Default)]
struct CallSlot {
    result: Cell<Option<Result<Reply, Unavailable>>>,
    waker: WakeSlot,
}

/// A command's reply on its way: what [`Client::call`] returns.
pub struct Call(Rc<CallSlot>);

impl Future for Call {
    type Output = Result<Reply, Unavailable>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                self.0.waker.register(cx.waker());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::at_every_split;
    use crate::wake::CountingWaker;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::task::Waker;

    /// A reply timeout no test waits out by accident.
    const PATIENT: Duration = Duration::from_secs(60);

    // ---- URLs ----

    fn url(text: &str) -> RedisUrl {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn url_error(text: &str) -> String {
        match text.parse::<RedisUrl>() {
            Ok(parsed) => panic!("{text} parsed as {parsed:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn urls_parse_with_their_defaults() {
        // The URL, then the host, port, db, username and password it names.
        type Case = (
            &'static str,
            &'static str,
            u16,
            u32,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            ("redis://localhost", "localhost", 6379, 0, None, None),
            ("redis://127.0.0.1:6380", "127.0.0.1", 6380, 0, None, None),
            (
                "redis://cache.internal:6379/3",
                "cache.internal",
                6379,
                3,
                None,
                None,
            ),
            ("redis://h/", "h", 6379, 0, None, None),
            ("REDIS://h/15", "h", 6379, 15, None, None),
            ("redis://:secret@h", "h", 6379, 0, None, Some("secret")),
            (
                "redis://app:secret@h:7000/2",
                "h",
                7000,
                2,
                Some("app"),
                Some("secret"),
            ),
            (
                "redis://app:p%40ss%2Fw:rd@h",
                "h",
                6379,
                0,
                Some("app"),
                Some("p@ss/w:rd"),
            ),
            // Not percent-encoded: the last '@' still ends the credentials.
            ("redis://:p@ss/w@h/1", "h", 6379, 1, None, Some("p@ss/w")),
            ("redis://[::1]:6390/4", "::1", 6390, 4, None, None),
            ("redis://[::1]", "::1", 6379, 0, None, None),
        ];
        for &(text, host, port, db, username, password) in cases {
            let parsed = url(text);
            assert_eq!(parsed.host, host, "{text}");
            assert_eq!(parsed.port, port, "{text}");
            assert_eq!(parsed.db, db, "{text}");
            assert_eq!(parsed.username.as_deref(), username, "{text}");
            assert_eq!(parsed.password.as_deref(), password, "{text}");
        }
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let cases = [
            ("rediss://h:6379", "rediss:// (TLS) is not supported"),
            ("http://h", "unknown scheme http://"),
            ("unix:///tmp/redis.sock", "unknown scheme unix://"),
            ("localhost:6379", "expected redis://"),
            ("redis://", "empty host"),
            ("redis://:6379", "empty host"),
            ("redis://:pw@/2", "empty host"),
            ("redis://h:port", "bad port \"port\""),
            ("redis://h:0", "bad port \"0\""),
            ("redis://h:65536", "bad port \"65536\""),
            ("redis://h:", "bad port \"\""),
            ("redis://h:+80", "bad port \"+80\""),
            ("redis://h/x", "bad db \"x\""),
            ("redis://h/-1", "bad db \"-1\""),
            ("redis://h/99999999999", "bad db \"99999999999\""),
            ("redis://h/1/2", "bad db \"1/2\""),
            ("redis://h?db=2", "query parameters are not supported"),
            ("redis://::1", "an IPv6 address goes in brackets"),
            ("redis://[::1", "unclosed '['"),
            ("redis://secret@h", "credentials go as user:password@"),
            ("redis://user:@h", "empty password"),
            (
                "redis://:p%zz@h",
                "password: a '%' not followed by two hex digits",
            ),
            ("redis://:p%ff@h", "password: not UTF-8"),
        ];
        for (text, expected) in cases {
            let error = url_error(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn no_url_error_repeats_the_password() {
        for text in [
            "redis://:hunter2@h:bad",
            "redis://u:hunter2@h/x",
            "redis://u:hunter2@h?x",
        ] {
            assert!(!url_error(text).contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn urls_print_without_their_password() {
        let parsed = url("redis://app:hunter2@cache:6380/2");
        assert_eq!(parsed.to_string(), "redis://app:***@cache:6380/2");
        assert!(!format!("{parsed:?}").contains("hunter2"));
        assert_eq!(
            url("redis://:hunter2@h").to_string(),
            "redis://:***@h:6379/0"
        );
        assert_eq!(url("redis://[::1]").to_string(), "redis://[::1]:6379/0");
        // What is printed parses back to the same place.
        let plain = url("redis://cache:6380/2");
        assert_eq!(url(&plain.to_string()), plain);
    }

    // ---- Commands ----

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"key", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n");
        assert_eq!(encoded_len(&[b"SET", b"key", b""]), out.len());
    }

    proptest! {
        /// The hand-written encoder writes what redis-protocol's would, and says its length.
        #[test]
        fn commands_encode_as_the_crate_does(
            args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..12),
        ) {
            use redis_protocol::resp2::encode::encode_borrowed;
            use redis_protocol::resp2::types::BorrowedFrame;
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let mut ours = Vec::new();
            encode_command(&mut ours, &args);
            prop_assert_eq!(encoded_len(&args), ours.len());
            let frames: Vec<_> = args.iter().map(|a| BorrowedFrame::BulkString(a)).collect();
            let mut theirs = vec![0; ours.len() + 64];
            let len = encode_borrowed(&mut theirs, &BorrowedFrame::Array(&frames), false).unwrap();
            prop_assert_eq!(&theirs[..len], &ours[..]);
        }
    }

    // ---- Replies ----

    /// The wire form of a reply (what Redis would send).
    fn wire(reply: &Reply, out: &mut Vec<u8>) {
        match reply {
            Reply::Status(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
            Reply::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
            Reply::Integer(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(None) => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(Some(items)) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    wire(item, out);
                }
            }
        }
    }

    fn wire_all(replies: &[Reply]) -> Vec<u8> {
        let mut out = Vec::new();
        for reply in replies {
            wire(reply, &mut out);
        }
        out
    }

    /// Every reply of `chunks` delivered one after the other, as a connection would decode them.
    fn decode_chunks(
        chunks: &[&[u8]],
        max_reply_bytes: usize,
    ) -> Result<Vec<Reply>, ProtocolError> {
        let mut decoder = ReplyDecoder::new(max_reply_bytes);
        let mut buf = Vec::new();
        let mut replies = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Status::Complete(reply, used) = decoder.decode(&buf)? {
                buf.drain(..used);
                replies.push(reply);
            }
        }
        assert!(buf.is_empty(), "{} bytes left over", buf.len());
        Ok(replies)
    }

    /// The replies of `input`, checked to be the same however the input is split.
    fn decode_all(input: &[u8]) -> Result<Vec<Reply>, ProtocolError> {
        let whole = decode_chunks(&[input], MAX_REPLY_BYTES);
        at_every_split(input, |chunks| {
            assert_eq!(decode_chunks(chunks, MAX_REPLY_BYTES), whole);
        });
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(decode_chunks(&bytes, MAX_REPLY_BYTES), whole);
        whole
    }

    fn bulk(b: &[u8]) -> Reply {
        Reply::Bulk(Some(b.to_vec()))
    }

    fn array(items: Vec<Reply>) -> Reply {
        Reply::Array(Some(items))
    }

    /// Replies the event store will see: XADD's id, HSET's count, XRANGE's entries, GET of
    /// a missing key, a blocking XREAD that timed out, an error, GEOPOS with a member missing.
    fn assorted() -> Vec<Reply> {
        vec![
            Reply::Status("OK".into()),
            bulk(b"1700000000000-0"),
            Reply::Integer(-42),
            Reply::Bulk(None),
            Reply::Array(None),
            Reply::Error(
                "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
            ),
            array(vec![
                array(vec![
                    bulk(b"1-0"),
                    array(vec![bulk(b"event"), bulk(b"{\"a\":\"\r\n\"}")]),
                ]),
                array(vec![bulk(b"1-1"), array(vec![])]),
            ]),
            array(vec![
                array(vec![bulk(b"13.36"), bulk(b"38.11")]),
                Reply::Array(None),
            ]),
            array(vec![
                Reply::Bulk(None),
                Reply::Array(None),
                bulk(b""),
                Reply::Bulk(None),
            ]),
            bulk(b""),
            array(vec![]),
        ]
    }

    #[test]
    fn replies_decode_at_every_split() {
        let replies = assorted();
        assert_eq!(decode_all(&wire_all(&replies)), Ok(replies));
    }

    #[test]
    fn replies_decode_from_what_redis_sends() {
        let input = b"+OK\r\n:1\r\n$-1\r\n*-1\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nk\r\n$1\r\nv\r\n*-1\r\n-ERR unknown command 'X'\r\n";
        assert_eq!(
            decode_all(input),
            Ok(vec![
                Reply::Status("OK".into()),
                Reply::Integer(1),
                Reply::Bulk(None),
                Reply::Array(None),
                array(vec![
                    array(vec![bulk(b"1-0"), array(vec![bulk(b"k"), bulk(b"v")])]),
                    Reply::Array(None),
                ]),
                Reply::Error("ERR unknown command 'X'".into()),
            ])
        );
    }

    #[test]
    fn statuses_and_errors_that_are_not_utf8_are_read_lossily() {
        // redis-protocol's own owned decoder refuses such an error; it is still an answer.
        assert_eq!(
            decode_all(b"-ERR \xff\r\n+\x80\r\n"),
            Ok(vec![
                Reply::Error("ERR \u{fffd}".into()),
                Reply::Status("\u{fffd}".into())
            ])
        );
    }

    #[test]
    fn an_incomplete_reply_is_partial_not_an_error() {
        let mut decoder = ReplyDecoder::new(MAX_REPLY_BYTES);
        for input in [
            &b""[..],
            b"*",
            b"*2\r",
            b"*2\r\n$3\r\nab",
            b"$3\r\nabc\r",
            b"+OK",
        ] {
            assert_eq!(decoder.decode(input), Ok(Status::Partial), "{input:?}");
            decoder = ReplyDecoder::new(MAX_REPLY_BYTES);
        }
    }

    #[test]
    fn broken_replies_are_protocol_errors() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"!3\r\nabc\r\n", ProtocolError::UnknownType(b'!')),
            (b"*1\r\n?\r\n", ProtocolError::UnknownType(b'?')),
            (b"$x\r\n", ProtocolError::BadLength),
            (b"$-2\r\n", ProtocolError::BadLength),
            (b"*\r\n", ProtocolError::BadLength),
            (b"*+1\r\n:1\r\n", ProtocolError::BadLength),
            (b"$3\r\nabcde\r\n", ProtocolError::UnterminatedBulk),
        ];
        for (input, expected) in cases {
            assert_eq!(decode_all(input), Err(expected.clone()), "{input:?}");
        }
        let Err(ProtocolError::Malformed(_)) = decode_all(b":12x\r\n") else {
            panic!("an integer that is not one");
        };
    }

    #[test]
    fn a_reply_over_the_bound_is_refused_as_soon_as_its_header_tells() {
        let max = 1000;
        let refused = |input: &[u8]| decode_chunks(&[input], max);
        // A bulk string's length is known before its payload.
        assert_eq!(refused(b"$1000\r\n"), Err(ProtocolError::TooLarge));
        assert_eq!(
            refused(b"*2\r\n:1\r\n$990\r\n"),
            Err(ProtocolError::TooLarge)
        );
        assert_eq!(
            refused(b"$99999999999999999999\r\n"),
            Err(ProtocolError::BadLength)
        );
        // An array's count is known before its elements (each at least three bytes).
        assert_eq!(refused(b"*400\r\n"), Err(ProtocolError::TooLarge));
        // A line without its end: the bytes held so far are what counts.
        let mut endless = b"+".to_vec();
        endless.extend(std::iter::repeat_n(b'x', max));
        assert_eq!(refused(&endless), Err(ProtocolError::TooLarge));
        // Within the bound, all is well.
        let mut fits = format!("${}\r\n", max - 8).into_bytes();
        fits.extend(std::iter::repeat_n(b'x', max - 8));
        fits.extend_from_slice(b"\r\n");
        assert_eq!(fits.len(), 1000);
        assert_eq!(refused(&fits).map(|r| r.len()), Ok(1));
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| {
            let mut input = b"*1\r\n".repeat(depth);
            input.extend_from_slice(b":1\r\n");
            decode_chunks(&[&input], MAX_REPLY_BYTES)
        };
        assert!(nested(MAX_DEPTH).is_ok());
        assert_eq!(nested(MAX_DEPTH + 1), Err(ProtocolError::TooDeep));
        // A peer cannot take the stack: the scan refuses long before the decoder recurses.
        assert_eq!(nested(1_000_000), Err(ProtocolError::TooDeep));
    }

    #[test]
    fn a_long_reply_arriving_in_pieces_is_scanned_once() {
        // 4 MiB in 4 KiB reads: a decoder that started over at every read would scan about
        // 2 GiB; the scan goes on where it stopped, and the test stays quick.
        let mut input = b"*2\r\n".to_vec();
        for _ in 0..2 {
            input.extend_from_slice(format!("${}\r\n", 2 << 20).as_bytes());
            input.extend(std::iter::repeat_n(b'v', 2 << 20));
            input.extend_from_slice(b"\r\n");
        }
        let chunks: Vec<&[u8]> = input.chunks(4096).collect();
        let replies = decode_chunks(&chunks, MAX_REPLY_BYTES).unwrap();
        assert_eq!(replies.len(), 1);
    }

    fn any_reply() -> impl Strategy<Value = Reply> {
        let text = "[^\r\n]{0,12}";
        let leaf = prop_oneof![
            text.prop_map(Reply::Status),
            text.prop_map(Reply::Error),
            any::<i64>().prop_map(Reply::Integer),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24))
                .prop_map(Reply::Bulk),
            Just(Reply::Array(None)),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            proptest::option::of(proptest::collection::vec(inner, 0..6)).prop_map(Reply::Array)
        })
    }

    proptest! {
        /// Replies come back as they were sent, wherever the stream is cut.
        #[test]
        fn replies_round_trip_however_the_stream_is_cut(
            replies in proptest::collection::vec(any_reply(), 1..6),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let input = wire_all(&replies);
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            at.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for cut in at {
                chunks.push(&input[from..cut]);
                from = cut;
            }
            chunks.push(&input[from..]);
            prop_assert_eq!(decode_chunks(&chunks, MAX_REPLY_BYTES), Ok(replies));
        }

        /// Whatever the bytes, the scan never panics and never calls complete what the crate
        /// does not frame to the same length (its owned decoder also wants errors in UTF-8,
        /// which we do not: they are read lossily).
        #[test]
        fn the_scan_agrees_with_the_crate(input in proptest::collection::vec(
            prop_oneof![Just(b'*'), Just(b'$'), Just(b'+'), Just(b':'), Just(b'-'), Just(b'\r'),
                        Just(b'\n'), Just(b'1'), Just(b'0'), Just(b'2'), any::<u8>()],
            0..40,
        )) {
            let mut decoder = ReplyDecoder::new(MAX_REPLY_BYTES);
            if let Ok(Status::Complete(_, used)) = decoder.decode(&input) {
                let theirs = decode_range(&input[..used]);
                prop_assert!(matches!(theirs, Ok(Some((_, n))) if n == used));
            }
        }
    }

    // ---- The client ----

    type Log = Rc<RefCell<Vec<Result<Reply, Unavailable>>>>;

    fn recorder(log: &Log) -> Completion {
        let log = Rc::clone(log);
        Box::new(move |result| log.borrow_mut().push(result))
    }

    fn plain() -> RedisUrl {
        url("redis://127.0.0.1")
    }

    fn connected(url: &RedisUrl) -> Rc<Client> {
        let client = Client::new(url, 1 << 20, PATIENT);
        client.connected();
        client
    }

    fn output(client: &Client) -> Vec<u8> {
        let mut out = Vec::new();
        client.take_output(&mut out);
        out
    }

    fn feed(client: &Client, bytes: &[u8]) -> Result<(), ProtocolError> {
        let mut inbuf = bytes.to_vec();
        let outcome = client.received(&mut inbuf);
        if outcome.is_ok() {
            assert!(inbuf.is_empty(), "whole replies are taken off");
        }
        outcome
    }

    #[test]
    fn redis_owes_a_reply_within_the_timeout_of_its_last_one() {
        let timeout = Duration::from_secs(2);
        let client = Client::new(&plain(), 1 << 20, timeout);
        client.connected();
        // Nothing awaited: nothing owed, however long Redis is silent.
        assert_eq!(client.reply_due(), None);
        assert!(client
            .check_reply_wait(Instant::now() + timeout * 10)
            .is_ok());

        let log = Log::default();
        let before = Instant::now();
        client.command(&[b"GET", b"a"], recorder(&log));
        client.command(&[b"GET", b"b"], recorder(&log));
        let due = client.reply_due().expect("a reply is owed");
        assert!(due >= before + timeout && due <= Instant::now() + timeout);
        assert!(client
            .check_reply_wait(due - Duration::from_millis(1))
            .is_ok());

        // One reply: the second is owed from then on, not from when it was sent.
        std::thread::sleep(Duration::from_millis(5));
        feed(&client, b"$1\r\nx\r\n").unwrap();
        let moved = client.reply_due().expect("the second reply is owed");
        assert!(moved > due, "progress moves the due time");
        assert!(client.check_reply_wait(due).is_ok());

        // None by the due time: the connection is to be dropped, and that is counted.
        assert_eq!(
            client.check_reply_wait(moved),
            Err(ProtocolError::NoReply(timeout))
        );
        assert_eq!(client.stats().reply_timeouts, 1);
        client.disconnected();
        assert_eq!(client.reply_due(), None);
        assert_eq!(log.borrow().len(), 2);
        assert_eq!(log.borrow()[1], Err(Unavailable));

        // The last reply taken: nothing owed again.
        client.connected();
        client.command(&[b"PING"], recorder(&log));
        feed(&client, b"+PONG\r\n").unwrap();
        assert_eq!(client.reply_due(), None);
    }

    #[test]
    fn auth_and_select_are_owed_replies_too() {
        let timeout = Duration::from_secs(2);
        let client = Client::new(&url("redis://:pw@h/2"), 1 << 20, timeout);
        let before = Instant::now();
        client.connected();
        let due = client.reply_due().expect("AUTH's reply is owed");
        assert!(due >= before + timeout);
        assert!(client.check_reply_wait(due).is_err());
    }

    #[test]
    fn commands_are_refused_until_connected() {
        let client = Client::new(&plain(), 1 << 20, PATIENT);
        let log = Log::default();
        assert!(!client.is_up());
        client.command(&[b"PING"], recorder(&log));
        assert_eq!(*log.borrow(), vec![Err(Unavailable)]);
        assert!(output(&client).is_empty());
        assert_eq!(client.stats().unavailable, 1);
    }

    #[test]
    fn replies_complete_commands_in_order() {
        let client = connected(&plain());
        assert!(client.is_up());
        let log = Log::default();
        client.command(&[b"SET", b"k", b"v"], recorder(&log));
        client.command(&[b"GET", b"k"], recorder(&log));
        client.command(&[b"INCR", b"k"], recorder(&log));
        assert_eq!(
            output(&client),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
        );
        // The first reply and part of the second.
        let mut inbuf = b"+OK\r\n$1\r".to_vec();
        client.received(&mut inbuf).unwrap();
        assert_eq!(inbuf, b"$1\r");
        assert_eq!(*log.borrow(), vec![Ok(Reply::Status("OK".into()))]);
        inbuf.extend_from_slice(b"\nv\r\n-ERR value is not an integer or out of range\r\n");
        client.received(&mut inbuf).unwrap();
        assert!(inbuf.is_empty());
        assert_eq!(
            *log.borrow(),
            vec![
                Ok(Reply::Status("OK".into())),
                Ok(bulk(b"v")),
                // A Redis error is a reply, not unavailability.
                Ok(Reply::Error(
                    "ERR value is not an integer or out of range".into()
                )),
            ]
        );
    }

    #[test]
    fn replies_complete_the_same_however_they_are_split() {
        let replies = assorted();
        let input = wire_all(&replies);
        at_every_split(&input, |chunks| {
            let client = connected(&plain());
            let log = Log::default();
            for _ in &replies {
                client.command(&[b"X"], recorder(&log));
            }
            let mut inbuf = Vec::new();
            for chunk in chunks {
                inbuf.extend_from_slice(chunk);
                client.received(&mut inbuf).unwrap();
            }
            let expected: Vec<_> = replies.iter().cloned().map(Ok).collect();
            assert_eq!(*log.borrow(), expected);
        });
    }

    #[test]
    fn a_reply_nobody_awaits_breaks_the_connection() {
        let client = connected(&plain());
        let log = Log::default();
        client.command(&[b"PING"], recorder(&log));
        assert_eq!(
            feed(&client, b"+PONG\r\n+PONG\r\n"),
            Err(ProtocolError::Unsolicited)
        );
        // The reply that had a command was delivered before the error.
        assert_eq!(*log.borrow(), vec![Ok(Reply::Status("PONG".into()))]);
    }

    #[test]
    fn a_broken_reply_fails_the_connection_and_its_commands() {
        let client = connected(&plain());
        let log = Log::default();
        client.command(&[b"GET", b"a"], recorder(&log));
        client.command(&[b"GET", b"b"], recorder(&log));
        assert_eq!(
            feed(&client, b"$1\r\na\r\n%oops\r\n"),
            Err(ProtocolError::UnknownType(b'%'))
        );
        client.disconnected();
        assert_eq!(*log.borrow(), vec![Ok(bulk(b"a")), Err(Unavailable)]);
        // A reply too large for the bound is refused from its header.
        let client = connected(&plain());
        client.command(&[b"GET", b"big"], recorder(&log));
        let header = format!("${}\r\n", MAX_REPLY_BYTES);
        assert_eq!(
            feed(&client, header.as_bytes()),
            Err(ProtocolError::TooLarge)
        );
    }

    #[test]
    fn the_preamble_goes_first_and_commands_wait_for_it() {
        let client = Client::new(&url("redis://app:secret@h/3"), 1 << 20, PATIENT);
        let log = Log::default();
        client.connected();
        assert!(!client.is_up());
        assert_eq!(
            output(&client),
            b"*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$6\r\nsecret\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"
        );
        // Refused while AUTH and SELECT are on their way.
        client.command(&[b"PING"], recorder(&log));
        assert_eq!(*log.borrow(), vec![Err(Unavailable)]);
        feed(&client, b"+OK\r\n").unwrap();
        assert!(!client.is_up(), "SELECT is not answered yet");
        feed(&client, b"+OK\r\n").unwrap();
        assert!(client.is_up());
        client.command(&[b"PING"], recorder(&log));
        assert_eq!(output(&client), b"*1\r\n$4\r\nPING\r\n");
        // A password alone, no database: AUTH with one argument, and nothing else.
        let client = Client::new(&url("redis://:pw@h"), 1 << 20, PATIENT);
        client.connected();
        assert_eq!(output(&client), b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
    }

    #[test]
    fn a_refused_preamble_breaks_the_connection() {
        let client = Client::new(&url("redis://:wrong@h/3"), 1 << 20, PATIENT);
        client.connected();
        let refused = feed(
            &client,
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        );
        assert_eq!(
            refused,
            Err(ProtocolError::Refused(
                "WRONGPASS invalid username-password pair or user is disabled.".into()
            ))
        );
        assert!(!client.is_up());
        client.disconnected();
        assert!(!client.is_up());
        assert!(
            output(&client).is_empty(),
            "SELECT is not sent on a dead connection"
        );
        // SELECT of a database the server does not have is refused the same way.
        client.connected();
        feed(&client, b"+OK\r\n").unwrap();
        assert!(matches!(
            feed(&client, b"-ERR DB index is out of range\r\n"),
            Err(ProtocolError::Refused(_))
        ));
        assert!(!client.is_up());
    }

    #[test]
    fn disconnection_fails_every_command_in_order() {
        let client = connected(&plain());
        let order = Rc::new(RefCell::new(Vec::new()));
        for i in 0..5 {
            let order = Rc::clone(&order);
            client.command(
                &[b"GET", i.to_string().as_bytes()],
                Box::new(move |result| order.borrow_mut().push((i, result))),
            );
        }
        let mut written = Vec::new();
        client.take_output(&mut written);
        client.command(
            &[b"GET", b"unwritten"],
            Box::new(|r| assert_eq!(r, Err(Unavailable))),
        );
        feed(&client, b"$-1\r\n").unwrap();
        client.disconnected();
        assert!(!client.is_up());
        let order = order.borrow();
        assert_eq!(order[0], (0, Ok(Reply::Bulk(None))));
        let rest: Vec<_> = order[1..].iter().map(|(i, r)| (*i, r.clone())).collect();
        assert_eq!(
            rest,
            (1..5).map(|i| (i, Err(Unavailable))).collect::<Vec<_>>()
        );
        assert!(output(&client).is_empty(), "unwritten commands are dropped");
        let stats = client.stats();
        assert_eq!((stats.commands, stats.unavailable, stats.up), (6, 5, false));
    }

    #[test]
    fn completions_may_queue_commands() {
        let client = connected(&plain());
        let log = Log::default();
        // On a reply: the client is up, and the next command goes out.
        let (again, seen) = (Rc::clone(&client), Rc::clone(&log));
        client.command(
            &[b"GET", b"a"],
            Box::new(move |result| {
                assert!(again.is_up());
                seen.borrow_mut().push(result);
                again.command(&[b"GET", b"b"], recorder(&seen));
            }),
        );
        output(&client);
        feed(&client, b"$1\r\na\r\n").unwrap();
        assert_eq!(output(&client), b"*2\r\n$3\r\nGET\r\n$1\r\nb\r\n");
        // On a broken connection: the client is already down, and a command is refused.
        let (again, seen) = (Rc::clone(&client), Rc::clone(&log));
        client.command(
            &[b"GET", b"c"],
            Box::new(move |result| {
                assert!(!again.is_up());
                seen.borrow_mut().push(result);
                again.command(&[b"GET", b"d"], recorder(&seen));
            }),
        );
        client.disconnected();
        assert_eq!(
            *log.borrow(),
            vec![
                Ok(bulk(b"a")),
                Err(Unavailable), // GET c
                Err(Unavailable), // GET d, refused at once
                Err(Unavailable), // GET b, cut off after GET c's completion ran
            ]
        );
    }

    #[test]
    fn the_queue_bound_refuses_commands_until_replies_drain() {
        let cost = encoded_len(&[b"PING"]) + COMMAND_OVERHEAD;
        let client = Client::new(&plain(), 3 * cost, PATIENT);
        client.connected();
        let log = Log::default();
        for _ in 0..4 {
            client.command(&[b"PING"], recorder(&log));
        }
        assert_eq!(
            *log.borrow(),
            vec![Err(Unavailable)],
            "the fourth is over the bound"
        );
        // Written but unanswered still counts.
        output(&client);
        client.command(&[b"PING"], recorder(&log));
        assert_eq!(log.borrow().len(), 2);
        feed(&client, b"+PONG\r\n").unwrap();
        client.command(&[b"PING"], recorder(&log));
        assert_eq!(log.borrow().len(), 3, "room for one again");
        assert_eq!(output(&client), b"*1\r\n$4\r\nPING\r\n");
        // A command that could never fit is refused, not queued.
        let huge = vec![b'x'; 3 * cost];
        client.command(&[b"SET", b"k", &huge], recorder(&log));
        assert_eq!(log.borrow().last(), Some(&Err(Unavailable)));
    }

    #[test]
    fn call_is_command_as_a_future() {
        let client = connected(&plain());
        let pong = client.call(&[b"PING"]);
        let missing = client.call(&[b"GET", b"missing"]);
        feed(&client, b"+PONG\r\n$-1\r\n").unwrap();
        assert_eq!(
            futures_lite::future::block_on(pong),
            Ok(Reply::Status("PONG".into()))
        );
        assert_eq!(
            futures_lite::future::block_on(missing),
            Ok(Reply::Bulk(None))
        );
        client.disconnected();
        assert_eq!(
            futures_lite::future::block_on(client.call(&[b"PING"])),
            Err(Unavailable)
        );
        // A pending call is woken by the reply.
        client.connected();
        let mut call = client.call(&[b"PING"]);
        let wakes = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut call).poll(&mut cx).is_pending());
        feed(&client, b"+PONG\r\n").unwrap();
        assert_eq!(wakes.wakes(), 1);
        assert!(Pin::new(&mut call).poll(&mut cx).is_ready());
    }

    #[test]
    fn the_writer_is_woken_when_there_is_output() {
        let client = Client::new(&url("redis://h/1"), 1 << 20, PATIENT);
        let wakes = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        assert!(client.poll_output(&mut cx).is_pending());
        client.connected();
        assert_eq!(wakes.wakes(), 1, "SELECT is queued");
        assert!(client.poll_output(&mut cx).is_ready());
        output(&client);
        assert!(client.poll_output(&mut cx).is_pending());
        feed(&client, b"+OK\r\n").unwrap();
        client.command(&[b"PING"], Box::new(|_| {}));
        assert_eq!(wakes.wakes(), 2);
        let mut out = b"already".to_vec();
        client.take_output(&mut out);
        assert_eq!(out, b"already*1\r\n$4\r\nPING\r\n");
    }

    #[test]
    fn stats_count_commands_refusals_and_reconnects() {
        let client = Client::new(&plain(), 1 << 20, PATIENT);
        client.command(&[b"PING"], Box::new(|_| {}));
        client.connected();
        client.command(&[b"PING"], Box::new(|_| {}));
        client.command(&[b"PING"], Box::new(|_| {}));
        feed(&client, b"+PONG\r\n").unwrap();
        assert_eq!(
            client.stats(),
            ClientStats {
                up: true,
                commands: 2,
                unavailable: 1,
                reconnects: 0,
                reply_timeouts: 0,
            }
        );
        client.disconnected();
        client.connected();
        assert_eq!(
            client.stats(),
            ClientStats {
                up: true,
                commands: 2,
                unavailable: 2,
                reconnects: 1,
                reply_timeouts: 0,
            }
        );
    }

    #[test]
    fn a_new_connection_starts_clean() {
        let client = connected(&plain());
        let log = Log::default();
        client.command(&[b"GET", b"k"], recorder(&log));
        // Half a reply, then the connection breaks; a new one must not pair old bytes or
        // old commands with new replies.
        client.received(&mut b"$5\r\nhel".to_vec()).unwrap();
        client.connected();
        assert_eq!(*log.borrow(), vec![Err(Unavailable)]);
        assert!(output(&client).is_empty());
        client.command(&[b"PING"], recorder(&log));
        feed(&client, b"+PONG\r\n").unwrap();
        assert_eq!(log.borrow()[1], Ok(Reply::Status("PONG".into())));
    }
}
