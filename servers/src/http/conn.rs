//! One HTTP connection on hyper: which HTTP it speaks ([`h2`]), an HTTP/1.1 connection's life
//! between requests (keep-alive, the header-read timeout, buffers released while idle, the drain),
//! and each request's framing — the refusals RFC 9112 asks for, the environ from hyper's request,
//! the response back to hyper — around the shared [pipeline](crate::pipeline).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http::{header, HeaderValue, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use rgi::convert::{self, ConnInfo, InputLimits};
use rgi::{Application, Body, ServerInfo};
use tokio::io::AsyncWriteExt;

use super::h2::{self, Held};
use super::idle::{Idle, InFlight, ParkableIo, Watchdog};
use super::rfc9112;
use crate::bind::{Peer, Stream};
use crate::config::Config;
use crate::pipeline::body::LoggedBody;
use crate::pipeline::control::DRAIN_LINGER;
use crate::pipeline::log::Arrival;
use crate::pipeline::{plain, Pipeline};
use crate::tls::SessionSlot;

/// hyper's settings for the connections of one server.
pub(super) struct Builders {
    http1: hyper::server::conn::http1::Builder,
    /// `None` when HTTP/2 is off: connections are then HTTP/1.1 without looking.
    http2: Option<hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor>>,
}

impl Builders {
    /// HTTP/1.1 (with keep-alive or not), and HTTP/2 when `http2` and the configuration say so.
    pub(super) fn new(config: &Config, keep_alive: bool, http2: bool) -> Self {
        Builders {
            http1: http1_builder(config, keep_alive),
            http2: h2::builder(config).filter(|_| http2),
        }
    }
}

/// hyper's HTTP/1 settings from the client limits.
fn http1_builder(config: &Config, keep_alive: bool) -> hyper::server::conn::http1::Builder {
    let limits = &config.limits;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive(keep_alive)
        // A client may send its request and at once shut down its write side (`nc -N`, health
        // checkers): the request still gets its answer; hyper closes after it (RFC 9112 §9.6).
        // Without this, hyper treats the FIN as an abort if it arrives before the response.
        .half_close(true)
        // The header-read timeout is ours ([`idle`]): hyper's arms a timer for every request.
        .header_read_timeout(None)
        .max_buf_size(limits.max_head_bytes.max(8192).max(64 * 1024))
        .max_header_size(limits.max_head_bytes.max(8192));
    if limits.max_headers != 100 {
        builder.max_headers(limits.max_headers);
    }
    builder
}

/// Whether a connection error is the client's doing: it went away, timed out, or sent a head hyper
/// refused with a 4xx (malformed, too large). Those are not the server's errors and are not logged
/// at error level (nor in the access log: no request reached RGI).
fn is_client_side(e: &hyper::Error) -> bool {
    e.is_incomplete_message() || e.is_canceled() || e.is_timeout() || e.is_parse() || {
        let mut source = std::error::Error::source(e);
        let mut gone = false;
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<io::Error>() {
                gone = matches!(
                    io.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe
                        // A TLS handshake the client broke off or botched (it refused the
                        // certificate, or spoke plain HTTP to the TLS port).
                        | io::ErrorKind::InvalidData
                        | io::ErrorKind::NotConnected
                );
            }
            source = s.source();
        }
        gone
    }
}

