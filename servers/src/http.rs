//! HTTP/1.1 server (hyper 1.x): serves any RGI application to browsers, curl, or a proxy in front.
//!
//! Supported: keep-alive and pipelining; chunked and fixed-length request bodies streamed to
//! `rgi.input` (never buffered whole); streamed responses flushed chunk by chunk; HEAD; `Expect:
//! 100-continue` (answered when the application first reads the body); `Date`; the [`Limits`](crate::config::Limits) with 4xx
//! answers (414, 431, 413) and a header-read timeout against slowloris; blocking applications on a
//! bounded pool (503 when full); application panics answered with 500 while the server keeps serving;
//! graceful shutdown bounded by [`Config::graceful_timeout`]; TCP and unix sockets.
//!
//! Not supported: HTTP/2, TLS (terminate in the proxy in front), upgrades (WebSocket).

use std::any::Any;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rgi::convert::{self, ConnInfo, InputLimits};
use rgi::{Application, Body, BodyKind, BoxError, Capabilities, ServerInfo};
use tokio_util::sync::CancellationToken;

use crate::bind::{Listener, Peer};
use crate::config::Config;

/// `SERVER_SOFTWARE` of this server.
pub const SOFTWARE: &str = concat!("rgi-http/", env!("CARGO_PKG_VERSION"));

/// Build the [`ServerInfo`] an async server shares across requests: multithreaded, a bounded
/// blocking pool on the current runtime, errors to stderr.
///
/// # Panics
///
/// Outside a tokio runtime.
pub fn async_server_info(
    software: &'static str,
    config: &Config,
    multiprocess: bool,
) -> Arc<ServerInfo> {
    Arc::new(ServerInfo {
        software: software.into(),
        multithread: true,
        multiprocess,
        run_once: false,
        capabilities: Capabilities::STREAMING | Capabilities::STREAMING_INPUT,
        executor: Arc::new(rgi::TokioBlocking::current(
            config.blocking_threads + config.blocking_queue,
        )),
        errors: rgi::Errors::stderr(),
    })
}

/// Serve `app` over HTTP/1.1 on `listeners` until `shutdown` is cancelled, then finish in-flight
/// requests (at most [`Config::graceful_timeout`]) and return.
///
/// Must run inside a tokio runtime whose blocking pool has [`Config::blocking_threads`] threads.
///
/// # Errors
///
/// Only for failures that stop the whole server; per-connection errors are logged and the server
/// goes on.
pub async fn serve<A: Application>(
    listeners: Vec<Listener>,
    app: Arc<A>,
    config: Config,
    server: Arc<ServerInfo>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let state = Arc::new(State {
        app,
        builder: connection_builder(&config),
        config,
        server,
    });
    let graceful = Arc::new(GracefulShutdown::new());
    let mut accept_loops = tokio::task::JoinSet::new();
    for listener in listeners {
        let state = Arc::clone(&state);
        let graceful = Arc::clone(&graceful);
        let shutdown = shutdown.clone();
        accept_loops.spawn(async move {
            accept_loop(listener, state, graceful, shutdown).await;
        });
    }
    shutdown.cancelled().await;
    // Listeners close as the accept loops end: new connections are refused from here on.
    while accept_loops.join_next().await.is_some() {}
    let graceful = Arc::into_inner(graceful).unwrap_or_default();
    let timeout = state.config.graceful_timeout;
    if tokio::time::timeout(timeout, graceful.shutdown())
        .await
        .is_err()
    {
        state.server.errors.log(format_args!(
            "rgi-http: graceful timeout ({timeout:?}) elapsed; closing remaining connections"
        ));
    }
    Ok(())
}

struct State<A> {
    app: Arc<A>,
    builder: hyper::server::conn::http1::Builder,
    config: Config,
    server: Arc<ServerInfo>,
}

fn connection_builder(config: &Config) -> hyper::server::conn::http1::Builder {
    let limits = &config.limits;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        // Not `pipeline_flush(true)`: with it, hyper's automatic 400/431 answers to malformed heads
        // are never flushed and the client sees an empty reply.
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192).max(64 * 1024))
        .max_header_size(limits.max_head_bytes.max(8192));
    // hyper keeps headers on the stack at its default of 100; only pay for the heap when asked.
    if limits.max_headers != 100 {
        builder.max_headers(limits.max_headers);
    }
    builder
}

