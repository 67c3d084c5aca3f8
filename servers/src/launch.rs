//! The launcher: one call turns any application into a program that serves it over the gateway its
//! command line (or environment) chooses.
//!
//! ```text
//! myapp                                   # HTTP on 127.0.0.1:8000
//! myapp -b 127.0.0.1:9000 -b unix:/run/app.sock
//! myapp --protocol fastcgi -b unix:/run/app.fcgi --script-name /app
//! myapp --protocol scgi -b 127.0.0.1:4000       # nginx scgi_pass
//! myapp --protocol uwsgi -b 127.0.0.1:3031      # nginx uwsgi_pass
//! ```
//!
//! With neither `--bind` nor `--protocol`, the environment decides: `GATEWAY_INTERFACE` set → serve
//! one request as a CGI script ([`cgi`](crate::cgi); the command line is then ignored, since a web
//! server may pass a query as arguments); descriptor 0 a listening socket → FastCGI on it (lighttpd
//! `bin-path`, spawn-fcgi, mod_fcgid); otherwise HTTP on 127.0.0.1:8000.
//!
//! Exit codes: 0 after a clean stop, 1 when serving failed, 2 for a usage or configuration error
//! (including an address that cannot be bound).

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rgi::Application;
use tokio_util::sync::CancellationToken;

use crate::bind::{Bind, BindOptions, StdListener};
use crate::config::{Config, Limits};
pub use crate::protocol::Protocol;

/// Command-line options, as gunicorn names them where gunicorn has them. Every option can also be set
/// through an `RGI_*` environment variable; the flag wins.
#[derive(Debug, Clone, Parser)]
#[command(
    about = "Serve an RGI application",
    long_about = "Serve an RGI application over HTTP, FastCGI, SCGI, uwsgi or CGI.\n\n\
        With neither --bind nor --protocol the environment decides:\n  \
        - GATEWAY_INTERFACE set: serve one request as a CGI script (RFC 3875) and exit; the command \
        line is ignored. A script named nph-* writes a full HTTP status line (NPH).\n  \
        - descriptor 0 is a listening socket: serve FastCGI on it (lighttpd bin-path, spawn-fcgi).\n  \
        - otherwise: HTTP on 127.0.0.1:8000.\n\n\
        --protocol fastcgi without --bind also serves descriptor 0 when it is a listening socket. \
        FastCGI honours FCGI_WEB_SERVER_ADDRS (comma-separated IPs allowed to connect over TCP).",
    version
)]
pub struct Options {
    /// Where to listen: HOST:PORT, unix:PATH or fd://N. Repeatable. Port 0 picks a free port (the
    /// actual address is printed).
    #[arg(
        short = 'b',
        long = "bind",
        value_name = "ADDR",
        env = "RGI_BIND",
        value_delimiter = ','
    )]
    pub bind: Vec<Bind>,

    /// The protocol to speak on the listeners [default: http, or as detected; see above].
    #[arg(long, value_enum, env = "RGI_PROTOCOL")]
    pub protocol: Option<Protocol>,

    /// The mount point the web server maps to this application (SCRIPT_NAME), e.g. /app.
    #[arg(long, value_name = "PATH", env = "RGI_SCRIPT_NAME")]
    pub script_name: Option<String>,

    /// Longest request target in bytes (else 414).
    #[arg(long, value_name = "BYTES", env = "RGI_LIMIT_REQUEST_LINE", default_value_t = Limits::default().max_request_line)]
    pub limit_request_line: usize,

    /// Most header fields per request (else 431).
    #[arg(long, value_name = "N", env = "RGI_LIMIT_REQUEST_FIELDS", default_value_t = Limits::default().max_headers)]
    pub limit_request_fields: usize,

    /// Largest request head (request line plus headers) in bytes (else 431); at least 8192.
    #[arg(long, value_name = "BYTES", env = "RGI_LIMIT_REQUEST_HEAD", default_value_t = Limits::default().max_head_bytes)]
    pub limit_request_head: usize,

    /// Largest request body in bytes (else 413); 0 means no limit.
    #[arg(long, value_name = "BYTES", env = "RGI_LIMIT_REQUEST_BODY", default_value_t = 1 << 30)]
    pub limit_request_body: u64,

    /// Seconds a client may take to send a request head (slowloris guard; also the keep-alive idle
    /// limit); 0 turns it off.
    #[arg(
        long,
        value_name = "SECS",
        env = "RGI_HEADER_TIMEOUT",
        default_value_t = 30.0
    )]
    pub header_timeout: f64,

    /// Seconds a kept-alive HTTP connection idles before releasing its buffers (~10 KiB each);
    /// 0 keeps them.
    #[arg(
        long,
        value_name = "SECS",
        env = "RGI_IDLE_RELEASE",
        default_value_t = 1.0
    )]
    pub idle_release: f64,

    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(
        long,
        value_name = "SECS",
        env = "RGI_GRACEFUL_TIMEOUT",
        default_value_t = 30.0
    )]
    pub graceful_timeout: f64,

    /// Async worker threads (0: one per CPU).
    #[arg(long, value_name = "N", env = "RGI_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Threads for blocking applications.
    #[arg(
        long,
        value_name = "N",
        env = "RGI_BLOCKING_THREADS",
        default_value_t = 512
    )]
    pub blocking_threads: usize,

    /// Blocking jobs that may wait for a thread before requests get 503.
    #[arg(
        long,
        value_name = "N",
        env = "RGI_BLOCKING_QUEUE",
        default_value_t = 1024
    )]
    pub blocking_queue: usize,

    /// FastCGI, SCGI, uwsgi: most connections served at once (FCGI_MAX_CONNS).
    #[arg(long, value_name = "N", env = "RGI_MAX_CONNECTIONS", default_value_t = Config::default().max_connections)]
    pub max_connections: usize,

    /// FastCGI: most requests in flight at once (FCGI_MAX_REQS); more are refused as overloaded.
    #[arg(long, value_name = "N", env = "RGI_MAX_REQUESTS", default_value_t = Config::default().max_requests)]
    pub max_requests: usize,

    /// Listen backlog.
    #[arg(long, value_name = "N", env = "RGI_BACKLOG", default_value_t = 2048)]
    pub backlog: i32,

    /// Set SO_REUSEPORT on TCP listeners.
    #[arg(long, env = "RGI_REUSE_PORT")]
    pub reuse_port: bool,
}

