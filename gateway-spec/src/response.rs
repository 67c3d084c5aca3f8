//! `start_response`, by types: [`StartResponse`] is consumed to make the one [`Response`].

use std::fmt;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Extensions, Method, StatusCode};

use crate::Body;

/// The right to respond to one request: PEP 3333's `start_response`, as a value.
///
/// A server passes one to every [`Application::call`](crate::Application::call). Consuming it with
/// [`respond`](StartResponse::respond) is the only way to make a [`Response`], so an application cannot
/// respond twice or return without a status, and this is checked by the compiler:
///
/// ```compile_fail
/// # use http::{HeaderMap, StatusCode};
/// # fn app(start: rgi::StartResponse) -> rgi::Reply {
/// let first = start.respond(StatusCode::OK, HeaderMap::new(), "one")?;
/// let second = start.respond(StatusCode::OK, HeaderMap::new(), "two")?; // `start` was moved
/// # Ok(second)
/// # }
/// ```
///
/// Until the application returns the `Response`, nothing has been sent: to change its mind (PEP 3333's
/// `exc_info` case), it calls [`Response::discard`] to get the `StartResponse` back and responds anew.
#[must_use = "an application must respond by consuming its StartResponse"]
pub struct StartResponse {
    head: bool,
    spare: bool,
}

impl StartResponse {
    /// The `StartResponse` for a request with `method`. Servers and test harnesses call this, once per
    /// request.
    pub fn new(method: &Method) -> Self {
        StartResponse {
            head: method == Method::HEAD,
            spare: false,
        }
    }

    /// A second right to respond to the same request, for middleware that may have to answer in place
    /// of its inner application: after the inner call returned `Err` or panicked (an error page, a 500
    /// with a request id, a debug page), or after it dropped the inner response to replace it.
    ///
    /// Take the spare *before* passing `start` on; the call still returns exactly one [`Response`].
    /// Responses made from a spare are marked, and the lint warns ([`Check::SpareSuccess`]) when one has
    /// a status below 400: a spare is for answering failures (SPEC.md, `[mw-spare]`).
    ///
    /// [`Check::SpareSuccess`]: crate::lint::Check::SpareSuccess
    ///
    /// ```
    /// use http::StatusCode;
    /// use rgi::{Application, ApplicationExt};
    /// let failing = rgi::app_fn(|_, _start| async move { Err("database is down".into()) });
    /// let app = failing.layer(rgi::middleware::from_fn(|environ, start, next| async move {
    ///     let spare = start.spare();
    ///     match next.call(environ, start).await {
    ///         Ok(response) => Ok(response),
    ///         Err(_) => spare.error(StatusCode::SERVICE_UNAVAILABLE),
    ///     }
    /// }));
    /// let response = rgi::testing::TestClient::new(app).get("/").send_blocking();
    /// assert_eq!(response.status(), 503);
    /// ```
    pub fn spare(&self) -> StartResponse {
        StartResponse {
            head: self.head,
            spare: true,
        }
    }

    /// Whether this request is `HEAD` (its response body will be dropped by [`respond`](Self::respond)).
    pub fn is_head(&self) -> bool {
        self.head
    }

    /// Respond with `status`, `headers` and `body`.
    ///
    /// For a `HEAD` request the body is dropped here (its exact length, when known and no
    /// `Content-Length` was given, becomes `Content-Length`), so applications need not special-case HEAD.
    ///
    /// # Errors
    ///
    /// [`ResponseError`] when the response breaks the rules a server cannot repair: an informational
    /// (1xx) final status, a hop-by-hop header (`Connection`, `Transfer-Encoding`, …), or a `Status`
    /// header. Header names and values with CR, LF or NUL cannot be built as `http` types at all.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, StatusCode, header::CONNECTION};
    /// let mut headers = HeaderMap::new();
    /// headers.insert(CONNECTION, HeaderValue::from_static("close"));
    /// let err = rgi::StartResponse::new(&http::Method::GET)
    ///     .respond(StatusCode::OK, headers, "x")
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "rgi: hop-by-hop header `connection` is the server's to set");
    /// ```
    pub fn respond(
        self,
        status: StatusCode,
        mut headers: HeaderMap,
        body: impl Into<Body>,
    ) -> Result<Response, ResponseError> {
        check_status(status)?;
        check_headers(&headers)?;
        let mut body = body.into();
        if self.head {
            if let (Some(len), false) = (
                body.exact_len(),
                headers.contains_key(header::CONTENT_LENGTH),
            ) {
                if status_allows_body(status) {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                }
            }
            body = Body::empty();
        }
        Ok(Response {
            status,
            headers,
            body,
            extensions: Extensions::new(),
            head: self.head,
            spare: self.spare,
        })
    }
}

impl fmt::Debug for StartResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartResponse")
            .field("head", &self.head)
            .field("spare", &self.spare)
            .finish()
    }
}

/// An application's response: status, headers, body and typed extensions.
///
/// Made only by [`StartResponse::respond`]. Middleware may change it on the way out (status, headers)
/// through the `_mut` accessors, and then owns the rules [`StartResponse::respond`] enforced. The body
/// is replaced only through [`map_body`](Self::map_body) and [`set_body`](Self::set_body), which remove
/// `Content-Length` (the server frames the new body), or wrapped byte for byte with
/// [`inspect_body`](Self::inspect_body): no middleware can leave a stale length behind by accident.
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
    extensions: Extensions,
    head: bool,
    spare: bool,
}

