//! The `async` worker kind: one multi-thread tokio runtime serving any number of keep-alive
//! connections per process (gunicorn's gevent worker); blocking applications run on the runtime's
//! bounded blocking pool.
//!
//! Supported: keep-alive, pipelining, streaming, and the drain described in [`crate::arbiter`].
//! Not supported: HTTP/2, TLS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rgi::Application;
use tokio_util::task::TaskTracker;

use super::{connection_builder, drain_accept, serve_connection, Connection, Shared};
use crate::bind::Listener;

/// Serve on `listeners` until the worker drains, then finish open connections within the
/// configured graceful timeout and return. Runs inside a multi-thread tokio runtime.
pub(crate) async fn serve<A: Application>(shared: Arc<Shared<A>>, listeners: Vec<Listener>) {
    let builder = Arc::new(connection_builder(&shared.config, true));
    let tracker = TaskTracker::new();
    let epoch = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    let trimmer = tokio::spawn(super::idle::trim_released_memory(Duration::from_millis(
        500,
    )));
    for listener in listeners {
        let shared = Arc::clone(&shared);
        let builder = Arc::clone(&builder);
        let tracker = tracker.clone();
        loops.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = shared.control.drained() => break,
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        let conn = Connection::open(&shared, peer, None, epoch);
                        let builder = Arc::clone(&builder);
                        tracker.spawn(async move {
                            serve_connection(conn, &builder, stream).await;
                        });
                    }
                    Err(e) => {
                        // EMFILE, ECONNABORTED…: transient; back off briefly instead of spinning.
                        shared
                            .server
                            .errors
                            .log(format_args!("rgi-worker: accept failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            for (stream, peer) in drain_accept(listener) {
                let conn = Connection::open(&shared, peer, None, epoch);
                let builder = Arc::clone(&builder);
                tracker.spawn(async move {
                    serve_connection(conn, &builder, stream).await;
                });
            }
        });
    }
    while loops.join_next().await.is_some() {}
    trimmer.abort();
    tracker.close();
    let timeout = shared.config.graceful_timeout;
    if tokio::time::timeout(timeout, tracker.wait()).await.is_err() {
        shared.server.errors.log(format_args!(
            "rgi-worker: graceful timeout ({timeout:?}) elapsed; closing {} connections",
            tracker.len()
        ));
    }
}
