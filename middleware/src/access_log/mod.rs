//! Access log as a middleware: the server's `--access-logfile` lines, under any gateway.
//!
//! The RGI HTTP server logs requests itself; behind CGI, FastCGI, SCGI or uwsgi the web server in front
//! keeps its own log in its own format. This layer writes the same lines as the RGI server, in the
//! same [formats](mod@format) (gunicorn's `%(h)s %(l)s …` atoms, or `json`), from inside the application:
//!
//! - one line per request, written with one `write(2)` call (to a file opened with `O_APPEND`, so lines
//!   of many processes never tear or interleave), to standard error, or handed to a closure;
//! - after the body ended: `%(B)s` is the bytes the body produced and `%(D)s` the time until its end,
//!   also when the client went away halfway (the line is written when the body is dropped). A file
//!   body (which servers may `sendfile`) is not wrapped: its line is written when the response leaves
//!   the layer, with the file's length;
//! - `%(h)s` is `REMOTE_ADDR` (put [`ProxyFix`](crate::proxy_fix) further out to log the client rather
//!   than the proxy), `%(r)s` uses `REQUEST_URI`, `%({x-request-id}i)s` shows a
//!   [`RequestId`](crate::request_id) set further out.
//!
//! When the application returns `Err`, the line has the status the server will answer with (500, 413,
//! 503) and no bytes; the error goes on to the server.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use rgi::ApplicationExt;
//! use rgi_middleware::access_log::AccessLogLayer;
//!
//! let lines = Arc::new(Mutex::new(Vec::new()));
//! let sink = Arc::clone(&lines);
//! let app = rgi::app_fn(|_, start| async move { start.text("hello\n") })
//!     .layer(AccessLogLayer::to_fn(move |line: &str| sink.lock().unwrap().push(line.to_owned()))
//!         .format("%(h)s \"%(r)s\" %(s)s %(B)s".parse().unwrap()));
//!
//! rgi::testing::TestClient::new(app).get("/hi?x=1").send_blocking();
//! assert_eq!(lines.lock().unwrap()[0], "127.0.0.1 \"GET /hi?x=1 HTTP/1.1\" 200 6\n");
//! ```

pub mod format;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use http_body::{Frame, SizeHint};
use rgi::{Application, Body, BodyKind, BoxError, Environ, Layer, Reply, StartResponse};

pub use self::format::{AccessFormat, AccessRecord};

/// Where the lines go.
#[derive(Clone)]
enum Sink {
    Stderr,
    File(Arc<File>),
    Fn(Arc<dyn Fn(&str) + Send + Sync>),
}

impl Sink {
    fn write(&self, line: &str) {
        // Errors are ignored: a full disk or a closed pipe must not fail the request.
        let _ = match self {
            // Standard error is unbuffered: one `write_all` on the locked handle is one `write(2)`
            // unless the kernel takes only part of it.
            Sink::Stderr => io::stderr().lock().write_all(line.as_bytes()),
            // One `write(2)` on an `O_APPEND` descriptor: atomic for regular files.
            Sink::File(file) => (&**file).write(line.as_bytes()).map(|_| ()),
            Sink::Fn(f) => {
                f(line);
                Ok(())
            }
        };
    }
}

/// Makes [`AccessLog`]; see the [module docs](self).
#[derive(Clone)]
pub struct AccessLogLayer {
    shared: Arc<Shared>,
}

struct Shared {
    sink: Sink,
    format: AccessFormat,
    pid: u32,
    /// The request and response headers `format` shows: the only ones copied into a record.
    request_headers: Vec<HeaderName>,
    response_headers: Vec<HeaderName>,
}

impl Shared {
    fn new(sink: Sink, format: AccessFormat) -> Arc<Shared> {
        let (request_headers, response_headers) = format.headers_used();
        Arc::new(Shared {
            sink,
            format,
            pid: std::process::id(),
            request_headers,
            response_headers,
        })
    }
}

/// The headers of `from` named in `names` (a map without allocation when there are none).
fn copy_headers(from: &HeaderMap, names: &[HeaderName]) -> HeaderMap {
    let mut to = HeaderMap::new();
    for name in names {
        for value in from.get_all(name) {
            to.append(name.clone(), value.clone());
        }
    }
    to
}

impl fmt::Debug for AccessLogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sink = match self.shared.sink {
            Sink::Stderr => "stderr",
            Sink::File(_) => "file",
            Sink::Fn(_) => "closure",
        };
        f.debug_struct("AccessLogLayer")
            .field("sink", &sink)
            .field("format", &self.shared.format)
            .finish()
    }
}

impl AccessLogLayer {
    fn with_sink(sink: Sink) -> Self {
        AccessLogLayer {
            shared: Shared::new(sink, AccessFormat::default()),
        }
    }

    /// Log to standard error (a CGI program's standard error goes to the web server's error log), in
    /// gunicorn's default format.
    pub fn stderr() -> Self {
        AccessLogLayer::with_sink(Sink::Stderr)
    }

