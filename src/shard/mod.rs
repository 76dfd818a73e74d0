//! The shard runtime: one glommio executor pinned per core, each with its own
//! `SO_REUSEPORT` listener, connection tables, metrics and MCP dispatcher.
//! This is the only module that touches sockets and timers.

mod auth;
mod conn;
mod drive;
mod fetch;
mod http;
pub mod io;
mod redis;
mod wheel;
mod ws;

use crate::config::Config;
use crate::mcp::request_state::{StateError, StateSeal, StateUse};
use crate::mcp::{Announcement, CatalogueUpdate, Dispatcher, Registry};
use crate::metrics::{ErrorKind, Limit, Metrics, Transport};
use crate::metrics::{Gauges, Snapshot};
use crate::proto::http1;
use crate::proto::origin::OriginPolicy;
use crate::store::redis::Client as RedisClient;
use crate::store::sessions::NodeId;
use crate::store::shared::SharedStore;
use crate::transport::admission::Admission;
use crate::transport::auth::Authorizer;
use crate::transport::streamable::HttpSessions;
use crate::transport::tls::{self, TlsSession};
use crate::transport::{Env, TransportError};
use auth::AuthPlan;
use futures_lite::future::BoxedLocal;
use glommio::channels::channel_mesh::{MeshBuilder, Receivers, Senders};
use glommio::channels::shared_channel;
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use io::Socket;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub enum ServerError {
    /// io_uring could not be set up on this kernel or in this sandbox.
    IoUringUnavailable(std::io::Error),
    /// The listen address could not be bound.
    Bind(SocketAddr, std::io::Error),
    /// The executor pool failed.
    Runtime(String),
    /// The configuration cannot be served (for example an unreadable key file).
    Config(String),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::IoUringUnavailable(e) => write!(
                f,
                "ringmcp needs io_uring, and this system refused to set it up ({e}). \
                 The kernel here is {}. io_uring needs Linux 5.8 or later; on a newer kernel the \
                 likely cause is a container seccomp profile that blocks the io_uring_setup syscall \
                 (Docker's default one does: run with a profile that allows io_uring), or \
                 /proc/sys/kernel/io_uring_disabled set to 1 or 2 (set it to 0), or a locked-memory \
                 limit too small for the rings (raise `ulimit -l`).",
                kernel_release()
            ),
            ServerError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            ServerError::Runtime(e) => write!(f, "shard runtime failed: {e}"),
            ServerError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServerError {}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Asks the kernel for a one-entry io_uring and closes it again, so that a
/// missing io_uring is reported in words instead of a runtime backtrace.
fn probe_io_uring() -> Result<(), ServerError> {
    // Layout of struct io_uring_params (include/uapi/linux/io_uring.h): 120 bytes, zeroed.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes exactly one io_uring_params struct, which the
    // zeroed 120-byte buffer provides; the returned fd, if any, is ours to close.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(ServerError::IoUringUnavailable(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd is a descriptor we own and no longer use.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// A running server: its address, and the way to stop it.
///
/// ```no_run
/// use ringmcp::{Registry, Server, ServerError};
///
/// fn main() -> Result<(), ServerError> {
///     let server = Server::new(Registry::builder().build()).bind(([127, 0, 0, 1], 0)).start()?;
///     println!("listening on {}", server.local_addr());
///     let stopper = server.stopper(); // Send + Clone: stop it from any thread
///     std::thread::spawn(move || {
///         std::thread::sleep(std::time::Duration::from_secs(60));
///         stopper.stop(); // as SIGTERM: in-flight work gets the shutdown grace
///     });
///     server.join()
/// }
/// ```
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: Vec<mpsc::Sender<()>>,
    tls: TlsReloader,
    threads: Option<glommio::PoolThreadHandles<Result<(), String>>>,
}

impl ServerHandle {
    /// The address the shards listen on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that can ask the shards to drain and stop, from any thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: self.stop.clone(),
        }
    }

    /// A handle that reloads the TLS certificate and key from their files, from any thread.
    pub fn tls_reloader(&self) -> TlsReloader {
        self.tls.clone()
    }

    /// Asks every shard to drain and stop (see [`Stopper::stop`]).
    pub fn shutdown(&self) {
        self.stopper().stop();
    }

    /// Waits for every shard to finish.
    pub fn join(mut self) -> Result<(), ServerError> {
        let Some(threads) = self.threads.take() else {
            return Ok(());
        };
        for result in threads.join_all() {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(ServerError::Runtime(e)),
                Err(e) => return Err(ServerError::Runtime(e.to_string())),
            }
        }
        Ok(())
    }
}

/// Sends the stop request to every shard; cheap to clone, usable from a signal thread.
#[derive(Clone)]
pub struct Stopper {
    stop: Vec<mpsc::Sender<()>>,
}

