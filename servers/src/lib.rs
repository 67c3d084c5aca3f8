//! # rgi-servers — servers for RGI applications
//!
//! Every server here runs any [`rgi::Application`] unchanged; which one runs is a matter of
//! configuration, never of code:
//!
//! - [`http`]: HTTP/1.1 and HTTP/2 on hyper — keep-alive, pipelining, streaming both ways, limits,
//!   graceful stop; TLS with [`tls`] (`--certfile`, `--keyfile`, `--ca-certs`); HTTP/2 by ALPN over
//!   TLS and by prior knowledge (h2c) on cleartext, on unless `--no-http2`.
//! - [`fastcgi`]: FastCGI 1.0 (nginx `fastcgi_pass`, lighttpd) — all three roles, multiplexing,
//!   keep-conn, streamed stdin.
//! - [`scgi`] and [`uwsgi`]: nginx `scgi_pass` and `uwsgi_pass`, one request per connection.
//! - [`cgi`]: a CGI/1.1 child, one request per process (lighttpd `mod_cgi`, Apache).
//! - [`launch`]: [`run`], the one call that gives an application a gunicorn-style command line
//!   (`--bind`, `--protocol`, limits) and serves it.
//! - [`arbiter`]: the process manager `run` hands over to with `-w`/`-k`/`-c` — a master and
//!   re-executed worker processes (sync or async), reloads that drop nothing, gunicorn's signals;
//!   its options in [`settings`], its logs in [`accesslog`].
//!
//! Every one of them is a transport on one request pipeline (crate-private): a transport reads a
//! request into an environ and writes the response back; the pipeline applies the limits, catches
//! panics (500), enforces `--request-timeout` (504), counts requests for `--max-requests` and writes
//! the access-log line, the same way for every protocol. [`Protocol`] names the network transports
//! and serves a listener with one of them.
//!
//! Listening sockets come from [`bind`] (`HOST:PORT`, `unix:PATH`, `fd://N`); settings shared by every
//! server are in [`config`].
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     let app = rgi::app_fn(|_environ, start| async move {
//!         Ok(start.respond(http::StatusCode::OK, Default::default(), "Hello World!\n")?)
//!     });
//!     rgi_servers::run(app)
//! }
//! ```

pub mod accesslog;
pub mod arbiter;
pub mod bind;
pub mod cgi;
pub mod config;
pub mod fastcgi;
mod fd;
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
pub mod http;
pub mod launch;
mod pipeline;
mod protocol;
mod report;
pub mod scgi;
pub mod settings;
pub mod tls;
pub mod uwsgi;

pub use crate::gateway::Vars;
pub use crate::launch::{run, run_from, run_with, Protocol};
pub use crate::settings::Settings;
