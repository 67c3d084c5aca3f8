//! What the TechEmpower-shaped reference apps share: the command line, the database access
//! (tokio-postgres through a deadpool pool of a fixed size, prepared statements cached per
//! connection, a request's queries pipelined on its connection) and the fortunes template (tera 2,
//! autoescaped). Only the web framework differs between `te-axum` and `te-actix`.

use std::cell::Cell;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::future::try_join_all;
use serde::Serialize;
use tokio_postgres::NoTls;

/// The `/json` body.
#[derive(Serialize)]
pub struct Message {
    /// Always "Hello, World!".
    pub message: &'static str,
}

/// A `World` row.
#[derive(Serialize, Clone, Copy)]
pub struct World {
    /// 1–10,000.
    pub id: i32,
    /// 1–10,000, changed by `/updates`.
    #[serde(rename = "randomNumber")]
    pub random_number: i32,
}

/// A `Fortune` row.
#[derive(Serialize)]
pub struct Fortune {
    /// Primary key (0 for the one added per request).
    pub id: i32,
    /// The text, escaped by the template.
    pub message: String,
}

/// `--bind HOST:PORT --threads N --database URL --pool N`.
#[derive(Debug, Clone)]
pub struct Args {
    /// Where to listen.
    pub bind: std::net::SocketAddr,
    /// Worker threads (tokio workers; actix workers).
    pub threads: usize,
    /// `postgres://user@host:port/db` (or `host=/run/dir` form).
    pub database: String,
    /// Connections in the pool (in all: actix splits it between its workers).
    pub pool: usize,
}

/// Parse the command line; exits with status 2 on a usage error.
pub fn args() -> Args {
    let mut args = Args {
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 8000)),
        threads: 2,
        database: "postgres://benchmarkdbuser@127.0.0.1/hello_world".into(),
        pool: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let ok = match flag.as_str() {
            "--bind" => value.parse().map(|v| args.bind = v).is_ok(),
            "--threads" => value.parse().map(|v| args.threads = v).is_ok(),
            "--pool" => value.parse().map(|v| args.pool = v).is_ok(),
            "--database" => {
                args.database = value.clone();
                true
            }
            _ => false,
        };
        if !ok {
            eprintln!("bad argument {flag} {value:?}; usage: --bind HOST:PORT --threads N --database URL --pool N");
            std::process::exit(2);
        }
    }
    args
}

/// A pool of at most `size` connections to `url`, opened on first use.
pub fn pool(url: &str, size: usize) -> Pool {
    let config: tokio_postgres::Config = url.parse().unwrap_or_else(|e| {
        eprintln!("bad --database {url:?}: {e}");
        std::process::exit(2)
    });
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .build()
        .expect("a pool without a runtime-dependent timeout builds")
}

/// Any failure while serving a request (a 500).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_ne_bytes(bytes) | 1
}

/// A random id 1–10,000 (xorshift64*, per thread).
pub fn random_id() -> i32 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as i32 % 10_000 + 1
    })
}

/// `queries=N` as TechEmpower wants it: a missing or bad value is 1, then clamped to 1–500.
pub fn clamp_queries(raw: Option<&str>) -> usize {
    raw.and_then(|v| v.parse::<i64>().ok()).unwrap_or(1).clamp(1, 500) as usize
}

const SELECT_WORLD: &str = "SELECT id, randomnumber FROM world WHERE id = $1";
const SELECT_FORTUNES: &str = "SELECT id, message FROM fortune";
const UPDATE_WORLDS: &str = "UPDATE world SET randomnumber = new.r \
     FROM (SELECT unnest($1::int[]) AS id, unnest($2::int[]) AS r) AS new WHERE world.id = new.id";

/// One random world.
pub async fn one_world(pool: &Pool) -> Result<World, Error> {
    let client = pool.get().await?;
    let select = client.prepare_cached(SELECT_WORLD).await?;
    let row = client.query_one(&select, &[&random_id()]).await?;
    Ok(World {
        id: row.get(0),
        random_number: row.get(1),
    })
}

/// `n` random worlds, the queries pipelined on one connection.
pub async fn worlds(pool: &Pool, n: usize) -> Result<Vec<World>, Error> {
    let client = pool.get().await?;
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
pub async fn update_worlds(pool: &Pool, n: usize) -> Result<Vec<World>, Error> {
    let client = pool.get().await?;
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
    // Rows locked in id order: concurrent updates of overlapping rows cannot deadlock.
    let mut sorted = worlds.clone();
    sorted.sort_unstable_by_key(|w| w.id);
    let ids: Vec<i32> = sorted.iter().map(|w| w.id).collect();
    let numbers: Vec<i32> = sorted.iter().map(|w| w.random_number).collect();
    client.execute(&update, &[&ids, &numbers]).await?;
    Ok(worlds)
}

/// Every fortune, one added, sorted by message.
pub async fn fortunes(pool: &Pool) -> Result<Vec<Fortune>, Error> {
    let client = pool.get().await?;
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

/// The fortunes page's template (autoescaped: its name ends in `.html`).
pub const FORTUNES_HTML: &str = "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>\
<table><tr><th>id</th><th>message</th></tr>\
{% for f in fortunes %}<tr><td>{{ f.id }}</td><td>{{ f.message }}</td></tr>{% endfor %}\
</table></body></html>";

/// A tera with the fortunes template.
pub fn templates() -> tera::Tera {
    let mut tera = tera::Tera::new();
    tera.add_raw_template("fortunes.html", FORTUNES_HTML)
        .expect("the fortunes template parses");
    tera
}

/// The fortunes page.
pub fn render_fortunes(tera: &tera::Tera, fortunes: &[Fortune]) -> Result<String, Error> {
    let mut context = tera::Context::new();
    context.insert("fortunes", fortunes);
    Ok(tera.render("fortunes.html", &context)?)
}
