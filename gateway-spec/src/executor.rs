//! Where blocking application code runs: the [`Executor`] a server puts in every environ.

use std::fmt;
use std::sync::Arc;

/// A unit of blocking work handed to an [`Executor`].
pub type BlockingJob = Box<dyn FnOnce() + Send + 'static>;

/// Runs blocking jobs for [`blocking`](crate::blocking) applications, away from any async reactor.
///
/// Every server sets one in [`Environ::executor`](crate::Environ::executor):
/// - an async server uses a bounded pool ([`TokioBlocking`] is the reference implementation);
/// - a thread-per-request server, where the request already owns its thread, uses [`Inline`].
///
/// # Errors
///
/// `spawn_blocking` returns [`Overloaded`] when the executor cannot accept more work; the job is then
/// dropped unrun and the server answers `503 Service Unavailable`.
pub trait Executor: Send + Sync + 'static {
    /// Run `job` to completion on a thread where blocking is allowed.
    fn spawn_blocking(&self, job: BlockingJob) -> Result<(), Overloaded>;
}

impl fmt::Debug for dyn Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Executor")
    }
}

/// The executor could not accept a blocking job: its pool and queue are full.
///
/// Servers answer `503 Service Unavailable` (with `Retry-After`) when an application returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rgi: blocking pool is full")
    }
}

impl std::error::Error for Overloaded {}

/// A blocking job was dropped before it produced a reply (it panicked, or its pool shut down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JobLost;

impl fmt::Display for JobLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rgi: blocking job ended without a reply (did it panic?)")
    }
}

impl std::error::Error for JobLost {}

/// Runs each job immediately on the calling thread.
///
/// Correct only where the caller's thread belongs to the request: thread-per-request servers, CGI, the
/// [`TestClient`](crate::testing::TestClient). Never on an async worker thread.
///
/// A job that panics is stopped there, as a pool thread would stop it: the panic does not unwind into
/// the server, and the request gets `500` (the application's reply was never produced).
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl Executor for Inline {
    fn spawn_blocking(&self, job: BlockingJob) -> Result<(), Overloaded> {
        // Unwinding drops the job's captures, so its caller sees the reply lost, as with a pool.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        Ok(())
    }
}

/// A shared handle to an executor.
pub type SharedExecutor = Arc<dyn Executor>;

#[cfg(feature = "rt")]
pub use self::tokio_pool::TokioBlocking;

#[cfg(feature = "rt")]
mod tokio_pool {
    use super::{BlockingJob, Executor, Overloaded};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Runs jobs on tokio's blocking pool, refusing work beyond a limit of jobs in flight (running or
    /// queued).
    ///
    /// The limit bounds memory and queueing delay: past it the client gets a fast 503 instead of a slow
    /// timeout. It should be at least the runtime's `max_blocking_threads` (tokio's default is 512) plus
    /// the queue you accept.
    #[derive(Debug, Clone)]
    pub struct TokioBlocking {
        handle: tokio::runtime::Handle,
        in_flight: Arc<AtomicUsize>,
        limit: usize,
    }

    impl TokioBlocking {
        /// An executor on `handle`'s blocking pool accepting at most `limit` jobs in flight.
        pub fn new(handle: tokio::runtime::Handle, limit: usize) -> Self {
            TokioBlocking {
                handle,
                in_flight: Arc::new(AtomicUsize::new(0)),
                limit: limit.max(1),
            }
        }

        /// An executor on the current runtime's blocking pool.
        ///
        /// # Panics
        ///
        /// Panics when called outside a tokio runtime.
        pub fn current(limit: usize) -> Self {
            Self::new(tokio::runtime::Handle::current(), limit)
        }

        /// Jobs running or queued right now.
        pub fn in_flight(&self) -> usize {
            self.in_flight.load(Ordering::Relaxed)
        }
    }

    /// Decrements the in-flight count even when the job panics.
    struct Slot(Arc<AtomicUsize>);

    impl Drop for Slot {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }

    impl Executor for TokioBlocking {
        fn spawn_blocking(&self, job: BlockingJob) -> Result<(), Overloaded> {
            let previous = self.in_flight.fetch_add(1, Ordering::AcqRel);
            let slot = Slot(Arc::clone(&self.in_flight));
            if previous >= self.limit {
                return Err(Overloaded);
            }
            self.handle.spawn_blocking(move || {
                let _slot = slot;
                job();
            });
            Ok(())
        }
    }
}
