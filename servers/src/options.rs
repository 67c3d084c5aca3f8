//! The launcher's command line: where to listen, which protocol, client limits, pools — as
//! gunicorn names them, each also an `RGI_*` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::bind::{Bind, BindOptions};
use crate::config::{Config, Limits};
use crate::protocol::Protocol;
use crate::tls::{Tls, TlsError, TlsFiles};

/// Command-line options, as gunicorn names them where gunicorn has them. Every option can also be set
/// through an `RGI_*` environment variable; the flag wins.
#[derive(Debug, Clone, Parser)]
#[command(
    about = "Serve an RGI application",
    long_about = "Serve an RGI application over HTTP, FastCGI, SCGI, uwsgi or CGI.\n\n\
        With neither --bind nor --protocol the environment decides:\n  \
        - GATEWAY_INTERFACE set: serve one request as a CGI script (RFC 3875) and exit; the command \
        line is ignored. A script named nph-* writes a full HTTP status line (NPH).\n  \
        - descriptor 0 is a listening socket: serve FastCGI on it (lighttpd bin-path, spawn-fcgi).\n  \
        - otherwise: HTTP on 127.0.0.1:8000.\n\n\
        --protocol fastcgi without --bind also serves descriptor 0 when it is a listening socket. \
        FastCGI honours FCGI_WEB_SERVER_ADDRS (comma-separated IPs allowed to connect over TCP).",
    version
)]
pub struct Options {
    /// Where to listen: HOST:PORT, unix:PATH or fd://N. Repeatable. Port 0 picks a free port (the
    /// actual address is printed).
    #[arg(
        short = 'b',
        long = "bind",
        value_name = "ADDR",
        env = "RGI_BIND",
        value_delimiter = ','
    )]
    pub bind: Vec<Bind>,

    /// The protocol to speak on the listeners [default: http, or as detected; see above].
    #[arg(long, value_enum, env = "RGI_PROTOCOL")]
    pub protocol: Option<Protocol>,

    /// The mount point the web server maps to this application (SCRIPT_NAME), e.g. /app.
    #[arg(long, value_name = "PATH", env = "RGI_SCRIPT_NAME")]
    pub script_name: Option<String>,

    /// Longest request target in bytes (else 414).
    #[arg(long, value_name = "BYTES", env = "RGI_LIMIT_REQUEST_LINE", default_value_t = Limits::default().max_request_line)]
    pub limit_request_line: usize,

    /// Most header fields per request (else 431).
    #[arg(long, value_name = "N", env = "RGI_LIMIT_REQUEST_FIELDS", default_value_t = Limits::default().max_headers)]
    pub limit_request_fields: usize,

    /// Largest request head (request line plus headers) in bytes (else 431); at least 8192.
    #[arg(long, value_name = "BYTES", env = "RGI_LIMIT_REQUEST_HEAD", default_value_t = Limits::default().max_head_bytes)]
    pub limit_request_head: usize,

    /// Largest request body in bytes (else 413); 0 means no limit.
    #[arg(long, value_name = "BYTES", env = "RGI_LIMIT_REQUEST_BODY", default_value_t = 1 << 30)]
    pub limit_request_body: u64,

    /// Seconds a client may take to send a request head (slowloris guard; also the keep-alive idle
    /// limit); 0 turns it off.
    #[arg(
        long,
        value_name = "SECS",
        env = "RGI_HEADER_TIMEOUT",
        default_value_t = 30.0
    )]
    pub header_timeout: f64,

    /// Seconds a kept-alive HTTP connection idles before releasing its buffers (~10 KiB each);
    /// 0 keeps them.
    #[arg(
        long,
        value_name = "SECS",
        env = "RGI_IDLE_RELEASE",
        default_value_t = 1.0
    )]
    pub idle_release: f64,

    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(
        long,
        value_name = "SECS",
        env = "RGI_GRACEFUL_TIMEOUT",
        default_value_t = 30.0
    )]
    pub graceful_timeout: f64,

    /// Async worker threads (0: one per CPU).
    #[arg(long, value_name = "N", env = "RGI_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Threads for blocking applications.
    #[arg(
        long,
        value_name = "N",
        env = "RGI_BLOCKING_THREADS",
        default_value_t = 512
    )]
    pub blocking_threads: usize,

    /// Blocking jobs that may wait for a thread before requests get 503.
    #[arg(
        long,
        value_name = "N",
        env = "RGI_BLOCKING_QUEUE",
        default_value_t = 1024
    )]
    pub blocking_queue: usize,

    /// FastCGI, SCGI, uwsgi: most connections served at once (FCGI_MAX_CONNS).
    #[arg(long, value_name = "N", env = "RGI_MAX_CONNECTIONS", default_value_t = Config::default().max_connections)]
    pub max_connections: usize,

    /// FastCGI: most requests in flight at once (FCGI_MAX_REQS); more are refused as overloaded.
    #[arg(long, value_name = "N", env = "RGI_MAX_REQUESTS", default_value_t = Config::default().max_requests)]
    pub max_requests: usize,

    /// Listen backlog.
    #[arg(long, value_name = "N", env = "RGI_BACKLOG", default_value_t = 2048)]
    pub backlog: i32,

    /// Set SO_REUSEPORT on TCP listeners.
    #[arg(long, env = "RGI_REUSE_PORT")]
    pub reuse_port: bool,

    /// HTTP: serve HTTPS with this PEM certificate chain (leaf first); needs --keyfile. Reloaded on
    /// SIGHUP.
    #[arg(long, value_name = "PATH", env = "RGI_CERTFILE", requires = "keyfile")]
    pub certfile: Option<PathBuf>,

    /// HTTP: the PEM private key of --certfile.
    #[arg(long, value_name = "PATH", env = "RGI_KEYFILE", requires = "certfile")]
    pub keyfile: Option<PathBuf>,

    /// HTTP over TLS: require client certificates issued by these PEM CA certificates.
    #[arg(long, value_name = "PATH", env = "RGI_CA_CERTS", requires = "certfile")]
    pub ca_certs: Option<PathBuf>,

    /// Permissions of unix socket files, in octal (660: owner and group may connect) [default: as
    /// the umask leaves them].
    #[arg(long, value_name = "OCTAL", env = "RGI_SOCKET_MODE", value_parser = crate::bind::parse_mode)]
    pub socket_mode: Option<u32>,
}

