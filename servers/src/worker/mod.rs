//! Worker kinds: how one arbiter worker process serves HTTP/1.1 on the listeners it inherited.
//!
//! - [`sync`]: `--threads` OS threads, each with its own current-thread tokio runtime, each accepting
//!   and serving **one connection at a time** with keep-alive off (gunicorn's sync worker). Blocking
//!   applications run right on the serving thread ([`rgi::Inline`]), so `--threads 8` serves 8 blocking
//!   requests at once.
//! - [`asynchronous`]: one multi-thread tokio runtime serving any number of keep-alive connections
//!   (gunicorn's gevent worker); blocking applications run on its bounded blocking pool.
//!
//! Both answer through the same request path: client limits (414, 413), the application (panics
//! become 500), the per-request deadline (504), `Connection: close` once the worker drains, an access
//! log line per request, and the request count for `--max-requests`.
//!
//! Not supported: HTTP/2, TLS, upgrades; requests hyper itself refuses (malformed heads, 431) are not
//! in the access log.

pub(crate) mod asynchronous;
mod idle;
mod rfc9112;
pub(crate) mod sync;

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use futures_util::FutureExt;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use hyper::body::Incoming;
use rgi::convert::{self, ConnInfo, InputLimits};
use rgi::{Application, Body, BodyKind, BoxError, ServerInfo};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::accesslog::{AccessLog, AccessRecord};
use crate::bind::{Listener, Peer, Stream};
use crate::config::Config;
use idle::{Idle, InFlight, ParkableIo, Watchdog};

/// State a worker process shares between its connections and its supervisor.
#[derive(Debug)]
pub(crate) struct Control {
    /// Set when draining begins, before `draining` is cancelled: what every request reads.
    /// (`CancellationToken::is_cancelled` takes a process-wide lock; this is one load.)
    drain_started: AtomicBool,
    draining: CancellationToken,
    /// Connections to wake when draining begins (see [`Control::until_drained`]).
    watchers: Mutex<Watchers>,
    served: AtomicU64,
    max_requests: u64,
    retiring: AtomicBool,
}

#[derive(Debug, Default)]
struct Watchers {
    next: u64,
    wakers: HashMap<u64, Arc<AtomicWaker>>,
}

impl Control {
    /// A worker that recycles itself after `max_requests` requests (0 = never).
    pub(crate) fn new(max_requests: u64) -> Self {
        Control {
            drain_started: AtomicBool::new(false),
            draining: CancellationToken::new(),
            watchers: Mutex::default(),
            served: AtomicU64::new(0),
            max_requests,
            retiring: AtomicBool::new(false),
        }
    }

    /// The token cancelled when draining begins (for the gateway servers' `shutdown`).
    pub(crate) fn token(&self) -> CancellationToken {
        self.draining.clone()
    }

    /// Begin draining: stop accepting, close connections after their current or next request.
    pub(crate) fn drain(&self) {
        self.drain_started.store(true, Ordering::SeqCst);
        self.draining.cancel();
        let watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        for waker in watchers.wakers.values() {
            waker.wake();
        }
    }

    /// Resolves when draining begins, like [`drained`](Self::drained), but cheap to poll often: a
    /// `CancellationToken`'s future takes a process-wide lock on every poll, and a connection's task
    /// is polled several times per request. This one takes the lock when created and dropped.
    /// `waker` is the caller's own (a connection keeps one for its lifetime rather than allocate one
    /// each time it waits); callers must not wait on two of these with the same `waker` at once.
    pub(crate) fn until_drained(&self, waker: &Arc<AtomicWaker>) -> UntilDrained<'_> {
        let waker = Arc::clone(waker);
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        let key = watchers.next;
        watchers.next += 1;
        watchers.wakers.insert(key, Arc::clone(&waker));
        UntilDrained {
            control: self,
            key,
            waker,
        }
    }

    /// Whether draining began.
    pub(crate) fn is_draining(&self) -> bool {
        self.drain_started.load(Ordering::SeqCst)
    }

    /// Resolves when draining begins.
    pub(crate) fn drained(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.draining.cancelled()
    }

    /// Whether the worker reached `--max-requests` (it then drains and exits).
    pub(crate) fn is_retiring(&self) -> bool {
        self.retiring.load(Ordering::Relaxed)
    }

    fn count_request(&self) {
        if self.max_requests == 0 {
            return; // nothing to count for: keep this cache line out of every request
        }
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        if self.max_requests > 0 && n >= self.max_requests {
            self.retiring.store(true, Ordering::Relaxed);
            self.drain();
        }
    }
}

