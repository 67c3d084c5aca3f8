//! HTTP/1.1 server (hyper 1.x): serves any RGI application to browsers, curl, or a proxy in front.
//!
//! Supported: keep-alive and pipelining; chunked and fixed-length request bodies streamed to
//! `rgi.input` (never buffered whole); streamed responses flushed chunk by chunk; HEAD; `Expect:
//! 100-continue` (answered when the application first reads the body); `Date`; the [`Limits`](crate::config::Limits) with 4xx
//! answers (414, 431, 413) and a header-read timeout against slowloris; blocking applications on a
//! bounded pool (503 when full); application panics answered with 500 while the server keeps serving;
//! graceful shutdown bounded by [`Config::graceful_timeout`](crate::config::Config); TCP and unix
//! sockets. A kept-alive connection that idles for
//! [`Config::idle_release`](crate::config::Config) (default 1 s) gives back hyper's buffers, so an
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
//! Two ways to serve, both through the same request pipeline (limits, panics, the
//! per-request deadline, the access log, request counting) and the same connection code
//! (`conn`): any number of keep-alive connections on a multi-thread runtime (the launcher, the
//! arbiter's `async` workers), or one connection at a time with keep-alive off (each serving thread
//! of the arbiter's `sync` workers). Once the server drains, each open connection's next response
//! carries `Connection: close`.
//!
//! TLS ([`crate::tls`]) when [`Config::tls`](crate::config::Config) is set: `rgi.url_scheme`
//! `https`, `HTTPS=on`; a TLS connection is never parked (rustls keeps its buffers).
//!
//! HTTP/2 ([`Http2`](crate::config::Http2), on by default; `--no-http2` turns it off): over TLS when
//! the client picks `h2` by ALPN, on a cleartext listener when the client opens with the HTTP/2
//! preface (h2c by prior knowledge: `curl --http2-prior-knowledge`, h2load, a proxy's h2c upstream;
//! there is no `Upgrade: h2c`). The application sees the same environ as over HTTP/1.1 but for
//! `SERVER_PROTOCOL=HTTP/2.0` (`HTTP_HOST` from `:authority` when there is no `Host`), through the
//! same pipeline and limits: the head limit is HTTP/2's `SETTINGS_MAX_HEADER_LIST_SIZE`, a body over
//! the limit is 413, the header-read timeout closes a connection with no open stream (GOAWAY), and
//! `--http2-max-streams` (default 100) bounds the streams open at once on one connection. When the
//! server drains (SIGTERM, a reload, `--max-requests`) each HTTP/2 connection gets a GOAWAY and its
//! open streams finish. Telling HTTP/1.1 from the preface reads a connection's first bytes once, when
//! it opens (not per request); with HTTP/2 off nothing is read ahead. The arbiter's `sync` workers
//! serve HTTP/1.1 only (one connection per thread, without keep-alive, cannot carry a connection of
//! many streams).
//!
//! Not supported: upgrades (WebSocket, `Upgrade: h2c`), HTTP/2 server push, trailers; requests
//! hyper itself refuses (malformed heads, 431, an HTTP/2 head over the limit) are not in the access
//! log.

mod conn;
mod h2;
mod idle;
mod rfc9112;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rgi::Application;

use crate::bind::Listener;
use crate::pipeline::accept::{self, Admission};
use crate::pipeline::Pipeline;
use conn::Connection;

/// `SERVER_SOFTWARE` of this server.
pub const SOFTWARE: &str = concat!("rgi-http/", env!("CARGO_PKG_VERSION"));

/// Serve keep-alive connections on `listeners` until the pipeline drains, then finish open
/// connections within the graceful timeout. Runs inside a multi-thread tokio runtime.
pub(crate) async fn serve<A: Application>(
    listeners: Vec<Listener>,
    pipeline: Arc<Pipeline<A>>,
) -> io::Result<()> {
    let builders = Arc::new(conn::Builders::new(&pipeline.config, true, true));
    let epoch = Instant::now();
    let trimmer = tokio::spawn(idle::trim_released_memory(Duration::from_millis(500)));
    let handler = Arc::clone(&pipeline);
    accept::serve(
        listeners,
        Admission::default(),
        &pipeline,
        move |stream, peer| {
            let conn = Connection::open(&handler, peer, None, epoch);
            let builders = Arc::clone(&builders);
            async move { conn::serve_connection(conn, &builders, stream).await }
        },
    )
    .await;
    trimmer.abort();
    Ok(())
}

/// Serve one connection at a time with keep-alive off, until the pipeline drains (a sync worker's
/// serving thread, on its own current-thread runtime). While a request runs, `busy` holds the
/// milliseconds since `epoch` when it began, plus one (0 = idle): the worker's timeout reads it.
pub(crate) async fn serve_one_at_a_time<A: Application>(
    listeners: Vec<Listener>,
    pipeline: Arc<Pipeline<A>>,
    busy: Arc<AtomicU64>,
    epoch: Instant,
) {
    // One connection at a time, each holding its thread: no HTTP/2, whose one connection carries
    // any number of requests (the settings refuse `--http2` with sync workers).
    let builders = Arc::new(conn::Builders::new(&pipeline.config, false, false));
    let handler = Arc::clone(&pipeline);
    let one = Admission {
        max_connections: Some(1),
        allowed: None,
    };
    accept::serve(listeners, one, &pipeline, move |stream, peer| {
        let conn = Connection::open(&handler, peer, Some(Arc::clone(&busy)), epoch);
        let (builders, busy) = (Arc::clone(&builders), Arc::clone(&busy));
        async move {
            conn::serve_connection(conn, &builders, stream).await;
            busy.store(0, Ordering::Relaxed);
        }
    })
    .await;
}
