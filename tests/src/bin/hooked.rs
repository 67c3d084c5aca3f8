//! An application with arbiter hooks: each worker appends `start PID GENERATION` and
//! `exit PID GENERATION` lines to the file named by `HOOK_LOG` (one `write(2)` each, `O_APPEND`).
//! With `HOOK_PANIC` set, the start hook panics: every worker crashes as it boots (a crash loop).
//!
//! Run with: `cargo run -p rgi-tests --bin hooked -- -w 2 --bind 127.0.0.1:8000`.

use std::io::Write;

fn note(what: &str, worker: &rgi_servers::arbiter::WorkerInfo) {
    let Some(path) = std::env::var_os("HOOK_LOG") else {
        return;
    };
    let line = format!("{what} {} {}\n", worker.pid, worker.generation);
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

fn main() -> std::process::ExitCode {
    let app = rgi::app_fn(|_environ, start| async move { start.text("hooked\n") });
    rgi_servers::arbiter::Hooks::new()
        .on_worker_start(|w| {
            note("start", w);
            if std::env::var_os("HOOK_PANIC").is_some() {
                panic!("hooked: HOOK_PANIC is set; this worker crashes as it boots");
            }
        })
        .on_worker_exit(|w| note("exit", w))
        .run(app)
}
