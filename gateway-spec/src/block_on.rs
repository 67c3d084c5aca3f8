//! A minimal `block_on`: drive one future to completion on the current thread.
//!
//! Used where synchronous code meets RGI's async types: [`std::io::Read`] on the request body, the
//! blocking send of a body channel, the test client's `send_blocking`. It parks the thread between
//! wake-ups; it provides no reactor, so the future must be woken by another thread (as hyper's body
//! channel and tokio's sync primitives do) or be ready without I/O.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Run `future` to completion, parking the current thread while it is pending.
///
/// Never call this on an async runtime's worker thread: it blocks that thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A spurious unpark only costs one extra poll.
        thread::park();
    }
}
