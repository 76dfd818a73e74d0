//! The shared event store's rules without Redis or sockets: the transports of two nodes
//! over one in-memory Redis that answers the commands their clients queue.

use super::*;
use crate::proto::jsonrpc;
use crate::store::redis::{Client, RedisUrl};
use crate::store::sessions::{NodeId, SessionId};
use crate::store::shared::SharedStore;
use crate::transport::streamable::StoreAnswer;
use std::collections::HashMap;
use std::future::Future;

/// Enough of Redis for the commands the shared store sends.
#[derive(Default)]
struct FakeRedis {
    keys: RefCell<HashMap<Vec<u8>, Stored>>,
}

enum Stored {
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    Stream(Vec<(u64, Vec<u8>)>),
}

impl FakeRedis {
    /// Answers every command `client` queued; false when there was none.
    fn serve(&self, client: &Client) -> bool {
        let mut commands = Vec::new();
        client.take_output(&mut commands);
        if commands.is_empty() {
            return false;
        }
        let mut replies = Vec::new();
        let mut at = 0;
        while at < commands.len() {
            let (args, used) = parse_command(&commands[at..]);
            at += used;
            self.execute(&args, &mut replies);
        }
        client.received(&mut replies).expect("replies in order");
        true
    }

    fn execute(&self, args: &[Vec<u8>], out: &mut Vec<u8>) {
        let mut keys = self.keys.borrow_mut();
        let key = args[1].clone();
        match args[0].as_slice() {
            b"XADD" => {
                // XADD key MAXLEN n <seq>-0 d payload
                let max: usize = text(&args[3]).parse().unwrap();
                let seq: u64 = text(&args[4]).strip_suffix("-0").unwrap().parse().unwrap();
                let entry = keys.entry(key).or_insert(Stored::Stream(Vec::new()));
                let Stored::Stream(events) = entry else {
                    panic!("XADD on a hash")
                };
                if events.last().is_some_and(|(top, _)| *top >= seq) {
                    out.extend_from_slice(b"-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n");
                    return;
                }
                events.push((seq, args[6].clone()));
                let excess = events.len().saturating_sub(max);
                events.drain(..excess);
                bulk(out, args[4].as_slice());
            }
            b"HSET" => {
                let entry = keys.entry(key).or_insert(Stored::Hash(Vec::new()));
                let Stored::Hash(fields) = entry else {
                    panic!("HSET on a stream")
                };
                for pair in args[2..].chunks(2) {
                    fields.retain(|(f, _)| *f != pair[0]);
                    fields.push((pair[0].clone(), pair[1].clone()));
                }
                out.extend_from_slice(b":1\r\n");
            }
            b"HDEL" => {
                if let Some(Stored::Hash(fields)) = keys.get_mut(&key) {
                    fields.retain(|(f, _)| !args[2..].contains(f));
                }
                out.extend_from_slice(b":1\r\n");
            }
            b"DEL" => {
                for key in &args[1..] {
                    keys.remove(key);
                }
                out.extend_from_slice(b":1\r\n");
            }
            b"PEXPIRE" => out.extend_from_slice(b":1\r\n"),
            b"HGETALL" => match keys.get(&key) {
                Some(Stored::Hash(fields)) => {
                    out.extend_from_slice(format!("*{}\r\n", 2 * fields.len()).as_bytes());
                    for (field, value) in fields {
                        bulk(out, field);
                        bulk(out, value);
                    }
                }
                _ => out.extend_from_slice(b"*0\r\n"),
            },
            b"XRANGE" => match keys.get(&key) {
                Some(Stored::Stream(events)) => {
                    out.extend_from_slice(format!("*{}\r\n", events.len()).as_bytes());
                    for (seq, payload) in events {
                        out.extend_from_slice(b"*2\r\n");
                        bulk(out, format!("{seq}-0").as_bytes());
                        out.extend_from_slice(b"*2\r\n");
                        bulk(out, b"d");
                        bulk(out, payload);
                    }
                }
                _ => out.extend_from_slice(b"*0\r\n"),
            },
            other => panic!("unexpected command {}", text(other)),
        }
    }
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

fn bulk(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", value.len()).as_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// One RESP array of bulk strings and the bytes it took.
fn parse_command(buf: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let line = |at: usize| {
        let end = at + buf[at..].windows(2).position(|w| w == b"\r\n").unwrap();
        (text(&buf[at + 1..end]).parse::<usize>().unwrap(), end + 2)
    };
    let (count, mut at) = line(0);
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, start) = line(at);
        args.push(buf[start..start + len].to_vec());
        at = start + len + 2;
    }
    (args, at)
}

