//! [`Handler`]: async functions (and [`blocking`] ones) whose arguments are extractors and whose result
//! is anything [`IntoResponse`].

use std::any::type_name;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use http::StatusCode;
use rgi::BoxFuture;

use crate::extract::{FromRequest, FromRequestParts, Request};
use crate::response::{IntoResponse, Response};
use crate::Error;

/// A request handler: an `async fn` whose arguments are extractors, or a synchronous `fn` wrapped in
/// [`blocking`].
///
/// Every argument but the last must implement [`FromRequestParts`] (it reads the request without
/// consuming it: [`Path`](crate::Path), [`Query`](crate::Query), [`State`](crate::State), headers…);
/// the last may implement [`FromRequest`] (it may consume the body: [`Json`](crate::Json),
/// [`Form`](crate::Form), [`Multipart`](crate::Multipart), `String`, `Bytes`…). The output must
/// implement [`IntoResponse`]. Up to 12 arguments.
///
/// A function that breaks these rules is refused at compile time, with a message that says so:
///
/// ```compile_fail
/// use rgi_framework::{get, App};
/// struct NotAnExtractor;
/// async fn index(_: NotAnExtractor) -> &'static str { "hi" }
/// // error[E0277]: `fn(NotAnExtractor) -> … {index}` is not a handler
/// let app = App::new().route("/", get(index));
/// ```
///
/// ```compile_fail
/// use rgi_framework::{get, App};
/// fn index() -> &'static str { "hi" } // not async: wrap it in `blocking(index)`
/// let app = App::new().route("/", get(index));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a handler",
    label = "not an `async fn(extractors…) -> impl IntoResponse`",
    note = "a handler is an `async fn`, or a plain `fn` wrapped in `rgi_framework::blocking(…)`",
    note = "every argument must be an extractor (`FromRequestParts`); only the last may read the body (`FromRequest`: `Json`, `Form`, `Multipart`, `String`, `Bytes`, `Environ`)",
    note = "the return type must implement `IntoResponse` (text, `Html`, `Json`, `Redirect`, `Result<_, rgi_framework::Error>`…)"
)]
pub trait Handler<T>: Clone + Send + Sync + Sized + 'static {
    /// Extract the arguments, call the function, make the response.
    fn call(&self, request: Request) -> BoxFuture<'static, Response>;
}

/// A synchronous handler, run on the environ's blocking executor; see [`blocking`].
#[derive(Clone, Copy)]
pub struct Blocking<F>(F);

impl<F> fmt::Debug for Blocking<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(type_name::<F>())
    }
}

/// Make a handler from a synchronous function that may block (`std::fs`, a synchronous database
/// driver).
///
/// The extractors run first (reading the body asynchronously); then the function runs through the
/// environ's [`Executor`](rgi::Executor), as [`rgi::blocking`] does: on a bounded pool under an async
/// server (a full pool answers `503`), on the request's own thread under a thread-per-request server.
///
/// ```
/// use rgi_framework::{blocking, get, App, Path};
/// fn read_note(Path(id): Path<u32>) -> String {
///     std::thread::sleep(std::time::Duration::from_millis(1)); // fine here
///     format!("note {id}")
/// }
/// let app = App::new().route("/notes/{id}", get(blocking(read_note))).build().unwrap();
/// let client = rgi::testing::TestClient::new(app);
/// assert_eq!(client.get("/notes/7").send_blocking().text(), "note 7");
/// ```
pub fn blocking<F>(f: F) -> Blocking<F> {
    Blocking(f)
}

fn reject(error: Error) -> Response {
    error.into_response()
}

impl<F, Fut, R> Handler<((),)> for F
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send,
    R: IntoResponse,
{
    fn call(&self, _request: Request) -> BoxFuture<'static, Response> {
        let f = self.clone();
        Box::pin(async move { f().await.into_response() })
    }
}

/// Run `f` on the request's executor and wait for its response.
async fn run_blocking<R: IntoResponse>(
    executor: rgi::SharedExecutor,
    f: impl FnOnce() -> R + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Box::new(move || {
        let _ = tx.send(f().into_response());
    });
    if executor.spawn_blocking(job).is_err() {
        return Error::new(StatusCode::SERVICE_UNAVAILABLE, "the server is busy").into_response();
    }
    match rx.await {
        Ok(response) => response,
        Err(_) => Error::internal("blocking handler ended without a response (did it panic?)")
            .into_response(),
    }
}

