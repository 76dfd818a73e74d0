//! The shared event store (`--event-store redis://…`): what of a Streamable HTTP session
//! outlives its node, in Redis. The key layout, the commands each change becomes, and the
//! reading of what a node adopting a session loads back. Sans-IO: commands go to the shard's
//! pipelined [`Client`], whose connection the shard drives; nothing here waits on a socket.
//!
//! Layout (the `{…}` hash tag keeps a session's keys in one Redis Cluster slot):
//!
//! - `ringmcp:{<session id>}`, a hash with the session idle timeout as its TTL:
//!   `state` (the MCP session record, JSON), `principal` (the hex tag of the principal the
//!   session is bound to, when authorization is on), `next` (the next POST stream number),
//!   and `s:<n>` for every POST stream kept for resumption: the JSON array of the ids of its
//!   requests while they run, `[]` once its response is stored.
//! - `ringmcp:{<session id>}:<n>`, a Redis stream per SSE stream, trimmed to the replay
//!   ring's event count, with the ring's maximum age as its TTL: entry id `<seq>-0` (the SSE
//!   event id's sequence number, so Redis itself refuses a second writer of the same event),
//!   field `d` (the event's data).

use super::redis::{Client, Reply, Unavailable};
use super::sessions::{NodeId, SessionId};
use std::rc::Rc;
use std::time::Duration;

/// What the store did with a write that gates delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Redis has it.
    Yes,
    /// Redis is unreachable: the event lives in the local ring only (failover is off).
    Unavailable,
    /// Redis refused it (for an event: another writer already stored that sequence number,
    /// so two nodes serve the session); carries Redis's message.
    Refused(String),
}

/// The shard's view of the shared event store.
pub struct SharedStore {
    client: Rc<Client>,
    max_events: String,
    events_ttl_ms: String,
    session_ttl_ms: String,
}

/// A session as the store holds it, for the node adopting it.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The MCP session record (see `SessionState::record`).
    pub state: Vec<u8>,
    /// The hex tag of the principal the session is bound to.
    pub principal: Option<String>,
    /// The next POST stream number.
    pub next_stream: u32,
    /// Its streams: the standalone one (0) first, then the POST streams in order.
    pub streams: Vec<LoadedStream>,
}

/// One stream of a [`Loaded`] session.
#[derive(Debug, Default)]
pub struct LoadedStream {
    /// The stream number (0: the standalone stream).
    pub number: u32,
    /// A POST stream whose response is not stored: the raw JSON ids of its requests. Their
    /// handlers died with the node that ran them.
    pub unanswered: Option<Vec<Box<serde_json::value::RawValue>>>,
    /// The sequence number of the first event in `events` (1 when there are none).
    pub first_seq: u64,
    /// The events kept, oldest first, numbered from `first_seq` without a gap.
    pub events: Vec<Vec<u8>>,
    /// The stream had an event (the session hash's `e:N`, written with its first): with no
    /// `events`, they all expired, and how far its numbering went is not known.
    pub had_events: bool,
}

impl SharedStore {
    /// The store behind `client`: streams trimmed to `max_events` and kept for `events_ttl`
    /// after their last event, sessions kept for `session_ttl` after their last use.
    pub fn new(
        client: Rc<Client>,
        max_events: usize,
        events_ttl: Duration,
        session_ttl: Duration,
    ) -> Rc<SharedStore> {
        let millis = |d: Duration| d.as_millis().max(1).to_string();
        Rc::new(SharedStore {
            client,
            max_events: max_events.to_string(),
            events_ttl_ms: millis(events_ttl),
            session_ttl_ms: millis(session_ttl),
        })
    }

    /// Whether the connection to Redis is up (writes may be acknowledged).
    pub fn is_up(&self) -> bool {
        self.client.is_up()
    }

