//! The arbiter: a gunicorn-class process manager — one master, N worker processes, reloads that drop
//! nothing.
//!
//! ```text
//! myapp -w 4 -b 127.0.0.1:8000                    # 4 async workers
//! myapp -w 2 -k sync --threads 8 --timeout 10     # 2 × 8 blocking threads
//! myapp -c rgi.toml --check-config                # print the effective configuration
//! kill -HUP $(cat app.pid)                         # reload with zero failed requests
//! ```
//!
//! # Process model
//!
//! - The **master** binds every listener (`HOST:PORT`, `unix:PATH`, `fd://N`, `SO_REUSEPORT`, or
//!   systemd's `LISTEN_FDS` when `LISTEN_PID` names it) and never runs application code. It is a small tokio current-thread loop over signals, heartbeats and a
//!   100 ms tick; all of its decisions are made by [`Arbiter`], a plain state machine that tests drive
//!   without forking.
//! - **Workers** are the same binary, re-executed ([`std::process::Command`], so no thread or runtime
//!   crosses a `fork`) with the listeners inherited as file descriptors and `RGI_WORKER` naming them.
//!   Kinds: `sync` (threads, one connection each, no keep-alive) and `async` (tokio, thousands of
//!   keep-alive connections) — see [`crate::settings::WorkerClass`].
//! - **Liveness** without filesystem I/O: each worker has a socketpair to the master and writes one
//!   byte every `timeout/4` (gunicorn's `utime` on a temp file can block on a busy disk, its FAQ). A
//!   worker silent for `--timeout` gets `SIGABRT`, then `SIGKILL` 1 s later, and is replaced. An async
//!   worker beats from its runtime, so a wedged runtime stops beating; a sync worker's monitor stops
//!   beating, and reports itself stuck, once one of its threads has been inside one request longer
//!   than `--timeout` (a blocked thread cannot be interrupted any other way). The **per-request deadline** (`--request-timeout`, 504) is separate
//!   and applies to async code.
//! - `--max-requests` (+ `--max-requests-jitter`, drawn by the master per worker) recycles a worker: it
//!   tells the master (which starts its replacement at once), stops accepting, drains, exits 0.
//! - A worker that dies unasked (panic, abort, `SIGKILL`, OOM) is replaced. Dying within 1 s of its
//!   start or before it reported ready counts as a *rapid* failure: replacements then back off
//!   exponentially (100 ms, 200 ms, … 10 s), and [`CRASH_LIMIT`] consecutive rapid failures are a crash
//!   loop: logged, the master stops with exit code [`EXIT_CRASH_LOOP`]. A worker exiting with
//!   [`EXIT_BOOT_ERROR`] (bad configuration, unusable descriptors) stops the master the same way, as
//!   gunicorn's `WORKER_BOOT_ERROR` does.
//! - Signals as gunicorn documents them: see [`signals`].
//! - Draining (HUP, TERM, recycling): a worker first accepts whatever is already queued on its
//!   listeners, then closes them; each open connection's next response carries `Connection: close`, an
//!   idle keep-alive connection gets up to [`DRAIN_LINGER`] to send one more request, and everything
//!   is bounded by `--graceful-timeout` (gunicorn #2529, #3394, #2296).
//! - Logs: see [`crate::accesslog`]; every process writes its own lines with one `write(2)` each and
//!   reopens on `USR1`.
//!
//! Exit codes of the master: 0 after a clean stop, 1 when it could not run, 2 for a usage or
//! configuration error, [`EXIT_CRASH_LOOP`] after a crash loop or a worker boot error.
//!
//! Protocols: HTTP with either worker kind; FastCGI, SCGI and uwsgi (`--protocol`) with async
//! workers. Every protocol answers through the same request pipeline, so the access log,
//! `--max-requests` and `--request-timeout` behave the same behind nginx's `fastcgi_pass`,
//! `scgi_pass` and `uwsgi_pass` as over HTTP.
//!
//! `--reload` (development): the master polls the program's file and any `--reload-extra-file` once a
//! second and, when one has changed and settled, reloads as on `HUP`; workers are executed from the
//! program's path, so the new generation runs the new file.
//!
//! Not supported: `WINCH`, daemonizing, `user`/`group`, a control socket; a reload re-reads the
//! configuration but keeps the listeners (changing `bind` needs a restart).

mod master;
mod reload;
pub mod signals;
mod spawn;
mod worker;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rgi::Application;

pub use self::signals::Signal;
use crate::report::Report;
use crate::settings::{LogLevel, Raw, Settings, SettingsError};

/// Exit code of the master after a crash loop or a worker boot error; also what a worker exits with
/// when it cannot boot (gunicorn's `WORKER_BOOT_ERROR`).
pub const EXIT_CRASH_LOOP: u8 = 3;
/// Exit code of a worker that cannot start (bad `RGI_WORKER`, descriptors, configuration).
pub const EXIT_BOOT_ERROR: i32 = 3;
/// Consecutive rapid worker failures that make a crash loop.
pub const CRASH_LIMIT: u32 = 5;
pub use crate::pipeline::control::DRAIN_LINGER;

