//! Draining and request counting: the state one serving process shares between its accept loops,
//! its connections and whoever stops it (a signal, the arbiter's heartbeat, `--max-requests`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio_util::sync::CancellationToken;

/// How long a draining server keeps an idle kept-alive connection open for one more request.
pub const DRAIN_LINGER: Duration = Duration::from_secs(2);

/// Whether a server is draining, and how many requests it has answered.
#[derive(Debug)]
pub(crate) struct Control {
    /// Set when draining begins, before `draining` is cancelled: what every request reads.
    /// (`CancellationToken::is_cancelled` takes a process-wide lock; this is one load.)
    drain_started: AtomicBool,
    draining: CancellationToken,
    /// Connections to wake when draining begins (see [`Control::until_drained`]).
    watchers: Mutex<Watchers>,
    served: AtomicU64,
    max_requests: u64,
    retiring: AtomicBool,
}

#[derive(Debug, Default)]
struct Watchers {
    next: u64,
    wakers: HashMap<u64, Arc<AtomicWaker>>,
}

impl Control {
    /// A server that drains by itself after `max_requests` requests (0 = never).
    pub(crate) fn new(max_requests: u64) -> Self {
        Control {
            drain_started: AtomicBool::new(false),
            draining: CancellationToken::new(),
            watchers: Mutex::default(),
            served: AtomicU64::new(0),
            max_requests,
            retiring: AtomicBool::new(false),
        }
    }

    /// Drain once `shutdown` is cancelled (a standalone server's stop signal); the returned task
    /// ends with the caller's server.
    pub(crate) fn drain_on(self: &Arc<Self>, shutdown: CancellationToken) -> DrainOn {
        let control = Arc::clone(self);
        DrainOn(tokio::spawn(async move {
            shutdown.cancelled().await;
            control.drain();
        }))
    }

    /// The token cancelled when draining begins.
    pub(crate) fn token(&self) -> CancellationToken {
        self.draining.clone()
    }

    /// Begin draining: stop accepting, close connections after their current or next request.
    pub(crate) fn drain(&self) {
        self.drain_started.store(true, Ordering::SeqCst);
        self.draining.cancel();
        let watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        for waker in watchers.wakers.values() {
            waker.wake();
        }
    }

    /// Resolves when draining begins, like [`drained`](Self::drained), but cheap to poll often: a
    /// `CancellationToken`'s future takes a process-wide lock on every poll, and a connection's task
    /// is polled several times per request. This one takes the lock when created and dropped.
    /// `waker` is the caller's own (a connection keeps one for its lifetime rather than allocate one
    /// each time it waits); callers must not wait on two of these with the same `waker` at once.
    pub(crate) fn until_drained(&self, waker: &Arc<AtomicWaker>) -> UntilDrained<'_> {
        let waker = Arc::clone(waker);
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        let key = watchers.next;
        watchers.next += 1;
        watchers.wakers.insert(key, Arc::clone(&waker));
        UntilDrained {
            control: self,
            key,
            waker,
        }
    }

    /// Whether draining began.
    pub(crate) fn is_draining(&self) -> bool {
        self.drain_started.load(Ordering::SeqCst)
    }

    /// Resolves when draining begins.
    pub(crate) fn drained(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.draining.cancelled()
    }

    /// Whether the server reached `--max-requests` (it then drains and exits).
    pub(crate) fn is_retiring(&self) -> bool {
        self.retiring.load(Ordering::Relaxed)
    }

    /// One more request answered; the one that reaches `max_requests` starts the drain.
    pub(crate) fn count_request(&self) {
        if self.max_requests == 0 {
            return; // nothing to count for: keep this cache line out of every request
        }
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.max_requests {
            self.retiring.store(true, Ordering::Relaxed);
            self.drain();
        }
    }
}

/// The task of [`Control::drain_on`], aborted when dropped.
#[derive(Debug)]
pub(crate) struct DrainOn(tokio::task::JoinHandle<()>);

impl Drop for DrainOn {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// See [`Control::until_drained`].
pub(crate) struct UntilDrained<'a> {
    control: &'a Control,
    key: u64,
    waker: Arc<AtomicWaker>,
}

impl Future for UntilDrained<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.control.is_draining() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // `drain` sets the flag before it wakes: a drain between the check above and the
        // registration is seen here.
        if self.control.is_draining() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for UntilDrained<'_> {
    fn drop(&mut self) {
        let mut watchers = self
            .control
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        watchers.wakers.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_that_reaches_max_requests_starts_the_drain() {
        let control = Control::new(3);
        control.count_request();
        control.count_request();
        assert!(!control.is_draining());
        control.count_request();
        assert!(control.is_retiring() && control.is_draining());
        let unlimited = Control::new(0);
        for _ in 0..10 {
            unlimited.count_request();
        }
        assert!(!unlimited.is_draining());
    }
}
