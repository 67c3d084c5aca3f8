//! The accept loop every listener runs, whatever its protocol: at most `max_connections` at once,
//! TCP peers checked against an allow list, and on a graceful stop the connections the kernel already
//! completed are answered (drain-accept) before the listener closes, then open connections get the
//! graceful timeout to finish.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::Pipeline;
use crate::bind::{Listener, Peer, Stream};

/// What an accept loop lets in.
#[derive(Debug, Clone, Default)]
pub(crate) struct Admission {
    /// Most connections served at once; more wait in the listen backlog. `None`: no limit.
    pub(crate) max_connections: Option<usize>,
    /// The only TCP peers accepted (`FCGI_WEB_SERVER_ADDRS`); `None`: any.
    pub(crate) allowed: Option<Arc<Vec<IpAddr>>>,
}

/// Accept on every listener (one loop for all, so that a connection limit of one serves whichever
/// listener has a client) and run `handle` for each connection until `pipeline` drains; then
/// answer what is already queued, close the listeners, and wait for open connections at most the
/// graceful timeout. Accept errors (EMFILE, ECONNABORTED…) are logged with the pipeline's tag.
///
/// `handle` is called in the accept loop, before the connection's task first runs: what it
/// allocates for the connection's lifetime lands next to the task, not among request buffers.
pub(crate) async fn serve<A, H, F>(
    listeners: Vec<Listener>,
    admission: Admission,
    pipeline: &Pipeline<A>,
    handle: H,
) where
    H: Fn(Stream, Peer) -> F + Send + Sync,
    F: Future<Output = ()> + Send + 'static,
{
    let (control, errors, tag) = (&pipeline.control, &pipeline.server.errors, pipeline.tag);
    let graceful_timeout = pipeline.config.graceful_timeout;
    let tracker = TaskTracker::new();
    let permits = admission
        .max_connections
        .map(|n| Arc::new(Semaphore::new(n.max(1))));
    let admit = |stream: Stream, peer: Peer, permit: Option<OwnedSemaphorePermit>| {
        if let (Some(allowed), Some(remote)) = (&admission.allowed, peer.remote) {
            if !allowed.contains(&remote.ip()) {
                errors.log(format_args!(
                    "{tag}: connection from {remote} refused (not in FCGI_WEB_SERVER_ADDRS)"
                ));
                return;
            }
        }
        let connection = handle(stream, peer);
        tracker.spawn(async move {
            connection.await;
            drop(permit);
        });
    };
    loop {
        // The permit first: beyond the limit, connections wait in the kernel's backlog, where
        // another process or thread sharing the listeners can take them.
        let permit = match &permits {
            None => None,
            Some(permits) => tokio::select! {
                biased;
                () = control.drained() => break,
                permit = Arc::clone(permits).acquire_owned() => match permit {
                    Ok(permit) => Some(permit),
                    Err(_) => break,
                },
            },
        };
        // Biased: once draining, no connection is taken any more, even when one is ready (the
        // rest of the queue is taken once, below).
        let accepted = tokio::select! {
            biased;
            () = control.drained() => break,
            accepted = accept_any(&listeners) => accepted,
        };
        match accepted {
            Ok((stream, peer)) => admit(stream, peer, permit),
            Err(e) => {
                // Transient: back off briefly instead of spinning.
                errors.log(format_args!("{tag}: accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    for listener in listeners {
        for (stream, peer) in drain_accept(listener) {
            admit(stream, peer, None);
        }
    }
    tracker.close();
    if tokio::time::timeout(graceful_timeout, tracker.wait())
        .await
        .is_err()
    {
        errors.log(format_args!(
            "{tag}: graceful timeout ({graceful_timeout:?}) elapsed; closing {} connections",
            tracker.len()
        ));
    }
}

/// The next connection on any of `listeners`.
async fn accept_any(listeners: &[Listener]) -> io::Result<(Stream, Peer)> {
    match listeners {
        [] => std::future::pending().await,
        [only] => only.accept().await,
        many => {
            let accepts = many.iter().map(|l| Box::pin(l.accept()));
            futures_util::future::select_all(accepts).await.0
        }
    }
}

/// Accept whatever is queued on `listener` right now, without waiting, then drop it: a draining
/// server answers connections the kernel already completed instead of leaving them to be reset.
fn drain_accept(listener: Listener) -> Vec<(Stream, Peer)> {
    let mut out = Vec::new();
    match listener {
        Listener::Tcp(l) => {
            let Ok(l) = l.into_std() else { return out };
            let _ = l.set_nonblocking(true);
            while let Ok((s, remote)) = l.accept() {
                let local = s.local_addr().ok();
                let _ = s.set_nonblocking(true);
                let _ = s.set_nodelay(true);
                if let Ok(s) = tokio::net::TcpStream::from_std(s) {
                    out.push((
                        Stream::Tcp(s),
                        Peer {
                            local,
                            remote: Some(remote),
                        },
                    ));
                }
            }
        }
        Listener::Unix(l, _) => {
            let Ok(l) = l.into_std() else { return out };
            let _ = l.set_nonblocking(true);
            while let Ok((s, _)) = l.accept() {
                let _ = s.set_nonblocking(true);
                if let Ok(s) = tokio::net::UnixStream::from_std(s) {
                    out.push((Stream::Unix(s), Peer::default()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bind::{Bind, BindOptions};
    use crate::config::Config;

    fn listener() -> (Listener, std::net::SocketAddr) {
        let listener = Bind::Tcp("127.0.0.1:0".into())
            .listen(BindOptions::default())
            .unwrap()
            .into_tokio()
            .unwrap();
        let Listener::Tcp(tcp) = &listener else {
            unreachable!()
        };
        let addr = tcp.local_addr().unwrap();
        (listener, addr)
    }

    #[tokio::test]
    async fn a_limit_of_one_serves_whichever_listener_has_a_client() {
        let app = rgi::app_fn(|_, start| async move {
            Ok(start.respond(http::StatusCode::OK, Default::default(), "")?)
        });
        let pipeline = Arc::new(Pipeline::new(
            Arc::new(app),
            Config::default(),
            Arc::default(),
            "test",
        ));
        let ((first, _), (second, addr)) = (listener(), listener());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let one = Admission {
            max_connections: Some(1),
            allowed: None,
        };
        let served = Arc::clone(&pipeline);
        let server = tokio::spawn(async move {
            serve(vec![first, second], one, &served, move |_stream, _peer| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(());
                }
            })
            .await;
        });
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let handled = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert!(
            matches!(handled, Ok(Some(()))),
            "the second listener waited"
        );
        pipeline.control.drain();
        server.await.unwrap();
    }
}
