//! Admission control (issue 19, item 3): per-address caps on open connections and on new
//! connections per second, and a request rate per client, each rate a token bucket; all per
//! shard, nothing shared. Pure functions of `now`: the shard reads the clock and carries out
//! the refusal, the transport says what it is ([`Refusal`] → [`TransportError`]).
//!
//! Every rule is off by default (0): on the default loopback bind every client is one
//! address, and behind a proxy every client is the proxy's address, so a per-address default
//! would throttle exactly the deployments that need none (docs/operations.md).

use super::{Env, TransportError};
use crate::metrics::Limit;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Who a request rate is counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// The client's address, as [`client_address`] counts it.
    Ip(IpAddr),
    /// An authenticated principal, by a 16-byte tag of its identity.
    Principal([u8; 16]),
}

impl RateKey {
    /// The key of a client at `peer`: its principal when it authenticated, else its address.
    pub fn of(peer: IpAddr, principal: Option<[u8; 16]>) -> RateKey {
        match principal {
            Some(tag) => RateKey::Principal(tag),
            None => RateKey::Ip(peer),
        }
    }
}

/// The address a client is counted under: IPv4 as it is (also when it arrives mapped into
/// IPv6 on a dual-stack listener), IPv6 by its /64, the prefix one subscriber or LAN gets
/// (RFC 6177), so one host cannot be a million clients.
pub fn client_address(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// A steady rate with a burst, kept as GCRA (the generic cell rate algorithm of ITU-T
/// I.371): a token bucket held as one timestamp, the "theoretical arrival time" of the next
/// request at the steady rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Nanoseconds per token.
    interval: u64,
    /// How far ahead of now the arrival time may run: `burst - 1` intervals.
    tolerance: u64,
}

impl Rate {
    /// `per_second` tokens a second, `burst` (at least 1) at once; `None` when `per_second` is 0 (off).
    pub fn per_second(per_second: u32, burst: u32) -> Option<Rate> {
        (per_second > 0).then(|| {
            let interval = 1_000_000_000 / u64::from(per_second);
            Rate {
                interval,
                tolerance: interval * u64::from(burst.max(1) - 1),
            }
        })
    }
}

/// One bucket: the theoretical arrival time, in nanoseconds since the table's epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    tat: u64,
}

impl Bucket {
    /// Takes a token, or says how long until one.
    fn take(&mut self, rate: Rate, now: u64) -> Result<(), Duration> {
        let tat = self.tat.max(now);
        let ahead = tat - now;
        if ahead > rate.tolerance {
            return Err(Duration::from_nanos(ahead - rate.tolerance));
        }
        self.tat = tat + rate.interval;
        Ok(())
    }

    /// Whether the bucket holds its whole burst again: forgetting it changes nothing.
    fn is_full(self, now: u64) -> bool {
        self.tat <= now
    }
}

/// What the shard knows of one address.
#[derive(Debug, Clone, Copy, Default)]
struct Client {
    /// Connections open from it on this shard.
    open: u32,
    connections: Bucket,
    requests: Bucket,
}

impl Client {
    fn is_idle(&self, now: u64) -> bool {
        self.open == 0 && self.connections.is_full(now) && self.requests.is_full(now)
    }
}

/// A full table is swept of idle entries at most this often: a table full of busy ones
/// costs one pass a second, not one per refused client.
const SWEEP_INTERVAL: u64 = 1_000_000_000;

/// A map holding at most `cap` keys. An entry that carries no information (an idle one:
/// no connection open, its buckets full) may be forgotten; when the table is full of entries
/// that do, a new key is refused (fail-closed) rather than evicting one: eviction would hand
/// a client that cycles through many keys a fresh burst for each, and the keys it would
/// evict belong to clients being throttled.
#[derive(Debug)]
struct Table<K, V> {
    map: HashMap<K, V>,
    cap: usize,
    next_sweep: u64,
}

impl<K: Hash + Eq, V: Default> Table<K, V> {
    fn new(cap: usize) -> Self {
        Table {
            map: HashMap::new(),
            cap,
            next_sweep: 0,
        }
    }

