//! Per-client rate limiting with GCRA (the generic cell rate algorithm), applied to every
//! request by the router before it is dispatched.
//!
//! Each (client, bucket) pair keeps one number, its *theoretical arrival time* (TAT). With
//! an emission interval `T = 60 s / requests_per_minute` and a burst `B`, a request at time
//! `now` is allowed when `max(TAT, now) + T - now <= B * T`; the TAT then moves to
//! `max(TAT, now) + T`. A fresh client can therefore send `B` requests at once and then one
//! every `T`. A client whose TAT is in the past is indistinguishable from a fresh one, so
//! its entry is dropped by pruning: memory follows the clients active in the last `B * T`,
//! and is capped by `max_clients` in any case.
//!
//! Clients are identified by the hash of their API key when they present one of
//! `server.api_keys` (an unknown key cannot buy a fresh bucket), else by peer IP (IPv6 by
//! its /64). Time comes from a [`Clock`], so tests control it instead of sleeping.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderValue};
use modelgate_config::{RateLimitSettings, Secret};
use modelgate_types::ErrorCode;
use serde_json::json;

use crate::auth::constant_time_eq;
use crate::error::ApiError;

const SHARDS: usize = 16;
/// A shard is swept for idle entries once it holds this many (then twice what survived).
const MIN_PRUNE_AT: usize = 256;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A monotonic time source, in nanoseconds since an arbitrary origin.
pub trait Clock: Send + Sync + Debug {
    fn now_nanos(&self) -> u64;
}

/// The real monotonic clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

/// One limit: emission interval and burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quota {
    interval: u64,
    burst: u32,
}

impl Quota {
    fn new(requests_per_minute: u32, burst: u32) -> Quota {
        Quota {
            interval: (60 * NANOS_PER_SEC) / u64::from(requests_per_minute.max(1)),
            burst: burst.max(1),
        }
    }

    fn tolerance(&self) -> u64 {
        self.interval.saturating_mul(u64::from(self.burst))
    }
}

/// A bucket: the default one (`prefix` empty) or a configured route prefix.
#[derive(Debug)]
struct Bucket {
    /// Label for metrics and error details: `default` or the configured prefix.
    name: Arc<str>,
    segments: Vec<String>,
    quota: Quota,
}

#[derive(Debug)]
struct Config {
    enabled: bool,
    /// Index 0 is the default bucket; route buckets follow, longest prefix first.
    buckets: Vec<Bucket>,
    shard_cap: usize,
}

impl Config {
    fn from_settings(s: &RateLimitSettings) -> Config {
        let mut routes: Vec<Bucket> = s
            .routes
            .iter()
            .map(|(prefix, r)| Bucket {
                name: Arc::from(prefix.as_str()),
                segments: split(prefix),
                quota: Quota::new(r.requests_per_minute, r.burst),
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.segments.len()));
        let mut buckets = vec![Bucket {
            name: Arc::from("default"),
            segments: Vec::new(),
            quota: Quota::new(s.requests_per_minute, s.burst),
        }];
        buckets.extend(routes);
        Config {
            enabled: s.enabled,
            buckets,
            shard_cap: (s.max_clients / SHARDS).max(1),
        }
    }

    /// The bucket a path is charged to: the longest matching route prefix, else default.
    fn bucket_for(&self, path: &str) -> usize {
        let segs = split(path);
        self.buckets
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, b)| segs.len() >= b.segments.len() && segs.starts_with(&b.segments))
            .map_or(0, |(i, _)| i)
    }
}

/// Path segments, percent-decoded, empty ones dropped (as the router splits paths), so
/// an encoded path cannot slip past a route override.
fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// Hash of a recognised API key (the key itself is never stored).
    Key(u64),
    /// Peer IP; IPv6 peers are grouped by /64.
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    client: ClientId,
    bucket: usize,
}

#[derive(Debug, Default)]
struct Shard {
    tat: HashMap<Key, u64>,
    prune_at: usize,
}

/// The outcome of [`RateLimiter::check`], rendered into headers (and a 429).
#[derive(Debug, Clone)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket's burst: the most requests that can be sent at once.
    pub limit: u32,
    pub remaining: u32,
    /// Unix time (seconds) when the bucket is full again.
    pub reset_unix: u64,
    /// Seconds until one more request is allowed (0 when allowed).
    pub retry_after: u64,
    /// `default` or the configured route prefix.
    pub bucket: Arc<str>,
    requests_per_minute: u64,
}

impl Decision {
    /// Adds `X-RateLimit-Limit`, `-Remaining` and `-Reset` to a response.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset_unix));
    }

    /// The 429 for a refused request (its `Retry-After` equals the body's `retry_after`).
    pub fn error(&self) -> ApiError {
        ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "Rate limit exceeded. Try again in {} second{}.",
                self.retry_after,
                if self.retry_after == 1 { "" } else { "s" }
            ),
        )
        .with_retry_after(self.retry_after)
        .with_details(json!({
            "bucket": &*self.bucket,
            "requests_per_minute": self.requests_per_minute,
            "burst": self.limit,
        }))
    }
}