    /// Log to the file at `path` (created if missing, appended to), in gunicorn's default format.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened for appending.
    pub fn file(path: impl AsRef<Path>) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AccessLogLayer::with_sink(Sink::File(Arc::new(file))))
    }

    /// Hand every line (with its trailing newline) to `f`, e.g. to a logging framework.
    pub fn to_fn(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        AccessLogLayer::with_sink(Sink::Fn(Arc::new(f)))
    }

    /// Use `format` (parse one with `"%(h)s …".parse()` or `"json".parse()`).
    pub fn format(self, format: AccessFormat) -> Self {
        AccessLogLayer {
            shared: Shared::new(self.shared.sink.clone(), format),
        }
    }
}

impl<A> Layer<A> for AccessLogLayer {
    type Service = AccessLog<A>;

    fn layer(&self, inner: A) -> AccessLog<A> {
        AccessLog {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The middleware made by [`AccessLogLayer`].
#[derive(Clone)]
pub struct AccessLog<A> {
    inner: A,
    shared: Arc<Shared>,
}

impl<A: fmt::Debug> fmt::Debug for AccessLog<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLog")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<A: Application> Application for AccessLog<A> {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        let started = Instant::now();
        let record = AccessRecord {
            remote: remote_of(&environ),
            time: SystemTime::now(),
            method: environ.method().to_string(),
            target: target_of(&environ),
            protocol: protocol_of(environ.protocol()),
            status: 0,
            bytes: 0,
            duration: Default::default(),
            request_headers: copy_headers(environ.headers(), &self.shared.request_headers),
            response_headers: HeaderMap::new(),
        };
        let mut pending = Pending {
            shared: Arc::clone(&self.shared),
            record: Some(record),
            started,
        };
        match self.inner.call(environ, start).await {
            Ok(response) => {
                if let Some(record) = &mut pending.record {
                    record.status = response.status().as_u16();
                    record.response_headers =
                        copy_headers(response.headers(), &self.shared.response_headers);
                }
                Ok(response.inspect_body(|body| watch(body, pending)))
            }
            Err(error) => {
                if let Some(record) = &mut pending.record {
                    record.status = rgi::convert::error_status(&error).as_u16();
                }
                drop(pending);
                Err(error)
            }
        }
    }
}

/// `REMOTE_ADDR` and `REMOTE_PORT` as a socket address, when `REMOTE_ADDR` is an IP address.
fn remote_of(environ: &Environ) -> Option<SocketAddr> {
    let (addr, port) = environ.remote_addr()?;
    let ip: IpAddr = std::str::from_utf8(addr).ok()?.parse().ok()?;
    Some(SocketAddr::new(ip, port.unwrap_or(0)))
}

/// `REQUEST_URI` as sent; rebuilt from the path and query when the gateway does not pass it.
fn target_of(environ: &Environ) -> String {
    if let Some(uri) = environ.request_uri() {
        return String::from_utf8_lossy(uri).into_owned();
    }
    let mut target = String::from_utf8_lossy(environ.script_name()).into_owned();
    target.push_str(&String::from_utf8_lossy(environ.path_info()));
    if !environ.query_string().is_empty() {
        target.push('?');
        target.push_str(&String::from_utf8_lossy(environ.query_string()));
    }
    target
}

/// `SERVER_PROTOCOL` as one of the names the format knows.
fn protocol_of(protocol: &[u8]) -> &'static str {
    match protocol {
        b"HTTP/1.0" => "HTTP/1.0",
        b"HTTP/1.1" => "HTTP/1.1",
        b"HTTP/2" | b"HTTP/2.0" => "HTTP/2.0",
        b"HTTP/3" | b"HTTP/3.0" => "HTTP/3.0",
        b"HTTP/0.9" => "HTTP/0.9",
        _ => "-",
    }
}

/// A request whose line is not written yet; writes it when dropped (body ended or abandoned).
struct Pending {
    shared: Arc<Shared>,
    record: Option<AccessRecord>,
    started: Instant,
}

impl Pending {
    fn add(&mut self, bytes: u64) {
        if let Some(record) = &mut self.record {
            record.bytes += bytes;
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.duration = self.started.elapsed();
            let mut line = self.shared.format.render(&record, self.shared.pid);
            line.push('\n');
            self.shared.sink.write(&line);
        }
    }
}

fn watch(body: Body, mut pending: Pending) -> Body {
    match body.into_kind() {
        BodyKind::File(file) => {
            pending.add(file.len());
            drop(pending);
            file.into()
        }
        BodyKind::Empty => {
            drop(pending);
            Body::empty()
        }
        other => Body::from_http_body(Watched {
            inner: other.into(),
            pending: Some(pending),
        }),
    }
}

