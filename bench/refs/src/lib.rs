//! What the three reference servers share: the command line and the hello body; [`te`]: what the
//! TechEmpower-shaped apps share.

pub mod te;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// `--bind 127.0.0.1:PORT --threads N` (both required by the benchmark; defaults for a quick try),
/// and `--certfile PEM --keyfile PEM` for the servers that speak TLS.
#[derive(Debug, Clone)]
pub struct Args {
    /// Where to listen.
    pub bind: SocketAddr,
    /// Worker threads (tokio workers; actix workers).
    pub threads: usize,
    /// A PEM certificate chain and its key: serve TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Parse the command line; exits with status 2 on a usage error.
pub fn args() -> Args {
    let mut args = Args {
        bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
        threads: 2,
        tls: None,
    };
    let (mut cert, mut key) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--bind" => args.bind = value.parse().unwrap_or_else(|_| usage(&flag, &value)),
            "--threads" => args.threads = value.parse().unwrap_or_else(|_| usage(&flag, &value)),
            "--certfile" => cert = Some(PathBuf::from(value)),
            "--keyfile" => key = Some(PathBuf::from(value)),
            _ => usage(&flag, &value),
        }
    }
    args.tls = cert.zip(key);
    args
}

fn usage(flag: &str, value: &str) -> ! {
    eprintln!(
        "bad argument {flag} {value:?}; usage: --bind HOST:PORT --threads N [--certfile PEM --keyfile PEM]"
    );
    std::process::exit(2)
}

static COUNT: AtomicU64 = AtomicU64::new(0);

/// The hello body: "Hello World!", this process's access count, its pid.
pub fn hello_body() -> String {
    let count = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    format!(
        "Hello World!\nAccess count: {count}\nPID: {}\n",
        std::process::id()
    )
}

/// Print the line the benchmark's logs show.
pub fn announce(name: &str, args: &Args) {
    let scheme = if args.tls.is_some() { "https" } else { "http" };
    println!(
        "{name}: listening on {scheme}://{} with {} threads (pid {})",
        args.bind,
        args.threads,
        std::process::id()
    );
}