/// The limiter: sharded maps of theoretical arrival times, reconfigurable on reload.
#[derive(Debug)]
pub struct RateLimiter {
    config: ArcSwap<Config>,
    clock: Arc<dyn Clock>,
    /// Unix time in nanoseconds at the clock's origin.
    wall_origin: u64,
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

impl RateLimiter {
    pub fn new(settings: &RateLimitSettings) -> RateLimiter {
        RateLimiter::with_clock(settings, Arc::new(SystemClock::default()))
    }

    /// A limiter reading time from `clock`.
    pub fn with_clock(settings: &RateLimitSettings, clock: Arc<dyn Clock>) -> RateLimiter {
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        RateLimiter {
            config: ArcSwap::from_pointee(Config::from_settings(settings)),
            wall_origin: unix_now.saturating_sub(clock.now_nanos()),
            clock,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Applies new settings. Tracked state is dropped when the limits change (every
    /// client starts with a full bucket again).
    pub fn reconfigure(&self, settings: &RateLimitSettings) {
        let new = Config::from_settings(settings);
        let old = self.config.load();
        let same = old.enabled == new.enabled
            && old.shard_cap == new.shard_cap
            && old.buckets.len() == new.buckets.len()
            && old
                .buckets
                .iter()
                .zip(&new.buckets)
                .all(|(a, b)| a.name == b.name && a.quota == b.quota);
        if same {
            return;
        }
        self.config.store(Arc::new(new));
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(PoisonError::into_inner);
            s.tat.clear();
            s.prune_at = 0;
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.load().enabled
    }

    /// Identifies the client: a recognised API key (bearer or `x-api-key`), else the IP.
    pub fn client_id(&self, peer: IpAddr, headers: &HeaderMap, api_keys: &[Secret]) -> ClientId {
        if let Some(given) = presented_key(headers) {
            if api_keys
                .iter()
                .any(|k| constant_time_eq(k.expose().as_bytes(), given.as_bytes()))
            {
                return ClientId::Key(self.hasher.hash_one(given));
            }
        }
        ClientId::Ip(match peer {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut o = v6.octets();
                    o[8..].fill(0);
                    IpAddr::V6(o.into())
                }
            },
            v4 => v4,
        })
    }

    /// Charges one request of `client` to `path`'s bucket. `None` when limiting is off.
    pub fn check(&self, client: ClientId, path: &str) -> Option<Decision> {
        let config = self.config.load();
        if !config.enabled {
            return None;
        }
        let bucket_idx = config.bucket_for(path);
        let bucket = config.buckets.get(bucket_idx)?;
        let quota = bucket.quota;
        let key = Key {
            client,
            bucket: bucket_idx,
        };
        let shard_idx = (self.hasher.hash_one(key) as usize) % SHARDS;
        let mut shard = self.shards[shard_idx]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_nanos();
        let tolerance = quota.tolerance();
        let tat = shard.tat.get(&key).copied().unwrap_or(now).max(now);
        let next = tat.saturating_add(quota.interval);
        let mut decision = Decision {
            allowed: false,
            limit: quota.burst,
            remaining: 0,
            reset_unix: 0,
            retry_after: 0,
            bucket: bucket.name.clone(),
            requests_per_minute: (60 * NANOS_PER_SEC) / quota.interval.max(1),
        };
        if next - now <= tolerance {
            decision.allowed = true;
            let left = (now + tolerance - next) / quota.interval.max(1);
            decision.remaining = u32::try_from(left).unwrap_or(u32::MAX);
            decision.reset_unix = self.unix_secs_ceil(next);
            if !shard.tat.contains_key(&key) {
                make_room(&mut shard, now, config.shard_cap);
            }
            shard.tat.insert(key, next);
        } else {
            let wait = next - tolerance - now;
            decision.retry_after = wait.div_ceil(NANOS_PER_SEC).max(1);
            decision.reset_unix = self.unix_secs_ceil(tat);
        }
        Some(decision)
    }

    /// Clients (per bucket) currently tracked.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).tat.len())
            .sum()
    }

    fn unix_secs_ceil(&self, nanos: u64) -> u64 {
        self.wall_origin
            .saturating_add(nanos)
            .div_ceil(NANOS_PER_SEC)
    }
}

/// Before inserting a new client: sweeps idle entries when the shard has grown (amortised
/// O(1)), and when it is still full evicts the entry closest to idle, which only makes
/// that client's next request more lenient.
fn make_room(shard: &mut Shard, now: u64, cap: usize) {
    if shard.tat.len() >= shard.prune_at.max(MIN_PRUNE_AT).min(cap) {
        shard.tat.retain(|_, tat| *tat > now);
        shard.prune_at = (shard.tat.len() * 2).max(MIN_PRUNE_AT);
    }
    if shard.tat.len() >= cap {
        if let Some(k) = shard.tat.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k) {
            shard.tat.remove(&k);
        }
    }
}

