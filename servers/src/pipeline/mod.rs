//! The request pipeline: what happens to every request once its transport (HTTP, FastCGI, SCGI,
//! uwsgi, CGI) has built the environ — written once, so that every setting means the same behind
//! every gateway:
//!
//! 1. limits and refusals: a declared body beyond [`Limits::max_body`](crate::config::Limits) is
//!    answered 413 before the application runs; what a transport refuses itself (a malformed head)
//!    is answered with the same [`plain`] page;
//! 2. the application: its errors answered with the status [`rgi::convert::error_response`] picks, a
//!    panic answered 500, a request past `--request-timeout` answered 504 (its future dropped);
//! 3. the request counted for `--max-requests` ([`Control`]: the one that reaches it starts the
//!    drain);
//! 4. the access-log line ([`log`]), written when the response body has been sent.
//!
//! The connections themselves come from one accept loop ([`accept`]). A transport keeps only its
//! framing: reading a request into an environ, writing the response.

pub(crate) mod accept;
pub(crate) mod body;
pub(crate) mod control;
pub(crate) mod log;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use http::{Response, StatusCode};
use rgi::{Application, Body, BoxError, Environ, Errors, ServerInfo};

use crate::accesslog::AccessLog;
use crate::config::Config;
pub(crate) use body::plain;
pub(crate) use control::Control;
use log::{Arrival, Unlogged};

/// Everything a server's connections share to answer requests.
pub(crate) struct Pipeline<A> {
    /// The application.
    pub(crate) app: Arc<A>,
    /// Limits, mount point, graceful timeout.
    pub(crate) config: Config,
    /// `rgi.*` server facts (executor, errors).
    pub(crate) server: Arc<ServerInfo>,
    /// The prefix of this server's error lines (`http`, `fastcgi`, …).
    pub(crate) tag: &'static str,
    /// The access log, if any.
    pub(crate) access_log: Option<Arc<AccessLog>>,
    /// Per-request deadline for the application's future.
    pub(crate) request_timeout: Option<Duration>,
    /// Draining and request counting.
    pub(crate) control: Arc<Control>,
    /// Whether file bodies are read through tokio (async servers) or with blocking reads (the sync
    /// worker's threads, CGI).
    pub(crate) tokio_files: bool,
}

impl<A> std::fmt::Debug for Pipeline<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("tag", &self.tag)
            .field("config", &self.config)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl<A> Pipeline<A> {
    /// A pipeline without an access log, a deadline or request counting (a single-process server),
    /// reading files through tokio.
    pub(crate) fn new(
        app: Arc<A>,
        config: Config,
        server: Arc<ServerInfo>,
        tag: &'static str,
    ) -> Self {
        Pipeline {
            app,
            config,
            server,
            tag,
            access_log: None,
            request_timeout: None,
            control: Arc::new(Control::new(0)),
            tokio_files: true,
        }
    }

    /// The access-log line of a request that just arrived (`None` without an access log; `arrival`
    /// is then not called).
    pub(crate) fn arrived(&self, arrival: impl FnOnce() -> Arrival) -> Option<Box<Unlogged>> {
        self.access_log
            .as_ref()
            .map(|log| Unlogged::new(arrival(), Arc::clone(log)))
    }

    /// Answer a request the transport refused before the application (counted like any other).
    pub(crate) fn refuse(&self, response: Response<Body>) -> Response<Body> {
        self.control.count_request();
        response
    }

    /// A response body ready for the transport: files through tokio when this server reads them so.
    pub(crate) fn body(&self, body: Body) -> Body {
        if self.tokio_files {
            body::tokio_file(body)
        } else {
            body
        }
    }
}

impl<A: Application> Pipeline<A> {
    /// Answer `environ`: 413 when its declared body is over the limit, else the application (its
    /// errors and panics answered, its deadline enforced). Failures are logged to `errors` (the
    /// request's own: FastCGI sends them to the web server). Counts the request.
    pub(crate) async fn respond(&self, environ: Environ, errors: &Errors) -> Response<Body> {
        let response = self.call(environ, errors).await;
        self.control.count_request();
        response
    }

    async fn call(&self, environ: Environ, errors: &Errors) -> Response<Body> {
        if let (Some(len), Some(max)) = (environ.content_length(), self.config.limits.max_body) {
            if len > max {
                // The client's mistake: answered, left to the access log.
                return plain(StatusCode::PAYLOAD_TOO_LARGE, None);
            }
        }
        let call = AssertUnwindSafe(rgi::convert::call_app(&*self.app, environ)).catch_unwind();
        let outcome = match self.request_timeout {
            Some(deadline) => tokio::time::timeout(deadline, call).await.ok(),
            None => Some(call.await),
        };
        match outcome {
            Some(Ok(response)) => response,
            Some(Err(panic)) => {
                errors.log(format_args!(
                    "{}: application panicked: {}",
                    self.tag,
                    body::panic_message(&*panic)
                ));
                let error: BoxError = "application panicked".into();
                rgi::convert::error_response(&error)
            }
            None => {
                errors.log(format_args!(
                    "{}: request exceeded --request-timeout ({:?})",
                    self.tag,
                    self.request_timeout.unwrap_or_default()
                ));
                plain(StatusCode::GATEWAY_TIMEOUT, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(app: impl Application) -> Pipeline<impl Application> {
        let config = Config {
            limits: crate::config::Limits {
                max_body: Some(10),
                ..Default::default()
            },
            ..Config::default()
        };
        let mut p = Pipeline::new(Arc::new(app), config, Arc::default(), "test");
        p.request_timeout = Some(Duration::from_millis(50));
        p.control = Arc::new(Control::new(3));
        p
    }

    fn environ(content_length: Option<&str>) -> Environ {
        let mut vars: Vec<(&[u8], &[u8])> = vec![(b"REQUEST_METHOD", b"POST")];
        if let Some(len) = content_length {
            vars.push((b"CONTENT_LENGTH", len.as_bytes()));
        }
        rgi::environ_from_cgi(vars).unwrap()
    }

    #[tokio::test]
    async fn limits_panics_and_deadlines_are_answered_and_every_request_counts() {
        let p = pipeline(rgi::app_fn(|environ: Environ, start| async move {
            match environ.content_length() {
                Some(1) => panic!("boom"),
                Some(2) => std::future::pending().await,
                _ => Ok(start.respond(StatusCode::OK, Default::default(), "ok")?),
            }
        }));
        let (errors, log) = rgi::Errors::capture();
        let status = |r: Response<Body>| r.status().as_u16();
        assert_eq!(status(p.respond(environ(Some("11")), &errors).await), 413);
        assert_eq!(status(p.respond(environ(Some("1")), &errors).await), 500);
        assert!(!p.control.is_draining());
        assert_eq!(status(p.respond(environ(None), &errors).await), 200);
        assert!(
            p.control.is_retiring(),
            "the third request reaches max_requests"
        );
        assert_eq!(status(p.respond(environ(Some("2")), &errors).await), 504);
        let logged = log.lines().join("\n");
        assert!(
            logged.contains("test: application panicked: boom"),
            "{logged}"
        );
        assert!(logged.contains("--request-timeout"), "{logged}");
        assert!(
            !logged.contains("413"),
            "a client's mistake is not an error: {logged}"
        );
    }
}
