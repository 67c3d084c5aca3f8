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

use rgi::Application;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::arbiter::{take_over, Hooks};
use crate::bind::StdListener;
use crate::config::Config;
pub use crate::protocol::Protocol;
use crate::report::Report;
use crate::settings::{Raw, Settings, SettingsError};

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
    let app = match take_over(app, &args, &Hooks::default()) {
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
    let settings = match Raw::parse(&args).and_then(|raw| raw.resolve()) {
        Ok(settings) => settings,
        Err(_) if cgi => return crate::cgi::run(app, &Config::default()),
        Err(SettingsError::Usage(e)) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        Err(e) => {
            eprintln!("rgi: {}", Report(&e));
            return ExitCode::from(2);
        }
    };
    run_with(app, &settings)
}

impl Hooks {
    /// Serve `app` as [`crate::run`] does, with these hooks.
    pub fn run<A: Application>(self, app: A) -> ExitCode {
        self.run_from(app, std::env::args_os())
    }

    /// As [`run`](Hooks::run), with explicit arguments (the first is the program name).
    pub fn run_from<A, I, T>(self, app: A, args: I) -> ExitCode
    where
        A: Application,
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        match take_over(app, &args, &self) {
            Ok(code) => code,
            Err(app) => run_from(app, args),
        }
    }
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

/// As [`run`], with resolved settings, in this process (the process manager is [`crate::arbiter`]'s).
pub fn run_with<A: Application>(app: A, settings: &Settings) -> ExitCode {
    let config = settings.server.clone();
    let detect = !settings.is_given("bind");
    if detect && !settings.is_given("protocol") && std::env::var_os("GATEWAY_INTERFACE").is_some() {
        return crate::cgi::run(app, &config);
    }
    let fastcgi = settings.protocol == Protocol::Fastcgi || !settings.is_given("protocol");
    if detect && fastcgi {
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
    let protocol = settings.protocol;
    let mut listeners = Vec::with_capacity(settings.binds.len());
    for bind in &settings.binds {
        match bind.listen(settings.bind_options) {
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
                let scheme = protocol.listener_scheme(&config);
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