impl Options {
    /// The server configuration these options describe.
    pub fn config(&self) -> Config {
        Config {
            limits: Limits {
                max_request_line: self.limit_request_line,
                max_headers: self.limit_request_fields,
                max_head_bytes: self.limit_request_head.max(8192),
                max_body: (self.limit_request_body > 0).then_some(self.limit_request_body),
                header_read_timeout: seconds(self.header_timeout),
            },
            graceful_timeout: seconds(self.graceful_timeout),
            idle_release: seconds(self.idle_release),
            script_name: self
                .script_name
                .clone()
                .filter(|s| !s.trim_matches('/').is_empty()),
            blocking_threads: self.blocking_threads.max(1),
            blocking_queue: self.blocking_queue,
            worker_threads: self.threads,
            max_connections: self.max_connections.max(1),
            max_requests: self.max_requests.max(1),
            tls: None,
        }
    }

    /// The TLS configuration `--certfile`, `--keyfile` and `--ca-certs` name, loaded; `None`
    /// without `--certfile`.
    ///
    /// # Errors
    ///
    /// When the files cannot be read or do not make a TLS configuration.
    pub fn tls(&self) -> Result<Option<Tls>, TlsError> {
        let (Some(certfile), Some(keyfile)) = (&self.certfile, &self.keyfile) else {
            return Ok(None);
        };
        Tls::load(TlsFiles {
            certfile: certfile.clone(),
            keyfile: keyfile.clone(),
            ca_certs: self.ca_certs.clone(),
        })
        .map(Some)
    }

    pub(crate) fn bind_options(&self) -> BindOptions {
        BindOptions {
            backlog: self.backlog,
            reuse_port: self.reuse_port,
            unix_mode: self.socket_mode,
        }
    }
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}
