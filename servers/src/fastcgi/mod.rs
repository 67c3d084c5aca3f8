//! FastCGI 1.0 server (nginx `fastcgi_pass`, lighttpd `mod_fastcgi`, Apache `mod_proxy_fcgi`).
//!
//! Supported: the Responder, Authorizer and Filter roles; `FCGI_KEEP_CONN`; multiplexed requests on
//! one connection, each in its own task (`FCGI_MPXS_CONNS` = 1); `FCGI_GET_VALUES` answered from
//! [`Config::max_connections`](crate::config::Config) and
//! [`Config::max_requests`](crate::config::Config); `FCGI_ABORT_REQUEST`;
//! `FCGI_UNKNOWN_TYPE`; padding; name-value pairs split across `PARAMS` records; `STDIN` streamed to
//! `rgi.input` (never buffered whole); `rgi.errors` lines as `STDERR` records; `FCGI_WEB_SERVER_ADDRS`;
//! TCP and unix sockets, including a listening socket inherited as descriptor 0
//! (`FCGI_LISTENSOCK_FILENO`: lighttpd `bin-path`, spawn-fcgi — see the launcher); graceful stop.
//! Not supported: protocol versions other than 1; `PARAMS` blocks larger than
//! [`Limits::max_head_bytes`](crate::config::Limits::max_head_bytes) (the connection is closed).
//! A request's `PARAMS` must be complete within
//! [`Limits::header_read_timeout`](crate::config::Limits::header_read_timeout) of its
//! `BEGIN_REQUEST` (else the connection is closed and logged); a kept connection idle between
//! requests is not timed out (web servers keep them open on purpose).
//!
//! # Requests and responses
//!
//! The `PARAMS` are the CGI meta-variables; the environ is built from them by the shared gateway code
//! (with the `SCRIPT_NAME`/`PATH_INFO` fix-ups for nginx's stock `fastcgi_params`, which sends the
//! whole path as `SCRIPT_NAME`). The response goes out on `STDOUT` as a CGI response: `Status:` line,
//! headers, empty line, body, cut into records of at most 65535 bytes and padded to 8 bytes.
//! `END_REQUEST` is sent for every request that completes, is refused (`FCGI_OVERLOADED`,
//! `FCGI_UNKNOWN_ROLE`) or is aborted by `ABORT_REQUEST`. A response body that fails midway closes the
//! connection without `END_REQUEST` instead: that is the only way FastCGI can tell the web server a
//! response is truncated. When the server drains (a graceful stop, a reload, `--max-requests`), a
//! request that still arrives on an open connection is served and the connection closed after it;
//! an idle kept connection is closed after 2 s (`DRAIN_LINGER`). Application
//! errors are answered with the status
//! [`rgi::convert::error_response`] picks and logged to the request's `STDERR`; panics become 500.
//!
//! - **Authorizer**: the application sees no body; its response goes back as is (200 allows the
//!   request, `Variable-NAME` headers pass variables on; §6.3).
//! - **Filter**: `rgi.input` is `STDIN`; the `FCGI_DATA` stream (the file to filter) is a
//!   [`FilterData`] extension of the environ, limited to `FCGI_DATA_LENGTH`. The web server sends
//!   `DATA` after `STDIN`, so read `rgi.input` first.
//!
//! # Multiplexing and memory
//!
//! One reader task per connection demultiplexes records; each request runs in its own task, so a slow
//! request never delays another's response, and their records are serialized by one writer task.
//! `STDIN` reaches each request through a queue of at most 4 records (256 KiB). FastCGI has no
//! per-request flow control, so bounded memory has a price: when one request's queue is full, the
//! reader waits for that request's application to read before it reads further records of the
//! connection, for any request. Requests already running go on (their responses are written by
//! their own tasks), but new input on that connection waits. This matters only to a client that
//! multiplexes uploads; nginx never multiplexes (one request per connection, request id 1), and
//! neither does lighttpd or Apache.
//!
//! Served by `rgi_servers::Protocol::Fastcgi` (`--protocol fastcgi`), whose `serve` shows how to
//! run it inside a program of your own.

mod conn;
pub mod record;

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rgi::{Application, Input};
use tokio::sync::Semaphore;

use crate::bind::Listener;
use crate::gateway;
use crate::pipeline::accept::{self, Admission};
use crate::pipeline::Pipeline;
use crate::report::Report;

pub use self::record::RecordError;

/// `SERVER_SOFTWARE` of this server.
pub const SOFTWARE: &str = concat!("rgi-fastcgi/", env!("CARGO_PKG_VERSION"));

