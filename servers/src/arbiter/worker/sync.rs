//! The `sync` worker kind: a pool of `--threads` OS threads, each with its own current-thread tokio
//! runtime, each accepting and serving **one connection at a time** with keep-alive off, like
//! gunicorn's sync worker. Blocking applications run on the serving thread ([`rgi::Inline`]), so a
//! pool of 8 serves 8 blocking requests at once and queues the rest in the kernel's backlog.
//!
//! Each thread records when its current request began; the worker's heartbeat monitor
//! ([`Pool::longest_busy`]) withholds the heartbeat while a thread has been inside one request longer
//! than `--timeout`, so the master aborts and replaces the worker — a blocked thread cannot be stopped
//! any other way.
//!
//! Not supported: keep-alive (each response closes its connection, as in gunicorn's sync worker).

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rgi::Application;
use tokio::sync::Notify;

use crate::bind::StdListener;
use crate::pipeline::Pipeline;

/// The serving threads of one sync worker.
#[derive(Debug)]
pub(crate) struct Pool {
    busy: Vec<Arc<AtomicU64>>,
    alive: Arc<AtomicUsize>,
    done: Arc<Notify>,
    epoch: Instant,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Start `threads` serving threads, each with its own duplicate of every listener.
    ///
    /// # Errors
    ///
    /// When a listener cannot be duplicated or a thread cannot start.
    pub(crate) fn start<A: Application>(
        pipeline: Arc<Pipeline<A>>,
        listeners: &[StdListener],
        threads: usize,
    ) -> io::Result<Pool> {
        let epoch = Instant::now();
        let alive = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(Notify::new());
        let mut busy = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads.max(1) {
            let dups = listeners
                .iter()
                .map(StdListener::try_clone)
                .collect::<io::Result<Vec<_>>>()?;
            let slot = Arc::new(AtomicU64::new(0));
            busy.push(Arc::clone(&slot));
            let thread_pipeline = Arc::clone(&pipeline);
            let alive_count = Arc::clone(&alive);
            let done_notify = Arc::clone(&done);
            alive.fetch_add(1, Ordering::SeqCst);
            let handle = std::thread::Builder::new()
                .name(format!("rgi-sync-{n}"))
                .spawn(move || {
                    if let Err(e) = serve_thread(thread_pipeline.clone(), dups, slot, epoch) {
                        thread_pipeline
                            .server
                            .errors
                            .log(format_args!("rgi-worker: serving thread failed: {e}"));
                    }
                    alive_count.fetch_sub(1, Ordering::SeqCst);
                    done_notify.notify_one();
                });
            match handle {
                Ok(h) => handles.push(h),
                Err(e) => {
                    alive.fetch_sub(1, Ordering::SeqCst);
                    pipeline.control.drain();
                    return Err(e);
                }
            }
        }
        Ok(Pool {
            busy,
            alive,
            done,
            epoch,
            handles,
        })
    }

    /// How long the longest-running current request has been running (`None` when all threads are
    /// idle).
    pub(crate) fn longest_busy(&self) -> Option<Duration> {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        self.busy
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|&since| since > 0)
            .map(|since| Duration::from_millis(now.saturating_sub(since)))
            .max()
    }

    /// Resolves when every serving thread has finished (after the worker drained).
    pub(crate) async fn finished(&self) {
        loop {
            let notified = self.done.notified();
            if self.alive.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Threads still serving.
    pub(crate) fn alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }

    /// Detach the threads (the process is about to exit).
    pub(crate) fn detach(self) {
        drop(self.handles);
    }
}

fn serve_thread<A: Application>(
    pipeline: Arc<Pipeline<A>>,
    listeners: Vec<StdListener>,
    busy: Arc<AtomicU64>,
    epoch: Instant,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listeners = listeners
            .into_iter()
            .map(StdListener::into_tokio)
            .collect::<io::Result<Vec<_>>>()?;
        crate::http::serve_one_at_a_time(listeners, pipeline, busy, epoch).await;
        Ok(())
    })
}