/// One node's transport (one shard) with its store client.
struct Node {
    shard: Shard,
    client: Rc<Client>,
}

impl Node {
    /// Node `name`, its store connection up or not.
    fn new(name: &str, up: bool) -> Node {
        Node::with(name, up, Config::default())
    }

    /// Node `name` with `config`.
    fn with(name: &str, up: bool, config: Config) -> Node {
        let config = Config {
            node_id: Some(NodeId::parse(name).unwrap()),
            ..config
        };
        let url: RedisUrl = "redis://127.0.0.1:6379".parse().unwrap();
        let client = Client::new(&url, 1 << 20, Duration::from_secs(60));
        if up {
            client.connected();
        }
        let shared = SharedStore::new(
            Rc::clone(&client),
            config.ring_max_events,
            Duration::from_secs(config.ring_max_age_secs),
            Duration::from_secs(config.session_idle_timeout_secs),
        );
        Node {
            shard: Shard::with_store(config, 0, 1, Some(shared)),
            client,
        }
    }

    /// Lets Redis answer everything until nothing more is asked.
    fn settle(&self, redis: &FakeRedis) {
        run_tasks();
        while redis.serve(&self.client) {
            run_tasks();
        }
    }

    /// Dies: its handlers stop and nothing more of it reaches Redis.
    fn kill(self) {
        TASKS.with(|tasks| tasks.borrow_mut().clear());
        self.client.disconnected();
    }

    /// What the store holds of session `id`, as a shard's load gets it.
    fn load(&self, redis: &FakeRedis, id: SessionId) -> StoreAnswer {
        let mut load = Box::pin(self.shard.sessions.load(id));
        loop {
            if let Poll::Ready(answer) = load.as_mut().poll(&mut Context::from_waker(Waker::noop()))
            {
                return answer;
            }
            assert!(redis.serve(&self.client), "the load waits on nothing");
        }
    }

    /// Routes a request for another node's session the way a shard does: load it from the
    /// store when told to, then route again.
    fn adopting(
        &self,
        redis: &FakeRedis,
        route: impl Fn(&Shard) -> (Next, Response),
    ) -> (Next, Response) {
        let (next, response) = route(&self.shard);
        let Next::Adopt(id) = next else {
            return (next, response);
        };
        let answer = self.load(redis, id);
        self.shard.sessions.adopt(id, answer, &self.shard.env());
        let again = route(&self.shard);
        assert!(!matches!(again.0, Next::Adopt(_)), "adopted once");
        again
    }
}

/// Where a failover test starts: the store, two nodes connected to it, and a session on the
/// first.
fn failover_pair() -> (FakeRedis, Node, Node, String) {
    let redis = FakeRedis::default();
    let a = Node::new("a", true);
    let b = Node::new("b", true);
    let session = a.shard.initialize();
    (redis, a, b, session)
}

impl Node {
    /// Resumes `session`'s stream after `last_event_id` here: the stream, and what it carries
    /// once Redis has answered.
    fn resume(
        &self,
        redis: &FakeRedis,
        session: &str,
        last_event_id: &str,
    ) -> (SseStream, Vec<SseEvent>) {
        let (next, response) =
            self.adopting(redis, |shard| shard.get(session, Some(last_event_id)));
        assert_eq!(response.status, 200, "{response:?}");
        let Next::Stream(resumed) = next else {
            panic!("expected a stream");
        };
        self.settle(redis);
        let replayed = events(&resumed, &mut ChunkedDecoder::new(1 << 20));
        (resumed, replayed)
    }
}

fn data(event: &SseEvent) -> Value {
    serde_json::from_str(&event.data).unwrap()
}

#[test]
fn events_go_out_once_the_store_has_them_and_a_dead_nodes_stream_resumes_on_another() {
    let (redis, a, b, session) = failover_pair();
    assert!(session.starts_with("a."), "{session}");
    a.settle(&redis);
    let call = a.shard.call_wait(&session, 7);
    let mut chunks = ChunkedDecoder::new(1 << 20);
    // Issue 20: an event "is written to the client only after Redis acknowledged it" — the
    // priming event too, once the store has recorded the stream's request.
    assert!(
        events(&call, &mut chunks).is_empty(),
        "nothing before the store answers"
    );
    a.settle(&redis);
    let sent = events(&call, &mut chunks);
    assert_eq!(ids(&sent), ["2-0", "2-1"]);
    assert_eq!(data(&sent[1])["method"], "notifications/progress");

    // Node a dies with the `wait` handler running; the balancer sends the resume to b.
    a.kill();
    let (resumed, replayed) = b.resume(&redis, &session, "2-1");
    // The priming event names where it resumes; then the request's answer: its handler died.
    assert_eq!(ids(&replayed), ["2-1", "2-2"]);
    let lost = data(&replayed[1]);
    assert_eq!(lost["id"], 7);
    assert_eq!(lost["error"]["code"], jsonrpc::REQUEST_LOST);
    assert_eq!(lost["error"]["data"]["retry"], true);
    assert!(
        resumed.outbound().is_ended(),
        "the stream ends with its answer"
    );
    assert_eq!(b.shard.metrics.requests_lost.get(), 1);
    assert_eq!(b.shard.metrics.adoptions.get(), 1);

    // The session lives on at b: initialized, answering, and its streams are new ones (the
    // ping took stream 3 and answered in plain JSON).
    let (_, pong) = b.shard.post(
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 8, "method": "ping"}),
    );
    assert_eq!(pong.status, 200, "{pong:?}");
    let next_call = b.shard.call_wait(&session, 9);
    b.settle(&redis);
    let mut chunks = ChunkedDecoder::new(1 << 20);
    assert_eq!(ids(&events(&next_call, &mut chunks)), ["4-0", "4-1"]);
}

