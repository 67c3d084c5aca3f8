//! TechEmpower's tests on axum 0.8: `/plaintext`, `/json`, `/db`, `/queries`, `/fortunes`,
//! `/updates`, the database through `rgi_bench_refs::te` (tokio-postgres, a deadpool pool).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use deadpool_postgres::Pool;
use rgi_bench_refs::te::{self, Message};
use serde::Deserialize;

struct AppState {
    pool: Pool,
    tera: tera::Tera,
}

type Shared = State<Arc<AppState>>;

#[derive(Deserialize)]
struct Count {
    queries: Option<String>,
}

/// A failed query: 500 with the error's text.
struct Failed(te::Error);

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.0.to_string()).into_response()
    }
}

impl<E: Into<te::Error>> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed(e.into())
    }
}

async fn plaintext() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain")], "Hello, World!")
}

async fn json() -> impl IntoResponse {
    Json(Message {
        message: "Hello, World!",
    })
}

async fn db(State(state): Shared) -> Result<impl IntoResponse, Failed> {
    Ok(Json(te::one_world(&state.pool).await?))
}

async fn queries(State(state): Shared, Query(count): Query<Count>) -> Result<impl IntoResponse, Failed> {
    let n = te::clamp_queries(count.queries.as_deref());
    Ok(Json(te::worlds(&state.pool, n).await?))
}

async fn updates(State(state): Shared, Query(count): Query<Count>) -> Result<impl IntoResponse, Failed> {
    let n = te::clamp_queries(count.queries.as_deref());
    Ok(Json(te::update_worlds(&state.pool, n).await?))
}

async fn fortunes(State(state): Shared) -> Result<impl IntoResponse, Failed> {
    let fortunes = te::fortunes(&state.pool).await?;
    Ok(Html(te::render_fortunes(&state.tera, &fortunes)?))
}

fn main() -> std::io::Result<()> {
    let args = te::args();
    let state = Arc::new(AppState {
        pool: te::pool(&args.database, args.pool),
        tera: te::templates(),
    });
    let app = Router::new()
        .route("/plaintext", get(plaintext))
        .route("/json", get(json))
        .route("/db", get(db))
        .route("/queries", get(queries))
        .route("/fortunes", get(fortunes))
        .route("/updates", get(updates))
        .with_state(state);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(args.bind).await?;
            println!("te-axum: listening on http://{} (pid {})", args.bind, std::process::id());
            axum::serve(listener, app).await
        })
}
