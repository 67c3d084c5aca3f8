//! Templates on tera 2: autoescaped HTML, inheritance, `url_for`/`static_url` in templates, values the
//! application exposes, reload in development and a full check at startup in production.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::SystemTime;

use http::StatusCode;
use rgi::Environ;
use sha2::{Digest, Sha256};
use tera::{Context, Kwargs, State, Tera, Value};

use crate::extract::{FromRequestParts, Request};
use crate::pattern::encode_path;
use crate::response::Html;
use crate::routing::RouteTable;
use crate::Error;

/// The context key holding the request's mount point, read by the `url_for`/`static_url` functions.
const SCRIPT_NAME_KEY: &str = "__rgi_script_name";
/// How deep the template directory is walked.
const MAX_DEPTH: usize = 16;

type Processor = Arc<dyn Fn(&Environ, &mut Context) + Send + Sync>;

/// A template that failed to load or render: the file and line, and tera's report.
#[derive(Debug, Clone)]
pub struct TemplateError {
    message: String,
}

impl TemplateError {
    fn from_tera(dir: &Path, error: &tera::Error) -> Self {
        let message = match error.kind() {
            tera::ErrorKind::SyntaxError(report) | tera::ErrorKind::RenderingError(report) => {
                format!(
                    "{}:{}: {}\n{error}",
                    dir.join(report.filename()).display(),
                    report.span().start_line,
                    report.message()
                )
            }
            _ => format!("{}: {error}", dir.display()),
        };
        let mut message = message;
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(&format!("\ncaused by: {cause}"));
            source = cause.source();
        }
        TemplateError { message }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

/// Static files referenced by `static_url`: their URL prefix, their directory, and content hashes.
struct Statics {
    url_prefix: String,
    dir: PathBuf,
    hashes: Mutex<HashMap<PathBuf, (SystemTime, String)>>,
}

impl Statics {
    /// `prefix/path?v=<hash>`: the hash changes when the file does, so it can be cached forever.
    fn url(&self, script_name: &str, path: &str) -> Result<String, String> {
        if path.split('/').any(|s| s == ".." || s.is_empty()) {
            return Err(format!("static_url: `{path}` is not a plain relative path"));
        }
        let file = self.dir.join(path);
        let modified = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .map_err(|e| format!("static_url: {}: {e}", file.display()))?;
        let mut hashes = self.hashes.lock().unwrap_or_else(PoisonError::into_inner);
        let hash = match hashes.get(&file) {
            Some((at, hash)) if *at == modified => hash.clone(),
            _ => {
                let bytes = std::fs::read(&file)
                    .map_err(|e| format!("static_url: {}: {e}", file.display()))?;
                let digest = Sha256::digest(&bytes);
                let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                hashes.insert(file, (modified, hash.clone()));
                hash
            }
        };
        Ok(format!(
            "{}{}/{}?v={hash}",
            encode_path(script_name.trim_end_matches('/')),
            encode_path(&self.url_prefix),
            encode_path(path)
        ))
    }
}

/// The loaded templates and the modification times they were loaded at.
struct Loaded {
    tera: Tera,
    stamp: Vec<(PathBuf, SystemTime)>,
}

/// A directory of tera templates.
///
/// - `.html`, `.htm` and `.xml` templates are autoescaped; inheritance (`{% extends %}`), includes and
///   macros are tera's.
/// - In templates: `url_for(name="post", id=3)` (parameters the route lacks go to the query string),
///   `static_url(path="app.css")` (with a content hash, see [`static_files`](Templates::static_files)),
///   the values given to [`global`](Templates::global); under the session middleware, `flashes` (the
///   flashed messages, each with `category` and `message`, taken when a page renders) and
///   `csrf_token`/`csrf_field`; and whatever the
///   [`context processors`](Templates::context_processor) put in for each request (the current user, the
///   flashed messages, the CSRF token…).
/// - [`Templates::load`] (production) loads and checks every template once: a broken template is an
///   error naming its file and line, at startup. [`Templates::development`] also re-reads the
///   directory when a file changed (checked by modification time on each render): edit, refresh, see it.
///   Rendering errors show file and line on the error page in development, only in the log in production.
///
/// # Why tera 2
///
/// Tera 2 (a rewrite) over 1.x: template functions receive the render state, so `url_for` reads the
/// request's mount point from the context instead of needing a Tera per request; values can be marked
/// safe; `/` is not escaped (URLs in attributes stay readable); an undefined variable is an error rather
/// than an empty string; and its errors carry the template name and a line span, which the startup
/// check and the development error page report.
pub struct Templates {
    dir: PathBuf,
    reload: bool,
    loaded: RwLock<Loaded>,
    routes: Arc<OnceLock<Arc<RouteTable>>>,
    statics: Arc<OnceLock<Statics>>,
    globals: Context,
    processors: Vec<Processor>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("dir", &self.dir)
            .field("reload", &self.reload)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// Load and check every template under `dir`, once (production).
    ///
    /// # Errors
    ///
    /// [`TemplateError`] naming the file and line of the first broken template.
    pub fn load(dir: impl Into<PathBuf>) -> Result<Templates, TemplateError> {
        Self::open(dir.into(), false)
    }

