//! The [`Application`] trait, and adapters that turn closures and blocking code into applications.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{Environ, Response, StartResponse};

/// The error type an application may return: any error, boxed.
///
/// A server answers an `Err` with `500 Internal Server Error` and writes the error to `rgi.errors`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What an application call produces: a [`Response`] (only obtainable from [`StartResponse`]), or an error.
pub type Reply = Result<Response, BoxError>;

/// A boxed, sendable future, as returned by [`BoxApp`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An RGI application: called once per request with the request's [`Environ`] and a [`StartResponse`].
///
/// This is the whole contract. The application reads what it needs from `environ` (CGI meta-variables,
/// headers, the request body in `rgi.input`), then consumes `start` to produce its [`Response`]: status,
/// headers and a streaming [`Body`](crate::Body). Because a `Response` can only be made by consuming the
/// `StartResponse`, "no status" and "status twice" do not compile.
///
/// # Blocking code
///
/// `call` returns a future and is polled on an async runtime. Code that blocks the thread (`std::fs`,
/// `std::thread::sleep`, a synchronous database driver) **must not** run inside that future: wrap such an
/// application with [`blocking`], which runs it on the server's blocking pool (an async server) or on the
/// request's own thread (a thread-per-request server). See SPEC.md, "Blocking applications".
///
/// # Example
///
/// ```
/// use rgi::{Application, Environ, Reply, StartResponse};
///
/// struct Hello;
///
/// impl Application for Hello {
///     async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
///         start.text(format!("Hello from {}!\n", String::from_utf8_lossy(environ.path_info())))
///     }
/// }
/// # let response = rgi::testing::TestClient::new(Hello).get("/rgi").send_blocking();
/// # assert_eq!(response.text(), "Hello from /rgi!\n");
/// ```
pub trait Application: Send + Sync + 'static {
    /// Handle one request.
    ///
    /// # Errors
    ///
    /// An `Err` means the application could not produce a response; the server answers 500 and logs the
    /// error. Errors after the response was returned travel in the body stream instead.
    fn call(&self, environ: Environ, start: StartResponse) -> impl Future<Output = Reply> + Send;
}

impl<A: Application> Application for Arc<A> {
    fn call(&self, environ: Environ, start: StartResponse) -> impl Future<Output = Reply> + Send {
        (**self).call(environ, start)
    }
}

/// An application made from an async closure; see [`app_fn`].
#[derive(Clone)]
pub struct AppFn<F> {
    f: F,
}

/// Make an [`Application`] from a closure that returns a future.
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// let app = rgi::app_fn(|_environ, start| async move {
///     Ok(start.respond(StatusCode::NO_CONTENT, HeaderMap::new(), ())?)
/// });
/// # let response = rgi::testing::TestClient::new(app).get("/").send_blocking();
/// # assert_eq!(response.status(), 204);
/// ```
pub fn app_fn<F, Fut>(f: F) -> AppFn<F>
where
    F: Fn(Environ, StartResponse) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send,
{
    AppFn { f }
}

impl<F, Fut> Application for AppFn<F>
where
    F: Fn(Environ, StartResponse) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send,
{
    fn call(&self, environ: Environ, start: StartResponse) -> impl Future<Output = Reply> + Send {
        (self.f)(environ, start)
    }
}

impl<F> fmt::Debug for AppFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppFn").finish_non_exhaustive()
    }
}

/// A blocking application; see [`blocking`].
pub struct Blocking<F> {
    f: Arc<F>,
}

impl<F> Clone for Blocking<F> {
    fn clone(&self) -> Self {
        Blocking {
            f: Arc::clone(&self.f),
        }
    }
}

impl<F> fmt::Debug for Blocking<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blocking").finish_non_exhaustive()
    }
}

/// Make an [`Application`] from a synchronous function that may block.
///
/// The function runs through the environ's [`Executor`](crate::Executor): on an async server that is a
/// bounded blocking pool (so a sleeping request never stalls the others); on a thread-per-request server
/// it runs on the request's thread. When the pool is full the server's executor refuses the job and the
/// client gets `503 Service Unavailable`.
///
/// The request body is read with [`std::io::Read`] on [`Environ::input_mut`].
///
/// ```
/// use std::io::Read;
///
/// let app = rgi::blocking(|mut environ, start| {
///     let mut body = Vec::new();
///     environ.input_mut().read_to_end(&mut body)?;
///     std::thread::sleep(std::time::Duration::from_millis(1)); // fine here
///     start.bytes("application/octet-stream", body)
/// });
/// # let response = rgi::testing::TestClient::new(app).post("/").body("ping").send_blocking();
/// # assert_eq!(response.body(), "ping");
/// ```
pub fn blocking<F>(f: F) -> Blocking<F>
where
    F: Fn(Environ, StartResponse) -> Reply + Send + Sync + 'static,
{
    Blocking { f: Arc::new(f) }
}

impl<F> Application for Blocking<F>
where
    F: Fn(Environ, StartResponse) -> Reply + Send + Sync + 'static,
{
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        let executor = environ.executor().clone();
        let f = Arc::clone(&self.f);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Box::new(move || {
            // The receiver may be gone (client disconnected); the reply is then dropped, closing the body.
            let _ = tx.send(f(environ, start));
        });
        if let Err(overloaded) = executor.spawn_blocking(job) {
            return Err(Box::new(overloaded));
        }
        match rx.await {
            Ok(reply) => reply,
            // The job was dropped without running to completion: it panicked, or the pool shut down.
            Err(_) => Err(Box::new(crate::executor::JobLost)),
        }
    }
}

/// The object-safe twin of [`Application`], implemented for every application; used by [`BoxApp`].
trait DynApplication: Send + Sync + 'static {
    fn call_boxed(&self, environ: Environ, start: StartResponse) -> BoxFuture<'_, Reply>;
}

impl<A: Application> DynApplication for A {
    fn call_boxed(&self, environ: Environ, start: StartResponse) -> BoxFuture<'_, Reply> {
        Box::pin(self.call(environ, start))
    }
}

/// A type-erased, cheaply clonable application, for routers and mount tables that hold many kinds.
///
/// ```
/// let apps: Vec<rgi::BoxApp> = vec![
///     rgi::BoxApp::new(rgi::app_fn(|_, start| async move { start.text("a") })),
///     rgi::BoxApp::new(rgi::blocking(|_, start| start.text("b"))),
/// ];
/// # assert_eq!(apps.len(), 2);
/// ```
#[derive(Clone)]
pub struct BoxApp {
    inner: Arc<dyn DynApplication>,
}

impl BoxApp {
    /// Erase the type of `app`.
    pub fn new<A: Application>(app: A) -> Self {
        BoxApp {
            inner: Arc::new(app),
        }
    }
}

impl fmt::Debug for BoxApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxApp").finish_non_exhaustive()
    }
}

impl Application for BoxApp {
    fn call(&self, environ: Environ, start: StartResponse) -> impl Future<Output = Reply> + Send {
        self.inner.call_boxed(environ, start)
    }
}
