//! A short-lived cache of verified keys, so a hot read path (catalogue lookups) does not pay a
//! database round trip per request. Revocation is immediate on the instance that revokes and
//! takes at most `ttl` on the others.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::Role;

#[derive(Debug, Clone)]
pub struct CachedKey {
    pub role: Role,
    pub tenant_id: Option<Uuid>,
    /// Inline, so that handing a cached key to a request copies 32 bytes rather than touching a
    /// reference count that every request thread shares; `None` for a stored digest that is not
    /// 32 bytes long, which no key matches.
    pub secret_hash: Option<[u8; 32]>,
    fetched: Instant,
}

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    capacity: usize,
    /// Read on every authenticated request, written once per key and ttl: a read lock lets the
    /// request threads look up keys side by side.
    entries: RwLock<HashMap<Uuid, CachedKey>>,
}

impl KeyCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: RwLock::new(HashMap::new()) }
    }

    /// The cached credentials of `id`, if fetched less than `ttl` ago.
    pub fn get(&self, id: Uuid) -> Option<CachedKey> {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(&id).filter(|cached| cached.fetched.elapsed() < self.ttl).cloned()
    }

    pub fn put(&self, id: Uuid, role: Role, tenant_id: Option<Uuid>, secret_hash: Vec<u8>) {
        let secret_hash = <[u8; 32]>::try_from(secret_hash.as_slice()).ok();
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity {
            // Rare and cheap to rebuild: better than an eviction policy nobody needs.
            entries.clear();
        }
        entries.insert(id, CachedKey { role, tenant_id, secret_hash, fetched: Instant::now() });
    }

    pub fn forget(&self, id: Uuid) {
        self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
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
