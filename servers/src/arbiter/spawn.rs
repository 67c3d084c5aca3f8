//! Starting processes: workers and upgraded masters are this same binary, re-executed with
//! [`std::process::Command`] so that no thread or async runtime of the master crosses a `fork`.
//!
//! Descriptors cross the `exec` by number: the master clears `FD_CLOEXEC` on exactly the descriptors
//! a child needs, spawns, and sets it again. The master spawns from one thread only, so no other
//! child can inherit them in between. Each worker's end of its heartbeat socketpair is closed in the
//! master right after the spawn: otherwise the master would hold both ends and never see the worker's
//! end close.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{SpawnPlan, UPGRADE_ENV, WORKER_ENV};
use crate::bind::StdListener;

/// What a worker learns from [`WORKER_ENV`]: `v1;id=3;gen=1;hb=7;fds=3+4;max=1000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkerSpec {
    pub(crate) id: u64,
    pub(crate) generation: u64,
    pub(crate) heartbeat: RawFd,
    pub(crate) listeners: Vec<RawFd>,
    pub(crate) max_requests: u64,
}

/// A malformed [`WORKER_ENV`] value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadSpec(String);

impl fmt::Display for BadSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arbiter: malformed {WORKER_ENV} value {:?}", self.0)
    }
}

impl std::error::Error for BadSpec {}

impl WorkerSpec {
    pub(crate) fn encode(&self) -> String {
        let fds: Vec<String> = self.listeners.iter().map(|fd| fd.to_string()).collect();
        format!(
            "v1;id={};gen={};hb={};fds={};max={}",
            self.id,
            self.generation,
            self.heartbeat,
            fds.join("+"),
            self.max_requests
        )
    }

    pub(crate) fn decode(s: &str) -> Result<Self, BadSpec> {
        let bad = || BadSpec(s.to_owned());
        let mut parts = s.split(';');
        if parts.next() != Some("v1") {
            return Err(bad());
        }
        let (mut id, mut generation, mut heartbeat, mut listeners, mut max) =
            (None, None, None, None, None);
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(bad)?;
            match key {
                "id" => id = value.parse().ok(),
                "gen" => generation = value.parse().ok(),
                "hb" => heartbeat = value.parse().ok(),
                "max" => max = value.parse().ok(),
                "fds" => {
                    listeners = value
                        .split('+')
                        .filter(|v| !v.is_empty())
                        .map(str::parse)
                        .collect::<Result<Vec<RawFd>, _>>()
                        .ok()
                }
                _ => return Err(bad()),
            }
        }
        Ok(WorkerSpec {
            id: id.ok_or_else(bad)?,
            generation: generation.ok_or_else(bad)?,
            heartbeat: heartbeat.ok_or_else(bad)?,
            listeners: listeners.filter(|l| !l.is_empty()).ok_or_else(bad)?,
            max_requests: max.ok_or_else(bad)?,
        })
    }
}

fn listener_fd(listener: &StdListener) -> BorrowedFd<'_> {
    match listener {
        StdListener::Tcp(l) => l.as_fd(),
        StdListener::Unix(l, _) => l.as_fd(),
    }
}

/// Clears `FD_CLOEXEC` on the given descriptors for as long as it lives.
struct Inherit<'a>(Vec<BorrowedFd<'a>>);

impl<'a> Inherit<'a> {
    fn new(fds: Vec<BorrowedFd<'a>>) -> io::Result<Self> {
        let guard = Inherit(Vec::with_capacity(fds.len()));
        let mut guard = guard;
        for fd in fds {
            crate::fd::set_inheritable(fd, true)?;
            guard.0.push(fd);
        }
        Ok(guard)
    }
}

impl Drop for Inherit<'_> {
    fn drop(&mut self) {
        for fd in &self.0 {
            let _ = crate::fd::set_inheritable(*fd, false);
        }
    }
}

fn base_command(exe: &Path, args: &[OsString]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(args.iter().skip(1))
        .stdin(Stdio::null())
        .env_remove(WORKER_ENV)
        .env_remove(UPGRADE_ENV)
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID");
    cmd
}

/// Start worker `plan` as `exe args…` inheriting `listeners`; returns the child and the master's end
/// of its heartbeat socketpair.
///
/// # Errors
///
/// When the socketpair cannot be made, descriptors cannot be marked, or the process cannot start.
pub(crate) fn spawn_worker(
    exe: &Path,
    args: &[OsString],
    listeners: &[StdListener],
    plan: &SpawnPlan,
) -> io::Result<(Child, UnixStream)> {
    let (master_end, worker_end) = UnixStream::pair()?;
    let spec = WorkerSpec {
        id: plan.id.0,
        generation: plan.generation,
        heartbeat: worker_end.as_raw_fd(),
        listeners: listeners
            .iter()
            .map(|l| listener_fd(l).as_raw_fd())
            .collect(),
        max_requests: plan.max_requests,
    };
    let mut fds: Vec<BorrowedFd<'_>> = listeners.iter().map(listener_fd).collect();
    fds.push(worker_end.as_fd());
    let child = {
        let _inherit = Inherit::new(fds)?;
        base_command(exe, args)
            .env(WORKER_ENV, spec.encode())
            .spawn()?
    };
    drop(worker_end);
    master_end.set_nonblocking(true)?;
    Ok((child, master_end))
}

/// Start a new master (USR2) as `exe args…` inheriting `listeners`, which it finds in
/// [`UPGRADE_ENV`]; `RGI_MASTER_PID` tells it who its predecessor is.
///
/// # Errors
///
/// When descriptors cannot be marked or the process cannot start.
pub(crate) fn spawn_master(
    exe: &Path,
    args: &[OsString],
    listeners: &[StdListener],
) -> io::Result<Child> {
    let fds: Vec<String> = listeners
        .iter()
        .map(|l| listener_fd(l).as_raw_fd().to_string())
        .collect();
    let _inherit = Inherit::new(listeners.iter().map(listener_fd).collect())?;
    base_command(exe, args)
        .env(UPGRADE_ENV, fds.join(","))
        .env("RGI_MASTER_PID", std::process::id().to_string())
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_specs_round_trip_and_reject_garbage() {
        let spec = WorkerSpec {
            id: 3,
            generation: 1,
            heartbeat: 7,
            listeners: vec![3, 4],
            max_requests: 1000,
        };
        assert_eq!(spec.encode(), "v1;id=3;gen=1;hb=7;fds=3+4;max=1000");
        assert_eq!(WorkerSpec::decode(&spec.encode()), Ok(spec));
        for bad in [
            "",
            "v2;id=1",
            "v1;id=x;gen=0;hb=5;fds=3;max=0",
            "v1;id=1;gen=0;hb=5;fds=;max=0",
        ] {
            assert!(WorkerSpec::decode(bad).is_err(), "{bad}");
        }
    }
}