impl Stopper {
    /// Stop accepting, close WebSockets with 1001, let in-flight requests finish within the grace period.
    pub fn stop(&self) {
        for tx in &self.stop {
            let _ = tx.send(());
        }
    }
}

/// Reloads `--tls-cert` and `--tls-key` into every shard; cheap to clone, usable from a
/// signal thread.
#[derive(Clone)]
pub struct TlsReloader {
    config: Arc<Config>,
    shards: Vec<mpsc::Sender<Arc<rustls::ServerConfig>>>,
}

impl TlsReloader {
    /// Reads the certificate and key again and hands them to every shard for its next
    /// connections; connections already open keep theirs, none is dropped. On an error (an
    /// unreadable file, a key that does not match the certificate) nothing changes. Returns
    /// whether TLS is configured at all.
    pub fn reload(&self) -> Result<bool, ServerError> {
        let Some(tls) = self
            .config
            .tls_server_config()
            .map_err(ServerError::Config)?
        else {
            return Ok(false);
        };
        for shard in &self.shards {
            let _ = shard.send(Arc::clone(&tls));
        }
        Ok(true)
    }
}

/// CPUs this process may run on (what `taskset` or a cgroup allows), ascending.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the set's capacity.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// One executor pinned per CPU this process may use (glommio's own placement looks at the
/// machine, not at the process affinity, so `taskset -c 0 ringmcp` would otherwise still
/// land on any core); more shards than allowed CPUs share them.
pub fn placement(shards: usize) -> Result<PoolPlacement, String> {
    let allowed = allowed_cpus();
    let cpus = glommio::CpuSet::online()
        .map_err(|e| format!("cannot read the CPU topology: {e}"))?
        .filter(|l| allowed.is_empty() || allowed.contains(&l.cpu));
    Ok(if shards <= allowed.len() {
        PoolPlacement::MaxSpread(shards, Some(cpus))
    } else {
        PoolPlacement::Fenced(shards, cpus)
    })
}

/// The executor pool for `shards` network shards, tuned for many sockets: pinned within the
/// process affinity (see [`placement`]) with deep rings and a short spin before parking.
/// The load generator builds its shards here too, so both sides of a benchmark run alike.
pub fn pool(name: &str, shards: usize) -> Result<LocalExecutorPoolBuilder, String> {
    Ok(LocalExecutorPoolBuilder::new(placement(shards)?)
        .name(name)
        // The kernel sizes io_uring's poll-cancel hash from the ring depth (at most 256 buckets,
        // from 4096 CQ entries); glommio's default of 128 gives 8 buckets for ~15,000 pending
        // polls. Our patched glommio no longer cancels timers through that hash
        // (vendor/glommio/PATCHES.md), but a socket read that is dropped still does.
        .ring_depth(RING_DEPTH)
        // Under load, spinning briefly before parking avoids a park/unpark (a membarrier and a
        // blocking io_uring_enter) per batch; an idle shard still parks. At 30k calls/s over
        // 15K WebSockets, p99 was 4.5 ms with 50 µs of spin and 181 ms with none.
        .spin_before_park(Duration::from_micros(SPIN_BEFORE_PARK_US)))
}

