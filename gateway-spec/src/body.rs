//! The response [`Body`]: empty, full bytes, a stream of chunks, or a file.

use std::fmt;
use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_core::Stream;
use http_body::{Frame, SizeHint};

use crate::BoxError;

type BoxBody = Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + 'static>>;

/// A response body.
///
/// Dropping a body closes it: whatever it holds (a file, a stream's resources, a channel to a producer)
/// is released. Servers drop the body when the response is complete, when sending fails and when the
/// client goes away, so `Drop` is the place for clean-up (PEP 3333's `close()`).
///
/// A stream body that yields an error makes the server abort the response: an HTTP/1.1 connection is
/// closed without the final chunk, so no client mistakes a truncated body for a complete one.
///
/// ```
/// use rgi::Body;
/// assert_eq!(Body::from("hello").exact_len(), Some(5));
/// assert_eq!(Body::empty().exact_len(), Some(0));
/// let chunks = futures_util::stream::iter(["a", "b"].map(|s| Ok::<_, std::io::Error>(s)));
/// assert_eq!(Body::from_stream(chunks).exact_len(), None);
/// ```
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Bytes),
    Stream(BoxBody),
    File(FileBody),
}

/// A body that is (a range of) an open file, so that servers can use `sendfile`.
///
/// Servers that cannot send files directly read it in chunks; see [`Body`]'s `http_body::Body` impl.
#[derive(Debug)]
pub struct FileBody {
    file: File,
    offset: u64,
    len: u64,
}

impl FileBody {
    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the body starts in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// How many bytes are sent.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file, offset and length.
    pub fn into_parts(self) -> (File, u64, u64) {
        (self.file, self.offset, self.len)
    }

    /// Read the next chunk of at most `max` bytes (blocking file I/O).
    fn read_chunk(&mut self, max: usize) -> io::Result<Bytes> {
        let want = (self.len.min(max as u64)) as usize;
        let mut buf = vec![0u8; want];
        let n = read_at(&self.file, &mut buf, self.offset)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "rgi: file body shorter than its declared length",
            ));
        }
        buf.truncate(n);
        self.offset += n as u64;
        self.len -= n as u64;
        Ok(Bytes::from(buf))
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}

/// How much a file body reads per chunk when a server polls it as a stream.
const FILE_CHUNK: usize = 64 * 1024;

/// What a body is, for servers that treat kinds differently (e.g. `sendfile` for files).
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyKind {
    /// No bytes.
    Empty,
    /// All the bytes, in memory.
    Full(Bytes),
    /// A stream of chunks; poll it as an [`http_body::Body`] (the `Body` itself).
    Stream(Body),
    /// A range of a file.
    File(FileBody),
}

impl Body {
    /// A body with no bytes.
    pub const fn empty() -> Self {
        Body { kind: Kind::Empty }
    }

