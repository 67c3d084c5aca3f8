//! [`App`] (the builder), [`Blueprint`] (a group of routes mounted under a prefix) and [`Site`] (the
//! built application: an [`rgi::Application`]).

use std::collections::HashMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::FutureExt;
use http::{header, Extensions, HeaderValue, Method, StatusCode};
use rgi::{Application, Environ, Reply, StartResponse};
use rgi_middleware::session::{Csrf, CsrfRejection};

use crate::extract::Request;
use crate::pattern::encode_path;
use crate::response::{IntoResponse, Response};
use crate::routing::{MethodRouter, RouteDef, RouteInfo, RouteTable};
use crate::template::Templates;
use crate::Error;

/// What to do with a request whose path matches a route only with its trailing slash added or removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrailingSlash {
    /// Redirect to the registered form: `301` for `GET`/`HEAD`, `308` for other methods (which keeps
    /// the method and body).
    #[default]
    Redirect,
    /// `404`, as for any other unknown path.
    Strict,
}

/// Size limits for request bodies.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// The most bytes [`Form`](crate::Form), [`Json`](crate::Json), `String` and `Bytes` read (default
    /// 2 MiB); more is `413`.
    pub body: u64,
    /// The most bytes of one multipart field (default 10 MiB).
    pub multipart_field: u64,
    /// The most bytes of a whole multipart body (default 50 MiB).
    pub multipart_total: u64,
    /// Where multipart files saved to disk go (default: the system's temporary directory).
    pub temp_dir: Option<PathBuf>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body: 2 << 20,
            multipart_field: 10 << 20,
            multipart_total: 50 << 20,
            temp_dir: None,
        }
    }
}

type BeforeHook = Arc<dyn Fn(&mut Environ) -> Result<(), Error> + Send + Sync>;
type AfterHook = Arc<dyn Fn(&mut Response) + Send + Sync>;
type ErrorHandler = Arc<dyn Fn(&Error) -> Response + Send + Sync>;

/// A group of routes with its own names, mounted under a prefix: Flask's blueprints, web.py's subdir
/// applications. Its route `"index"` is `"admin.index"` once mounted as `"admin"`.
///
/// ```
/// use rgi_framework::{get, App, Blueprint, Urls};
/// async fn index(urls: Urls) -> String { urls.url_for("admin.user", [("id", 7)]).unwrap() }
/// let admin = Blueprint::new("admin")
///     .route("/", get(index)).name("index")
///     .route("/users/{id}", get(index)).name("user");
/// let app = App::new().blueprint("/admin", admin).build().unwrap();
/// let client = rgi::testing::TestClient::new(app);
/// assert_eq!(client.get("/admin/").send_blocking().text(), "/admin/users/7");
/// ```
#[derive(Debug, Default)]
pub struct Blueprint {
    name: String,
    routes: Vec<RouteDef>,
    problems: Vec<String>,
}

impl fmt::Debug for RouteDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteDef")
            .field("path", &self.path)
            .field("name", &self.name)
            .finish()
    }
}

impl Blueprint {
    /// An empty blueprint whose route names will be prefixed with `name.`.
    pub fn new(name: impl Into<String>) -> Self {
        Blueprint {
            name: name.into(),
            ..Blueprint::default()
        }
    }

    /// Add a route. `path` is matchit's syntax: `/posts/{id}`, `/img-{id}.png`, `/files/{*path}`;
    /// a last segment `/{name?}` (or `/{*rest?}`) is optional: both forms are registered. Malformed or
    /// conflicting routes are reported by [`App::build`].
    pub fn route(mut self, path: &str, methods: MethodRouter) -> Self {
        self.routes.push(RouteDef {
            path: path.to_owned(),
            methods,
            name: None,
        });
        self
    }

    /// Name the route added last, for [`Urls::url_for`](crate::Urls::url_for).
    pub fn name(mut self, name: &str) -> Self {
        match self.routes.last_mut() {
            Some(route) if route.name.is_none() => route.name = Some(name.to_owned()),
            Some(route) => self.problems.push(format!(
                "route `{}` is named twice (`{}` and `{name}`)",
                route.path,
                route.name.as_deref().unwrap_or("")
            )),
            None => self
                .problems
                .push(format!("name `{name}` given before any route")),
        }
        self
    }