impl Options {
    /// The server configuration these options describe.
    pub fn config(&self) -> Config {
        Config {
            limits: Limits {
                max_request_line: self.limit_request_line,
                max_headers: self.limit_request_fields,
                max_head_bytes: self.limit_request_head.max(8192),
                max_body: (self.limit_request_body > 0).then_some(self.limit_request_body),
                header_read_timeout: seconds(self.header_timeout),
            },
            graceful_timeout: seconds(self.graceful_timeout),
            idle_release: seconds(self.idle_release),
            script_name: self
                .script_name
                .clone()
                .filter(|s| !s.trim_matches('/').is_empty()),
            blocking_threads: self.blocking_threads.max(1),
            blocking_queue: self.blocking_queue,
            worker_threads: self.threads,
            max_connections: self.max_connections.max(1),
            max_requests: self.max_requests.max(1),
        }
    }

    fn bind_options(&self) -> BindOptions {
        BindOptions {
            backlog: self.backlog,
            reuse_port: self.reuse_port,
        }
    }
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

/// Serve `app` as the process's command line and environment say; returns the exit code.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     let app = rgi::app_fn(|_, start| async move {
///         Ok(start.respond(http::StatusCode::OK, Default::default(), "hi\n")?)
///     });
///     rgi_servers::run(app)
/// }
/// ```
pub fn run<A: Application>(app: A) -> ExitCode {
    run_from(app, std::env::args_os())
}

/// As [`run`], with explicit arguments (the first is the program name).
pub fn run_from<A, I, T>(app: A, args: I) -> ExitCode
where
    A: Application,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // The process manager takes over when its options (-w, -k, -c…) are given; see `arbiter`.
    let app = match crate::arbiter::take_over(app, &args, &crate::arbiter::Hooks::default()) {
        Ok(code) => return code,
        Err(app) => app,
    };
    let cgi = std::env::var_os("GATEWAY_INTERFACE").is_some();
    if cgi && !asks_for_a_server(&args) {
        // The cheap path every CGI request takes: no option parsing at all.
        let config = Config {
            script_name: std::env::var("RGI_SCRIPT_NAME")
                .ok()
                .filter(|s| !s.trim_matches('/').is_empty()),
            ..Config::default()
        };
        return crate::cgi::run(app, &config);
    }
    let options = match Options::try_parse_from(&args) {
        Ok(options) => options,
        Err(_) if cgi => return crate::cgi::run(app, &Config::default()),
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    run_with(app, &options)
}

/// Whether a command line (or the `RGI_*` environment) names a listener or a protocol, which turns
/// CGI detection off.
fn asks_for_a_server(args: &[OsString]) -> bool {
    std::env::var_os("RGI_BIND").is_some()
        || std::env::var_os("RGI_PROTOCOL").is_some()
        || args.iter().skip(1).any(|a| {
            let a = a.as_encoded_bytes();
            a.starts_with(b"-b") || a.starts_with(b"--bind") || a.starts_with(b"--protocol")
        })
}

/// As [`run`], with parsed options.
pub fn run_with<A: Application>(app: A, options: &Options) -> ExitCode {
    let config = options.config();
    let unconfigured = options.bind.is_empty() && options.protocol.is_none();
    if unconfigured && std::env::var_os("GATEWAY_INTERFACE").is_some() {
        return crate::cgi::run(app, &config);
    }
    if options.bind.is_empty() && matches!(options.protocol, None | Some(Protocol::Fastcgi)) {
        match StdListener::from_stdin() {
            Ok(Some(listener)) => {
                return finish(serve_listeners(
                    app,
                    Protocol::Fastcgi,
                    vec![listener],
                    config,
                ))
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("rgi: cannot adopt the socket on descriptor 0: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let protocol = options.protocol.unwrap_or(Protocol::Http);
    let binds = if options.bind.is_empty() {
        vec![Bind::Tcp("127.0.0.1:8000".into())]
    } else {
        options.bind.clone()
    };
    let mut listeners = Vec::with_capacity(binds.len());
    for bind in &binds {
        match bind.listen(options.bind_options()) {
            Ok(listener) => listeners.push(listener),
            Err(e) => {
                eprintln!("rgi: cannot listen on {bind}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    finish(serve_listeners(app, protocol, listeners, config))
}

fn finish(served: std::io::Result<()>) -> ExitCode {
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rgi: {e}");
            ExitCode::from(1)
        }
    }
}

/// Run a multi-threaded runtime serving `app` on `listeners` until SIGTERM or SIGINT, then stop
/// gracefully.
///
/// # Errors
///
/// When the runtime cannot start or the listeners cannot be registered.
pub fn serve_listeners<A: Application>(
    app: A,
    protocol: Protocol,
    listeners: Vec<StdListener>,
    config: Config,
) -> std::io::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime
        .enable_all()
        .max_blocking_threads(config.blocking_threads);
    if config.worker_threads > 0 {
        runtime.worker_threads(config.worker_threads);
    }
    let runtime = runtime.build()?;
    runtime.block_on(async move {
        let stop = stop_signal()?;
        let mut tokio_listeners = Vec::with_capacity(listeners.len());
        {
            let mut out = std::io::stdout().lock();
            for listener in listeners {
                let scheme = protocol.scheme();
                let _ = writeln!(
                    out,
                    "rgi: listening on {scheme}://{} (pid {})",
                    listener.describe(),
                    std::process::id()
                );
                tokio_listeners.push(listener.into_tokio()?);
            }
            let _ = out.flush();
        }
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            let signal = stop.await;
            eprintln!("rgi: {signal} received, stopping gracefully");
            trigger.cancel();
        });
        let server = protocol.server_info(&config, false);
        protocol
            .serve(tokio_listeners, Arc::new(app), config, server, shutdown)
            .await
    })
}

/// A future that resolves when SIGTERM or SIGINT arrives (the graceful-stop signals of a standalone
/// server).
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}
