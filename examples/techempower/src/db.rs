//! The database side: a pool of a fixed size over tokio-postgres, each connection caching its
//! prepared statements, and a request's queries pipelined on its connection (sent together,
//! answered in order) instead of awaited one after the other.

use std::cell::Cell;
use std::fmt;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::future::try_join_all;
use serde::Serialize;
use tokio_postgres::NoTls;

/// TechEmpower's tables and rows: `world` (10,000 rows of random numbers) and `fortune` (12 rows,
/// one of them a `<script>` that the page must escape). Run once on an empty database.
pub const SCHEMA: &str = include_str!("../schema.sql");

/// A `world` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct World {
    /// 1–10,000.
    pub id: i32,
    /// 1–10,000; `/updates` changes it.
    #[serde(rename = "randomNumber")]
    pub random_number: i32,
}

/// A `fortune` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fortune {
    /// Primary key (0 for the one added to each page).
    pub id: i32,
    /// The text; the template escapes it.
    pub message: String,
}

/// What can go wrong talking to the database.
#[derive(Debug)]
pub enum DbError {
    /// The URL does not parse.
    Url(tokio_postgres::Error),
    /// The pool could not be made.
    Build(deadpool_postgres::BuildError),
    /// No connection could be had from the pool.
    Pool(deadpool_postgres::PoolError),
    /// The database refused or failed a statement.
    Sql(tokio_postgres::Error),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Url(e) => write!(f, "database URL: {e}"),
            DbError::Build(e) => write!(f, "database pool: {e}"),
            DbError::Pool(e) => write!(f, "database pool: {e}"),
            DbError::Sql(e) => write!(f, "database: {e}"),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Url(e) | DbError::Sql(e) => Some(e),
            DbError::Build(e) => Some(e),
            DbError::Pool(e) => Some(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        DbError::Pool(e)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Sql(e)
    }
}

const SELECT_WORLD: &str = "SELECT id, randomnumber FROM world WHERE id = $1";
const SELECT_FORTUNES: &str = "SELECT id, message FROM fortune";
/// Every changed row in one statement.
const UPDATE_WORLDS: &str = "UPDATE world SET randomnumber = new.r \
     FROM (SELECT unnest($1::int[]) AS id, unnest($2::int[]) AS r) AS new WHERE world.id = new.id";

/// The pool. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("status", &self.pool.status())
            .finish()
    }
}

impl Db {
    /// A pool of at most `size` connections to `url` (`postgres://user@host:port/db`, or
    /// `host=/run/postgresql user=…`), opened when first needed.
    ///
    /// # Errors
    ///
    /// When the URL does not parse.
    pub fn open(url: &str, size: usize) -> Result<Db, DbError> {
        let config: tokio_postgres::Config = url.parse().map_err(DbError::Url)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(size.max(1))
            .build()
            .map_err(DbError::Build)?;
        Ok(Db { pool })
    }

    /// One random world.
    ///
    /// # Errors
    ///
    /// [`DbError`].
    pub async fn one_world(&self) -> Result<World, DbError> {
        let client = self.pool.get().await?;
        let select = client.prepare_cached(SELECT_WORLD).await?;
        let row = client.query_one(&select, &[&random_id()]).await?;
        Ok(World {
            id: row.get(0),
            random_number: row.get(1),
        })
    }

    /// `n` random worlds, the queries pipelined on one connection.
    ///
    /// # Errors
    ///
    /// [`DbError`].
    pub async fn worlds(&self, n: usize) -> Result<Vec<World>, DbError> {
        let client = self.pool.get().await?;
        let select = client.prepare_cached(SELECT_WORLD).await?;
        let ids: Vec<i32> = (0..n).map(|_| random_id()).collect();
        let rows = try_join_all(ids.iter().map(|id| {
            let (client, select) = (&client, &select);
            async move { client.query_one(select, &[id]).await }
        }))
        .await?;
        Ok(rows
            .iter()
            .map(|row| World {
                id: row.get(0),
                random_number: row.get(1),
            })
            .collect())
    }

    /// `n` random worlds read, each given a new random number, written back in one statement.
    ///
    /// # Errors
    ///
    /// [`DbError`].
    pub async fn update_worlds(&self, n: usize) -> Result<Vec<World>, DbError> {
        let client = self.pool.get().await?;
        let select = client.prepare_cached(SELECT_WORLD).await?;
        let update = client.prepare_cached(UPDATE_WORLDS).await?;
        let ids: Vec<i32> = (0..n).map(|_| random_id()).collect();
        let rows = try_join_all(ids.iter().map(|id| {
            let (client, select) = (&client, &select);
            async move { client.query_one(select, &[id]).await }
        }))
        .await?;
        let worlds: Vec<World> = rows
            .iter()
            .map(|row| World {
                id: row.get(0),
                random_number: random_id(),
            })
            .collect();
        // Rows locked in id order, so concurrent updates of the same rows cannot deadlock.
        let mut sorted = worlds.clone();
        sorted.sort_unstable_by_key(|w| w.id);
        let ids: Vec<i32> = sorted.iter().map(|w| w.id).collect();
        let numbers: Vec<i32> = sorted.iter().map(|w| w.random_number).collect();
        client.execute(&update, &[&ids, &numbers]).await?;
        Ok(worlds)
    }

    /// Every fortune and one added at request time, sorted by message.
    ///
    /// # Errors
    ///
    /// [`DbError`].
    pub async fn fortunes(&self) -> Result<Vec<Fortune>, DbError> {
        let client = self.pool.get().await?;
        let select = client.prepare_cached(SELECT_FORTUNES).await?;
        let rows = client.query(&select, &[]).await?;
        let mut fortunes: Vec<Fortune> = rows
            .iter()
            .map(|row| Fortune {
                id: row.get(0),
                message: row.get(1),
            })
            .collect();
        fortunes.push(Fortune {
            id: 0,
            message: "Additional fortune added at request time.".into(),
        });
        fortunes.sort_unstable_by(|a, b| a.message.cmp(&b.message));
        Ok(fortunes)
    }
}

thread_local! {
    /// xorshift64* state, seeded once per thread from the OS.
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    // Without an entropy source the ids are still spread; they need not be unpredictable.
    if getrandom::fill(&mut bytes).is_err() {
        return 0x9E37_79B9_7F4A_7C15;
    }
    u64::from_ne_bytes(bytes) | 1
}

/// A random world id, 1–10,000.
pub fn random_id() -> i32 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % 10_000) as i32 + 1
    })
}
