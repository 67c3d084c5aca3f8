//! The worker side of the arbiter: adopt the inherited descriptors, open the logs, run the start
//! hook, report ready, beat, serve with the configured kind, drain on `TERM`, exit.
//!
//! The heartbeat is one byte on a socketpair to the master (no filesystem I/O): `R` once ready, `.`
//! every `timeout/4` (at most every second, so a worker notices a dead master quickly: a failed
//! write starts a drain), `M` when `--max-requests` is reached, `S` when a sync thread has been in
//! one request past `--timeout`. Nothing is ever read from it here.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rgi::{Application, Capabilities, Errors, ServerInfo};

mod sync;

use super::spawn::WorkerSpec;
use super::{say, Hooks, Signal, StartError, WorkerInfo, EXIT_BOOT_ERROR};
use crate::accesslog::{AccessLog, ErrorLog, ErrorLogSink, LogFile};
use crate::bind::StdListener;
use crate::pipeline::{Control, Pipeline};
use crate::report::Report;
use crate::settings::{LogLevel, Raw, Settings, WorkerClass};

struct Heartbeat(UnixStream);

impl Heartbeat {
    /// Send one byte; `false` when the master is gone.
    fn send(&self, byte: u8) -> bool {
        // One byte: written whole or not at all.
        match (&self.0).write(&[byte]) {
            Ok(n) => n == 1,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        }
    }
}

fn beat_interval(settings: &Settings) -> Duration {
    settings
        .timeout
        .map_or(Duration::from_secs(1), |t| t / 4)
        .clamp(Duration::from_millis(20), Duration::from_secs(1))
}

struct Booted {
    spec: WorkerSpec,
    settings: Settings,
    heartbeat: Heartbeat,
    listeners: Vec<StdListener>,
    errors: Arc<ErrorLog>,
    access: Option<Arc<AccessLog>>,
}

