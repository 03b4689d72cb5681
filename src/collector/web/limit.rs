//! Sign-in attempts rate-limited per account and per address: the pure
//! counting of failed attempts in a sliding window (the clock is passed in).
//! The map is bounded: when full, the stalest keys are dropped, so a flood of
//! made-up names cannot grow it without end.
//!
//! The same failures are also counted in the database ([`shared_keys`],
//! [`shared_blocked`]; migration 0015), so that collectors sharing it
//! (replicas behind one address) enforce one limit between them: the
//! in-memory count answers first and spares the database a flood.

use crate::collector::devices::token_hash;
use std::collections::{HashMap, VecDeque};

/// How many failures a key may have in `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max_failures: usize,
    pub window_ms: i64,
}

/// Failures per account and per address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub account: Limit,
    pub address: Limit,
}

impl Default for Limits {
    /// 5 failures per account and 20 per address in 15 minutes.
    fn default() -> Self {
        Limits {
            account: Limit {
                max_failures: 5,
                window_ms: 15 * 60_000,
            },
            address: Limit {
                max_failures: 20,
                window_ms: 15 * 60_000,
            },
        }
    }
}

/// Most keys kept (accounts and addresses together).
pub const MAX_KEYS: usize = 100_000;

/// Recent failures by key (`a:NAME` for accounts, `ip:ADDR` for addresses).
#[derive(Debug, Default)]
pub struct Attempts {
    failures: HashMap<String, VecDeque<i64>>,
}

fn key_of(account: &str, address: &str) -> [String; 2] {
    [
        format!("a:{}", account.trim().to_lowercase()),
        format!("ip:{address}"),
    ]
}

/// The keys a sign-in is counted under in the database, with their
/// windows: the SHA-256 (hex) of the account's and the address's keys.
pub fn shared_keys(l: &Limits, account: &str, address: &str) -> [(String, i64); 2] {
    let [a, ip] = key_of(account, address);
    [
        (token_hash(&a), l.account.window_ms),
        (token_hash(&ip), l.address.window_ms),
    ]
}

/// Whether the database's counts (`(key, failures, since_ms)` rows of
/// [`shared_keys`]) refuse a sign-in at `now_ms`: a key with its limit of
/// failures in a window not yet ended.
pub fn shared_blocked(
    l: &Limits,
    keys: &[(String, i64); 2],
    rows: &[(String, i64, i64)],
    now_ms: i64,
) -> bool {
    keys.iter()
        .zip([l.account.max_failures, l.address.max_failures])
        .any(|((key, window), max)| {
            rows.iter().any(|(k, failures, since)| {
                k == key && *failures >= max as i64 && now_ms < since.saturating_add(*window)
            })
        })
}

impl Attempts {
    fn recent(&mut self, key: &str, now_ms: i64, window_ms: i64) -> usize {
        let Some(q) = self.failures.get_mut(key) else {
            return 0;
        };
        while q.front().is_some_and(|t| *t <= now_ms - window_ms) {
            q.pop_front();
        }
        if q.is_empty() {
            self.failures.remove(key);
            return 0;
        }
        q.len()
    }

    /// May `account` sign in from `address` at `now_ms`?
    pub fn allowed(&mut self, l: &Limits, account: &str, address: &str, now_ms: i64) -> bool {
        let [a, ip] = key_of(account, address);
        self.recent(&a, now_ms, l.account.window_ms) < l.account.max_failures
            && self.recent(&ip, now_ms, l.address.window_ms) < l.address.max_failures
    }

    /// Count a failed attempt.
    pub fn failed(&mut self, l: &Limits, account: &str, address: &str, now_ms: i64) {
        if self.failures.len() >= MAX_KEYS {
            let window = l.account.window_ms.max(l.address.window_ms);
            self.failures
                .retain(|_, q| q.back().is_some_and(|t| *t > now_ms - window));
            // Made-up account names flooding in must not reset the limit of
            // the address sending them: accounts go first.
            if self.failures.len() >= MAX_KEYS {
                self.failures.retain(|k, _| k.starts_with("ip:"));
            }
            if self.failures.len() >= MAX_KEYS {
                self.failures.clear();
            }
        }
        for (key, limit) in key_of(account, address)
            .into_iter()
            .zip([l.account, l.address])
        {
            let q = self.failures.entry(key).or_default();
            q.push_back(now_ms);
            while q.len() > limit.max_failures {
                q.pop_front();
            }
        }
    }