    /// Mount `child` under `prefix`: its paths get the prefix, its names `self.name.` + its own.
    pub fn blueprint(mut self, prefix: &str, child: Blueprint) -> Self {
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() && !prefix.starts_with('/') {
            self.problems
                .push(format!("blueprint prefix `{prefix}` must start with `/`"));
        }
        self.problems.extend(child.problems);
        for mut route in child.routes {
            route.path = format!("{prefix}{}", route.path);
            route.name = route.name.map(|n| {
                if child.name.is_empty() {
                    n
                } else {
                    format!("{}.{n}", child.name)
                }
            });
            self.routes.push(route);
        }
        self
    }
}

/// The application builder: routes, blueprints, state, templates, hooks, error handlers.
///
/// ```
/// use rgi_framework::{get, App, Path};
/// async fn hello(Path(name): Path<String>) -> String { format!("Hello, {name}!") }
/// let app = App::new().route("/hello/{name}", get(hello)).build().unwrap();
/// let client = rgi::testing::TestClient::new(app);
/// assert_eq!(client.get("/hello/RGI").send_blocking().text(), "Hello, RGI!");
/// ```
pub struct App {
    root: Blueprint,
    state: Extensions,
    templates: Option<Templates>,
    before: Vec<BeforeHook>,
    after: Vec<AfterHook>,
    error_handlers: HashMap<StatusCode, ErrorHandler>,
    trailing_slash: TrailingSlash,
    limits: Limits,
    csrf: Option<Csrf>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("routes", &self.root.routes)
            .finish_non_exhaustive()
    }
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// An application with no routes.
    pub fn new() -> Self {
        App {
            root: Blueprint::new(""),
            state: Extensions::new(),
            templates: None,
            before: Vec::new(),
            after: Vec::new(),
            error_handlers: HashMap::new(),
            trailing_slash: TrailingSlash::default(),
            limits: Limits::default(),
            csrf: None,
        }
    }

    /// Add a route; see [`Blueprint::route`].
    pub fn route(mut self, path: &str, methods: MethodRouter) -> Self {
        self.root = self.root.route(path, methods);
        self
    }

    /// Name the route added last.
    pub fn name(mut self, name: &str) -> Self {
        self.root = self.root.name(name);
        self
    }

    /// Mount a [`Blueprint`] under `prefix`.
    pub fn blueprint(mut self, prefix: &str, blueprint: Blueprint) -> Self {
        self.root = self.root.blueprint(prefix, blueprint);
        self
    }

    /// Share `value` with every handler, read with [`State<T>`](crate::State) (one value per type).
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Render templates with `templates`; see [`Templates`].
    pub fn templates(mut self, templates: Templates) -> Self {
        self.templates = Some(templates);
        self
    }

    /// Run `hook` before routing (web.py's processors, Flask's `before_request`). It may change the
    /// environ, or answer by returning an `Err` (the handler is then not called).
    pub fn before_request(
        mut self,
        hook: impl Fn(&mut Environ) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Self {
        self.before.push(Arc::new(hook));
        self
    }

    /// Run `hook` on every response (Flask's `after_request`), in the order added.
    pub fn after_request(mut self, hook: impl Fn(&mut Response) + Send + Sync + 'static) -> Self {
        self.after.push(Arc::new(hook));
        self
    }

    /// Answer every [`Error`] with `status` (from routing, an extractor or a handler) with
    /// `handler(&error)`: custom 404, 405 (`Allow` is kept), 500 pages.
    pub fn error_handler<R: IntoResponse>(
        mut self,
        status: StatusCode,
        handler: impl Fn(&Error) -> R + Send + Sync + 'static,
    ) -> Self {
        self.error_handlers
            .insert(status, Arc::new(move |e| handler(e).into_response()));
        self
    }

    /// Set the trailing-slash policy (default: redirect to the registered form).
    pub fn trailing_slash(mut self, policy: TrailingSlash) -> Self {
        self.trailing_slash = policy;
        self
    }

    /// Set the body limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Check unsafe requests (`POST`, `PUT`, `PATCH`, `DELETE`…) for the session's CSRF token with
    /// `csrf` once they are routed: an unknown path is `404` and a method the route does not take
    /// `405`, as in Flask-WTF, and only a request a handler would run is `403` without the token.
    /// Needs [`SessionLayer`](rgi_middleware::session::SessionLayer) around the built [`Site`];
    /// templates get `csrf_token` and `csrf_field` as with the [`Csrf`] layer. A refusal goes
    /// through [`error_handler`](App::error_handler) for its status (`403`, `413`, `400`, `500`).
    ///
    /// ```
    /// use rgi::ApplicationExt;
    /// use rgi_framework::{post, App};
    /// use rgi_middleware::session::{Csrf, Keys, SessionLayer};
    ///
    /// async fn sign() -> &'static str { "signed" }
    /// let site = App::new().route("/sign", post(sign)).csrf(Csrf::new()).build().unwrap();
    /// let sessions = SessionLayer::builder().keys(Keys::ephemeral().unwrap()).build().unwrap();
    /// let client = rgi::testing::TestClient::new(site.layer(sessions));
    /// assert_eq!(client.post("/sign").send_blocking().status(), 403); // no token
    /// assert_eq!(client.delete("/sign").send_blocking().status(), 405); // routed first
    /// assert_eq!(client.post("/nowhere").send_blocking().status(), 404);
    /// ```
    pub fn csrf(mut self, csrf: Csrf) -> Self {
        self.csrf = Some(csrf);
        self
    }

    /// Check every route and build the application.
    ///
    /// # Errors
    ///
    /// [`BuildError`], listing every malformed route, conflict (naming both routes), duplicate name or
    /// method handled twice.
    pub fn build(self) -> Result<Site, BuildError> {
        let mut problems = self.root.problems;
        let table = match RouteTable::build(self.root.routes) {
            Ok(table) => Some(table),
            Err(found) => {
                problems.extend(found);
                None
            }
        };
        problems.dedup();
        let Some(table) = table.filter(|_| problems.is_empty()) else {
            return Err(BuildError { problems });
        };
        let table = Arc::new(table);
        if let Some(templates) = &self.templates {
            templates.set_routes(Arc::clone(&table));
        }
        Ok(Site {
            shared: Arc::new(Shared {
                table,
                state: self.state,
                templates: self.templates,
                before: self.before,
                after: self.after,
                error_handlers: self.error_handlers,
                trailing_slash: self.trailing_slash,
                limits: self.limits,
                csrf: self.csrf,
            }),
        })
    }
}

