//! The master process: binds the listeners, then runs a tokio current-thread loop that turns
//! signals, heartbeat bytes, reaped children and a 100 ms tick into [`Event`]s for the [`Arbiter`],
//! and carries out its [`Action`]s. No application code runs here.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::reload::Watcher;
use super::{
    say, spawn, Action, Arbiter, Event, ExitKind, Policy, Signal, StartError, WorkerId, UPGRADE_ENV,
};
use crate::accesslog::{ErrorLog, LogFile};
use crate::bind::{Bind, StdListener};
use crate::report::Report;
use crate::settings::{LogLevel, Raw, Settings};

const TICK: Duration = Duration::from_millis(100);

enum Msg {
    Signal(Signal),
    Byte(WorkerId, u8),
}

struct Master {
    raw: Raw,
    settings: Settings,
    args: Vec<OsString>,
    exe: PathBuf,
    listeners: Vec<StdListener>,
    unix_paths: Vec<PathBuf>,
    children: HashMap<WorkerId, Child>,
    successor: Option<Child>,
    log: Arc<ErrorLog>,
    tx: mpsc::UnboundedSender<Msg>,
    pidfile: Option<PathBuf>,
    /// For an upgraded master: the old master's pid, until it exits and this one is promoted.
    predecessor: Option<u32>,
    /// `--reload`: the files whose change reloads the workers.
    watcher: Option<Watcher>,
}

/// Where the listeners came from.
enum Origin {
    /// Bound here from `--bind`.
    Bound,
    /// Handed over by the previous master (USR2); its pid.
    Upgrade(Option<u32>),
    /// systemd socket activation (`LISTEN_FDS`, `LISTEN_PID`).
    Systemd,
}

fn adopt_all(
    fds: impl Iterator<Item = i32>,
    settings: &Settings,
) -> Result<Vec<StdListener>, StartError> {
    fds.map(|fd| {
        Bind::Fd(fd)
            .listen(settings.bind_options)
            .map_err(|source| StartError::Descriptor { fd, source })
    })
    .collect()
}