/// Serve one connection until it ends. While the worker runs, the connection lives as long as the
/// client keeps it (and sends a request head within the header-read timeout); an idle one gives back
/// hyper's buffers after `idle_release` ([`idle`]). Once the worker drains, an idle connection gets
/// [`DRAIN_LINGER`] to send one more request (answered with
/// `Connection: close`), busy ones close after their current response.
pub(super) async fn serve_connection<A: Application>(
    conn: Arc<Connection<A>>,
    builders: &Builders,
    stream: Stream,
) {
    let pipeline = Arc::clone(&conn.pipeline);
    let watchdog = Arc::clone(&conn.watchdog);
    let drain_waker = Arc::clone(&conn.drain_waker);
    let session = conn.session.clone();
    let service = hyper::service::service_fn(move |request| {
        if let Some(busy) = &conn.busy {
            // Milliseconds since the worker's epoch, +1 so that 0 means idle.
            busy.store(
                conn.epoch.elapsed().as_millis() as u64 + 1,
                Ordering::Relaxed,
            );
        }
        // Counted here, not when `handle` is first polled: hyper may hand over a pipelined request
        // and poll it later, and the idle watchdog must not park the connection in between.
        let in_flight = conn.watchdog.begin();
        handle(Arc::clone(&conn), request, in_flight)
    });
    let head_timeout = pipeline.config.limits.header_timeout();
    // A TLS connection keeps its session (and rustls its buffers) when hyper lets go: not parked.
    let tls = pipeline.config.tls.as_ref();
    let release = Some(pipeline.config.idle_release).filter(|d| !d.is_zero() && tls.is_none());
    let mut stream = match (tls, session) {
        (Some(tls), Some(session)) => Stream::Tls(Box::new(tls.accept(stream, session))),
        _ => stream,
    };
    let mut leftover = Bytes::new();
    if let Some(http2) = &builders.http2 {
        // Boxed, as the phases below: an HTTP/1.1 connection's task keeps no room for these.
        let told = first_bytes(
            &mut stream,
            &pipeline,
            &watchdog,
            &drain_waker,
            head_timeout,
        );
        let Some((speaks_h2, read)) = Box::pin(told).await else {
            return;
        };
        if speaks_h2 {
            let watch = h2::Watch {
                control: &pipeline.control,
                drain_waker: &drain_waker,
                watchdog: &watchdog,
                head_timeout,
            };
            let io = ParkableIo::new(stream, read, Arc::clone(&watchdog));
            return Box::pin(h2::serve(http2, io, service, watch)).await;
        }
        leftover = read;
    }
    let builder = &builders.http1;
    let mut draining = false;
    loop {
        // Each phase is boxed, so that a parked connection's task keeps no room for hyper's state.
        let cycle = Box::pin(async {
            let io = ParkableIo::new(stream, leftover, Arc::clone(&watchdog));
            let served = builder
                .serve_connection(hyper_util::rt::TokioIo::new(io), service.clone())
                .without_shutdown();
            let mut served = std::pin::pin!(served);
            let result = tokio::select! {
                biased;
                r = served.as_mut() => r,
                () = pipeline.control.until_drained(&drain_waker), if !draining => {
                    draining = true;
                    // Idle connections get a moment to send one last request, then let go.
                    let linger = tokio::time::sleep(DRAIN_LINGER);
                    tokio::select! {
                        r = served.as_mut() => r,
                        () = linger => {
                            watchdog.park();
                            served.as_mut().await
                        }
                    }
                }
                idle = watchdog.idle(head_timeout, release) => match idle {
                    Idle::Expired => return None, // slowloris, or idle past the header-read timeout
                    Idle::Release => {
                        watchdog.park();
                        served.as_mut().await
                    }
                },
            };
            let parts = match result {
                Ok(parts) => parts,
                Err(e) => {
                    if !is_client_side(&e) {
                        pipeline
                            .server
                            .errors
                            .log(format_args!("http: connection error: {e}"));
                    }
                    return None;
                }
            };
            // hyper let go: the client closed, a response closed the connection, or we parked it.
            if !watchdog.is_parking() || draining || pipeline.control.is_draining() {
                // Without the parking, hyper would have shut the socket down itself.
                let _ = parts.io.into_inner().shutdown().await;
                return None;
            }
            watchdog.unpark();
            let (socket, unread) = parts.io.into_inner().into_parts();
            // What hyper read ahead comes first, then what it never took from our leftover. An
            // empty `read_buf` still holds hyper's whole buffer: it is dropped with this phase.
            let leftover = match (parts.read_buf.is_empty(), unread.is_empty()) {
                (true, _) => unread,
                (false, true) => Bytes::copy_from_slice(&parts.read_buf),
                (false, false) => Bytes::from([&parts.read_buf[..], &unread[..]].concat()),
            };
            Some((socket, leftover))
        });
        let Some((socket, unread)) = cycle.await else {
            return;
        };
        (stream, leftover) = (socket, unread);
        if leftover.is_empty() {
            // Parked: no hyper state, no buffers, until the client sends something. (Not boxed: a
            // box allocated now would land among the pages hyper's buffers just freed, and keep
            // one of them from going back to the kernel.)
            let go_on = tokio::select! {
                ready = stream.readable() => ready.is_ok(),
                () = pipeline.control.until_drained(&drain_waker) => false,
                idle = watchdog.idle(head_timeout, None) => idle != Idle::Expired,
            };
            if !go_on {
                return;
            }
        }
    }
}

/// [`h2::speaks_h2`] within the header-read timeout, and within [`DRAIN_LINGER`] once the worker
/// drains; `None` when the client went away or took too long.
async fn first_bytes<A>(
    stream: &mut Stream,
    pipeline: &Pipeline<A>,
    watchdog: &Watchdog,
    drain_waker: &Arc<AtomicWaker>,
    head_timeout: Option<std::time::Duration>,
) -> Option<(bool, Bytes)> {
    let mut told = std::pin::pin!(h2::speaks_h2(stream));
    tokio::select! {
        biased;
        told = told.as_mut() => told.ok(),
        idle = watchdog.idle(head_timeout, None) => {
            debug_assert_eq!(idle, Idle::Expired);
            None
        }
        () = pipeline.control.until_drained(drain_waker) => {
            tokio::time::timeout(DRAIN_LINGER, told).await.ok()?.ok()
        }
    }
}

