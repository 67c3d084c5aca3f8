//! `rgi.input`: the request body as a stream, readable from async and from blocking code.

use std::fmt;
use std::io::{self, BufRead, Read};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};

use crate::body::into_bytes;
use crate::BoxError;

type Source = Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + 'static>>;

/// The request body (`rgi.input`).
///
/// - **EOF exactly at the end of the body.** With a known `CONTENT_LENGTH`, reads stop after that many
///   bytes and never wait for more; a source that ends early is an [`io::ErrorKind::UnexpectedEof`] error,
///   not a silent short body. Chunked bodies arrive already decoded.
/// - **Bounded.** A server-set limit turns an oversized body into a [`BodyTooLarge`] error.
/// - **Both worlds.** Async code uses [`chunk`](Input::chunk), [`read`](Input::read) and
///   [`read_to_bytes`](Input::read_to_bytes), or polls it as an [`http_body::Body`]; blocking code (a
///   [`blocking`](crate::blocking) app) uses [`std::io::Read`] and [`std::io::BufRead`].
/// - **Backpressure.** Nothing is read from the client until the application asks; an HTTP server
///   answers `Expect: 100-continue` at the first read.
///
/// ```
/// # rgi::block_on(async {
/// let mut input = rgi::Input::from_bytes("name=rgi&lang=rust");
/// assert_eq!(input.read_to_bytes().await.unwrap(), "name=rgi&lang=rust");
/// # });
/// ```
pub struct Input {
    source: Option<Source>,
    /// Bytes of the current chunk not yet handed out.
    buf: Bytes,
    /// Bytes still expected, when the length is known.
    remaining: Option<u64>,
    /// Bytes handed out so far.
    consumed: u64,
    /// Refuse bodies longer than this.
    limit: Option<u64>,
    done: bool,
}

/// The request body is longer than the server's configured limit.
///
/// Returned inside an [`io::Error`] (kind `Other`) by [`Input`] reads; servers answer
/// `413 Content Too Large` when an application's error is (or wraps) this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTooLarge {
    /// The configured limit in bytes.
    pub limit: u64,
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rgi: request body exceeds the limit of {} bytes",
            self.limit
        )
    }
}

impl std::error::Error for BodyTooLarge {}

impl Input {
    /// A body with no bytes.
    pub fn empty() -> Self {
        Input {
            source: None,
            buf: Bytes::new(),
            remaining: Some(0),
            consumed: 0,
            limit: None,
            done: true,
        }
    }