/// The environment variable that marks a worker process (its value describes the inherited
/// descriptors). Internal; never set it by hand.
pub const WORKER_ENV: &str = "RGI_WORKER";
/// The environment variable with the listener descriptors a USR2-upgraded master inherits.
pub const UPGRADE_ENV: &str = "RGI_UPGRADE_FDS";

/// Raise this process's soft `RLIMIT_NOFILE` to its hard limit (workers do it at start, so one async
/// worker can hold tens of thousands of connections); returns `(soft, hard)`.
///
/// # Errors
///
/// As `getrlimit(2)`/`setrlimit(2)`.
pub fn raise_fd_limit() -> std::io::Result<(u64, u64)> {
    crate::fd::raise_nofile_limit()
}

/// What a hook learns about the worker it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The worker's number, unique within its master.
    pub id: u64,
    /// Its generation: 0 at start, +1 per `HUP`.
    pub generation: u64,
    /// Its process id.
    pub pid: u32,
}

type Hook = Arc<dyn Fn(&WorkerInfo) + Send + Sync>;

/// Application callbacks run inside every worker process (gunicorn's `post_worker_init` and
/// `worker_exit`), and the entry point that installs them.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     let app = rgi::app_fn(|_, start| async move {
///         Ok(start.respond(http::StatusCode::OK, Default::default(), "hi\n")?)
///     });
///     rgi_servers::arbiter::Hooks::new()
///         .on_worker_start(|w| eprintln!("worker {} up (generation {})", w.pid, w.generation))
///         .on_worker_exit(|w| eprintln!("worker {} down", w.pid))
///         .run(app)
/// }
/// ```
///
/// Hooks run only in arbiter workers (`-w`…); a single-process server runs none.
#[derive(Clone, Default)]
pub struct Hooks {
    start: Option<Hook>,
    exit: Option<Hook>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_worker_start", &self.start.is_some())
            .field("on_worker_exit", &self.exit.is_some())
            .finish()
    }
}

impl Hooks {
    /// No hooks.
    pub fn new() -> Self {
        Hooks::default()
    }

    /// Run `f` in each worker after its listeners are ready and before it reports ready.
    pub fn on_worker_start(mut self, f: impl Fn(&WorkerInfo) + Send + Sync + 'static) -> Self {
        self.start = Some(Arc::new(f));
        self
    }

    /// Run `f` in each worker after it stopped serving, before it exits (not on a quick stop, a
    /// kill or a crash).
    pub fn on_worker_exit(mut self, f: impl Fn(&WorkerInfo) + Send + Sync + 'static) -> Self {
        self.exit = Some(Arc::new(f));
        self
    }

    pub(crate) fn worker_started(&self, info: &WorkerInfo) {
        if let Some(f) = &self.start {
            f(info);
        }
    }

    pub(crate) fn worker_exiting(&self, info: &WorkerInfo) {
        if let Some(f) = &self.exit {
            f(info);
        }
    }
}

/// The launcher's hand-over: run as a worker (when [`WORKER_ENV`] is set) or as the master (when the
/// options ask for the process manager), or give `app` back for a single-process server.
pub(crate) fn take_over<A: Application>(
    app: A,
    args: &[OsString],
    hooks: &Hooks,
) -> Result<ExitCode, A> {
    if let Some(spec) = std::env::var_os(WORKER_ENV) {
        let raw = match Raw::parse(args) {
            Ok(raw) => raw,
            Err(e) => {
                say(format_args!("rgi: worker: {}", Report(&e)));
                return Ok(ExitCode::from(EXIT_BOOT_ERROR as u8));
            }
        };
        return Ok(worker::run(app, &raw, &spec.to_string_lossy(), hooks));
    }
    // A CGI request's command line is the query string, not options (RFC 3875 §4.4).
    if std::env::var_os("GATEWAY_INTERFACE").is_some() {
        return Err(app);
    }
    let raw = match Raw::parse(args) {
        Ok(raw) => raw,
        // The launcher reports the command line's errors (and prints --help) with the same parser.
        Err(_) => return Err(app),
    };
    if !raw.wants_arbiter() {
        return Err(app);
    }
    let settings = match raw.resolve() {
        Ok(s) => s,
        Err(e) => {
            say(format_args!("rgi: {}", Report(&e)));
            return Ok(ExitCode::from(2));
        }
    };
    if settings.check_config {
        let _ =
            std::io::Write::write_all(&mut std::io::stdout().lock(), settings.render().as_bytes());
        return Ok(ExitCode::SUCCESS);
    }
    drop(app); // The master never runs application code.
    Ok(master::run(raw, settings, args.to_vec()))
}