    /// The entry of `key`, made if there is room (after forgetting idle entries if needed).
    fn get_or_insert(&mut self, key: K, now: u64, idle: impl Fn(&V) -> bool) -> Option<&mut V> {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.sweep(now, idle);
            if self.map.len() >= self.cap {
                return None;
            }
        }
        Some(self.map.entry(key).or_default())
    }

    fn sweep(&mut self, now: u64, idle: impl Fn(&V) -> bool) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_INTERVAL;
        self.map.retain(|_, v| !idle(v));
        // The memory of a past flood of clients goes back too.
        if self.map.capacity() > 4 * self.map.len().max(1024) {
            self.map.shrink_to(2 * self.map.len());
        }
    }
}

/// The admission rules of a shard, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Connections open at once from one address (0: no cap).
    pub max_connections_per_ip: usize,
    /// New connections from one address.
    pub connection_rate: Option<Rate>,
    /// JSON-RPC messages per [`RateKey`].
    pub request_rate: Option<Rate>,
    /// Addresses (and, apart, principals) tracked at once.
    pub max_tracked: usize,
}

impl AdmissionLimits {
    /// Whether any rule needs to know the addresses of connections.
    fn tracks_addresses(&self) -> bool {
        self.max_connections_per_ip > 0
            || self.connection_rate.is_some()
            || self.request_rate.is_some()
    }
}

/// Why admission refused a connection or a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address holds `--max-connections-per-ip` connections on this shard.
    ConnectionsPerIp,
    /// The address opens connections faster than `--max-new-connections-per-ip-per-sec`.
    ConnectionRate {
        /// Until its next token.
        retry_after: Duration,
    },
    /// The client sends faster than `--max-requests-per-sec`.
    RequestRate {
        /// Until its next token.
        retry_after: Duration,
    },
    /// The shard tracks `--max-tracked-clients-per-shard` clients, none of them idle.
    TableFull,
}

impl Refusal {
    /// The bound this refusal counts as in `/metrics`.
    pub fn limit(self) -> Limit {
        match self {
            Refusal::ConnectionsPerIp => Limit::ConnectionsPerIp,
            Refusal::ConnectionRate { .. } => Limit::ConnectionRate,
            Refusal::RequestRate { .. } => Limit::RequestRate,
            Refusal::TableFull => Limit::AdmissionTable,
        }
    }
}

/// RFC 9110 §10.2.3: `Retry-After: delay-seconds` is a whole number; rounded up, so a client
/// that waits as told finds its token (and at least 1: a 0 would invite a busy retry).
fn whole_seconds(delay: Duration) -> u64 {
    delay.as_nanos().div_ceil(1_000_000_000).max(1) as u64
}

impl From<Refusal> for TransportError {
    fn from(refusal: Refusal) -> TransportError {
        match refusal {
            Refusal::ConnectionsPerIp => TransportError::ConnectionsPerIp,
            Refusal::ConnectionRate { retry_after } => TransportError::ConnectionRate {
                retry_after: whole_seconds(retry_after),
            },
            Refusal::RequestRate { retry_after } => TransportError::RequestRate {
                retry_after: whole_seconds(retry_after),
                id: None,
            },
            Refusal::TableFull => TransportError::TooManyClients,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        TransportError::from(*self).fmt(f)
    }
}

/// One shard's admission state: per-address connection counts and buckets, and the request
/// buckets of principals, each table bounded by `max_tracked`.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    epoch: Instant,
    clients: Table<IpAddr, Client>,
    principals: Table<[u8; 16], Bucket>,
}

impl Admission {
    /// The rules `limits`, starting at `now`.
    pub fn new(limits: AdmissionLimits, now: Instant) -> Admission {
        Admission {
            limits,
            epoch: now,
            clients: Table::new(limits.max_tracked),
            principals: Table::new(limits.max_tracked),
        }
    }