/// The listeners: inherited from a previous master (USR2), from systemd (`LISTEN_FDS` descriptors
/// from 3 on, when `LISTEN_PID` is this process; `--bind` is then ignored), or bound from `--bind`.
fn bind_all(settings: &Settings) -> Result<(Vec<StdListener>, Origin), StartError> {
    if let Some(fds) = std::env::var_os(UPGRADE_ENV) {
        let predecessor = std::env::var("RGI_MASTER_PID")
            .ok()
            .and_then(|p| p.parse().ok());
        let fds = fds.to_string_lossy().into_owned();
        let numbers = fds
            .split(',')
            .map(|fd| fd.parse::<i32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| StartError::Environment {
                variable: UPGRADE_ENV,
                value: fds.clone(),
            })?;
        let listeners = adopt_all(numbers.into_iter(), settings)?;
        return Ok((listeners, Origin::Upgrade(predecessor)));
    }
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if let (true, Some(count)) = (
        for_us,
        std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|n| n.parse::<i32>().ok()),
    ) {
        if count > 0 {
            let listeners = adopt_all(3..3 + count, settings)?;
            return Ok((listeners, Origin::Systemd));
        }
    }
    let listeners = settings
        .binds
        .iter()
        .map(|bind| {
            bind.listen(settings.bind_options)
                .map_err(|source| StartError::Listen {
                    bind: bind.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((listeners, Origin::Bound))
}

fn write_pidfile(path: &Path) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
    std::fs::rename(&tmp, path)
}

fn upgrade_pidfile(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".2");
    PathBuf::from(name)
}

/// Run the master until it stops; returns its exit code.
pub(super) fn run(raw: Raw, settings: Settings, args: Vec<OsString>) -> ExitCode {
    let log = match LogFile::open(settings.error_log.clone()) {
        Ok(f) => Arc::new(ErrorLog::new(f, settings.log_level)),
        Err(e) => {
            say(format_args!("rgi: error log {}: {e}", settings.error_log));
            return ExitCode::from(2);
        }
    };
    // Resolved once, at start: after a binary upgrade replaces the file, USR2 runs the new one.
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            log.log(
                LogLevel::Critical,
                format!("cannot find this program's path: {e}"),
            );
            return ExitCode::from(1);
        }
    };
    let (listeners, origin) = match bind_all(&settings) {
        Ok(l) => l,
        Err(e) => {
            // One line with the cause ("Address already in use"), and only once on stderr when the
            // error log is stderr too.
            log.log(LogLevel::Critical, Report(&e));
            if settings.error_log != crate::accesslog::LogTarget::Stderr {
                say(format_args!("rgi: {}", Report(&e)));
            }
            return ExitCode::from(2);
        }
    };
    {
        let mut out = io::stdout().lock();
        for listener in &listeners {
            let _ = writeln!(
                out,
                "rgi: listening on {}://{} (pid {})",
                settings.protocol.listener_scheme(&settings.server),
                listener.describe(),
                std::process::id()
            );
        }
        let _ = out.flush();
    }
    let predecessor = match origin {
        Origin::Upgrade(pid) => pid,
        _ => None,
    };
    let upgraded = matches!(origin, Origin::Upgrade(_));
    let unix_paths = if !matches!(origin, Origin::Bound) {
        Vec::new()
    } else {
        settings
            .binds
            .iter()
            .filter_map(|b| match b {
                Bind::Unix(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    };
    let pidfile = settings.pidfile.as_ref().map(|p| {
        if upgraded {
            upgrade_pidfile(p)
        } else {
            p.clone()
        }
    });
    if let Some(path) = &pidfile {
        if let Err(e) = write_pidfile(path) {
            log.log(
                LogLevel::Critical,
                format!("pid file {}: {e}", path.display()),
            );
            return ExitCode::from(2);
        }
    }
    log.log(
        LogLevel::Info,
        format!(
            "master {} starting {} {} workers{}",
            std::process::id(),
            settings.workers,
            settings.worker_class.as_str(),
            if upgraded { " (binary upgrade)" } else { "" }
        ),
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log.log(LogLevel::Critical, format!("cannot start the runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    // The program's own file first: workers are executed from this path, so a new file there is
    // what the next generation runs.
    let watcher = settings.reload.then(|| {
        let files = std::iter::once(exe.clone()).chain(settings.reload_extra_files.clone());
        let watcher = Watcher::new(files, Instant::now());
        let paths: Vec<String> = watcher.paths().map(|p| p.display().to_string()).collect();
        log.log(
            LogLevel::Info,
            format!("--reload: watching {}", paths.join(", ")),
        );
        watcher
    });
    let code = runtime.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut master = Master {
            raw,
            settings,
            args,
            exe,
            listeners,
            unix_paths,
            children: HashMap::new(),
            successor: None,
            log,
            tx,
            pidfile,
            predecessor,
            watcher,
        };
        let code = master.main_loop(rx).await;
        master.cleanup();
        code
    });
    runtime.shutdown_background();
    ExitCode::from(code)
}

impl Master {
    async fn main_loop(&mut self, mut rx: mpsc::UnboundedReceiver<Msg>) -> u8 {
        let mut signals = match super::signals::listen(&Signal::MASTER) {
            Ok(s) => s,
            Err(e) => {
                self.log.log(
                    LogLevel::Critical,
                    format!("cannot install signal handlers: {e}"),
                );
                return 1;
            }
        };
        let seed = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        let mut arbiter = Arbiter::new(Policy::from_settings(&self.settings), seed);
        let mut ticker = tokio::time::interval(TICK);
        let mut queue = vec![Event::Start];
        loop {
            while let Some(event) = queue.pop() {
                if let Event::Signal(Signal::Hup) = event {
                    if !self.reload_settings(&mut arbiter) {
                        continue;
                    }
                }
                let actions = arbiter.handle(event, Instant::now());
                for action in actions {
                    if let Some(code) = self.execute(action, &mut arbiter, &mut queue) {
                        return code;
                    }
                }
            }
            let msg = tokio::select! {
                signal = signals.recv() => signal.map(Msg::Signal),
                msg = rx.recv() => msg,
                _ = ticker.tick() => None,
            };
            match msg {
                Some(Msg::Signal(Signal::Chld)) | None => {}
                Some(Msg::Signal(signal)) => queue.push(Event::Signal(signal)),
                Some(Msg::Byte(id, b'R')) => queue.push(Event::Ready(id)),
                Some(Msg::Byte(id, b'M')) => queue.push(Event::Retiring(id)),
                Some(Msg::Byte(id, b'S')) => queue.push(Event::Stuck(id)),
                Some(Msg::Byte(id, _)) => queue.push(Event::Beat(id)),
            }
            self.reap(&mut queue);
            self.check_promotion();
            self.check_files(&mut queue);
            queue.push(Event::Tick);
            // Handle in arrival order.
            queue.reverse();
        }
    }

    /// `--reload`: a watched file changed, so reload as `HUP` does.
    fn check_files(&mut self, queue: &mut Vec<Event>) {
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        let changed = watcher.poll(Instant::now());
        if changed.is_empty() {
            return;
        }
        let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
        self.log.log(
            LogLevel::Info,
            format!("--reload: {} changed; reloading", names.join(", ")),
        );
        queue.push(Event::Signal(Signal::Hup));
    }

    /// Re-read the configuration for a reload; `false` aborts the reload (an invalid file must not
    /// replace healthy workers with ones that cannot boot).
    fn reload_settings(&mut self, arbiter: &mut Arbiter) -> bool {
        match self.raw.resolve() {
            Ok(settings) => {
                self.log.set_level(settings.log_level);
                arbiter.set_policy(Policy::from_settings(&settings));
                self.settings = settings;
                true
            }
            Err(e) => {
                self.log.log(
                    LogLevel::Error,
                    format!(
                        "SIGHUP: configuration is invalid, not reloading: {}",
                        Report(&e)
                    ),
                );
                false
            }
        }
    }

    fn execute(
        &mut self,
        action: Action,
        arbiter: &mut Arbiter,
        queue: &mut Vec<Event>,
    ) -> Option<u8> {
        match action {
            Action::Spawn(plan) => {
                match spawn::spawn_worker(&self.exe, &self.args, &self.listeners, &plan) {
                    Ok((child, heartbeat)) => {
                        arbiter.set_pid(plan.id, child.id());
                        self.log.log(
                            LogLevel::Info,
                            format!(
                                "booting worker {} (pid {}, generation {})",
                                plan.id,
                                child.id(),
                                plan.generation
                            ),
                        );
                        self.children.insert(plan.id, child);
                        self.watch_heartbeat(plan.id, heartbeat);
                    }
                    Err(e) => {
                        self.log.log(
                            LogLevel::Error,
                            format!("cannot start worker {}: {e}", plan.id),
                        );
                        queue.push(Event::SpawnFailed(plan.id));
                    }
                }
            }
            Action::Signal(id, signal) => {
                if let Some(child) = self.children.get(&id) {
                    let _ = super::signals::send(child.id(), signal);
                }
            }
            Action::ReopenLogs => {
                if let Err(e) = self.log.reopen() {
                    self.log
                        .log(LogLevel::Error, format!("cannot reopen the error log: {e}"));
                }
            }
            Action::Upgrade => self.upgrade(),
            Action::CloseListeners => self.listeners.clear(),
            Action::Log(level, message) => self.log.log(level, message),
            Action::Exit(code) => return Some(code),
        }
        None
    }

    fn watch_heartbeat(&self, id: WorkerId, stream: UnixStream) {
        let tx = self.tx.clone();
        let Ok(mut stream) = tokio::net::UnixStream::from_std(stream) else {
            return;
        };
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        // Several beats in one read count once; R and M always get through.
                        let mut beat = false;
                        for &b in &buf[..n] {
                            if b == b'.' {
                                beat = true;
                            } else if tx.send(Msg::Byte(id, b)).is_err() {
                                return;
                            }
                        }
                        if beat && tx.send(Msg::Byte(id, b'.')).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }

    fn reap(&mut self, queue: &mut Vec<Event>) {
        let mut exited = Vec::new();
        for (id, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                let kind = match (status.code(), status.signal()) {
                    (Some(code), _) => ExitKind::Code(code),
                    (None, Some(sig)) => ExitKind::Signaled(sig),
                    (None, None) => ExitKind::Code(-1),
                };
                exited.push((*id, kind));
            }
        }
        for (id, kind) in exited {
            self.children.remove(&id);
            queue.push(Event::Exited(id, kind));
        }
        if let Some(child) = &mut self.successor {
            if let Ok(Some(status)) = child.try_wait() {
                self.log.log(
                    LogLevel::Error,
                    format!("the upgraded master {} exited ({status})", child.id()),
                );
                self.successor = None;
            }
        }
    }

    fn upgrade(&mut self) {
        if self.successor.is_some() {
            self.log.log(
                LogLevel::Warning,
                "SIGUSR2: an upgraded master is already running",
            );
            return;
        }
        if self.listeners.is_empty() {
            self.log.log(
                LogLevel::Warning,
                "SIGUSR2: stopping; no listeners to hand over",
            );
            return;
        }
        match spawn::spawn_master(&self.exe, &self.args, &self.listeners) {
            Ok(child) => {
                self.log.log(
                    LogLevel::Info,
                    format!(
                        "SIGUSR2: new master {} started; send this master (pid {}) TERM when it serves",
                        child.id(),
                        std::process::id()
                    ),
                );
                self.successor = Some(child);
            }
            Err(e) => self.log.log(
                LogLevel::Error,
                format!("SIGUSR2: cannot start a new master: {e}"),
            ),
        }
    }

    /// An upgraded master whose predecessor exited takes over the pid file (gunicorn renames
    /// `PIDFILE.2` the same way).
    fn check_promotion(&mut self) {
        let Some(old) = self.predecessor else {
            return;
        };
        if std::os::unix::process::parent_id() == old {
            return;
        }
        self.predecessor = None;
        if let (Some(current), Some(wanted)) = (&self.pidfile, &self.settings.pidfile) {
            match std::fs::rename(current, wanted) {
                Ok(()) => self.pidfile = Some(wanted.clone()),
                Err(e) => self.log.log(
                    LogLevel::Error,
                    format!(
                        "cannot rename {} to {}: {e}",
                        current.display(),
                        wanted.display()
                    ),
                ),
            }
        }
        self.log.log(
            LogLevel::Info,
            format!("old master {old} is gone; this master is now the only one"),
        );
    }

    fn cleanup(&mut self) {
        if let Some(path) = &self.pidfile {
            let ours = std::fs::read_to_string(path)
                .is_ok_and(|s| s.trim() == std::process::id().to_string());
            if ours {
                let _ = std::fs::remove_file(path);
            }
        }
        // The successor still serves on the same socket files.
        let handed_over = self
            .successor
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        if !handed_over {
            for path in &self.unix_paths {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}