/// Write one line to standard error with a single `write(2)` (`eprintln!` writes piecewise, and
/// many processes share this stderr).
pub(crate) fn say(message: fmt::Arguments<'_>) {
    let line = format!("{message}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}

/// Why a master or a worker could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The settings are invalid.
    Settings(SettingsError),
    /// An internal environment variable ([`WORKER_ENV`], [`UPGRADE_ENV`]) is malformed.
    Environment {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// A listener cannot be bound.
    Listen {
        /// The address.
        bind: crate::bind::Bind,
        /// Why.
        source: std::io::Error,
    },
    /// An inherited descriptor (listener or heartbeat) cannot be adopted.
    Descriptor {
        /// Its number.
        fd: i32,
        /// Why.
        source: std::io::Error,
    },
    /// A log file cannot be opened.
    Log {
        /// The log.
        target: crate::accesslog::LogTarget,
        /// Why.
        source: std::io::Error,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Transparent: the settings error says what is wrong.
            StartError::Settings(e) => fmt::Display::fmt(e, f),
            StartError::Environment { variable, value } => {
                write!(f, "malformed {variable}={value:?}")
            }
            StartError::Listen { bind, .. } => write!(f, "cannot listen on {bind}"),
            StartError::Descriptor { fd, .. } => write!(f, "inherited descriptor {fd}"),
            StartError::Log { target, .. } => write!(f, "cannot open log {target}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Settings(e) => e.source(),
            StartError::Environment { .. } => None,
            StartError::Listen { source, .. }
            | StartError::Descriptor { source, .. }
            | StartError::Log { source, .. } => Some(source),
        }
    }
}

/// A worker's number within its master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerId(pub u64);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// It exited with this code.
    Code(i32),
    /// A signal (this number) killed it.
    Signaled(i32),
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitKind::Code(c) => write!(f, "exit code {c}"),
            ExitKind::Signaled(n) if *n == libc::SIGKILL => {
                f.write_str("killed by SIGKILL (perhaps out of memory?)")
            }
            ExitKind::Signaled(n) => write!(f, "killed by {}", signals::describe_signal(*n)),
        }
    }
}

/// The numbers the arbiter decides with; [`Policy::from_settings`] takes them from [`Settings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Workers to keep running.
    pub workers: usize,
    /// Heartbeat timeout; `None` = off.
    pub timeout: Option<Duration>,
    /// Time a worker told to stop gracefully gets; it is killed [`kill_grace`](Policy::kill_grace)
    /// later.
    pub graceful_timeout: Duration,
    /// Time a worker told to stop quickly gets before `SIGKILL`. Default 1 s.
    pub quick_timeout: Duration,
    /// Time between `SIGABRT` and `SIGKILL` for a worker that timed out, and past the graceful
    /// timeout for a draining one. Default 1 s.
    pub kill_grace: Duration,
    /// `--max-requests` (0 = never).
    pub max_requests: u64,
    /// `--max-requests-jitter`.
    pub max_requests_jitter: u64,
    /// A worker dying sooner than this after its start (or before it was ready) failed rapidly.
    /// Default 1 s.
    pub rapid_exit: Duration,
    /// First backoff after a rapid failure; doubles each time. Default 100 ms.
    pub backoff_base: Duration,
    /// Longest backoff. Default 10 s.
    pub backoff_max: Duration,
    /// Consecutive rapid failures that make a crash loop. Default [`CRASH_LIMIT`].
    pub crash_limit: u32,
}

impl Policy {
    /// The policy for `settings`, with the documented defaults for the rest.
    pub fn from_settings(settings: &Settings) -> Self {
        Policy {
            workers: settings.workers,
            timeout: settings.timeout,
            graceful_timeout: settings.graceful_timeout,
            quick_timeout: Duration::from_secs(1),
            kill_grace: Duration::from_secs(1),
            max_requests: settings.max_requests,
            max_requests_jitter: settings.max_requests_jitter,
            rapid_exit: Duration::from_secs(1),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            crash_limit: CRASH_LIMIT,
        }
    }
}

/// Something that happened, fed to [`Arbiter::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The master is up: start the first workers.
    Start,
    /// The master received a signal.
    Signal(Signal),
    /// A worker's heartbeat.
    Beat(WorkerId),
    /// A worker is serving (its listeners are attached and its start hook ran).
    Ready(WorkerId),
    /// A worker reached its request limit and is draining.
    Retiring(WorkerId),
    /// A sync worker reports a request stuck past `--timeout`: abort it now rather than a
    /// heartbeat period later.
    Stuck(WorkerId),
    /// A worker process could not be started.
    SpawnFailed(WorkerId),
    /// A worker process ended.
    Exited(WorkerId, ExitKind),
    /// Time passed (the master ticks every 100 ms).
    Tick,
}

/// A worker to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnPlan {
    /// Its number.
    pub id: WorkerId,
    /// Its generation.
    pub generation: u64,
    /// Requests before it recycles itself (0 = never), jitter included.
    pub max_requests: u64,
}

/// What the master must do, returned by [`Arbiter::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a worker process.
    Spawn(SpawnPlan),
    /// Send a signal to a worker.
    Signal(WorkerId, Signal),
    /// Reopen the master's own log files.
    ReopenLogs,
    /// Re-execute the master's binary, handing it the listeners (USR2).
    Upgrade,
    /// Close the master's listening sockets (a stop began).
    CloseListeners,
    /// Write a line to the error log.
    Log(LogLevel, String),
    /// Exit with this code.
    Exit(u8),
}

#[derive(Debug, Clone)]
struct Worker {
    generation: u64,
    pid: Option<u32>,
    spawned: Instant,
    ready: bool,
    last_beat: Instant,
    aborted: Option<Instant>,
    stop: Option<(Instant, Signal)>,
    killed: bool,
    retiring: bool,
}

