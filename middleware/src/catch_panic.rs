//! Panic catcher: a panic in the application becomes a `500 Internal Server Error`, not a dropped
//! connection, and the server keeps serving.
//!
//! The panic is caught where the application's future is polled (`catch_unwind`), answered with a
//! [spare](rgi::StartResponse::spare) `StartResponse`, and written to `rgi.errors` with the request's
//! method, path and — when a [`RequestId`] layer runs further out — its id, so the line in the error
//! log matches the one in the access log. A panic while a streamed body is produced (after the status
//! went out) cannot become a 500 any more: it ends the body with an error, so the server aborts that
//! response instead of sending a truncated one as complete, and is logged the same way.
//!
//! Rust's panic hook still prints the panic message to standard error as usual; a process built with
//! `panic = "abort"` cannot be caught at all.
//!
//! ```
//! use rgi::ApplicationExt;
//! use rgi_middleware::catch_panic::CatchPanicLayer;
//!
//! let app = rgi::app_fn(|environ, start| async move {
//!     if environ.path_info() == b"/boom" {
//!         panic!("the invariant did not hold");
//!     }
//!     start.text("fine")
//! })
//! .layer(CatchPanicLayer::new());
//!
//! let client = rgi::testing::TestClient::new(app);
//! assert_eq!(client.get("/boom").send_blocking().status(), 500);
//! assert_eq!(client.get("/").send_blocking().text(), "fine"); // still serving
//! assert!(client.errors()[0].contains("the invariant did not hold"));
//! ```

use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt;
use http::StatusCode;
use http_body::{Frame, SizeHint};
use rgi::{Application, Body, BodyKind, BoxError, Environ, Errors, Layer, Reply, StartResponse};

use crate::request_id::RequestId;

/// Makes [`CatchPanic`]; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct CatchPanicLayer {
    _private: (),
}

impl CatchPanicLayer {
    /// Catch panics in the application and in its streamed bodies.
    pub fn new() -> Self {
        CatchPanicLayer::default()
    }
}

impl<A> Layer<A> for CatchPanicLayer {
    type Service = CatchPanic<A>;

    fn layer(&self, inner: A) -> CatchPanic<A> {
        CatchPanic { inner }
    }
}

/// The middleware made by [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<A> {
    inner: A,
}

/// What a panic message names: where it happened.
#[derive(Debug, Clone)]
struct Origin {
    method: String,
    path: String,
    id: Option<RequestId>,
    errors: Errors,
}

impl Origin {
    fn of(environ: &Environ) -> Self {
        let mut path = String::from_utf8_lossy(environ.script_name()).into_owned();
        path.push_str(&String::from_utf8_lossy(environ.path_info()));
        Origin {
            method: environ.method().to_string(),
            path,
            id: environ.extensions().get::<RequestId>().cloned(),
            errors: environ.errors().clone(),
        }
    }

    fn log(&self, during: &str, payload: &(dyn Any + Send)) {
        let message = panic_message(payload);
        match &self.id {
            Some(id) => self.errors.log(format_args!(
                "rgi: panic {during} for {} {} (request id {id}): {message}",
                self.method, self.path
            )),
            None => self.errors.log(format_args!(
                "rgi: panic {during} for {} {}: {message}",
                self.method, self.path
            )),
        }
    }
}

/// The text of a panic payload (`panic!("…")` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a non-string panic payload)"
    }
}