/// What every request on one connection shares.
pub(super) struct Connection<A> {
    pipeline: Arc<Pipeline<A>>,
    server: Arc<ServerInfo>,
    peer: Peer,
    /// Over TLS: what the handshake established, for every request's environ.
    session: Option<SessionSlot>,
    watchdog: Arc<Watchdog>,
    /// Woken when the worker begins draining ([`Control::until_drained`]).
    drain_waker: Arc<AtomicWaker>,
    /// The sync worker's busy mark (for its timeout), with the epoch it counts from.
    busy: Option<Arc<AtomicU64>>,
    epoch: Instant,
}

impl<A> Connection<A> {
    /// The state of a just-accepted connection. Made by the accept loop, before the connection's
    /// task first runs: what lives as long as the connection is then allocated next to the task
    /// itself, not among the request buffers freed when the connection idles (which would keep
    /// those pages resident).
    pub(super) fn open(
        pipeline: &Arc<Pipeline<A>>,
        peer: Peer,
        busy: Option<Arc<AtomicU64>>,
        epoch: Instant,
    ) -> Arc<Self> {
        Arc::new(Connection {
            // A copy per connection, so that the reference count every request's environ takes
            // is not a cache line the worker's threads pass back and forth.
            server: Arc::new((*pipeline.server).clone()),
            pipeline: Arc::clone(pipeline),
            peer,
            session: pipeline.config.tls.is_some().then(SessionSlot::default),
            watchdog: Arc::new(Watchdog::new()),
            drain_waker: Arc::new(AtomicWaker::new()),
            busy,
            epoch,
        })
    }
}

/// Answer one request: refusals of the head, else the environ through the pipeline; then the
/// response as hyper sends it.
async fn handle<A: Application>(
    conn: Arc<Connection<A>>,
    mut request: Request<Incoming>,
    in_flight: InFlight,
) -> Result<Response<LoggedBody<Held>>, std::convert::Infallible> {
    let pipeline = &conn.pipeline;
    let peer = conn.peer;
    let http2 = request.version() == Version::HTTP_2;
    let refused = if http2 {
        h2::reshape(&mut request, &pipeline.config.limits)
    } else {
        None
    };
    let mut record = pipeline.arrived(|| Arrival::from_http(&request, peer.remote));
    let mut kept = None;
    let mut response = match refused.or_else(|| refuse(&pipeline.config, &request)) {
        Some(refusal) => pipeline.refuse(refusal),
        None => {
            let info = ConnInfo {
                local: peer.local,
                remote: peer.remote,
                scheme: if pipeline.config.tls.is_some() {
                    rgi::Scheme::Https
                } else {
                    rgi::Scheme::Http
                },
            };
            let limits = InputLimits {
                max_body: pipeline.config.limits.max_body,
            };
            // hyper refuses an invalid Content-Length before this; the check stays for safety.
            let environ = if http2 {
                let (request, keep) = h2::keep_body(request);
                kept = keep;
                convert::environ_from_request(request, &info, &conn.server, limits)
            } else {
                convert::environ_from_request(request, &info, &conn.server, limits)
            };
            match environ {
                Ok(mut environ) => {
                    if let Some(mount) = &pipeline.config.script_name {
                        environ.mount(mount);
                    }
                    if let Some(session) = conn.session.as_ref().and_then(|s| s.get()) {
                        session.apply(&mut environ);
                    }
                    pipeline.respond(environ, &pipeline.server.errors).await
                }
                Err(invalid) => {
                    pipeline.refuse(plain(StatusCode::BAD_REQUEST, Some(&invalid.to_string())))
                }
            }
        }
    };
    // After a 400 the client's framing cannot be trusted, and after a 413 the rest of the body is
    // not worth reading: close (RFC 9112 §9.6), and say so. (HTTP/2 frames each stream on its own
    // and closes with GOAWAY.)
    if !http2
        && (pipeline.control.is_draining()
            || matches!(
                response.status(),
                StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
            ))
    {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(record) = &mut record {
        record.respond(&response);
    }
    let held = (in_flight, kept);
    Ok(response.map(|body| LoggedBody::new(pipeline.body(body), held, record)))
}

/// Answer requests whose target is over the limit (414), or that RFC 9112 says to refuse
/// ([`rfc9112`]), before the application sees them; a body over the limit is the pipeline's (413).
/// A refused head may mean the body's framing is unknown: those answers close the connection.
fn refuse(config: &Config, request: &Request<Incoming>) -> Option<Response<Body>> {
    let uri = request.uri();
    let target_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if target_len > config.limits.max_request_line {
        return Some(plain(StatusCode::URI_TOO_LONG, None));
    }
    if let Err(violation) = rfc9112::check(request) {
        let mut response = plain(violation.status, Some(violation.reason));
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Some(response);
    }
    None
}