impl Worker {
    fn serving(&self) -> bool {
        self.stop.is_none() && !self.retiring && self.aborted.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Stopping,
    Exited,
}

/// The master's decisions, as a state machine without I/O: feed it [`Event`]s with the current time,
/// carry out the [`Action`]s it returns.
///
/// ```
/// use std::time::{Duration, Instant};
/// use rgi_servers::arbiter::{Action, Arbiter, Event, ExitKind, Policy, Signal};
/// # let settings = rgi_servers::settings::Raw::parse(&["app".into(), "-w".into(), "2".into()])
/// #     .unwrap().resolve().unwrap();
/// let mut arbiter = Arbiter::new(Policy::from_settings(&settings), 1);
/// let t0 = Instant::now();
/// let spawned = arbiter.handle(Event::Start, t0);
/// assert_eq!(spawned.iter().filter(|a| matches!(a, Action::Spawn(_))).count(), 2);
/// let stop = arbiter.handle(Event::Signal(Signal::Term), t0);
/// assert!(stop.contains(&Action::CloseListeners));
/// ```
#[derive(Debug, Clone)]
pub struct Arbiter {
    policy: Policy,
    workers: BTreeMap<WorkerId, Worker>,
    next_id: u64,
    generation: u64,
    target: usize,
    phase: Phase,
    rapid_failures: u32,
    respawn_after: Option<Instant>,
    exit_code: u8,
    rng: u64,
}

impl Arbiter {
    /// An arbiter with no workers yet; `seed` drives the `--max-requests-jitter` draws.
    pub fn new(policy: Policy, seed: u64) -> Self {
        Arbiter {
            target: policy.workers,
            policy,
            workers: BTreeMap::new(),
            next_id: 1,
            generation: 0,
            phase: Phase::Running,
            rapid_failures: 0,
            respawn_after: None,
            exit_code: 0,
            rng: seed | 1,
        }
    }

    /// Replace the policy (after a reload re-read the configuration); the worker count follows it.
    pub fn set_policy(&mut self, policy: Policy) {
        self.target = policy.workers;
        self.policy = policy;
    }

    /// Record the process id of a spawned worker (for log lines).
    pub fn set_pid(&mut self, id: WorkerId, pid: u32) {
        if let Some(w) = self.workers.get_mut(&id) {
            w.pid = Some(pid);
        }
    }

    /// Workers currently alive (started and not yet reaped).
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// The worker count the arbiter maintains (changed by TTIN/TTOU).
    pub fn target(&self) -> usize {
        self.target
    }

    /// The current generation (0, +1 per HUP).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether a stop has begun.
    pub fn is_stopping(&self) -> bool {
        self.phase != Phase::Running
    }

    fn name(&self, id: WorkerId) -> String {
        match self.workers.get(&id).and_then(|w| w.pid) {
            Some(pid) => format!("worker {id} (pid {pid})"),
            None => format!("worker {id}"),
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64: enough to spread recycling; not for secrets.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// React to `event` at time `now`.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase == Phase::Exited {
            return out;
        }
        match event {
            Event::Start | Event::Tick => {}
            Event::Signal(signal) => self.on_signal(signal, now, &mut out),
            Event::Beat(id) => {
                if let Some(w) = self.workers.get_mut(&id) {
                    w.last_beat = now;
                }
            }
            Event::Ready(id) => {
                if let Some(w) = self.workers.get_mut(&id) {
                    w.ready = true;
                    w.last_beat = now;
                    let generation = w.generation;
                    let msg = format!("{} ready (generation {generation})", self.name(id));
                    out.push(Action::Log(LogLevel::Info, msg));
                }
            }
            Event::Retiring(id) => {
                if let Some(w) = self.workers.get_mut(&id) {
                    w.retiring = true;
                    let msg = format!("{} reached --max-requests; recycling", self.name(id));
                    out.push(Action::Log(LogLevel::Info, msg));
                }
            }
            Event::Stuck(id) => {
                let name = self.name(id);
                if let Some(w) = self.workers.get_mut(&id) {
                    if w.stop.is_none() && w.aborted.is_none() && !w.killed {
                        w.aborted = Some(now);
                        out.push(Action::Signal(id, Signal::Abrt));
                        out.push(Action::Log(
                            LogLevel::Error,
                            format!("{name} has a request stuck past --timeout; aborting it"),
                        ));
                    }
                }
            }
            Event::SpawnFailed(id) => {
                if let Some(w) = self.workers.get_mut(&id) {
                    w.ready = false;
                }
                self.on_exit(id, ExitKind::Code(EXIT_BOOT_ERROR + 100), now, &mut out);
            }
            Event::Exited(id, kind) => self.on_exit(id, kind, now, &mut out),
        }
        self.supervise(now, &mut out);
        out
    }

    fn stop_worker(&mut self, id: WorkerId, signal: Signal, now: Instant, out: &mut Vec<Action>) {
        if let Some(w) = self.workers.get_mut(&id) {
            let escalate = matches!(w.stop, Some((_, Signal::Term))) && signal != Signal::Term;
            if w.stop.is_none() || escalate {
                w.stop = Some((now, signal));
                out.push(Action::Signal(id, signal));
            }
        }
    }