impl<F, R> Handler<(Blocking<()>,)> for Blocking<F>
where
    F: Fn() -> R + Clone + Send + Sync + 'static,
    R: IntoResponse + 'static,
{
    fn call(&self, request: Request) -> BoxFuture<'static, Response> {
        let f = self.0.clone();
        let executor = request.environ.executor().clone();
        Box::pin(run_blocking(executor, f))
    }
}

macro_rules! impl_handler {
    ([$($ty:ident),*], $last:ident) => {
        #[allow(non_snake_case)]
        impl<F, Fut, R, M, $($ty,)* $last> Handler<(M, $($ty,)* $last,)> for F
        where
            F: Fn($($ty,)* $last) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send,
            R: IntoResponse,
            M: 'static,
            $($ty: FromRequestParts + 'static,)*
            $last: FromRequest<M> + 'static,
        {
            #[allow(unused_mut)] // with one argument, the request goes straight to the last extractor
            fn call(&self, mut request: Request) -> BoxFuture<'static, Response> {
                let f = self.clone();
                Box::pin(async move {
                    $(let $ty = match $ty::from_request_parts(&mut request).await {
                        Ok(value) => value,
                        Err(error) => return reject(error),
                    };)*
                    let $last = match $last::from_request(request).await {
                        Ok(value) => value,
                        Err(error) => return reject(error),
                    };
                    f($($ty,)* $last).await.into_response()
                })
            }
        }

        #[allow(non_snake_case)]
        impl<F, R, M, $($ty,)* $last> Handler<(Blocking<M>, $($ty,)* $last,)> for Blocking<F>
        where
            F: Fn($($ty,)* $last) -> R + Clone + Send + Sync + 'static,
            R: IntoResponse + 'static,
            M: 'static,
            $($ty: FromRequestParts + 'static,)*
            $last: FromRequest<M> + 'static,
        {
            #[allow(unused_mut)] // with one argument, the request goes straight to the last extractor
            fn call(&self, mut request: Request) -> BoxFuture<'static, Response> {
                let f = self.0.clone();
                let executor = request.environ.executor().clone();
                Box::pin(async move {
                    $(let $ty = match $ty::from_request_parts(&mut request).await {
                        Ok(value) => value,
                        Err(error) => return reject(error),
                    };)*
                    let $last = match $last::from_request(request).await {
                        Ok(value) => value,
                        Err(error) => return reject(error),
                    };
                    run_blocking(executor, move || f($($ty,)* $last)).await
                })
            }
        }
    };
}

impl_handler!([], T1);
impl_handler!([T1], T2);
impl_handler!([T1, T2], T3);
impl_handler!([T1, T2, T3], T4);
impl_handler!([T1, T2, T3, T4], T5);
impl_handler!([T1, T2, T3, T4, T5], T6);
impl_handler!([T1, T2, T3, T4, T5, T6], T7);
impl_handler!([T1, T2, T3, T4, T5, T6, T7], T8);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8], T9);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9], T10);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10], T11);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11], T12);

/// A handler with its argument types erased, as stored in the route table.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    fn call(&self, request: Request) -> BoxFuture<'static, Response>;
    fn type_name(&self) -> &'static str;
}

struct Erased<H, T> {
    handler: H,
    _args: PhantomData<fn() -> T>,
}

impl<H: Handler<T>, T: 'static> ErasedHandler for Erased<H, T> {
    fn call(&self, request: Request) -> BoxFuture<'static, Response> {
        self.handler.call(request)
    }

    fn type_name(&self) -> &'static str {
        type_name::<H>()
    }
}

/// A shared, type-erased handler.
pub(crate) type BoxHandler = Arc<dyn ErasedHandler>;

pub(crate) fn erase<H: Handler<T>, T: 'static>(handler: H) -> BoxHandler {
    Arc::new(Erased {
        handler,
        _args: PhantomData,
    })
}