    /// Stores event `seq` of `stream`; `done` learns whether Redis has it. Replies come in
    /// command order, so a stream's events are acknowledged in their order.
    pub fn append(
        &self,
        session: &SessionId,
        stream: u32,
        seq: u64,
        payload: &[u8],
        done: impl FnOnce(Stored) + 'static,
    ) {
        if seq == 1 {
            // The session hash records that the stream had an event, ahead of the event
            // itself (Redis runs a connection's commands in order, so once the event is
            // acknowledged the mark is in): when the stream's key later expires whole, a node
            // adopting the session tells "all expired" from "never any" (`had_events`).
            let session_key = session_key(session);
            let field = format!("e:{stream}");
            self.fire(&[b"HSET", session_key.as_bytes(), field.as_bytes(), b"1"]);
            self.expire(&session_key, &self.session_ttl_ms);
        }
        let key = stream_key(session, stream);
        let entry = format!("{seq}-0");
        // MAXLEN without `~`: exactly the ring's count, so what a resume finds is what the
        // ring would have kept.
        self.client.command(
            &[
                b"XADD",
                key.as_bytes(),
                b"MAXLEN",
                self.max_events.as_bytes(),
                entry.as_bytes(),
                b"d",
                payload,
            ],
            Box::new(move |reply| done(stored(reply))),
        );
        self.expire(&key, &self.events_ttl_ms);
    }

    /// Records that POST stream `stream` serves the requests `request_ids` (a JSON array);
    /// `done` learns whether Redis has it before the stream's first event id goes out.
    pub fn open_stream(
        &self,
        session: &SessionId,
        stream: u32,
        request_ids: &[u8],
        done: impl FnOnce(Stored) + 'static,
    ) {
        let key = session_key(session);
        let field = format!("s:{stream}");
        let next = stream.wrapping_add(1).max(1).to_string();
        self.client.command(
            &[
                b"HSET",
                key.as_bytes(),
                field.as_bytes(),
                request_ids,
                b"next",
                next.as_bytes(),
            ],
            Box::new(move |reply| done(stored(reply))),
        );
        self.expire(&key, &self.session_ttl_ms);
    }

    /// Records that POST stream `stream` holds its response: nothing of it runs any more.
    pub fn finish_stream(&self, session: &SessionId, stream: u32) {
        let field = format!("s:{stream}");
        self.fire(&[
            b"HSET",
            session_key(session).as_bytes(),
            field.as_bytes(),
            b"[]",
        ]);
    }

    /// Forgets a POST stream no longer kept for resumption.
    pub fn drop_stream(&self, session: &SessionId, stream: u32) {
        let (field, mark) = (format!("s:{stream}"), format!("e:{stream}"));
        let key = session_key(session);
        self.fire(&[b"HDEL", key.as_bytes(), field.as_bytes(), mark.as_bytes()]);
        self.fire(&[b"DEL", stream_key(session, stream).as_bytes()]);
    }

    /// Stores the session's MCP record and its principal's tag, and renews its TTL.
    pub fn save_state(&self, session: &SessionId, record: &[u8], principal: Option<&str>) {
        let key = session_key(session);
        match principal {
            Some(tag) => self.fire(&[
                b"HSET",
                key.as_bytes(),
                b"state",
                record,
                b"principal",
                tag.as_bytes(),
            ]),
            None => self.fire(&[b"HSET", key.as_bytes(), b"state", record]),
        }
        self.expire(&key, &self.session_ttl_ms);
    }

    /// Renews the session's TTL (it is in use).
    pub fn keep(&self, session: &SessionId) {
        self.expire(&session_key(session), &self.session_ttl_ms);
    }

    /// Deletes the session and the streams named (it ended: DELETE, or idle expiry).
    pub fn forget(&self, session: &SessionId, streams: impl IntoIterator<Item = u32>) {
        let mut keys = vec![session_key(session)];
        keys.extend(streams.into_iter().map(|n| stream_key(session, n)));
        let mut args: Vec<&[u8]> = vec![b"DEL"];
        args.extend(keys.iter().map(|k| k.as_bytes()));
        self.fire(&args);
    }

