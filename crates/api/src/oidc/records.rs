//! Bounded records of what may be used once: redeemed codes (until they expire) and rotated
//! refresh tokens. Entries leave when they expire; the memory never exceeds the capacity.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// What to do when the record is full of live entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse the new entry (codes: the redemption answers "try again").
    Refuse,
    /// Forget the oldest entry (refresh tokens: reuse detection covers the newest ones).
    ForgetOldest,
}

/// Why an entry was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRecorded {
    /// It is there already: a second use.
    AlreadyUsed,
    /// The record is full of live entries.
    Full,
}

struct Inner {
    expiries: HashMap<String, i64>,
    /// Keys in insertion order with their expiry, for pruning and eviction.
    order: VecDeque<(String, i64)>,
}

/// A bounded set of keys, each until its expiry (seconds since the epoch).
pub struct UseRecord {
    capacity: usize,
    when_full: WhenFull,
    inner: Mutex<Inner>,
}

impl UseRecord {
    /// An empty record of at most `capacity` entries.
    pub fn new(capacity: usize, when_full: WhenFull) -> Self {
        Self {
            capacity: capacity.max(1),
            when_full,
            inner: Mutex::new(Inner {
                expiries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `key` until `expires`, unless it is there already.
    pub fn record(&self, key: &str, expires: i64, now: i64) -> Result<(), NotRecorded> {
        let mut inner = self.lock();
        // Expiries are close to insertion order (one lifetime for all), so expired ones sit in front.
        while let Some((oldest, expiry)) = inner.order.front().cloned() {
            if expiry > now {
                break;
            }
            inner.order.pop_front();
            if inner.expiries.get(&oldest) == Some(&expiry) {
                inner.expiries.remove(&oldest);
            }
        }
        if inner.expiries.get(key).is_some_and(|expiry| *expiry > now) {
            return Err(NotRecorded::AlreadyUsed);
        }
        if inner.expiries.len() >= self.capacity {
            match self.when_full {
                WhenFull::Refuse => return Err(NotRecorded::Full),
                WhenFull::ForgetOldest => {
                    if let Some((oldest, _)) = inner.order.pop_front() {
                        inner.expiries.remove(&oldest);
                    }
                }
            }
        }
        inner.expiries.insert(key.to_owned(), expires);
        inner.order.push_back((key.to_owned(), expires));
        Ok(())
    }

    /// Whether `key` is recorded and not expired.
    pub fn contains(&self, key: &str, now: i64) -> bool {
        self.lock().expiries.get(key).is_some_and(|expiry| *expiry > now)
    }

    /// Live and expired-but-not-yet-pruned entries.
    pub fn len(&self) -> usize {
        self.lock().expiries.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_used_once_until_it_expires() {
        let record = UseRecord::new(10, WhenFull::Refuse);
        assert_eq!(record.record("a", 100, 0), Ok(()));
        assert_eq!(record.record("a", 100, 50), Err(NotRecorded::AlreadyUsed));
        assert!(record.contains("a", 99));
        assert!(!record.contains("a", 100));
        assert_eq!(record.record("a", 200, 100), Ok(()), "an expired entry is gone");
    }

    #[test]
    fn a_full_record_refuses_or_forgets_the_oldest_and_never_grows() {
        let refusing = UseRecord::new(3, WhenFull::Refuse);
        for key in ["a", "b", "c"] {
            refusing.record(key, 100, 0).unwrap();
        }
        assert_eq!(refusing.record("d", 100, 0), Err(NotRecorded::Full));
        assert_eq!(
            refusing.record("d", 200, 100),
            Ok(()),
            "expired entries make room"
        );
        assert_eq!(refusing.len(), 1);

        let forgetting = UseRecord::new(3, WhenFull::ForgetOldest);
        for (i, key) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            forgetting.record(key, 1000 + i as i64, 0).unwrap();
        }
        assert_eq!(forgetting.len(), 3);
        assert!(!forgetting.contains("a", 0) && !forgetting.contains("b", 0));
        assert!(forgetting.contains("e", 0));
    }
}