#[test]
fn a_finished_stream_resumes_on_another_node_with_its_result_and_no_error() {
    let (redis, a, b, session) = failover_pair();
    let call = a.shard.call_wait(&session, 3);
    a.settle(&redis);
    RELEASED.set(true);
    a.settle(&redis);
    let mut chunks = ChunkedDecoder::new(1 << 20);
    let sent = events(&call, &mut chunks);
    assert_eq!(ids(&sent), ["2-0", "2-1", "2-2"]);
    assert!(call.outbound().is_ended());
    a.kill();
    let (resumed, replayed) = b.resume(&redis, &session, "2-1");
    assert_eq!(ids(&replayed), ["2-1", "2-2"]);
    assert_eq!(data(&replayed[1])["result"]["content"][0]["text"], "done");
    assert!(resumed.outbound().is_ended());
    assert_eq!(b.shard.metrics.requests_lost.get(), 0);
}

#[test]
fn a_stream_whose_events_all_expired_is_410_on_another_node_and_numbers_on_past_them() {
    let (redis, a, b, session) = failover_pair();
    let call = a.shard.call_wait(&session, 3);
    a.settle(&redis);
    let mut chunks = ChunkedDecoder::new(1 << 20);
    assert_eq!(ids(&events(&call, &mut chunks)), ["2-0", "2-1"]);
    // The stream's key expires whole (no event for the ring's age), its session lives on.
    let stream_key = format!("ringmcp:{{{session}}}:2").into_bytes();
    assert!(redis.keys.borrow_mut().remove(&stream_key).is_some());
    a.kill();
    // The client held event 2-1: it is gone, and b says so (it said 400, an id never sent).
    let (next, gone) = b.adopting(&redis, |shard| shard.get(&session, Some("2-1")));
    assert!(matches!(next, Next::KeepGoing), "no stream");
    assert_eq!(gone.status, 410, "{gone:?}");
    // The stream's next event (the answer saying its handler died with a) gets an id past
    // any a may have sent, never 2-1 again: so it went to the store.
    b.settle(&redis);
    let keys = redis.keys.borrow();
    let Some(Stored::Stream(stored)) = keys.get(&stream_key) else {
        panic!("nothing stored for the stream")
    };
    let seqs: Vec<u64> = stored.iter().map(|(seq, _)| *seq).collect();
    assert!(
        seqs.len() == 1 && seqs[0] > 1 << 50,
        "the stream numbers on from {seqs:?}"
    );
}

#[test]
fn a_stream_that_never_had_an_event_resumes_from_its_priming_id_on_another_node() {
    let (redis, a, b, session) = failover_pair();
    let (next, opened) = a.shard.get(&session, None);
    assert_eq!(opened.status, 200, "{opened:?}");
    let Next::Stream(standalone) = next else {
        panic!("expected a stream")
    };
    a.settle(&redis);
    let mut chunks = ChunkedDecoder::new(1 << 20);
    let primed = events(&standalone, &mut chunks);
    assert_eq!(ids(&primed), ["0-0"]);
    a.kill();
    // Nothing was ever sent on it, so nothing is missing: no 410.
    let (_, replayed) = b.resume(&redis, &session, "0-0");
    assert_eq!(ids(&replayed), ["0-0"]);
}

