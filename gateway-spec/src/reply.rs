//! Responding in one line: the common answers as methods on [`StartResponse`], and a
//! [`ResponseBuilder`] for a status or extra headers given as pairs.
//!
//! Every method ends in a [`Reply`], so it can be the last expression of `call`:
//!
//! ```
//! use http::StatusCode;
//! let app = rgi::app_fn(|environ, start| async move {
//!     match environ.path_info() {
//!         b"/" => start.html("<h1>Hello</h1>"),
//!         b"/old" => start.redirect(StatusCode::PERMANENT_REDIRECT, "/"),
//!         b"/made" => start.status(StatusCode::CREATED).header("location", "/made/1").text("made"),
//!         _ => start.error(StatusCode::NOT_FOUND),
//!     }
//! });
//! let client = rgi::testing::TestClient::new(app);
//! assert_eq!(client.get("/").send_blocking().header("content-type"), Some("text/html; charset=utf-8"));
//! assert_eq!(client.get("/old").send_blocking().header("location"), Some("/"));
//! assert_eq!(client.get("/made").send_blocking().status(), 201);
//! assert_eq!(client.get("/nope").send_blocking().text(), "404 Not Found\n");
//! ```

use std::fmt;
use std::io;
use std::path::Path;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use crate::{Body, Reply, StartResponse};

/// `text/plain; charset=utf-8`
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// `text/html; charset=utf-8`
pub const TEXT_HTML: &str = "text/html; charset=utf-8";
/// `application/json`
pub const APPLICATION_JSON: &str = "application/json";

impl StartResponse {
    /// Start a response with `status`, to add headers to and finish with a body method.
    pub fn status(self, status: StatusCode) -> ResponseBuilder {
        ResponseBuilder {
            start: self,
            status,
            headers: Ok(HeaderMap::new()),
        }
    }

    /// Start a `200 OK` response with one header; see [`ResponseBuilder::header`].
    pub fn header<K, V>(self, name: K, value: V) -> ResponseBuilder
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        self.status(StatusCode::OK).header(name, value)
    }

    /// `200 OK`, `text/plain; charset=utf-8`.
    pub fn text(self, body: impl Into<Body>) -> Reply {
        self.status(StatusCode::OK).text(body)
    }

    /// `200 OK`, `text/html; charset=utf-8`.
    pub fn html(self, body: impl Into<Body>) -> Reply {
        self.status(StatusCode::OK).html(body)
    }

    /// `200 OK`, `application/json`, the value serialised with `serde_json`.
    ///
    /// # Errors
    ///
    /// When the value cannot be serialised (a map with non-string keys, a failing `Serialize` impl).
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Reply {
        self.status(StatusCode::OK).json(value)
    }

    /// `200 OK` with the given `Content-Type`.
    pub fn bytes(self, content_type: &str, body: impl Into<Body>) -> Reply {
        self.status(StatusCode::OK).body(content_type, body)
    }

    /// A response with `status` and no body (`204 No Content`, `202 Accepted` …).
    pub fn empty(self, status: StatusCode) -> Reply {
        self.status(status).empty()
    }

    /// `303 See Other` to `location`: the answer to a successful `POST` (the browser then GETs it).
    pub fn see_other(self, location: &str) -> Reply {
        self.redirect(StatusCode::SEE_OTHER, location)
    }

    /// A redirect with a 3xx `status` (301, 302, 303, 307 or 308) to `location`, with a short text
    /// body for clients that do not follow it.
    ///
    /// # Errors
    ///
    /// When `status` is not a redirection, or `location` cannot be a header value (CR, LF, NUL).
    pub fn redirect(self, status: StatusCode, location: &str) -> Reply {
        if !status.is_redirection() {
            return Err(Box::new(NotARedirect(status)));
        }
        let body = format!("{status}: {location}\n");
        self.status(status)
            .header(header::LOCATION, location)
            .text(body)
    }

    /// An error answer: `status` with the body `"404 Not Found\n"` (code and reason), `text/plain`.
    pub fn error(self, status: StatusCode) -> Reply {
        let body = status_line(status);
        self.status(status).text(body + "\n")
    }

    /// An error answer with a short message: `"400 Bad Request: missing field `name`\n"`.
    pub fn error_with(self, status: StatusCode, message: impl fmt::Display) -> Reply {
        let body = format!("{}: {message}\n", status_line(status));
        self.status(status).text(body)
    }

    /// The file at `path`, `200 OK`, its `Content-Type` guessed from the extension
    /// (`application/octet-stream` when unknown), as a file body that servers may `sendfile`.
    /// A missing file (or a directory) is `404 Not Found`.
    ///
    /// Opening a file blocks briefly; for conditional requests, ranges and a root no path can leave,
    /// use the static-files middleware.
    ///
    /// # Errors
    ///
    /// Other I/O errors (permissions, a broken disk): the server answers 500.
    pub fn file(self, path: impl AsRef<Path>) -> Reply {
        let path = path.as_ref();
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return self.error(StatusCode::NOT_FOUND);
            }
            Err(e) => return Err(Box::new(e)),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return self.error(StatusCode::NOT_FOUND);
        }
        let mime = content_type_for(path);
        self.status(StatusCode::OK)
            .body(&mime, Body::file_range(file, 0, meta.len()))
    }
}

