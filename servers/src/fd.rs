//! The system calls this crate makes through `libc`, its one `unsafe` module: adopting inherited file
//! descriptors (`fd://N`, systemd's `LISTEN_FDS`) — only sound when nothing else in the process owns
//! the number —, signals, resource limits, and handing freed heap memory back to the kernel.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Take ownership of inherited descriptor `fd`, marking it close-on-exec.
///
/// # Errors
///
/// When `fd` is negative, one of the standard streams 1–2, or not open.
pub(crate) fn adopt(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 || fd == 1 || fd == 2 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bind: fd://{fd} is not an inheritable listening socket"),
        ));
    }
    // SAFETY: fcntl(F_GETFD) on any integer is defined; it only reports whether the descriptor is open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: same as above; setting FD_CLOEXEC on an open descriptor has no other effect.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (checked above) and was inherited from our parent for us to use;
    // by the `fd://N` contract no other code in this process owns it, so this is its sole owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Set or clear `FD_CLOEXEC` on `fd`: a cleared descriptor is inherited by the next `exec`, which is
/// how the arbiter hands listeners and heartbeat sockets to the processes it re-executes.
///
/// # Errors
///
/// As `fcntl(2)`.
pub(crate) fn set_inheritable(
    fd: std::os::fd::BorrowedFd<'_>,
    inheritable: bool,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    // SAFETY: `raw` comes from a live `BorrowedFd`, so it is open; F_GETFD/F_SETFD only read and
    // change its close-on-exec flag.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if inheritable {
        flags & !libc::FD_CLOEXEC
    } else {
        flags | libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Send signal number `signal` to process `pid` (`kill(2)`).
///
/// # Errors
///
/// As `kill(2)`: `ESRCH` when the process is gone, `EPERM`, `EINVAL`; `InvalidInput` for pid 0 or a
/// pid that does not fit (which would address a process group).
pub(crate) fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "kill: not a process id"))?;
    // SAFETY: kill(2) takes plain integers; a positive pid addresses exactly one process.
    if unsafe { libc::kill(pid, signal) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit; returns the new `(soft, hard)` pair.
///
/// # Errors
///
/// As `getrlimit(2)`/`setrlimit(2)`.
pub(crate) fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Give freed heap memory back to the kernel (glibc keeps free chunks in the middle of its heap
/// mapped; `malloc_trim` releases their pages). A no-op elsewhere.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