impl Response {
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

    /// The body slot, for the lint's own wrapper (which must see HEAD bodies and keep the length).
    pub(crate) fn body_slot(&mut self) -> &mut Body {
        &mut self.body
    }

    /// Typed extensions, for middleware further out (e.g. the route that matched).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Typed extensions, mutably.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Replace the body with `f(body)` (a compressor, a template filler, an error page's body).
    ///
    /// `Content-Length` is removed: it described the old body, and the server frames the new one
    /// (from its exact length when known). For HEAD requests the new body is dropped too.
    pub fn map_body(mut self, f: impl FnOnce(Body) -> Body) -> Self {
        let body = f(std::mem::take(&mut self.body));
        self.set_body(body);
        self
    }

    /// Replace the body, dropping the old one at once (SPEC.md `[mw-close]`); removes `Content-Length`
    /// as [`map_body`](Self::map_body) does.
    pub fn set_body(&mut self, body: impl Into<Body>) {
        self.headers.remove(header::CONTENT_LENGTH);
        self.body = if self.head {
            Body::empty()
        } else {
            body.into()
        };
    }

    /// Wrap the body with `f`, for wrappers that pass every byte through unchanged (counting bytes for
    /// an access log, timing the transfer, noticing the end). `Content-Length` is kept, so the wrapper
    /// **must** produce exactly the bytes of the body it wraps (the lint checks it:
    /// `Check::ContentLengthMismatch`). On HEAD requests the (empty) body is wrapped too.
    pub fn inspect_body(mut self, f: impl FnOnce(Body) -> Body) -> Self {
        self.body = f(std::mem::take(&mut self.body));
        self
    }

    /// Take the response apart.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, Body, Extensions) {
        (self.status, self.headers, self.body, self.extensions)
    }

    /// Throw this response away (dropping its body) and get the right to respond back.
    ///
    /// This is PEP 3333's `exc_info`: nothing has been sent while the application still holds its
    /// response, so it may replace status and headers, e.g. with an error page.
    ///
    /// ```
    /// # use http::{HeaderMap, StatusCode};
    /// # fn render() -> Result<String, std::fmt::Error> { Err(std::fmt::Error) }
    /// # let start = rgi::StartResponse::new(&http::Method::GET);
    /// let response = start.respond(StatusCode::OK, HeaderMap::new(), "partial")?;
    /// let response = match render() {
    ///     Ok(page) => response.map_body(|_| page.into()),
    ///     Err(_) => response
    ///         .discard()
    ///         .respond(StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), "sorry")?,
    /// };
    /// assert_eq!(response.status(), 500);
    /// # Ok::<(), rgi::ResponseError>(())
    /// ```
    pub fn discard(self) -> StartResponse {
        StartResponse {
            head: self.head,
            spare: self.spare,
        }
    }

    /// Whether this response was made from a [`StartResponse::spare`].
    pub fn is_from_spare(&self) -> bool {
        self.spare
    }

    /// Whether the request was `HEAD` (the body is then always empty).
    pub fn is_head(&self) -> bool {
        self.head
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

/// A response that breaks a rule of the spec (SPEC.md, "start_response").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// A final response cannot have a 1xx status.
    InformationalStatus(StatusCode),
    /// HTTP defines final statuses 200–599 only (RFC 9110 §15); `http` accepts up to 999.
    StatusOutOfRange(StatusCode),
    /// Hop-by-hop headers describe one connection and belong to the server (RFC 9110 §7.6.1).
    HopByHopHeader(HeaderName),
    /// `Status` is a CGI response field, not an HTTP header; the status is its own argument.
    StatusHeader,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::InformationalStatus(s) => {
                write!(f, "rgi: status {s} is informational, not a final response")
            }
            ResponseError::StatusOutOfRange(s) => {
                write!(f, "rgi: status {} is outside 200-599", s.as_u16())
            }
            ResponseError::HopByHopHeader(name) => {
                write!(f, "rgi: hop-by-hop header `{name}` is the server's to set")
            }
            ResponseError::StatusHeader => {
                f.write_str("rgi: `Status` is not a header; pass the status to respond()")
            }
        }
    }
}

impl std::error::Error for ResponseError {}

/// Headers an application must never set (RFC 9110 §7.6.1, RFC 9112 §6.1, PEP 3333).
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is a hop-by-hop header.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    // `trailers` (a common misspelling of `trailer`) and the non-standard `proxy-connection` are
    // connection-level too.
    HOP_BY_HOP.contains(&name.as_str()) || name == "trailers" || name == "proxy-connection"
}

fn check_status(status: StatusCode) -> Result<(), ResponseError> {
    if status.is_informational() {
        return Err(ResponseError::InformationalStatus(status));
    }
    if status.as_u16() > 599 {
        return Err(ResponseError::StatusOutOfRange(status));
    }
    Ok(())
}

pub(crate) fn check_headers(headers: &HeaderMap) -> Result<(), ResponseError> {
    for name in headers.keys() {
        if is_hop_by_hop(name) {
            return Err(ResponseError::HopByHopHeader(name.clone()));
        }
        if name == "status" {
            return Err(ResponseError::StatusHeader);
        }
    }
    Ok(())
}

/// Statuses whose responses never carry a body (RFC 9110 §6.4.1).
pub fn status_allows_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}