    /// Reads session `session` back: `Ok(None)` when Redis does not know it (never stored,
    /// expired, or ended). Every stream is read in one pipelined round trip after the hash.
    pub async fn load(&self, session: SessionId) -> Result<Option<Loaded>, Unavailable> {
        let fields = self
            .client
            .call(&[b"HGETALL", session_key(&session).as_bytes()])
            .await?;
        let Some(mut loaded) = read_session(fields) else {
            return Ok(None);
        };
        let reads: Vec<_> = loaded
            .streams
            .iter()
            .map(|s| {
                let key = stream_key(&session, s.number);
                self.client.call(&[b"XRANGE", key.as_bytes(), b"-", b"+"])
            })
            .collect();
        for (stream, read) in loaded.streams.iter_mut().zip(reads) {
            let (first_seq, events) = read_events(read.await?);
            stream.first_seq = first_seq;
            stream.events = events;
        }
        Ok(Some(loaded))
    }

    /// Records the use of a multi-round request state (by its nonce) until it expires (ms
    /// since the Unix epoch): `Ok(true)` for its first use on any node, `Ok(false)` after.
    pub fn accept_state(
        &self,
        nonce: u64,
        expires_ms: u64,
    ) -> impl std::future::Future<Output = Result<bool, Unavailable>> + 'static {
        let key = format!("ringmcp:state:{nonce:016x}");
        let expires = expires_ms.to_string();
        let set = self.client.call(&[
            b"SET",
            key.as_bytes(),
            b"1",
            b"NX",
            b"PXAT",
            expires.as_bytes(),
        ]);
        async move {
            match set.await? {
                Reply::Status(_) => Ok(true),
                Reply::Bulk(None) => Ok(false),
                other => {
                    log::warn!("event store: a request state's SET answered {other:?}");
                    Err(Unavailable)
                }
            }
        }
    }

    /// Tells the other nodes of an announcement (JSON) made on `node`.
    pub fn announce(&self, node: &NodeId, announcement: &[u8]) {
        self.fire(&[
            b"XADD",
            ANNOUNCEMENTS,
            b"MAXLEN",
            b"~",
            ANNOUNCEMENTS_KEPT,
            b"*",
            b"n",
            node.as_str().as_bytes(),
            b"a",
            announcement,
        ]);
    }

    /// A write whose reply nobody waits for (an error reply is logged).
    fn fire(&self, args: &[&[u8]]) {
        self.client.command(
            args,
            Box::new(|reply| {
                if let Ok(Reply::Error(e)) = reply {
                    log::warn!("event store refused a write: {e}");
                }
            }),
        );
    }

    fn expire(&self, key: &str, ttl_ms: &str) {
        self.fire(&[b"PEXPIRE", key.as_bytes(), ttl_ms.as_bytes()]);
    }
}

/// The Redis stream that carries announcements (resource updates, list changes) between
/// nodes: entries `n` (the announcing node) and `a` (the announcement, JSON).
const ANNOUNCEMENTS: &[u8] = b"ringmcp:announcements";
/// Announcements kept for a node that reconnects (approximately: `MAXLEN ~`).
const ANNOUNCEMENTS_KEPT: &[u8] = b"10000";
/// How long one read waits for announcements (`XREAD BLOCK`): a node stopping is noticed
/// within it, and the connection's reply timeout must exceed it.
pub const ANNOUNCEMENT_WAIT: Duration = Duration::from_millis(1000);
/// [`ANNOUNCEMENT_WAIT`] in milliseconds, as the command carries it.
const ANNOUNCEMENT_WAIT_MS: &[u8] = b"1000";
/// Most announcements one read returns.
const ANNOUNCEMENT_BATCH: &[u8] = b"256";

/// Where a node reads the announcements of the others: on a connection of its own, for
/// each read blocks until something comes.
pub struct AnnouncementReader {
    node: NodeId,
    /// The last entry read; `None` until the first read found where the stream ends.
    last_id: Option<Vec<u8>>,
}

impl AnnouncementReader {
    /// A reader for `node`, which skips its own announcements (its shards heard them).
    pub fn new(node: NodeId) -> AnnouncementReader {
        AnnouncementReader {
            node,
            last_id: None,
        }
    }

