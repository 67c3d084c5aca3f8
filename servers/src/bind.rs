//! Where servers listen: bind addresses (`HOST:PORT`, `unix:PATH`, `fd://N`), listeners and streams.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use socket2::{Domain, SockRef, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One `--bind` address, as gunicorn spells them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// `HOST:PORT` (`[::1]:8000` for IPv6; a bare `HOST` means port 8000).
    Tcp(String),
    /// `unix:PATH`: a unix stream socket; a stale socket file is replaced, a live one (a server
    /// answers on it) is an error.
    Unix(PathBuf),
    /// `fd://N`: a listening socket inherited as file descriptor `N` (systemd, a process manager).
    Fd(i32),
}

/// A `--bind` value that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBind(String);

impl fmt::Display for BadBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bind: {:?} is not HOST:PORT, unix:PATH or fd://N",
            self.0
        )
    }
}

impl std::error::Error for BadBind {}

impl FromStr for Bind {
    type Err = BadBind;

    fn from_str(s: &str) -> Result<Self, BadBind> {
        let bad = || BadBind(s.to_owned());
        if let Some(path) = s.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(bad());
            }
            return Ok(Bind::Unix(PathBuf::from(path)));
        }
        if let Some(fd) = s.strip_prefix("fd://") {
            return fd.parse().map(Bind::Fd).map_err(|_| bad());
        }
        if s.is_empty() || s.contains('/') {
            return Err(bad());
        }
        let has_port = if s.starts_with('[') {
            s.contains("]:")
        } else {
            s.matches(':').count() == 1
        };
        Ok(Bind::Tcp(if has_port {
            s.to_owned()
        } else {
            format!("{s}:8000")
        }))
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Tcp(a) => f.write_str(a),
            Bind::Unix(p) => write!(f, "unix:{}", p.display()),
            Bind::Fd(n) => write!(f, "fd://{n}"),
        }
    }
}

/// Socket options for binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindOptions {
    /// The listen backlog. Default 2048 (gunicorn's).
    pub backlog: i32,
    /// Set `SO_REUSEPORT` on TCP sockets. Default `false`.
    pub reuse_port: bool,
    /// The permission bits of unix socket files (`0o660`: owner and group may connect). Set before
    /// the socket listens, so no client can connect under looser permissions. Default `None`: as
    /// the process's umask leaves them.
    pub unix_mode: Option<u32>,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions {
            backlog: 2048,
            reuse_port: false,
            unix_mode: None,
        }
    }
}

/// Parse an octal permission mode (`660`, `0o600`, `0770`) for unix socket files.
///
/// # Errors
///
/// Not octal digits, or bits beyond `0o777`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal mode such as 660"))
}

/// A bound, listening socket, not yet attached to a runtime (so it can be inherited across `exec`).
#[derive(Debug)]
pub enum StdListener {
    /// TCP.
    Tcp(std::net::TcpListener),
    /// Unix stream socket, with its path (removed on drop when we created it).
    Unix(std::os::unix::net::UnixListener, Option<PathBuf>),
}

impl Bind {
    /// Bind and listen.
    ///
    /// # Errors
    ///
    /// The address does not resolve, is in use, the path cannot be created, or the descriptor is not a
    /// listening stream socket.
    pub fn listen(&self, options: BindOptions) -> io::Result<StdListener> {
        match self {
            Bind::Tcp(addr) => {
                let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("bind: {addr} does not resolve"),
                    )
                })?;
                let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
                socket.set_reuse_address(true)?;
                if options.reuse_port {
                    socket.set_reuse_port(true)?;
                }
                socket.bind(&addr.into())?;
                socket.listen(options.backlog)?;
                Ok(StdListener::Tcp(socket.into()))
            }
            Bind::Unix(path) => {
                remove_stale_socket(path)?;
                let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                socket.bind(&socket2::SockAddr::unix(path)?)?;
                if let Some(mode) = options.unix_mode {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
                }
                socket.listen(options.backlog)?;
                let fd: OwnedFd = socket.into();
                Ok(StdListener::Unix(fd.into(), Some(path.clone())))
            }
            Bind::Fd(n) => StdListener::from_owned_fd(crate::fd::adopt(*n)?),
        }
    }
}

