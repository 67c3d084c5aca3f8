//! Entry points for the fuzz targets in `fuzz/` (not part of the supported API).
//!
//! The connection handlers and the params → environ conversion are private to this crate; the fuzz
//! targets drive them through these few functions, on a socket the caller owns, so that a fuzzer and
//! the corpus-replay test exercise exactly what a server runs.

use std::sync::Arc;

use rgi::{Application, Environ, Input, ServerInfo};
use tokio::net::UnixStream;

use crate::bind::Stream;
use crate::config::Config;
use crate::gateway::environ::{self as gw_environ, Split};
use crate::gateway::oneshot;
use crate::pipeline::Pipeline;

fn pipeline<A>(app: Arc<A>, config: Config, tag: &'static str) -> Arc<Pipeline<A>> {
    Arc::new(Pipeline::new(
        app,
        config,
        Arc::new(ServerInfo::default()),
        tag,
    ))
}

/// Serve one FastCGI connection (every record `stream` carries) until it ends.
///
/// # Errors
///
/// As the server would log them: a record that breaks the protocol, or an I/O failure.
pub async fn fastcgi_connection<A: Application>(
    stream: UnixStream,
    app: Arc<A>,
    config: Config,
) -> Result<(), crate::fastcgi::Error> {
    let pipeline = pipeline(app, config, "fastcgi");
    crate::fastcgi::serve_one(Stream::Unix(stream), pipeline).await
}

/// Serve the one request of an SCGI (`uwsgi == false`) or uwsgi connection.
pub async fn oneshot_connection<A: Application>(
    stream: UnixStream,
    app: Arc<A>,
    config: Config,
    uwsgi: bool,
) {
    let stream = Stream::Unix(stream);
    if uwsgi {
        let pipeline = pipeline(app, config, "uwsgi");
        oneshot::serve_one(&pipeline, &crate::uwsgi::WIRE, stream).await;
    } else {
        let pipeline = pipeline(app, config, "scgi");
        oneshot::serve_one(&pipeline, &crate::scgi::WIRE, stream).await;
    }
}

/// The environ a network gateway (`cgi == false`) or the CGI gateway builds from `params`.
///
/// # Errors
///
/// `400 Bad Request` when the variables do not make an environ (as the gateways answer).
pub fn gateway_environ(
    params: &[(&[u8], &[u8])],
    config: &Config,
    cgi: bool,
) -> Result<Environ, http::StatusCode> {
    let split = if cgi { Split::Keep } else { Split::IfBoth };
    gw_environ::build(
        params,
        Arc::new(ServerInfo::default()),
        config,
        split,
        |_| Input::empty(),
    )
    .map_err(|_| http::StatusCode::BAD_REQUEST)
}