    /// The next read: first the newest entry (where this node starts listening: `$` would
    /// miss what comes between two reads), then the announcements after the last one read,
    /// waiting a little for them.
    pub fn next_read(&self) -> Vec<&[u8]> {
        match &self.last_id {
            None => vec![b"XREVRANGE", ANNOUNCEMENTS, b"+", b"-", b"COUNT", b"1"],
            Some(last_id) => vec![
                b"XREAD",
                b"BLOCK",
                ANNOUNCEMENT_WAIT_MS,
                b"COUNT",
                ANNOUNCEMENT_BATCH,
                b"STREAMS",
                ANNOUNCEMENTS,
                last_id,
            ],
        }
    }

    /// The other nodes' announcements in a read's reply (JSON, oldest first); remembers where
    /// the next read starts.
    pub fn read(&mut self, reply: Reply) -> Vec<Vec<u8>> {
        if self.last_id.is_none() {
            // XREVRANGE: [[id, fields]] or [] when nothing was ever announced.
            let newest = match reply {
                Reply::Array(Some(mut entries)) => match entries.pop() {
                    Some(Reply::Array(Some(mut parts))) if !parts.is_empty() => {
                        match parts.swap_remove(0) {
                            Reply::Bulk(Some(id)) => Some(id),
                            _ => None,
                        }
                    }
                    _ => None,
                },
                _ => None,
            };
            self.last_id = Some(newest.unwrap_or_else(|| b"0-0".to_vec()));
            return Vec::new();
        }
        // XREAD: [[stream, [[id, [field, value, …]], …]]], or nil when the wait ran out.
        let Reply::Array(Some(streams)) = reply else {
            return Vec::new();
        };
        let mut announcements = Vec::new();
        for stream in streams {
            let Reply::Array(Some(mut parts)) = stream else {
                continue;
            };
            let Some(Reply::Array(Some(entries))) = parts.pop() else {
                continue;
            };
            for entry in entries {
                let Reply::Array(Some(mut parts)) = entry else {
                    continue;
                };
                let (Some(Reply::Array(Some(fields))), Some(Reply::Bulk(Some(id)))) =
                    (parts.pop(), parts.pop())
                else {
                    continue;
                };
                self.last_id = Some(id);
                let mut from = None;
                let mut body = None;
                let mut fields = fields.into_iter();
                while let (Some(Reply::Bulk(Some(name))), Some(Reply::Bulk(Some(value)))) =
                    (fields.next(), fields.next())
                {
                    match name.as_slice() {
                        b"n" => from = Some(value),
                        b"a" => body = Some(value),
                        _ => {}
                    }
                }
                if let (Some(from), Some(body)) = (from, body) {
                    if from != self.node.as_str().as_bytes() {
                        announcements.push(body);
                    }
                }
            }
        }
        announcements
    }
}

fn session_key(session: &SessionId) -> String {
    format!("ringmcp:{{{session}}}")
}

fn stream_key(session: &SessionId, stream: u32) -> String {
    format!("ringmcp:{{{session}}}:{stream}")
}

fn stored(reply: Result<Reply, Unavailable>) -> Stored {
    match reply {
        Ok(Reply::Error(e)) => Stored::Refused(e),
        Ok(_) => Stored::Yes,
        Err(Unavailable) => Stored::Unavailable,
    }
}

