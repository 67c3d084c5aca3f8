//! An ordinary axum `Router`, turned into an RGI application by `rgi::tower::ServiceApp` so that every
//! RGI server (HTTP, FastCGI, CGI…) can serve it.

use axum::body::Bytes;
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;

/// The axum application: `GET /hello/{name}`, `POST /echo` (streams the body back), `GET /` .
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "axum via RGI\n" }))
        .route(
            "/hello/{name}",
            get(|Path(name): Path<String>| async move { format!("hello {name}\n") }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
}

/// The router as an RGI application.
pub fn app() -> rgi::tower::ServiceApp<Router> {
    rgi::tower::ServiceApp::new(router())
}
