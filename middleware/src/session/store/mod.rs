//! Server-side session stores behind one trait, [`SessionStore`].
//!
//! With a store, the cookie holds only a sealed random id (256 bits from the operating system's
//! CSPRNG); the values live in the store, under a time-to-live.
//!
//! | store | shared by | survives a restart | feature |
//! |---|---|---|---|
//! | [`MemoryStore`] | one process | no | — |
//! | [`FileStore`] | the processes of one machine | yes | — |
//! | `SqliteStore` | the processes of one machine | yes | `sqlite` |
//! | `RedisStore` | many machines | as Redis is configured | `redis` |
//!
//! # Concurrency: last writer wins, per key
//!
//! A request saves only the keys it changed ([`Changes`]); every store merges them into the current
//! record atomically (a lock, a transaction, or Redis' own per-field commands). So two concurrent
//! requests of one user that write different keys both keep their writes; when both write the same
//! key, the one saved last wins. (Cookie sessions cannot merge: there the whole session of the last
//! response wins.)

mod file;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use rgi::{BoxError, BoxFuture};

pub use self::file::FileStore;
pub use self::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteStore;

use super::handle::SessionData;

/// What one request changed in a session: the keys to set and the keys to remove.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Keys set (or overwritten), with their new values.
    pub set: SessionData,
    /// Keys removed.
    pub removed: BTreeSet<String>,
}

impl Changes {
    /// Apply these changes to `data`.
    pub fn apply_to(&self, data: &mut SessionData) {
        for key in &self.removed {
            data.remove(key);
        }
        data.extend(self.set.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// A store could not be reached or answered nonsense.
#[derive(Debug)]
pub struct StoreError(BoxError);

impl StoreError {
    /// Wrap any error.
    pub fn new(error: impl Into<BoxError>) -> StoreError {
        StoreError(error.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session store: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A server-side home for session values; see the [module docs](self).
///
/// Ids reaching a store were made by the session layer (URL-safe base64, 43 characters) and came
/// back inside an authenticated cookie, but stores still refuse ids of any other shape.
pub trait SessionStore: Send + Sync + 'static {
    /// The values of session `id`; `None` when unknown or expired.
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>>;

    /// Merge `changes` into session `id` (creating it when missing) and make it expire `ttl` from
    /// now. Atomic with respect to other saves of the same id, in every process sharing the store.
    fn save<'a>(
        &'a self,
        id: &'a str,
        changes: &'a Changes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Delete session `id` (logout, or the old id after regeneration).
    fn destroy<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Is `id` a session id as the layer makes them (URL-safe base64 characters, sane length)? Stores
/// check before using one as a file name or key.
pub(crate) fn valid_id(id: &str) -> bool {
    (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn invalid_id() -> StoreError {
    StoreError::new("malformed session id")
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
pub(crate) mod conformance {
    //! One behaviour suite run against every store.
    use super::*;
    use serde_json::Value;

    pub(crate) fn changes(set: &[(&str, Value)], removed: &[&str]) -> Changes {
        Changes {
            set: set
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            removed: removed.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    pub(crate) async fn run(store: &dyn SessionStore) {
        let id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let ttl = Duration::from_secs(60);
        assert_eq!(store.load(id).await.unwrap(), None);
        store
            .save(id, &changes(&[("a", 1.into())], &[]), ttl)
            .await
            .unwrap();
        store
            .save(id, &changes(&[("b", 2.into())], &[]), ttl)
            .await
            .unwrap();
        let data = store.load(id).await.unwrap().unwrap();
        assert_eq!(
            data.get("a"),
            Some(&Value::from(1)),
            "merge keeps other keys"
        );
        assert_eq!(data.get("b"), Some(&Value::from(2)));
        store
            .save(id, &changes(&[("b", 3.into())], &["a"]), ttl)
            .await
            .unwrap();
        let data = store.load(id).await.unwrap().unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(data.get("b"), Some(&Value::from(3)));
        store.destroy(id).await.unwrap();
        assert_eq!(store.load(id).await.unwrap(), None);
        assert!(store.load("../../etc/passwd").await.is_err());

        // A record whose time-to-live has passed is gone.
        let short = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
        store
            .save(
                short,
                &changes(&[("x", 1.into())], &[]),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert!(store.load(short).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(store.load(short).await.unwrap(), None);
    }
}
