//! Response bodies as every transport sends them: the plain page the server answers with itself,
//! file bodies read through tokio, panics in a body's stream caught, and the body hyper polls, which
//! counts its bytes and writes the access-log line when it ends.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::Frame;
use rgi::{Body, BodyKind, BoxError};

use super::log::Unlogged;

/// The server's own answer: `NNN Reason\n`, or `NNN Reason: detail\n`, as `text/plain`.
pub(crate) fn plain(status: StatusCode, detail: Option<&str>) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("");
    let text = match detail {
        Some(detail) => format!("{} {reason}: {detail}\n", status.as_u16()),
        None => format!("{} {reason}\n", status.as_u16()),
    };
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

/// Poll `body` for its next frame; a panic in the application's stream becomes an error frame (the
/// transport then ends the response as truncated) instead of unwinding into the server.
pub(crate) fn poll_frame(
    body: Pin<&mut Body>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| http_body::Body::poll_frame(body, cx))) {
        Ok(polled) => polled,
        Err(panic) => {
            let message = format!("response body panicked: {}", panic_message(&*panic));
            Poll::Ready(Some(Err(message.into())))
        }
    }
}

/// A file body read through tokio's file I/O instead of blocking reads on a reactor thread (other
/// bodies unchanged). Its length stays known.
pub(crate) fn tokio_file(body: Body) -> Body {
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

/// A stream whose length is known (a file range), so that it is sent with a `Content-Length`.
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

/// A response body as a transport that polls it (hyper) sees it: counts bytes, turns a panic in the
/// application's stream into an error, holds `guard` (the transport's in-flight mark) until the
/// response ends, and writes the access-log line when it ends or is dropped.
pub(crate) struct LoggedBody<G> {
    inner: Body,
    /// The rest of a large data frame, handed out [`SLICE`] bytes at a time.
    pending: Bytes,
    bytes: u64,
    /// Held until the response ends (dropped with the body).
    _guard: G,
    /// Boxed, so that without an access log the body hyper moves around stays small.
    record: Option<Box<Unlogged>>,
}

impl<G> LoggedBody<G> {
    pub(crate) fn new(inner: Body, guard: G, record: Option<Box<Unlogged>>) -> Self {
        LoggedBody {
            inner,
            pending: Bytes::new(),
            bytes: 0,
            _guard: guard,
            record,
        }
    }
}

impl<G> std::fmt::Debug for LoggedBody<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedBody")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<G> Drop for LoggedBody<G> {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            record.write(self.bytes);
        }
    }
}

/// The most bytes of one data frame handed to the transport at once. A transport asks for more only
/// as it writes, so a large frame (a 64 MiB `Vec`) cut into zero-copy slices is counted for the
/// access log as it is written: a client that leaves midway is logged with about the bytes it was
/// sent, not the whole body.
const SLICE: usize = 256 * 1024;

impl<G: Unpin> http_body::Body for LoggedBody<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let mut data = if this.pending.is_empty() {
            match poll_frame(Pin::new(&mut this.inner), cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(Some(Err(e))) => {
                    this.inner = Body::empty();
                    return Poll::Ready(Some(Err(e)));
                }
                other => return other,
            }
        } else {
            std::mem::take(&mut this.pending)
        };
        if data.len() > SLICE {
            this.pending = data.split_off(SLICE);
        }
        this.bytes += data.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let inner = self.inner.size_hint();
        let pending = self.pending.len() as u64;
        let mut hint = http_body::SizeHint::new();
        hint.set_lower(inner.lower() + pending);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + pending);
        }
        hint
    }
}