/// Why a FastCGI connection was closed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The web server sent a record that breaks the protocol.
    Record(RecordError),
    /// Reading or writing the connection failed.
    Io(io::Error),
    /// A request's `PARAMS` did not end within the header timeout (`--header-timeout`) after its
    /// `BEGIN_REQUEST`: a slowloris on the request head. The connection is closed.
    ParamsTimeout {
        /// The request that was too slow.
        request_id: u16,
        /// The header timeout.
        timeout: std::time::Duration,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Transparent: the record error says what is wrong.
            Error::Record(e) => fmt::Display::fmt(e, f),
            Error::Io(_) => f.write_str("fastcgi: connection failed"),
            Error::ParamsTimeout {
                request_id,
                timeout,
            } => write!(
                f,
                "fastcgi: request {request_id} did not send all its PARAMS within {timeout:?} \
                 (--header-timeout); connection closed"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Record(e) => e.source(),
            Error::Io(e) => Some(e),
            Error::ParamsTimeout { .. } => None,
        }
    }
}

impl From<RecordError> for Error {
    fn from(e: RecordError) -> Self {
        Error::Record(e)
    }
}

/// The `FCGI_DATA` stream of a Filter request (§6.4): the file to filter, as an [`Input`], found in
/// the environ's extensions.
///
/// ```
/// # async fn app(environ: rgi::Environ) -> std::io::Result<()> {
/// use rgi_servers::fastcgi::FilterData;
/// if let Some(mut data) = environ.extensions().get::<FilterData>().and_then(FilterData::take) {
///     let file = data.read_to_bytes().await?;
/// #   let _ = file;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FilterData {
    input: Arc<Mutex<Option<Input>>>,
    last_modified: Option<u64>,
}

impl FilterData {
    fn new(input: Input, last_modified: Option<u64>) -> Self {
        FilterData {
            input: Arc::new(Mutex::new(Some(input))),
            last_modified,
        }
    }

    /// Take the data stream out (the first call gets it; later calls get `None`).
    pub fn take(&self) -> Option<Input> {
        self.input.lock().ok().and_then(|mut i| i.take())
    }

    /// `FCGI_DATA_LAST_MOD`: when the filtered file was last modified, in seconds since the epoch.
    pub fn last_modified(&self) -> Option<u64> {
        self.last_modified
    }
}

impl fmt::Debug for FilterData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterData")
            .field("last_modified", &self.last_modified)
            .finish_non_exhaustive()
    }
}

/// Serve FastCGI on `listeners` through `pipeline` until it drains, then stop accepting, let
/// in-flight requests finish (at most the graceful timeout) and return. TCP peers are checked
/// against `FCGI_WEB_SERVER_ADDRS` when that variable is set (§3.2).
///
/// Per-connection errors are logged to the server's `rgi.errors` and the server goes on.
pub(crate) async fn serve<A: Application>(
    listeners: Vec<Listener>,
    pipeline: Arc<Pipeline<A>>,
) -> io::Result<()> {
    let allowed = gateway::allowed_peers(
        std::env::var("FCGI_WEB_SERVER_ADDRS").ok().as_deref(),
        &pipeline.server.errors,
    );
    serve_allowing(listeners, pipeline, allowed).await
}

async fn serve_allowing<A: Application>(
    listeners: Vec<Listener>,
    pipeline: Arc<Pipeline<A>>,
    allowed: Option<Arc<Vec<IpAddr>>>,
) -> io::Result<()> {
    let config = &pipeline.config;
    let admission = Admission {
        max_connections: Some(config.max_connections),
        allowed,
    };
    let shared = Arc::new(conn::Shared {
        requests: Arc::new(Semaphore::new(config.max_requests.max(1))),
        pipeline: Arc::clone(&pipeline),
    });
    accept::serve(listeners, admission, &pipeline, move |stream, _peer| {
        let shared = Arc::clone(&shared);
        async move {
            match conn::serve_conn(stream, Arc::clone(&shared)).await {
                // The web server dropped the connection: its way of aborting (§5.4).
                Err(Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                    ) => {}
                Err(e) => shared.pipeline.server.errors.log(Report(&e)),
                Ok(()) => {}
            }
        }
    })
    .await;
    Ok(())
}

/// Serve one connection as [`serve`] does, through a pipeline of its own (for the fuzz targets,
/// through [`crate::fuzzing`]).
pub(crate) async fn serve_one<A: Application>(
    stream: crate::bind::Stream,
    pipeline: Arc<Pipeline<A>>,
) -> Result<(), Error> {
    let shared = Arc::new(conn::Shared {
        requests: Arc::new(Semaphore::new(pipeline.config.max_requests.max(1))),
        pipeline,
    });
    conn::serve_conn(stream, shared).await
}

#[cfg(test)]
mod tests;
