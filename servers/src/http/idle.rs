//! What a connection does between requests: the header-read timeout, and releasing hyper's
//! buffers while a kept-alive connection idles.
//!
//! hyper keeps an 8 KiB read buffer (and its write buffer) for as long as a connection lives, so
//! 10,000 idle keep-alive clients cost ~110 MB in buffers alone. nginx frees its buffers on idle
//! keep-alive connections; so do we: after `--idle-release` seconds without a request, the
//! connection's [`ParkableIo`] reports end-of-stream to hyper, hyper finishes without closing the
//! socket and hands it back, and the socket waits for readability with no buffer at all. The next
//! request starts a fresh hyper connection (a few microseconds, once per idle period).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::bind::Stream;

/// Far enough to mean never, near enough not to overflow an `Instant`.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// Set when a connection released its buffers since the last [`trim_released_memory`] pass.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// Until the worker stops: every `period`, if connections released their buffers meanwhile, hand
/// the freed memory back to the kernel. Without this, glibc keeps the pages of buffers freed in the
/// middle of its heap, and a burst of connections leaves RSS at its peak for good.
pub(crate) async fn trim_released_memory(period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if RELEASED.swap(false, Ordering::Relaxed) {
            // malloc_trim walks the whole heap (milliseconds for hundreds of MB): not on a reactor
            // thread.
            let _ = tokio::task::spawn_blocking(crate::fd::release_free_memory).await;
        }
    }
}

/// Per-connection request accounting: whether a request is in flight, since when the connection
/// has been idle, and whether bytes arrived since (a request head on its way).
pub(crate) struct Watchdog {
    started: Instant,
    in_flight: AtomicU64,
    /// Milliseconds from `started` to the end of the last response.
    idle_since: AtomicU64,
    /// Reads that returned data, and that count when the last response ended.
    reads: AtomicU64,
    reads_at_idle: AtomicU64,
    /// Set to make the connection's [`ParkableIo`] report end-of-stream to hyper.
    parking: AtomicBool,
}

/// What an idle connection should do; see [`Watchdog::idle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Idle longer than the header-read timeout: close it.
    Expired,
    /// Idle longer than `--idle-release`, with nothing half-received: release hyper's buffers.
    Release,
}

impl Watchdog {
    pub(crate) fn new() -> Self {
        Watchdog {
            started: Instant::now(),
            in_flight: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            reads_at_idle: AtomicU64::new(0),
            parking: AtomicBool::new(false),
        }
    }

    /// A request head arrived; the returned guard ends the request when dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Resolves when the connection has waited `timeout` (header-read timeout) for a request head,
    /// or `release` with nothing half-received. `None` turns either off. Requests in flight are
    /// exempt; one timer per connection, re-armed only when it fires.
    pub(crate) async fn idle(&self, timeout: Option<Duration>, release: Option<Duration>) -> Idle {
        let release = release.filter(|r| timeout.is_none_or(|t| *r < t));
        let Some(first) = release.or(timeout) else {
            return std::future::pending().await;
        };
        let mut deadline = self.started + first;
        loop {
            tokio::time::sleep_until(deadline.into()).await;
            let now = Instant::now();
            // Acquire pairs with the Release in `InFlight::drop`: `idle_since` is then current.
            if self.in_flight.load(Ordering::Acquire) > 0 {
                deadline = now + first;
                continue;
            }
            let idle_since =
                self.started + Duration::from_millis(self.idle_since.load(Ordering::Relaxed));
            if let Some(timeout) = timeout {
                if idle_since + timeout <= now {
                    return Idle::Expired;
                }
            }
            let quiet =
                self.reads.load(Ordering::Relaxed) == self.reads_at_idle.load(Ordering::Relaxed);
            match release {
                Some(release) if quiet && idle_since + release <= now => return Idle::Release,
                // A head is arriving: only the header-read timeout applies now.
                Some(_) if !quiet => deadline = idle_since + timeout.unwrap_or(FAR),
                Some(release) => deadline = idle_since + release,
                None => deadline = idle_since + first,
            }
        }
    }

    /// Make the connection's IO report end-of-stream to hyper (see the module docs).
    pub(crate) fn park(&self) {
        self.parking.store(true, Ordering::Relaxed);
        RELEASED.store(true, Ordering::Relaxed);
    }

    /// The socket is back from hyper: reads are real again.
    pub(crate) fn unpark(&self) {
        self.parking.store(false, Ordering::Relaxed);
    }

    pub(crate) fn is_parking(&self) -> bool {
        self.parking.load(Ordering::Relaxed)
    }
}

/// One request between its head and the end of its response; see [`Watchdog`].
pub(crate) struct InFlight(Arc<Watchdog>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let w = &self.0;
        w.idle_since
            .store(w.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        w.reads_at_idle
            .store(w.reads.load(Ordering::Relaxed), Ordering::Relaxed);
        w.in_flight.fetch_sub(1, Ordering::Release);
    }
}

/// The socket as hyper sees it: bytes hyper left unread last time come first, and once the
/// watchdog parks the connection, reads report end-of-stream so that hyper lets go of it.
pub(crate) struct ParkableIo {
    stream: Stream,
    leftover: Bytes,
    watchdog: Arc<Watchdog>,
}

impl ParkableIo {
    pub(crate) fn new(stream: Stream, leftover: Bytes, watchdog: Arc<Watchdog>) -> Self {
        ParkableIo {
            stream,
            leftover,
            watchdog,
        }
    }

    /// The socket, and what hyper read but did not use.
    pub(crate) fn into_parts(self) -> (Stream, Bytes) {
        (self.stream, self.leftover)
    }
}

impl AsyncRead for ParkableIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.leftover.is_empty() {
            let n = this.leftover.len().min(buf.remaining());
            buf.put_slice(&this.leftover[..n]);
            this.leftover.advance(n);
            if this.leftover.is_empty() {
                // Give back the buffer it was read into (an advanced `Bytes` keeps it).
                this.leftover = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        if this.watchdog.is_parking() {
            return Poll::Ready(Ok(())); // end-of-stream, for hyper only
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.watchdog.reads.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for ParkableIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