/// The session hash (HGETALL's flat field/value array) as a [`Loaded`] without events;
/// `None` when it is empty or has no state.
fn read_session(fields: Reply) -> Option<Loaded> {
    let Reply::Array(Some(items)) = fields else {
        return None;
    };
    let mut loaded = Loaded::default();
    let mut state = None;
    let mut posts = Vec::new();
    let mut had_events = Vec::new();
    let mut items = items.into_iter();
    while let (Some(Reply::Bulk(Some(field))), Some(Reply::Bulk(Some(value)))) =
        (items.next(), items.next())
    {
        match field.as_slice() {
            b"state" => state = Some(value),
            b"principal" => loaded.principal = String::from_utf8(value).ok(),
            b"next" => loaded.next_stream = decimal(&value).unwrap_or(0),
            name if name.starts_with(b"e:") => had_events.extend(decimal::<u32>(&name[2..])),
            name => {
                let number = name
                    .strip_prefix(b"s:")
                    .and_then(decimal::<u32>)
                    .filter(|n| *n != 0);
                let ids: Option<Vec<Box<serde_json::value::RawValue>>> =
                    serde_json::from_slice(&value).ok();
                if let (Some(number), Some(ids)) = (number, ids) {
                    posts.push(LoadedStream {
                        number,
                        unanswered: (!ids.is_empty()).then_some(ids),
                        ..LoadedStream::default()
                    });
                }
            }
        }
    }
    loaded.state = state?;
    posts.sort_by_key(|s| s.number);
    let highest = posts.last().map_or(0, |s| s.number);
    loaded.next_stream = loaded.next_stream.max(highest.wrapping_add(1)).max(1);
    loaded.streams = std::iter::once(LoadedStream::default())
        .chain(posts)
        .map(|stream| LoadedStream {
            had_events: had_events.contains(&stream.number),
            ..stream
        })
        .collect();
    Some(loaded)
}

/// An XRANGE reply as the first sequence number and the events from it on. Only the run
/// after the last gap is kept (a gap is events Redis never got while it was away): a resume
/// from before the gap is then refused instead of silently skipping events.
fn read_events(reply: Reply) -> (u64, Vec<Vec<u8>>) {
    let Reply::Array(Some(entries)) = reply else {
        return (1, Vec::new());
    };
    let mut first_seq = 1;
    let mut events: Vec<Vec<u8>> = Vec::new();
    for entry in entries {
        let Some((seq, data)) = read_entry(entry) else {
            continue;
        };
        if events.is_empty() || seq != first_seq + events.len() as u64 {
            first_seq = seq;
            events.clear();
        }
        events.push(data);
    }
    (first_seq, events)
}

