//! Serving files from a directory, with no way out of it.
//!
//! [`Static`] is an application (mount it under a prefix) and a layer (in front of an application,
//! falling through to it when no file matches: [`Static::fallback`], or `app.layer(Static::new(…))`).
//!
//! - **Confinement.** The request path (`PATH_INFO`, decoded once by the gateway) is split into
//!   segments; `..`, backslashes, NUL and an encoded `/`, `\` or NUL in the raw `REQUEST_URI`
//!   (`%2f`, `%5c`, `%00`) are refused with `400`; Windows device names (`CON`, `NUL`, `AUX`,
//!   `COM1`…, with or without an extension) with `404`. The joined path is then canonicalized and
//!   must lie inside the canonical root, so a symlink leading outside is `404` (symlinks inside the
//!   root are followed). `%252e%252e` is a file literally named `%2e%2e`: nothing is decoded twice.
//! - **Validators.** `ETag` (from the length and modification time) and `Last-Modified`;
//!   `If-None-Match`/`If-Modified-Since` answer `304`, `If-Match`/`If-Unmodified-Since` `412`
//!   (see [`conditional`](crate::conditional)).
//! - **Ranges.** One range → `206` with `Content-Range`; a range past the end → `416` with
//!   `Content-Range: bytes */LEN`; several ranges are answered with the whole file (`200`), not
//!   `multipart/byteranges`; `If-Range` is honoured. Ranges apply to `GET`.
//! - **Precompressed siblings** ([`precompressed`](Static::precompressed), off by default):
//!   `file.br`, `file.zst`, `file.gz` next to `file`, chosen by `Accept-Encoding` and its q-values,
//!   sent with `Content-Encoding`, the original's media type, an `ETag` of their own and
//!   `Vary: Accept-Encoding`. A request with `Range` gets the plain file.
//! - **Media types** from the extension ([`rgi::reply::content_type_for`]: `mime_guess`, text in
//!   UTF-8).
//! - **Directories**: `index.html` (see [`index_file`](Static::index_file)) is served for `dir/`;
//!   `dir` without the slash is redirected (`301`) to `dir/`. Without an index, a directory is `404`
//!   (there are no listings).
//! - **Methods**: `GET` and `HEAD`. As an application, other methods get `405` with
//!   `Allow: GET, HEAD`; as a layer, they go to the inner application, as does every path that
//!   names no file (refused paths included: they may be the inner application's routes).
//!
//! Bodies are [`Body::file_range`](rgi::Body::file_range), which servers send with `sendfile`.
//! Resolving a path (`canonicalize`, `open`, `fstat`, the sibling look-ups) takes blocking system
//! calls, so it runs as one job on the environ's [executor](rgi::Environ::executor): the blocking
//! pool under the async servers, the request's own thread under CGI and the test client. A full pool
//! makes the request fail with [`rgi::Overloaded`] (`503`).
//!
//! ```
//! use http::StatusCode;
//! use rgi_middleware::{static_files::Static, Mount};
//!
//! let root = std::env::temp_dir().join(format!("rgi-static-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&root)?;
//! std::fs::write(root.join("hello.txt"), "hello, file")?;
//! let app = Mount::new().at("/static", Static::new(&root));
//! let client = rgi::testing::TestClient::new(app);
//!
//! let response = client.get("/static/hello.txt").send_blocking();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
//! assert_eq!(response.text(), "hello, file");
//! assert_eq!(client.get("/static/../etc/passwd").send_blocking().status(), StatusCode::BAD_REQUEST);
//!
//! let etag = response.header("etag").unwrap();
//! let cached = client.get("/static/hello.txt").header("if-none-match", etag).send_blocking();
//! assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
//! let part = client.get("/static/hello.txt").header("range", "bytes=7-").send_blocking();
//! assert_eq!((part.status(), part.text().as_str()), (StatusCode::PARTIAL_CONTENT, "file"));
//! # std::fs::remove_dir_all(&root)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! As a layer in a stack, in front of the application (files first, the application for the rest):
//!
//! ```
//! use rgi_middleware::{Builder, CompressionLayer, ConditionalLayer, Static};
//!
//! # let root = std::env::temp_dir().join(format!("rgi-static-doc2-{}", std::process::id()));
//! # std::fs::create_dir_all(&root)?;
//! std::fs::write(root.join("app.css"), "body { margin: 0 }\n".repeat(100))?;
//! let site = rgi::app_fn(|_, start| async move { start.html("<h1>home</h1>") });
//! let app = Builder::new()
//!     .enable(ConditionalLayer::new())
//!     .enable(CompressionLayer::new())
//!     .enable(Static::new(&root))
//!     .app(site);
//! let client = rgi::testing::TestClient::new(app);
//! let css = client.get("/app.css").header("accept-encoding", "gzip").send_blocking();
//! assert_eq!(css.header("content-encoding"), Some("gzip"));
//! assert!(css.header("etag").unwrap().starts_with("W/"));
//! assert_eq!(client.get("/").send_blocking().text(), "<h1>home</h1>");
//! # std::fs::remove_dir_all(&root)?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod path;
mod range;
mod resolve;

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use percent_encoding::{percent_encode, AsciiSet, CONTROLS};
use rgi::{Application, Body, BoxError, Environ, Reply, StartResponse};
use tower_layer::Layer;

