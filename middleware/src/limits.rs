//! Limits per application or per mount: a request body size limit and a per-request timeout.
//!
//! - [`BodyLimitLayer`]: a request whose declared `Content-Length` is over the limit is answered
//!   `413 Content Too Large` before the application runs; a body without a declared length (chunked)
//!   is cut at the limit, and the application's read fails with [`rgi::BodyTooLarge`], which the
//!   server answers with 413. The limit only ever lowers the server's own (`--limit-request-body`).
//! - [`TimeoutLayer`]: an application that has not returned its response within the time is dropped
//!   (its future is cancelled at its next `.await`) and the client gets `504 Gateway Timeout`. The
//!   clock stops when the response is returned: streaming the body is not limited. A blocking
//!   application ([`rgi::blocking`]) cannot be interrupted mid-call; its answer is then discarded. The
//!   timer is tokio's, which every RGI server runs; without a tokio runtime the request fails with an
//!   error instead of panicking.
//!
//! Different parts of a site get different limits by layering the mounted applications:
//!
//! ```
//! use std::time::Duration;
//! use rgi::ApplicationExt;
//! use rgi_middleware::limits::{BodyLimitLayer, TimeoutLayer};
//! use rgi_middleware::Builder;
//!
//! let upload = rgi::app_fn(|mut environ, start| async move {
//!     let body = environ.input_mut().read_to_bytes().await?;
//!     start.text(format!("{} bytes\n", body.len()))
//! });
//! let api = rgi::app_fn(|_, start| async move { start.text("api\n") });
//! let app = Builder::new()
//!     .mount("/upload", upload.layer(BodyLimitLayer::new(8)))
//!     .mount("/api", api.layer(TimeoutLayer::new(Duration::from_secs(5))))
//!     .app(rgi::app_fn(|_, start| async move { start.text("home\n") }));
//!
//! let client = rgi::testing::TestClient::new(app);
//! assert_eq!(client.post("/upload").body("12345678").send_blocking().text(), "8 bytes\n");
//! assert_eq!(client.post("/upload").body("123456789").send_blocking().status(), 413);
//! ```

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use rgi::{Application, Environ, Layer, Reply, StartResponse};

/// Makes [`BodyLimit`]; see the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    limit: u64,
}

impl BodyLimitLayer {
    /// Refuse request bodies longer than `limit` bytes.
    pub fn new(limit: u64) -> Self {
        BodyLimitLayer { limit }
    }
}

impl<A> Layer<A> for BodyLimitLayer {
    type Service = BodyLimit<A>;

    fn layer(&self, inner: A) -> BodyLimit<A> {
        BodyLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// The middleware made by [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub struct BodyLimit<A> {
    inner: A,
    limit: u64,
}

impl<A: Application> Application for BodyLimit<A> {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        if environ.content_length().is_some_and(|len| len > self.limit) {
            return start.error(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let input = environ.take_input().with_limit(self.limit);
        environ.set_input(input);
        self.inner.call(environ, start).await
    }
}

/// Makes [`Timeout`]; see the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    after: Duration,
}

impl TimeoutLayer {
    /// Answer `504 Gateway Timeout` when the application has not responded after `after`.
    pub fn new(after: Duration) -> Self {
        TimeoutLayer { after }
    }
}

impl<A> Layer<A> for TimeoutLayer {
    type Service = Timeout<A>;

    fn layer(&self, inner: A) -> Timeout<A> {
        Timeout {
            inner,
            after: self.after,
        }
    }
}

/// The middleware made by [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<A> {
    inner: A,
    after: Duration,
}

/// A [`Timeout`] was used where no tokio runtime runs (tokio's timer is needed).
#[derive(Debug, Clone, Copy)]
pub struct NoTimer;

impl fmt::Display for NoTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rgi-middleware: the request timeout needs a tokio runtime with its timer")
    }
}

impl std::error::Error for NoTimer {}

impl<A: Application> Application for Timeout<A> {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Box::new(NoTimer));
        }
        let errors = environ.errors().clone();
        let path = String::from_utf8_lossy(environ.path_info()).into_owned();
        let spare = start.spare();
        match tokio::time::timeout(self.after, self.inner.call(environ, start)).await {
            Ok(reply) => reply,
            Err(_elapsed) => {
                errors.log(format_args!(
                    "rgi: request for {path} timed out after {:?}",
                    self.after
                ));
                spare.error(StatusCode::GATEWAY_TIMEOUT)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::testing::TestClient;
    use rgi::{ApplicationExt, Body};

    fn reader() -> impl Application {
        rgi::app_fn(|mut environ: Environ, start: StartResponse| async move {
            let body = environ.input_mut().read_to_bytes().await?;
            start.text(format!("{}", body.len()))
        })
    }

    #[test]
    fn declared_lengths_over_the_limit_are_refused_before_the_app_runs() {
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&ran);
        let app = rgi::app_fn(move |_environ: Environ, start: StartResponse| {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            async move { start.text("ran") }
        })
        .layer(BodyLimitLayer::new(4));
        let c = TestClient::new(app);
        assert_eq!(c.post("/").body("12345").send_blocking().status(), 413);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(c.post("/").body("1234").send_blocking().text(), "ran");
    }

    #[test]
    fn chunked_bodies_are_cut_at_the_limit() {
        let c = TestClient::new(reader().layer(BodyLimitLayer::new(4)));
        let chunks =
            futures_util::stream::iter(["12", "34", "5"].map(Ok::<_, std::convert::Infallible>));
        let r = c
            .post("/")
            .body_stream(Body::from_stream(chunks))
            .send_blocking();
        assert_eq!(r.status(), 413);
        let chunks =
            futures_util::stream::iter(["12", "34"].map(Ok::<_, std::convert::Infallible>));
        let r = c
            .post("/")
            .body_stream(Body::from_stream(chunks))
            .send_blocking();
        assert_eq!(r.text(), "4");
    }

    fn sleeper() -> impl Application {
        rgi::app_fn(|environ: Environ, start: StartResponse| async move {
            if environ.path_info() == b"/slow" {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            start.text("done")
        })
    }

    #[tokio::test(start_paused = true)]
    async fn slow_applications_get_a_504_and_fast_ones_pass() {
        let c = TestClient::new(sleeper().layer(TimeoutLayer::new(Duration::from_secs(1))));
        let r = c.get("/slow").send().await;
        assert_eq!(
            (r.status().as_u16(), r.text().as_str()),
            (504, "504 Gateway Timeout\n")
        );
        assert!(
            c.errors()[0].contains("/slow timed out"),
            "{:?}",
            c.errors()
        );
        assert_eq!(c.get("/").send().await.text(), "done");
        let r = c.head("/slow").send().await;
        assert_eq!((r.status().as_u16(), r.body().len()), (504, 0));
    }

    #[test]
    fn without_a_runtime_the_timeout_is_an_error_not_a_panic() {
        let c = TestClient::new(sleeper().layer(TimeoutLayer::new(Duration::from_secs(1))));
        assert_eq!(c.get("/").send_blocking().status(), 500);
        assert!(
            c.errors()[0].contains("needs a tokio runtime"),
            "{:?}",
            c.errors()
        );
    }
}
