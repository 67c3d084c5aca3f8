//! Error pages: 4xx and 5xx answers with a proper body, HTML or JSON as the client's `Accept` prefers.
//!
//! A response is given a page when its status is 400 or above and its body says nothing of its own:
//! empty, or the plain-text default that [`StartResponse::error`] writes (`404 Not Found\n`). A response
//! with a body the application wrote itself (its own JSON error, its own page) passes untouched.
//! When the application returns `Err`, the page answers in its place (with the status a server would
//! give that error: 413 for a body over the limit, 503 when overloaded, 500 otherwise) and the error
//! is written to `rgi.errors`; its text never reaches the client.
//!
//! The page's headers are the original response's (`WWW-Authenticate`, `Allow`, `Retry-After`,
//! `Set-Cookie` … stay) without those that described the old body (`Content-Type`, `Content-Length`,
//! `Content-Encoding`, `Content-Range`, `ETag`, `Last-Modified`).
//!
//! Pages: a built-in minimal one; a fixed HTML page per status ([`ErrorPagesLayer::html`]); or any
//! rendering at all from a closure ([`ErrorPagesLayer::render`]), which may decline (`None`) and fall
//! back to the others. JSON is chosen when `Accept` ranks `application/json` (or a `+json` type) above
//! `text/html`; the built-in JSON is `{"status":404,"error":"Not Found","request_id":"…"}`.
//!
//! ```
//! use http::StatusCode;
//! use rgi::ApplicationExt;
//! use rgi_middleware::error_pages::ErrorPagesLayer;
//!
//! let app = rgi::app_fn(|environ, start| async move {
//!     match environ.path_info() {
//!         b"/" => start.text("home"),
//!         b"/fail" => Err("the database is down".into()),
//!         _ => start.error(StatusCode::NOT_FOUND),
//!     }
//! })
//! .layer(ErrorPagesLayer::new().html(StatusCode::NOT_FOUND, "<h1>Nothing here</h1>"));
//!
//! let client = rgi::testing::TestClient::new(app);
//! let page = client.get("/missing").send_blocking();
//! assert_eq!((page.status().as_u16(), page.text().as_str()), (404, "<h1>Nothing here</h1>"));
//! let json = client.get("/fail").header("accept", "application/json").send_blocking();
//! assert_eq!(json.text(), r#"{"error":"Internal Server Error","status":500}"#);
//! assert!(client.errors()[0].contains("the database is down"));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::StatusCode;
use rgi::{Application, Body, BodyKind, BoxError, Environ, Layer, Reply, Response, StartResponse};

use crate::request_id::RequestId;

/// What a page is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/html`.
    Html,
    /// `application/json`.
    Json,
}

/// What a [`render`](ErrorPagesLayer::render) closure knows about the failed request.
#[derive(Debug)]
#[non_exhaustive]
pub struct ErrorInfo<'a> {
    /// The status being answered.
    pub status: StatusCode,
    /// The format the client prefers.
    pub format: Format,
    /// `REQUEST_METHOD`.
    pub method: &'a http::Method,
    /// `SCRIPT_NAME` + `PATH_INFO`, lossily decoded.
    pub path: &'a str,
    /// The request id, when a [`RequestIdLayer`](crate::request_id::RequestIdLayer) runs further out.
    pub request_id: Option<&'a RequestId>,
    /// The application's error, when it returned `Err` (for logs or a development page; do not show
    /// it to clients in production).
    pub error: Option<&'a BoxError>,
}

/// A rendered error page: its `Content-Type` and body.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    /// The `Content-Type` header value.
    pub content_type: String,
    /// The body.
    pub body: Bytes,
}

impl ErrorPage {
    /// An HTML page (`text/html; charset=utf-8`).
    pub fn html(body: impl Into<Bytes>) -> Self {
        ErrorPage {
            content_type: "text/html; charset=utf-8".into(),
            body: body.into(),
        }
    }

    /// A JSON document (`application/json`).
    pub fn json(value: &serde_json::Value) -> Self {
        ErrorPage {
            content_type: "application/json".into(),
            body: Bytes::from(value.to_string()),
        }
    }
}

type Render = dyn Fn(&ErrorInfo<'_>) -> Option<ErrorPage> + Send + Sync;

#[derive(Clone, Default)]
struct Config {
    html: HashMap<StatusCode, Bytes>,
    render: Option<Arc<Render>>,
}

/// Makes [`ErrorPages`]; see the [module docs](self).
#[derive(Clone, Default)]
pub struct ErrorPagesLayer {
    config: Arc<Config>,
}

impl fmt::Debug for ErrorPagesLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorPagesLayer")
            .field("html", &self.config.html.keys().collect::<Vec<_>>())
            .field("render", &self.config.render.is_some())
            .finish()
    }
}

