//! The ingest's token cache: which device a token hash belongs to, kept
//! for [`TTL`] after a lookup, so an upload is authenticated (and a flood of
//! uploads with one token is refused) without a database round trip. Only
//! devices that were not revoked are kept; unknown tokens never are (a
//! flood of made-up tokens cannot fill it). A cached answer may be stale:
//! the write transaction checks the token again
//! ([`crate::collector::store::Store::ingest_authenticated`]), and a refusal
//! drops the entry, so a revoked or replaced token stores nothing from the
//! moment its change commits.

use crate::collector::model::Device;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a lookup is reused: longer than the agents' default upload
/// interval (5 min), so a device's next upload finds it.
pub const TTL: Duration = Duration::from_secs(10 * 60);

/// Most entries; past it, expired ones go, then all (a fleet larger than
/// this looks its tokens up more often, never wrongly).
pub const MAX_ENTRIES: usize = 120_000;

pub struct TokenCache {
    map: Mutex<HashMap<String, (Device, Instant)>>,
    ttl: Duration,
    max: usize,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(TTL, MAX_ENTRIES)
    }
}

impl TokenCache {
    pub fn new(ttl: Duration, max: usize) -> TokenCache {
        TokenCache {
            map: Mutex::new(HashMap::new()),
            ttl,
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Device, Instant)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device of `hash` as looked up less than the TTL before `now`.
    pub fn get(&self, hash: &str, now: Instant) -> Option<Device> {
        let map = self.lock();
        let (device, at) = map.get(hash)?;
        (now.saturating_duration_since(*at) < self.ttl).then(|| device.clone())
    }

    /// Keep what a lookup at `now` found (revoked devices are not kept).
    pub fn put(&self, hash: &str, device: &Device, now: Instant) {
        if device.revoked {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.max && !map.contains_key(hash) {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(hash.to_string(), (device.clone(), now));
    }

    /// Forget `hash` (its upload was refused on what the cache said).
    pub fn forget(&self, hash: &str) {
        self.lock().remove(hash);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: i64, revoked: bool) -> Device {
        Device {
            id,
            name: format!("gw{id}"),
            office: None,
            revoked,
            acked: 0,
            created_at_ms: 0,
            seen: Default::default(),
        }
    }

    #[test]
    fn a_lookup_is_reused_until_the_ttl_and_no_longer() {
        let c = TokenCache::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        assert!(c.get("a", t0).is_none());
        c.put("a", &device(1, false), t0);
        assert_eq!(c.get("a", t0 + Duration::from_secs(59)).unwrap().id, 1);
        assert!(c.get("a", t0 + Duration::from_secs(60)).is_none());
        c.forget("a");
        assert!(c.get("a", t0).is_none());
    }

    #[test]
    fn revoked_devices_are_not_kept() {
        let c = TokenCache::new(Duration::from_secs(60), 10);
        c.put("r", &device(1, true), Instant::now());
        assert!(c.is_empty());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_everything() {
        let c = TokenCache::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        c.put("old", &device(1, false), t0);
        let t1 = t0 + Duration::from_secs(61);
        c.put("b", &device(2, false), t1);
        c.put("c", &device(3, false), t1);
        // Full: the expired entry makes room.
        c.put("d", &device(4, false), t1);
        assert_eq!(c.len(), 3);
        assert!(c.get("old", t0).is_none());
        // Full of live entries: all go, the new one stays.
        c.put("e", &device(5, false), t1);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("e", t1).unwrap().id, 5);
        // Refreshing an entry already there never empties the cache.
        c.put("f", &device(6, false), t1);
        c.put("g", &device(7, false), t1);
        c.put("g", &device(7, false), t1);
        assert_eq!(c.len(), 3);
    }
}