use self::range::ByteRange;
use self::resolve::{Found, Lookup, Place};
use crate::compression::{add_vary, AcceptEncoding, Encoding};
use crate::conditional::{if_range_allows, Precondition};

/// The precompressed siblings tried, in the server's order of preference for ties.
const SIBLINGS: [Encoding; 3] = [Encoding::Brotli, Encoding::Zstd, Encoding::Gzip];

/// Files from a directory; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Static {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    place: Place,
    precompressed: bool,
    cache_control: Option<HeaderValue>,
}

impl Static {
    /// Serve the files under `root`, with `index.html` as the directory index.
    ///
    /// The root is canonicalized now (so that later checks compare canonical paths). If that fails
    /// (it does not exist yet), it is kept as given and every request is `404` until it exists at a
    /// path whose canonical form is that one.
    pub fn new(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Static {
            config: Arc::new(Config {
                place: Place {
                    root,
                    index: Some(OsString::from("index.html")),
                },
                precompressed: false,
                cache_control: None,
            }),
        }
    }

    /// The directory served (canonical when it existed at [`new`](Static::new)).
    pub fn root(&self) -> &Path {
        &self.config.place.root
    }

    /// The file served for a directory (`None`: directories are `404`). Default `index.html`.
    pub fn index_file(self, name: Option<&str>) -> Self {
        self.with(|c| c.place.index = name.map(OsString::from))
    }

    /// Send `file.br`, `file.zst` or `file.gz` in place of `file` when it exists and the client
    /// accepts that coding. Default off (each try costs a look-up).
    pub fn precompressed(self, enabled: bool) -> Self {
        self.with(|c| c.precompressed = enabled)
    }

    /// A `Cache-Control` value for every file (e.g. `public, max-age=3600`). Default none.
    pub fn cache_control(self, value: HeaderValue) -> Self {
        self.with(|c| c.cache_control = Some(value))
    }

    /// Serve files, and pass every request that names none to `app`.
    pub fn fallback<A: Application>(self, app: A) -> StaticFallback<A> {
        StaticFallback {
            files: self,
            inner: app,
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// Look the request's path up: a file, a redirect, or the status refusing it. The environ is
    /// handed back (it is not `Sync`, so no reference to it may live across the wait).
    async fn lookup(&self, environ: Environ) -> Result<(Outcome, Environ), BoxError> {
        let (segments, rx) = match self.begin(&environ)? {
            Ok(begun) => begun,
            Err(status) => return Ok((Outcome::Refused(status), environ)),
        };
        let lookup = rx.await.map_err(|_| {
            std::io::Error::other("rgi-middleware: static file look-up lost (did it panic?)")
        })?;
        let outcome = match lookup {
            Lookup::Found(found) => Outcome::File(found),
            Lookup::Directory => Outcome::Redirect(directory_location(&environ, &segments)),
            Lookup::NotFound => Outcome::Refused(StatusCode::NOT_FOUND),
        };
        Ok((outcome, environ))
    }

    /// Check the path and start the look-up on the executor.
    #[allow(clippy::type_complexity)]
    fn begin(&self, environ: &Environ) -> Result<Result<Begun, StatusCode>, BoxError> {
        let segments = match path::segments(environ.path_info(), environ.request_uri()) {
            Ok(segments) => segments,
            Err(status) => return Ok(Err(status)),
        };
        // Ranges are served from the plain file: a range of a compressed sibling is rarely wanted.
        let encodings =
            if self.config.precompressed && !environ.headers().contains_key(header::RANGE) {
                AcceptEncoding::of(environ.headers()).ranked(&SIBLINGS)
            } else {
                Vec::new()
            };
        let config = Arc::clone(&self.config);
        let parts = segments.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Box::new(move || {
            let _ = tx.send(config.place.resolve(&parts, &encodings));
        });
        environ.executor().spawn_blocking(job)?;
        Ok(Ok((segments, rx)))
    }

    /// Answer with `found`: `200`, `206`, `304`, `412` or `416`.
    fn respond(&self, found: Found, environ: &Environ, start: StartResponse) -> Reply {
        let Found {
            file,
            len,
            modified,
            asked,
            encoding,
        } = found;
        let request = environ.headers();
        let etag = entity_tag(len, modified, encoding);
        let mut headers = HeaderMap::new();
        if let Some(modified) = modified {
            if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
                headers.insert(header::LAST_MODIFIED, date);
            }
        }
        headers.insert(header::ETAG, etag.clone());
        if let Some(value) = &self.config.cache_control {
            headers.insert(header::CACHE_CONTROL, value.clone());
        }
        if self.config.precompressed {
            add_vary(&mut headers);
        }
        match Precondition::evaluate(environ.method(), request, Some(&etag), modified) {
            Precondition::Proceed => {}
            Precondition::NotModified => {
                return Ok(start.respond(StatusCode::NOT_MODIFIED, headers, ())?)
            }
            Precondition::Failed => return start.error(StatusCode::PRECONDITION_FAILED),
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::try_from(rgi::reply::content_type_for(&asked))?,
        );
        match encoding {
            Some(encoding) => {
                headers.insert(
                    header::CONTENT_ENCODING,
                    HeaderValue::from_static(encoding.as_str()),
                );
            }
            None => {
                headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            }
        }
        let range = match request.get(header::RANGE) {
            Some(value)
                if environ.method() == Method::GET
                    && encoding.is_none()
                    && if_range_allows(request, &etag, modified) =>
            {
                ByteRange::parse(value.as_bytes(), len)
            }
            _ => ByteRange::Whole,
        };
        match range {
            ByteRange::Whole => {
                Ok(start.respond(StatusCode::OK, headers, Body::file_range(file, 0, len))?)
            }
            ByteRange::Part {
                start: first,
                len: part,
            } => {
                let content_range = format!("bytes {first}-{}/{len}", first + part - 1);
                headers.insert(header::CONTENT_RANGE, HeaderValue::try_from(content_range)?);
                Ok(start.respond(
                    StatusCode::PARTIAL_CONTENT,
                    headers,
                    Body::file_range(file, first, part),
                )?)
            }
            ByteRange::Unsatisfiable => {
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::try_from(format!("bytes */{len}"))?,
                );
                plain(start, StatusCode::RANGE_NOT_SATISFIABLE, headers)
            }
        }
    }
}

