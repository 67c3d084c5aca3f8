//! HTTP/1.1 server (hyper 1.x): serves any RGI application to browsers, curl, or a proxy in front.
//!
//! Supported: keep-alive and pipelining; chunked and fixed-length request bodies streamed to
//! `rgi.input` (never buffered whole); streamed responses flushed chunk by chunk; HEAD; `Expect:
//! 100-continue` (answered when the application first reads the body); `Date`; the [`Limits`](crate::config::Limits) with 4xx
//! answers (414, 431, 413) and a header-read timeout against slowloris; blocking applications on a
//! bounded pool (503 when full); application panics answered with 500 while the server keeps serving;
//! graceful shutdown bounded by [`Config::graceful_timeout`]; TCP and unix sockets. A kept-alive
//! connection that idles for [`Config::idle_release`] (default 1 s) gives back hyper's buffers, so an
//! idle connection costs about 2.5 KiB instead of 16 (10,000 idle connections: 27 MiB RSS; raw
//! hyper keeps 108 MiB).
//!
//! What RFC 9112 tells a server to refuse and hyper lets through (no or two `Host`s, two
//! `Content-Type`s, `chunked` twice, a target form the method does not allow) is answered 400 before
//! the application runs; a malformed or truncated body is the client's mistake (400, connection
//! closed, not logged as an error). The conformance table is `tests/tests/http_conformance.rs`.
//!
//! A client that shuts down its write side right after a whole request (`nc -N`, health checkers)
//! still gets its answer (hyper's `half_close`). The price: a read of end-of-stream cannot tell that
//! from a client gone for good, so a client that disconnects while the application is still working
//! is noticed when the response is written (its future is dropped then), not at once.
//!
//! Not supported: HTTP/2, TLS (terminate in the proxy in front), upgrades (WebSocket).

use std::future::Future;
use std::io;
use std::sync::Arc;

use rgi::{Application, Capabilities, ServerInfo};
use tokio_util::sync::CancellationToken;

use crate::bind::Listener;
use crate::config::Config;
use crate::worker;

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
/// This is the process manager's `async` worker request path run on its own: the same limits, panic
/// handling and drain (stop accepting, answer connections already queued, let idle keep-alive
/// connections send one more request with `Connection: close`), without an access log or request
/// counting.
///
/// Must run inside a tokio runtime whose blocking pool has [`Config::blocking_threads`] threads.
///
/// # Errors
///
/// None today (per-connection errors are logged and the server goes on); the `Result` leaves room for
/// failures that stop the whole server.
pub async fn serve<A: Application>(
    listeners: Vec<Listener>,
    app: Arc<A>,
    config: Config,
    server: Arc<ServerInfo>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let control = Arc::new(worker::Control::new(0));
    let drain = Arc::clone(&control);
    let stop = tokio::spawn(async move {
        shutdown.cancelled().await;
        drain.drain();
    });
    let shared = Arc::new(worker::Shared {
        app,
        config,
        server,
        access_log: None,
        request_timeout: None,
        control,
        tokio_files: true,
    });
    worker::asynchronous::serve(shared, listeners).await;
    stop.abort();
    Ok(())
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
