//! A bounded cache whose concurrent misses for one key share one load.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use tokio::sync::OnceCell;

/// Values are loaded at most once at a time per key; waiters share the
/// result. A failed load is not cached: the next caller tries again.
pub(crate) struct FlightCache<K, V> {
    map: RwLock<HashMap<K, Arc<OnceCell<V>>>>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> FlightCache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        FlightCache {
            map: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The cached value, if loaded.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(key).and_then(|c| c.get().cloned())
    }

    /// The cached value, or the result of `load` (run by one caller only).
    pub(crate) async fn get_or_load<Q, F, Fut, E>(&self, key: &Q, load: F) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        let cell = {
            let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
            match map.get(key) {
                Some(c) => c.clone(),
                None => {
                    if map.len() >= self.capacity {
                        evict(&mut map, self.capacity);
                    }
                    let c = Arc::new(OnceCell::new());
                    map.insert(key.to_owned(), c.clone());
                    c
                }
            }
        };
        cell.get_or_try_init(load).await.cloned()
    }

    /// Stores a value learned some other way (e.g. a register answer).
    pub(crate) fn insert(&self, key: K, value: V) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(&key) && map.len() >= self.capacity {
            evict(&mut map, self.capacity);
        }
        map.insert(key, Arc::new(OnceCell::new_with(Some(value))));
    }

    /// Drops entries whose key matches.
    pub(crate) fn remove_where(&self, mut pred: impl FnMut(&K) -> bool) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| !pred(k));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Makes room for one entry: first unloaded cells nobody waits on, then
/// arbitrary loaded ones (the map is a working set, not an LRU).
fn evict<K: Hash + Eq + Clone, V>(map: &mut HashMap<K, Arc<OnceCell<V>>>, capacity: usize) {
    map.retain(|_, c| c.initialized() || Arc::strong_count(c) > 1);
    while map.len() >= capacity {
        let Some(k) = map
            .iter()
            .find(|(_, c)| c.initialized())
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_misses_load_once() {
        let cache: Arc<FlightCache<String, u32>> = Arc::new(FlightCache::new(10));
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (cache, loads) = (cache.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load("k", || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failures_are_not_cached_and_capacity_holds() {
        let cache: FlightCache<u32, u32> = FlightCache::new(3);
        assert_eq!(
            cache
                .get_or_load(&1, || async { Err::<u32, _>("boom") })
                .await,
            Err("boom")
        );
        assert_eq!(
            cache.get_or_load(&1, || async { Ok::<_, &str>(1) }).await,
            Ok(1)
        );
        for k in 2..10 {
            cache
                .get_or_load(&k, || async move { Ok::<_, ()>(k) })
                .await
                .unwrap();
            assert!(cache.len() <= 3);
        }
        cache.insert(42, 43);
        assert_eq!(cache.get(&42), Some(43));
        cache.remove_where(|k| *k == 42);
        assert_eq!(cache.get(&42), None);
    }
}
