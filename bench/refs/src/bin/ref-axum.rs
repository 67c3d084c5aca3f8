//! axum 0.8: one fallback handler, `axum::serve` on a multi-threaded tokio runtime.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Router;

async fn hello() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain")], rgi_bench_refs::hello_body())
}

fn main() -> std::io::Result<()> {
    let args = rgi_bench_refs::args();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(args.bind).await?;
            rgi_bench_refs::announce("ref-axum", &args);
            axum::serve(listener, Router::new().fallback(hello)).await
        })
}