/// See [`Control::until_drained`].
pub(crate) struct UntilDrained<'a> {
    control: &'a Control,
    key: u64,
    waker: Arc<AtomicWaker>,
}

impl Future for UntilDrained<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.control.is_draining() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // `drain` sets the flag before it wakes: a drain between the check above and the
        // registration is seen here.
        if self.control.is_draining() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for UntilDrained<'_> {
    fn drop(&mut self) {
        let mut watchers = self
            .control
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        watchers.wakers.remove(&self.key);
    }
}

/// Everything a connection needs to serve requests.
pub(crate) struct Shared<A> {
    /// The application.
    pub(crate) app: Arc<A>,
    /// Limits, mount point, graceful timeout.
    pub(crate) config: Config,
    /// `rgi.*` server facts (executor, errors).
    pub(crate) server: Arc<ServerInfo>,
    /// The access log, if any.
    pub(crate) access_log: Option<Arc<AccessLog>>,
    /// Per-request deadline for the application's future.
    pub(crate) request_timeout: Option<Duration>,
    /// Draining and request counting.
    pub(crate) control: Arc<Control>,
    /// Whether file bodies are read through tokio (async workers) or directly (sync workers).
    pub(crate) tokio_files: bool,
}

impl<A> std::fmt::Debug for Shared<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// hyper's HTTP/1 settings from the client limits.
fn connection_builder(config: &Config, keep_alive: bool) -> hyper::server::conn::http1::Builder {
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

/// Accept whatever is queued on `listener` right now, without waiting, then drop it: a draining
/// worker answers connections the kernel already completed instead of leaving them to be reset.
fn drain_accept(listener: Listener) -> Vec<(Stream, Peer)> {
    let mut out = Vec::new();
    match listener {
        Listener::Tcp(l) => {
            let Ok(l) = l.into_std() else { return out };
            let _ = l.set_nonblocking(true);
            while let Ok((s, remote)) = l.accept() {
                let local = s.local_addr().ok();
                let _ = s.set_nonblocking(true);
                let _ = s.set_nodelay(true);
                if let Ok(s) = tokio::net::TcpStream::from_std(s) {
                    out.push((
                        Stream::Tcp(s),
                        Peer {
                            local,
                            remote: Some(remote),
                        },
                    ));
                }
            }
        }
        Listener::Unix(l, _) => {
            let Ok(l) = l.into_std() else { return out };
            let _ = l.set_nonblocking(true);
            while let Ok((s, _)) = l.accept() {
                let _ = s.set_nonblocking(true);
                if let Ok(s) = tokio::net::UnixStream::from_std(s) {
                    out.push((Stream::Unix(s), Peer::default()));
                }
            }
        }
    }
    out
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
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
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
/// [`DRAIN_LINGER`](crate::arbiter::DRAIN_LINGER) to send one more request (answered with
/// `Connection: close`), busy ones close after their current response.
async fn serve_connection<A: Application>(
    conn: Arc<Connection<A>>,
    builder: &hyper::server::conn::http1::Builder,
    stream: Stream,
) {
    let shared = Arc::clone(&conn.shared);
    let watchdog = Arc::clone(&conn.watchdog);
    let drain_waker = Arc::clone(&conn.drain_waker);
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
    let head_timeout = shared.config.limits.header_timeout();
    let release = Some(shared.config.idle_release).filter(|d| !d.is_zero());
    let (mut stream, mut leftover) = (stream, Bytes::new());
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
                () = shared.control.until_drained(&drain_waker), if !draining => {
                    draining = true;
                    // Idle connections get a moment to send one last request, then let go.
                    let linger = tokio::time::sleep(crate::arbiter::DRAIN_LINGER);
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
                        shared
                            .server
                            .errors
                            .log(format_args!("rgi-worker: connection error: {e}"));
                    }
                    return None;
                }
            };
            // hyper let go: the client closed, a response closed the connection, or we parked it.
            if !watchdog.is_parking() || draining || shared.control.is_draining() {
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
                () = shared.control.until_drained(&drain_waker) => false,
                idle = watchdog.idle(head_timeout, None) => idle != Idle::Expired,
            };
            if !go_on {
                return;
            }
        }
    }
}