    /// Forget an account's failures (after it signed in).
    pub fn succeeded(&mut self, account: &str) {
        let [a, _] = key_of(account, "");
        self.failures.remove(&a);
    }

    pub fn len(&self) -> usize {
        self.failures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_addresses_are_limited_in_a_sliding_window() {
        let l = Limits::default();
        let mut a = Attempts::default();
        let t0 = 1_000_000;
        for i in 0..5 {
            assert!(a.allowed(&l, "Rahim", "10.0.0.1", t0 + i));
            a.failed(&l, "rahim", "10.0.0.1", t0 + i);
        }
        // The account is locked from any address, any case.
        assert!(!a.allowed(&l, "RAHIM", "10.0.0.2", t0 + 10));
        // Another account from the same address is not (yet).
        assert!(a.allowed(&l, "karim", "10.0.0.1", t0 + 10));
        // The window slides.
        assert!(a.allowed(&l, "rahim", "10.0.0.2", t0 + 15 * 60_000 + 5));
        // An address spraying many accounts is stopped at 20.
        let mut b = Attempts::default();
        for i in 0..20 {
            assert!(b.allowed(&l, &format!("u{i}"), "10.0.0.9", t0));
            b.failed(&l, &format!("u{i}"), "10.0.0.9", t0);
        }
        assert!(!b.allowed(&l, "fresh", "10.0.0.9", t0 + 1));
        assert!(b.allowed(&l, "fresh", "10.0.0.8", t0 + 1));
        b.succeeded("u1");
        assert!(!b.allowed(&l, "u1", "10.0.0.9", t0 + 1));
    }

    #[test]
    fn shared_counts_block_at_the_limit_within_the_window() {
        let l = Limits::default();
        let keys = shared_keys(&l, " Rahim ", "10.0.0.1");
        assert_eq!(keys, shared_keys(&l, "rahim", "10.0.0.1"), "names as typed");
        assert_ne!(keys[0].0, keys[1].0);
        assert_eq!(keys[0].0.len(), 64);
        assert!(!keys[0].0.contains("rahim"), "hashed, not kept in clear");
        let t0 = 1_000_000;
        let row = |k: usize, n: i64| (keys[k].0.clone(), n, t0);
        assert!(!shared_blocked(&l, &keys, &[], t0));
        assert!(!shared_blocked(&l, &keys, &[row(0, 4)], t0 + 1));
        assert!(shared_blocked(&l, &keys, &[row(0, 5)], t0 + 1));
        // The window ends 15 minutes after its first failure.
        assert!(shared_blocked(
            &l,
            &keys,
            &[row(0, 5)],
            t0 + 15 * 60_000 - 1
        ));
        assert!(!shared_blocked(&l, &keys, &[row(0, 5)], t0 + 15 * 60_000));
        // The address: 20.
        assert!(!shared_blocked(&l, &keys, &[row(1, 19)], t0 + 1));
        assert!(shared_blocked(&l, &keys, &[row(1, 20)], t0 + 1));
        // Another account's row does not count.
        let other = shared_keys(&l, "karim", "10.0.0.2");
        assert!(!shared_blocked(&l, &other, &[row(0, 9)], t0 + 1));
    }

    #[test]
    fn the_map_stays_bounded() {
        let l = Limits::default();
        let mut a = Attempts::default();
        for i in 0..(MAX_KEYS + 10) {
            a.failed(&l, &format!("n{i}"), "10.0.0.1", i as i64);
        }
        assert!(a.len() <= MAX_KEYS);
        // The flooding address is still counted (and locked).
        assert!(!a.allowed(&l, "anyone", "10.0.0.1", MAX_KEYS as i64 + 20));
    }
}