/// Remove a socket file left by a previous run, but never a regular file, nor the socket of a server
/// still answering on it (removing that would silently take its clients).
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if is_live_socket(path) {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("bind: {} is in use by a running server", path.display()),
                ));
            }
            std::fs::remove_file(path)
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("bind: {} exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether a server listens on the socket file `path`: a connection is accepted or queued (a full
/// backlog is live too); a refused one means nobody listens. Non-blocking, so it never waits.
fn is_live_socket(path: &Path) -> bool {
    let Ok(socket) = Socket::new(Domain::UNIX, Type::STREAM, None) else {
        return false;
    };
    let Ok(addr) = socket2::SockAddr::unix(path) else {
        return false;
    };
    if socket.set_nonblocking(true).is_err() {
        return false;
    }
    match socket.connect(&addr) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

impl StdListener {
    /// Adopt a listening stream socket (TCP or unix).
    ///
    /// # Errors
    ///
    /// When `fd` is not a listening stream socket.
    pub fn from_owned_fd(fd: OwnedFd) -> io::Result<Self> {
        let socket = Socket::from(fd);
        if !socket.is_listener()? || socket.r#type()? != Type::STREAM {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bind: inherited descriptor is not a listening stream socket",
            ));
        }
        let is_unix = socket.local_addr()?.is_unix();
        let fd: OwnedFd = socket.into();
        Ok(if is_unix {
            StdListener::Unix(fd.into(), None)
        } else {
            StdListener::Tcp(fd.into())
        })
    }

    /// Standard input, if it is a listening socket: the FastCGI convention (`FCGI_LISTENSOCK_FILENO`),
    /// used by lighttpd `bin-path`, spawn-fcgi and mod_fcgid. `Ok(None)` when it is not one.
    ///
    /// # Errors
    ///
    /// Only when duplicating the descriptor fails.
    pub fn from_stdin() -> io::Result<Option<Self>> {
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        let sock = SockRef::from(&fd);
        match sock.is_listener() {
            Ok(true) => {}
            // Not a socket (ENOTSOCK), or a connected one: not ours to serve.
            Ok(false) | Err(_) => return Ok(None),
        }
        let owned: OwnedFd = sock.try_clone()?.into();
        Self::from_owned_fd(owned).map(Some)
    }

    /// The address, for messages.
    pub fn describe(&self) -> String {
        match self {
            StdListener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp:?".into(), |a| a.to_string()),
            StdListener::Unix(l, path) => match path {
                Some(p) => format!("unix:{}", p.display()),
                None => l
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                    .unwrap_or_else(|| "unix:?".into()),
            },
        }
    }

    /// Duplicate the listener (each worker thread or process gets its own handle).
    ///
    /// # Errors
    ///
    /// When `dup` fails.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            StdListener::Tcp(l) => StdListener::Tcp(l.try_clone()?),
            StdListener::Unix(l, _) => StdListener::Unix(l.try_clone()?, None),
        })
    }

    /// Attach to the current tokio runtime.
    ///
    /// # Errors
    ///
    /// When the socket cannot be made non-blocking or registered.
    pub fn into_tokio(self) -> io::Result<Listener> {
        match self {
            StdListener::Tcp(l) => {
                l.set_nonblocking(true)?;
                Ok(Listener::Tcp(tokio::net::TcpListener::from_std(l)?))
            }
            StdListener::Unix(l, path) => {
                l.set_nonblocking(true)?;
                Ok(Listener::Unix(
                    tokio::net::UnixListener::from_std(l)?,
                    path.map(UnlinkOnDrop),
                ))
            }
        }
    }
}

/// Removes a unix socket file we created when the listener goes away.
#[derive(Debug)]
pub struct UnlinkOnDrop(PathBuf);

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A listener on a tokio runtime.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(tokio::net::TcpListener),
    /// Unix stream socket.
    Unix(tokio::net::UnixListener, Option<UnlinkOnDrop>),
}

/// Both ends of an accepted connection; `None` on unix sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer {
    /// Our address.
    pub local: Option<SocketAddr>,
    /// The client's address.
    pub remote: Option<SocketAddr>,
}

impl Listener {
    /// Accept the next connection.
    ///
    /// # Errors
    ///
    /// As `accept(2)`; callers should treat `EMFILE`-like errors as transient (back off, retry).
    pub async fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, remote) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().ok();
                Ok((
                    Stream::Tcp(stream),
                    Peer {
                        local,
                        remote: Some(remote),
                    },
                ))
            }
            Listener::Unix(l, _) => {
                let (stream, _) = l.accept().await?;
                Ok((Stream::Unix(stream), Peer::default()))
            }
        }
    }
}

/// An accepted connection.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(tokio::net::TcpStream),
    /// Unix stream socket.
    Unix(tokio::net::UnixStream),
    /// TLS over either ([`crate::tls`]); its handshake runs on first use.
    Tls(Box<crate::tls::TlsStream<Stream>>),
}

impl Stream {
    /// Wait until the socket has data to read (or its peer closed it).
    pub(crate) async fn readable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            Stream::Unix(s) => s.readable().await,
            // Never parked (rustls may hold decrypted bytes the socket no longer shows).
            Stream::Tls(_) => Ok(()),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        !matches!(self, Stream::Tls(_))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms_parse_like_gunicorn() {
        assert_eq!("127.0.0.1:80".parse(), Ok(Bind::Tcp("127.0.0.1:80".into())));
        assert_eq!("localhost".parse(), Ok(Bind::Tcp("localhost:8000".into())));
        assert_eq!("[::1]:9".parse(), Ok(Bind::Tcp("[::1]:9".into())));
        assert_eq!("unix:/tmp/s".parse(), Ok(Bind::Unix("/tmp/s".into())));
        assert_eq!("unix:///tmp/s".parse(), Ok(Bind::Unix("/tmp/s".into())));
        assert_eq!("fd://3".parse(), Ok(Bind::Fd(3)));
        assert!("fd://x".parse::<Bind>().is_err());
        assert!("unix:".parse::<Bind>().is_err());
        assert!("".parse::<Bind>().is_err());
    }

    #[test]
    fn a_regular_file_is_never_removed_as_a_stale_socket() {
        let path = std::env::temp_dir().join(format!("rgi-bind-test-{}", std::process::id()));
        std::fs::write(&path, b"keep").unwrap();
        let err = Bind::Unix(path.clone())
            .listen(BindOptions::default())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
        std::fs::remove_file(&path).unwrap();
    }
}