    /// As [`load`](Templates::load), and reload when a file under `dir` changes (development only:
    /// each render stats every file).
    ///
    /// # Errors
    ///
    /// As [`load`](Templates::load).
    pub fn development(dir: impl Into<PathBuf>) -> Result<Templates, TemplateError> {
        Self::open(dir.into(), true)
    }

    /// Templates given as `(name, source)` pairs (e.g. `include_str!`ed into a CGI binary), checked
    /// now; never reloaded.
    ///
    /// # Errors
    ///
    /// [`TemplateError`] naming the template and line of the first broken one.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Templates, TemplateError> {
        let routes = Arc::new(OnceLock::new());
        let statics = Arc::new(OnceLock::new());
        let mut tera = new_tera(&routes, &statics);
        let dir = PathBuf::new();
        tera.add_raw_templates(sources)
            .map_err(|e| TemplateError::from_tera(&dir, &e))?;
        Ok(Templates {
            dir,
            reload: false,
            loaded: RwLock::new(Loaded {
                tera,
                stamp: Vec::new(),
            }),
            routes,
            statics,
            globals: Context::new(),
            processors: Vec::new(),
        })
    }

    fn open(dir: PathBuf, reload: bool) -> Result<Templates, TemplateError> {
        let routes = Arc::new(OnceLock::new());
        let statics = Arc::new(OnceLock::new());
        let loaded = load_dir(&dir, &routes, &statics)?;
        Ok(Templates {
            dir,
            reload,
            loaded: RwLock::new(loaded),
            routes,
            statics,
            globals: Context::new(),
            processors: Vec::new(),
        })
    }

    /// Serve `static_url(path=…)` links as `url_prefix/path?v=hash`, hashing files under `dir`.
    /// (Serve the files themselves with a route, e.g. [`File`](crate::File) on `/static/{*path}`, or
    /// the middleware's static handler.)
    pub fn static_files(self, url_prefix: &str, dir: impl Into<PathBuf>) -> Self {
        let _ = self.statics.set(Statics {
            url_prefix: format!("/{}", url_prefix.trim_matches('/')),
            dir: dir.into(),
            hashes: Mutex::new(HashMap::new()),
        });
        self
    }

    /// Make `value` available to every template as `name`.
    pub fn global(mut self, name: &'static str, value: impl serde::Serialize) -> Self {
        self.globals.insert(name, &value);
        self
    }

    /// Run `processor` for every render, to put per-request values in the context (Flask's context
    /// processors): the session's user, flashed messages, a CSRF token.
    pub fn context_processor(
        mut self,
        processor: impl Fn(&Environ, &mut Context) + Send + Sync + 'static,
    ) -> Self {
        self.processors.push(Arc::new(processor));
        self
    }

    pub(crate) fn set_routes(&self, routes: Arc<RouteTable>) {
        let _ = self.routes.set(routes);
    }

    /// Render `name` with `context` (outside a request: no mount point, no processors).
    ///
    /// # Errors
    ///
    /// [`TemplateError`] naming the file and line.
    pub fn render(&self, name: &str, context: &Context) -> Result<String, TemplateError> {
        self.render_layers(name, &[context])
    }

    /// Render `name` with the globals, then each of `layers` over the ones before: every value is
    /// copied once (tera renders from one owned context).
    fn render_layers(&self, name: &str, layers: &[&Context]) -> Result<String, TemplateError> {
        if self.reload {
            self.reload_if_changed()?;
        }
        let mut full = self.globals.clone();
        for layer in layers {
            full.extend((*layer).clone());
        }
        let loaded = self.loaded.read().unwrap_or_else(PoisonError::into_inner);
        loaded
            .tera
            .render(name, &full)
            .map_err(|e| TemplateError::from_tera(&self.dir, &e))
    }

    fn reload_if_changed(&self) -> Result<(), TemplateError> {
        let current = stamp(&self.dir)?;
        let changed = {
            let loaded = self.loaded.read().unwrap_or_else(PoisonError::into_inner);
            loaded.stamp != current
        };
        if changed {
            let fresh = load_dir(&self.dir, &self.routes, &self.statics)?;
            *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        }
        Ok(())
    }
}