    /// A body of the given bytes (its length is known).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let buf = bytes.into();
        Input {
            source: None,
            remaining: Some(buf.len() as u64),
            buf,
            consumed: 0,
            limit: None,
            done: false,
        }
    }

    /// A body read from any [`http_body::Body`] (hyper's `Incoming`, a FastCGI stdin stream…).
    ///
    /// The length is taken from the source's exact size hint, if any; servers that know
    /// `CONTENT_LENGTH` call [`with_content_length`](Input::with_content_length).
    pub fn from_body<B>(body: B) -> Self
    where
        B: http_body::Body + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let remaining = body.size_hint().exact();
        // GET, HEAD, `Content-Length: 0`: nothing to read, nothing to allocate (a larger declared
        // length given later still ends in `ShortBody`).
        let source = if body.is_end_stream() {
            None
        } else {
            Some(Box::pin(DataOnly { inner: body }) as Source)
        };
        Input {
            source,
            buf: Bytes::new(),
            remaining,
            consumed: 0,
            limit: None,
            done: false,
        }
    }

    /// Declare the body's length (`CONTENT_LENGTH`): reads end exactly there.
    pub fn with_content_length(mut self, len: u64) -> Self {
        self.remaining = Some(len.saturating_sub(self.consumed));
        self
    }

    /// Refuse bodies longer than `limit` bytes with [`BodyTooLarge`].
    ///
    /// A limit can only be lowered: when one is already set (the server's `--limit-request-body`),
    /// the lower of the two applies, so an application or middleware cannot lift the server's.
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = Some(self.limit.map_or(limit, |current| current.min(limit)));
        self
    }

    /// The limit in force (see [`with_limit`](Input::with_limit)), if any.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// The body's length, when known.
    pub fn content_length(&self) -> Option<u64> {
        self.remaining.map(|r| r + self.consumed)
    }

    /// Bytes read so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Whether the whole body has been read.
    pub fn is_eof(&self) -> bool {
        self.done && self.buf.is_empty()
    }

    /// Poll for the next chunk of the body; `None` at the end.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if let (Some(limit), Some(len), 0) = (self.limit, self.content_length(), self.consumed) {
            // A declared length over the limit is refused before a byte is read.
            if len > limit && !self.done {
                self.done = true;
                self.source = None;
                self.buf = Bytes::new();
                return Poll::Ready(Some(Err(io::Error::other(BodyTooLarge { limit }))));
            }
        }
        loop {
            if !self.buf.is_empty() {
                let chunk = std::mem::take(&mut self.buf);
                return Poll::Ready(Some(self.account(chunk)));
            }
            if self.done || self.remaining == Some(0) {
                self.done = true;
                return Poll::Ready(None);
            }
            let Some(source) = self.source.as_mut() else {
                self.done = true;
                return match self.remaining {
                    Some(n) if n > 0 => Poll::Ready(Some(Err(short_body(n)))),
                    _ => Poll::Ready(None),
                };
            };
            match source.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.source = None;
                }
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    self.source = None;
                    return Poll::Ready(Some(Err(io::Error::other(BadBody(e)))));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf = data;
                    }
                }
            }
        }
    }

    /// Hand out `chunk`, enforcing the declared length and the limit.
    fn account(&mut self, mut chunk: Bytes) -> io::Result<Bytes> {
        if let Some(remaining) = self.remaining {
            if chunk.len() as u64 > remaining {
                // A source sending more than CONTENT_LENGTH: stop at the declared end (RFC 3875 §4.2).
                chunk.truncate(remaining as usize);
            }
            self.remaining = Some(remaining - chunk.len() as u64);
            if self.remaining == Some(0) {
                self.done = true;
                self.source = None;
            }
        }
        self.consumed += chunk.len() as u64;
        if let Some(limit) = self.limit {
            if self.consumed > limit {
                self.done = true;
                self.source = None;
                return Err(io::Error::other(BodyTooLarge { limit }));
            }
        }
        Ok(chunk)
    }

    /// The next chunk of the body; `None` at the end.
    ///
    /// # Errors
    ///
    /// The client sent less than `CONTENT_LENGTH` ([`io::ErrorKind::UnexpectedEof`]), the body exceeds
    /// the server's limit ([`BodyTooLarge`]), or the connection failed.
    pub async fn chunk(&mut self) -> Option<io::Result<Bytes>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Read into `dst`; `Ok(0)` at the end of the body (or when `dst` is empty).
    ///
    /// # Errors
    ///
    /// As for [`chunk`](Input::chunk).
    pub async fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read(cx, dst)).await
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match self.poll_chunk(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(Ok(0)),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Err(e)),
            Poll::Ready(Some(Ok(mut chunk))) => {
                let n = chunk.len().min(dst.len());
                dst[..n].copy_from_slice(&chunk[..n]);
                chunk.advance(n);
                self.unread(chunk);
                Poll::Ready(Ok(n))
            }
        }
    }

    /// Put back the unused tail of a chunk handed out by `poll_chunk`.
    fn unread(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let n = chunk.len() as u64;
        self.consumed -= n;
        if let Some(remaining) = self.remaining.as_mut() {
            *remaining += n;
        }
        self.buf = chunk;
        self.done = false;
    }

    /// Read the rest of the body into memory.
    ///
    /// # Errors
    ///
    /// As for [`chunk`](Input::chunk).
    pub async fn read_to_bytes(&mut self) -> io::Result<Bytes> {
        let first = match self.chunk().await {
            None => return Ok(Bytes::new()),
            Some(chunk) => chunk?,
        };
        if self.is_eof() {
            return Ok(first);
        }
        // The declared length is the client's claim: reserve it only up to a bound, then grow as bytes
        // actually arrive.
        let expected = self
            .remaining
            .map_or(first.len(), |r| r.min(PREALLOC_MAX) as usize);
        let mut all = Vec::with_capacity(first.len() + expected);
        all.extend_from_slice(&first);
        while let Some(chunk) = self.chunk().await {
            all.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(all))
    }

    /// Read and discard the rest of the body, returning how many bytes were skipped.
    ///
    /// # Errors
    ///
    /// As for [`chunk`](Input::chunk).
    pub async fn drain(&mut self) -> io::Result<u64> {
        let mut skipped = 0;
        while let Some(chunk) = self.chunk().await {
            skipped += chunk?.len() as u64;
        }
        Ok(skipped)
    }
}

