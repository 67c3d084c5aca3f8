//! [`Error`]: the framework's one error type — an HTTP status, a short message for the client, and a
//! cause for the log.

use std::borrow::Cow;
use std::fmt;

use http::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use http::StatusCode;
use rgi::{BodyTooLarge, BoxError};

use crate::response::{IntoResponse, Response};

/// An error with an HTTP status: every rejection, routing failure and handler failure is one.
///
/// Handlers return `Result<T, Error>`; `?` turns any other error into a `500` whose cause is logged to
/// `rgi.errors` but never shown to the client (an error that is, or wraps, [`rgi::BodyTooLarge`] becomes
/// `413`). The body is one short line: `"422 Unprocessable Entity: age: invalid digit found in string\n"`.
///
/// ```
/// use rgi_framework::Error;
/// use http::StatusCode;
/// let e = Error::new(StatusCode::NOT_FOUND, "no post 7");
/// assert_eq!(e.status(), 404);
/// assert_eq!(e.to_string(), "404 Not Found: no post 7");
/// ```
///
/// An error may carry headers ([`with_header`](Error::with_header)), and an extractor may answer with
/// a redirect instead of calling the handler ([`see_other`](Error::see_other)): a login guard.
pub struct Error {
    status: StatusCode,
    message: Cow<'static, str>,
    cause: Option<BoxError>,
    /// Boxed: most errors have none, and `Error` is the `Err` of every handler's `Result`.
    headers: Option<Box<HeaderMap>>,
}

impl Error {
    /// An error with `status` and a message shown to the client.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            status,
            message: message.into(),
            cause: None,
            headers: None,
        }
    }

    /// An error with `status` and no message beyond the status line.
    pub fn status_only(status: StatusCode) -> Self {
        Self::new(status, "")
    }

    /// A `500 Internal Server Error` caused by `cause` (logged, not shown).
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        let cause = cause.into();
        if is_too_large(&*cause) {
            return Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            )
            .with_cause(cause);
        }
        Error::status_only(StatusCode::INTERNAL_SERVER_ERROR).with_cause(cause)
    }

    /// `400 Bad Request` with `message`.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// `404 Not Found`.
    pub fn not_found() -> Self {
        Self::status_only(StatusCode::NOT_FOUND)
    }

    /// `303 See Other` to `location`: for an extractor that sends the visitor elsewhere instead of
    /// letting the handler run (a page that needs a signed-in user sends the others to the log-in
    /// page). A `location` that is not a valid header value is a `500`.
    ///
    /// ```
    /// use rgi_framework::{get, App, Error, FromRequestParts, Request};
    ///
    /// /// A guard: only requests with `?key=open` reach the handler; the others go to `/door`.
    /// struct Key;
    /// impl FromRequestParts for Key {
    ///     async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
    ///         if request.environ().query_string() == b"key=open" {
    ///             Ok(Key)
    ///         } else {
    ///             Err(Error::see_other(&request.urls().url("door")?))
    ///         }
    ///     }
    /// }
    /// async fn vault(_: Key) -> &'static str { "gold" }
    /// async fn door() -> &'static str { "knock" }
    ///
    /// let app = App::new()
    ///     .route("/vault", get(vault))
    ///     .route("/door", get(door)).name("door")
    ///     .build()
    ///     .unwrap();
    /// let client = rgi::testing::TestClient::new(app);
    /// assert_eq!(client.get("/vault?key=open").send_blocking().text(), "gold");
    /// let refused = client.get("/vault").send_blocking();
    /// assert_eq!((refused.status().as_u16(), refused.header("location")), (303, Some("/door")));
    /// ```
    pub fn see_other(location: &str) -> Self {
        match HeaderValue::try_from(location) {
            Ok(value) => Self::status_only(StatusCode::SEE_OTHER).with_header(LOCATION, value),
            Err(e) => Error::internal(format!("redirect to {location:?}: {e}")),
        }
    }

    /// Add a header to the error's response: `WWW-Authenticate` on a `401`, `Retry-After` on a
    /// `503`, `Location` on a redirect. A custom [error handler](crate::App::error_handler)'s
    /// response keeps them.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.get_or_insert_default().append(name, value);
        self
    }

    /// The headers added with [`with_header`](Error::with_header), if any.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.headers.as_deref()
    }

    /// Attach the underlying cause (written to `rgi.errors` for 5xx statuses).
    pub fn with_cause(mut self, cause: impl Into<BoxError>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message shown to the client (may be empty).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The cause, if any.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.cause.as_deref()
    }
}

/// Whether `error` is, or wraps (directly or inside an `io::Error`), the server's body limit.
pub(crate) fn is_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<BodyTooLarge>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<BodyTooLarge>()) {
                return true;
            }
        }
        current = e.source();
    }
    false
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = self.status.canonical_reason().unwrap_or("Error");
        write!(f, "{} {reason}", self.status.as_u16())?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("status", &self.status)
            .field("message", &self.message)
            .field("cause", &self.cause)
            .field("headers", &self.headers)
            .finish()
    }
}

/// `?` on any error in a handler: a 500 (or 413 for the body limit) with the error as its cause.
impl<E: Into<BoxError>> From<E> for Error {
    fn from(error: E) -> Self {
        Error::internal(error)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = format!("{self}\n");
        let mut response = Response::text(body);
        *response.status_mut() = self.status;
        if let Some(headers) = &self.headers {
            response.headers_mut().extend(headers.as_ref().clone());
        }
        response.error = Some(Box::new(self));
        response
    }
}
