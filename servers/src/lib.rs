//! # rgi-servers — servers for RGI applications
//!
//! Every server here runs any [`rgi::Application`] unchanged; which one runs is a matter of
//! configuration, never of code:
//!
//! - [`http`]: HTTP/1.1 on hyper — keep-alive, pipelining, streaming both ways, limits, graceful stop.
//! - [`launch`]: [`run`], the one call that gives an application a gunicorn-style command line
//!   (`--bind`, `--protocol`, limits) and serves it.
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

pub mod bind;
pub mod config;
mod fd;
pub mod http;
pub mod launch;

pub use crate::launch::{run, run_from, run_with, Options, Protocol};