/// Routes that cannot be built: every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    problems: Vec<String>,
}

impl BuildError {
    /// Each problem.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl std::error::Error for BuildError {}

/// What every request of a [`Site`] shares.
pub(crate) struct Shared {
    pub(crate) table: Arc<RouteTable>,
    pub(crate) state: Extensions,
    pub(crate) templates: Option<Templates>,
    before: Vec<BeforeHook>,
    after: Vec<AfterHook>,
    error_handlers: HashMap<StatusCode, ErrorHandler>,
    trailing_slash: TrailingSlash,
    pub(crate) limits: Limits,
    csrf: Option<Csrf>,
}

/// A built application: an [`rgi::Application`], so it runs under every RGI server and inside any
/// middleware. Cheap to clone.
#[derive(Clone)]
pub struct Site {
    shared: Arc<Shared>,
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("routes", &self.shared.table)
            .finish_non_exhaustive()
    }
}

impl Site {
    /// Every route, one row per method, sorted by path: like `flask routes`.
    ///
    /// ```
    /// use rgi_framework::{get, App};
    /// async fn index() -> &'static str { "hi" }
    /// let app = App::new().route("/", get(index).post(index)).name("index").build().unwrap();
    /// let rows = app.routes();
    /// assert_eq!(rows.len(), 2);
    /// assert_eq!(rows[0].to_string().split_whitespace().take(3).collect::<Vec<_>>(), ["GET", "/", "index"]);
    /// ```
    pub fn routes(&self) -> Vec<RouteInfo> {
        self.shared.table.rows()
    }

