//! Criterion benchmarks of rgi-framework, in process (no sockets):
//!
//! - `routes/*`: the 130 GitHub API routes of matchit's own benchmark; one iteration looks up all 130
//!   request paths — bare matchit, then a whole framework request per path (routing, method
//!   dispatch, handler, response).
//! - `json/*`: one POST of a small JSON body to a handler that deserializes it and answers JSON,
//!   through rgi-framework and through axum (`tower::ServiceExt::oneshot`), on the same runtime.
//!
//! Run with `cargo bench -p rgi-framework --bench framework`.

#[path = "data/github_routes.rs"]
mod github_routes;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Method, StatusCode};
use rgi::{Application, Environ, StartResponse};
use rgi_framework::{get, post, App, Json, Site};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use github_routes::{PATHS, ROUTES};

async fn found() -> StatusCode {
    StatusCode::OK
}

fn github_site() -> Site {
    let mut app = App::new();
    for route in ROUTES {
        app = app.route(route, get(found));
    }
    app.build().expect("matchit's routes build")
}

async fn call(site: &Site, environ: Environ) -> u16 {
    let start = StartResponse::new(environ.method());
    site.call(environ, start)
        .await
        .expect("a response")
        .status()
        .as_u16()
}

fn routes(c: &mut Criterion) {
    let mut group = c.benchmark_group("routes");
    let mut matchit = matchit::Router::new();
    for route in ROUTES {
        matchit.insert(route, true).expect("insert");
    }
    group.bench_function("matchit-130", |b| {
        b.iter(|| {
            for path in black_box(&PATHS) {
                assert!(*matchit.at(path).expect("match").value);
            }
        });
    });
    let site = github_site();
    group.bench_function("framework-130", |b| {
        b.iter(|| {
            rgi::block_on(async {
                for path in black_box(&PATHS) {
                    let environ = Environ::builder(Method::GET, path).build();
                    assert_eq!(call(&site, environ).await, 200);
                }
            });
        });
    });
    group.finish();
}

#[derive(Deserialize)]
struct Order {
    item: String,
    quantity: u32,
}

#[derive(Serialize)]
struct Receipt {
    item: String,
    total: u32,
}

const BODY: &str = r#"{"item":"widget","quantity":3}"#;

async fn framework_order(Json(order): Json<Order>) -> Json<Receipt> {
    Json(Receipt {
        item: order.item,
        total: order.quantity * 5,
    })
}

async fn axum_order(axum::Json(order): axum::Json<Order>) -> axum::Json<Receipt> {
    axum::Json(Receipt {
        item: order.item,
        total: order.quantity * 5,
    })
}

fn json(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("json");
    let site = App::new()
        .route("/order", post(framework_order))
        .build()
        .expect("build");
    group.bench_function("rgi-framework", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let environ = Environ::builder(Method::POST, "/order")
                    .header("content-type", "application/json")
                    .header("content-length", BODY.len().to_string())
                    .body(BODY)
                    .build();
                assert_eq!(call(&site, environ).await, 200);
            });
        });
    });
    let router = axum::Router::new().route("/order", axum::routing::post(axum_order));
    group.bench_function("axum", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = http::Request::post("/order")
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(BODY))
                    .expect("request");
                let response = router.clone().oneshot(request).await.expect("infallible");
                assert_eq!(response.status(), 200);
                let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                    .await
                    .expect("body");
                black_box(body);
            });
        });
    });
    group.finish();
}

// `criterion_group!` defines an undocumented `pub fn`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, routes, json);
}
use group::benches;
criterion_main!(benches);