impl ErrorPagesLayer {
    /// Built-in pages for every 4xx and 5xx status.
    pub fn new() -> Self {
        ErrorPagesLayer::default()
    }

    /// Answer `status` with this HTML page (when the client does not prefer JSON).
    pub fn html(mut self, status: StatusCode, page: impl Into<Bytes>) -> Self {
        Arc::make_mut(&mut self.config)
            .html
            .insert(status, page.into());
        self
    }

    /// Render pages with `f`; when it returns `None`, the fixed or built-in page is used.
    ///
    /// ```
    /// use rgi_middleware::error_pages::{ErrorPage, ErrorPagesLayer, Format};
    /// let layer = ErrorPagesLayer::new().render(|info| match info.format {
    ///     Format::Json => Some(ErrorPage::json(&serde_json::json!({"problem": info.status.as_u16()}))),
    ///     Format::Html => None,
    /// });
    /// # let _ = layer;
    /// ```
    pub fn render<F>(mut self, f: F) -> Self
    where
        F: Fn(&ErrorInfo<'_>) -> Option<ErrorPage> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config).render = Some(Arc::new(f));
        self
    }
}

impl<A> Layer<A> for ErrorPagesLayer {
    type Service = ErrorPages<A>;

    fn layer(&self, inner: A) -> ErrorPages<A> {
        ErrorPages {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The middleware made by [`ErrorPagesLayer`].
#[derive(Clone)]
pub struct ErrorPages<A> {
    inner: A,
    config: Arc<Config>,
}

impl<A: fmt::Debug> fmt::Debug for ErrorPages<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorPages")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The request facts a page needs, taken before the environ moves into the application.
struct Request {
    format: Format,
    method: http::Method,
    path: String,
    request_id: Option<RequestId>,
}

impl<A: Application> Application for ErrorPages<A> {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        let request = Request {
            format: preferred_format(environ.headers()),
            method: environ.method().clone(),
            path: format!(
                "{}{}",
                String::from_utf8_lossy(environ.script_name()),
                String::from_utf8_lossy(environ.path_info())
            ),
            request_id: environ.extensions().get::<RequestId>().cloned(),
        };
        let errors = environ.errors().clone();
        let spare = start.spare();
        match self.inner.call(environ, start).await {
            Ok(response) if needs_page(&response) => {
                let (response, says_something) = inspect_body(response);
                if says_something {
                    return Ok(response);
                }
                let status = response.status();
                let mut headers = response.headers().clone();
                for name in REPRESENTATION {
                    headers.remove(name);
                }
                let page = self.page(&request, status, None);
                let start = response.discard();
                start
                    .status(status)
                    .header_map(headers)
                    .body(&page.content_type, page.body)
            }
            Ok(response) => Ok(response),
            Err(error) => {
                let status = rgi::convert::error_status(&error);
                // As the servers do (`rgi::convert::call_app`): a 4xx is the client's mistake (a body
                // over the limit, a short body), not an application error for the error stream.
                if !status.is_client_error() {
                    errors.log(format_args!(
                        "rgi: application error for {} {}: {error}",
                        request.method, request.path
                    ));
                }
                let page = self.page(&request, status, Some(&error));
                let mut builder = spare.status(status);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    builder = builder.header(header::RETRY_AFTER, "1");
                }
                builder.body(&page.content_type, page.body)
            }
        }
    }
}

/// Headers that describe the body being replaced.
const REPRESENTATION: [header::HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CONTENT_RANGE,
    header::ETAG,
    header::LAST_MODIFIED,
];

impl<A> ErrorPages<A> {
    fn page(&self, request: &Request, status: StatusCode, error: Option<&BoxError>) -> ErrorPage {
        if let Some(render) = &self.config.render {
            let info = ErrorInfo {
                status,
                format: request.format,
                method: &request.method,
                path: &request.path,
                request_id: request.request_id.as_ref(),
                error,
            };
            if let Some(page) = render(&info) {
                return page;
            }
        }
        match request.format {
            Format::Html => match self.config.html.get(&status) {
                Some(page) => ErrorPage::html(page.clone()),
                None => ErrorPage::html(default_html(status, request.request_id.as_ref())),
            },
            Format::Json => ErrorPage::json(&default_json(status, request.request_id.as_ref())),
        }
    }
}

/// An error status whose body may be the bare default (checked in [`inspect_body`]).
fn needs_page(response: &Response) -> bool {
    let status = response.status();
    if status.as_u16() < 400 {
        return false;
    }
    match response.body().exact_len() {
        Some(0) => true,
        Some(len) => {
            let plain = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/plain"));
            plain && len == default_text(status).len() as u64
        }
        None => false,
    }
}

/// Whether the body says something of its own; the response comes back unchanged either way (a body
/// in memory is looked at and put back).
fn inspect_body(response: Response) -> (Response, bool) {
    if response.body().exact_len() == Some(0) {
        return (response, false);
    }
    let default = default_text(response.status());
    let mut own = true;
    let response = response.inspect_body(|body| match body.into_kind() {
        BodyKind::Full(bytes) => {
            own = bytes != default.as_bytes();
            Body::full(bytes)
        }
        other => other.into(),
    });
    (response, own)
}

/// The body [`StartResponse::error`] writes.
fn default_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}\n", status.as_u16()),
        None => format!("{}\n", status.as_u16()),
    }
}