/// The most [`Input::read_to_bytes`] reserves up front from a declared length (1 MiB).
const PREALLOC_MAX: u64 = 1 << 20;

fn short_body(missing: u64) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, ShortBody { missing })
}

/// The request body ended before `CONTENT_LENGTH`: the error inside the [`io::Error`] of kind
/// `UnexpectedEof` that [`Input`] returns, so that servers tell it (a client error) from an
/// application's own `UnexpectedEof` (a server error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShortBody {
    missing: u64,
}

impl fmt::Display for ShortBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rgi: request body ended {} bytes before CONTENT_LENGTH",
            self.missing
        )
    }
}

impl std::error::Error for ShortBody {}

/// The body's source failed: a malformed chunk, a body cut short by the connection, a coding the
/// middleware in front could not decode. What the client sent could not be read, so servers answer
/// 400 (RFC 9110 §15.5.1) — unless the error inside says otherwise (a nested [`BodyTooLarge`]).
#[derive(Debug)]
pub(crate) struct BadBody(pub(crate) BoxError);

impl fmt::Display for BadBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rgi: the request body could not be read: {}", self.0)
    }
}

impl std::error::Error for BadBody {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

impl Default for Input {
    fn default() -> Self {
        Input::empty()
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("content_length", &self.content_length())
            .field("consumed", &self.consumed)
            .field("limit", &self.limit)
            .field("eof", &self.is_eof())
            .finish()
    }
}

/// Blocking reads, for [`blocking`](crate::blocking) applications. Never use these from async code.
impl Read for Input {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        crate::block_on(Input::read(self, dst))
    }
}

/// Line-oriented blocking reads (`read_line`, `lines`), for [`blocking`](crate::blocking) applications.
impl BufRead for Input {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.buf.is_empty() {
            match crate::block_on(self.chunk()) {
                None => return Ok(&[]),
                Some(chunk) => {
                    let chunk = chunk?;
                    self.unread(chunk);
                }
            }
        }
        Ok(&self.buf)
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.buf.len());
        self.buf.advance(amt);
        self.consumed += amt as u64;
        if let Some(remaining) = self.remaining.as_mut() {
            *remaining -= amt as u64;
            if *remaining == 0 {
                self.done = true;
                self.source = None;
            }
        }
    }
}

/// The body as an `http_body::Body`, so it can be handed to tower services and hyper clients as is.
impl http_body::Body for Input {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.get_mut()
            .poll_chunk(cx)
            .map(|c| c.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.is_eof() || (self.buf.is_empty() && self.remaining == Some(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

pin_project_lite::pin_project! {
    /// Keeps only data frames and turns any `Buf` into `Bytes`.
    struct DataOnly<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for DataOnly<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx).map(|f| {
            f.map(|r| {
                r.map(|frame| match frame.into_data() {
                    Ok(d) => Frame::data(into_bytes(d)),
                    // Request trailers are not part of RGI 1.0; an empty data frame keeps the loop simple.
                    Err(_) => Frame::data(Bytes::new()),
                })
                .map_err(Into::into)
            })
        })
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
