//! The accept loop every listener runs, whatever its protocol: at most `max_connections` at once,
//! TCP peers checked against an allow list, and on a graceful stop the connections the kernel already
//! completed are answered (drain-accept) before the listener closes, then open connections get the
//! graceful timeout to finish.

use std::future::Future;
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

/// Accept on every listener and run `handle` for each connection until `pipeline` drains; then
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
    H: Fn(Stream, Peer) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (control, errors, tag) = (&pipeline.control, &pipeline.server.errors, pipeline.tag);
    let graceful_timeout = pipeline.config.graceful_timeout;
    let tracker = TaskTracker::new();
    let permits = admission
        .max_connections
        .map(|n| Arc::new(Semaphore::new(n.max(1))));
    let mut loops = tokio::task::JoinSet::new();
    for listener in listeners {
        let (tracker, permits, control) = (tracker.clone(), permits.clone(), Arc::clone(control));
        let (allowed, errors, handle) = (admission.allowed.clone(), errors.clone(), handle.clone());
        loops.spawn(async move {
            let admit = |stream: Stream, peer: Peer, permit: Option<OwnedSemaphorePermit>| {
                if let (Some(allowed), Some(remote)) = (&allowed, peer.remote) {
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
                let permit = match &permits {
                    None => None,
                    Some(permits) => tokio::select! {
                        () = control.drained() => break,
                        permit = Arc::clone(permits).acquire_owned() => match permit {
                            Ok(permit) => Some(permit),
                            Err(_) => break,
                        },
                    },
                };
                let accepted = tokio::select! {
                    () = control.drained() => break,
                    accepted = listener.accept() => accepted,
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
            for (stream, peer) in drain_accept(listener) {
                admit(stream, peer, None);
            }
        });
    }
    while loops.join_next().await.is_some() {}
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