/// The `Content-Type` for a file name by its extension, with `charset=utf-8` for text types.
pub fn content_type_for(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    if mime.type_() == mime_guess::mime::TEXT
        || mime.essence_str() == "application/javascript"
        || mime.essence_str() == "image/svg+xml"
    {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_owned()
    }
}

fn status_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A response being put together: a status, headers, then one body method to finish it.
///
/// Made by [`StartResponse::status`] or [`StartResponse::header`]. A header that cannot be built
/// (a bad name, CR/LF in a value) makes the finishing method return the error.
///
/// ```
/// use http::StatusCode;
/// let app = rgi::app_fn(|_, start| async move {
///     start
///         .status(StatusCode::OK)
///         .headers([("cache-control", "no-store"), ("x-frame-options", "DENY")])
///         .json(&serde_json::json!({"ok": true}))
/// });
/// let response = rgi::testing::TestClient::new(app).get("/").send_blocking();
/// assert_eq!(response.header("cache-control"), Some("no-store"));
/// assert_eq!(response.text(), r#"{"ok":true}"#);
/// ```
#[must_use = "finish the response with a body method (text, html, json, body, empty)"]
pub struct ResponseBuilder {
    start: StartResponse,
    status: StatusCode,
    headers: Result<HeaderMap, http::Error>,
}

impl ResponseBuilder {
    /// Append a header (a second value for a name already set is added, not replaced).
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        if let Ok(headers) = &mut self.headers {
            match (name.try_into(), value.try_into()) {
                (Ok(name), Ok(value)) => {
                    headers.append(name, value);
                }
                (Err(e), _) => self.headers = Err(e.into()),
                (_, Err(e)) => self.headers = Err(e.into()),
            }
        }
        self
    }

    /// Append headers given as pairs, e.g. `[("cache-control", "no-store"), ("x-a", "b")]`.
    pub fn headers<I, K, V>(self, pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        pairs
            .into_iter()
            .fold(self, |builder, (k, v)| builder.header(k, v))
    }

    /// Append every header of `map`.
    pub fn header_map(mut self, map: HeaderMap) -> Self {
        if let Ok(headers) = &mut self.headers {
            headers.extend(map);
        }
        self
    }

    /// Finish with `body` and the given `Content-Type` (unless a `Content-Type` header was added).
    ///
    /// # Errors
    ///
    /// A header that could not be built, or a response that breaks the spec
    /// ([`ResponseError`](crate::ResponseError)).
    pub fn body(self, content_type: &str, body: impl Into<Body>) -> Reply {
        let mut headers = self.headers?;
        if !headers.contains_key(header::CONTENT_TYPE) {
            headers.insert(header::CONTENT_TYPE, HeaderValue::try_from(content_type)?);
        }
        Ok(self.start.respond(self.status, headers, body)?)
    }

    /// Finish with a `text/plain; charset=utf-8` body.
    pub fn text(self, body: impl Into<Body>) -> Reply {
        self.body(TEXT_PLAIN, body)
    }

    /// Finish with a `text/html; charset=utf-8` body.
    pub fn html(self, body: impl Into<Body>) -> Reply {
        self.body(TEXT_HTML, body)
    }

    /// Finish with the value as JSON (`application/json`).
    ///
    /// # Errors
    ///
    /// As [`body`](Self::body), and when the value cannot be serialised.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Reply {
        let bytes = serde_json::to_vec(value)?;
        self.body(APPLICATION_JSON, bytes)
    }

    /// Finish with no body and no `Content-Type` (for 204, 304, or a bare status).
    ///
    /// # Errors
    ///
    /// As [`body`](Self::body).
    pub fn empty(self) -> Reply {
        let headers = self.headers?;
        Ok(self.start.respond(self.status, headers, ())?)
    }
}

impl fmt::Debug for ResponseBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBuilder")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// [`StartResponse::redirect`] was given a status that is not 3xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotARedirect(pub StatusCode);

impl fmt::Display for NotARedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rgi: status {} is not a redirection (3xx)", self.0)
    }
}

impl std::error::Error for NotARedirect {}
