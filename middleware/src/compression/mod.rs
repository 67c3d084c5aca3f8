//! Response compression: `br`, `zstd` and `gzip`, negotiated from `Accept-Encoding`, streamed.
//!
//! [`Compression`] calls the inner application and compresses its response body when all of these
//! hold (otherwise the response passes through untouched):
//!
//! - the request is not `HEAD`, and the status may carry a body (not `204`, `304`) and is not a
//!   range (`206`, or any response with `Content-Range`);
//! - the response has no `Content-Encoding` yet, and no `Cache-Control: no-transform`;
//! - its `Content-Type` is not already compressed: images (but `image/svg+xml`), audio, video,
//!   archives (`zip`, `gzip`, `zstd`, `x-7z-compressed`, `x-rar-compressed`, `x-bzip2`, `x-xz`),
//!   `woff`/`woff2` fonts, PDF;
//! - its length, when known, is at least [`min_size`](CompressionLayer::min_size) (default 860 bytes,
//!   about where a compressed body plus its headers stops fitting one TCP segment better than the
//!   plain one);
//! - the client accepts one of the enabled codings with q > 0 (`q=0` refuses a coding; `*` stands
//!   for the codings not named). Ties go to the server's order: `br`, `zstd`, `gzip`. When nothing
//!   is acceptable the body is sent as is (identity), even with `identity;q=0`: a `406` would help
//!   no one.
//!
//! Every response that was eligible gets `Vary: Accept-Encoding` (also when the client took
//! identity), so caches keep the variants apart. A compressed response loses `Content-Length` (the
//! server frames the new body), `Accept-Ranges`, and a strong `ETag` becomes weak (`W/"…"`): the
//! bytes differ from the identity representation's.
//!
//! The body is compressed as it streams: every chunk the application produces is compressed and
//! flushed at once (SPEC.md `[mw-stream]`), so server-sent events and progress output stay live. A
//! full body is compressed in one go. File bodies are read in 64 KiB chunks by `rgi::Body` (a
//! blocking read per chunk, as any server without `sendfile` does); serve precompressed siblings with
//! [`Static::precompressed`](crate::static_files::Static::precompressed) instead for large files.
//!
//! ```
//! use rgi::ApplicationExt as _;
//! use rgi_middleware::compression::CompressionLayer;
//!
//! let app = rgi::app_fn(|_, start| async move { start.html("<p>hello</p>".repeat(200)) });
//! let client = rgi::testing::TestClient::new(app.layer(CompressionLayer::new()));
//! let response = client.get("/").header("accept-encoding", "gzip, br;q=0.5").send_blocking();
//! assert_eq!(response.header("content-encoding"), Some("gzip"));
//! assert_eq!(response.header("vary"), Some("accept-encoding"));
//! assert!(response.body().len() < 200);
//! let plain = client.get("/").send_blocking();
//! assert_eq!((plain.header("content-encoding"), plain.body().len()), (None, 2400));
//! ```

mod encode;
mod negotiate;

use http::{header, HeaderValue, StatusCode};
use rgi::{Application, Environ, Reply, Response, StartResponse};
use tower_layer::Layer;

pub use async_compression::Level;

pub(crate) use self::negotiate::AcceptEncoding;
pub use self::negotiate::Encoding;

/// The default [`min_size`](CompressionLayer::min_size).
pub const DEFAULT_MIN_SIZE: u64 = 860;

/// Settings of [`Compression`], and the [`Layer`] that applies it.
#[derive(Debug, Clone)]
pub struct CompressionLayer {
    min_size: u64,
    encodings: Vec<Encoding>,
    brotli_level: Level,
    level: Level,
}

impl Default for CompressionLayer {
    fn default() -> Self {
        CompressionLayer {
            min_size: DEFAULT_MIN_SIZE,
            encodings: vec![Encoding::Brotli, Encoding::Zstd, Encoding::Gzip],
            // Brotli's default (11) is meant for static assets: ~50x slower than level 4 for a few
            // percent. zstd and gzip defaults (3, 6) are already fast.
            brotli_level: Level::Precise(4),
            level: Level::Default,
        }
    }
}

impl CompressionLayer {
    /// `br`, `zstd` and `gzip`, bodies of 860 bytes and more.
    pub fn new() -> Self {
        CompressionLayer::default()
    }

    /// Leave bodies shorter than `bytes` alone (when their length is known; streams of unknown
    /// length are always compressed).
    pub fn min_size(mut self, bytes: u64) -> Self {
        self.min_size = bytes;
        self
    }

