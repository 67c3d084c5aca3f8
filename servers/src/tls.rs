//! TLS for the HTTP server (rustls, the `ring` provider): a certificate chain and its key from PEM
//! files (`--certfile`, `--keyfile`, gunicorn's names), optionally a CA bundle (`--ca-certs`) that
//! client certificates must chain to, reloaded from the same files on `SIGHUP`.
//!
//! An accepted connection becomes a [`TlsStream`] at once, and its handshake runs when the
//! connection's task first reads or writes: the accept loop never waits on a client. A client that
//! does not finish its handshake is closed by the header-read timeout like one that sends no head.
//! The environ of a request over TLS has `rgi.url_scheme` `https` and `HTTPS=on`, and what the
//! handshake established under mod_ssl's names ([`Session`]): `SSL_PROTOCOL`, `SSL_CIPHER`,
//! `SSL_CLIENT_VERIFY`, and with a client certificate (`--ca-certs`) its subject and issuer
//! (`SSL_CLIENT_S_DN`, `SSL_CLIENT_I_DN`, RFC 4514 strings), serial (`SSL_CLIENT_M_SERIAL`) and the
//! certificate itself (`SSL_CLIENT_CERT`, PEM).
//!
//! ALPN offers `h2` (preferred) and `http/1.1` when HTTP/2 is on ([`crate::config::Http2`]), else
//! `http/1.1` alone; a client that offers no ALPN speaks HTTP/1.1.
//!
//! Not supported: mod_ssl's per-component variables (`SSL_CLIENT_S_DN_CN`…), OCSP stapling,
//! reloading by itself on a file change.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where the certificate, its key and the client CAs are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM, leaf first (`--certfile`).
    pub certfile: PathBuf,
    /// The private key, PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (`--keyfile`).
    pub keyfile: PathBuf,
    /// PEM certificates of the CAs client certificates must chain to (`--ca-certs`); when set, a
    /// client must present such a certificate. `None`: no client certificates are asked for.
    pub ca_certs: Option<PathBuf>,
}

/// Why a TLS configuration could not be loaded.
#[derive(Debug)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// The file holds no certificate.
    NoCertificate(PathBuf),
    /// rustls refused the certificates or the key (a key that does not match the certificate…).
    Rustls(rustls::Error),
    /// The client CA bundle is unusable.
    ClientCas(rustls::server::VerifierBuilderError),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Pem { path, .. } => write!(f, "TLS: cannot read {}", path.display()),
            TlsError::NoCertificate(path) => {
                write!(f, "TLS: no PEM certificate in {}", path.display())
            }
            TlsError::Rustls(_) => f.write_str("TLS: certificate or key refused"),
            TlsError::ClientCas(_) => f.write_str("TLS: client CA certificates refused"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Pem { source, .. } => Some(source),
            TlsError::NoCertificate(_) => None,
            TlsError::Rustls(e) => Some(e),
            TlsError::ClientCas(e) => Some(e),
        }
    }
}

/// A loaded TLS configuration, shared by every connection and replaced whole by [`Tls::reload`];
/// cheap to clone. Two are equal when they read the same files.
#[derive(Clone)]
pub struct Tls {
    files: Arc<TlsFiles>,
    http2: bool,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl PartialEq for Tls {
    fn eq(&self, other: &Self) -> bool {
        self.files == other.files && self.http2 == other.http2
    }
}

impl Eq for Tls {}

impl Tls {
    /// Read `files`; ALPN offers `h2` too when `http2`.
    ///
    /// # Errors
    ///
    /// When a file cannot be read or parsed, holds no certificate, or the key does not fit.
    pub fn load(files: TlsFiles, http2: bool) -> Result<Tls, TlsError> {
        let config = server_config(&files, http2)?;
        Ok(Tls {
            files: Arc::new(files),
            http2,
            current: Arc::new(RwLock::new(Arc::new(config))),
        })
    }

    /// The files it reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Read the files again; new connections use what they hold now, established ones keep theirs.
    /// On an error the configuration in use stays.
    ///
    /// # Errors
    ///
    /// As [`load`](Tls::load).
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(server_config(&self.files, self.http2)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// Wrap an accepted connection; its handshake runs on first use and then fills `session`.
    pub(crate) fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        session: SessionSlot,
    ) -> TlsStream<S> {
        let config = Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()));
        let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
        TlsStream {
            state: State::Handshake(accept),
            session,
        }
    }
}

/// Reload `tls` on every `SIGHUP` until the runtime stops, saying so on `errors`.
///
/// # Errors
///
/// When the signal handler cannot be installed.
pub(crate) fn reload_on_hangup(tls: Tls, errors: rgi::Errors) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let cert = tls.files.certfile.display();
            match tls.reload() {
                Ok(()) => errors.log(format_args!(
                    "rgi: SIGHUP: TLS certificate reloaded from {cert}"
                )),
                Err(e) => errors.log(format_args!(
                    "rgi: SIGHUP: {e} ({}); keeping the certificate in use",
                    std::error::Error::source(&e).map_or_else(String::new, ToString::to_string)
                )),
            }
        }
    });
    Ok(())
}