    fn on_signal(&mut self, signal: Signal, now: Instant, out: &mut Vec<Action>) {
        match signal {
            Signal::Hup if self.phase == Phase::Running => {
                self.generation += 1;
                out.push(Action::Log(
                    LogLevel::Info,
                    format!(
                        "SIGHUP: reloading; starting generation {} ({} workers)",
                        self.generation, self.target
                    ),
                ));
            }
            Signal::Term if self.phase == Phase::Running => {
                self.phase = Phase::Stopping;
                out.push(Action::Log(
                    LogLevel::Info,
                    "SIGTERM: stopping gracefully".into(),
                ));
                out.push(Action::CloseListeners);
                let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
                for id in ids {
                    self.stop_worker(id, Signal::Term, now, out);
                }
            }
            Signal::Int | Signal::Quit => {
                if self.phase == Phase::Running {
                    out.push(Action::CloseListeners);
                }
                self.phase = Phase::Stopping;
                out.push(Action::Log(
                    LogLevel::Info,
                    format!("{signal}: stopping quickly"),
                ));
                let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
                for id in ids {
                    self.stop_worker(id, Signal::Quit, now, out);
                }
            }
            Signal::Usr1 => {
                out.push(Action::Log(
                    LogLevel::Info,
                    "SIGUSR1: reopening logs".into(),
                ));
                out.push(Action::ReopenLogs);
                for &id in self.workers.keys() {
                    out.push(Action::Signal(id, Signal::Usr1));
                }
            }
            Signal::Usr2 if self.phase == Phase::Running => {
                out.push(Action::Log(
                    LogLevel::Info,
                    "SIGUSR2: starting a new master (binary upgrade)".into(),
                ));
                out.push(Action::Upgrade);
            }
            Signal::Ttin if self.phase == Phase::Running => {
                self.target = (self.target + 1).min(1024);
                out.push(Action::Log(
                    LogLevel::Info,
                    format!("SIGTTIN: {} workers", self.target),
                ));
            }
            Signal::Ttou if self.phase == Phase::Running => {
                if self.target > 1 {
                    self.target -= 1;
                    let generation = self.generation;
                    let oldest = self
                        .workers
                        .iter()
                        .find(|(_, w)| w.generation == generation && w.serving())
                        .map(|(id, _)| *id);
                    if let Some(id) = oldest {
                        self.stop_worker(id, Signal::Term, now, out);
                    }
                }
                out.push(Action::Log(
                    LogLevel::Info,
                    format!("SIGTTOU: {} workers", self.target),
                ));
            }
            _ => {}
        }
    }

    fn on_exit(&mut self, id: WorkerId, kind: ExitKind, now: Instant, out: &mut Vec<Action>) {
        let name = self.name(id);
        let Some(w) = self.workers.remove(&id) else {
            return;
        };
        let asked = w.stop.is_some() || (w.retiring && kind == ExitKind::Code(0));
        if asked {
            out.push(Action::Log(
                LogLevel::Info,
                format!("{name} exited ({kind})"),
            ));
            return;
        }
        if self.phase != Phase::Running {
            out.push(Action::Log(
                LogLevel::Info,
                format!("{name} exited ({kind})"),
            ));
            return;
        }
        if kind == ExitKind::Code(EXIT_BOOT_ERROR) {
            out.push(Action::Log(
                LogLevel::Critical,
                format!("{name} could not boot ({kind}); stopping"),
            ));
            self.halt(now, out);
            return;
        }
        let why = if w.aborted.is_some() {
            "after missing its heartbeat".to_owned()
        } else {
            format!("unexpectedly ({kind})")
        };
        let rapid = !w.ready || now.saturating_duration_since(w.spawned) < self.policy.rapid_exit;
        if !rapid {
            self.rapid_failures = 0;
            self.respawn_after = None;
            out.push(Action::Log(
                LogLevel::Warning,
                format!("{name} exited {why}; replacing it"),
            ));
            return;
        }
        self.rapid_failures += 1;
        if self.rapid_failures >= self.policy.crash_limit {
            out.push(Action::Log(
                LogLevel::Critical,
                format!(
                    "crash loop: {} workers in a row died within {:?} of starting (last: {name}, {kind}); stopping",
                    self.rapid_failures, self.policy.rapid_exit
                ),
            ));
            self.halt(now, out);
            return;
        }
        let shift = (self.rapid_failures - 1).min(20);
        let backoff = self
            .policy
            .backoff_base
            .saturating_mul(1 << shift)
            .min(self.policy.backoff_max);
        self.respawn_after = Some(now + backoff);
        out.push(Action::Log(
            LogLevel::Warning,
            format!(
                "{name} exited {why} soon after starting; next worker in {backoff:?} ({} of {} rapid failures)",
                self.rapid_failures, self.policy.crash_limit
            ),
        ));
    }

    fn halt(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.exit_code = EXIT_CRASH_LOOP;
        if self.phase == Phase::Running {
            out.push(Action::CloseListeners);
        }
        self.phase = Phase::Stopping;
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            self.stop_worker(id, Signal::Quit, now, out);
        }
    }