/// Charges a request to its client's bucket (`None` when rate limiting is off).
pub fn admit(
    state: &crate::router::AppState,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    path: &str,
) -> Option<Decision> {
    let limiter = &state.ratelimit;
    if !limiter.enabled() {
        return None;
    }
    let settings = state.current_settings();
    let client = limiter.client_id(peer.ip(), headers, &settings.server.api_keys);
    limiter.check(client, path)
}

/// The API key a request presents, if any: `Authorization: Bearer` or `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some((scheme, token)) = v.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(token.trim());
            }
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use modelgate_config::RouteRateLimit;
    use std::net::Ipv4Addr;

    fn limiter(rpm: u32, burst: u32) -> (RateLimiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        let s = RateLimitSettings {
            requests_per_minute: rpm,
            burst,
            ..RateLimitSettings::default()
        };
        (RateLimiter::with_clock(&s, clock.clone()), clock)
    }

    fn ip(n: u32) -> ClientId {
        ClientId::Ip(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn burst_then_one_per_interval() {
        let (l, clock) = limiter(60, 5);
        for i in 0..5 {
            let d = l.check(ip(1), "/x").unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, 4 - i);
        }
        let d = l.check(ip(1), "/x").unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, 1);
        assert_eq!(d.remaining, 0);
        clock.advance(Duration::from_millis(999));
        assert!(!l.check(ip(1), "/x").unwrap().allowed);
        clock.advance(Duration::from_millis(1));
        let d = l.check(ip(1), "/x").unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        // another client is unaffected
        assert_eq!(l.check(ip(2), "/x").unwrap().remaining, 4);
        // after B * T idle the bucket is full again
        clock.advance(Duration::from_secs(5));
        assert_eq!(l.check(ip(1), "/x").unwrap().remaining, 4);
    }

    #[test]
    fn retry_after_and_reset_agree() {
        let (l, _clock) = limiter(1, 1);
        let ok = l.check(ip(1), "/").unwrap();
        assert!(ok.allowed);
        let no = l.check(ip(1), "/").unwrap();
        assert!(!no.allowed);
        assert_eq!(no.retry_after, 60);
        assert!(no.reset_unix >= ok.reset_unix);
    }

    #[test]
    fn route_overrides_use_longest_prefix_and_own_bucket() {
        let clock = Arc::new(ManualClock::default());
        let mut s = RateLimitSettings::default();
        s.routes.insert(
            "/api".into(),
            RouteRateLimit {
                requests_per_minute: 60,
                burst: 3,
            },
        );
        s.routes.insert(
            "/api/models/refresh".into(),
            RouteRateLimit {
                requests_per_minute: 60,
                burst: 1,
            },
        );
        let l = RateLimiter::with_clock(&s, clock);
        let d = l.check(ip(1), "/api/models/refresh").unwrap();
        assert_eq!((d.limit, &*d.bucket), (1, "/api/models/refresh"));
        assert!(!l.check(ip(1), "//api/models/%72efresh/").unwrap().allowed);
        assert_eq!(&*l.check(ip(1), "/api/models").unwrap().bucket, "/api");
        assert_eq!(&*l.check(ip(1), "/apix").unwrap().bucket, "default");
        assert_eq!(l.check(ip(1), "/health").unwrap().limit, 50);
    }

    #[test]
    fn idle_clients_are_pruned_and_memory_is_capped() {
        let clock = Arc::new(ManualClock::default());
        let s = RateLimitSettings {
            requests_per_minute: 600,
            burst: 2,
            max_clients: 1600,
            ..RateLimitSettings::default()
        };
        let l = RateLimiter::with_clock(&s, clock.clone());
        for round in 0..20u32 {
            for c in 0..1000u32 {
                assert!(l.check(ip(round * 1000 + c), "/").unwrap().allowed);
            }
            assert!(l.tracked() <= 1600, "{}", l.tracked());
            clock.advance(Duration::from_secs(1));
        }
        // Everyone went idle: the next sweep drops them.
        clock.advance(Duration::from_secs(60));
        for c in 0..(SHARDS as u32 * 300) {
            l.check(ip(1_000_000 + c), "/");
        }
        assert!(l.tracked() <= 1600);
    }

    #[test]
    fn only_recognised_keys_identify_a_client() {
        let (l, _) = limiter(60, 5);
        let keys = vec![Secret::new("sk-good-key-1")];
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer sk-good-key-1"),
        );
        assert!(matches!(l.client_id(peer, &h, &keys), ClientId::Key(_)));
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer sk-made-up"),
        );
        assert_eq!(l.client_id(peer, &h, &keys), ClientId::Ip(peer));
        let v6: IpAddr = "2001:db8::1:2".parse().unwrap();
        let v6b: IpAddr = "2001:db8::9:9".parse().unwrap();
        assert_eq!(l.client_id(v6, &h, &keys), l.client_id(v6b, &h, &keys));
    }

    #[test]
    fn disabled_means_no_decision() {
        let s = RateLimitSettings {
            enabled: false,
            ..RateLimitSettings::default()
        };
        let l = RateLimiter::new(&s);
        assert!(l.check(ip(1), "/").is_none());
    }
}
