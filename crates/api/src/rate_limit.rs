//! Per-client-IP token buckets (governor's GCRA) with bounded memory, and the client-IP rule
//! (`X-Forwarded-For` believed only from trusted proxies).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::settings::{IpNetwork, MAX_RATE_PER_SECOND, MIN_RATE_PER_SECOND, RateLimitSettings, canonical};

/// A keyed state store that tracks at most `capacity` client IPs. Once full, IPs it does not
/// know yet share one overflow bucket until pruning frees room: memory stays bounded even when
/// a flood comes from ever new addresses, and that flood only throttles itself.
pub struct BoundedIpStore {
    capacity: usize,
    inner: Mutex<StoreInner>,
}

#[derive(Default)]
struct StoreInner {
    buckets: HashMap<IpAddr, Nanos>,
    overflow: Option<Nanos>,
}

impl BoundedIpStore {
    /// An empty store that tracks at most `capacity` IPs.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(StoreInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoreInner> {
        // A panic while holding the lock leaves plain numbers behind; they are still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl StateStore for BoundedIpStore {
    type Key = IpAddr;

    fn measure_and_replace<T, F, E>(&self, key: &Self::Key, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut inner = self.lock();
        let tracked = inner.buckets.contains_key(key) || inner.buckets.len() < self.capacity;
        let previous = if tracked {
            inner.buckets.get(key).copied()
        } else {
            inner.overflow
        };
        let (outcome, next) = f(previous)?;
        if tracked {
            inner.buckets.insert(*key, next);
        } else {
            inner.overflow = Some(next);
        }
        Ok(outcome)
    }
}

impl ShrinkableKeyedStateStore<IpAddr> for BoundedIpStore {
    fn retain_recent(&self, drop_below: Nanos) {
        let mut inner = self.lock();
        inner.buckets.retain(|_, tat| *tat > drop_below);
        if inner.overflow.is_some_and(|tat| tat <= drop_below) {
            inner.overflow = None;
        }
    }

    fn shrink_to_fit(&self) {
        self.lock().buckets.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.lock().buckets.len()
    }

    fn is_empty(&self) -> bool {
        self.lock().buckets.is_empty()
    }
}

/// The per-client-IP limiter and the rule that finds the client IP.
pub struct ClientIpLimiter {
    limiter: RateLimiter<IpAddr, BoundedIpStore, DefaultClock>,
    trusted_proxies: Vec<IpNetwork>,
}

impl ClientIpLimiter {
    /// A limiter of `settings.per_second` requests per second (fractions allowed) with bursts of
    /// `settings.burst`. Out-of-range values, which validation rejects, are clamped.
    pub fn new(settings: &RateLimitSettings) -> Self {
        let slowest = Duration::from_secs_f64(1.0 / MIN_RATE_PER_SECOND);
        let period = Duration::try_from_secs_f64(1.0 / settings.per_second)
            .unwrap_or(slowest)
            .clamp(Duration::from_secs_f64(1.0 / MAX_RATE_PER_SECOND), slowest);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .expect("the period is at least a microsecond")
            .allow_burst(burst);
        Self {
            limiter: RateLimiter::new(
                quota,
                BoundedIpStore::new(settings.max_tracked_ips),
                DefaultClock::default(),
            ),
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    /// Takes one request from `client`'s bucket, or says how long until one is available.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&canonical(client))
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Drops buckets that are full again (indistinguishable from new ones) and frees memory.
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many client IPs have their own bucket right now.
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
            let Ok(ip) = entry.trim().parse::<IpAddr>().map(canonical) else {
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
    fn tracked_ips_never_exceed_the_cap_and_newcomers_share_the_overflow_bucket() {
        let limiter = ClientIpLimiter::new(&settings(1.0 / 60.0, 2, 10, &[]));
        for i in 0..10u8 {
            assert!(limiter.check(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i))).is_ok());
        }
        assert_eq!(limiter.tracked_ips(), 10);
        // Newcomers past the cap: two pass (the overflow bucket's burst), the rest wait.
        let outcomes: Vec<bool> = (0..5u8)
            .map(|i| limiter.check(IpAddr::V4(Ipv4Addr::new(203, 0, 113, i))).is_ok())
            .collect();
        assert_eq!(outcomes, [true, true, false, false, false]);
        assert_eq!(limiter.tracked_ips(), 10);
        // Known clients are unaffected by the overflow.
        assert!(limiter.check(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0))).is_ok());
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
}
