//! Signals the arbiter understands, with gunicorn's meanings, and the one call that sends them.
//!
//! | signal | to the master | to a worker |
//! |---|---|---|
//! | `HUP` | reload: re-read the configuration, start a new generation of workers, then gracefully stop the old one once every new worker is ready | — |
//! | `TERM` | graceful stop: workers finish in-flight and keep-alive requests within `--graceful-timeout` (killed 1 s after it) | graceful stop |
//! | `INT`, `QUIT` | quick stop: workers get `QUIT` and exit at once (killed after 1 s) | quick stop |
//! | `USR1` | reopen log files, in the master and every worker | reopen log files |
//! | `USR2` | binary upgrade: re-execute the master's binary, handing it the listeners; the new master writes `PIDFILE.2`; the old one keeps running until told to go (`TERM`) | — |
//! | `TTIN` / `TTOU` | one worker more / less | — |
//! | `ABRT` | — | sent by the master to a worker that missed its heartbeat (`--timeout`); `KILL` follows 1 s later |
//!
//! Not supported: `WINCH` (stop workers when daemonized; RGI never daemonizes), nginx/unicorn-style
//! presets.

use std::fmt;
use std::io;

/// A signal the arbiter sends or receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `SIGHUP`: reload.
    Hup,
    /// `SIGINT`: quick stop.
    Int,
    /// `SIGQUIT`: quick stop.
    Quit,
    /// `SIGTERM`: graceful stop.
    Term,
    /// `SIGUSR1`: reopen logs.
    Usr1,
    /// `SIGUSR2`: binary upgrade.
    Usr2,
    /// `SIGTTIN`: one worker more.
    Ttin,
    /// `SIGTTOU`: one worker less.
    Ttou,
    /// `SIGCHLD`: a child changed state.
    Chld,
    /// `SIGABRT`: a worker timed out.
    Abrt,
    /// `SIGKILL`.
    Kill,
}

impl Signal {
    /// Every signal the master listens for.
    pub const MASTER: [Signal; 9] = [
        Signal::Hup,
        Signal::Int,
        Signal::Quit,
        Signal::Term,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Ttin,
        Signal::Ttou,
        Signal::Chld,
    ];

    /// The signal number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Hup => libc::SIGHUP,
            Signal::Int => libc::SIGINT,
            Signal::Quit => libc::SIGQUIT,
            Signal::Term => libc::SIGTERM,
            Signal::Usr1 => libc::SIGUSR1,
            Signal::Usr2 => libc::SIGUSR2,
            Signal::Ttin => libc::SIGTTIN,
            Signal::Ttou => libc::SIGTTOU,
            Signal::Chld => libc::SIGCHLD,
            Signal::Abrt => libc::SIGABRT,
            Signal::Kill => libc::SIGKILL,
        }
    }

    /// The name without `SIG` (`HUP`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Quit => "QUIT",
            Signal::Term => "TERM",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Ttin => "TTIN",
            Signal::Ttou => "TTOU",
            Signal::Chld => "CHLD",
            Signal::Abrt => "ABRT",
            Signal::Kill => "KILL",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

/// The name of signal number `n` for messages (`SIGKILL`), or the number.
pub fn describe_signal(n: i32) -> String {
    let known = [
        Signal::Hup,
        Signal::Int,
        Signal::Quit,
        Signal::Term,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Abrt,
        Signal::Kill,
    ];
    match known.iter().find(|s| s.number() == n) {
        Some(s) => s.to_string(),
        None if n == libc::SIGSEGV => "SIGSEGV".into(),
        None if n == libc::SIGBUS => "SIGBUS".into(),
        None => format!("signal {n}"),
    }
}

/// Send `signal` to process `pid`.
///
/// # Errors
///
/// As `kill(2)` (`ESRCH` when the process is already gone).
pub fn send(pid: u32, signal: Signal) -> io::Result<()> {
    crate::fd::send_signal(pid, signal.number())
}

/// A stream of the signals in `which`, for a process's own runtime.
///
/// # Errors
///
/// When a handler cannot be installed.
pub(crate) fn listen(which: &[Signal]) -> io::Result<tokio::sync::mpsc::UnboundedReceiver<Signal>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for &sig in which {
        let mut stream = signal(SignalKind::from_raw(sig.number()))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        });
    }
    Ok(rx)
}
