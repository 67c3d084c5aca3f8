//! HTTP/2 on the HTTP server (hyper's `http2`): which connections speak it, hyper's settings from
//! the [`Limits`], one connection's life (idle timeout, GOAWAY when the worker drains), and the one
//! thing a request looks different in: `:authority` instead of `Host`.
//!
//! A connection speaks HTTP/2 when, with [`Http2::enabled`](crate::config::Http2), the client chose
//! `h2` by ALPN (TLS), or opened a cleartext connection with the HTTP/2 connection preface (h2c by
//! prior knowledge, RFC 9113 §3.3). Telling the two apart reads the connection's first bytes
//! ourselves and hands them to hyper as the connection's leftover, the way
//! `hyper_util::server::conn::auto` does; that builder is not used because an HTTP/1.1 connection
//! here must come back from hyper when it idles (`without_shutdown`, see [`super::idle`]), which it
//! does not offer.
//!
//! hyper drops the connection-specific fields HTTP/2 forbids (`Connection` and the fields it names,
//! `Keep-Alive`, `Transfer-Encoding`, `Upgrade`, `TE`) from responses, so an application that sets
//! them (or the `Connection: close` this server adds over HTTP/1.1) does not break the stream.

use std::io;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use http::{header, HeaderValue, Request, StatusCode, Uri};
use http_body::Frame;
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rgi::Body;
use tokio::io::AsyncReadExt;

use super::idle::{Idle, InFlight, ParkableIo, Watchdog};
use crate::bind::Stream;
use crate::config::{Config, Limits};
use crate::pipeline::body::LoggedBody;
use crate::pipeline::control::{Control, DRAIN_LINGER};
use crate::pipeline::plain;

/// What a response body holds until it ends: the connection's in-flight mark, and an HTTP/2
/// stream's unfinished request body ([`Keep`]).
pub(super) type Held = (InFlight, Option<Keep>);

/// How an h2c client by prior knowledge opens a connection (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// hyper's HTTP/2 settings from the configuration; `None` when HTTP/2 is off.
pub(super) fn builder(config: &Config) -> Option<http2::Builder<TokioExecutor>> {
    if !config.http2.enabled {
        return None;
    }
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.http2.max_concurrent_streams)
        // The request head limit, as HTTP/2 counts it (decoded names and values, 32 bytes more per
        // field); hyper answers a larger head by resetting the stream.
        .max_header_list_size(u32::try_from(config.limits.max_head_bytes).unwrap_or(u32::MAX));
    Some(builder)
}

/// Whether the client on `stream` speaks HTTP/2: over TLS, its ALPN choice (the handshake completes
/// here); else whether its first bytes are the preface. Also the bytes read to tell, which hyper
/// must read first.
///
/// # Errors
///
/// When the handshake or the read fails (the client went away).
pub(super) async fn speaks_h2(stream: &mut Stream) -> io::Result<(bool, Bytes)> {
    if let Stream::Tls(tls) = stream {
        return Ok((tls.negotiate_h2().await?, Bytes::new()));
    }
    // Nothing allocated while a client that connected says nothing.
    stream.readable().await?;
    let mut read = BytesMut::with_capacity(4096);
    loop {
        let n = stream.read_buf(&mut read).await?;
        let seen = read.len().min(PREFACE.len());
        if n == 0 || read[..seen] != PREFACE[..seen] {
            return Ok((false, read.freeze()));
        }
        if seen == PREFACE.len() {
            return Ok((true, read.freeze()));
        }
    }
}

/// Serve one HTTP/2 connection until the client closes it. Once the worker drains, or when no
/// stream has been open for the header-read timeout (`head_timeout`), the client gets a GOAWAY and
/// the streams in flight finish (bounded by the accept loop's graceful timeout, or by
/// [`DRAIN_LINGER`] for an idle connection).
///
/// Connection errors are the client's (a protocol violation, a reset, a socket gone) and are not
/// logged; a failing response is the pipeline's to log.
pub(super) async fn serve<S>(
    builder: &http2::Builder<TokioExecutor>,
    io: ParkableIo,
    service: S,
    watch: Watch<'_>,
) where
    S: hyper::service::HttpService<Incoming, ResBody = LoggedBody<Held>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, LoggedBody<Held>>,
{
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = pin!(connection);
    tokio::select! {
        biased;
        _ = connection.as_mut() => return,
        () = watch.control.until_drained(watch.drain_waker) => {
            connection.as_mut().graceful_shutdown();
        }
        idle = watch.watchdog.idle(watch.head_timeout, None) => {
            debug_assert_eq!(idle, Idle::Expired);
            connection.as_mut().graceful_shutdown();
            // A client that does not answer the GOAWAY's PING must not keep the connection.
            let _ = tokio::time::timeout(DRAIN_LINGER, connection).await;
            return;
        }
    }
    let _ = connection.await;
}

/// What an HTTP/2 connection watches besides hyper.
pub(super) struct Watch<'a> {
    pub(super) control: &'a Control,
    pub(super) drain_waker: &'a Arc<AtomicWaker>,
    pub(super) watchdog: &'a Watchdog,
    /// The header-read timeout, here the time a connection may stay without open streams.
    pub(super) head_timeout: Option<Duration>,
}

/// An HTTP/2 request's body as the application reads it. Dropped before the stream is done (an
/// application that answers without reading the whole upload, a 413), it hands hyper's body to the
/// stream's [`Keep`], so that it lives until the response has been sent: h2 then ends the upload
/// with `RST_STREAM(NO_ERROR)` after the response ("stop sending", RFC 9113 §8.1). Dropped earlier,
/// it would reset the stream with `CANCEL` before the response, which clients take for a failure.
pub(super) struct KeptBody {
    inner: Option<Incoming>,
    keep: Option<Arc<Mutex<Option<Incoming>>>>,
}

