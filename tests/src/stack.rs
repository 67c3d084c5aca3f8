//! The standard middleware stack that `stackapp` serves and `tests/middleware_stack.rs` drives through
//! every gateway: request id, proxy fix, access log, panic catcher, error pages, security headers,
//! CORS (a tower-http layer), compression, and static files mounted beside a small application.

use std::path::{Path, PathBuf};

use http::StatusCode;
use rgi::tower::TowerLayer;
use rgi::BoxApp;
use rgi_middleware::access_log::AccessLogLayer;
use rgi_middleware::catch_panic::CatchPanicLayer;
use rgi_middleware::error_pages::ErrorPagesLayer;
use rgi_middleware::proxy_fix::ProxyFixLayer;
use rgi_middleware::request_id::RequestIdLayer;
use rgi_middleware::security_headers::SecurityHeadersLayer;
use rgi_middleware::session::{Csrf, Keys, SessionLayer};
use rgi_middleware::{Builder, CompressionLayer, Static};

/// Where the stack keeps its files: `public/` (static files) and `access.log`.
///
/// `RGI_STACK_DIR` when set, else the folder of the running executable (a CGI program has no
/// environment of its own to be configured with).
pub fn stack_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RGI_STACK_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The stack over `dir` (see [`stack_dir`]).
///
/// # Panics
///
/// When the access log cannot be opened.
pub fn stack(dir: &Path) -> BoxApp {
    let log = AccessLogLayer::file(dir.join("access.log")).expect("open the access log");
    Builder::new()
        .enable(RequestIdLayer::new().trust_incoming(true))
        .enable(ProxyFixLayer::new())
        .enable(log)
        .enable(CatchPanicLayer::new())
        .enable(ErrorPagesLayer::new())
        .enable(SecurityHeadersLayer::new())
        .enable(TowerLayer::new(tower_http::cors::CorsLayer::permissive()))
        .enable(CompressionLayer::new())
        .mount("/static", Static::new(dir.join("public")))
        .app(rgi::app_fn(|environ, start| async move {
            match environ.path_info() {
                b"/" => start.html(page()),
                b"/whoami" => start.json(&serde_json::json!({
                    "remote": environ.remote_addr().map(|(a, _)| String::from_utf8_lossy(a).into_owned()),
                    "scheme": environ.url_scheme().as_str(),
                    "request_id": environ.extensions().get::<rgi_middleware::request_id::RequestId>().map(|id| id.as_str().to_owned()),
                })),
                b"/panic" => panic!("the stack test panics on purpose"),
                b"/fail" => Err("the stack test fails on purpose".into()),
                _ => start.error(StatusCode::NOT_FOUND),
            }
        }))
}

/// A page long enough to be compressed.
fn page() -> String {
    let rows: String = (0..200)
        .map(|i| format!("<li>row {i}: the quick brown fox</li>\n"))
        .collect();
    format!("<!doctype html><title>stack</title><ul>\n{rows}</ul>\n")
}

/// The standard stack a site runs, as bench/ prices it (`stackhello --standard-stack DIR`): request
/// id, proxy fix, access log to `DIR/access.log`, cookie sessions (a key made at start), CSRF
/// protection and compression negotiating the encoding (identity for a client that asks for none).
///
/// # Errors
///
/// When the access log cannot be opened or no session key can be made.
pub fn standard(dir: &Path) -> Result<Builder, Box<dyn std::error::Error>> {
    let sessions = SessionLayer::builder().keys(Keys::ephemeral()?).build()?;
    Ok(Builder::new()
        .enable(RequestIdLayer::new())
        .enable(ProxyFixLayer::new())
        .enable(AccessLogLayer::file(dir.join("access.log"))?)
        .enable(CompressionLayer::new())
        .enable(sessions)
        .enable(Csrf::new()))
}
