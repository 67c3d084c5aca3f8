//! [`RedisStore`]: sessions in Redis, shared by every process on every machine (feature `redis`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use rgi::BoxFuture;

use super::{invalid_id, valid_id, Changes, SessionData, SessionStore, StoreError};

/// Sessions in Redis, one hash per session (`<prefix><id>`, one field per key, JSON values) with
/// Redis' own TTL (`EXPIRE`), so Redis deletes expired sessions itself.
///
/// A save is one `MULTI`/`EXEC` transaction of `HSET` (changed keys), `HDEL` (removed keys) and
/// `EXPIRE`: concurrent saves of one session merge per key, the last writer of a key wins. The
/// connection is the redis crate's [`ConnectionManager`]: one multiplexed connection per process,
/// made on first use (inside the worker's runtime: [`RedisStore::new`] does no I/O, so a store made
/// before the server starts its workers is fine), shared by every request and re-established when
/// Redis restarts (requests during the outage get 503). No operation waits for Redis longer than
/// 3 s, connecting included: a restarting or unreachable Redis fails requests quickly instead of
/// holding them.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    /// The shared connection; `None` until first use, and again after a failure that may have
    /// broken it.
    conn: Arc<Mutex<Option<ConnectionManager>>>,
    prefix: String,
}

impl RedisStore {
    /// A store for `url` (see [`RedisStore::connect`] for the forms), connecting on first use.
    ///
    /// # Errors
    ///
    /// A malformed URL.
    pub fn new(url: &str) -> Result<RedisStore, StoreError> {
        Ok(RedisStore {
            client: redis::Client::open(url).map_err(StoreError::new)?,
            conn: Arc::new(Mutex::new(None)),
            prefix: "rgi:session:".to_owned(),
        })
    }

    /// Connect to `url`: `redis://host:port/db`, `redis://:password@host:port`, or a unix socket as
    /// `redis+unix:///path/to/redis.sock`.
    ///
    /// # Errors
    ///
    /// A malformed URL, or Redis not reachable now.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let store = RedisStore::new(url)?;
        store.conn().await?;
        Ok(store)
    }

    /// The shared connection, made on first use (a failed attempt is retried by the next request).
    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(conn) = self.conn.lock().ok().and_then(|c| c.clone()) {
            return Ok(conn);
        }
        // Each attempt and each reply is bounded, and a reconnection gives up after 3 retries
        // (about 1.5 s). Requests arriving together may each connect; the last one is kept.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(3);
        let conn = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(StoreError::new)?;
        if let Ok(mut slot) = self.conn.lock() {
            *slot = Some(conn.clone());
        }
        Ok(conn)
    }

    /// Drop the shared connection after a failure that may have broken it, so that the next request
    /// makes a new one. The redis crate's own reconnection did not always recover from a Redis
    /// restart: every request after it timed out (`tests/tests/faults.rs`).
    fn forget(&self) {
        if let Ok(mut slot) = self.conn.lock() {
            *slot = None;
        }
    }

    /// A store error for `e`, forgetting the connection unless Redis itself answered (an error
    /// reply such as `WRONGTYPE` leaves the connection sound).
    fn failed(&self, e: redis::RedisError) -> StoreError {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            self.forget();
        }
        StoreError::new(e)
    }

    /// `op`, failed with a timeout error (and the connection forgotten) after
    /// [`OPERATION_TIMEOUT`].
    async fn bounded<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(OPERATION_TIMEOUT, op).await {
            Ok(done) => done,
            Err(_) => {
                self.forget();
                Err(StoreError::new(format!(
                    "redis did not answer within {OPERATION_TIMEOUT:?}"
                )))
            }
        }
    }

    /// Prefix session keys with `prefix` (default `rgi:session:`), to share one Redis database.
    pub fn prefix(mut self, prefix: impl Into<String>) -> RedisStore {
        self.prefix = prefix.into();
        self
    }

    fn key(&self, id: &str) -> Result<String, StoreError> {
        if !valid_id(id) {
            return Err(invalid_id());
        }
        Ok(format!("{}{id}", self.prefix))
    }

    async fn load_now(&self, id: &str) -> Result<Option<SessionData>, StoreError> {
        let key = self.key(id)?;
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn().await?)
            .await
            .map_err(|e| self.failed(e))?;
        if fields.is_empty() {
            return Ok(None);
        }
        // A field that is not JSON (written by something else) is skipped, not an outage.
        Ok(Some(
            fields
                .into_iter()
                .filter_map(|(k, v)| serde_json::from_str(&v).ok().map(|v| (k, v)))
                .collect(),
        ))
    }

    async fn save_now(&self, id: &str, changes: &Changes, ttl: Duration) -> Result<(), StoreError> {
        let key = self.key(id)?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        if !changes.set.is_empty() {
            let pairs: Vec<(&str, String)> = changes
                .set
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_string()))
                .collect();
            pipe.hset_multiple(&key, &pairs).ignore();
        }
        if !changes.removed.is_empty() {
            let removed: Vec<&str> = changes.removed.iter().map(String::as_str).collect();
            pipe.hdel(&key, removed).ignore();
        }
        let seconds = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        pipe.expire(&key, seconds).ignore();
        pipe.query_async::<()>(&mut self.conn().await?)
            .await
            .map_err(|e| self.failed(e))
    }

    async fn destroy_now(&self, id: &str) -> Result<(), StoreError> {
        let key = self.key(id)?;
        redis::cmd("DEL")
            .arg(&key)
            .query_async::<()>(&mut self.conn().await?)
            .await
            .map_err(|e| self.failed(e))
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The longest a session operation waits for Redis, connecting included, before it fails (and the
/// request gets 503). Without a bound, requests in flight when Redis restarted waited 20 s and more
/// (`tests/tests/faults.rs`).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(self.bounded(self.load_now(id)))
    }

    fn save<'a>(
        &'a self,
        id: &'a str,
        changes: &'a Changes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.bounded(self.save_now(id, changes, ttl)))
    }

    fn destroy<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.bounded(self.destroy_now(id)))
    }
}
