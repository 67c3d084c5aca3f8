//! [`MemoryStore`]: sessions in this process's memory (tests, single-process servers).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rgi::BoxFuture;

use super::{invalid_id, valid_id, Changes, SessionData, SessionStore, StoreError};

/// Expired records are swept on every this-many saves.
const SWEEP_EVERY: u64 = 256;

/// Sessions in memory, lost on restart and not shared between processes. Cloning shares the map.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, (Instant, SessionData)>,
    saves: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// How many records are held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// No records?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Each change is one map operation: a poisoned lock still holds a consistent map.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn load_now(&self, id: &str) -> Result<Option<SessionData>, StoreError> {
        if !valid_id(id) {
            return Err(invalid_id());
        }
        let inner = self.lock();
        Ok(inner
            .records
            .get(id)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, data)| data.clone()))
    }

    fn save_now(&self, id: &str, changes: &Changes, ttl: Duration) -> Result<(), StoreError> {
        if !valid_id(id) {
            return Err(invalid_id());
        }
        let now = Instant::now();
        let mut inner = self.lock();
        inner.saves += 1;
        if inner.saves % SWEEP_EVERY == 0 {
            inner.records.retain(|_, (expires, _)| *expires > now);
        }
        let record = inner
            .records
            .entry(id.to_owned())
            .or_insert_with(|| (now, SessionData::new()));
        if record.0 <= now {
            record.1.clear();
        }
        changes.apply_to(&mut record.1);
        record.0 = now + ttl;
        Ok(())
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.len())
            .finish()
    }
}

impl SessionStore for MemoryStore {
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(std::future::ready(self.load_now(id)))
    }

    fn save<'a>(
        &'a self,
        id: &'a str,
        changes: &'a Changes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::ready(self.save_now(id, changes, ttl)))
    }

    fn destroy<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.lock().records.remove(id);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_conforms() {
        super::super::conformance::run(&MemoryStore::new()).await;
    }
}