/// What every request on one connection shares.
pub(super) struct Connection<A> {
    shared: Arc<Shared<A>>,
    server: Arc<ServerInfo>,
    peer: Peer,
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
        shared: &Arc<Shared<A>>,
        peer: Peer,
        busy: Option<Arc<AtomicU64>>,
        epoch: Instant,
    ) -> Arc<Self> {
        Arc::new(Connection {
            // A copy per connection, so that the reference count every request's environ takes
            // is not a cache line the worker's threads pass back and forth.
            server: Arc::new((*shared.server).clone()),
            shared: Arc::clone(shared),
            peer,
            watchdog: Arc::new(Watchdog::new()),
            drain_waker: Arc::new(AtomicWaker::new()),
            busy,
            epoch,
        })
    }
}

async fn handle<A: Application>(
    conn: Arc<Connection<A>>,
    request: Request<Incoming>,
    in_flight: InFlight,
) -> Result<Response<LoggedBody>, std::convert::Infallible> {
    let shared = &conn.shared;
    let peer = conn.peer;
    // The access-log line's request half, captured before the application consumes the request;
    // the response half is filled in below.
    let mut record = shared.access_log.as_ref().map(|log| {
        Box::new(Unlogged {
            request: Pending {
                started: Instant::now(),
                remote: peer.remote,
                time: SystemTime::now(),
                method: request.method().as_str().to_owned(),
                target: request
                    .uri()
                    .path_and_query()
                    .map_or_else(|| request.uri().to_string(), |pq| pq.as_str().to_owned()),
                protocol: convert::protocol_name(request.version()),
                request_headers: request.headers().clone(),
            },
            status: 0,
            response_headers: HeaderMap::new(),
            log: Arc::clone(log),
        })
    });
    let mut response = match refuse(&shared.config, &request) {
        Some(refusal) => refusal,
        None => {
            let info = ConnInfo {
                local: peer.local,
                remote: peer.remote,
                scheme: rgi::Scheme::Http,
            };
            let limits = InputLimits {
                max_body: shared.config.limits.max_body,
            };
            let mut environ = convert::environ_from_request(request, &info, &conn.server, limits);
            if let Some(mount) = &shared.config.script_name {
                environ.mount(mount);
            }
            let call = AssertUnwindSafe(convert::call_app(&*shared.app, environ)).catch_unwind();
            let outcome = match shared.request_timeout {
                Some(deadline) => tokio::time::timeout(deadline, call).await.ok(),
                None => Some(call.await),
            };
            match outcome {
                Some(Ok(response)) => response,
                Some(Err(panic)) => {
                    shared.server.errors.log(format_args!(
                        "rgi-worker: application panicked: {}",
                        panic_message(&*panic)
                    ));
                    let error: BoxError = "application panicked".into();
                    convert::error_response(&error)
                }
                None => {
                    shared.server.errors.log(format_args!(
                        "rgi-worker: request exceeded --request-timeout ({:?})",
                        shared.request_timeout.unwrap_or_default()
                    ));
                    plain(StatusCode::GATEWAY_TIMEOUT)
                }
            }
        }
    };
    shared.control.count_request();
    // After a 400 the client's framing cannot be trusted, and after a 413 the rest of the body is
    // not worth reading: close (RFC 9112 §9.6), and say so.
    if shared.control.is_draining()
        || matches!(
            response.status(),
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
        )
    {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(record) = &mut record {
        record.status = response.status().as_u16();
        record.response_headers = response.headers().clone();
    }
    let tokio_files = shared.tokio_files;
    Ok(response.map(|body| LoggedBody {
        inner: if tokio_files { tokio_file(body) } else { body },
        bytes: 0,
        _in_flight: in_flight,
        record,
    }))
}

/// Answer requests beyond the limits, or that RFC 9112 says to refuse ([`rfc9112`]), before the
/// application sees them. A refused head may mean the body's framing is unknown: those answers
/// close the connection.
fn refuse(config: &Config, request: &Request<Incoming>) -> Option<Response<Body>> {
    let uri = request.uri();
    let target_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if target_len > config.limits.max_request_line {
        return Some(plain(StatusCode::URI_TOO_LONG));
    }
    if let Err(violation) = rfc9112::check(request) {
        let status = violation.status;
        let mut response = Response::new(Body::from(format!(
            "{} {}: {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            violation.reason
        )));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Some(response);
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(max), Some(len)) = (config.limits.max_body, declared) {
        if len > max {
            let mut response = plain(StatusCode::PAYLOAD_TOO_LARGE);
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

/// A file body read through tokio's file I/O instead of blocking reads on a reactor thread.
fn tokio_file(body: Body) -> Body {
    use std::io::{Seek, SeekFrom};
    use tokio::io::AsyncReadExt;
    match body.into_kind() {
        BodyKind::File(file) => {
            let (mut file, offset, len) = file.into_parts();
            if let Err(e) = file.seek(SeekFrom::Start(offset)) {
                return Body::from_stream(futures_util::stream::once(
                    async move { Err::<Bytes, _>(e) },
                ));
            }
            let reader = tokio::fs::File::from_std(file).take(len);
            let stream = tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024);
            Body::from_http_body(ExactLen {
                inner: Body::from_stream(stream),
                len,
            })
        }
        other => Body::from(other),
    }
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

/// The request facts an access-log line needs, captured before the application consumes the request.
struct Pending {
    started: Instant,
    remote: Option<std::net::SocketAddr>,
    time: SystemTime,
    method: String,
    target: String,
    protocol: &'static str,
    request_headers: HeaderMap,
}

/// The response body as hyper sees it: counts bytes, turns a panic in the application's stream into
/// an aborted connection, and writes the access-log line when the body ends or is dropped.
pub(crate) struct LoggedBody {
    inner: Body,
    bytes: u64,
    /// Held until the response ends (dropped with the body).
    _in_flight: InFlight,
    /// Boxed, so that without an access log the body hyper moves around stays small.
    record: Option<Box<Unlogged>>,
}

/// A response's access-log line, written when its body ends.
struct Unlogged {
    request: Pending,
    status: u16,
    response_headers: HeaderMap,
    log: Arc<AccessLog>,
}

impl std::fmt::Debug for LoggedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedBody")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            let Unlogged {
                request: p,
                status,
                response_headers,
                log,
            } = *record;
            log.log(&AccessRecord {
                remote: p.remote,
                time: p.time,
                method: p.method,
                target: p.target,
                protocol: p.protocol,
                status,
                bytes: self.bytes,
                duration: p.started.elapsed(),
                request_headers: p.request_headers,
                response_headers,
            });
        }
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let inner = &mut this.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll_frame(cx))) {
            Ok(polled) => {
                if let Poll::Ready(Some(Ok(frame))) = &polled {
                    if let Some(data) = frame.data_ref() {
                        this.bytes += data.len() as u64;
                    }
                }
                polled
            }
            Err(panic) => {
                let message = format!(
                    "rgi-worker: response body panicked: {}",
                    panic_message(&*panic)
                );
                this.inner = Body::empty();
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
