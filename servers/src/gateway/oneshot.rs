//! The connection handler of the one-request-per-connection gateways (SCGI, uwsgi): read a header
//! block of CGI variables, stream the body after it to `rgi.input`, write the response, close.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use rgi::{Application, Body, Input, ServerInfo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf, ReadHalf};

use super::environ::{self as gw_environ, Split};
use super::response::{self, Head, SendError, WriteSink};
use crate::bind::Stream;
use crate::config::Config;

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

/// What the gateway needs besides the connection.
pub(crate) struct OneShot<A> {
    pub(crate) app: Arc<A>,
    pub(crate) config: Config,
    pub(crate) server: Arc<ServerInfo>,
    /// `scgi`, `uwsgi`: the log prefix.
    pub(crate) tag: &'static str,
    pub(crate) head: Head,
    /// Largest variables block accepted.
    pub(crate) limit: usize,
}

/// How long the unread rest of a request may take to drain after the response, so that closing the
/// socket does not reset it under the web server's feet.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

impl<A: Application> OneShot<A> {
    /// Serve the one request of `stream`.
    pub(crate) async fn serve<E: WireError>(&self, stream: Stream, parse: Parser<E>) {
        let (mut rd, wr) = tokio::io::split(stream);
        let mut wr = WriteSink(wr);
        let mut buf = BytesMut::with_capacity(4096);
        let read_head = read_head(&mut rd, &mut buf, self.limit, parse);
        let read = match self.config.limits.header_timeout() {
            Some(limit) => tokio::time::timeout(limit, read_head).await,
            None => Ok(read_head.await),
        };
        let head_len = match read {
            Ok(Ok(Some(len))) => len,
            Ok(Ok(None)) | Err(_) => return, // closed or timed out before a whole header
            Ok(Err(e)) => {
                let status = e.status();
                self.server
                    .errors
                    .log(format_args!("{e}; answered {}", status.as_u16()));
                let refusal = response::plain(status);
                let _ = response::send(&mut wr, self.head, refusal, false, false).await;
                let _ = wr.0.shutdown().await;
                return;
            }
        };
        let buf = buf.freeze();
        let pairs = match parse(&buf, self.limit) {
            Ok(Some((_, pairs))) => pairs,
            _ => return, // parsed once already; cannot differ
        };
        let reader = SharedReader(Arc::new(Mutex::new((buf.slice(head_len..), Some(rd)))));
        let body_reader = reader.clone();
        let built = gw_environ::build(
            &pairs,
            Arc::clone(&self.server),
            &self.config,
            Split::IfBoth,
            move |length| match length {
                // Without CONTENT_LENGTH nothing says where a body would end: there is none.
                None => Input::empty(),
                Some(_) => Input::from_body(Body::from_stream(tokio_util::io::ReaderStream::new(
                    body_reader,
                ))),
            },
        );
        let (response, is_head) = match built {
            Ok(environ) => {
                let is_head = environ.method() == http::Method::HEAD;
                (
                    super::call_app(&*self.app, environ, self.tag).await,
                    is_head,
                )
            }
            Err(refusal) => {
                if refusal.is_logged() {
                    self.server
                        .errors
                        .log(format_args!("{}: request refused: {refusal}", self.tag));
                }
                (response::plain(refusal.status()), false)
            }
        };
        match response::send(&mut wr, self.head, response, is_head, false).await {
            Ok(()) | Err(SendError::Write(_)) => {}
            Err(e @ SendError::Body(_)) => {
                // Closing now, with no length promised or fewer bytes than promised, is the signal.
                self.server.errors.log(format_args!("{}: {e}", self.tag));
            }
        }
        let _ = wr.0.shutdown().await;
        reader.linger().await;
    }
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
