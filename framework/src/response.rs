//! [`Response`] and [`IntoResponse`]: what handlers return, converted into an `rgi::Response` at the end.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use rgi::{Body, Reply, StartResponse};
use serde::Serialize;

use crate::Error;

/// A response being built: status, headers and an [`rgi::Body`]. After-request hooks see and change it;
/// the application then hands it to the request's `StartResponse`.
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
    /// The error this response was made from, for the custom error handlers and the log.
    pub(crate) error: Option<Box<Error>>,
}

impl Response {
    /// A `200 OK` response with `body` and no headers.
    pub fn new(body: impl Into<Body>) -> Self {
        Response {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: body.into(),
            error: None,
        }
    }

    /// A `200 OK` response with `Content-Type: content_type`.
    pub fn with_type(content_type: &'static str, body: impl Into<Body>) -> Self {
        let mut response = Response::new(body);
        response
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }

    /// A `200 OK` `text/plain; charset=utf-8` response.
    pub fn text(body: impl Into<Body>) -> Self {
        Self::with_type("text/plain; charset=utf-8", body)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The status, mutably.
    pub fn status_mut(&mut self) -> &mut StatusCode {
        &mut self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, mutably.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Replace the body (a stale `Content-Length` is removed).
    pub fn set_body(&mut self, body: impl Into<Body>) {
        self.headers.remove(header::CONTENT_LENGTH);
        self.body = body.into();
    }

    /// The [`Error`] this response was made from, if it was.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_deref()
    }

    /// Hand the response to the server.
    pub(crate) fn respond(self, start: StartResponse) -> Reply {
        Ok(start.respond(self.status, self.headers, self.body)?)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish()
    }
}

/// Anything a handler may return.
///
/// Implemented for text (`&'static str`, `String`: `text/plain`), [`Html`], [`Json`], [`Redirect`],
/// [`File`], [`rgi::Body`] (a stream, a file…), `Bytes`/`Vec<u8>` (`application/octet-stream`),
/// [`StatusCode`] (empty body), `()`, [`Error`], `Result<T, E>` of two such, and tuples that put a
/// status and/or headers in front: `(StatusCode, body)`, `(StatusCode, [(name, value); N], body)`,
/// `([(name, value); N], body)`, `(StatusCode, HeaderMap, body)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a handler",
    label = "does not implement `IntoResponse`",
    note = "return text, `Html`, `Json`, `Redirect`, `File`, `rgi::Body`, `StatusCode`, a `(StatusCode, headers, body)` tuple or `Result<T, rgi_framework::Error>`"
)]
pub trait IntoResponse {
    /// Make the response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(Body::empty())
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::empty());
        response.status = self;
        response
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Cow<'static, str> {
    fn into_response(self) -> Response {
        match self {
            Cow::Borrowed(s) => s.into_response(),
            Cow::Owned(s) => s.into_response(),
        }
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        Response::with_type("application/octet-stream", self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Bytes::from(self).into_response()
    }
}

impl IntoResponse for Body {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(value) => value.into_response(),
            Err(error) => error.into_response(),
        }
    }
}

/// An HTML response (`text/html; charset=utf-8`).
#[derive(Debug, Clone)]
pub struct Html<T>(pub T);

impl<T: Into<Body>> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        Response::with_type("text/html; charset=utf-8", self.0)
    }
}

/// A JSON response (`application/json`) — and, as an extractor, a JSON request body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => Response::with_type("application/json", bytes),
            Err(error) => Error::internal(error).into_response(),
        }
    }
}

/// A redirect. [`Redirect::see_other`] (303) is the answer to a successful form POST.
///
/// ```
/// # use rgi_framework::{IntoResponse, Redirect};
/// let r = Redirect::see_other("/todos").into_response();
/// assert_eq!(r.status(), 303);
/// assert_eq!(r.headers()["location"], "/todos");
/// ```
#[derive(Debug, Clone)]
pub struct Redirect {
    status: StatusCode,
    location: String,
}

impl Redirect {
    /// `303 See Other`: "go and GET this", after a POST.
    pub fn see_other(location: impl Into<String>) -> Self {
        Self::with_status(StatusCode::SEE_OTHER, location)
    }

