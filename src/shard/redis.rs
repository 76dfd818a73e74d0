//! The shard's one connection to the Redis event store: it connects, carries the client's
//! bytes both ways, and connects again after a backoff when the connection breaks. What the
//! bytes mean, which reply answers which command and when the connection is of no use are
//! the client's decisions (`crate::store::redis`).

use super::io::{self, Deadline, Socket};
use super::Shard;
use crate::mcp::Announcement;
use crate::store::redis::{Client, RedisUrl};
use crate::store::shared::{AnnouncementReader, ANNOUNCEMENT_WAIT};
use glommio::net::TcpStream;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Bytes of commands one shard's client may hold queued or awaiting their replies; past it,
/// commands complete as unavailable (Redis is not keeping up).
pub(super) const QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long Redis may leave commands unanswered before the connection is given up as dead
/// (the event store's commands take it microseconds; see `crate::store::redis`).
pub(super) const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// The wait after the first failure; it doubles with every failure after it.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connection that was up this long was a working one: after it breaks, the backoff
/// starts over. One that breaks sooner (a server that accepts and then closes) keeps it
/// growing.
const STAYED_UP: Duration = Duration::from_secs(1);

/// Resolves the event store's host, once at start (off the shards: a lookup would block one).
pub(super) fn resolve(url: &RedisUrl) -> Result<SocketAddr, String> {
    (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("--event-store {url}: cannot resolve {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("--event-store {url}: {} resolves to no address", url.host))
}

/// Keeps this shard's client connected to `addr` until the shard stops. The task never holds
/// the shard up: the executor does not wait for it, and while the shard drains the connection
/// stays (requests finishing may still write events), it is just not made again.
pub(super) async fn keep_connected(shard: Rc<Shard>, client: Rc<Client>, addr: SocketAddr) {
    let name = match &shard.config.event_store {
        Some(url) => format!("shard {}: event store {url}", shard.index),
        None => return,
    };
    stay_connected(&client, addr, &name, || shard.stopping()).await;
}

/// Reads the announcements (resource updates, list changes) other nodes make, on a
/// connection of its own (each read waits in Redis), and hands them to every shard here.
pub(super) async fn relay_announcements(shard: Rc<Shard>, addr: SocketAddr) {
    let Some(url) = shard.config.event_store.clone() else {
        return;
    };
    // Each read waits in Redis for up to ANNOUNCEMENT_WAIT by itself.
    let client = Client::new(&url, QUEUE_BYTES, REPLY_TIMEOUT + ANNOUNCEMENT_WAIT);
    let name = format!("shard {}: announcements from {url}", shard.index);
    let connection = {
        let (client, shard, name) = (Rc::clone(&client), Rc::clone(&shard), name.clone());
        async move { stay_connected(&client, addr, &name, || shard.stopping()).await }
    };
    glommio::spawn_local(connection).detach();
    let mut reader = AnnouncementReader::new(shard.config.node());
    while !shard.stopping() {
        let reply = match client.call(&reader.next_read()).await {
            Ok(reply) => reply,
            Err(_) => {
                // Down: the connection task is at it; look again shortly.
                glommio::timer::sleep(FIRST_BACKOFF).await;
                continue;
            }
        };
        for json in reader.read(reply) {
            match serde_json::from_slice::<Announcement>(&json) {
                Ok(announcement) => {
                    shard.dispatcher.announce_on_this_shard(&announcement);
                    super::relay_to_other_shards(&shard.mesh, &announcement);
                }
                Err(e) => log::warn!("{name}: an announcement that does not parse: {e}"),
            }
        }
    }
}

/// The loop of [`keep_connected`]: connect, carry, back off, until `stopping`.
async fn stay_connected(
    client: &Client,
    addr: SocketAddr,
    name: &str,
    stopping: impl Fn() -> bool,
) {
    let mut backoff = FIRST_BACKOFF;
    // Whether the log was told of an outage that has not ended: one warning per outage.
    let mut down = false;
    let mut ever_up = false;
    while !stopping() {
        let why = match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).await {
            Err(e) => format!("connect: {e}"),
            Ok(tcp) => {
                // Commands are small and pipelined: send each batch at once.
                let _ = tcp.set_nodelay(true);
                let mut socket = Socket::new(tcp, None);
                client.connected();
                let mut up_since = None;
                let why = carry(client, &mut socket, || {
                    up_since = Some(Instant::now());
                    if down {
                        log::info!("{name} is back: failover is on");
                    } else if !ever_up {
                        log::info!("{name} connected");
                    }
                    down = false;
                    ever_up = true;
                })
                .await;
                client.disconnected();
                if up_since.is_some_and(|at| at.elapsed() >= STAYED_UP) {
                    backoff = FIRST_BACKOFF;
                }
                why
            }
        };
        if !down {
            log::warn!("{name} unreachable: failover is off until it is back ({why})");
            down = true;
        } else {
            log::debug!("{name} still unreachable ({why})");
        }
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Writes what the client queues and hands it what Redis sends, until the connection ends or
/// the client finds Redis too slow to answer; returns why it ended. `came_up` runs once, when
/// the client is first up on it.
async fn carry(client: &Client, socket: &mut Socket, mut came_up: impl FnMut()) -> String {
    let mut out = Vec::new();
    let mut inbuf = Vec::new();
    let mut announced = false;
    // Armed while commands await replies, for when Redis is due to have answered one.
    let mut reply_due: Option<Deadline> = None;
    std::future::poll_fn(|cx| loop {
        if !announced && client.is_up() {
            announced = true;
            came_up();
        }
        if out.is_empty() && client.poll_output(cx).is_ready() {
            client.take_output(&mut out);
        }
        if !out.is_empty() {
            match socket.poll_flush(cx, &mut out) {
                // All written: completions may have queued more meanwhile.
                Poll::Ready(Ok(_)) if out.is_empty() => continue,
                // The socket is full and wakes the task once it takes more.
                Poll::Ready(Ok(_)) | Poll::Pending => {}
                Poll::Ready(Err(e)) => return Poll::Ready(format!("write: {e}")),
            }
        }
        match socket.poll_read_into(cx, &mut inbuf) {
            Poll::Ready(Ok(0)) => return Poll::Ready("the connection was closed".into()),
            Poll::Ready(Ok(_)) => {
                if let Err(e) = client.received(&mut inbuf) {
                    return Poll::Ready(e.to_string());
                }
                // One burst of large replies does not pin its buffer.
                io::release_if_large(&mut inbuf);
            }
            Poll::Ready(Err(e)) => return Poll::Ready(format!("read: {e}")),
            Poll::Pending => {
                let Some(due) = client.reply_due() else {
                    reply_due = None;
                    return Poll::Pending;
                };
                let timer = reply_due.get_or_insert_with(|| Deadline::at(due));
                timer.reset(due);
                // Fired once `due` passed (a full wheel's deadline always has: then this
                // only checks, and the socket's wake-ups bring the next check).
                if timer.poll_expired(cx).is_ready() {
                    if let Err(e) = client.check_reply_wait(Instant::now()) {
                        return Poll::Ready(e.to_string());
                    }
                }
                return Poll::Pending;
            }
        }
    })
    .await
}

// The redis-server the integration tests start too.
#[cfg(test)]
#[path = "../../tests/common/redis_server.rs"]
mod redis_server;

#[cfg(test)]
mod tests {
    //! Against a real redis-server: `cargo test --lib shard::redis -- --ignored`.

    use super::*;
    use crate::store::redis::{Reply, Unavailable};
    use std::cell::{Cell, RefCell};
    use std::future::Future;

    use super::redis_server::RedisServer;

    /// `rest`: `[credentials@]|/db`, as a URL to `server`.
    fn url(server: &RedisServer, rest: &str) -> RedisUrl {
        let (credentials, db) = rest.split_once('|').unwrap_or(("", rest));
        format!("redis://{credentials}127.0.0.1:{}{db}", server.port)
            .parse()
            .unwrap()
    }

    fn on_executor<F: Future<Output = ()> + 'static>(test: impl FnOnce() -> F + Send + 'static) {
        glommio::LocalExecutorBuilder::default()
            .spawn(test)
            .expect("an executor")
            .join()
            .expect("the test ran");
    }

    /// A client for `url` kept connected by the shard's loop, once it is up.
    async fn connected(url: &RedisUrl) -> Rc<Client> {
        let client = Client::new(url, QUEUE_BYTES, REPLY_TIMEOUT);
        let addr = resolve(url).unwrap();
        let kept = Rc::clone(&client);
        glommio::spawn_local(async move {
            stay_connected(&kept, addr, "test", || false).await;
        })
        .detach();
        let took = until(Duration::from_secs(5), || client.is_up()).await;
        assert!(took.is_some(), "{url} did not come up");
        client
    }

    /// How long it took until `done`, or `None` past `limit`.
    async fn until(limit: Duration, done: impl Fn() -> bool) -> Option<Duration> {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > limit {
                return None;
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        Some(start.elapsed())
    }

    fn status(text: &str) -> Reply {
        Reply::Status(text.into())
    }

    fn bulk(bytes: &[u8]) -> Reply {
        Reply::Bulk(Some(bytes.to_vec()))
    }

    #[test]
    #[ignore = "needs redis-server: scripts/cluster.sh runs them"]
    fn commands_round_trip_and_pipeline_in_order() {
        let server = RedisServer::on_a_free_port(&[]);
        let url = url(&server, "");
        on_executor(move || async move {
            let _server = server;
            let client = connected(&url).await;
            assert_eq!(client.call(&[b"PING"]).await, Ok(status("PONG")));
            assert_eq!(
                client.call(&[b"SET", b"k", b"v\r\n"]).await,
                Ok(status("OK"))
            );
            assert_eq!(client.call(&[b"GET", b"k"]).await, Ok(bulk(b"v\r\n")));
            assert_eq!(
                client.call(&[b"GET", b"missing"]).await,
                Ok(Reply::Bulk(None))
            );
            let wrong = client.call(&[b"INCR", b"k"]).await;
            assert!(matches!(wrong, Ok(Reply::Error(e)) if e.starts_with("ERR")));
            // Nested arrays: XRANGE's entries of [id, [field, value, ...]].
            let id = client.call(&[b"XADD", b"s", b"*", b"f", b"x"]).await;
            let Ok(Reply::Bulk(Some(id))) = id else {
                panic!("XADD gave {id:?}");
            };
            assert_eq!(
                client.call(&[b"XRANGE", b"s", b"-", b"+"]).await,
                Ok(Reply::Array(Some(vec![Reply::Array(Some(vec![
                    Reply::Bulk(Some(id)),
                    Reply::Array(Some(vec![bulk(b"f"), bulk(b"x")])),
                ]))])))
            );

            // 10,000 commands on the wire at once, answered in order.
            let seen = Rc::new(RefCell::new(Vec::new()));
            for _ in 0..10_000 {
                let seen = Rc::clone(&seen);
                client.command(
                    &[b"INCR", b"counter"],
                    Box::new(move |reply| seen.borrow_mut().push(reply)),
                );
            }
            let all = until(Duration::from_secs(20), || seen.borrow().len() == 10_000).await;
            assert!(all.is_some(), "{} of 10,000 answered", seen.borrow().len());
            let expected: Vec<_> = (1..=10_000).map(|n| Ok(Reply::Integer(n))).collect();
            assert!(*seen.borrow() == expected, "out of order or failed");
            let stats = client.stats();
            assert_eq!((stats.unavailable, stats.reconnects), (0, 0));
        });
    }

    #[test]
    #[ignore = "needs redis-server: scripts/cluster.sh runs them"]
    fn a_redis_that_answers_nothing_is_given_up_after_the_reply_timeout() {
        let server = RedisServer::on_a_free_port(&[]);
        let url = url(&server, "");
        on_executor(move || async move {
            let client = connected(&url).await;
            server.pause();
            let began = Instant::now();
            // Without the timeout this waited for as long as the TCP connection stood.
            let call = client.call(&[b"PING"]);
            let patience = REPLY_TIMEOUT * 4;
            let outcome = futures_lite::future::or(async { Some(call.await) }, async {
                glommio::timer::sleep(patience).await;
                None
            })
            .await;
            assert_eq!(
                outcome,
                Some(Err(Unavailable)),
                "not given up within {patience:?}"
            );
            let waited = began.elapsed();
            assert!(waited >= REPLY_TIMEOUT, "gave up after {waited:?}");
            assert!(client.stats().reply_timeouts >= 1, "{:?}", client.stats());
            server.resume();
            // A connection made while it was stopped gets its answers now, or the next one.
            let answered = until(Duration::from_secs(20), || client.is_up()).await;
            assert!(answered.is_some(), "never up again");
            let mut pong = client.call(&[b"PING"]).await;
            for _ in 0..10 {
                if pong.is_ok() {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(200)).await;
                pong = client.call(&[b"PING"]).await;
            }
            assert_eq!(pong, Ok(status("PONG")));
        });
    }

    #[test]
    #[ignore = "needs redis-server: scripts/cluster.sh runs them"]
    fn select_reaches_another_database() {
        let server = RedisServer::on_a_free_port(&[]);
        let (db0, db3) = (url(&server, ""), url(&server, "/3"));
        on_executor(move || async move {
            let _server = server;
            let db0 = connected(&db0).await;
            let db3 = connected(&db3).await;
            assert_eq!(db3.call(&[b"SET", b"only3", b"x"]).await, Ok(status("OK")));
            assert_eq!(db3.call(&[b"GET", b"only3"]).await, Ok(bulk(b"x")));
            assert_eq!(db0.call(&[b"GET", b"only3"]).await, Ok(Reply::Bulk(None)));
            assert_eq!(
                db0.call(&[b"EXISTS", b"only3"]).await,
                Ok(Reply::Integer(0))
            );
        });
    }

    #[test]
    #[ignore = "needs redis-server: scripts/cluster.sh runs them"]
    fn a_password_is_sent_and_a_wrong_one_keeps_the_store_down() {
        let server = RedisServer::on_a_free_port(&["--requirepass", "s3cret"]);
        let (right, wrong) = (url(&server, ":s3cret@|/2"), url(&server, ":nope@|"));
        on_executor(move || async move {
            let _server = server;
            let client = connected(&right).await;
            assert_eq!(client.call(&[b"PING"]).await, Ok(status("PONG")));
            let refused = Client::new(&wrong, QUEUE_BYTES, REPLY_TIMEOUT);
            let addr = resolve(&wrong).unwrap();
            let kept = Rc::clone(&refused);
            glommio::spawn_local(async move {
                stay_connected(&kept, addr, "test", || false).await;
            })
            .detach();
            // Refused at every attempt, backing off in between: never up, and not spinning.
            glommio::timer::sleep(Duration::from_millis(800)).await;
            assert!(!refused.is_up());
            let attempts = refused.stats().reconnects + 1;
            assert!((2..=5).contains(&attempts), "{attempts} attempts in 800 ms");
            assert_eq!(refused.call(&[b"PING"]).await, Err(Unavailable));
        });
    }

    #[test]
    #[ignore = "needs redis-server: scripts/cluster.sh runs them"]
    fn a_dead_redis_fails_commands_and_a_restarted_one_is_found_again() {
        let server = RedisServer::on_a_free_port(&[]);
        let url = url(&server, "");
        on_executor(move || async move {
            let mut server = server;
            let client = connected(&url).await;
            // In flight when Redis dies: a command Redis holds, and those queued behind it.
            let outcomes = Rc::new(RefCell::new(Vec::new()));
            for args in [
                &[&b"BLPOP"[..], b"nothing", b"0"][..],
                &[b"PING"],
                &[b"PING"],
            ] {
                let outcomes = Rc::clone(&outcomes);
                client.command(args, Box::new(move |r| outcomes.borrow_mut().push(r)));
            }
            glommio::timer::sleep(Duration::from_millis(50)).await;
            assert!(outcomes.borrow().is_empty(), "BLPOP holds the others");
            server.kill();
            let noticed = until(Duration::from_secs(2), || !client.is_up()).await;
            assert!(noticed.is_some(), "still up 2 s after Redis died");
            assert_eq!(*outcomes.borrow(), vec![Err(Unavailable); 3]);
            // While it is down, commands fail at once.
            let refused = Rc::new(Cell::new(false));
            let seen = Rc::clone(&refused);
            client.command(
                &[b"PING"],
                Box::new(move |r| seen.set(r == Err(Unavailable))),
            );
            assert!(refused.get());

            let server = RedisServer::start(server.port, &[]);
            let back = until(Duration::from_secs(10), || client.is_up()).await;
            assert!(back.is_some(), "not back 10 s after Redis restarted");
            assert_eq!(client.call(&[b"PING"]).await, Ok(status("PONG")));
            let stats = client.stats();
            assert!(stats.reconnects >= 1, "{stats:?}");
            assert_eq!(stats.unavailable, 4, "{stats:?}");
            drop(server);
        });
    }

    #[test]
    fn the_event_store_host_resolves_at_start() {
        let url: RedisUrl = "redis://127.0.0.1:6390/1".parse().unwrap();
        assert_eq!(resolve(&url), Ok("127.0.0.1:6390".parse().unwrap()));
        let url: RedisUrl = "redis://[::1]".parse().unwrap();
        assert_eq!(resolve(&url), Ok("[::1]:6379".parse().unwrap()));
        let url: RedisUrl = "redis://:pw@no-such-host.invalid".parse().unwrap();
        let error = resolve(&url).unwrap_err();
        assert!(error.starts_with("--event-store redis://:***@no-such-host.invalid:6379/0: cannot resolve no-such-host.invalid"), "{error}");
    }
}
