//! A body compressed as it streams: each input chunk is written to the encoder and flushed, so the
//! client gets compressed output for every chunk the application produced (SPEC.md `[mw-stream]`).

use async_compression::tokio::write::{BrotliEncoder, GzipEncoder, ZstdEncoder};
use async_compression::Level;
use bytes::Bytes;
use http_body::Body as _;
use http_body_util::BodyExt as _;
use rgi::{Body, BoxError};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use super::Encoding;

/// One encoder writing into an in-memory buffer that is emitted after each flush.
enum Encoder {
    /// Boxed: brotli's state is ~5.6 KiB, the others' well under 200 bytes.
    Brotli(Box<BrotliEncoder<Vec<u8>>>),
    Zstd(ZstdEncoder<Vec<u8>>),
    Gzip(GzipEncoder<Vec<u8>>),
}

impl Encoder {
    fn new(encoding: Encoding, level: Level) -> Encoder {
        match encoding {
            Encoding::Brotli => {
                Encoder::Brotli(Box::new(BrotliEncoder::with_quality(Vec::new(), level)))
            }
            Encoding::Zstd => Encoder::Zstd(ZstdEncoder::with_quality(Vec::new(), level)),
            Encoding::Gzip => Encoder::Gzip(GzipEncoder::with_quality(Vec::new(), level)),
        }
    }

    fn writer(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        match self {
            Encoder::Brotli(e) => &mut **e,
            Encoder::Zstd(e) => e,
            Encoder::Gzip(e) => e,
        }
    }

    /// The compressed bytes produced so far, taken out of the buffer.
    fn take(&mut self) -> Bytes {
        let buffer = match self {
            Encoder::Brotli(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
            Encoder::Gzip(e) => e.get_mut(),
        };
        Bytes::from(std::mem::take(buffer))
    }

    /// Compress `chunk` and flush (`last`: finish the stream instead); what it produced.
    /// Writing to a `Vec` never waits, so these futures complete on their first poll.
    async fn feed(&mut self, chunk: &[u8], last: bool) -> std::io::Result<Bytes> {
        let writer = self.writer();
        writer.write_all(chunk).await?;
        if last {
            writer.shutdown().await?;
        } else {
            writer.flush().await?;
        }
        Ok(self.take())
    }
}

/// `body`, compressed with `encoding` at `level`, streamed chunk by chunk.
pub(crate) fn compress(body: Body, encoding: Encoding, level: Level) -> Body {
    let state = Some((body, Encoder::new(encoding, level)));
    let stream = futures_util::stream::unfold(state, |state| async move {
        let (mut body, mut encoder) = state?;
        loop {
            let chunk = match body.frame().await {
                None => Bytes::new(),
                Some(Err(error)) => return Some((Err(error), None)),
                // Trailers are not carried by RGI 1.0; skip anything that is not data.
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => data,
                    _ => continue,
                },
            };
            // A body that knows it has ended (a full body, the last chunk of a file) is finished
            // with its last chunk, saving a separate flush.
            let last = chunk.is_empty() || body.is_end_stream();
            return match encoder.feed(&chunk, last).await {
                Err(error) => Some((Err(BoxError::from(error)), None)),
                Ok(out) if last => Some((Ok(out), None)),
                Ok(out) => Some((Ok(out), Some((body, encoder)))),
            };
        }
    });
    Body::from_stream(stream)
}
