//! [`SqliteStore`]: sessions in an SQLite database file (feature `sqlite`).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use rgi::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{invalid_id, unix_now, valid_id, Changes, SessionData, SessionStore, StoreError};

/// Sessions in one SQLite file: shared by the processes of one machine, kept across restarts.
///
/// Table `rgi_sessions (id TEXT PRIMARY KEY, data TEXT, expires INTEGER)`, created when missing;
/// WAL journal, a 5 s busy timeout. A save is one `BEGIN IMMEDIATE` transaction (read, merge the
/// changed keys, write), so concurrent saves of one session, from any process, merge per key.
/// Expired rows read as absent; [`SqliteStore::sweep`] deletes them.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating when missing) the database file at `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or the table created.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(StoreError::new)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS rgi_sessions \
             (id TEXT PRIMARY KEY, data TEXT NOT NULL, expires INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await
        .map_err(StoreError::new)?;
        Ok(SqliteStore { pool })
    }

    /// Delete expired rows; returns how many.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM rgi_sessions WHERE expires <= ?")
            .bind(now_i64())
            .execute(&self.pool)
            .await
            .map_err(StoreError::new)?;
        Ok(done.rows_affected())
    }

    async fn load_now(&self, id: &str) -> Result<Option<SessionData>, StoreError> {
        check(id)?;
        let row: Option<(String,)> =
            sqlx::query_as("SELECT data FROM rgi_sessions WHERE id = ? AND expires > ?")
                .bind(id)
                .bind(now_i64())
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::new)?;
        // A corrupt row is an empty session, not an outage.
        Ok(row.map(|(data,)| serde_json::from_str(&data).unwrap_or_default()))
    }

    async fn save_now(&self, id: &str, changes: &Changes, ttl: Duration) -> Result<(), StoreError> {
        check(id)?;
        let now = now_i64();
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::new)?;
        let row: Option<(String,)> =
            sqlx::query_as("SELECT data FROM rgi_sessions WHERE id = ? AND expires > ?")
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::new)?;
        let mut data: SessionData = row
            .and_then(|(data,)| serde_json::from_str(&data).ok())
            .unwrap_or_default();
        changes.apply_to(&mut data);
        let json = serde_json::to_string(&data).map_err(StoreError::new)?;
        let ttl = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX / 2);
        sqlx::query(
            "INSERT INTO rgi_sessions (id, data, expires) VALUES (?, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET data = excluded.data, expires = excluded.expires",
        )
        .bind(id)
        .bind(json)
        .bind(now.saturating_add(ttl))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::new)?;
        tx.commit().await.map_err(StoreError::new)
    }

    async fn destroy_now(&self, id: &str) -> Result<(), StoreError> {
        check(id)?;
        sqlx::query("DELETE FROM rgi_sessions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::new)?;
        Ok(())
    }
}

fn check(id: &str) -> Result<(), StoreError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(invalid_id())
    }
}

fn now_i64() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX / 2)
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SessionStore for SqliteStore {
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(self.load_now(id))
    }

    fn save<'a>(
        &'a self,
        id: &'a str,
        changes: &'a Changes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.save_now(id, changes, ttl))
    }

    fn destroy<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.destroy_now(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sqlite_store_conforms_and_sweeps() {
        let path = std::env::temp_dir().join(format!("rgi-sqlite-{}.db", std::process::id()));
        let store = SqliteStore::open(&path).await.unwrap();
        super::super::conformance::run(&store).await;
        assert_eq!(
            store.sweep().await.unwrap(),
            1,
            "the expired record of the suite"
        );
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