    /// A body of the given bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Body::empty();
        }
        Body {
            kind: Kind::Full(bytes),
        }
    }

    /// A body streamed from `stream`; each item is sent as soon as it is produced.
    ///
    /// An `Err` item aborts the response (see [`Body`]).
    pub fn from_stream<S, D, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<D, E>> + Send + 'static,
        D: Into<Bytes>,
        E: Into<BoxError>,
    {
        Body {
            kind: Kind::Stream(Box::pin(StreamBody { stream })),
        }
    }

    /// A body from any [`http_body::Body`], e.g. a hyper or axum body. Trailers are dropped.
    pub fn from_http_body<B>(body: B) -> Self
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        if body.is_end_stream() {
            return Body::empty();
        }
        Body {
            kind: Kind::Stream(Box::pin(MapBody { inner: body })),
        }
    }

    /// The whole of an open file, from its start. Reads the file's length from its metadata.
    ///
    /// # Errors
    ///
    /// Fails when the file's metadata cannot be read.
    pub fn file(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Body::file_range(file, 0, len))
    }

    /// `len` bytes of an open file starting at `offset`.
    pub fn file_range(file: File, offset: u64, len: u64) -> Self {
        Body {
            kind: Kind::File(FileBody { file, offset, len }),
        }
    }

    /// A body fed by a [`BodySender`], for applications that produce output as they go (chat, progress,
    /// server-sent events) or from a blocking thread. `buffer` is how many chunks may wait unsent before
    /// `send` waits: the producer is slowed down to the client's pace.
    ///
    /// ```
    /// let (mut tx, body) = rgi::Body::channel(4);
    /// std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         if tx.blocking_send(format!("tick {i}\n")).is_err() {
    ///             break; // the client went away
    ///         }
    ///     }
    /// });
    /// # let collected = rgi::block_on(async {
    /// #     use http_body_util::BodyExt;
    /// #     body.collect().await.unwrap().to_bytes()
    /// # });
    /// # assert_eq!(collected, "tick 0\ntick 1\ntick 2\n");
    /// ```
    pub fn channel(buffer: usize) -> (BodySender, Body) {
        let (tx, rx) = tokio::sync::mpsc::channel(buffer.max(1));
        let aborted = Arc::new(Mutex::new(None));
        (
            BodySender {
                tx,
                aborted: Arc::clone(&aborted),
            },
            Body {
                kind: Kind::Stream(Box::pin(ChannelBody { rx, aborted })),
            },
        )
    }

    /// The exact number of bytes this body produces, when known in advance.
    pub fn exact_len(&self) -> Option<u64> {
        match &self.kind {
            Kind::Empty => Some(0),
            Kind::Full(b) => Some(b.len() as u64),
            Kind::File(f) => Some(f.len),
            Kind::Stream(s) => s.size_hint().exact(),
        }
    }

    /// Take the body apart by kind.
    pub fn into_kind(self) -> BodyKind {
        match self.kind {
            Kind::Empty => BodyKind::Empty,
            Kind::Full(b) => BodyKind::Full(b),
            Kind::File(f) => BodyKind::File(f),
            kind @ Kind::Stream(_) => BodyKind::Stream(Body { kind }),
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("Body::Empty"),
            Kind::Full(b) => f.debug_tuple("Body::Full").field(&b.len()).finish(),
            Kind::Stream(_) => f.write_str("Body::Stream"),
            Kind::File(file) => f.debug_tuple("Body::File").field(file).finish(),
        }
    }
}

impl From<()> for Body {
    fn from(_: ()) -> Self {
        Body::empty()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::full(b)
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body::full(b)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::full(s)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::full(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Body::full(Bytes::from_static(s))
    }
}

impl From<BodyKind> for Body {
    /// Put a body taken apart by [`Body::into_kind`] back together.
    fn from(kind: BodyKind) -> Self {
        match kind {
            BodyKind::Empty => Body::empty(),
            BodyKind::Full(b) => Body::full(b),
            BodyKind::Stream(body) => body,
            BodyKind::File(f) => Body::from(f),
        }
    }
}

impl From<FileBody> for Body {
    fn from(f: FileBody) -> Self {
        Body {
            kind: Kind::File(f),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(_) => match std::mem::replace(&mut self.kind, Kind::Empty) {
                Kind::Full(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                _ => unreachable!("matched Full above"),
            },
            Kind::Stream(s) => s.as_mut().poll_frame(cx),
            Kind::File(f) => {
                if f.len == 0 {
                    self.kind = Kind::Empty;
                    return Poll::Ready(None);
                }
                // Blocking read: servers that care send files natively (sendfile, tokio::fs).
                Poll::Ready(Some(
                    f.read_chunk(FILE_CHUNK)
                        .map(Frame::data)
                        .map_err(Into::into),
                ))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(_) => false,
            Kind::Stream(s) => s.is_end_stream(),
            Kind::File(f) => f.len == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Stream(s) => s.size_hint(),
            _ => SizeHint::with_exact(self.exact_len().unwrap_or(0)),
        }
    }
}

/// The producing end of [`Body::channel`]. Dropping it ends the body normally.
#[derive(Debug)]
pub struct BodySender {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, BoxError>>,
    /// The error of [`abort`](BodySender::abort), seen by the body after the chunks already sent.
    aborted: Arc<Mutex<Option<BoxError>>>,
}

/// The body behind a [`BodySender`] is gone: the response was dropped (the client went away, or the
/// server finished with an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyClosed;

impl fmt::Display for BodyClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rgi: response body closed by the server")
    }
}

impl std::error::Error for BodyClosed {}

impl BodySender {
    /// Send a chunk, waiting while the buffer is full.
    ///
    /// # Errors
    ///
    /// [`BodyClosed`] when the body was dropped; stop producing.
    pub async fn send(&mut self, chunk: impl Into<Bytes>) -> Result<(), BodyClosed> {
        self.tx.send(Ok(chunk.into())).await.map_err(|_| BodyClosed)
    }