    fn supervise(&mut self, now: Instant, out: &mut Vec<Action>) {
        // Stopping workers that overstay, and silent workers.
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            let name = self.name(id);
            let policy = &self.policy;
            let Some(w) = self.workers.get_mut(&id) else {
                continue;
            };
            if w.killed {
                continue;
            }
            if let Some((since, signal)) = w.stop {
                // A draining worker bounds itself by the graceful timeout; the master kills only
                // one grace period later, so a worker finishing on time is never killed.
                let allowed = if signal == Signal::Term {
                    policy.graceful_timeout + policy.kill_grace
                } else {
                    policy.quick_timeout
                };
                if now.saturating_duration_since(since) >= allowed {
                    w.killed = true;
                    out.push(Action::Signal(id, Signal::Kill));
                    out.push(Action::Log(
                        LogLevel::Warning,
                        format!("{name} still running {allowed:?} after {signal}; killing it"),
                    ));
                }
                continue;
            }
            let Some(timeout) = policy.timeout else {
                continue;
            };
            match w.aborted {
                None if now.saturating_duration_since(w.last_beat) >= timeout => {
                    w.aborted = Some(now);
                    out.push(Action::Signal(id, Signal::Abrt));
                    out.push(Action::Log(
                        LogLevel::Error,
                        format!("{name} timed out (no heartbeat for {timeout:?}); aborting it"),
                    ));
                }
                Some(at) if now.saturating_duration_since(at) >= policy.kill_grace => {
                    w.killed = true;
                    out.push(Action::Signal(id, Signal::Kill));
                    out.push(Action::Log(
                        LogLevel::Error,
                        format!("{name} survived SIGABRT; killing it"),
                    ));
                }
                _ => {}
            }
        }

        if self.phase == Phase::Stopping {
            if self.workers.is_empty() {
                self.phase = Phase::Exited;
                out.push(Action::Log(
                    LogLevel::Info,
                    "all workers stopped; exiting".into(),
                ));
                out.push(Action::Exit(self.exit_code));
            }
            return;
        }

        // A worker that has served past the rapid-exit window ends a run of rapid failures.
        if self.rapid_failures > 0
            && self.workers.values().any(|w| {
                w.ready && now.saturating_duration_since(w.spawned) >= self.policy.rapid_exit
            })
        {
            self.rapid_failures = 0;
        }

        // Keep `target` workers of the current generation serving.
        if self.respawn_after.is_none_or(|t| now >= t) {
            self.respawn_after = None;
            let generation = self.generation;
            let serving = self
                .workers
                .values()
                .filter(|w| w.generation == generation && w.serving())
                .count();
            for _ in serving..self.target {
                let id = WorkerId(self.next_id);
                self.next_id += 1;
                let jitter = match self.policy.max_requests_jitter {
                    0 => 0,
                    j => self.random() % (j + 1),
                };
                let max_requests = match self.policy.max_requests {
                    0 => 0,
                    m => m + jitter,
                };
                self.workers.insert(
                    id,
                    Worker {
                        generation,
                        pid: None,
                        spawned: now,
                        ready: false,
                        last_beat: now,
                        aborted: None,
                        stop: None,
                        killed: false,
                        retiring: false,
                    },
                );
                out.push(Action::Spawn(SpawnPlan {
                    id,
                    generation,
                    max_requests,
                }));
                // After a rapid failure, one worker at a time.
                if self.rapid_failures > 0 {
                    break;
                }
            }
        }

