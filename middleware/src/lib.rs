//! # rgi-middleware — layers between RGI servers and applications
//!
//! Every middleware here is an [`rgi::Application`] that wraps another, so layers stack in any order
//! and work under every RGI server — HTTP, CGI, FastCGI, SCGI, uwsgi — without knowing which. A stack
//! reads top to bottom, outermost first:
//!
//! ```
//! use rgi::tower::TowerLayer;
//! use rgi_middleware::access_log::AccessLogLayer;
//! use rgi_middleware::catch_panic::CatchPanicLayer;
//! use rgi_middleware::error_pages::ErrorPagesLayer;
//! use rgi_middleware::proxy_fix::ProxyFixLayer;
//! use rgi_middleware::request_id::RequestIdLayer;
//! use rgi_middleware::security_headers::SecurityHeadersLayer;
//! use rgi_middleware::{Builder, CompressionLayer, Static};
//!
//! # let public = std::env::temp_dir();
//! let site = rgi::app_fn(|_, start| async move { start.html("<h1>Hello</h1>") });
//! let app = Builder::new()
//!     .enable(RequestIdLayer::new())                 // X-Request-Id, generated or trusted
//!     .enable(ProxyFixLayer::new())                  // client address and scheme from nginx
//!     .enable(AccessLogLayer::stderr())              // the server's access-log format, any gateway
//!     .enable(CatchPanicLayer::new())                // a panic is a 500, the process keeps serving
//!     .enable(ErrorPagesLayer::new())                // 4xx/5xx pages, HTML or JSON by Accept
//!     .enable(SecurityHeadersLayer::new())           // nosniff, frame options, HSTS over https
//!     .enable(TowerLayer::new(tower_http::cors::CorsLayer::permissive())) // any tower layer
//!     .enable(CompressionLayer::new())               // br, zstd, gzip by Accept-Encoding
//!     .mount("/static", Static::new(public))         // files, confined to their folder
//!     .app(site);
//!
//! let response = rgi::testing::TestClient::new(app).get("/").send_blocking();
//! assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
//! assert!(response.header("x-request-id").is_some());
//! // rgi_servers::run(app) serves it; `--protocol fastcgi` behind nginx, or as a CGI program.
//! ```
//!
//! Writing a layer of your own takes a closure: see [`rgi::middleware`] (`from_fn`, `map_request`,
//! `map_response`) and [`rgi::StartResponse::spare`] for answering after the inner application failed.
//! What the stack above costs per request: `cargo bench -p rgi-middleware` (bench/RESULTS.md).
//!
//! The layers:
//!
//! - [`Builder`]: a stack that reads top to bottom (`enable`, `enable_if`, `mount`, `app`).
//! - [`mount`]: dispatch to applications mounted under URL prefixes (SCRIPT_NAME-aware).
//! - [`access_log`]: the server's `--access-logfile` lines (same atoms and formats) under any gateway.
//! - [`limits`]: a request body size limit (413) and a per-request timeout (504), per mount.
//! - [`request_id`]: an `X-Request-Id` for every request, generated or trusted from the proxy.
//! - [`proxy_fix`]: client address, scheme and host from a trusted proxy's `X-Forwarded-*` or `Forwarded`.
//! - [`catch_panic`]: a panic in the application becomes a 500, logged with the request id.
//! - [`error_pages`]: 4xx/5xx pages in HTML or JSON by `Accept`, also for an application's `Err`.
//! - [`static_files`]: files from a directory, confined to it, with validators, ranges and
//!   precompressed siblings; an application or a layer falling through to the inner one.
//! - [`compression`]: `br`, `zstd`, `gzip` negotiated by `Accept-Encoding`, streamed.
//! - [`conditional`]: `304`/`412` for any response with an `ETag` or `Last-Modified`.
//! - [`method_override`]: `_method` form field or `X-HTTP-Method-Override` turns a POST into PUT/PATCH/DELETE.
//! - [`basic_auth`]: RFC 7617 Basic authentication from an htpasswd file (bcrypt, `{SHA}`) or a closure.
//! - [`debug_page`]: a development page with the error chain, backtrace, environ and headers; refused in production.
//! - [`cors`]: CORS through tower-http's `CorsLayer` and `rgi::tower::TowerLayer` (a recipe and its tests).
//! - [`security_headers`]: HSTS (over https), nosniff, frame options, referrer policy, a CSP hook.
//! - [`session`]: sessions (encrypted cookie or server-side stores), flash messages, CSRF protection.
//!
//! The validator middleware lives with the contract, as [`rgi::lint::Lint`]; [`LintLayer`] is re-exported
//! here for development stacks (`Builder::new().enable_when(cfg!(debug_assertions), LintLayer::new())`):
//! it checks every environ and response against SPEC.md (strict by default: a violation fails the
//! request; `LintMode::Log` only writes it to `rgi.errors`).

pub mod access_log;
pub mod basic_auth;
pub mod builder;
pub mod catch_panic;
pub mod compression;
pub mod conditional;
pub mod cors;
pub mod debug_page;
pub mod error_pages;
pub mod limits;
pub mod method_override;
pub mod mount;
pub mod proxy_fix;
pub mod request_id;
pub mod security_headers;
pub mod session;
pub mod static_files;

pub use crate::builder::Builder;
pub use crate::compression::CompressionLayer;
pub use crate::conditional::ConditionalLayer;
pub use crate::mount::Mount;
pub use crate::static_files::Static;
/// The spec validator as a layer, for development and tests:
///
/// ```
/// use rgi_middleware::{Builder, LintLayer};
/// use rgi_middleware::request_id::RequestIdLayer;
///
/// let lint = LintLayer::new();
/// let app = Builder::new()
///     .enable_when(cfg!(debug_assertions), lint.clone())
///     .enable(RequestIdLayer::new())
///     .app(rgi::app_fn(|_, start| async move { start.text("ok") }));
/// let client = rgi::testing::TestClient::new(app);
/// assert_eq!(client.get("/").send_blocking().text(), "ok");
/// assert!(lint.report().errors().is_empty());
/// ```
pub use rgi::lint::{Lint, LintLayer};