/// A body that counts its bytes and writes the line at its end.
struct Watched {
    inner: Body,
    pending: Option<Pending>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(pending)) = (frame.data_ref(), &mut this.pending) {
                    pending.add(data.len() as u64);
                }
                if this.inner.is_end_stream() {
                    this.pending = None;
                }
            }
            Poll::Ready(_) => this.pending = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use http::StatusCode;
    use rgi::testing::TestClient;
    use rgi::ApplicationExt;

    use crate::request_id::RequestIdLayer;

    fn app() -> impl Application {
        rgi::app_fn(|environ: Environ, start: StartResponse| async move {
            match environ.path_info() {
                b"/fail" => Err("broken".into()),
                b"/stream" => {
                    let chunks = futures_util::stream::iter(
                        ["ab", "cde"].map(Ok::<_, std::convert::Infallible>),
                    );
                    start.text(Body::from_stream(chunks))
                }
                b"/missing" => start.error(StatusCode::NOT_FOUND),
                _ => start.header("etag", "\"v1\"").text("hello\n"),
            }
        })
    }

    fn logged(
        format: &str,
    ) -> (
        TestClient<AccessLog<impl Application>>,
        Arc<Mutex<Vec<String>>>,
    ) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let layer = AccessLogLayer::to_fn(move |l: &str| sink.lock().unwrap().push(l.to_owned()))
            .format(format.parse().unwrap());
        (TestClient::new(app().layer(layer)), lines)
    }

    #[test]
    fn one_line_per_request_with_status_and_bytes() {
        let (c, lines) = logged(r#"%(h)s "%(r)s" %(s)s %(b)s %({etag}o)s %({user-agent}i)s"#);
        c.get("/a?b=1")
            .header("user-agent", "curl/8")
            .send_blocking();
        c.get("/missing").send_blocking();
        c.head("/a").send_blocking();
        c.get("/stream").send_blocking();
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "127.0.0.1 \"GET /a?b=1 HTTP/1.1\" 200 6 \\\"v1\\\" curl/8\n",
                "127.0.0.1 \"GET /missing HTTP/1.1\" 404 14 - -\n",
                "127.0.0.1 \"HEAD /a HTTP/1.1\" 200 - \\\"v1\\\" -\n",
                "127.0.0.1 \"GET /stream HTTP/1.1\" 200 5 - -\n",
            ]
        );
    }

    #[test]
    fn errors_are_logged_with_the_servers_status() {
        let (c, lines) = logged("%(s)s %(B)s");
        assert_eq!(c.get("/fail").send_blocking().status(), 500);
        assert_eq!(*lines.lock().unwrap(), ["500 0\n"]);
    }

    #[test]
    fn an_abandoned_body_is_logged_with_what_was_sent() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let (mut tx, body) = Body::channel(1);
        let slot = Arc::new(Mutex::new(Some(body)));
        let app = rgi::app_fn(move |_environ: Environ, start: StartResponse| {
            let body = slot.lock().unwrap().take().unwrap_or_default();
            async move { start.text(body) }
        })
        .layer(
            AccessLogLayer::to_fn(move |l: &str| sink.lock().unwrap().push(l.to_owned()))
                .format("%(s)s %(B)s".parse().unwrap()),
        );
        let environ = Environ::builder(http::Method::GET, "/").build();
        let start = StartResponse::new(&http::Method::GET);
        let response = rgi::block_on(app.call(environ, start)).unwrap();
        let mut body = response.into_parts().2;
        rgi::block_on(async {
            tx.send("abc").await.unwrap();
            let frame =
                std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                    .await;
            assert_eq!(frame.unwrap().unwrap().into_data().unwrap(), "abc");
        });
        assert!(lines.lock().unwrap().is_empty(), "not before the end");
        drop(body); // the client went away while the producer still runs
        assert_eq!(*lines.lock().unwrap(), ["200 3\n"]);
        drop(tx);
    }

    #[test]
    fn the_default_format_and_json_and_the_request_id() {
        let (c, lines) = logged(format::DEFAULT_FORMAT);
        c.get("/x").header("referer", "http://a/").send_blocking();
        let line = lines.lock().unwrap()[0].clone();
        assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
        assert!(
            line.ends_with("] \"GET /x HTTP/1.1\" 200 6 \"http://a/\" \"-\"\n"),
            "{line}"
        );

        let (c, lines) = logged("json");
        c.get("/x").send_blocking();
        let value: serde_json::Value = serde_json::from_str(&lines.lock().unwrap()[0]).unwrap();
        assert_eq!(
            (value["status"].as_u64(), value["bytes"].as_u64()),
            (Some(200), Some(6))
        );

        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let app = app()
            .layer(
                AccessLogLayer::to_fn(move |l: &str| sink.lock().unwrap().push(l.to_owned()))
                    .format("%({x-request-id}i)s".parse().unwrap()),
            )
            .layer(RequestIdLayer::new());
        let r = TestClient::new(app).get("/").send_blocking();
        assert_eq!(
            lines.lock().unwrap()[0],
            format!("{}\n", r.header("x-request-id").unwrap())
        );
    }

    #[test]
    fn files_get_whole_lines() {
        let dir = std::env::temp_dir().join(format!("rgi-mw-accesslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let layer = AccessLogLayer::file(&path)
            .unwrap()
            .format("%(m)s %(U)s %(s)s".parse().unwrap());
        let c = TestClient::new(app().layer(layer));
        c.get("/one").send_blocking();
        c.post("/two").body("x").send_blocking();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "GET /one 200\nPOST /two 200\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(AccessLogLayer::file(dir.join("no/such/dir/log")).is_err());
    }
}
