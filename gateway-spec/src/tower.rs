//! Bridges to `tower::Service`, both ways.
//!
//! - [`AppService`]: any RGI [`Application`] as a `tower::Service<http::Request<B>>`, so it runs on
//!   plain hyper or inside an axum `Router`.
//! - [`ServiceApp`]: any `tower::Service<http::Request<Input>>` (an axum `Router` included) as an RGI
//!   application, so every RGI server can serve it.
//!
//! Neither direction buffers bodies: request and response bodies stream through, and extensions travel
//! with them.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use tower_service::Service;

use crate::app::BoxFuture;
use crate::convert::{self, ConnInfo, InputLimits};
use crate::environ::ServerInfo;
use crate::response::is_hop_by_hop;
use crate::{Application, Body, BoxError, Environ, Input, Reply, StartResponse};

/// An RGI application as a `tower::Service<http::Request<B>>`.
///
/// The environ is built exactly as the RGI HTTP server builds it. Connection facts come from a
/// [`ConnInfo`] request extension when present (else [`ConnInfo::default`]). Blocking applications run on
/// tokio's blocking pool when called inside a tokio runtime (feature `rt`), inline otherwise.
///
/// ```
/// use tower::ServiceExt;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let app = rgi::app_fn(|environ, start| async move {
///     let body = format!("path {}", String::from_utf8_lossy(environ.path_info()));
///     Ok(start.respond(http::StatusCode::OK, Default::default(), body)?)
/// });
/// let service = rgi::tower::AppService::new(app);
/// let request = http::Request::get("/x").body(String::new()).unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # }
/// ```
pub struct AppService<A> {
    app: Arc<A>,
    server: Arc<ServerInfo>,
    limits: InputLimits,
    executor_chosen: bool,
}

impl<A> Clone for AppService<A> {
    fn clone(&self) -> Self {
        AppService {
            app: Arc::clone(&self.app),
            server: Arc::clone(&self.server),
            limits: self.limits,
            executor_chosen: self.executor_chosen,
        }
    }
}

impl<A> fmt::Debug for AppService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppService")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl<A: Application> AppService<A> {
    /// Wrap `app`, with server facts for a multithreaded in-process bridge.
    pub fn new(app: A) -> Self {
        let server = ServerInfo {
            software: concat!("rgi-tower/", env!("CARGO_PKG_VERSION")).into(),
            multithread: true,
            ..ServerInfo::default()
        };
        let mut service = AppService {
            app: Arc::new(app),
            server: Arc::new(server),
            limits: InputLimits::default(),
            executor_chosen: false,
        };
        // Inside a runtime, choose now so that clones share one bounded pool.
        service.choose_executor();
        service
    }

    /// Use these server facts (executor, error sink, flags) in every environ.
    pub fn with_server_info(mut self, server: ServerInfo) -> Self {
        self.server = Arc::new(server);
        self.executor_chosen = true;
        self
    }

    /// Limit request bodies.
    pub fn with_limits(mut self, limits: InputLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The wrapped application.
    pub fn get_ref(&self) -> &A {
        &self.app
    }
}

impl<A, B> Service<http::Request<B>> for AppService<A>
where
    A: Application,
    B: http_body::Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let conn = request
            .extensions()
            .get::<ConnInfo>()
            .copied()
            .unwrap_or_default();
        self.choose_executor();
        let environ = convert::environ_from_request(request, &conn, &self.server, self.limits);
        let app = Arc::clone(&self.app);
        Box::pin(async move { Ok(convert::call_app(&*app, environ).await) })
    }
}

/// How many blocking jobs the bridge's default tokio executor accepts in flight.
#[cfg(feature = "rt")]
const DEFAULT_BLOCKING_LIMIT: usize = 1024;

impl<A> AppService<A> {
    /// On first use inside a tokio runtime, move blocking apps off the reactor (unless the caller chose
    /// an executor with [`with_server_info`](AppService::with_server_info)).
    fn choose_executor(&mut self) {
        if self.executor_chosen {
            return;
        }
        #[cfg(feature = "rt")]
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            self.executor_chosen = true;
            self.server = Arc::new(ServerInfo {
                executor: Arc::new(crate::TokioBlocking::new(handle, DEFAULT_BLOCKING_LIMIT)),
                ..(*self.server).clone()
            });
        }
    }
}

/// A `tower::Service<http::Request<Input>>` as an RGI application.
///
/// The request is rebuilt from the environ with [`convert::into_http_request`] (raw `REQUEST_URI`, or
/// `PATH_INFO` under a mount point; headers; extensions plus an
/// [`EnvironMeta`](crate::convert::EnvironMeta)). The service's response streams back as the body;
/// hop-by-hop headers it sets are dropped, since the RGI server owns the connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let router = axum::Router::new().route("/hi", axum::routing::get(|| async { "hi from axum" }));
/// let app = rgi::tower::ServiceApp::new(router);
/// let response = rgi::testing::TestClient::new(app).get("/hi").send().await;
/// assert_eq!(response.text(), "hi from axum");
/// # }
/// ```
#[derive(Clone)]
pub struct ServiceApp<S> {
    service: S,
}

impl<S> ServiceApp<S> {
    /// Wrap `service`. It is cloned for each request (as tower services are meant to be).
    pub fn new(service: S) -> Self {
        ServiceApp { service }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.service
    }

    /// Unwrap the service.
    pub fn into_inner(self) -> S {
        self.service
    }
}

impl<S> fmt::Debug for ServiceApp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceApp").finish_non_exhaustive()
    }
}

impl<S, RB> Application for ServiceApp<S>
where
    S: Service<http::Request<Input>, Response = http::Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    RB: http_body::Body + Send + 'static,
    RB::Data: Buf + Send,
    RB::Error: Into<BoxError>,
{
    fn call(&self, environ: Environ, start: StartResponse) -> impl Future<Output = Reply> + Send {
        let mut service = self.service.clone();
        async move {
            let request = convert::into_http_request(environ);
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let response = service.call(request).await.map_err(Into::into)?;
            let (parts, body) = response.into_parts();
            let mut headers = parts.headers;
            let hop: Vec<_> = headers
                .keys()
                .filter(|n| is_hop_by_hop(n))
                .cloned()
                .collect();
            for name in hop {
                headers.remove(name);
            }
            let mut response = start.respond(parts.status, headers, Body::from_http_body(body))?;
            *response.extensions_mut() = parts.extensions;
            Ok(response)
        }
    }
}
