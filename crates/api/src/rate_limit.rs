//! Per-client token buckets (governor's GCRA) with bounded memory, and the client-IP rule
//! (`X-Forwarded-For` believed only from trusted proxies).
//!
//! A client is an IPv4 address or an IPv6 prefix (a /64 by default: one subscriber's network,
//! whose 2^64 addresses would otherwise each get a fresh bucket). At most `max_tracked_ips`
//! clients have a bucket; a newcomer past that evicts the client seen least recently, so it gets a
//! bucket of its own at once and memory stays bounded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};
use lru::LruCache;

use crate::settings::{IpNetwork, MAX_RATE_PER_SECOND, MIN_RATE_PER_SECOND, RateLimitSettings, canonical};

/// Whom a bucket belongs to: an IPv4 address, or an IPv6 address cut to the configured prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(u128);

impl ClientKey {
    /// The key of `ip` when IPv6 clients are keyed by their first `ipv6_prefix` bits.
    pub fn of(ip: IpAddr, ipv6_prefix: u8) -> Self {
        match canonical(ip) {
            // IPv4 keys live in the IPv4-mapped range, apart from every IPv6 prefix that matters.
            IpAddr::V4(v4) => Self(u128::from(v4.to_ipv6_mapped())),
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(ipv6_prefix.min(128)))
                    .unwrap_or(0);
                Self(u128::from(v6) & mask)
            }
        }
    }

    /// The address the key stands for (the prefix's first address for IPv6).
    pub fn ip(&self) -> IpAddr {
        canonical(IpAddr::V6(Ipv6Addr::from(self.0)))
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip() {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/prefix"),
        }
    }
}

/// A keyed state store that tracks at most `capacity` clients, evicting the one seen least
/// recently when a new one arrives. An evicted client starts again with a full bucket, exactly as
/// if it had been idle long enough to be pruned.
pub struct BoundedClientStore {
    inner: Mutex<LruCache<ClientKey, Nanos>>,
}

impl BoundedClientStore {
    /// An empty store that tracks at most `capacity` clients (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<ClientKey, Nanos>> {
        // A panic while holding the lock leaves plain numbers behind; they are still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl StateStore for BoundedClientStore {
    type Key = ClientKey;

    fn measure_and_replace<T, F, E>(&self, key: &Self::Key, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut buckets = self.lock();
        // `get` marks the client as seen now; `put` of a newcomer evicts the least recent one.
        let previous = buckets.get(key).copied();
        let (outcome, next) = f(previous)?;
        buckets.put(*key, next);
        Ok(outcome)
    }
}

impl ShrinkableKeyedStateStore<ClientKey> for BoundedClientStore {
    fn retain_recent(&self, drop_below: Nanos) {
        let mut buckets = self.lock();
        let idle: Vec<ClientKey> = buckets
            .iter()
            .filter(|(_, tat)| **tat <= drop_below)
            .map(|(key, _)| *key)
            .collect();
        for key in idle {
            buckets.pop(&key);
        }
    }

    fn shrink_to_fit(&self) {}

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// The per-client limiter and the rule that finds the client.
pub struct ClientIpLimiter {
    limiter: RateLimiter<ClientKey, BoundedClientStore, DefaultClock>,
    trusted_proxies: Vec<IpNetwork>,
    ipv6_prefix: u8,
}

impl ClientIpLimiter {
    /// A limiter of `settings.per_second` requests per second (fractions allowed) with bursts of
    /// `settings.burst`. Out-of-range values, which validation rejects, are clamped.
    pub fn new(settings: &RateLimitSettings) -> Self {
        let slowest = Duration::from_secs_f64(1.0 / MIN_RATE_PER_SECOND);
        let period = Duration::try_from_secs_f64(1.0 / settings.per_second)
            .unwrap_or(slowest)
            .clamp(Duration::from_secs_f64(1.0 / MAX_RATE_PER_SECOND), slowest);
        let burst = std::num::NonZeroU32::new(settings.burst).unwrap_or(std::num::NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .expect("the period is at least a microsecond")
            .allow_burst(burst);
        Self {
            limiter: RateLimiter::new(
                quota,
                BoundedClientStore::new(settings.max_tracked_ips),
                DefaultClock::default(),
            ),
            trusted_proxies: settings.trusted_proxies.clone(),
            ipv6_prefix: settings.ipv6_prefix,
        }
    }

    /// The bucket key of a client at `ip`.
    pub fn key(&self, ip: IpAddr) -> ClientKey {
        ClientKey::of(ip, self.ipv6_prefix)
    }

    /// Takes one request from the bucket of the client at `ip`, or says how long until one is
    /// available.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&self.key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Drops buckets that are full again (indistinguishable from new ones).
    pub fn prune(&self) {
        self.limiter.retain_recent();
    }

    /// How many clients have their own bucket right now.
    pub fn tracked_ips(&self) -> usize {
        self.limiter.len()
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }

    /// The client's IP: the peer's, unless the peer is a trusted proxy; then the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> IpAddr {
        let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), canonical);
        if !self.is_trusted(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else { return peer };
        let mut client = peer;
        for entry in header.rsplit(',') {
            let Some(ip) = forwarded_address(entry).map(canonical) else {
                // An unparsable hop cannot be attributed; stop at the last trustworthy one.
                return client;
            };
            client = ip;
            if !self.is_trusted(ip) {
                return ip;
            }
        }
        client
    }
}

/// The address of one `X-Forwarded-For` entry: `203.0.113.7`, `2001:db8::1`, or the same with a
/// port as some proxies write it (`203.0.113.7:51234`, `[2001:db8::1]:443`, `[2001:db8::1]`).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(bracketed) = entry.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return port_ok
            .then(|| inside.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
            .flatten();
    }
    let (address, port) = entry.split_once(':')?;
    is_port(port)
        .then(|| address.parse::<Ipv4Addr>().ok().map(IpAddr::V4))
        .flatten()
}

