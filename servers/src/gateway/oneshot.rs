//! The server of the one-request-per-connection gateways (SCGI, uwsgi), which differ only in their
//! [`Wire`] format: read a header block of CGI variables, stream the body after it to `rgi.input`,
//! answer through the pipeline, write the response, close.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use rgi::{Application, Body, Input};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf, ReadHalf};

use super::environ::Split;
use super::response::{self, Head, SendError, WriteSink};
use super::Answer;
use crate::bind::{Listener, Stream};
use crate::pipeline::accept::{self, Admission};
use crate::pipeline::{plain, Pipeline};
use crate::report::Report;

/// A header that breaks its protocol; answered with [`status`](WireError::status), then closed.
pub(crate) trait WireError: std::fmt::Display {
    /// The status the web server gets.
    fn status(&self) -> StatusCode;
}

/// Parse the header block at the front of `buf` (at most `limit` bytes of variables): `Ok(None)`
/// while incomplete, else its total length and its variables.
pub(crate) type Parser<E> = for<'a> fn(&'a [u8], usize) -> Result<Option<Parsed<'a>>, E>;

/// A parsed header block: its length on the wire and its variables.
pub(crate) type Parsed<'a> = (usize, Vec<(&'a [u8], &'a [u8])>);

/// The framing of a one-request-per-connection gateway: how its header block is parsed and its
/// response head written.
#[derive(Debug)]
pub(crate) struct Wire<E> {
    /// The response head's format.
    pub(crate) head: Head,
    /// The header-block parser.
    pub(crate) parse: Parser<E>,
    /// The largest variables block the wire format can carry (the configured limit applies too).
    pub(crate) max_vars: usize,
}

/// How long the unread rest of a request may take to drain after the response, so that closing the
/// socket does not reset it under the web server's feet.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// Serve one request per connection on `listeners` through `pipeline` until it drains, then let
/// in-flight requests finish (at most the graceful timeout).
pub(crate) async fn serve<A: Application, E: WireError + Send + 'static>(
    listeners: Vec<Listener>,
    pipeline: Arc<Pipeline<A>>,
    wire: &'static Wire<E>,
) -> io::Result<()> {
    let admission = Admission {
        max_connections: Some(pipeline.config.max_connections),
        allowed: None,
    };
    let handler = Arc::clone(&pipeline);
    accept::serve(listeners, admission, &pipeline, move |stream, _peer| {
        let pipeline = Arc::clone(&handler);
        async move { serve_one(&pipeline, wire, stream).await }
    })
    .await;
    Ok(())
}

/// Serve the one request of `stream`.
pub(crate) async fn serve_one<A: Application, E: WireError>(
    pipeline: &Pipeline<A>,
    wire: &Wire<E>,
    stream: Stream,
) {
    let limit = pipeline.config.limits.max_head_bytes.min(wire.max_vars);
    let (mut rd, wr) = tokio::io::split(stream);
    let mut wr = WriteSink(wr);
    let mut buf = BytesMut::with_capacity(4096);
    let read_head = read_head(&mut rd, &mut buf, limit, wire.parse);
    let read = match pipeline.config.limits.header_timeout() {
        Some(limit) => tokio::time::timeout(limit, read_head).await,
        None => Ok(read_head.await),
    };
    let head_len = match read {
        Ok(Ok(Some(len))) => len,
        Ok(Ok(None)) | Err(_) => return, // closed or timed out before a whole header
        Ok(Err(e)) => {
            let status = e.status();
            pipeline
                .server
                .errors
                .log(format_args!("{e}; answered {}", status.as_u16()));
            let refusal = Answer::refusal(plain(status, None));
            let _ = response::send(&mut wr, wire.head, refusal, false).await;
            let _ = wr.0.shutdown().await;
            return;
        }
    };
    let buf = buf.freeze();
    let pairs = match (wire.parse)(&buf, limit) {
        Ok(Some((_, pairs))) => pairs,
        _ => return, // parsed once already; cannot differ
    };
    let reader = SharedReader(Arc::new(Mutex::new((buf.slice(head_len..), Some(rd)))));
    let body_reader = reader.clone();
    let make_input = move |length: Option<u64>| match length {
        // Without CONTENT_LENGTH nothing says where a body would end: there is none.
        None => Input::empty(),
        Some(_) => Input::from_body(Body::from_stream(tokio_util::io::ReaderStream::new(
            body_reader,
        ))),
    };
    let server = Arc::clone(&pipeline.server);
    let answer = super::answer(pipeline, &pairs, server, Split::IfBoth, make_input, |_| {}).await;
    match response::send(&mut wr, wire.head, answer, pipeline.tokio_files).await {
        Ok(()) | Err(SendError::Write(_)) => {}
        Err(e @ SendError::Body(_)) => {
            // Closing now, with no length promised or fewer bytes than promised, is the signal.
            pipeline
                .server
                .errors
                .log(format_args!("{}: {}", pipeline.tag, Report(&e)));
        }
    }
    let _ = wr.0.shutdown().await;
    reader.linger().await;
}

async fn read_head<E>(
    rd: &mut ReadHalf<Stream>,
    buf: &mut BytesMut,
    limit: usize,
    parse: Parser<E>,
) -> Result<Option<usize>, E>
where
    E: WireError,
{
    loop {
        if let Some((len, _)) = parse(buf, limit)? {
            return Ok(Some(len));
        }
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// The connection's read side after the header: bytes already buffered, then the socket. Shared
/// between `rgi.input` and the gateway, which takes it back after the response to drain the rest.
#[derive(Clone)]
struct SharedReader(Arc<Mutex<(Bytes, Option<ReadHalf<Stream>>)>>);

impl SharedReader {
    /// Read and discard what the web server still sends (briefly), then let the socket close.
    async fn linger(self) {
        let rd = self.0.lock().ok().and_then(|mut guard| guard.1.take());
        if let Some(mut rd) = rd {
            let mut sink = tokio::io::sink();
            let _ = tokio::time::timeout(LINGER, tokio::io::copy(&mut rd, &mut sink)).await;
        }
    }
}

impl AsyncRead for SharedReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Ok(mut guard) = self.0.lock() else {
            return Poll::Ready(Err(io::Error::other("reader poisoned")));
        };
        let (leftover, rd) = &mut *guard;
        if !leftover.is_empty() {
            let n = leftover.len().min(out.remaining());
            out.put_slice(&leftover[..n]);
            leftover.advance(n);
            return Poll::Ready(Ok(()));
        }
        match rd {
            Some(rd) => Pin::new(rd).poll_read(cx, out),
            None => Poll::Ready(Ok(())),
        }
    }
}