#[test]
fn a_response_the_handler_closes_ends_only_after_what_the_store_has_is_written() {
    let redis = FakeRedis::default();
    let a = Node::new("a", true);
    let session = a.shard.initialize();
    a.settle(&redis);
    // SEP-1699 before the store recorded the stream: the response must not end empty, or the
    // client has no event id to resume from.
    let call = a.shard.call_streaming(&session, 4, "closes");
    let mut chunks = ChunkedDecoder::new(1 << 20);
    assert!(!call.outbound().is_ended(), "held until the store answers");
    a.settle(&redis);
    let sent = events(&call, &mut chunks);
    assert_eq!(ids(&sent), ["2-0", "2-1"]);
    assert!(
        call.outbound().is_ended(),
        "then closed as the handler asked"
    );

    // The client resumes after the last id it got and receives the result there.
    let (resumed, replayed) = a.resume(&redis, &session, "2-1");
    assert_eq!(ids(&replayed), ["2-1"]);
    RELEASED.set(true);
    a.settle(&redis);
    let rest = events(&resumed, &mut ChunkedDecoder::new(1 << 20));
    assert_eq!(ids(&rest), ["2-2"]);
    assert_eq!(data(&rest[0])["result"]["content"][0]["text"], "closed");
    assert!(resumed.outbound().is_ended());
}

#[test]
fn a_session_the_store_does_not_know_is_404_and_an_unreachable_store_is_503() {
    let redis = FakeRedis::default();
    let b = Node::new("b", true);
    let stranger = SessionId::generate(NodeId::parse("a").unwrap(), 0).unwrap();
    let (_, response) = b.adopting(&redis, |shard| shard.get(stranger.as_str(), Some("2-1")));
    assert_eq!(response.status, 404, "{response:?}");

    let cut_off = Node::new("c", false);
    let (_, response) = cut_off.adopting(&redis, |shard| shard.get(stranger.as_str(), Some("2-1")));
    assert_eq!(response.status, 503, "{response:?}");
    assert!(response.header("retry-after").is_some());
    assert!(
        response.error_message().contains("event store"),
        "{response:?}"
    );
}

#[test]
fn a_session_two_requests_loaded_at_once_is_adopted_once() {
    let (redis, a, b, session) = failover_pair();
    a.settle(&redis);
    a.kill();
    // After the failover the client's GET and POST reach b together: both miss its table
    // and both load the session before either answer is back.
    let id = SessionId::parse(session.as_bytes()).unwrap();
    let answers = [b.load(&redis, id), b.load(&redis, id)];
    let mut rings = Vec::new();
    for answer in answers {
        b.shard.sessions.adopt(id, answer, &b.shard.env());
        let gauges = b.shard.sessions.gauges();
        assert_eq!(gauges.sessions, 1);
        rings.push(gauges.rings);
    }
    assert_eq!(
        rings[0], rings[1],
        "the second answer built no second session"
    );
    let (_, response) = b.shard.get(&session, None);
    assert_eq!(response.status, 200, "{response:?}");
}

#[test]
fn a_session_a_full_shard_cannot_adopt_leaves_nothing_behind_there() {
    let redis = FakeRedis::default();
    let a = Node::new("a", true);
    let full = Config {
        max_sessions_per_shard: 1,
        ..Config::default()
    };
    let b = Node::with("b", true, full);
    let session = a.shard.initialize();
    a.settle(&redis);
    // A call whose stream the store keeps: adopting the session makes a ring for it.
    let _call = a.shard.call_wait(&session, 7);
    a.settle(&redis);
    a.kill();
    b.shard.initialize();
    let before = b.shard.sessions.gauges();
    let (_, response) = b.adopting(&redis, |shard| shard.get(&session, None));
    // 503 (the shard holds its maximum), and the rings the adoption made are freed again.
    assert_eq!(response.status, 503, "{response:?}");
    let after = b.shard.sessions.gauges();
    assert_eq!(
        (after.sessions, after.rings),
        (before.sessions, before.rings)
    );
}

#[test]
fn without_the_store_events_go_out_at_once_from_the_local_ring() {
    let redis = FakeRedis::default();
    let a = Node::new("a", false);
    let session = a.shard.initialize();
    let call = a.shard.call_wait(&session, 1);
    let mut chunks = ChunkedDecoder::new(1 << 20);
    assert_eq!(ids(&events(&call, &mut chunks)), ["2-0", "2-1"]);
    assert!(!redis.serve(&a.client), "nothing was queued for Redis");
}

#[test]
fn a_deleted_session_is_gone_from_the_store_too() {
    let (redis, a, b, session) = failover_pair();
    a.settle(&redis);
    let (_, deleted) =
        a.shard
            .request("DELETE /mcp", &format!("mcp-session-id: {session}\r\n"), "");
    assert_eq!(deleted.status, 200);
    a.settle(&redis);
    assert!(redis.keys.borrow().is_empty(), "every key deleted");
    let (_, response) = b.adopting(&redis, |shard| shard.get(&session, None));
    assert_eq!(response.status, 404);
}