    fn nanos(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// A connection from `ip` was accepted: admitted (and counted until [`Self::disconnect`])
    /// or refused (and not counted).
    pub fn connect(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let limits = self.limits;
        if !limits.tracks_addresses() {
            return Ok(());
        }
        let now = self.nanos(now);
        let client = self
            .clients
            .get_or_insert(client_address(ip), now, |c| c.is_idle(now))
            .ok_or(Refusal::TableFull)?;
        let cap = limits.max_connections_per_ip;
        if cap > 0 && client.open as usize >= cap {
            return Err(Refusal::ConnectionsPerIp);
        }
        if let Some(rate) = limits.connection_rate {
            client
                .connections
                .take(rate, now)
                .map_err(|retry_after| Refusal::ConnectionRate { retry_after })?;
        }
        client.open += 1;
        Ok(())
    }

    /// A connection from `ip` that another shard admitted was handed to this one: counted,
    /// never refused (the table may pass its bound by such connections: they are bounded by
    /// the connections the shard holds).
    pub fn adopt(&mut self, ip: IpAddr) {
        if self.limits.tracks_addresses() {
            self.clients.map.entry(client_address(ip)).or_default().open += 1;
        }
    }

    /// A connection counted by [`Self::connect`] or [`Self::adopt`] ended.
    pub fn disconnect(&mut self, ip: IpAddr, now: Instant) {
        let now = self.nanos(now);
        let key = client_address(ip);
        if let Some(client) = self.clients.map.get_mut(&key) {
            client.open = client.open.saturating_sub(1);
            if client.is_idle(now) {
                self.clients.map.remove(&key);
            }
        }
    }

    /// A JSON-RPC message from `key`: admitted, or refused for the request rate.
    pub fn request(&mut self, key: RateKey, now: Instant) -> Result<(), Refusal> {
        let Some(rate) = self.limits.request_rate else {
            return Ok(());
        };
        let now = self.nanos(now);
        let bucket = match key {
            // The address's entry lives while its connection is open: there is always room.
            RateKey::Ip(ip) => {
                &mut self
                    .clients
                    .map
                    .entry(client_address(ip))
                    .or_default()
                    .requests
            }
            RateKey::Principal(tag) => self
                .principals
                .get_or_insert(tag, now, |b| b.is_full(now))
                .ok_or(Refusal::TableFull)?,
        };
        bucket
            .take(rate, now)
            .map_err(|retry_after| Refusal::RequestRate { retry_after })
    }

    /// Clients tracked now (addresses and principals).
    pub fn tracked(&self) -> usize {
        self.clients.map.len() + self.principals.map.len()
    }
}

/// The request-rate check of one JSON-RPC message from the client `env` answers, counted for
/// its principal, else its address (neither known: not limited); a refusal is counted.
pub(crate) fn admit_request(env: &Env, now: Instant) -> Result<(), Refusal> {
    let Some(peer) = env.peer else {
        return Ok(());
    };
    let key = RateKey::of(peer, env.principal.map(|p| p.tag.0));
    env.admission
        .borrow_mut()
        .request(key, now)
        .inspect_err(|refusal| env.metrics.limit(refusal.limit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const SECOND: Duration = Duration::from_secs(1);

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            max_connections_per_ip: 0,
            connection_rate: None,
            request_rate: None,
            max_tracked: 1024,
        }
    }

    fn retry_after(result: Result<(), Refusal>) -> Duration {
        match result {
            Err(Refusal::RequestRate { retry_after } | Refusal::ConnectionRate { retry_after }) => {
                retry_after
            }
            other => panic!("expected a rate refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_bucket_gives_its_burst_then_one_token_per_interval() {
        let rate = Rate::per_second(4, 3).unwrap();
        let mut bucket = Bucket::default();
        let t0 = 10_000_000_000;
        for _ in 0..3 {
            assert_eq!(bucket.take(rate, t0), Ok(()));
        }
        assert_eq!(bucket.take(rate, t0), Err(Duration::from_millis(250)));
        // A refusal takes nothing: the wait is the same a moment later, less the moment.
        assert_eq!(
            bucket.take(rate, t0 + 50_000_000),
            Err(Duration::from_millis(200))
        );
        let next = t0 + 250_000_000;
        assert_eq!(bucket.take(rate, next), Ok(()));
        assert!(bucket.take(rate, next).is_err());
        // At the steady rate, every request passes.
        for i in 1..=100 {
            assert_eq!(bucket.take(rate, next + i * 250_000_000), Ok(()));
        }
        // Idle for the whole burst's worth, the bucket is full again.
        let later = next + 100 * 250_000_000 + 750_000_000;
        assert!(bucket.is_full(later));
        assert!(!bucket.is_full(later - 1));
    }

    #[test]
    fn a_burst_of_zero_still_admits_one() {
        let rate = Rate::per_second(1, 0).unwrap();
        let mut bucket = Bucket::default();
        assert_eq!(bucket.take(rate, 0), Ok(()));
        assert_eq!(bucket.take(rate, 0), Err(SECOND));
        assert_eq!(Rate::per_second(0, 10), None);
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::from_nanos(1)), 1);
        assert_eq!(whole_seconds(SECOND), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1_001)), 2);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        let refusal = Refusal::RequestRate {
            retry_after: Duration::from_millis(2_500),
        };
        assert_eq!(
            TransportError::from(refusal),
            TransportError::RequestRate {
                retry_after: 3,
                id: None
            }
        );
    }

    #[test]
    fn each_refusal_counts_as_its_own_limit() {
        let limits: Vec<Limit> = [
            Refusal::ConnectionsPerIp,
            Refusal::ConnectionRate {
                retry_after: SECOND,
            },
            Refusal::RequestRate {
                retry_after: SECOND,
            },
            Refusal::TableFull,
        ]
        .iter()
        .map(|r| r.limit())
        .collect();
        for (i, a) in limits.iter().enumerate() {
            assert!(limits[i + 1..].iter().all(|b| a != b), "{limits:?}");
        }
    }

    #[test]
    fn with_every_rule_off_nothing_is_tracked() {
        let t0 = Instant::now();
        let mut admission = Admission::new(limits(), t0);
        for last in 0..=255 {
            assert_eq!(admission.connect(ip(last), t0), Ok(()));
            assert_eq!(admission.request(RateKey::Ip(ip(last)), t0), Ok(()));
        }
        admission.adopt(ip(1));
        admission.disconnect(ip(1), t0);
        assert_eq!(admission.tracked(), 0);
    }

    #[test]
    fn open_connections_are_capped_per_address() {
        let t0 = Instant::now();
        let mut admission = Admission::new(
            AdmissionLimits {
                max_connections_per_ip: 2,
                ..limits()
            },
            t0,
        );
        assert_eq!(admission.connect(ip(1), t0), Ok(()));
        assert_eq!(admission.connect(ip(1), t0), Ok(()));
        assert_eq!(admission.connect(ip(1), t0), Err(Refusal::ConnectionsPerIp));
        // Another address has its own count.
        assert_eq!(admission.connect(ip(2), t0), Ok(()));
        // A refused connection was not counted: one close makes room for one.
        admission.disconnect(ip(1), t0);
        assert_eq!(admission.connect(ip(1), t0), Ok(()));
        assert_eq!(admission.connect(ip(1), t0), Err(Refusal::ConnectionsPerIp));
        // Handed-over connections count, and are not refused.
        admission.adopt(ip(1));
        admission.disconnect(ip(1), t0);
        assert_eq!(admission.connect(ip(1), t0), Err(Refusal::ConnectionsPerIp));
        // The last close forgets the address (it has no bucket to remember).
        for _ in 0..2 {
            admission.disconnect(ip(1), t0);
        }
        admission.disconnect(ip(2), t0);
        assert_eq!(admission.tracked(), 0);
    }

    #[test]
    fn new_connections_are_rate_limited_per_address() {
        let t0 = Instant::now();
        let mut admission = Admission::new(
            AdmissionLimits {
                connection_rate: Rate::per_second(2, 3),
                ..limits()
            },
            t0,
        );
        for _ in 0..3 {
            assert_eq!(admission.connect(ip(1), t0), Ok(()));
        }
        let wait = retry_after(admission.connect(ip(1), t0));
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(admission.connect(ip(2), t0), Ok(()));
        assert_eq!(admission.connect(ip(1), t0 + wait), Ok(()));
        // Closing does not give the token back: it is a rate of new connections.
        for _ in 0..4 {
            admission.disconnect(ip(1), t0 + wait);
        }
        assert!(admission.connect(ip(1), t0 + wait).is_err());
        // The entry outlives the connections until its bucket is full again.
        assert_eq!(admission.tracked(), 2);
    }

    #[test]
    fn requests_are_rate_limited_per_key() {
        let t0 = Instant::now();
        let mut admission = Admission::new(
            AdmissionLimits {
                request_rate: Rate::per_second(10, 5),
                ..limits()
            },
            t0,
        );
        admission.connect(ip(1), t0).unwrap();
        let me = RateKey::Ip(ip(1));
        for _ in 0..5 {
            assert_eq!(admission.request(me, t0), Ok(()));
        }
        assert_eq!(retry_after(admission.request(me, t0)), SECOND / 10);
        // Other addresses and principals have buckets of their own.
        assert_eq!(admission.request(RateKey::Ip(ip(2)), t0), Ok(()));
        let principal = RateKey::of(ip(1), Some([7; 16]));
        assert_eq!(principal, RateKey::Principal([7; 16]));
        for _ in 0..5 {
            assert_eq!(admission.request(principal, t0), Ok(()));
        }
        assert!(admission.request(principal, t0).is_err());
        assert_eq!(admission.request(me, t0 + SECOND / 10), Ok(()));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_address(a), client_address(b));
        assert_ne!(client_address(a), client_address(other));
        assert_eq!(
            client_address(a),
            IpAddr::V6("2001:db8:1:2::".parse::<Ipv6Addr>().unwrap())
        );
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_address(mapped), ip(1));
        assert_eq!(client_address(ip(1)), ip(1));

        let t0 = Instant::now();
        let mut admission = Admission::new(
            AdmissionLimits {
                max_connections_per_ip: 1,
                ..limits()
            },
            t0,
        );
        assert_eq!(admission.connect(a, t0), Ok(()));
        assert_eq!(admission.connect(b, t0), Err(Refusal::ConnectionsPerIp));
        assert_eq!(admission.connect(other, t0), Ok(()));
        assert_eq!(admission.connect(mapped, t0), Ok(()));
        assert_eq!(admission.connect(ip(1), t0), Err(Refusal::ConnectionsPerIp));
    }

    #[test]
    fn a_full_table_forgets_idle_clients_and_refuses_new_ones_while_none_is() {
        let t0 = Instant::now();
        let mut admission = Admission::new(
            AdmissionLimits {
                connection_rate: Rate::per_second(1, 2),
                max_tracked: 4,
                ..limits()
            },
            t0,
        );
        for last in 1..=4 {
            assert_eq!(admission.connect(ip(last), t0), Ok(()));
        }
        // Every entry holds an open connection: a fifth address is refused, not tracked.
        assert_eq!(admission.connect(ip(5), t0), Err(Refusal::TableFull));
        assert_eq!(admission.tracked(), 4);
        // Known addresses are still served.
        assert_eq!(admission.connect(ip(1), t0), Ok(()));
        // Closed, but their buckets are not full yet: remembered.
        admission.disconnect(ip(1), t0);
        for last in 1..=4 {
            admission.disconnect(ip(last), t0);
        }
        assert_eq!(admission.tracked(), 4);
        // The sweep at t0 was this second's one.
        let soon = t0 + SECOND / 2;
        assert_eq!(admission.connect(ip(5), soon), Err(Refusal::TableFull));
        // A second on, the buckets of 2, 3 and 4 are full: forgotten, room again. Address 1
        // took a second token and is remembered a second longer.
        let later = t0 + SECOND;
        assert_eq!(admission.connect(ip(5), later), Ok(()));
        assert_eq!(admission.tracked(), 2, "addresses 1 and 5");
    }

    #[test]
    fn a_full_table_is_swept_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut admission = Admission::new(
            AdmissionLimits {
                max_connections_per_ip: 10,
                max_tracked: 2,
                ..limits()
            },
            t0,
        );
        admission.connect(ip(1), t0).unwrap();
        admission.connect(ip(2), t0).unwrap();
        assert_eq!(admission.connect(ip(3), t0), Err(Refusal::TableFull));
        // Address 2 leaves, and its entry goes with its last connection.
        admission.disconnect(ip(2), t0);
        assert_eq!(admission.connect(ip(3), t0), Ok(()));
        assert_eq!(admission.connect(ip(4), t0), Err(Refusal::TableFull));
        let next = admission.clients.next_sweep;
        assert_eq!(
            admission.connect(ip(4), t0 + SECOND / 2),
            Err(Refusal::TableFull)
        );
        assert_eq!(
            admission.clients.next_sweep, next,
            "no second sweep within the second"
        );
    }

    #[test]
    fn a_full_principal_table_refuses_new_principals() {
        let t0 = Instant::now();
        let mut admission = Admission::new(
            AdmissionLimits {
                request_rate: Rate::per_second(1, 1),
                max_tracked: 2,
                ..limits()
            },
            t0,
        );
        for tag in 0..2 {
            assert_eq!(admission.request(RateKey::Principal([tag; 16]), t0), Ok(()));
        }
        let third = RateKey::Principal([9; 16]);
        assert_eq!(admission.request(third, t0), Err(Refusal::TableFull));
        // A second on, the first two buckets are full again and forgotten.
        assert_eq!(admission.request(third, t0 + SECOND), Ok(()));
    }
}
