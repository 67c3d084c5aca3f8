//! # RGI — the Rust Gateway Interface
//!
//! The contract between web **applications**, the **servers** that run them (HTTP, CGI, FastCGI, SCGI,
//! uwsgi) and the **middleware** between the two: Python's WSGI (PEP 3333), for Rust. An application
//! written against this crate runs unchanged under every RGI server, and any number of middleware
//! layers can be stacked around it. The normative text is `SPEC.md` beside this crate.
//!
//! The whole contract is one trait:
//!
//! ```
//! use rgi::{Application, Environ, Reply, StartResponse};
//!
//! struct Hello;
//!
//! impl Application for Hello {
//!     async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
//!         let name = environ.get("QUERY_STRING").map(|q| q.to_string_lossy().into_owned());
//!         start.text(format!("Hello {}!\n", name.as_deref().unwrap_or("World")))
//!     }
//! }
//! # let r = rgi::testing::TestClient::new(Hello).get("/?RGI").send_blocking();
//! # assert_eq!(r.text(), "Hello RGI!\n");
//! ```
//!
//! - [`Environ`]: the request — CGI/1.1 meta-variables by their exact names, headers, `rgi.*` keys,
//!   the body ([`Input`]) and typed extensions.
//! - [`StartResponse`]: consumed to make the one [`Response`] (status, headers, [`Body`]); its
//!   [one-line answers](reply) (`text`, `html`, `json`, `see_other`, `error`, `file`, `status(..).header(..)`).
//! - Composition: [`ApplicationExt`] (`.layer`, `.tower_layer`, `.boxed`), closure middleware in
//!   [`middleware`] (`from_fn`, `map_request`, `map_response`), [`StartResponse::spare`] for answering
//!   after an inner application failed, [`Layer`] (tower's).
//! - [`blocking`] for synchronous code, [`app_fn`] for closures, [`BoxApp`] to erase types.
//! - [`lint`]: a validator for both sides; [`testing`]: an in-process client;
//!   [`tower`]: bridges to and from `tower::Service`; [`convert`]: `http` type conversions.
//!
//! ## Optional features
//!
//! - `rt` (default): [`TokioBlocking`], an executor on tokio's blocking pool, used by the tower bridge.
//!
//! ## Stability
//!
//! `rgi.version` is 1.0. Additions that old applications and servers can ignore (a new capability, a
//! new optional key) keep the major version; see SPEC.md, "Versioning".

// SPEC.md names items as `rgi::…`; inside this crate that path resolves here.
extern crate self as rgi;

mod app;
mod block_on;
mod body;
pub mod convert;
mod environ;
mod errors;
mod executor;
mod ext;
mod input;
pub mod lint;
pub mod middleware;
pub mod reply;
mod response;
pub mod testing;
pub mod tower;

/// The specification, SPEC.md, as rustdoc (its named items are checked links).
pub mod spec;
// The names SPEC.md uses unqualified, for rustdoc's link resolution only.
#[cfg(doc)]
#[allow(unused_imports)]
use crate::{
    convert::{ConnInfo, EnvironMeta, InputLimits},
    lint::{Check, Lint, LintLayer, LintMode, LintReport},
    middleware::Next,
    testing::{TestClient, TestRequest, TestResponse},
    tower::{AppService, ServiceApp, TowerLayer},
};

pub use crate::app::{
    app_fn, blocking, AppFn, Application, Blocking, BoxApp, BoxError, BoxFuture, Reply,
};
pub use crate::block_on::block_on;
pub use crate::body::{Body, BodyClosed, BodyKind, BodySender, FileBody};
pub use crate::environ::{
    environ_from_cgi, Capabilities, Environ, EnvironBuilder, EnvironError, Scheme, ServerInfo, Var,
    VERSION,
};
pub use crate::errors::{Captured, ErrorSink, Errors};
#[cfg(feature = "rt")]
pub use crate::executor::TokioBlocking;
pub use crate::executor::{BlockingJob, Executor, Inline, Overloaded, SharedExecutor};
pub use crate::ext::ApplicationExt;
pub use crate::input::{BodyTooLarge, Input};
pub use crate::reply::ResponseBuilder;
pub use crate::response::{
    is_hop_by_hop, status_allows_body, Response, ResponseError, StartResponse, HOP_BY_HOP,
};

/// Re-exported so that applications name the same `http` types as RGI.
pub use http;
/// Re-exported: middleware layers are `tower_layer::Layer`s whose service is an [`Application`].
pub use tower_layer::Layer;
