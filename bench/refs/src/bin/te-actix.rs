//! TechEmpower's tests on actix-web 4: `/plaintext`, `/json`, `/db`, `/queries`, `/fortunes`,
//! `/updates`, the database through `rgi_bench_refs::te` (tokio-postgres, a deadpool pool per
//! worker: each worker runs its own single-threaded runtime, and the pool size is split between them).

use actix_web::http::header::ContentType;
use actix_web::{error, web, App, HttpResponse, HttpServer};
use deadpool_postgres::Pool;
use rgi_bench_refs::te::{self, Message};
use serde::Deserialize;

struct AppState {
    pool: Pool,
    tera: tera::Tera,
}

type Shared = web::Data<AppState>;

#[derive(Deserialize)]
struct Count {
    queries: Option<String>,
}

fn failed(e: te::Error) -> actix_web::Error {
    error::ErrorInternalServerError(e.to_string())
}

async fn plaintext() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::plaintext()).body("Hello, World!")
}

async fn json() -> HttpResponse {
    HttpResponse::Ok().json(Message {
        message: "Hello, World!",
    })
}

async fn db(state: Shared) -> actix_web::Result<HttpResponse> {
    let world = te::one_world(&state.pool).await.map_err(failed)?;
    Ok(HttpResponse::Ok().json(world))
}

async fn queries(state: Shared, count: web::Query<Count>) -> actix_web::Result<HttpResponse> {
    let n = te::clamp_queries(count.queries.as_deref());
    let worlds = te::worlds(&state.pool, n).await.map_err(failed)?;
    Ok(HttpResponse::Ok().json(worlds))
}

async fn updates(state: Shared, count: web::Query<Count>) -> actix_web::Result<HttpResponse> {
    let n = te::clamp_queries(count.queries.as_deref());
    let worlds = te::update_worlds(&state.pool, n).await.map_err(failed)?;
    Ok(HttpResponse::Ok().json(worlds))
}

async fn fortunes(state: Shared) -> actix_web::Result<HttpResponse> {
    let fortunes = te::fortunes(&state.pool).await.map_err(failed)?;
    let page = te::render_fortunes(&state.tera, &fortunes).map_err(failed)?;
    Ok(HttpResponse::Ok().content_type(ContentType::html()).body(page))
}

fn main() -> std::io::Result<()> {
    let args = te::args();
    let per_worker = args.pool.div_ceil(args.threads.max(1));
    let database = args.database.clone();
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(AppState {
                    pool: te::pool(&database, per_worker),
                    tera: te::templates(),
                }))
                .route("/plaintext", web::get().to(plaintext))
                .route("/json", web::get().to(json))
                .route("/db", web::get().to(db))
                .route("/queries", web::get().to(queries))
                .route("/fortunes", web::get().to(fortunes))
                .route("/updates", web::get().to(updates))
        })
        .workers(args.threads)
        .bind(args.bind)?;
        println!("te-actix: listening on http://{} (pid {})", args.bind, std::process::id());
        server.run().await
    })
}