impl<A: Application> Application for CatchPanic<A> {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        let origin = Origin::of(&environ);
        let spare = start.spare();
        // The inner future is dropped right after a panic and never polled again, so no broken
        // invariant of it can be observed: asserting unwind safety is sound here.
        let caught = AssertUnwindSafe(self.inner.call(environ, start))
            .catch_unwind()
            .await;
        match caught {
            Ok(reply) => {
                let response = reply?;
                Ok(response.inspect_body(|body| guard_body(body, origin)))
            }
            Err(payload) => {
                origin.log("in the application", &*payload);
                spare.error(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

/// Streamed bodies run application code while the server polls them; bytes in memory and files do not.
fn guard_body(body: Body, origin: Origin) -> Body {
    match body.into_kind() {
        BodyKind::Stream(inner) => Body::from_http_body(PanicSafeBody {
            inner,
            origin: Some(Arc::new(origin)),
        }),
        other => other.into(),
    }
}

/// A streamed body whose panics become a body error.
struct PanicSafeBody {
    inner: Body,
    /// `None` once a panic was caught: the body is over.
    origin: Option<Arc<Origin>>,
}

/// The error that ends a body whose producer panicked.
#[derive(Debug)]
struct PanicInBody;

impl fmt::Display for PanicInBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rgi: the response body panicked")
    }
}

impl std::error::Error for PanicInBody {}

impl http_body::Body for PanicSafeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(origin) = &this.origin else {
            return Poll::Ready(None);
        };
        let inner = &mut this.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll_frame(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                origin.log("in the response body", &*payload);
                this.origin = None;
                Poll::Ready(Some(Err(Box::new(PanicInBody))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.origin.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::testing::TestClient;
    use rgi::ApplicationExt;

    use crate::request_id::RequestIdLayer;

    fn panicky() -> impl Application {
        rgi::app_fn(|environ: Environ, start: StartResponse| async move {
            match environ.path_info() {
                b"/str" => panic!("static message"),
                b"/string" => panic!("formatted {}", 42),
                b"/any" => std::panic::panic_any(7_u8),
                b"/err" => Err("plain error".into()),
                b"/stream" => {
                    let chunks = futures_util::stream::iter([Ok::<_, BoxError>("one")]).chain(
                        futures_util::stream::poll_fn(
                            |_| -> Poll<Option<Result<&str, BoxError>>> { panic!("mid-body") },
                        ),
                    );
                    start.text(Body::from_stream(chunks))
                }
                _ => start.text("ok"),
            }
        })
    }

    use futures_util::StreamExt;

    #[test]
    fn panics_become_500_and_the_client_keeps_serving() {
        let client = TestClient::new(panicky().layer(CatchPanicLayer::new()));
        for path in ["/str", "/string", "/any"] {
            let r = client.get(path).send_blocking();
            assert_eq!(
                (r.status().as_u16(), r.text()),
                (500, "500 Internal Server Error\n".into())
            );
        }
        assert_eq!(client.get("/").send_blocking().text(), "ok");
        let errors = client.errors();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].contains("GET /str") && errors[0].contains("static message"),
            "{errors:?}"
        );
        assert!(errors[1].contains("formatted 42"));
        assert!(errors[2].contains("non-string panic payload"));
    }

    #[test]
    fn head_requests_get_an_empty_500() {
        let client = TestClient::new(panicky().layer(CatchPanicLayer::new()));
        let r = client.head("/str").send_blocking();
        assert_eq!((r.status().as_u16(), r.body().len()), (500, 0));
    }

    #[test]
    fn errors_pass_through_untouched() {
        let client = TestClient::new(panicky().layer(CatchPanicLayer::new()));
        let r = client.get("/err").send_blocking();
        assert_eq!(r.status(), 500);
        assert!(client.errors()[0].contains("plain error"));
    }

    #[test]
    fn the_request_id_is_logged() {
        let app = panicky()
            .layer(CatchPanicLayer::new())
            .layer(RequestIdLayer::new());
        let client = TestClient::new(app);
        let r = client.get("/str").send_blocking();
        let id = r
            .header("x-request-id")
            .expect("the id is echoed on the 500");
        assert!(
            client.errors()[0].contains(&format!("(request id {id})")),
            "{:?}",
            client.errors()
        );
    }

    #[tokio::test]
    async fn a_panic_in_a_streamed_body_ends_it_with_an_error() {
        let client = TestClient::new(panicky().layer(CatchPanicLayer::new()));
        let result = tokio::spawn(client.get("/stream").send()).await;
        // The test client treats a failing body as a bug in the test and panics with that message.
        let panic = result.unwrap_err().into_panic();
        assert!(
            panic_message(&*panic).contains("response body failed"),
            "{}",
            panic_message(&*panic)
        );
        assert!(
            client.errors()[0].contains("in the response body"),
            "{:?}",
            client.errors()
        );
        assert_eq!(client.get("/").send().await.text(), "ok");
    }
}
