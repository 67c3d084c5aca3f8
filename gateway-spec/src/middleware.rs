//! Writing middleware in a few lines: closures as layers.
//!
//! - [`from_fn`]: an async closure that gets the request and a [`Next`] to call the inner application,
//!   like axum's `middleware::from_fn`: it may answer itself, change the request, or change the response.
//! - [`map_request`]: a closure that changes the environ on the way in.
//! - [`map_response`]: a closure that changes the response on the way out.
//!
//! Each returns a [`Layer`]; apply it with [`ApplicationExt::layer`](crate::ApplicationExt::layer),
//! `rgi_middleware::Builder::enable` or `tower::ServiceBuilder`.
//!
//! ```
//! use http::StatusCode;
//! use rgi::{ApplicationExt, Environ, Response};
//! use rgi::middleware::{from_fn, map_request, map_response};
//!
//! let hello = rgi::app_fn(|environ, start| async move {
//!     let who = environ.headers().get("x-user").map_or("stranger", |v| v.to_str().unwrap_or("?"));
//!     start.text(format!("hello {who}"))
//! });
//! let app = hello
//!     .layer(map_request(|environ: &mut Environ| {
//!         environ.headers_mut().insert("x-user", http::HeaderValue::from_static("rgi"));
//!     }))
//!     .layer(map_response(|mut response: Response| {
//!         response.headers_mut().insert("x-served-by", http::HeaderValue::from_static("rgi"));
//!         response
//!     }))
//!     .layer(from_fn(|environ, start, next| async move {
//!         if environ.path_info() == b"/private" {
//!             return start.error(StatusCode::FORBIDDEN);
//!         }
//!         next.call(environ, start).await
//!     }));
//!
//! let client = rgi::testing::TestClient::new(app);
//! let response = client.get("/").send_blocking();
//! assert_eq!(response.text(), "hello rgi");
//! assert_eq!(response.header("x-served-by"), Some("rgi"));
//! assert_eq!(client.get("/private").send_blocking().status(), 403);
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tower_layer::Layer;

use crate::{Application, BoxApp, Environ, Reply, Response, StartResponse};

/// The inner application, as handed to a [`from_fn`] closure. Cheap to clone.
#[derive(Clone)]
pub struct Next {
    inner: BoxApp,
}

impl Next {
    /// Call the inner application.
    pub async fn call(self, environ: Environ, start: StartResponse) -> Reply {
        self.inner.call(environ, start).await
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").finish_non_exhaustive()
    }
}

/// A layer made from an async closure `(environ, start, next) -> Reply`; see [`from_fn`].
pub struct FromFnLayer<F> {
    f: Arc<F>,
}

impl<F> Clone for FromFnLayer<F> {
    fn clone(&self) -> Self {
        FromFnLayer {
            f: Arc::clone(&self.f),
        }
    }
}

impl<F> fmt::Debug for FromFnLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFnLayer").finish_non_exhaustive()
    }
}

/// Middleware from an async closure: `|environ, start, next| async move { next.call(environ, start).await }`.
///
/// The closure answers the request: by calling `next` (changing the request before or the response
/// after), or by responding itself with `start`. To answer after `next` failed, take
/// [`start.spare()`](StartResponse::spare) before calling it.
pub fn from_fn<F, Fut>(f: F) -> FromFnLayer<F>
where
    F: Fn(Environ, StartResponse, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send,
{
    FromFnLayer { f: Arc::new(f) }
}

impl<F, A: Application> Layer<A> for FromFnLayer<F> {
    type Service = FromFn<F>;

    fn layer(&self, inner: A) -> FromFn<F> {
        FromFn {
            f: Arc::clone(&self.f),
            next: Next {
                inner: BoxApp::new(inner),
            },
        }
    }
}

/// The middleware made by a [`FromFnLayer`].
pub struct FromFn<F> {
    f: Arc<F>,
    next: Next,
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}

impl<F, Fut> Application for FromFn<F>
where
    F: Fn(Environ, StartResponse, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send,
{
    fn call(&self, environ: Environ, start: StartResponse) -> impl Future<Output = Reply> + Send {
        (self.f)(environ, start, self.next.clone())
    }
}

/// A layer that changes the environ before the inner application sees it; see [`map_request`].
pub struct MapRequestLayer<F> {
    f: Arc<F>,
}

impl<F> Clone for MapRequestLayer<F> {
    fn clone(&self) -> Self {
        MapRequestLayer {
            f: Arc::clone(&self.f),
        }
    }
}

impl<F> fmt::Debug for MapRequestLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapRequestLayer").finish_non_exhaustive()
    }
}

/// Middleware that changes the request: `|environ: &mut Environ| { … }` runs before the inner application.
pub fn map_request<F>(f: F) -> MapRequestLayer<F>
where
    F: Fn(&mut Environ) + Send + Sync + 'static,
{
    MapRequestLayer { f: Arc::new(f) }
}

impl<F, A> Layer<A> for MapRequestLayer<F> {
    type Service = MapRequest<F, A>;

    fn layer(&self, inner: A) -> MapRequest<F, A> {
        MapRequest {
            f: Arc::clone(&self.f),
            inner,
        }
    }
}

/// The middleware made by a [`MapRequestLayer`].
pub struct MapRequest<F, A> {
    f: Arc<F>,
    inner: A,
}

impl<F, A: fmt::Debug> fmt::Debug for MapRequest<F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapRequest")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<F, A> Application for MapRequest<F, A>
where
    F: Fn(&mut Environ) + Send + Sync + 'static,
    A: Application,
{
    fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> impl Future<Output = Reply> + Send {
        (self.f)(&mut environ);
        self.inner.call(environ, start)
    }
}

/// A layer that changes the inner application's response; see [`map_response`].
pub struct MapResponseLayer<F> {
    f: Arc<F>,
}

impl<F> Clone for MapResponseLayer<F> {
    fn clone(&self) -> Self {
        MapResponseLayer {
            f: Arc::clone(&self.f),
        }
    }
}

impl<F> fmt::Debug for MapResponseLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapResponseLayer").finish_non_exhaustive()
    }
}

/// Middleware that changes the response: `|response: Response| -> Response` runs on every `Ok` reply
/// of the inner application (errors pass through untouched).
pub fn map_response<F>(f: F) -> MapResponseLayer<F>
where
    F: Fn(Response) -> Response + Send + Sync + 'static,
{
    MapResponseLayer { f: Arc::new(f) }
}

impl<F, A> Layer<A> for MapResponseLayer<F> {
    type Service = MapResponse<F, A>;

    fn layer(&self, inner: A) -> MapResponse<F, A> {
        MapResponse {
            f: Arc::clone(&self.f),
            inner,
        }
    }
}

/// The middleware made by a [`MapResponseLayer`].
pub struct MapResponse<F, A> {
    f: Arc<F>,
    inner: A,
}

impl<F, A: fmt::Debug> fmt::Debug for MapResponse<F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapResponse")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<F, A> Application for MapResponse<F, A>
where
    F: Fn(Response) -> Response + Send + Sync + 'static,
    A: Application,
{
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        let response = self.inner.call(environ, start).await?;
        Ok((self.f)(response))
    }
}