async fn accept_loop<A: Application>(
    listener: Listener,
    state: Arc<State<A>>,
    graceful: Arc<GracefulShutdown>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE, ENFILE, ECONNABORTED…: transient; back off briefly instead of spinning.
                state
                    .server
                    .errors
                    .log(format_args!("rgi-http: accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service_state = Arc::clone(&state);
        let service = hyper::service::service_fn(move |request| {
            handle(Arc::clone(&service_state), peer, request)
        });
        let connection = state
            .builder
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        let errors = state.server.errors.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // Client-side trouble (reset, timeout, malformed request already answered by hyper).
                if !is_client_gone(&e) {
                    errors.log(format_args!("rgi-http: connection error: {e}"));
                }
            }
        });
    }
}

fn is_client_gone(e: &hyper::Error) -> bool {
    e.is_incomplete_message() || e.is_canceled() || e.is_timeout() || {
        let mut source = std::error::Error::source(e);
        let mut gone = false;
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<io::Error>() {
                gone = matches!(
                    io.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                );
            }
            source = s.source();
        }
        gone
    }
}

async fn handle<A: Application>(
    state: Arc<State<A>>,
    peer: Peer,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, std::convert::Infallible> {
    if let Some(refusal) = refuse(&state.config, &request) {
        return Ok(refusal.map(ResponseBody::new));
    }
    let conn = ConnInfo {
        local: peer.local,
        remote: peer.remote,
        scheme: rgi::Scheme::Http,
    };
    let limits = InputLimits {
        max_body: state.config.limits.max_body,
    };
    let mut environ = convert::environ_from_request(request, &conn, &state.server, limits);
    if let Some(mount) = &state.config.script_name {
        environ.mount(mount);
    }
    let call = AssertUnwindSafe(convert::call_app(&*state.app, environ)).catch_unwind();
    let response = match call.await {
        Ok(response) => response,
        Err(panic) => {
            state.server.errors.log(format_args!(
                "rgi-http: application panicked: {}",
                panic_message(&*panic)
            ));
            let error: BoxError = "application panicked".into();
            convert::error_response(&error)
        }
    };
    Ok(response.map(ResponseBody::new))
}

/// Answer requests beyond the limits before the application sees them.
fn refuse(config: &Config, request: &Request<Incoming>) -> Option<Response<Body>> {
    let uri = request.uri();
    let target_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if target_len > config.limits.max_request_line {
        return Some(plain(StatusCode::URI_TOO_LONG));
    }
    if let (Some(max), Some(len)) = (
        config.limits.max_body,
        request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok()),
    ) {
        if len > max {
            let mut response = plain(StatusCode::PAYLOAD_TOO_LARGE);
            // The body will not be read: do not keep the connection for another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Some(response);
        }
    }
    None
}

fn plain(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::from(format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

/// The response body as hyper sees it: files read by tokio instead of blocking reads, and a panic in
/// the application's stream turned into an error (the connection is aborted) instead of unwinding into
/// hyper.
pub struct ResponseBody {
    inner: Body,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl ResponseBody {
    fn new(body: Body) -> Self {
        let inner = match body.into_kind() {
            BodyKind::File(file) => file_stream(file),
            other => Body::from(other),
        };
        ResponseBody { inner }
    }
}

/// Stream a file range through tokio's file I/O (off the reactor threads).
fn file_stream(file: rgi::FileBody) -> Body {
    use std::io::{Seek, SeekFrom};
    use tokio::io::AsyncReadExt;
    let (mut file, offset, len) = file.into_parts();
    if let Err(e) = file.seek(SeekFrom::Start(offset)) {
        return Body::from_stream(futures_util::stream::once(
            async move { Err::<Bytes, _>(e) },
        ));
    }
    let reader = tokio::fs::File::from_std(file).take(len);
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024);
    let body = Body::from_stream(stream);
    // Keep the exact length so hyper sends Content-Length instead of chunks.
    Body::from_http_body(ExactLen { inner: body, len })
}

struct ExactLen {
    inner: Body,
    len: u64,
}

impl http_body::Body for ExactLen {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.len = self.len.saturating_sub(data.len() as u64);
            }
        }
        polled
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.len)
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let inner = &mut self.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll_frame(cx))) {
            Ok(polled) => polled,
            Err(panic) => {
                let message = format!(
                    "rgi-http: response body panicked: {}",
                    panic_message(&*panic)
                );
                self.inner = Body::empty();
                Poll::Ready(Some(Err(message.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A future that resolves when SIGTERM or SIGINT arrives (the graceful-stop signals of a standalone
/// server).
///
/// # Errors
///
/// When the signal handlers cannot be installed.
pub fn stop_signal() -> io::Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}