/// A look-up under way: the checked segments, and where its result arrives.
type Begun = (path::Segments, tokio::sync::oneshot::Receiver<Lookup>);

/// What a request gets.
#[derive(Debug)]
enum Outcome {
    File(Found),
    Redirect(String),
    Refused(StatusCode),
}

/// Whether `method` may read a file.
fn readable(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

impl Application for Static {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        if !readable(environ.method()) {
            let mut headers = HeaderMap::new();
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return plain(start, StatusCode::METHOD_NOT_ALLOWED, headers);
        }
        match self.lookup(environ).await? {
            (Outcome::File(found), environ) => self.respond(found, &environ, start),
            (Outcome::Redirect(location), _) => {
                start.redirect(StatusCode::MOVED_PERMANENTLY, &location)
            }
            (Outcome::Refused(status), _) => start.error(status),
        }
    }
}

impl<A> Layer<A> for Static {
    type Service = StaticFallback<A>;

    fn layer(&self, inner: A) -> StaticFallback<A> {
        StaticFallback {
            files: self.clone(),
            inner,
        }
    }
}

/// Files first, then the inner application for everything else; made by [`Static::fallback`] or by
/// [`Static`] as a [`Layer`].
#[derive(Debug, Clone)]
pub struct StaticFallback<A> {
    files: Static,
    inner: A,
}

impl<A: Application> Application for StaticFallback<A> {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        if !readable(environ.method()) {
            return self.inner.call(environ, start).await;
        }
        match self.files.lookup(environ).await? {
            (Outcome::File(found), environ) => self.files.respond(found, &environ, start),
            (Outcome::Redirect(location), _) => {
                start.redirect(StatusCode::MOVED_PERMANENTLY, &location)
            }
            (Outcome::Refused(_), environ) => self.inner.call(environ, start).await,
        }
    }
}

/// A short `text/plain` answer (`404 Not Found\n`) with `headers`.
fn plain(start: StartResponse, status: StatusCode, headers: HeaderMap) -> Reply {
    let reason = status.canonical_reason().unwrap_or("");
    start
        .status(status)
        .header_map(headers)
        .text(format!("{} {reason}\n", status.as_u16()))
}

/// Characters escaped in a path segment of the `Location` (RFC 3986 `pchar` keeps the rest).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// `SCRIPT_NAME/seg/ments/` (+ the query): built from the checked segments, never from the raw
/// path, so `//evil.example` cannot become a protocol-relative redirect.
fn directory_location(environ: &Environ, segments: &path::Segments) -> String {
    let mut location = String::new();
    for part in environ
        .script_name()
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
    {
        location.push('/');
        location.extend(percent_encode(part, SEGMENT));
    }
    for part in &segments.parts {
        location.push('/');
        location.extend(percent_encode(part.as_encoded_bytes(), SEGMENT));
    }
    location.push('/');
    let query = environ.query_string();
    if !query.is_empty() {
        location.push('?');
        location.push_str(&String::from_utf8_lossy(query));
    }
    location
}

/// `"LEN-SECS.NANOS"` in hex, with the coding of a precompressed sibling: changes whenever the file
/// is rewritten (or touched), and differs between the variants.
fn entity_tag(
    len: u64,
    modified: Option<std::time::SystemTime>,
    encoding: Option<Encoding>,
) -> HeaderValue {
    let since = modified
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    let suffix = encoding.map_or(String::new(), |e| format!("-{}", e.as_str()));
    let tag = format!(
        "\"{len:x}-{:x}.{:x}{suffix}\"",
        since.as_secs(),
        since.subsec_nanos()
    );
    HeaderValue::try_from(tag).unwrap_or(HeaderValue::from_static("\"0\""))
}

#[cfg(test)]
mod tests;