fn boot(raw: &Raw, spec: &str) -> Result<Booted, StartError> {
    let spec = WorkerSpec::decode(spec).map_err(|_| StartError::Environment {
        variable: super::WORKER_ENV,
        value: spec.to_owned(),
    })?;
    let settings = raw.resolve().map_err(StartError::Settings)?;
    let descriptor = |fd| move |source| StartError::Descriptor { fd, source };
    let heartbeat = crate::fd::adopt(spec.heartbeat)
        .map(UnixStream::from)
        .map_err(descriptor(spec.heartbeat))?;
    heartbeat
        .set_nonblocking(true)
        .map_err(descriptor(spec.heartbeat))?;
    let listeners = spec
        .listeners
        .iter()
        .map(|&fd| {
            crate::fd::adopt(fd)
                .and_then(StdListener::from_owned_fd)
                .map_err(descriptor(fd))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // One async worker may hold tens of thousands of connections.
    let _ = crate::fd::raise_nofile_limit();
    let log_error = |target: &crate::accesslog::LogTarget| {
        let target = target.clone();
        move |source| StartError::Log { target, source }
    };
    let errors = LogFile::open(settings.error_log.clone())
        .map(|f| Arc::new(ErrorLog::new(f, settings.log_level)))
        .map_err(log_error(&settings.error_log))?;
    let access = match &settings.access_log {
        Some(target) => Some(
            LogFile::open(target.clone())
                .map(|f| {
                    let log = AccessLog::new(f, settings.access_log_format.clone());
                    Arc::new(log.reporting_to(Arc::clone(&errors)))
                })
                .map_err(log_error(target))?,
        ),
        None => None,
    };
    Ok(Booted {
        spec,
        settings,
        heartbeat: Heartbeat(heartbeat),
        listeners,
        errors,
        access,
    })
}

/// Run this process as worker `spec` (the value of [`super::WORKER_ENV`]).
pub(super) fn run<A: Application>(app: A, raw: &Raw, spec: &str, hooks: &Hooks) -> ExitCode {
    let booted = match boot(raw, spec) {
        Ok(b) => b,
        Err(e) => {
            say(format_args!(
                "rgi: worker {}: cannot boot: {}",
                std::process::id(),
                Report(&e)
            ));
            return ExitCode::from(EXIT_BOOT_ERROR as u8);
        }
    };
    let info = WorkerInfo {
        id: booted.spec.id,
        generation: booted.spec.generation,
        pid: std::process::id(),
    };
    let result = match booted.settings.worker_class {
        WorkerClass::Async => run_async(app, booted, hooks, &info),
        WorkerClass::Sync => run_sync(app, booted, hooks, &info),
    };
    match result {
        Ok(()) => {
            hooks.worker_exiting(&info);
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(format_args!("rgi: worker {}: {e}", info.pid));
            ExitCode::from(1)
        }
    }
}

fn server_info(
    software: &'static str,
    settings: &Settings,
    errors: &Arc<ErrorLog>,
    executor: rgi::SharedExecutor,
    multithread: bool,
) -> Arc<ServerInfo> {
    Arc::new(ServerInfo {
        software: software.into(),
        multithread,
        multiprocess: settings.workers > 1,
        run_once: false,
        capabilities: Capabilities::STREAMING | Capabilities::STREAMING_INPUT,
        executor,
        errors: Errors::from_sink(ErrorLogSink(Arc::clone(errors))),
    })
}

/// React to a worker signal; `true` when the worker must exit now (quick stop).
fn on_signal(
    signal: Signal,
    control: &Control,
    errors: &ErrorLog,
    access: Option<&AccessLog>,
) -> bool {
    match signal {
        Signal::Term => {
            errors.log(LogLevel::Info, "worker: SIGTERM, draining");
            control.drain();
            false
        }
        Signal::Int | Signal::Quit => {
            errors.log(LogLevel::Info, format!("worker: {signal}, exiting now"));
            true
        }
        Signal::Usr1 => {
            if let Err(e) = errors.reopen() {
                errors.log(
                    LogLevel::Error,
                    format!("worker: cannot reopen error log: {e}"),
                );
            }
            if let Some(access) = access {
                if let Err(e) = access.file().reopen() {
                    errors.log(
                        LogLevel::Error,
                        format!("worker: cannot reopen access log: {e}"),
                    );
                }
            }
            false
        }
        _ => false,
    }
}

const WORKER_SIGNALS: [Signal; 4] = [Signal::Term, Signal::Int, Signal::Quit, Signal::Usr1];

fn run_async<A: Application>(
    app: A,
    booted: Booted,
    hooks: &Hooks,
    info: &WorkerInfo,
) -> io::Result<()> {
    let Booted {
        spec,
        settings,
        heartbeat,
        listeners,
        errors,
        access,
    } = booted;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .max_blocking_threads(settings.server.blocking_threads.max(1));
    if settings.threads > 0 {
        builder.worker_threads(settings.threads);
    }
    let runtime = builder.build()?;
    let control = Arc::new(Control::new(spec.max_requests));
    let result = runtime.block_on(async {
        let executor = Arc::new(rgi::TokioBlocking::current(
            settings.server.blocking_threads + settings.server.blocking_queue,
        ));
        let protocol = settings.protocol;
        let server = server_info(protocol.software(), &settings, &errors, executor, true);
        let listeners = listeners
            .into_iter()
            .map(StdListener::into_tokio)
            .collect::<io::Result<Vec<_>>>()?;
        let pipeline = Arc::new(Pipeline {
            access_log: access.clone(),
            request_timeout: settings.request_timeout,
            control: Arc::clone(&control),
            ..Pipeline::new(
                Arc::new(app),
                settings.server.clone(),
                server,
                protocol.scheme(),
            )
        });
        let mut signals = super::signals::listen(&WORKER_SIGNALS)?;
        hooks.worker_started(info);
        heartbeat.send(b'R');
        errors.log(
            LogLevel::Debug,
            format!(
                "worker {} (generation {}) serving",
                info.id, info.generation
            ),
        );
        // Beats come from the runtime itself: a wedged runtime stops beating.
        let beat_control = Arc::clone(&control);
        let beat_errors = Arc::clone(&errors);
        let interval = beat_interval(&settings);
        tokio::spawn(async move {
            let mut retired = false;
            let mut drain_seen = false;
            let mut ticker = tokio::time::interval(interval);
            loop {
                // Also at once when the drain begins: a worker that reached --max-requests says so
                // before it exits, not at the next beat (an HTTP/2 connection closes with its
                // GOAWAY in milliseconds, and an exit the master was not told of is a crash).
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = beat_control.drained(), if !drain_seen => drain_seen = true,
                }
                if beat_control.is_retiring() && !retired {
                    retired = true;
                    heartbeat.send(b'M');
                }
                if !heartbeat.send(b'.') && !beat_control.is_draining() {
                    beat_errors.log(LogLevel::Warning, "worker: master is gone; draining");
                    beat_control.drain();
                }
            }
        });
        let signal_control = Arc::clone(&control);
        let signal_errors = Arc::clone(&errors);
        tokio::spawn(async move {
            while let Some(signal) = signals.recv().await {
                if on_signal(signal, &signal_control, &signal_errors, access.as_deref()) {
                    std::process::exit(0);
                }
            }
        });
        protocol.run(listeners, pipeline).await
    });
    // Blocking jobs still running (a hung `rgi::blocking` handler) must not keep the process alive.
    runtime.shutdown_background();
    result
}

fn run_sync<A: Application>(
    app: A,
    booted: Booted,
    hooks: &Hooks,
    info: &WorkerInfo,
) -> io::Result<()> {
    let Booted {
        spec,
        settings,
        heartbeat,
        listeners,
        errors,
        access,
    } = booted;
    let control = Arc::new(Control::new(spec.max_requests));
    let server = server_info(
        crate::http::SOFTWARE,
        &settings,
        &errors,
        Arc::new(rgi::Inline),
        settings.threads > 1,
    );
    let pipeline = Arc::new(Pipeline {
        access_log: access.clone(),
        request_timeout: settings.request_timeout,
        control: Arc::clone(&control),
        tokio_files: false,
        ..Pipeline::new(Arc::new(app), settings.server.clone(), server, "http")
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut signals = super::signals::listen(&WORKER_SIGNALS)?;
        // The start hook runs before the first accept, as in async workers.
        hooks.worker_started(info);
        let pool = sync::Pool::start(pipeline, &listeners, settings.threads)?;
        // The serving threads hold their own duplicates; once they all finish, the listeners close.
        drop(listeners);
        heartbeat.send(b'R');
        let mut ticker = tokio::time::interval(beat_interval(&settings));
        let mut retired = false;
        let mut withheld = false;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            if control.is_draining() && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + settings.graceful_timeout);
            }
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = pool.finished() => break,
                () = until_deadline => {
                    errors.log(LogLevel::Warning, format!(
                        "worker: graceful timeout elapsed with {} threads busy; exiting",
                        pool.alive()
                    ));
                    break;
                }
                signal = signals.recv() => {
                    if let Some(signal) = signal {
                        if on_signal(signal, &control, &errors, access.as_deref()) {
                            std::process::exit(0);
                        }
                    }
                }
                _ = ticker.tick() => {
                    if control.is_retiring() && !retired {
                        retired = true;
                        heartbeat.send(b'M');
                    }
                    // A thread stuck in one request past --timeout withholds the beat: the master
                    // then aborts this process, the only way to stop a blocked thread.
                    let stuck = match (settings.timeout, pool.longest_busy()) {
                        (Some(t), Some(busy)) => busy >= t,
                        _ => false,
                    };
                    if stuck {
                        if !withheld {
                            withheld = true;
                            errors.log(LogLevel::Error, "worker: a request exceeded --timeout; withholding heartbeat");
                            heartbeat.send(b'S');
                        }
                    } else if !heartbeat.send(b'.') && !control.is_draining() {
                        errors.log(LogLevel::Warning, "worker: master is gone; draining");
                        control.drain();
                    }
                }
            }
        }
        pool.detach();
        io::Result::Ok(())
    })
}