thread_local! {
    static BUSY_TIME: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// The time this thread's executor has spent running tasks and polling I/O since it started,
/// not counting the spin before parking. glommio's `executor_stats()` hands over the time since
/// its previous call (it takes the stats), so every reader must go through here.
pub fn busy_time() -> Duration {
    BUSY_TIME.with(|total| {
        let busy = total.get() + glommio::executor().executor_stats().total_runtime();
        total.set(busy);
        busy
    })
}

/// Starts one shard per configured core and returns once all of them listen; embedders reach
/// it through [`Server::start`](crate::Server::start).
pub(crate) fn start(config: Config, registry: Arc<Registry>) -> Result<ServerHandle, ServerError> {
    probe_io_uring()?;
    // One seal for every shard: a state sealed on one opens on all.
    let seal = Arc::new(config.state_seal().map_err(ServerError::Config)?);
    let shards = config.shard_count();
    // Hold the address while the shards bind, so port 0 resolves to one port for all of them.
    let reservation = reserve(config.bind)?;
    let local_addr = reservation
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| ServerError::Runtime("no local address".into()))?;
    let mut stop = Vec::with_capacity(shards);
    let mut stop_rx = Vec::with_capacity(shards);
    for _ in 0..shards {
        let (tx, rx) = mpsc::channel();
        stop.push(tx);
        stop_rx.push(rx);
    }
    let stop_rx = Arc::new(std::sync::Mutex::new(stop_rx));
    // The certificate reaches each shard the way a reload's does, before its first accept.
    let tls_config = config.tls_server_config().map_err(ServerError::Config)?;
    let (tls, tls_rx): (Vec<_>, Vec<_>) = (0..shards).map(|_| mpsc::channel()).unzip();
    if let Some(tls_config) = &tls_config {
        for tx in &tls {
            let _ = tx.send(Arc::clone(tls_config));
        }
    }
    let tls_rx = Arc::new(std::sync::Mutex::new(tls_rx));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let auth_plan = match config
        .auth_settings(local_addr)
        .map_err(ServerError::Config)?
    {
        Some(settings) => Some(Arc::new(
            AuthPlan::new(settings).map_err(ServerError::Config)?,
        )),
        None => None,
    };
    let event_store = match &config.event_store {
        Some(url) => Some(redis::resolve(url).map_err(ServerError::Config)?),
        None => None,
    };
    let config = Arc::new(config);
    let reloader = TlsReloader {
        config: Arc::clone(&config),
        shards: tls,
    };
    let mesh = MeshBuilder::<MeshMessage, _>::full(shards, MESH_CHANNEL_CAPACITY);
    let threads = pool("ringmcp-shard", shards)
        .map_err(ServerError::Runtime)?
        .on_all_shards(move || async move {
            let stop = stop_rx.lock().ok().and_then(|mut v| v.pop());
            let tls_updates = tls_rx.lock().ok().and_then(|mut v| v.pop());
            let listener = match TcpListener::bind(local_addr) {
                Ok(l) => {
                    let _ = ready_tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return Err(e.to_string());
                }
            };
            let (Some(stop), Some(tls_updates)) = (stop, tls_updates) else {
                return Err("more shards than stop channels".into());
            };
            let (senders, receivers) = mesh
                .join()
                .await
                .map_err(|e| format!("shard mesh failed to form: {e}"))?;
            let shard = Rc::new(Shard::new(
                &config,
                &registry,
                &seal,
                local_addr,
                senders,
                tls_updates,
                auth_plan.clone(),
            ));
            let multishot = io::choose_receive(config.readiness_recv);
            log::info!(
                "shard {}: receiving with {}",
                shard.index,
                if multishot {
                    "multishot receives into provided buffers"
                } else {
                    "readiness polls and recv"
                }
            );
            glommio::spawn_local(drive::drive(Rc::clone(&shard))).detach();
            glommio::spawn_local(receive_handoffs(Rc::clone(&shard), receivers)).detach();
            glommio::spawn_local(expire_sessions(Rc::clone(&shard))).detach();
            if let Some(plan) = &auth_plan {
                glommio::spawn_local(auth::keep_keys_fresh(Rc::clone(&shard), Arc::clone(plan)))
                    .detach();
            }
            if let (Some(client), Some(addr)) = (&shard.redis, event_store) {
                let connection = redis::keep_connected(Rc::clone(&shard), Rc::clone(client), addr);
                glommio::spawn_local(connection).detach();
                if shard.index == ANNOUNCEMENT_READER {
                    glommio::spawn_local(redis::relay_announcements(Rc::clone(&shard), addr))
                        .detach();
                }
            }
            serve(shard, listener, stop).await;
            Ok(())
        })
        .map_err(|e| classify_start_error(e.to_string()))?;
    let mut handle = ServerHandle {
        local_addr,
        stop,
        tls: reloader,
        threads: Some(threads),
    };
    for _ in 0..shards {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                handle.shutdown();
                drop(handle.threads.take());
                return Err(ServerError::Bind(local_addr, std::io::Error::other(e)));
            }
            Err(_) => {
                let err = handle.join().err();
                return Err(err.unwrap_or_else(|| {
                    ServerError::Runtime("a shard exited during start-up".into())
                }));
            }
        }
    }
    drop(reservation);
    Ok(handle)
}

fn classify_start_error(text: String) -> ServerError {
    if text.contains("io_uring") || text.contains("ring") {
        ServerError::IoUringUnavailable(std::io::Error::other(text))
    } else {
        ServerError::Runtime(text)
    }
}

