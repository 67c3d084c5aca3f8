//! What the non-HTTP gateways (CGI, FastCGI, SCGI, uwsgi) share, so that none of them copies another:
//! the CGI-params → environ conversion with the `SCRIPT_NAME`/`PATH_INFO` fix-ups ([`environ`]), the
//! response-head writers and the body pump ([`response`]), calling the application with panics turned
//! into 500, and the accept loop with its graceful stop.

pub(crate) mod environ;
pub(crate) mod oneshot;
pub(crate) mod response;

use std::any::Any;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rgi::{Application, Body, BoxError, Environ, Errors};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bind::{Listener, Peer, Stream};
use crate::config::Config;

/// Call `app`: an `Err` becomes the status [`rgi::convert::error_response`] picks, a panic becomes
/// 500; both are logged to `rgi.errors` with `tag` as prefix.
pub(crate) async fn call_app<A: Application>(
    app: &A,
    environ: Environ,
    tag: &str,
) -> http::Response<Body> {
    let errors = environ.errors().clone();
    match AssertUnwindSafe(rgi::convert::call_app(app, environ))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            errors.log(format_args!(
                "{tag}: application panicked: {}",
                panic_message(&*panic)
            ));
            let error: BoxError = "application panicked".into();
            rgi::convert::error_response(&error)
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

/// The peers a gateway accepts on TCP: `FCGI_WEB_SERVER_ADDRS` (comma-separated IP addresses), when
/// set. Unparsable entries are logged and skipped.
pub(crate) fn allowed_peers(value: Option<&str>, errors: &Errors) -> Option<Arc<Vec<IpAddr>>> {
    let value = value?;
    let mut addrs = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<IpAddr>() {
            Ok(ip) => addrs.push(ip),
            Err(_) => errors.log(format_args!(
                "rgi: FCGI_WEB_SERVER_ADDRS entry {part:?} is not an IP address; ignored"
            )),
        }
    }
    Some(Arc::new(addrs))
}

/// Accept connections on every listener and run `handle` for each, until `shutdown` is cancelled;
/// then stop accepting and wait for the connections in flight, at most [`Config::graceful_timeout`].
///
/// At most [`Config::max_connections`] run at once; TCP peers not in `allowed` (when given) are
/// closed at once. `handle` receives `shutdown` so that kept-alive connections can drain.
pub(crate) async fn serve_connections<H, F>(
    listeners: Vec<Listener>,
    config: &Config,
    errors: Errors,
    tag: &'static str,
    allowed: Option<Arc<Vec<IpAddr>>>,
    shutdown: CancellationToken,
    handle: H,
) -> io::Result<()>
where
    H: Fn(Stream, Peer, CancellationToken) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let tracker = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut accept_loops = tokio::task::JoinSet::new();
    for listener in listeners {
        let (tracker, permits, errors) = (tracker.clone(), Arc::clone(&permits), errors.clone());
        let (allowed, shutdown, handle) = (allowed.clone(), shutdown.clone(), handle.clone());
        accept_loops.spawn(async move {
            loop {
                let permit = tokio::select! {
                    () = shutdown.cancelled() => return,
                    permit = Arc::clone(&permits).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                };
                let accepted = tokio::select! {
                    () = shutdown.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE, ECONNABORTED…: transient; back off instead of spinning.
                        errors.log(format_args!("{tag}: accept failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let (Some(allowed), Some(remote)) = (&allowed, peer.remote) {
                    if !allowed.contains(&remote.ip()) {
                        errors.log(format_args!(
                            "{tag}: connection from {remote} refused (not in FCGI_WEB_SERVER_ADDRS)"
                        ));
                        continue;
                    }
                }
                let connection = handle(stream, peer, shutdown.clone());
                tracker.spawn(async move {
                    connection.await;
                    drop(permit);
                });
            }
        });
    }
    shutdown.cancelled().await;
    while accept_loops.join_next().await.is_some() {}
    tracker.close();
    let timeout = config.graceful_timeout;
    if tokio::time::timeout(timeout, tracker.wait()).await.is_err() {
        errors.log(format_args!(
            "{tag}: graceful timeout ({timeout:?}) elapsed; closing remaining connections"
        ));
    }
    Ok(())
}