    /// Send a chunk from synchronous code, blocking the thread while the buffer is full.
    ///
    /// Call it from a blocking thread (a [`blocking`](crate::blocking) app, a spawned thread), never
    /// from async code.
    ///
    /// # Errors
    ///
    /// [`BodyClosed`] when the body was dropped; stop producing.
    pub fn blocking_send(&mut self, chunk: impl Into<Bytes>) -> Result<(), BodyClosed> {
        crate::block_on(self.send(chunk))
    }

    /// Abort the response: the server sees `error` and closes the connection without completing the
    /// body, so the client cannot take a truncated body for a whole one.
    pub fn abort(self, error: impl Into<BoxError>) {
        // Not through the channel: its buffer may be full, and a plain close would read as a clean end.
        if let Ok(mut slot) = self.aborted.lock() {
            *slot = Some(error.into());
        }
    }
}

pin_project_lite::pin_project! {
    /// A stream as a body. Pinned in place (projected), so that the body's one box holds it: a
    /// stream wrapped per response costs one allocation, not two.
    struct StreamBody<S> {
        #[pin]
        stream: S,
    }
}

impl<S, D, E> http_body::Body for StreamBody<S>
where
    S: Stream<Item = Result<D, E>>,
    D: Into<Bytes>,
    E: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().stream.poll_next(cx) {
            Poll::Ready(Some(Ok(d))) => Poll::Ready(Some(Ok(Frame::data(d.into())))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        let (low, high) = self.stream.size_hint();
        // Stream::size_hint counts items, not bytes: only "no more items" is useful.
        if high == Some(0) && low == 0 {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

pin_project_lite::pin_project! {
    /// Adapts any `http_body::Body` to `Data = Bytes`, dropping trailers. Pinned in place, as
    /// [`StreamBody`]: one allocation per wrapped body (middleware wraps one per response).
    struct MapBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for MapBody<B>
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
        let mut inner = self.project().inner;
        loop {
            return match std::task::ready!(inner.as_mut().poll_frame(cx)) {
                None => Poll::Ready(None),
                Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(Frame::data(into_bytes(data))))),
                    // Trailers: RGI 1.0 does not carry response trailers.
                    Err(_) => continue,
                },
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, BoxError>>,
    aborted: Arc<Mutex<Option<BoxError>>>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match std::task::ready!(self.rx.poll_recv(cx)) {
            Some(item) => Poll::Ready(Some(item.map(Frame::data))),
            // The sender is gone: a clean end, unless it aborted.
            None => Poll::Ready(
                self.aborted
                    .lock()
                    .ok()
                    .and_then(|mut slot| slot.take())
                    .map(Err),
            ),
        }
    }
}

/// Turn any `Buf` into `Bytes` (zero-copy when it already is `Bytes`).
pub(crate) fn into_bytes<D: Buf>(mut data: D) -> Bytes {
    data.copy_to_bytes(data.remaining())
}