fn is_port(text: &str) -> bool {
    text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_second: f64, burst: u32, max_tracked_ips: usize, trusted: &[&str]) -> RateLimitSettings {
        RateLimitSettings {
            enabled: true,
            per_second,
            burst,
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            max_tracked_ips,
            prune_interval: Duration::from_secs(60),
            ipv6_prefix: 64,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allows_the_burst_then_refuses_with_a_wait() {
        // One request a minute: no pause of a loaded machine refills the bucket during the test.
        let limiter = ClientIpLimiter::new(&settings(1.0 / 60.0, 3, 100, &[]));
        for _ in 0..3 {
            assert!(limiter.check(ip("192.0.2.1")).is_ok());
        }
        let wait = limiter.check(ip("192.0.2.1")).unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(
            limiter.check(ip("192.0.2.2")).is_ok(),
            "other clients keep their own bucket"
        );
    }

    #[test]
    fn ipv6_clients_share_one_bucket_per_prefix() {
        let limiter = ClientIpLimiter::new(&settings(1.0 / 60.0, 2, 1000, &[]));
        let in_one_64 =
            |i: u64| IpAddr::V6(Ipv6Addr::from((0x2001_0db8_0000_0001u128 << 64) | u128::from(i)));
        let outcomes: Vec<bool> = (0..100_000)
            .map(|i| limiter.check(in_one_64(i)).is_ok())
            .collect();
        assert_eq!(
            limiter.tracked_ips(),
            1,
            "100 000 addresses of one /64 cost one bucket"
        );
        assert_eq!(
            outcomes.iter().filter(|ok| **ok).count(),
            2,
            "and share its burst"
        );
        assert!(
            limiter.check(ip("2001:db8:0:2::1")).is_ok(),
            "the next /64 is another client"
        );
        assert_eq!(
            limiter.key(ip("2001:db8::1")),
            limiter.key(ip("2001:db8::ffff:1"))
        );
        assert_ne!(
            limiter.key(ip("10.0.0.1")),
            limiter.key(ip("10.0.0.2")),
            "IPv4 is per address"
        );
        assert_eq!(limiter.key(ip("::ffff:10.0.0.1")), limiter.key(ip("10.0.0.1")));
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_seen_client_instead_of_pooling_newcomers() {
        let limiter = ClientIpLimiter::new(&settings(1.0 / 60.0, 1, 10, &[]));
        for i in 0..10u8 {
            assert!(limiter.check(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i))).is_ok());
        }
        // The oldest client comes back: it is seen again and stays limited.
        assert!(limiter.check(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0))).is_err());
        // Every newcomer past the cap gets its own fresh bucket.
        for i in 0..50u8 {
            assert!(
                limiter.check(IpAddr::V4(Ipv4Addr::new(203, 0, 113, i))).is_ok(),
                "newcomer {i} is served"
            );
        }
        assert_eq!(limiter.tracked_ips(), 10, "memory stays bounded");
    }

    #[test]
    fn pruning_forgets_clients_whose_bucket_is_full_again() {
        let limiter = ClientIpLimiter::new(&settings(1_000_000.0, 1, 100, &[]));
        assert!(limiter.check(ip("192.0.2.1")).is_ok());
        assert_eq!(limiter.tracked_ips(), 1);
        // At a million per second the bucket is full again a microsecond later.
        std::thread::sleep(Duration::from_millis(5));
        limiter.prune();
        assert_eq!(limiter.tracked_ips(), 0);
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let limiter = ClientIpLimiter::new(&settings(1.0, 1, 10, &["10.0.0.0/8"]));
        assert_eq!(
            limiter.client_ip(Some(ip("192.0.2.7")), Some("1.2.3.4")),
            ip("192.0.2.7")
        );
    }

    #[test]
    fn forwarded_for_from_a_trusted_proxy_gives_the_right_most_untrusted_address() {
        let limiter = ClientIpLimiter::new(&settings(1.0, 1, 10, &["10.0.0.0/8"]));
        let peer = Some(ip("10.0.0.2"));
        assert_eq!(
            limiter.client_ip(peer, Some("6.6.6.6, 1.2.3.4, 10.0.0.9")),
            ip("1.2.3.4")
        );
        assert_eq!(limiter.client_ip(peer, Some("10.1.1.1")), ip("10.1.1.1"));
        assert_eq!(limiter.client_ip(peer, None), ip("10.0.0.2"));
        assert_eq!(limiter.client_ip(peer, Some("garbage, 1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(limiter.client_ip(peer, Some("1.2.3.4, garbage")), ip("10.0.0.2"));
        assert_eq!(
            limiter.client_ip(Some(ip("::ffff:10.0.0.2")), Some("2001:db8::1")),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn forwarded_for_entries_with_ports_name_the_client_not_the_proxy() {
        let limiter = ClientIpLimiter::new(&settings(1.0, 1, 10, &["10.0.0.0/8"]));
        let peer = Some(ip("10.0.0.2"));
        for (header, client) in [
            ("203.0.113.7:51234", "203.0.113.7"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("198.51.100.1, 203.0.113.7:8080, 10.0.0.9:443", "203.0.113.7"),
        ] {
            assert_eq!(limiter.client_ip(peer, Some(header)), ip(client), "{header}");
        }
        for unattributable in ["203.0.113.7:99999", "[2001:db8::1]x", "2001:db8::1]:443", "a:1"] {
            assert_eq!(
                limiter.client_ip(peer, Some(unattributable)),
                ip("10.0.0.2"),
                "{unattributable}"
            );
        }
    }
}
