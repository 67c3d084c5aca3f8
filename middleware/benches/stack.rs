//! What the standard middleware stack costs per request: the hello application bare, and under
//! request id, proxy fix, access log (formatted, handed to a closure), panic catcher, error pages,
//! security headers, tower-http CORS and compression negotiating identity — each request built as the
//! HTTP server builds it, called, and its body drained (the access log writes when the body ends).
//! Run with `cargo bench -p rgi-middleware`.

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;
use rgi::convert::{self, ConnInfo, InputLimits};
use rgi::tower::TowerLayer;
use rgi::{ApplicationExt, BoxApp, ServerInfo};
use rgi_middleware::access_log::AccessLogLayer;
use rgi_middleware::catch_panic::CatchPanicLayer;
use rgi_middleware::error_pages::ErrorPagesLayer;
use rgi_middleware::proxy_fix::ProxyFixLayer;
use rgi_middleware::request_id::RequestIdLayer;
use rgi_middleware::security_headers::SecurityHeadersLayer;
use rgi_middleware::session::{Keys, MemoryStore, Session, SessionLayer};
use rgi_middleware::{Builder, CompressionLayer};

fn hello() -> BoxApp {
    rgi::app_fn(|_, start| async move { start.text("Hello World!\n") }).boxed()
}

fn stacked() -> BoxApp {
    Builder::new()
        .enable(RequestIdLayer::new())
        .enable(ProxyFixLayer::new())
        .enable(AccessLogLayer::to_fn(|line| {
            black_box(line);
        }))
        .enable(CatchPanicLayer::new())
        .enable(ErrorPagesLayer::new())
        .enable(SecurityHeadersLayer::new())
        .enable(TowerLayer::new(tower_http::cors::CorsLayer::permissive()))
        .enable(CompressionLayer::new())
        .app(hello())
}

fn request_with_cookie(cookie: Option<&str>) -> http::Request<http_body_util::Empty<bytes::Bytes>> {
    let mut request = http::Request::get("/hello/world?x=1&y=2")
        .header("host", "127.0.0.1:8000")
        .header("user-agent", "wrk/4.2")
        .header("accept", "*/*");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(http_body_util::Empty::new()).unwrap()
}

/// A counter in the session: reads it and writes it back (a cookie is sealed on every response).
fn session_app(store: Option<MemoryStore>) -> BoxApp {
    let app = rgi::app_fn(|environ, start| async move {
        let session = Session::from_environ(&environ).expect("session layer");
        let n: u64 = session.get("n")?.unwrap_or(0);
        session.insert("n", &(n + 1))?;
        start.text("Hello World!\n")
    });
    let mut builder = SessionLayer::builder().keys(Keys::ephemeral().expect("a key"));
    if let Some(store) = store {
        builder = builder.store(store);
    }
    app.layer(builder.build().expect("session layer")).boxed()
}

/// The `name=value` of the session cookie `app` sets on a first request.
fn session_cookie(app: &BoxApp) -> String {
    let response = rgi::testing::TestClient::new(app.clone())
        .get("/")
        .send_blocking();
    let set = response.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_owned()
}

fn benches(c: &mut Criterion) {
    let server = Arc::new(ServerInfo::default());
    let conn = ConnInfo::default();
    let one = |name: &'static str, app: BoxApp| (name, app);
    let rows = [
        one("hello_bare", hello()),
        one("hello_standard_stack", stacked()),
        one(
            "layer_request_id",
            hello().layer(RequestIdLayer::new()).boxed(),
        ),
        one(
            "layer_proxy_fix",
            hello().layer(ProxyFixLayer::new()).boxed(),
        ),
        one(
            "layer_access_log",
            hello()
                .layer(AccessLogLayer::to_fn(|line| {
                    black_box(line);
                }))
                .boxed(),
        ),
        one(
            "layer_catch_panic",
            hello().layer(CatchPanicLayer::new()).boxed(),
        ),
        one(
            "layer_error_pages",
            hello().layer(ErrorPagesLayer::new()).boxed(),
        ),
        one(
            "layer_security_headers",
            hello().layer(SecurityHeadersLayer::new()).boxed(),
        ),
        one(
            "layer_tower_cors",
            hello()
                .layer(TowerLayer::new(tower_http::cors::CorsLayer::permissive()))
                .boxed(),
        ),
        one(
            "layer_compression",
            hello().layer(CompressionLayer::new()).boxed(),
        ),
    ];
    for (name, app) in rows {
        run(c, &server, &conn, name, app, None);
    }
    // Sessions: a counter read and written on every request, the cookie presented each time.
    for (name, app) in [
        ("session_cookie", session_app(None)),
        (
            "session_memory_store",
            session_app(Some(MemoryStore::new())),
        ),
    ] {
        let cookie = session_cookie(&app);
        run(c, &server, &conn, name, app, Some(&cookie));
    }
}

fn run(
    c: &mut Criterion,
    server: &Arc<ServerInfo>,
    conn: &ConnInfo,
    name: &str,
    app: BoxApp,
    cookie: Option<&str>,
) {
    {
        c.bench_function(name, |b| {
            b.iter_batched(
                || request_with_cookie(cookie),
                |req| {
                    let environ =
                        convert::environ_from_request(req, conn, server, InputLimits::default())
                            .expect("a valid request");
                    rgi::block_on(async {
                        let response = convert::call_app(&app, environ).await;
                        black_box(response.into_body().collect().await.unwrap())
                    })
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
}

// `criterion_group!` defines an undocumented `pub fn`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(stack, benches);
}
use group::stack;
criterion_main!(stack);
