//! Conditional GET for any application: `304 Not Modified` and `412 Precondition Failed` from the
//! validators (`ETag`, `Last-Modified`) the inner application's response carries (RFC 9110 §13).
//!
//! [`Conditional`] calls the inner application, then evaluates the request's preconditions against
//! its response, in RFC 9110 §13.2.2's order:
//!
//! 1. `If-Match` (strong comparison; `*` matches any response): no match → `412`;
//! 2. otherwise `If-Unmodified-Since`: modified after the date → `412`;
//! 3. `If-None-Match` (weak comparison): a match → `304`;
//! 4. otherwise `If-Modified-Since`: not modified since the date → `304`.
//!
//! A `304` keeps the response's headers except representation metadata (`Content-Type`,
//! `Content-Encoding`, `Content-Language`, `Content-Length`, `Content-Range`) and drops the body
//! at once. Only `GET` and `HEAD` are evaluated, and only `2xx` responses: the layer sees the
//! validators *after* the application ran, so answering `412` to a `PUT` would hide a write that
//! already happened. An application that offers conditional writes checks `If-Match` itself, before
//! acting. Dates are compared to the second (HTTP dates have no finer resolution).
//!
//! ```
//! use http::StatusCode;
//! use rgi::ApplicationExt as _;
//! use rgi_middleware::conditional::ConditionalLayer;
//!
//! let app = rgi::app_fn(|_, start| async move {
//!     start.header("etag", "\"v1\"").text("the page")
//! });
//! let client = rgi::testing::TestClient::new(app.layer(ConditionalLayer::new()));
//! let fresh = client.get("/").send_blocking();
//! assert_eq!((fresh.status(), fresh.text().as_str()), (StatusCode::OK, "the page"));
//! let cached = client.get("/").header("if-none-match", "\"v1\"").send_blocking();
//! assert_eq!((cached.status(), cached.text().as_str()), (StatusCode::NOT_MODIFIED, ""));
//! assert_eq!(cached.header("etag"), Some("\"v1\""));
//! ```

mod validators;

use std::time::SystemTime;

use http::{header, HeaderMap, Method, StatusCode};
use rgi::{Application, Environ, Reply, Response, StartResponse};
use tower_layer::Layer;

pub(crate) use self::validators::{http_date, if_range_allows, Precondition};

/// The [`Layer`] that wraps an application in [`Conditional`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ConditionalLayer {
    _private: (),
}

impl ConditionalLayer {
    /// The layer (it has no settings).
    pub fn new() -> Self {
        ConditionalLayer::default()
    }
}

impl<A> Layer<A> for ConditionalLayer {
    type Service = Conditional<A>;

    fn layer(&self, inner: A) -> Conditional<A> {
        Conditional { inner }
    }
}

/// An application answering `304`/`412` for the one it wraps; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Conditional<A> {
    inner: A,
}

impl<A> Conditional<A> {
    /// Wrap `inner`.
    pub fn new(inner: A) -> Self {
        Conditional { inner }
    }
}

/// The request's precondition headers, copied before the environ goes to the inner application.
#[derive(Debug, Default)]
struct Conditions {
    headers: HeaderMap,
}

impl Conditions {
    fn of(environ: &Environ) -> Option<Conditions> {
        if !matches!(*environ.method(), Method::GET | Method::HEAD) {
            return None;
        }
        let mut headers = HeaderMap::new();
        for name in [
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_UNMODIFIED_SINCE,
        ] {
            for value in environ.headers().get_all(&name) {
                headers.append(name.clone(), value.clone());
            }
        }
        (!headers.is_empty()).then_some(Conditions { headers })
    }
}

impl<A: Application> Application for Conditional<A> {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        let conditions = Conditions::of(&environ);
        let method = environ.method().clone();
        let response = self.inner.call(environ, start).await?;
        let Some(conditions) = conditions else {
            return Ok(response);
        };
        if !response.status().is_success() {
            return Ok(response);
        }
        let etag = response.headers().get(header::ETAG).cloned();
        let last_modified = response
            .headers()
            .get(header::LAST_MODIFIED)
            .and_then(http_date);
        match Precondition::evaluate(&method, &conditions.headers, etag.as_ref(), last_modified) {
            Precondition::Proceed => Ok(response),
            Precondition::NotModified => not_modified(response),
            Precondition::Failed => replace(response, |start| {
                start.error(StatusCode::PRECONDITION_FAILED)
            }),
        }
    }
}

/// Headers that describe the representation, dropped from a `304` (RFC 9110 §15.4.5).
const REPRESENTATION: [header::HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
];

/// Replace `response` (dropping its body at once) with what `make` answers, keeping the response
/// extensions (SPEC.md: middleware copies them to a response it builds in place of the inner one).
fn replace(mut response: Response, make: impl FnOnce(StartResponse) -> Reply) -> Reply {
    let extensions = std::mem::take(response.extensions_mut());
    let mut replaced = make(response.discard())?;
    *replaced.extensions_mut() = extensions;
    Ok(replaced)
}

/// `response` as a `304 Not Modified`: no body, no representation metadata.
fn not_modified(mut response: Response) -> Reply {
    let mut headers = std::mem::take(response.headers_mut());
    for name in &REPRESENTATION {
        headers.remove(name);
    }
    replace(response, |start| {
        start
            .status(StatusCode::NOT_MODIFIED)
            .header_map(headers)
            .empty()
    })
}

/// When the file or resource was last modified, truncated to what an HTTP date can say.
pub(crate) fn truncate_to_second(time: SystemTime) -> SystemTime {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(since.as_secs()),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

#[cfg(test)]
mod tests;
