//! # rgi-framework
//!
//! A small web framework with the feel of web.py and Flask and the types of axum, whose application
//! **is** an [`rgi::Application`]: it runs unchanged under every RGI server (HTTP, CGI, FastCGI, SCGI,
//! uwsgi) and inside any RGI middleware.
//!
//! ```
//! use rgi_framework::{get, App, Json, Path};
//!
//! async fn hello(Path(name): Path<String>) -> String {
//!     format!("Hello, {name}!")
//! }
//! async fn add(Json(numbers): Json<Vec<i64>>) -> Json<i64> {
//!     Json(numbers.iter().sum())
//! }
//!
//! let app = App::new()
//!     .route("/hello/{name}", get(hello)).name("hello")
//!     .route("/add", rgi_framework::post(add))
//!     .build()
//!     .expect("routes are valid");
//! let client = rgi::testing::TestClient::new(app);
//! assert_eq!(client.get("/hello/RGI").send_blocking().text(), "Hello, RGI!");
//! let sum = client.post("/add").header("content-type", "application/json").body("[1,2,3]");
//! assert_eq!(sum.send_blocking().text(), "6");
//! ```
//!
//! - Routing: [`App`], [`Blueprint`], [`get`]/[`post`]/…, [`MethodRouter`]; [`Urls::url_for`] for
//!   reverse routing; [`Site::routes`] to list them.
//! - Handlers: [`Handler`], [`blocking`]; responses: [`IntoResponse`], [`Html`], [`Json`],
//!   [`Redirect`], [`File`], [`Error`].
//! - Extractors: [`Path`], [`Query`], [`Form`], [`Json`], [`Multipart`], [`State`], [`Cookies`],
//!   [`Urls`], [`Render`], `HeaderMap`, `Method`, `String`, `Bytes`, [`rgi::Environ`], [`rgi::Input`].
//! - Sessions: `rgi_middleware::session::{Session, Flash, CsrfToken}` are extractors once the
//!   session layer wraps the application; templates then see `flashes` and `csrf_token`.
//! - Templates: [`Templates`] (tera 2), rendered with [`Render`]; [`context!`] builds a context.
//! - Forms shown again with their errors: [`Checks`] trims and validates the fields.
//!
//! The [`guide`] goes from hello world to a small application and how to deploy it.

mod app;
mod de;
mod error;
mod extract;
mod handler;
mod multipart;
mod pattern;
mod response;
mod routing;
mod session;
mod template;
mod validate;

pub mod guide;

pub use crate::app::{App, Blueprint, BuildError, Limits, Site, TrailingSlash};
pub use crate::error::Error;
pub use crate::extract::{
    marker, Cookies, Form, FromRequest, FromRequestParts, Path, Query, Request, State, Urls,
};
pub use crate::handler::{blocking, Blocking, Handler};
pub use crate::multipart::{Field, Multipart, SavedFile};
pub use crate::response::{File, Html, IntoResponse, Json, Redirect, Response};
pub use crate::routing::{
    delete, get, head, options, patch, post, put, MethodRouter, RouteInfo, UrlError,
};
pub use crate::template::{Render, TemplateError, Templates};
pub use crate::validate::{Checks, TextCheck};

/// Re-exported: the context type templates are rendered with.
pub use tera::Context;

/// Re-exported from tera: a [`Context`] from `key => value` pairs, or from local variables by
/// name, in one expression.
///
/// ```
/// use rgi_framework::{context, get, App, Error, Html, Render, Templates};
///
/// async fn page(render: Render) -> Result<Html<String>, Error> {
///     let names = ["Ada", "<Bob>"];
///     render.page("list.html", &context! { names, title => "Guests" })
/// }
///
/// let templates = Templates::from_sources([(
///     "list.html",
///     "<h1>{{ title }}</h1>{% for n in names %}<p>{{ n }}</p>{% endfor %}",
/// )])
/// .unwrap();
/// let app = App::new().route("/", get(page)).templates(templates).build().unwrap();
/// let client = rgi::testing::TestClient::new(app);
/// let html = client.get("/").send_blocking().text();
/// assert_eq!(html, "<h1>Guests</h1><p>Ada</p><p>&lt;Bob&gt;</p>");
/// ```
pub use tera::context;
