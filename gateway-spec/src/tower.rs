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
        Box::pin(async move {
            match environ {
                Ok(environ) => Ok(convert::call_app(&*app, environ).await),
                Err(invalid) => Ok(convert::error_response(&invalid.into())),
            }
        })
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
            call_service(&mut service, request, start).await
        }
    }
}

/// A `tower` layer (tower-http's CORS, compression, timeout, set-header, trace …) as an RGI layer.
///
/// The tower layer sees an `http::Request<B>` and an `http::Response<rgi::Body>`; the application under
/// it still gets its environ. The environ is not rebuilt: its headers, body and extensions move into the
/// request, the rest of it rides along in a request extension and is put back together below the tower
/// layer (with the request's possibly changed method, URI, headers, body and extensions). A response
/// whose body the layer left as an [`rgi::Body`] is not re-boxed. A request the tower layer makes
/// up itself (no environ riding along) gets an environ built as [`AppService`] builds one.
///
/// Cost: a trivial tower-http layer adds about 1.8 µs per request through `TowerLayer` (2.9 µs with a
/// full conversion of the environ to an `http::Request` and back), a native RGI closure layer
/// ([`crate::middleware`]) about 0.3 µs — `cargo bench -p rgi --bench environ`, bench/RESULTS.md.
///
/// ```
/// use rgi::ApplicationExt;
/// use tower::util::MapResponseLayer;
///
/// let app = rgi::app_fn(|environ, start| async move {
///     start.text(format!("path {}", String::from_utf8_lossy(environ.path_info())))
/// })
/// .layer(rgi::tower::TowerLayer::new(MapResponseLayer::new(|mut r: http::Response<rgi::Body>| {
///     r.headers_mut().insert("x-tower", http::HeaderValue::from_static("yes"));
///     r
/// })));
/// let response = rgi::testing::TestClient::new(app).get("/a").send_blocking();
/// assert_eq!(response.text(), "path /a");
/// assert_eq!(response.header("x-tower"), Some("yes"));
/// ```
#[derive(Debug, Clone)]
pub struct TowerLayer<L> {
    layer: L,
}

impl<L> TowerLayer<L> {
    /// Wrap a tower layer.
    pub fn new(layer: L) -> Self {
        TowerLayer { layer }
    }
}

impl<L, A> tower_layer::Layer<A> for TowerLayer<L>
where
    A: Application,
    L: tower_layer::Layer<EnvironService<A>>,
{
    type Service = Layered<L::Service>;

    fn layer(&self, app: A) -> Self::Service {
        Layered {
            service: self.layer.layer(EnvironService {
                app: Arc::new(app),
                fallback: AppService::new(NoApp),
            }),
        }
    }
}

/// The bottom of a [`TowerLayer`]: a `tower::Service` that puts the environ back together and calls the
/// RGI application.
pub struct EnvironService<A> {
    app: Arc<A>,
    fallback: AppService<NoApp>,
}

impl<A> Clone for EnvironService<A> {
    fn clone(&self) -> Self {
        EnvironService {
            app: Arc::clone(&self.app),
            fallback: self.fallback.clone(),
        }
    }
}

impl<A> fmt::Debug for EnvironService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvironService").finish_non_exhaustive()
    }
}

/// Placeholder application of the fallback bridge (only its environ building is used).
#[derive(Debug, Clone, Copy)]
pub struct NoApp;

