//! Settings shared by every server: limits, timeouts, the mount point, the blocking pool.

use std::time::Duration;

/// Limits on what a client may send. Requests beyond them get a 4xx answer, never a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request target (the URI in the request line), in bytes; longer gets `414 URI Too Long`.
    /// Default 8190 (gunicorn's maximum for `--limit-request-line`).
    pub max_request_line: usize,
    /// Most header fields in one request; more gets `431 Request Header Fields Too Large`.
    /// Default 100 (gunicorn's `--limit-request-fields`).
    pub max_headers: usize,
    /// Largest request head (request line and all headers), in bytes; larger gets `431`.
    /// Default 65536; never less than 8192.
    pub max_head_bytes: usize,
    /// Largest request body, in bytes; a larger `Content-Length` gets `413 Content Too Large` before
    /// the application runs, and a longer chunked body fails the application's read (then 413).
    /// Default 1 GiB; `None` means no limit.
    pub max_body: Option<u64>,
    /// How long a client may take to send a request head, from its first byte on a new connection or
    /// after the previous response on a kept-alive one (slowloris); it is also how long a kept-alive
    /// connection may sit idle. Default 30 s; zero turns the limit off.
    pub header_read_timeout: Duration,
}

impl Limits {
    /// The header-read timeout, `None` when turned off (zero).
    pub fn header_timeout(&self) -> Option<Duration> {
        Some(self.header_read_timeout).filter(|t| !t.is_zero())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8190,
            max_headers: 100,
            max_head_bytes: 64 * 1024,
            max_body: Some(1 << 30),
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything a server needs besides the application and its listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Client limits.
    pub limits: Limits,
    /// On a graceful stop, how long in-flight requests may take before connections are closed.
    /// Default 30 s.
    pub graceful_timeout: Duration,
    /// The mount point (`SCRIPT_NAME`) the web server in front maps to this application, e.g. `/app`.
    /// Default none (the application is at the root).
    pub script_name: Option<String>,
    /// Threads in the blocking pool of an async server (`rgi::blocking` applications). Default 512.
    pub blocking_threads: usize,
    /// Blocking jobs that may wait for a thread before new ones are refused with 503. Default 1024.
    pub blocking_queue: usize,
    /// Async runtime worker threads; 0 means one per CPU. Default 0.
    pub worker_threads: usize,
    /// Most connections the FastCGI, SCGI and uwsgi servers serve at once; further connections wait
    /// in the listen backlog. FastCGI reports it as `FCGI_MAX_CONNS`. Default 1024.
    pub max_connections: usize,
    /// Most FastCGI requests in flight at once, over all connections; a `BEGIN_REQUEST` beyond it is
    /// answered `FCGI_OVERLOADED`. Reported as `FCGI_MAX_REQS`. Default 1024.
    pub max_requests: usize,
    /// How long a kept-alive HTTP connection idles before it gives back its buffers (~10 KiB; the
    /// next request re-creates them). Default 1 s; zero keeps them for the connection's life.
    pub idle_release: Duration,
    /// TLS for the HTTP server ([`crate::tls`]): every listener then speaks HTTPS. Default none.
    pub tls: Option<crate::tls::Tls>,
    /// HTTP/2 on the HTTP server. Default on.
    pub http2: Http2,
}

/// HTTP/2 on the HTTP server ([`crate::http`]): over TLS when the client picks `h2` by ALPN, on
/// cleartext listeners when the client starts with the HTTP/2 connection preface (h2c by prior
/// knowledge; there is no `Upgrade: h2c`). Requests see the same environ as over HTTP/1.1 except
/// `SERVER_PROTOCOL=HTTP/2.0`, within the same [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2 {
    /// Whether HTTP/2 is served at all; off, TLS offers only `http/1.1` and the HTTP/2 preface is
    /// an ordinary (malformed) HTTP/1.1 request. Default on.
    pub enabled: bool,
    /// Most streams (requests) a client may have open at once on one connection
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`). Default 100, the least RFC 9113 §6.5.2 advises.
    pub max_concurrent_streams: u32,
}

impl Default for Http2 {
    fn default() -> Self {
        Http2 {
            enabled: true,
            max_concurrent_streams: 100,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            graceful_timeout: Duration::from_secs(30),
            script_name: None,
            blocking_threads: 512,
            blocking_queue: 1024,
            worker_threads: 0,
            max_connections: 1024,
            max_requests: 1024,
            idle_release: Duration::from_secs(1),
            tls: None,
            http2: Http2::default(),
        }
    }
}
