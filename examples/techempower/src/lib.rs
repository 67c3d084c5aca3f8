//! TechEmpower's framework tests on rgi-framework: `/plaintext`, `/json`, `/db`,
//! `/queries?queries=N`, `/fortunes` and `/updates?queries=N`, over PostgreSQL through
//! tokio-postgres and a pool of a fixed size.
//!
//! ```text
//! techempower --database postgres://benchmarkdbuser@127.0.0.1/hello_world --pool 16 --bind 127.0.0.1:8080
//! techempower --database … --protocol fastcgi --bind 127.0.0.1:9000      # behind nginx
//! ```
//!
//! The tables are TechEmpower's: `world(id, randomnumber)` with 10,000 rows and
//! `fortune(id, message)` with its 12 rows ([`SCHEMA`] creates and fills both). `bench/run.sh`
//! starts PostgreSQL, fills it and measures this app against axum, actix-web and web.py.

pub mod db;

use rgi_framework::{get, App, Context, Error, Html, Json, Query, Render, Site, State, Templates};
use serde::{Deserialize, Serialize};

pub use crate::db::{Db, SCHEMA};

/// The `/json` body.
#[derive(Debug, Serialize)]
pub struct Message {
    /// Always `Hello, World!`.
    pub message: &'static str,
}

/// `?queries=N`, kept as text: TechEmpower wants a missing or malformed value read as 1.
#[derive(Debug, Deserialize)]
pub struct Count {
    /// The raw value.
    pub queries: Option<String>,
}

/// `queries=N` as TechEmpower specifies it: missing or not a number → 1, then clamped to 1–500.
pub fn clamp_queries(raw: Option<&str>) -> usize {
    let n = raw.and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(1);
    n.clamp(1, 500) as usize
}

async fn plaintext() -> &'static str {
    "Hello, World!"
}

async fn json() -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

async fn single_query(State(db): State<Db>) -> Result<Json<db::World>, Error> {
    Ok(Json(db.one_world().await?))
}

async fn multiple_queries(
    State(db): State<Db>,
    Query(count): Query<Count>,
) -> Result<Json<Vec<db::World>>, Error> {
    let n = clamp_queries(count.queries.as_deref());
    Ok(Json(db.worlds(n).await?))
}

async fn updates(
    State(db): State<Db>,
    Query(count): Query<Count>,
) -> Result<Json<Vec<db::World>>, Error> {
    let n = clamp_queries(count.queries.as_deref());
    Ok(Json(db.update_worlds(n).await?))
}

async fn fortunes(State(db): State<Db>, render: Render) -> Result<Html<String>, Error> {
    let fortunes = db.fortunes().await?;
    let mut context = Context::new();
    context.insert("fortunes", &fortunes);
    render.page("fortunes.html", &context)
}

/// The fortunes template (autoescaped: its name ends in `.html`).
pub const FORTUNES_HTML: &str = include_str!("../templates/fortunes.html");

/// The application over `db`.
///
/// # Errors
///
/// When the routes or the template do not build (a bug).
pub fn app(db: Db) -> Result<Site, Box<dyn std::error::Error>> {
    let templates = Templates::from_sources([("fortunes.html", FORTUNES_HTML)])?;
    Ok(App::new()
        .route("/plaintext", get(plaintext))
        .route("/json", get(json))
        .route("/db", get(single_query))
        .route("/queries", get(multiple_queries))
        .route("/fortunes", get(fortunes))
        .route("/updates", get(updates))
        .state(db)
        .templates(templates)
        .build()?)
}