fn default_html(status: StatusCode, id: Option<&RequestId>) -> String {
    let title = match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    };
    let id = id.map_or(String::new(), |id| {
        format!("<p><small>Request id: <code>{id}</code></small></p>\n")
    });
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1>\n{id}</body></html>\n"
    )
}

fn default_json(status: StatusCode, id: Option<&RequestId>) -> serde_json::Value {
    let mut value = serde_json::json!({
        "status": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
    });
    if let Some(id) = id {
        value["request_id"] = serde_json::Value::from(id.as_str());
    }
    value
}

/// HTML unless `Accept` ranks a JSON type above `text/html` (RFC 9110 §12.5.1: the most specific
/// matching range gives a type its weight).
pub(crate) fn preferred_format(headers: &HeaderMap) -> Format {
    let mut json = Weight::default();
    let mut html = Weight::default();
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = Some(1.0);
            for param in params {
                if let Some(v) = param.trim().strip_prefix("q=") {
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q));
                }
            }
            let Some(q) = q else { continue }; // a malformed weight: ignore the range
            let (json_specificity, html_specificity) = match media.as_str() {
                "*/*" => (1, 1),
                "application/*" => (2, 0),
                "text/*" => (0, 2),
                "text/html" => (0, 3),
                m if m == "application/json" || m.ends_with("+json") => (3, 0),
                _ => (0, 0),
            };
            json.offer(json_specificity, q);
            html.offer(html_specificity, q);
        }
    }
    if json.q > html.q {
        Format::Json
    } else {
        Format::Html
    }
}

#[derive(Default)]
struct Weight {
    specificity: u8,
    q: f32,
}

