//! Adopting inherited file descriptors (`fd://N`, systemd's `LISTEN_FDS`): the one place this crate
//! needs `unsafe`, because taking ownership of a raw descriptor number is only sound when nothing else
//! in the process owns it.
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
