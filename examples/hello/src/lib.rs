//! The hello-world application: `Hello World!`, then this process's access count and its pid.
//!
//! The classic flup example; the count shows which worker process answered.

use std::sync::atomic::{AtomicU64, Ordering};

use rgi::{Application, Environ, Reply, StartResponse};

/// The hello application. Each process counts the requests it served.
#[derive(Debug, Default)]
pub struct Hello {
    count: AtomicU64,
}

impl Application for Hello {
    async fn call(&self, _environ: Environ, start: StartResponse) -> Reply {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let body = format!(
            "Hello World!\nAccess count: {count}\nPID: {}\n",
            std::process::id()
        );
        start.text(body)
    }
}