impl Weight {
    fn offer(&mut self, specificity: u8, q: f32) {
        if specificity > self.specificity
            || (specificity == self.specificity && specificity > 0 && q > self.q)
        {
            self.specificity = specificity;
            self.q = q;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::testing::TestClient;
    use rgi::ApplicationExt;

    use crate::request_id::RequestIdLayer;

    fn app() -> impl Application {
        rgi::app_fn(|mut environ: Environ, start: StartResponse| async move {
            match environ.path_info() {
                b"/empty" => start.empty(StatusCode::FORBIDDEN),
                b"/default" => start.error(StatusCode::NOT_FOUND),
                b"/own" => start.status(StatusCode::NOT_FOUND).text("no such user\n"),
                b"/own-json" => start
                    .status(StatusCode::UNPROCESSABLE_ENTITY)
                    .json(&serde_json::json!({"field": "name"})),
                b"/auth" => start
                    .status(StatusCode::UNAUTHORIZED)
                    .header("www-authenticate", "Basic realm=\"x\"")
                    .empty(),
                b"/fail" => Err("secret detail".into()),
                b"/big" => {
                    environ.input_mut().read_to_bytes().await?;
                    start.text("read")
                }
                b"/busy" => Err(Box::new(rgi::Overloaded) as BoxError),
                b"/limited" => {
                    let input = environ.take_input().with_limit(10);
                    environ.set_input(input);
                    environ.input_mut().read_to_bytes().await?;
                    start.text("read")
                }
                _ => start.text("fine"),
            }
        })
    }

    fn client(layer: ErrorPagesLayer) -> TestClient<ErrorPages<impl Application>> {
        TestClient::new(app().layer(layer))
    }

    #[test]
    fn empty_and_default_bodies_get_a_page() {
        let c = client(ErrorPagesLayer::new());
        for (path, status) in [("/empty", 403), ("/default", 404)] {
            let r = c.get(path).send_blocking();
            assert_eq!(r.status(), status);
            assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
            assert!(r.text().contains(&format!("<h1>{status} ")), "{}", r.text());
        }
    }

    #[test]
    fn the_applications_own_bodies_and_successes_pass() {
        let c = client(ErrorPagesLayer::new());
        assert_eq!(c.get("/own").send_blocking().text(), "no such user\n");
        let r = c.get("/own-json").send_blocking();
        assert_eq!(
            (r.status().as_u16(), r.text().as_str()),
            (422, r#"{"field":"name"}"#)
        );
        assert_eq!(c.get("/").send_blocking().text(), "fine");
    }

    #[test]
    fn json_by_accept() {
        let c = client(ErrorPagesLayer::new());
        for (accept, json) in [
            ("application/json", true),
            ("application/problem+json", true),
            ("text/html, application/json;q=0.9", false),
            ("application/json;q=0.5, text/html;q=0.4", true),
            ("*/*", false),
            ("application/*", true),
            ("text/*;q=0.1, application/json;q=0.2", true),
            ("application/json;q=bogus", false),
            ("", false),
        ] {
            let r = c.get("/default").header("accept", accept).send_blocking();
            let is_json = r.header("content-type") == Some("application/json");
            assert_eq!(is_json, json, "{accept}");
        }
        let r = c
            .get("/default")
            .header("accept", "application/json")
            .send_blocking();
        assert_eq!(r.text(), r#"{"error":"Not Found","status":404}"#);
    }

    #[test]
    fn errors_are_answered_with_their_status_and_logged_not_shown() {
        let c = client(ErrorPagesLayer::new());
        let r = c.get("/fail").send_blocking();
        assert_eq!(r.status(), 500);
        assert!(!r.text().contains("secret"));
        assert!(c.errors()[0].contains("secret detail"), "{:?}", c.errors());
        let r = c.post("/big").body(vec![b'x'; 100]).send_blocking();
        assert_eq!(r.status(), 200, "no limit here");
        // A client's mistake (a body over the limit) is answered, not logged as an application error.
        let logged = c.errors().len();
        let r = c.post("/limited").body(vec![b'x'; 100]).send_blocking();
        assert_eq!(r.status(), 413);
        assert_eq!(c.errors().len(), logged, "{:?}", c.errors());
        let r = c.get("/busy").send_blocking();
        assert_eq!(
            (r.status().as_u16(), r.header("retry-after")),
            (503, Some("1"))
        );
    }

    #[test]
    fn headers_that_matter_are_kept() {
        let c = client(ErrorPagesLayer::new());
        let r = c.get("/auth").send_blocking();
        assert_eq!(r.status(), 401);
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"x\""));
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    }

    #[test]
    fn head_gets_headers_only() {
        let c = client(ErrorPagesLayer::new());
        let r = c.head("/default").send_blocking();
        assert_eq!((r.status().as_u16(), r.body().len()), (404, 0));
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    }

    #[test]
    fn custom_html_and_render_hook() {
        let layer = ErrorPagesLayer::new()
            .html(StatusCode::NOT_FOUND, "<p>lost</p>")
            .render(|info| {
                (info.status == StatusCode::INTERNAL_SERVER_ERROR).then(|| {
                    let error = info.error.map(ToString::to_string).unwrap_or_default();
                    ErrorPage::html(format!("custom 500 for {} ({error})", info.path))
                })
            });
        let c = client(layer);
        assert_eq!(c.get("/default").send_blocking().text(), "<p>lost</p>");
        assert_eq!(
            c.get("/fail").send_blocking().text(),
            "custom 500 for /fail (secret detail)"
        );
        assert!(c
            .get("/empty")
            .send_blocking()
            .text()
            .contains("403 Forbidden"));
    }

    #[test]
    fn the_request_id_is_shown() {
        let c = TestClient::new(
            app()
                .layer(ErrorPagesLayer::new())
                .layer(RequestIdLayer::new()),
        );
        let r = c
            .get("/fail")
            .header("accept", "application/json")
            .send_blocking();
        let id = r.header("x-request-id").unwrap();
        assert!(
            r.text().contains(&format!(r#""request_id":"{id}""#)),
            "{}",
            r.text()
        );
    }
}