/// Every file under `dir` (sorted) with its modification time.
fn stamp(dir: &Path) -> Result<Vec<(PathBuf, SystemTime)>, TemplateError> {
    let mut files = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), 0)];
    while let Some((current, depth)) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| TemplateError {
            message: format!("{}: {e}", current.display()),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() && depth < MAX_DEPTH {
                pending.push((path, depth + 1));
            } else if meta.is_file() {
                let hidden = path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if !hidden {
                    files.push((path, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

fn load_dir(
    dir: &Path,
    routes: &Arc<OnceLock<Arc<RouteTable>>>,
    statics: &Arc<OnceLock<Statics>>,
) -> Result<Loaded, TemplateError> {
    let files = stamp(dir)?;
    let mut tera = new_tera(routes, statics);
    let named: Vec<(PathBuf, String)> = files
        .iter()
        .filter_map(|(path, _)| {
            let name = path.strip_prefix(dir).ok()?;
            let name: Vec<String> = name
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            Some((path.clone(), name.join("/")))
        })
        .collect();
    tera.add_template_files(named.iter().map(|(p, n)| (p, Some(n.as_str()))))
        .map_err(|e| TemplateError::from_tera(dir, &e))?;
    Ok(Loaded { tera, stamp: files })
}

/// A Tera with the framework's functions.
fn new_tera(routes: &Arc<OnceLock<Arc<RouteTable>>>, statics: &Arc<OnceLock<Statics>>) -> Tera {
    let mut tera = Tera::new();
    let routes = Arc::clone(routes);
    tera.register_function("url_for", move |kwargs: Kwargs, state: &State| {
        url_for_function(&routes, &kwargs, state)
    });
    let statics = Arc::clone(statics);
    tera.register_function("static_url", move |kwargs: Kwargs, state: &State| {
        let path: String = kwargs.must_get("path")?;
        let script_name: String = state.get(SCRIPT_NAME_KEY)?.unwrap_or_default();
        let statics = statics.get().ok_or_else(|| {
            tera::Error::message(
                "static_url: no static directory configured (Templates::static_files)",
            )
        })?;
        statics
            .url(&script_name, &path)
            .map_err(tera::Error::message)
    });
    tera
}

fn url_for_function(
    routes: &OnceLock<Arc<RouteTable>>,
    kwargs: &Kwargs,
    state: &State,
) -> tera::TeraResult<String> {
    let table = routes.get().ok_or_else(|| {
        tera::Error::message("url_for: the templates are not part of a built App")
    })?;
    let name: String = kwargs.must_get("name")?;
    let script_name: String = state.get(SCRIPT_NAME_KEY)?.unwrap_or_default();
    let params: Vec<(String, String)> = kwargs
        .iter()
        .filter(|(k, _)| k.as_str() != Some("name"))
        .map(|(k, v)| (k.to_string(), value_text(v)))
        .collect();
    table
        .url_for(&script_name, &name, &params)
        .map_err(|e| tera::Error::message(e.to_string()))
}

fn value_text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// Render templates in a handler: `render.page("index.html", &context)` gives an [`Html`] response.
///
/// The context gets the application's globals, the request's mount point (for `url_for` and
/// `static_url`) and whatever the context processors add.
pub struct Render {
    request_context: Context,
    /// The session's flash messages, taken only when a page renders: a handler that extracts
    /// `Render` but answers otherwise (a redirect) leaves them for the next page.
    flash: Option<rgi_middleware::session::Flash>,
    shared: Arc<crate::app::Shared>,
}

impl fmt::Debug for Render {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Render").finish_non_exhaustive()
    }
}

impl Render {
    /// Render `name` with `context` into an HTML response.
    ///
    /// # Errors
    ///
    /// A `500` [`Error`]; in development its message shows the file, line and tera's report.
    pub fn page(&self, name: &str, context: &Context) -> Result<Html<String>, Error> {
        self.text(name, context).map(Html)
    }

    /// Render `name` with `context` into a string.
    ///
    /// # Errors
    ///
    /// As [`page`](Render::page).
    pub fn text(&self, name: &str, context: &Context) -> Result<String, Error> {
        let Some(templates) = &self.shared.templates else {
            return Err(Error::internal("no templates configured (App::templates)"));
        };
        let mut flashes = Context::new();
        if let Some(flash) = &self.flash {
            flashes.insert("flashes", &flash.take());
        }
        templates
            .render_layers(name, &[&self.request_context, &flashes, context])
            .map_err(|e| {
                if templates.reload {
                    Error::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("template error: {e}"),
                    )
                    .with_cause(e)
                } else {
                    Error::internal(e)
                }
            })
    }
}

impl FromRequestParts for Render {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        let mut context = Context::new();
        let script_name = String::from_utf8_lossy(request.environ.script_name()).into_owned();
        context.insert(SCRIPT_NAME_KEY, &script_name);
        // The session middleware's values, when it runs: flashed messages (shown once, taken at
        // render time) and the CSRF token for forms.
        let flash = rgi_middleware::session::Flash::from_environ(&request.environ);
        if let Some(token) = rgi_middleware::session::CsrfToken::from_environ(&request.environ) {
            context.insert("csrf_token", token.as_str());
            context.insert("csrf_field", token.field());
        }
        if let Some(templates) = &request.shared.templates {
            for processor in &templates.processors {
                processor(&request.environ, &mut context);
            }
        }
        Ok(Render {
            request_context: context,
            flash,
            shared: Arc::clone(&request.shared),
        })
    }
}