    /// The codings to offer, in order of preference for ties (default `br`, `zstd`, `gzip`). An
    /// empty list turns compression off.
    pub fn encodings(mut self, encodings: &[Encoding]) -> Self {
        self.encodings = encodings.to_vec();
        self
    }

    /// The compression level for `zstd` and `gzip` (default: each coding's default).
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The compression level for `br` (default 4: fast enough for dynamic responses).
    pub fn brotli_level(mut self, level: Level) -> Self {
        self.brotli_level = level;
        self
    }

    /// Whether `response` may be compressed at all (the client's wishes aside).
    fn eligible(&self, response: &Response) -> bool {
        // The length first: most dynamic responses are below `min_size`, and this test is the
        // cheapest (the header checks below read and split header values).
        if let Some(len) = response.body().exact_len() {
            if len == 0 || len < self.min_size {
                return false;
            }
        }
        let status = response.status();
        let headers = response.headers();
        if !rgi::status_allows_body(status)
            || status == StatusCode::PARTIAL_CONTENT
            || headers.contains_key(header::CONTENT_RANGE)
            || headers.contains_key(header::CONTENT_ENCODING)
        {
            return false;
        }
        let no_transform = headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
            })
        });
        if no_transform {
            return false;
        }
        !headers
            .get(header::CONTENT_TYPE)
            .is_some_and(already_compressed)
    }

    fn apply(&self, mut response: Response, accept: AcceptEncoding) -> Response {
        if response.is_head() || !self.eligible(&response) {
            return response;
        }
        add_vary(response.headers_mut());
        let Some(&encoding) = accept.ranked(&self.encodings).first() else {
            return response;
        };
        let level = match encoding {
            Encoding::Brotli => self.brotli_level,
            _ => self.level,
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.as_str()),
        );
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::ACCEPT_RANGES);
        weaken_etag(headers);
        response.map_body(|body| encode::compress(body, encoding, level))
    }
}

impl<A> Layer<A> for CompressionLayer {
    type Service = Compression<A>;

    fn layer(&self, inner: A) -> Compression<A> {
        Compression {
            inner,
            settings: self.clone(),
        }
    }
}

/// An application whose responses are compressed; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Compression<A> {
    inner: A,
    settings: CompressionLayer,
}

impl<A: Application> Application for Compression<A> {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        let accept = AcceptEncoding::of(environ.headers());
        let response = self.inner.call(environ, start).await?;
        Ok(self.settings.apply(response, accept))
    }
}

/// Media types whose bytes are already compressed: compressing them again costs CPU for nothing.
fn already_compressed(content_type: &HeaderValue) -> bool {
    let Ok(value) = content_type.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let (kind, subtype) = essence.split_once('/').unwrap_or((essence, ""));
    // Media types are case-insensitive; lowercased only when they are not already (no allocation
    // for the usual lowercase `text/html`).
    if kind.bytes().any(|b| b.is_ascii_uppercase())
        || subtype.bytes().any(|b| b.is_ascii_uppercase())
    {
        return media_type_compressed(&kind.to_ascii_lowercase(), &subtype.to_ascii_lowercase());
    }
    media_type_compressed(kind, subtype)
}

/// [`already_compressed`] for a lowercase media type.
fn media_type_compressed(kind: &str, subtype: &str) -> bool {
    match kind {
        "image" => subtype != "svg+xml",
        "audio" | "video" => true,
        "font" => matches!(subtype, "woff" | "woff2"),
        "application" => matches!(
            subtype,
            "zip"
                | "gzip"
                | "x-gzip"
                | "zstd"
                | "x-7z-compressed"
                | "x-rar-compressed"
                | "vnd.rar"
                | "x-bzip2"
                | "x-xz"
                | "font-woff"
                | "font-woff2"
                | "pdf"
                | "wasm-compressed"
        ),
        _ => false,
    }
}

/// Add `accept-encoding` to `Vary` unless it is there (or `Vary: *`).
pub(crate) fn add_vary(headers: &mut http::HeaderMap) {
    let present = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.eq_ignore_ascii_case("accept-encoding")
            })
        })
    });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// `ETag: "x"` → `ETag: W/"x"`.
fn weaken_etag(headers: &mut http::HeaderMap) {
    let Some(etag) = headers.get(header::ETAG) else {
        return;
    };
    if etag.as_bytes().starts_with(b"\"") {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        if let Ok(weak) = HeaderValue::from_bytes(&weak) {
            headers.insert(header::ETAG, weak);
        }
    }
}

#[cfg(test)]
mod tests;
