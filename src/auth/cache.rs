//! A short-lived cache of verified keys, so a hot read path (catalogue lookups) does not pay a
//! database round trip per request. Revocation is immediate on the instance that revokes and
//! takes at most `ttl` on the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::Role;

#[derive(Debug, Clone)]
pub struct CachedKey {
    pub role: Role,
    pub tenant_id: Option<Uuid>,
    pub secret_hash: Vec<u8>,
    fetched: Instant,
}

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Uuid, CachedKey>>,
}

impl KeyCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: Mutex::new(HashMap::new()) }
    }

    /// The cached credentials of `id`, if fetched less than `ttl` ago.
    pub fn get(&self, id: Uuid) -> Option<CachedKey> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(&id).filter(|cached| cached.fetched.elapsed() < self.ttl).cloned()
    }

    pub fn put(&self, id: Uuid, role: Role, tenant_id: Option<Uuid>, secret_hash: Vec<u8>) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity {
            // Rare and cheap to rebuild: better than an eviction policy nobody needs.
            entries.clear();
        }
        entries.insert(id, CachedKey { role, tenant_id, secret_hash, fetched: Instant::now() });
    }

    pub fn forget(&self, id: Uuid) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_forgotten() {
        let cache = KeyCache::new(Duration::from_millis(0), 10);
        let id = Uuid::new_v4();
        cache.put(id, Role::Admin, None, vec![1]);
        assert!(cache.get(id).is_none(), "a zero ttl keeps nothing");
        let cache = KeyCache::new(Duration::from_secs(60), 10);
        cache.put(id, Role::Admin, None, vec![1]);
        assert_eq!(cache.get(id).map(|cached| cached.role), Some(Role::Admin));
        cache.forget(id);
        assert!(cache.get(id).is_none());
    }
}