/// A number written in decimal text (a hash field's stream number, an entry id's sequence).
fn decimal<T: std::str::FromStr>(text: &[u8]) -> Option<T> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// One XRANGE entry, `[id, [field, value, …]]`, as its sequence number and `d` field.
fn read_entry(entry: Reply) -> Option<(u64, Vec<u8>)> {
    let Reply::Array(Some(parts)) = entry else {
        return None;
    };
    let mut parts = parts.into_iter();
    let (Some(Reply::Bulk(Some(id))), Some(Reply::Array(Some(fields)))) =
        (parts.next(), parts.next())
    else {
        return None;
    };
    let seq = decimal(id.strip_suffix(b"-0")?)?;
    let mut fields = fields.into_iter();
    while let (Some(Reply::Bulk(Some(name))), Some(Reply::Bulk(Some(value)))) =
        (fields.next(), fields.next())
    {
        if name == b"d" {
            return Some((seq, value));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(b: &[u8]) -> Reply {
        Reply::Bulk(Some(b.to_vec()))
    }

    #[test]
    fn the_announcement_wait_is_the_one_the_command_carries() {
        let millis = ANNOUNCEMENT_WAIT.as_millis().to_string();
        assert_eq!(ANNOUNCEMENT_WAIT_MS, millis.as_bytes());
    }

    fn entry(id: &str, data: &[u8]) -> Reply {
        Reply::Array(Some(vec![
            bulk(id.as_bytes()),
            Reply::Array(Some(vec![bulk(b"d"), bulk(data)])),
        ]))
    }

    #[test]
    fn a_session_hash_reads_back_with_its_streams_in_order() {
        let fields = Reply::Array(Some(vec![
            bulk(b"s:7"),
            bulk(b"[]"),
            bulk(b"state"),
            bulk(br#"{"version":"2025-11-25"}"#),
            bulk(b"s:9"),
            bulk(br#"[3,"a"]"#),
            bulk(b"next"),
            bulk(b"10"),
            bulk(b"principal"),
            bulk(b"00ff"),
            bulk(b"s:x"),
            bulk(b"[]"),
            bulk(b"e:9"),
            bulk(b"1"),
            bulk(b"e:0"),
            bulk(b"1"),
            bulk(b"e:x"),
            bulk(b"1"),
        ]));
        let loaded = read_session(fields).unwrap();
        assert_eq!(loaded.state, br#"{"version":"2025-11-25"}"#);
        assert_eq!(loaded.principal.as_deref(), Some("00ff"));
        assert_eq!(loaded.next_stream, 10);
        let numbers: Vec<u32> = loaded.streams.iter().map(|s| s.number).collect();
        assert_eq!(numbers, [0, 7, 9]);
        assert!(loaded.streams[1].unanswered.is_none(), "answered");
        let ids: Vec<&str> = loaded.streams[2]
            .unanswered
            .iter()
            .flatten()
            .map(|id| id.get())
            .collect();
        assert_eq!(ids, ["3", "\"a\""]);
        // Which streams had an event (their first one marks it).
        let had: Vec<bool> = loaded.streams.iter().map(|s| s.had_events).collect();
        assert_eq!(had, [true, false, true]);
    }

    #[test]
    fn a_hash_without_state_is_no_session() {
        assert!(read_session(Reply::Array(Some(Vec::new()))).is_none());
        let fields = Reply::Array(Some(vec![bulk(b"next"), bulk(b"3")]));
        assert!(read_session(fields).is_none());
        assert!(read_session(Reply::Array(None)).is_none());
    }

    #[test]
    fn next_stream_is_past_every_stream_kept() {
        let fields = Reply::Array(Some(vec![
            bulk(b"state"),
            bulk(b"{}"),
            bulk(b"s:12"),
            bulk(b"[]"),
            bulk(b"next"),
            bulk(b"5"),
        ]));
        assert_eq!(read_session(fields).unwrap().next_stream, 13);
    }

    #[test]
    fn announcements_of_other_nodes_are_read_and_the_next_read_starts_after_them() {
        let mut reader = AnnouncementReader::new(NodeId::parse("a").unwrap());
        assert_eq!(reader.next_read()[0], b"XREVRANGE");
        let newest = Reply::Array(Some(vec![Reply::Array(Some(vec![
            bulk(b"4-0"),
            Reply::Array(Some(Vec::new())),
        ]))]));
        assert!(reader.read(newest).is_empty());
        assert_eq!(reader.next_read()[7], b"4-0");
        let entry = |id: &str, node: &[u8], body: &[u8]| {
            Reply::Array(Some(vec![
                bulk(id.as_bytes()),
                Reply::Array(Some(vec![bulk(b"n"), bulk(node), bulk(b"a"), bulk(body)])),
            ]))
        };
        let reply = Reply::Array(Some(vec![Reply::Array(Some(vec![
            bulk(ANNOUNCEMENTS),
            Reply::Array(Some(vec![
                entry("5-0", b"b", b"one"),
                entry("6-0", b"a", b"mine"),
                entry("7-1", b"c", b"two"),
            ])),
        ]))]));
        assert_eq!(reader.read(reply), [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(reader.next_read()[7], b"7-1");
        // The wait ran out: nothing, and the same place next time.
        assert!(reader.read(Reply::Array(None)).is_empty());
        assert_eq!(reader.next_read()[7], b"7-1");
        // A stream nothing was ever announced on: from its start.
        let mut fresh = AnnouncementReader::new(NodeId::parse("a").unwrap());
        assert!(fresh.read(Reply::Array(Some(Vec::new()))).is_empty());
        assert_eq!(fresh.next_read()[7], b"0-0");
    }

    #[test]
    fn events_read_back_from_their_ids_and_only_after_the_last_gap() {
        let reply = Reply::Array(Some(vec![
            entry("4-0", b"four"),
            entry("5-0", b"five"),
            entry("7-0", b"seven"),
            entry("8-0", b"eight"),
            Reply::Array(Some(vec![bulk(b"9-0")])),
        ]));
        let (first, events) = read_events(reply);
        assert_eq!(first, 7);
        assert_eq!(events, [b"seven".to_vec(), b"eight".to_vec()]);
        assert_eq!(read_events(Reply::Array(Some(Vec::new()))), (1, Vec::new()));
        let (first, events) = read_events(Reply::Array(Some(vec![entry("1-0", b"x")])));
        assert_eq!((first, events.len()), (1, 1));
    }
}