    /// `307 Temporary Redirect`: the method and body are kept.
    pub fn temporary(location: impl Into<String>) -> Self {
        Self::with_status(StatusCode::TEMPORARY_REDIRECT, location)
    }

    /// `308 Permanent Redirect`: the method and body are kept.
    pub fn permanent(location: impl Into<String>) -> Self {
        Self::with_status(StatusCode::PERMANENT_REDIRECT, location)
    }

    /// A redirect with any 3xx `status`.
    pub fn with_status(status: StatusCode, location: impl Into<String>) -> Self {
        Redirect {
            status,
            location: location.into(),
        }
    }
}

impl IntoResponse for Redirect {
    fn into_response(self) -> Response {
        match HeaderValue::try_from(self.location) {
            Ok(location) => {
                let mut response = Response::new(Body::empty());
                response.status = self.status;
                response.headers.insert(header::LOCATION, location);
                response
            }
            Err(error) => Error::internal(error).into_response(),
        }
    }
}

/// A file sent as a sendfile-able [`rgi::Body`] file body, its type guessed from the extension.
#[derive(Debug)]
pub struct File {
    body: Body,
    content_type: HeaderValue,
}

impl File {
    /// Open `path`.
    ///
    /// # Errors
    ///
    /// `404` when the file does not exist or is not a regular file, `403` when it cannot be read, `500`
    /// otherwise.
    pub fn open(path: impl AsRef<Path>) -> Result<File, Error> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::not_found(),
            std::io::ErrorKind::PermissionDenied => Error::status_only(StatusCode::FORBIDDEN),
            _ => Error::internal(e),
        })?;
        if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            return Err(Error::not_found());
        }
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        let content_type = HeaderValue::try_from(mime.as_ref())
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        Ok(File {
            body: Body::file(file)?,
            content_type,
        })
    }
}

impl IntoResponse for File {
    fn into_response(self) -> Response {
        let mut response = Response::new(self.body);
        response
            .headers
            .insert(header::CONTENT_TYPE, self.content_type);
        response
    }
}

/// Insert `(name, value)` pairs; an invalid one turns the response into a 500.
fn with_headers<K, V, I>(mut response: Response, headers: I) -> Response
where
    I: IntoIterator<Item = (K, V)>,
    K: TryInto<HeaderName>,
    K::Error: fmt::Display,
    V: TryInto<HeaderValue>,
    V::Error: fmt::Display,
{
    for (name, value) in headers {
        let name = match name.try_into() {
            Ok(name) => name,
            Err(e) => return Error::internal(format!("invalid header name: {e}")).into_response(),
        };
        match value.try_into() {
            Ok(value) => {
                response.headers.append(name, value);
            }
            Err(e) => {
                return Error::internal(format!("invalid value for header `{name}`: {e}"))
                    .into_response()
            }
        }
    }
    response
}

impl<R: IntoResponse> IntoResponse for (StatusCode, R) {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        response.status = self.0;
        response
    }
}

impl<R: IntoResponse> IntoResponse for (StatusCode, HeaderMap, R) {
    fn into_response(self) -> Response {
        let mut response = self.2.into_response();
        response.status = self.0;
        response.headers.extend(self.1);
        response
    }
}

impl<R, K, V, const N: usize> IntoResponse for ([(K, V); N], R)
where
    R: IntoResponse,
    K: TryInto<HeaderName>,
    K::Error: fmt::Display,
    V: TryInto<HeaderValue>,
    V::Error: fmt::Display,
{
    fn into_response(self) -> Response {
        with_headers(self.1.into_response(), self.0)
    }
}

impl<R, K, V, const N: usize> IntoResponse for (StatusCode, [(K, V); N], R)
where
    R: IntoResponse,
    K: TryInto<HeaderName>,
    K::Error: fmt::Display,
    V: TryInto<HeaderValue>,
    V::Error: fmt::Display,
{
    fn into_response(self) -> Response {
        let mut response = with_headers(self.2.into_response(), self.1);
        response.status = self.0;
        response
    }
}