        // A reload completes when the whole new generation is ready: only then do the old workers
        // stop accepting.
        let generation = self.generation;
        let ready = self
            .workers
            .values()
            .filter(|w| w.generation == generation && w.serving() && w.ready)
            .count();
        if ready >= self.target {
            let old: Vec<WorkerId> = self
                .workers
                .iter()
                .filter(|(_, w)| w.generation < generation && w.stop.is_none())
                .map(|(id, _)| *id)
                .collect();
            for id in old {
                self.stop_worker(id, Signal::Term, now, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(workers: usize) -> Policy {
        Policy {
            workers,
            timeout: Some(Duration::from_secs(10)),
            graceful_timeout: Duration::from_secs(5),
            quick_timeout: Duration::from_secs(1),
            kill_grace: Duration::from_secs(1),
            max_requests: 0,
            max_requests_jitter: 0,
            rapid_exit: Duration::from_secs(1),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            crash_limit: 5,
        }
    }

    fn spawns(actions: &[Action]) -> Vec<SpawnPlan> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Spawn(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    fn signals(actions: &[Action]) -> Vec<(WorkerId, Signal)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Signal(id, s) => Some((*id, *s)),
                _ => None,
            })
            .collect()
    }

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    fn started(n: usize) -> (Arbiter, Instant, Vec<WorkerId>) {
        let mut a = Arbiter::new(policy(n), 7);
        let t0 = Instant::now();
        let ids: Vec<WorkerId> = spawns(&a.handle(Event::Start, t0))
            .iter()
            .map(|p| p.id)
            .collect();
        for &id in &ids {
            a.handle(Event::Ready(id), t0);
        }
        (a, t0, ids)
    }

    #[test]
    fn start_spawns_the_configured_workers_once() {
        let (mut a, t0, ids) = started(3);
        assert_eq!(ids.len(), 3);
        assert!(spawns(&a.handle(Event::Tick, secs(t0, 0.1))).is_empty());
    }

    #[test]
    fn hup_starts_a_new_generation_and_stops_the_old_only_when_it_is_ready() {
        let (mut a, t0, old) = started(2);
        let out = a.handle(Event::Signal(Signal::Hup), secs(t0, 5.0));
        let new: Vec<SpawnPlan> = spawns(&out);
        assert_eq!(new.len(), 2);
        assert!(new.iter().all(|p| p.generation == 1));
        assert!(signals(&out).is_empty(), "old workers keep serving");
        let out = a.handle(Event::Ready(new[0].id), secs(t0, 5.2));
        assert!(
            signals(&out).is_empty(),
            "half the new generation is not enough"
        );
        let out = a.handle(Event::Ready(new[1].id), secs(t0, 5.3));
        assert_eq!(
            signals(&out),
            vec![(old[0], Signal::Term), (old[1], Signal::Term)]
        );
        // Old workers exiting as asked are not replaced.
        for id in old {
            let out = a.handle(Event::Exited(id, ExitKind::Code(0)), secs(t0, 6.0));
            assert!(spawns(&out).is_empty());
        }
        assert_eq!(a.worker_count(), 2);
    }

    #[test]
    fn a_silent_worker_is_aborted_then_killed_and_replaced() {
        let (mut a, t0, ids) = started(1);
        assert!(signals(&a.handle(Event::Tick, secs(t0, 9.9))).is_empty());
        let out = a.handle(Event::Tick, secs(t0, 10.0));
        assert_eq!(signals(&out), vec![(ids[0], Signal::Abrt)]);
        let out = a.handle(Event::Tick, secs(t0, 10.5));
        assert!(signals(&out).is_empty());
        // Replacement starts as soon as the silent worker stops counting as serving.
        assert_eq!(spawns(&out).len(), 0);
        let out = a.handle(Event::Tick, secs(t0, 11.0));
        assert_eq!(signals(&out), vec![(ids[0], Signal::Kill)]);
        let out = a.handle(
            Event::Exited(ids[0], ExitKind::Signaled(libc::SIGKILL)),
            secs(t0, 11.1),
        );
        assert_eq!(spawns(&out).len(), 0, "spawned already at abort time");
        assert_eq!(a.worker_count(), 1);
    }

    #[test]
    fn a_stuck_report_aborts_at_once() {
        let (mut a, t0, ids) = started(1);
        let out = a.handle(Event::Stuck(ids[0]), secs(t0, 3.0));
        assert_eq!(signals(&out), vec![(ids[0], Signal::Abrt)]);
        assert_eq!(spawns(&out).len(), 1, "its replacement starts at once");
        let out = a.handle(Event::Stuck(ids[0]), secs(t0, 3.5));
        assert!(signals(&out).is_empty());
        let out = a.handle(Event::Tick, secs(t0, 4.0));
        assert_eq!(signals(&out), vec![(ids[0], Signal::Kill)]);
    }

    #[test]
    fn beats_keep_a_worker_alive() {
        let (mut a, t0, ids) = started(1);
        for i in 1..40 {
            let out = a.handle(Event::Beat(ids[0]), secs(t0, f64::from(i) * 2.5));
            assert!(signals(&out).is_empty());
        }
    }

    #[test]
    fn a_healthy_worker_killed_by_sigkill_is_replaced_at_once() {
        let (mut a, t0, ids) = started(2);
        let out = a.handle(
            Event::Exited(ids[0], ExitKind::Signaled(libc::SIGKILL)),
            secs(t0, 5.0),
        );
        assert_eq!(spawns(&out).len(), 1);
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Log(_, m) if m.contains("out of memory"))));
    }

    #[test]
    fn rapid_failures_back_off_exponentially_then_stop_the_master() {
        let mut a = Arbiter::new(policy(1), 7);
        let t0 = Instant::now();
        let mut plan = spawns(&a.handle(Event::Start, t0))[0];
        let mut now = 0.0;
        let mut waits = Vec::new();
        for failure in 1..=5 {
            let out = a.handle(Event::Exited(plan.id, ExitKind::Code(101)), secs(t0, now));
            if failure == 5 {
                assert!(out.contains(&Action::Exit(EXIT_CRASH_LOOP)), "{out:?}");
                assert!(out.iter().any(
                    |a| matches!(a, Action::Log(LogLevel::Critical, m) if m.contains("crash loop"))
                ));
                break;
            }
            assert!(spawns(&out).is_empty(), "no respawn before the backoff");
            // Find when the replacement comes.
            let mut waited = 0.0;
            loop {
                waited += 0.05;
                let out = a.handle(Event::Tick, secs(t0, now + waited));
                if let Some(p) = spawns(&out).first() {
                    plan = *p;
                    break;
                }
                assert!(waited < 20.0);
            }
            waits.push((waited * 10.0_f64).round() / 10.0);
            now += waited + 0.01;
        }
        assert_eq!(waits, vec![0.1, 0.2, 0.4, 0.8]);
    }

    #[test]
    fn a_boot_error_stops_the_master() {
        let mut a = Arbiter::new(policy(2), 7);
        let t0 = Instant::now();
        let plans = spawns(&a.handle(Event::Start, t0));
        let out = a.handle(
            Event::Exited(plans[0].id, ExitKind::Code(EXIT_BOOT_ERROR)),
            t0,
        );
        assert_eq!(signals(&out), vec![(plans[1].id, Signal::Quit)]);
        let out = a.handle(Event::Exited(plans[1].id, ExitKind::Code(0)), t0);
        assert!(out.contains(&Action::Exit(EXIT_CRASH_LOOP)));
    }

    #[test]
    fn term_stops_gracefully_and_kills_stragglers_after_the_graceful_timeout() {
        let (mut a, t0, ids) = started(2);
        let out = a.handle(Event::Signal(Signal::Term), secs(t0, 1.0));
        assert!(out.contains(&Action::CloseListeners));
        assert_eq!(
            signals(&out),
            vec![(ids[0], Signal::Term), (ids[1], Signal::Term)]
        );
        let out = a.handle(Event::Exited(ids[0], ExitKind::Code(0)), secs(t0, 2.0));
        assert!(spawns(&out).is_empty(), "no replacements while stopping");
        let out = a.handle(Event::Tick, secs(t0, 6.5));
        assert!(
            signals(&out).is_empty(),
            "the graceful timeout plus a grace period"
        );
        let out = a.handle(Event::Tick, secs(t0, 7.0));
        assert_eq!(signals(&out), vec![(ids[1], Signal::Kill)]);
        let out = a.handle(
            Event::Exited(ids[1], ExitKind::Signaled(libc::SIGKILL)),
            secs(t0, 7.1),
        );
        assert!(out.contains(&Action::Exit(0)));
        assert!(a.handle(Event::Tick, secs(t0, 7.0)).is_empty());
    }

    #[test]
    fn quit_escalates_a_graceful_stop() {
        let (mut a, t0, ids) = started(1);
        a.handle(Event::Signal(Signal::Term), t0);
        let out = a.handle(Event::Signal(Signal::Quit), t0);
        assert_eq!(signals(&out), vec![(ids[0], Signal::Quit)]);
        let out = a.handle(Event::Tick, secs(t0, 1.0));
        assert_eq!(signals(&out), vec![(ids[0], Signal::Kill)]);
    }

    #[test]
    fn ttin_and_ttou_change_the_worker_count() {
        let (mut a, t0, ids) = started(2);
        let out = a.handle(Event::Signal(Signal::Ttin), t0);
        assert_eq!(spawns(&out).len(), 1);
        assert_eq!(a.target(), 3);
        let out = a.handle(Event::Signal(Signal::Ttou), t0);
        assert_eq!(signals(&out), vec![(ids[0], Signal::Term)]);
        assert_eq!(a.target(), 2);
        assert!(spawns(&out).is_empty());
    }

    #[test]
    fn usr1_reopens_logs_everywhere_and_usr2_upgrades() {
        let (mut a, t0, ids) = started(2);
        let out = a.handle(Event::Signal(Signal::Usr1), t0);
        assert!(out.contains(&Action::ReopenLogs));
        assert_eq!(
            signals(&out),
            vec![(ids[0], Signal::Usr1), (ids[1], Signal::Usr1)]
        );
        let out = a.handle(Event::Signal(Signal::Usr2), t0);
        assert!(out.contains(&Action::Upgrade));
        assert!(signals(&out).is_empty(), "the old master keeps its workers");
    }

    #[test]
    fn a_retiring_worker_is_replaced_before_it_exits() {
        let mut p = policy(1);
        p.max_requests = 100;
        p.max_requests_jitter = 10;
        let mut a = Arbiter::new(p, 99);
        let t0 = Instant::now();
        let plan = spawns(&a.handle(Event::Start, t0))[0];
        assert!((100..=110).contains(&plan.max_requests));
        a.handle(Event::Ready(plan.id), t0);
        let out = a.handle(Event::Retiring(plan.id), secs(t0, 5.0));
        assert_eq!(spawns(&out).len(), 1);
        let out = a.handle(Event::Exited(plan.id, ExitKind::Code(0)), secs(t0, 6.0));
        assert!(spawns(&out).is_empty());
        assert!(!out
            .iter()
            .any(|a| matches!(a, Action::Log(LogLevel::Warning, _))));
    }

    #[test]
    fn repeated_hups_retire_every_older_generation() {
        let (mut a, t0, _) = started(1);
        let g1 = spawns(&a.handle(Event::Signal(Signal::Hup), t0))[0];
        let g2 = spawns(&a.handle(Event::Signal(Signal::Hup), t0))[0];
        let out = a.handle(Event::Ready(g2.id), t0);
        let stopped: Vec<WorkerId> = signals(&out).iter().map(|(id, _)| *id).collect();
        assert_eq!(stopped.len(), 2);
        assert!(stopped.contains(&g1.id));
    }
}