    /// The URL of the route `name` for an application mounted at `script_name` (outside a request).
    ///
    /// # Errors
    ///
    /// As [`Urls::url_for`](crate::Urls::url_for).
    pub fn url_for<K: AsRef<str>, V: fmt::Display>(
        &self,
        script_name: &str,
        name: &str,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Result<String, crate::UrlError> {
        let params: Vec<(String, String)> = params
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.to_string()))
            .collect();
        self.shared.table.url_for(script_name, name, &params)
    }

    /// Route and run the handler; every failure is an [`Error`] response.
    async fn dispatch(&self, mut environ: Environ) -> (Response, Option<HeaderValue>) {
        let shared = &self.shared;
        for hook in &shared.before {
            if let Err(error) = hook(&mut environ) {
                return (error.into_response(), None);
            }
        }
        let Ok(path) = std::str::from_utf8(environ.path_info()) else {
            return (
                Error::bad_request("the path is not UTF-8").into_response(),
                None,
            );
        };
        if path.is_empty() {
            // Mounted at `/app` and asked for `/app`: the root route is `/app/`.
            return (redirect(&environ, "/"), None);
        }
        let Some((endpoint, params)) = shared.table.find(path) else {
            if shared.trailing_slash == TrailingSlash::Redirect {
                let other = match path.strip_suffix('/') {
                    Some(stripped) if !stripped.is_empty() => stripped.to_owned(),
                    Some(_) => String::new(),
                    None => format!("{path}/"),
                };
                if !other.is_empty() && shared.table.matches(&other) {
                    return (redirect(&environ, &other), None);
                }
            }
            return (Error::not_found().into_response(), None);
        };
        let method = environ.method().clone();
        let Some(handler) = endpoint.methods.handler(&method) else {
            let allow = endpoint.allow.clone();
            if method == Method::OPTIONS {
                let mut response = StatusCode::NO_CONTENT.into_response();
                response.headers_mut().insert(header::ALLOW, allow);
                return (response, None);
            }
            let error = Error::status_only(StatusCode::METHOD_NOT_ALLOWED);
            return (error.into_response(), Some(allow));
        };
        if let Some(csrf) = &shared.csrf {
            if let Err(rejection) = csrf.verify(&mut environ).await {
                return (csrf_refusal(&rejection), None);
            }
        }
        let request = Request {
            environ,
            params,
            shared: Arc::clone(shared),
        };
        let response = AssertUnwindSafe(handler.call(request)).catch_unwind().await;
        let response =
            response.unwrap_or_else(|_| Error::internal("the handler panicked").into_response());
        (response, None)
    }
}

/// The CSRF check's page, carrying an [`Error`] of its status for the error handlers and the log.
fn csrf_refusal(rejection: &CsrfRejection) -> Response {
    let status = rejection.status();
    let mut response = Response::with_type("text/html; charset=utf-8", rejection.page());
    *response.status_mut() = status;
    response.error = Some(Box::new(Error::new(status, "the CSRF check failed")));
    response
}

/// Redirect to `path` under the environ's mount point, keeping the query: `301` for `GET`/`HEAD`,
/// `308` otherwise (so the method and body are kept).
fn redirect(environ: &Environ, path: &str) -> Response {
    let script_name = String::from_utf8_lossy(environ.script_name());
    let mut location = encode_path(&script_name);
    location.push_str(&encode_path(path));
    if !environ.query_string().is_empty() {
        location.push('?');
        location.push_str(&String::from_utf8_lossy(environ.query_string()));
    }
    let status = if matches!(*environ.method(), Method::GET | Method::HEAD) {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::PERMANENT_REDIRECT
    };
    crate::Redirect::with_status(status, location).into_response()
}

impl Application for Site {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        let errors = environ.errors().clone();
        let (mut response, allow) = self.dispatch(environ).await;
        if let Some(error) = response.error.take() {
            if error.status().is_server_error() {
                match error.cause() {
                    Some(cause) => errors.log(format_args!("rgi-framework: {error}: {cause}")),
                    None => errors.log(format_args!("rgi-framework: {error}")),
                }
            }
            if let Some(handler) = self.shared.error_handlers.get(&error.status()) {
                response = handler(&error);
                *response.status_mut() = error.status();
                if let Some(headers) = error.headers() {
                    response.headers_mut().extend(headers.clone());
                }
            } else {
                response.error = Some(error);
            }
        }
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        for hook in &self.shared.after {
            hook(&mut response);
        }
        response.respond(start)
    }
}