fn pem_error(path: &Path) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsError + '_ {
    move |source| TlsError::Pem {
        path: path.to_owned(),
        source,
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error(path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(path))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

fn server_config(files: &TlsFiles, http2: bool) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?;
    let builder = match &files.ca_certs {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(path)? {
                roots.add(cert).map_err(TlsError::Rustls)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(TlsError::ClientCas)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let key = PrivateKeyDer::from_pem_file(&files.keyfile).map_err(pem_error(&files.keyfile))?;
    let mut config = builder
        .with_single_cert(certificates(&files.certfile)?, key)
        .map_err(TlsError::Rustls)?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// What a connection's handshake established, as the environ variables mod_ssl names them; the
/// same for every request on the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    vars: Vec<(&'static str, String)>,
}

/// Where a connection's [`Session`] appears once its handshake is done (its requests come after).
pub(crate) type SessionSlot = Arc<OnceLock<Session>>;

impl Session {
    fn of(conn: &rustls::ServerConnection) -> Session {
        let mut vars = Vec::with_capacity(7);
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "",
        };
        if !protocol.is_empty() {
            vars.push(("SSL_PROTOCOL", protocol.to_owned()));
        }
        if let Some(suite) = conn.negotiated_cipher_suite() {
            let suite = suite.suite();
            let name = suite
                .as_str()
                .map_or_else(|| format!("{suite:?}"), str::to_owned);
            vars.push(("SSL_CIPHER", name));
        }
        // rustls ends the handshake of a certificate it cannot verify, so one that is here passed.
        match conn.peer_certificates().and_then(|chain| chain.first()) {
            Some(leaf) => {
                vars.push(("SSL_CLIENT_VERIFY", "SUCCESS".to_owned()));
                vars.extend(client_certificate(leaf));
            }
            None => vars.push(("SSL_CLIENT_VERIFY", "NONE".to_owned())),
        }
        Session { vars }
    }

    /// The variables, in a fixed order.
    pub fn vars(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.vars.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Put the variables into a request's environ.
    pub(crate) fn apply(&self, environ: &mut rgi::Environ) {
        for (key, value) in &self.vars {
            // Names and values are printable ASCII: `set` cannot refuse them.
            let _ = environ.set(key, value.clone());
        }
    }
}

/// A verified client certificate's facts: subject, issuer, serial, PEM.
fn client_certificate(der: &CertificateDer<'_>) -> Vec<(&'static str, String)> {
    use x509_cert::der::{pem::LineEnding, Decode, EncodePem};
    let Ok(cert) = x509_cert::Certificate::from_der(der) else {
        return Vec::new();
    };
    let tbs = &cert.tbs_certificate;
    let serial = tbs.serial_number.as_bytes();
    // A DER INTEGER keeps a leading zero byte for a positive number with its top bit set; OpenSSL
    // (and so mod_ssl) prints the magnitude.
    let serial = match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    let mut vars = vec![
        ("SSL_CLIENT_S_DN", tbs.subject.to_string()),
        ("SSL_CLIENT_I_DN", tbs.issuer.to_string()),
        (
            "SSL_CLIENT_M_SERIAL",
            serial.iter().map(|b| format!("{b:02X}")).collect(),
        ),
    ];
    if let Ok(pem) = cert.to_pem(LineEnding::LF) {
        vars.push(("SSL_CLIENT_CERT", pem));
    }
    vars
}

/// A server-side TLS connection over `S` whose handshake completes on first use.
pub struct TlsStream<S> {
    state: State<S>,
    session: SessionSlot,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Handshake(_) => "handshake",
            State::Ready(_) => "ready",
            State::Failed => "failed",
        };
        f.debug_tuple("TlsStream").field(&state).finish()
    }
}

enum State<S> {
    Handshake(tokio_rustls::Accept<S>),
    Ready(tokio_rustls::server::TlsStream<S>),
    Failed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// Drive the handshake; the established stream once it is done.
    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<&mut tokio_rustls::server::TlsStream<S>>> {
        if let State::Handshake(accept) = &mut self.state {
            match Pin::new(accept).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => {
                    let _ = self.session.set(Session::of(stream.get_ref().1));
                    self.state = State::Ready(stream);
                }
                Poll::Ready(Err(e)) => {
                    self.state = State::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        match &mut self.state {
            State::Ready(stream) => Poll::Ready(Ok(stream)),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the TLS handshake failed",
            ))),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// Finish the handshake; then whether the client chose HTTP/2 by ALPN.
    pub(crate) async fn negotiate_h2(&mut self) -> io::Result<bool> {
        let stream = std::future::poll_fn(|cx| self.poll_ready(cx).map_ok(|_| ())).await;
        stream?;
        Ok(match &self.state {
            State::Ready(stream) => stream.get_ref().1.alpn_protocol() == Some(b"h2"),
            _ => false,
        })
    }

    /// Run `io` on the established stream, once the handshake is done.
    fn with_ready<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        io: impl FnOnce(
            Pin<&mut tokio_rustls::server::TlsStream<S>>,
            &mut Context<'_>,
        ) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match self.get_mut().poll_ready(cx) {
            Poll::Ready(Ok(stream)) => io(Pin::new(stream), cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.with_ready(cx, |stream, cx| stream.poll_read(cx, buf))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with_ready(cx, |stream, cx| stream.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with_ready(cx, |stream, cx| stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Ready(stream) => Pin::new(stream).poll_shutdown(cx),
            // Nothing was established: there is no close_notify to send.
            State::Handshake(_) | State::Failed => Poll::Ready(Ok(())),
        }
    }
}