/// Holds an unfinished request body (see [`KeptBody`]) until the response ends: it is part of the
/// response body's guard.
pub(super) struct Keep {
    _body: Arc<Mutex<Option<Incoming>>>,
}

/// The request with its body as a [`KeptBody`], and the [`Keep`] for the response (`None` when the
/// request came whole: nothing to keep).
pub(super) fn keep_body(request: Request<Incoming>) -> (Request<KeptBody>, Option<Keep>) {
    let keep =
        (!http_body::Body::is_end_stream(request.body())).then(|| Arc::new(Mutex::new(None)));
    let held = keep.as_ref().map(|k| Keep {
        _body: Arc::clone(k),
    });
    let request = request.map(|body| KeptBody {
        inner: Some(body),
        keep,
    });
    (request, held)
}

impl http_body::Body for KeptBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().inner {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            http_body::Body::size_hint,
        )
    }
}

impl Drop for KeptBody {
    fn drop(&mut self) {
        if let (Some(body), Some(keep)) = (self.inner.take(), &self.keep) {
            if !http_body::Body::is_end_stream(&body) {
                *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(body);
            }
        }
    }
}

/// Give an HTTP/2 request the shape an HTTP/1.1 request has, so that the environ is built the same
/// way: `Host` from `:authority` when the client sent no `Host` (RFC 9113 §8.3.1), and the target in
/// origin form (hyper's URI holds the scheme and authority too). `OPTIONS *` and `CONNECT` keep
/// theirs. Refuses with 431 a request with more fields than [`Limits::max_headers`] (over HTTP/1.1
/// hyper counts them).
pub(super) fn reshape<B>(
    request: &mut Request<B>,
    limits: &Limits,
) -> Option<http::Response<Body>> {
    if request.headers().len() > limits.max_headers {
        return Some(plain(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, None));
    }
    let uri = request.uri();
    let (Some(authority), Some(target)) = (uri.authority(), uri.path_and_query()) else {
        return None;
    };
    let host = (!request.headers().contains_key(header::HOST))
        .then(|| HeaderValue::from_str(authority.as_str()).ok())
        .flatten();
    let target = Uri::from(target.clone());
    if let Some(host) = host {
        request.headers_mut().insert(header::HOST, host);
    }
    *request.uri_mut() = target;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `speaks_h2` says of a client that writes `parts` (a pause between them) and closes.
    async fn sniff(parts: &[&'static [u8]]) -> (bool, Bytes) {
        use tokio::io::AsyncWriteExt;
        let (server, mut client) = tokio::net::UnixStream::pair().unwrap();
        let parts = parts.to_vec();
        let writer = tokio::spawn(async move {
            for part in parts {
                client.write_all(part).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let mut stream = Stream::Unix(server);
        let told = speaks_h2(&mut stream).await.unwrap();
        writer.await.unwrap();
        told
    }

    #[tokio::test]
    async fn the_preface_tells_h2c_from_http_1_1_and_no_byte_is_lost() {
        let (h2, read) = sniff(&[b"PRI * HTTP/2.0\r\n", b"\r\nSM\r\n\r\n\0\0"]).await;
        assert!(h2, "the preface, in two reads");
        assert!(read.starts_with(PREFACE), "{read:?}");
        let (h2, read) = sniff(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]).await;
        assert!(!h2);
        assert_eq!(&read[..], b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let (h2, read) = sniff(&[b"PRI * HTTP/1.1\r\n"]).await;
        assert!(!h2, "differs after a common start");
        assert_eq!(&read[..], b"PRI * HTTP/1.1\r\n");
        let (h2, read) = sniff(&[b"PRI * HT"]).await;
        assert!(
            !h2,
            "a client that stops inside the preface is hyper's to refuse"
        );
        assert_eq!(&read[..], b"PRI * HT");
    }

    #[test]
    fn an_http2_request_gets_host_from_its_authority_and_an_origin_form_target() {
        let limits = Limits::default();
        let mut request = Request::get("https://example.org:8443/a/b?c=d")
            .version(http::Version::HTTP_2)
            .body(())
            .unwrap();
        assert!(reshape(&mut request, &limits).is_none());
        assert_eq!(request.uri(), "/a/b?c=d");
        assert_eq!(request.headers()[header::HOST], "example.org:8443");
        let mut request = Request::get("https://example.org/")
            .header(header::HOST, "other.example")
            .body(())
            .unwrap();
        assert!(reshape(&mut request, &limits).is_none());
        assert_eq!(
            request.headers()[header::HOST],
            "other.example",
            "Host wins"
        );
        let mut request = Request::options("*").body(()).unwrap();
        assert!(reshape(&mut request, &limits).is_none());
        assert_eq!(request.uri(), "*");
        let mut request = Request::get("https://example.org/").body(()).unwrap();
        for i in 0..=limits.max_headers {
            request.headers_mut().append(
                format!("x-{i}").parse::<http::HeaderName>().unwrap(),
                HeaderValue::from_static("1"),
            );
        }
        let refused = reshape(&mut request, &limits).map(|r| r.status());
        assert_eq!(refused, Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
    }

    #[test]
    fn http2_off_means_no_builder() {
        let mut config = Config::default();
        assert!(builder(&config).is_some());
        config.http2.enabled = false;
        assert!(builder(&config).is_none());
    }
}