impl Application for NoApp {
    async fn call(&self, _environ: Environ, start: StartResponse) -> Reply {
        start.error(http::StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The environ that rides in a request extension across a tower layer (extensions must be `Clone`).
#[derive(Clone)]
struct Riding(Arc<std::sync::Mutex<Option<(Environ, http::Uri)>>>);

impl<A, B> Service<http::Request<B>> for EnvironService<A>
where
    A: Application,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<http::Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let riding = request
            .extensions_mut()
            .remove::<Riding>()
            .and_then(|r| r.0.lock().ok()?.take());
        let environ = match riding {
            Some((environ, uri)) => reassemble(environ, &uri, request),
            None => {
                self.fallback.choose_executor();
                let conn = request
                    .extensions()
                    .get::<ConnInfo>()
                    .copied()
                    .unwrap_or_default();
                convert::environ_from_request(
                    request,
                    &conn,
                    &self.fallback.server,
                    self.fallback.limits,
                )
                .map_err(BoxError::from)
            }
        };
        let app = Arc::clone(&self.app);
        Box::pin(async move {
            let environ = environ?;
            let start = StartResponse::new(environ.method());
            let response = app.call(environ, start).await?;
            Ok(convert::into_http_response(response))
        })
    }
}

/// Put the environ back together from what the tower layer passed down.
fn reassemble<B>(
    mut environ: Environ,
    original_uri: &http::Uri,
    request: http::Request<B>,
) -> Result<Environ, BoxError>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    if parts.method != environ.method() {
        environ.set("REQUEST_METHOD", parts.method.as_str().to_owned())?;
    }
    if parts.uri != *original_uri {
        // The tower layer rewrote the target: its path becomes PATH_INFO under the same SCRIPT_NAME.
        let path = crate::environ::percent_decode(parts.uri.path().as_bytes()).to_vec();
        let path = match path.strip_prefix(environ.script_name()) {
            Some(rest)
                if environ.script_name().is_empty() || rest.is_empty() || rest[0] == b'/' =>
            {
                rest.to_vec()
            }
            _ => path,
        };
        environ.set("PATH_INFO", path)?;
        environ.set("QUERY_STRING", parts.uri.query().unwrap_or("").to_owned())?;
    }
    *environ.headers_mut() = parts.headers;
    *environ.extensions_mut() = parts.extensions;
    let mut body = Some(body);
    let input = match (&mut body as &mut dyn std::any::Any).downcast_mut::<Option<Input>>() {
        Some(input) => input.take().unwrap_or_default(),
        None => Input::from_body(body.take().expect("body not yet taken")),
    };
    environ.set_input(input);
    Ok(environ)
}

/// An application under a tower layer; made by [`TowerLayer`].
#[derive(Clone)]
pub struct Layered<S> {
    service: S,
}

impl<S> fmt::Debug for Layered<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layered").finish_non_exhaustive()
    }
}

impl<S, RB> Application for Layered<S>
where
    S: Service<http::Request<Input>, Response = http::Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    RB: http_body::Body + Send + 'static,
    RB::Data: Buf + Send,
    RB::Error: Into<BoxError>,
{
    fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> impl Future<Output = Reply> + Send {
        let mut service = self.service.clone();
        async move {
            let uri = convert::request_uri_for(&environ);
            let mut request = http::Request::new(environ.take_input());
            *request.method_mut() = environ.method().clone();
            *request.version_mut() = convert::version_of(&environ);
            *request.uri_mut() = uri.clone();
            *request.headers_mut() = std::mem::take(environ.headers_mut());
            *request.extensions_mut() = std::mem::take(environ.extensions_mut());
            request
                .extensions_mut()
                .insert(Riding(Arc::new(std::sync::Mutex::new(Some((
                    environ, uri,
                ))))));
            call_service(&mut service, request, start).await
        }
    }
}

/// Call a tower service with `request` (once it is ready) and respond with what it answers.
async fn call_service<S, RB>(
    service: &mut S,
    request: http::Request<Input>,
    start: StartResponse,
) -> Reply
where
    S: Service<http::Request<Input>, Response = http::Response<RB>>,
    S::Error: Into<BoxError>,
    RB: http_body::Body + Send + 'static,
    RB::Data: Buf + Send,
    RB::Error: Into<BoxError>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    let response = service.call(request).await.map_err(Into::into)?;
    respond_from_http(start, response)
}

/// Respond with a service's `http::Response`: its hop-by-hop headers dropped (the RGI server owns the
/// connection), its body streamed (not re-boxed when it already is an RGI [`Body`]), its extensions kept.
fn respond_from_http<RB>(start: StartResponse, response: http::Response<RB>) -> Reply
where
    RB: http_body::Body + Send + 'static,
    RB::Data: Buf + Send,
    RB::Error: Into<BoxError>,
{
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
    let mut body = Some(body);
    let body = match (&mut body as &mut dyn std::any::Any).downcast_mut::<Option<Body>>() {
        Some(own) => own.take().unwrap_or_default(),
        None => Body::from_http_body(body.take().expect("body not yet taken")),
    };
    let mut response = start.respond(parts.status, headers, body)?;
    *response.extensions_mut() = parts.extensions;
    Ok(response)
}