/// Binds (without listening) a socket with `SO_REUSEPORT` on `addr`.
fn reserve(addr: SocketAddr) -> Result<socket2::Socket, ServerError> {
    use socket2::{Domain, Socket, Type};
    let bind_err = |e| ServerError::Bind(addr, e);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(bind_err)?;
    socket.set_reuse_port(true).map_err(bind_err)?;
    socket.set_reuse_address(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    Ok(socket)
}

/// Messages shards send each other.
pub(crate) enum MeshMessage {
    /// A connection whose request names a session this shard owns.
    Handoff(Handoff),
    /// A metrics scrape: send this shard's snapshot back on the channel.
    Scrape(shared_channel::SharedSender<Snapshot>),
    /// A resource changed or a list changed: tell this shard's subscribers and listeners.
    Announce(Announcement),
    /// A catalogue change for the writer shard, or a new catalogue from it.
    Catalogue(CatalogueUpdate),
    /// A request state this shard sealed is being used: record it, answer on the channel.
    AcceptState(
        StateUse,
        shared_channel::SharedSender<Result<(), StateError>>,
    ),
}

/// A connection moved to the shard that owns its session, with the request
/// that named the session and whatever the client sent after it.
pub(crate) struct Handoff {
    pub fd: OwnedFd,
    pub tls: Option<Box<TlsSession>>,
    pub head: http1::RequestHead,
    pub body: Vec<u8>,
    pub inbuf: Vec<u8>,
}

/// io_uring submission queue depth per ring (see `start`).
const RING_DEPTH: usize = 4096;

/// How long an out-of-work shard spins before parking, in microseconds.
const SPIN_BEFORE_PARK_US: u64 = 50;

/// Messages in flight per pair of shards before senders wait.
const MESH_CHANNEL_CAPACITY: usize = 1024;

/// Per-shard state shared by this shard's connection tasks (never across cores).
pub(crate) struct Shard {
    /// This shard's position among all shards (the prefix of its session ids).
    pub index: usize,
    pub shard_count: usize,
    pub config: Arc<Config>,
    pub limits: http1::Limits,
    pub policy: OriginPolicy,
    pub dispatcher: Dispatcher,
    pub metrics: Rc<Metrics>,
    http_sessions: HttpSessions,
    /// Per-client connection counts and rates (see [`ConnGuard::admit`]).
    admission: RefCell<Admission>,
    mesh: Rc<Senders<MeshMessage>>,
    /// Bytes of partly received input held by all connections (see [`ConnGuard::hold_inbound`]).
    inbound_held: Cell<usize>,
    /// When the shard began to drain for shutdown, once it has.
    stopped_at: Cell<Option<Instant>>,
    /// This shard's TLS configuration (its own session cache), `None` for plain TCP.
    tls: RefCell<Option<Arc<rustls::ServerConfig>>>,
    /// Certificates a reload sent, taken up at the next accept.
    tls_updates: mpsc::Receiver<Arc<rustls::ServerConfig>>,
    /// This shard's authorization, when it is on, and the endpoints it fetches from.
    auth: Option<Authorizer>,
    auth_plan: Option<Arc<AuthPlan>>,
    /// This shard's connection to the Redis event store, when `--event-store` is set.
    pub redis: Option<Rc<RedisClient>>,
    /// The connections past their HTTP head, driven by the shard's drive task.
    drivers: drive::Drivers,
}

impl Shard {
    fn new(
        config: &Arc<Config>,
        registry: &Arc<Registry>,
        seal: &Arc<StateSeal>,
        addr: SocketAddr,
        mesh: Senders<MeshMessage>,
        tls_updates: mpsc::Receiver<Arc<rustls::ServerConfig>>,
        auth_plan: Option<Arc<AuthPlan>>,
    ) -> Self {
        let index = mesh.peer_id();
        let mesh = Rc::new(mesh);
        let metrics = Rc::new(Metrics::default());
        let limit_hits = Rc::clone(&metrics);
        let redis = (config.event_store.as_ref())
            .map(|url| RedisClient::new(url, redis::QUEUE_BYTES, redis::REPLY_TIMEOUT));
        let shared = redis.as_ref().map(|client| {
            SharedStore::new(
                Rc::clone(client),
                config.ring_max_events,
                Duration::from_secs(config.ring_max_age_secs),
                config.session_idle_timeout(),
            )
        });
        let dispatcher = Dispatcher::new(Arc::clone(registry))
            .with_sleep(|d| Box::pin(glommio::timer::sleep(d)))
            .with_broadcast(broadcast_announcements(
                Rc::clone(&mesh),
                shared.clone().map(|store| (store, config.node())),
            ))
            .with_catalogue_sync(index == CATALOGUE_WRITER, sync_catalogue(Rc::clone(&mesh)))
            .with_request_states(
                Arc::clone(seal),
                index,
                mesh.nr_consumers(),
                accept_states_elsewhere(Rc::clone(&mesh)),
            )
            .with_limits(config.dispatch_limits(), move |hit| limit_hits.limit(hit));
        let dispatcher = match &shared {
            Some(store) => {
                let store = Rc::clone(store);
                dispatcher.with_shared_state_ledger(move |state_use| {
                    let accepted = store.accept_state(state_use.nonce, state_use.expires_ms);
                    Box::pin(async move {
                        match accepted.await {
                            Ok(true) => Ok(()),
                            Ok(false) => Err(StateError::Replayed),
                            Err(_) => Err(StateError::LedgerUnreachable),
                        }
                    })
                })
            }
            None => dispatcher,
        };
        Shard {
            index,
            shard_count: mesh.nr_consumers(),
            http_sessions: HttpSessions::new(index, mesh.nr_consumers(), config, shared),
            admission: RefCell::new(Admission::new(config.admission_limits(), Instant::now())),
            mesh: Rc::clone(&mesh),
            config: Arc::clone(config),
            limits: config.http_limits(),
            policy: OriginPolicy::new(
                &config.allowed_origins,
                &config.allowed_hosts,
                addr.ip().is_loopback(),
            ),
            dispatcher,
            metrics,
            inbound_held: Cell::new(0),
            stopped_at: Cell::new(None),
            tls: RefCell::new(None),
            tls_updates,
            auth: auth_plan.as_ref().map(|plan| plan.authorizer()),
            auth_plan,
            redis,
            drivers: drive::Drivers::new(),
        }
    }

    /// Whether the shard is draining for shutdown.
    pub fn stopping(&self) -> bool {
        self.stopped_at.get().is_some()
    }

    /// The socket for a connection just accepted: TLS (with the newest certificate a reload
    /// sent) when the server has one.
    fn socket(&self, tcp: TcpStream) -> Option<Socket> {
        while let Ok(config) = self.tls_updates.try_recv() {
            *self.tls.borrow_mut() = Some(tls::for_shard(&config));
        }
        let Some(config) = self.tls.borrow().clone() else {
            return Some(Socket::new(tcp, None));
        };
        match TlsSession::new(config) {
            Ok(session) => Some(Socket::new(tcp, Some(session))),
            Err(e) => {
                log::warn!("shard {}: cannot start a TLS session: {e}", self.index);
                self.metrics.error(ErrorKind::Tls);
                None
            }
        }
    }

    /// Number of open connections on this shard: the metrics' count of those open by
    /// transport, which every connection's guard keeps.
    pub fn connection_count(&self) -> usize {
        let open: u64 = self.metrics.open.iter().map(Cell::get).sum();
        open as usize
    }

    /// Moves a connection to the shard that owns the session its request named.
    pub async fn hand_off(&self, owner: usize, stream: Socket, handoff: HandoffParts) {
        use std::os::fd::AsRawFd;
        // The TLS session (keys, sequence numbers, a part of a record) goes along, and so do
        // the bytes this shard's receive took from the socket after the request.
        let Ok((tcp, tls, unread)) = stream.into_parts().await else {
            self.metrics.error(ErrorKind::Tls);
            return;
        };
        // SAFETY: dup returns a new descriptor for the same socket, owned by nobody else; the
        // original closes when `tcp` drops, the socket lives on through the duplicate.
        let fd = unsafe { libc::dup(tcp.as_raw_fd()) };
        drop(tcp);
        if fd < 0 {
            self.metrics.error(ErrorKind::Io);
            return;
        }
        // SAFETY: fd is a fresh descriptor from dup, owned by this OwnedFd from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let (head, body, mut inbuf) = handoff;
        inbuf.extend_from_slice(&unread);
        let message = MeshMessage::Handoff(Handoff {
            fd,
            tls,
            head,
            body,
            inbuf,
        });
        if self.mesh.send_to(owner, message).await.is_err() {
            self.metrics.error(ErrorKind::Io);
        }
        self.metrics.handoff();
    }

    /// This shard's metrics now.
    pub fn snapshot(&self) -> Snapshot {
        let gauges = Gauges {
            recv_multishot: io::receives_multishot() as u64,
            recv_buffer_shortages: glommio::net::recv_buffer_shortages(),
            ..self.http_sessions.gauges()
        };
        let event_store = self.redis.as_ref().map(|client| client.stats());
        (self.metrics.snapshot(self.index, gauges, busy_time())).with_event_store(event_store)
    }

    /// Every shard's metrics, gathered by message passing; a shard that does not answer within
    /// a second is left out rather than holding the scrape.
    pub async fn scrape(&self) -> Vec<Snapshot> {
        let mut snapshots = vec![self.snapshot()];
        for peer in (0..self.shard_count).filter(|&p| p != self.index) {
            let (tx, rx) = shared_channel::new_bounded(1);
            let asked = glommio::timer::timeout(Duration::from_secs(1), async {
                if self
                    .mesh
                    .send_to(peer, MeshMessage::Scrape(tx))
                    .await
                    .is_err()
                {
                    return Ok(None);
                }
                Ok(rx.connect().await.recv().await)
            })
            .await;
            if let Ok(Some(snapshot)) = asked {
                snapshots.push(snapshot);
            }
        }
        snapshots
    }

    fn begin_stop(&self) {
        self.stopped_at.set(Some(Instant::now()));
        self.dispatcher.end_listen_streams();
        // Whatever waits for the stop (a driver, a request loop between requests) also waits
        // on its deadline, polled in the same turn: waking every deadline's waker reaches each.
        wheel::wake_all();
    }
}

/// A connection's place among its shard's open connections, given up (and counted closed) on
/// drop. Every connection holds one (a WebSocket's or a stream's in its driver), 32 B, and the
/// shard keeps nothing per connection beside it: no slab slot (the stop reaches connections
/// through their deadlines, see [`Shard::begin_stop`]); it counts open connections in its
/// metrics.
pub(crate) struct ConnGuard {
    shard: Rc<Shard>,
    /// What the connection carries now, for the metrics of open connections.
    transport: Cell<Transport>,
    /// Bytes of a partly received message or body this connection counts against the shard's
    /// inbound budget. A `u32`, as the WebSocket decoder's limit is.
    inbound: Cell<u32>,
    /// The client's address, once admitted (and counted) under it.
    peer: PeerIp,
}

/// A client's address, or none, in 16 bytes where `Option<IpAddr>` takes 17 (and the guard
/// 40 B, not 32): IPv4 as an IPv4-mapped IPv6 address, none as the unspecified address `::`,
/// which no TCP peer has. Addresses are kept canonical (an IPv4-mapped peer of a dual-stack
/// socket is its IPv4 address), so what is counted under one is released under the same.
#[derive(Clone, Copy)]
struct PeerIp(Ipv6Addr);

impl PeerIp {
    const NONE: PeerIp = PeerIp(Ipv6Addr::UNSPECIFIED);

    fn new(ip: IpAddr) -> PeerIp {
        match ip {
            IpAddr::V4(v4) => PeerIp(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => PeerIp(v6),
        }
    }

    fn get(self) -> Option<IpAddr> {
        (!self.0.is_unspecified()).then(|| self.0.to_canonical())
    }
}

impl ConnGuard {
    fn open(shard: &Rc<Shard>) -> ConnGuard {
        shard.metrics.opened(Transport::Http);
        ConnGuard {
            shard: Rc::clone(shard),
            transport: Cell::new(Transport::Http),
            inbound: Cell::new(0),
            peer: PeerIp::NONE,
        }
    }

    /// Admits the connection from `peer` under the per-client rules (counted until it ends),
    /// or says how to refuse it (counted as a limit hit). A peer whose address cannot be read
    /// has already gone: nothing to count.
    fn admit(&mut self, peer: Option<SocketAddr>) -> Result<(), TransportError> {
        let Some(ip) = peer.map(|addr| addr.ip().to_canonical()) else {
            return Ok(());
        };
        let admitted = self
            .shard
            .admission
            .borrow_mut()
            .connect(ip, Instant::now());
        if let Err(refusal) = admitted {
            self.shard.metrics.limit(refusal.limit());
            return Err(refusal.into());
        }
        self.peer = PeerIp::new(ip);
        Ok(())
    }

    /// Counts a connection another shard admitted and handed over.
    fn adopt(&mut self, peer: Option<SocketAddr>) {
        let Some(ip) = peer.map(|addr| addr.ip().to_canonical()) else {
            return;
        };
        self.peer = PeerIp::new(ip);
        self.shard.admission.borrow_mut().adopt(ip);
    }

    /// Records that the connection now holds `bytes` of partly received input; false (and
    /// nothing recorded) when that would take the shard past `--max-inbound-bytes-per-shard`,
    /// or the connection past 4 GiB, and the caller refuses the input.
    pub fn hold_inbound(&self, bytes: usize) -> bool {
        let budget = self.shard.config.max_inbound_bytes_per_shard;
        let held = (self.inbound.get(), self.shard.inbound_held.get());
        let Some((own, total)) = inbound_after(held, bytes, budget) else {
            self.shard.metrics.limit(Limit::InboundBudget);
            return false;
        };
        self.shard.inbound_held.set(total);
        self.inbound.set(own);
        true
    }

    /// What the transport rules use of the shard, answering this connection's client.
    pub fn env(&self) -> Env<'_> {
        Env {
            peer: self.peer.get(),
            ..self.shard.env()
        }
    }

    /// Records that the connection switched transport (after an upgrade).
    pub fn set_transport(&self, transport: Transport) {
        self.shard.metrics.closed(self.transport.replace(transport));
        self.shard.metrics.opened(transport);
    }
}

/// A connection's own count and its shard's total of partly received input once the
/// connection, which held `(own, total)`, holds `bytes`; `None` when that is refused: growing
/// past the shard's `budget`, or past the 4 GiB a connection's count holds.
fn inbound_after((own, total): (u32, usize), bytes: usize, budget: usize) -> Option<(u32, usize)> {
    let total = (total - own as usize).saturating_add(bytes);
    match u32::try_from(bytes) {
        Ok(bytes) if bytes <= own || total <= budget => Some((bytes, total)),
        _ => None,
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.hold_inbound(0);
        if let Some(ip) = self.peer.get() {
            self.shard
                .admission
                .borrow_mut()
                .disconnect(ip, Instant::now());
        }
        self.shard.metrics.closed(self.transport.get());
    }
}

/// Accepts until told to stop, then drains within the grace period.
async fn serve(shard: Rc<Shard>, listener: TcpListener, stop: mpsc::Receiver<()>) {
    let stop_requested = glommio::executor().spawn_blocking(move || stop.recv().is_ok());
    let accepting = accept_loop(Rc::clone(&shard), listener);
    let requested = futures_lite::future::or(stop_requested, async {
        accepting.await;
        false
    })
    .await;
    if requested {
        drain(&shard).await;
    }
    shard.drivers.close();
}

/// Closes WebSockets and streams and lets requests finish, within the shutdown grace.
async fn drain(shard: &Shard) {
    log::info!(
        "shard {}: draining {} connections",
        shard.index,
        shard.connection_count()
    );
    shard.begin_stop();
    let grace = shard.config.shutdown_grace();
    let deadline = Instant::now() + grace;
    while shard.connection_count() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

/// The request that named a foreign session, and the bytes after it.
pub(crate) type HandoffParts = (http1::RequestHead, Vec<u8>, Vec<u8>);

/// Serves connections other shards hand over.
async fn receive_handoffs(shard: Rc<Shard>, mut receivers: Receivers<MeshMessage>) {
    for (_, receiver) in receivers.streams() {
        let shard = Rc::clone(&shard);
        glommio::spawn_local(async move {
            while let Some(message) = receiver.recv().await {
                match message {
                    MeshMessage::Handoff(handoff) => {
                        // SAFETY: the descriptor was dup'ed for this handoff and is owned by it.
                        let tcp = unsafe { TcpStream::from_raw_fd(handoff.fd.into_raw_fd()) };
                        let mut conn = ConnGuard::open(&shard);
                        conn.adopt(tcp.peer_addr().ok());
                        let stream = Socket::new(tcp, handoff.tls);
                        let first = (handoff.head, handoff.body, handoff.inbuf);
                        glommio::spawn_local(http::serve_handed_off(stream, conn, first)).detach();
                    }
                    MeshMessage::Scrape(reply) => {
                        let _ = reply.connect().await.send(shard.snapshot()).await;
                    }
                    MeshMessage::Announce(announcement) => {
                        shard.dispatcher.announce_on_this_shard(&announcement);
                    }
                    MeshMessage::Catalogue(update) => {
                        shard.dispatcher.apply_catalogue_update(update);
                    }
                    MeshMessage::AcceptState(state_use, reply) => {
                        let verdict = shard.dispatcher.accept_request_state_here(state_use);
                        let _ = reply.connect().await.send(verdict).await;
                    }
                }
            }
        })
        .detach();
    }
}

/// The dispatcher's broadcast hook: carries an announcement (a resource update, a list
/// change) to every other shard, whose receiver tells its own subscribers and listeners. It
/// sends from a task of its own, because a full mesh channel makes the sender wait and the
/// hook is called from synchronous code.
/// The shard that reads the other nodes' announcements from the shared event store and
/// hands them to every shard here.
const ANNOUNCEMENT_READER: usize = 0;

/// The dispatcher's broadcast hook: an announcement goes to the other shards over the mesh
/// and, with a shared event store, to the other nodes through it.
fn broadcast_announcements(
    mesh: Rc<Senders<MeshMessage>>,
    shared: Option<(Rc<SharedStore>, NodeId)>,
) -> impl Fn(&Announcement) {
    move |announcement| {
        if let Some((store, node)) = &shared {
            match serde_json::to_vec(announcement) {
                Ok(json) => store.announce(node, &json),
                Err(e) => log::warn!("{announcement:?} not announced to other nodes: {e}"),
            }
        }
        relay_to_other_shards(&mesh, announcement);
    }
}

/// Hands `announcement` to every other shard of this node.
fn relay_to_other_shards(mesh: &Rc<Senders<MeshMessage>>, announcement: &Announcement) {
    if mesh.nr_consumers() < 2 {
        return;
    }
    let (mesh, announcement) = (Rc::clone(mesh), announcement.clone());
    glommio::spawn_local(async move {
        for peer in (0..mesh.nr_consumers()).filter(|&p| p != mesh.peer_id()) {
            let message = MeshMessage::Announce(announcement.clone());
            if mesh.send_to(peer, message).await.is_err() {
                log::debug!("shard {peer} is gone; {announcement:?} not delivered there");
            }
        }
    })
    .detach();
}

/// The shard that makes every catalogue change, so all shards see one sequence of versions.
const CATALOGUE_WRITER: usize = 0;

/// The dispatcher's catalogue hook: a change goes to the writer shard, a new version to every
/// other shard. Sent from a task of its own (a full mesh channel makes the sender wait).
fn sync_catalogue(mesh: Rc<Senders<MeshMessage>>) -> impl Fn(CatalogueUpdate) {
    move |update| {
        if mesh.nr_consumers() < 2 {
            return;
        }
        let mesh = Rc::clone(&mesh);
        glommio::spawn_local(async move {
            let sent = match update {
                CatalogueUpdate::Change(_) => mesh
                    .send_to(CATALOGUE_WRITER, MeshMessage::Catalogue(update))
                    .await
                    .is_ok(),
                CatalogueUpdate::Install {
                    version,
                    registry,
                    list,
                } => {
                    let mut all = true;
                    for peer in (0..mesh.nr_consumers()).filter(|&p| p != mesh.peer_id()) {
                        let update = CatalogueUpdate::Install {
                            version,
                            registry: Arc::clone(&registry),
                            list,
                        };
                        all &= mesh
                            .send_to(peer, MeshMessage::Catalogue(update))
                            .await
                            .is_ok();
                    }
                    all
                }
            };
            if !sent {
                log::warn!("a catalogue update did not reach every shard");
            }
        })
        .detach();
    }
}

/// The dispatcher's way to another shard's ledger of used request states: ask the shard that
/// sealed the state and wait for its verdict. A shard that does not answer within a second
/// counts as a refusal, so a state is never used twice for want of an answer.
fn accept_states_elsewhere(
    mesh: Rc<Senders<MeshMessage>>,
) -> impl Fn(usize, StateUse) -> BoxedLocal<Result<(), StateError>> {
    move |owner, state_use| {
        let mesh = Rc::clone(&mesh);
        Box::pin(async move {
            let (tx, rx) = shared_channel::new_bounded(1);
            let asked = glommio::timer::timeout(Duration::from_secs(1), async {
                let message = MeshMessage::AcceptState(state_use, tx);
                if mesh.send_to(owner, message).await.is_err() {
                    return Ok(None);
                }
                Ok(rx.connect().await.recv().await)
            })
            .await;
            match asked {
                Ok(Some(verdict)) => verdict,
                _ => Err(StateError::LedgerUnreachable),
            }
        })
    }
}

/// Ends idle sessions once a second.
async fn expire_sessions(shard: Rc<Shard>) {
    let idle = shard.config.session_idle_timeout();
    while !shard.stopping() {
        glommio::timer::sleep(Duration::from_secs(1)).await;
        shard.http_sessions.expire(idle, &shard.dispatcher);
    }
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    // While descriptors are exhausted every retry fails: one warning a second, with the count.
    let mut warned_at: Option<Instant> = None;
    let mut unreported = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                shard.metrics.error(ErrorKind::Io);
                unreported += 1;
                if warned_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    log::warn!(
                        "shard {}: accept failed {unreported} time(s) since the last warning: {e}",
                        shard.index
                    );
                    warned_at = Some(Instant::now());
                    unreported = 0;
                }
                // EMFILE and friends: back off briefly instead of spinning.
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shard.metrics.accepted.set(shard.metrics.accepted.get() + 1);
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        let Some(socket) = shard.socket(stream) else {
            continue;
        };
        let mut conn = ConnGuard::open(&shard);
        let refusal = if shard.connection_count() > shard.config.max_connections_per_shard {
            Err(TransportError::ConnectionLimit)
        } else {
            conn.admit(peer)
        };
        glommio::spawn_local(http::serve_connection(socket, conn, refusal.err())).detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn input_is_refused_past_the_budget_or_past_4_gib_and_always_let_shrink() {
        const BUDGET: usize = 1000;
        // Another connection holds 600: this one may grow to 400, not 401.
        assert_eq!(inbound_after((100, 700), 400, BUDGET), Some((400, 1000)));
        assert_eq!(inbound_after((100, 700), 401, BUDGET), None);
        // Already past the budget (it shrank below), giving back is always taken.
        assert_eq!(inbound_after((500, 1500), 300, BUDGET), Some((300, 1300)));
        assert_eq!(inbound_after((500, 1500), 0, BUDGET), Some((0, 1000)));
        // A connection's count stops at 4 GiB, whatever the budget.
        let past = u32::MAX as usize + 1;
        assert_eq!(inbound_after((0, 0), past, usize::MAX), None);
        assert_eq!(
            inbound_after((0, 0), past - 1, usize::MAX),
            Some((u32::MAX, past - 1))
        );
    }

    #[test]
    fn a_peer_address_keeps_its_canonical_form_in_16_bytes() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(PeerIp::new(v4).get(), Some(v4));
        assert_eq!(PeerIp::new(v6).get(), Some(v6));
        // What admission counted (the canonical form) is what the guard releases.
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(PeerIp::new(mapped.to_canonical()).get(), Some(v4));
        assert_eq!(PeerIp::NONE.get(), None);
        assert_eq!(std::mem::size_of::<PeerIp>(), 16);
    }

    /// Every connection holds a guard (a WebSocket's and a stream's in its driver).
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_connection_guard_is_32_bytes() {
        assert!(std::mem::size_of::<ConnGuard>() <= 32);
    }

    #[test]
    fn this_process_may_run_somewhere() {
        assert!(!allowed_cpus().is_empty());
        assert!(placement(1).is_ok());
    }
}
