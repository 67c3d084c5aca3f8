//! Process-manager settings in two stages: *raw* options as the user wrote them (command-line flags
//! with gunicorn's names, `RGI_*` environment variables, a TOML file), then *resolved* [`Settings`],
//! validated, with defaults applied.
//!
//! # Precedence
//!
//! **command line > environment (`RGI_*`) > configuration file (`-c`/`--config`, or `RGI_CONFIG`) >
//! defaults.** A flag given on the command line wins over its `RGI_*` variable (clap merges the two),
//! and either wins over the file; the file fills in only what neither set.
//!
//! # Options
//!
//! | flag | env | file key | default | meaning |
//! |---|---|---|---|---|
//! | `-w`, `--workers` | `RGI_WORKERS` | `workers` | 1 | worker processes |
//! | `-k`, `--worker-class` | `RGI_WORKER_CLASS` | `worker_class` | `async` | `sync` or `async` |
//! | `--threads` | `RGI_THREADS` | `threads` | sync: 1; async: 0 (one per CPU) | sync: serving threads per worker; async: runtime threads |
//! | `-t`, `--timeout` | `RGI_TIMEOUT` | `timeout` | 30 s | liveness: a worker silent this long is aborted (SIGABRT), then killed; 0 = off |
//! | `--graceful-timeout` | `RGI_GRACEFUL_TIMEOUT` | `graceful_timeout` | 30 s | time old workers get to finish after TERM/HUP |
//! | `--request-timeout` | `RGI_REQUEST_TIMEOUT` | `request_timeout` | 0 (off) | per-request deadline for async code: the request gets 504 |
//! | `--max-requests` | `RGI_MAX_REQUESTS` | `max_requests` | 0 (off) | recycle a worker after this many requests (with `-w`; see below) |
//! | `--max-requests-jitter` | `RGI_MAX_REQUESTS_JITTER` | `max_requests_jitter` | 0 | add 0..=jitter to each worker's `max_requests` |
//! | `-p`, `--pid` | `RGI_PIDFILE` | `pidfile` | none | write the master's pid here (`PATH.2` for a USR2 upgrade) |
//! | `--access-logfile` | `RGI_ACCESS_LOGFILE` | `accesslog` | none | access log: a path or `-` (stdout) |
//! | `--access-logformat` | `RGI_ACCESS_LOGFORMAT` | `access_log_format` | gunicorn's | `%(h)s …` atoms or `json` ([`accesslog`](crate::accesslog)) |
//! | `--error-logfile` | `RGI_ERROR_LOGFILE` | `errorlog` | `-` (stderr) | master and worker messages |
//! | `--log-level` | `RGI_LOG_LEVEL` | `loglevel` | `info` | `debug`, `info`, `warning`, `error`, `critical` |
//! | `-c`, `--config` | `RGI_CONFIG` | — | none | a TOML file with the keys of this table |
//! | `--check-config` | — | — | — | print the effective configuration and exit (0 valid, 2 invalid) |
//! | `--certfile`, `--keyfile` | `RGI_CERTFILE`, `RGI_KEYFILE` | — | none | HTTP: serve HTTPS with this PEM certificate chain and key ([`tls`](crate::tls)); each new worker reads them, so `HUP` reloads them |
//! | `--ca-certs` | `RGI_CA_CERTS` | — | none | HTTPS: require client certificates issued by these PEM CAs |
//!
//! The launcher's own options ([`Options`]) can be set in the file too:
//! `bind` (a string or a list), `backlog`, `reuse_port`, `socket_mode` (octal, a string: `"660"`), `script_name`, `limit_request_line`,
//! `limit_request_fields`, `limit_request_head`, `limit_request_body`, `header_timeout`,
//! `idle_release`, `blocking_threads`, `blocking_queue`.
//!
//! `--max-requests` is also the single-process launcher's FastCGI in-flight limit: on its own it
//! keeps that meaning and does not start the process manager; under the process manager it means
//! gunicorn's worker recycling and the launcher's flag is spelled `--max-requests-in-flight`.
//!
//! `--protocol fastcgi|scgi|uwsgi` runs under the process manager with async workers only; the
//! access log, `--max-requests` and `--request-timeout` apply to every protocol alike (a gateway
//! request's line shows the client as the web server passes it on: `REMOTE_ADDR`, `REQUEST_URI`).
//!
//! Not supported: gunicorn's Python-only settings (`preload_app`, `paste`, `pythonpath`…), `daemon`,
//! `user`/`group`, sync workers for gateway protocols.

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, ValueEnum};
use serde::Deserialize;

pub use crate::accesslog::LogLevel;
use crate::accesslog::{AccessFormat, LogTarget, DEFAULT_FORMAT};
use crate::bind::{Bind, BindOptions};
use crate::config::Config;
use crate::options::Options;
use crate::protocol::Protocol;

/// How a worker process serves requests (`-k`/`--worker-class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerClass {
    /// `--threads` OS threads, each serving one connection at a time without keep-alive (gunicorn's
    /// sync worker); blocking applications run on the serving thread.
    Sync,
    /// A tokio runtime holding thousands of mostly idle keep-alive connections (gunicorn's gevent
    /// worker); blocking applications run on its bounded blocking pool.
    Async,
}

impl WorkerClass {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerClass::Sync => "sync",
            WorkerClass::Async => "async",
        }
    }
}

/// The process-manager flags as the user wrote them (raw stage). Each is `None` when neither the
/// command line nor its environment variable gave it.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Process manager (gunicorn-style master and workers)")]
pub struct ProcessFlags {
    /// Worker processes (starts the process manager) [default: 1].
    #[arg(short = 'w', long, value_name = "N", env = "RGI_WORKERS")]
    pub workers: Option<usize>,

    /// Worker kind: sync (threads, one connection each) or async (tokio) [default: async].
    #[arg(
        short = 'k',
        long,
        value_enum,
        value_name = "CLASS",
        env = "RGI_WORKER_CLASS"
    )]
    pub worker_class: Option<WorkerClass>,

    /// Seconds a worker may stay silent (no heartbeat) before it is aborted and replaced; 0 = off
    /// [default: 30].
    #[arg(short = 't', long, value_name = "SECS", env = "RGI_TIMEOUT")]
    pub timeout: Option<f64>,

    /// Per-request deadline in seconds for async code (504 when exceeded); 0 = off [default: 0].
    #[arg(long, value_name = "SECS", env = "RGI_REQUEST_TIMEOUT")]
    pub request_timeout: Option<f64>,

    /// Recycle a worker after this many requests; 0 = never [default: 0]. Without the process
    /// manager (no -w, -k, -c…) this is the launcher's FastCGI in-flight limit instead.
    #[arg(
        long = "max-requests",
        id = "worker_max_requests",
        value_name = "N",
        env = "RGI_MAX_REQUESTS"
    )]
    pub max_requests: Option<u64>,

    /// Add a random 0..=N to each worker's --max-requests [default: 0].
    #[arg(long, value_name = "N", env = "RGI_MAX_REQUESTS_JITTER")]
    pub max_requests_jitter: Option<u64>,

    /// Write the master's pid to this file.
    #[arg(short = 'p', long = "pid", value_name = "FILE", env = "RGI_PIDFILE")]
    pub pidfile: Option<PathBuf>,

    /// Access log: a file, or - for stdout [default: none].
    #[arg(
        long = "access-logfile",
        value_name = "FILE",
        env = "RGI_ACCESS_LOGFILE"
    )]
    pub access_logfile: Option<String>,

    /// Access log format: gunicorn atoms (%(h)s …) or json.
    #[arg(
        long = "access-logformat",
        value_name = "FORMAT",
        env = "RGI_ACCESS_LOGFORMAT"
    )]
    pub access_logformat: Option<String>,

    /// Error log: a file, or - for stderr [default: -].
    #[arg(long = "error-logfile", value_name = "FILE", env = "RGI_ERROR_LOGFILE")]
    pub error_logfile: Option<String>,

    /// Error log level [default: info].
    #[arg(long, value_enum, value_name = "LEVEL", env = "RGI_LOG_LEVEL")]
    pub log_level: Option<LogLevel>,

    /// A TOML configuration file (starts the process manager).
    #[arg(short = 'c', long = "config", value_name = "FILE", env = "RGI_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// The configuration file's keys (gunicorn's setting names). Unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<OneOrMany>,
    workers: Option<usize>,
    worker_class: Option<WorkerClass>,
    threads: Option<usize>,
    timeout: Option<f64>,
    graceful_timeout: Option<f64>,
    request_timeout: Option<f64>,
    max_requests: Option<u64>,
    max_requests_jitter: Option<u64>,
    pidfile: Option<PathBuf>,
    accesslog: Option<String>,
    access_log_format: Option<String>,
    errorlog: Option<String>,
    loglevel: Option<LogLevel>,
    backlog: Option<i32>,
    reuse_port: Option<bool>,
    socket_mode: Option<String>,
    script_name: Option<String>,
    limit_request_line: Option<usize>,
    limit_request_fields: Option<usize>,
    limit_request_head: Option<usize>,
    limit_request_body: Option<u64>,
    header_timeout: Option<f64>,
    idle_release: Option<f64>,
    blocking_threads: Option<usize>,
    blocking_queue: Option<usize>,
    protocol: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Settings the process manager runs with (resolved stage): every default applied, every value
/// validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen. Default `127.0.0.1:8000`.
    pub binds: Vec<Bind>,
    /// Backlog and `SO_REUSEPORT`.
    pub bind_options: BindOptions,
    /// The protocol. FastCGI, SCGI and uwsgi need async workers.
    pub protocol: Protocol,
    /// The per-server configuration each worker serves with (limits, mount point, pools).
    pub server: Config,
    /// Worker processes. Default 1; at most 1024.
    pub workers: usize,
    /// Worker kind. Default [`WorkerClass::Async`].
    pub worker_class: WorkerClass,
    /// Sync: serving threads per worker (default 1). Async: runtime threads (0 = one per CPU).
    pub threads: usize,
    /// Liveness timeout; `None` = off. Default 30 s.
    pub timeout: Option<Duration>,
    /// Time given to old workers after TERM or a reload. Default 30 s.
    pub graceful_timeout: Duration,
    /// Per-request deadline for async code; `None` = off (the default).
    pub request_timeout: Option<Duration>,
    /// Recycle after this many requests; 0 = never (the default).
    pub max_requests: u64,
    /// Random extra requests (0..=jitter) per worker. Default 0.
    pub max_requests_jitter: u64,
    /// The pid file, if any.
    pub pidfile: Option<PathBuf>,
    /// The access log, if any.
    pub access_log: Option<LogTarget>,
    /// Its format.
    pub access_log_format: AccessFormat,
    /// The access-log format as written (for `--check-config`).
    pub access_log_format_text: String,
    /// The error log. Default standard error.
    pub error_log: LogTarget,
    /// Error log level. Default [`LogLevel::Info`].
    pub log_level: LogLevel,
    /// The configuration file read, if any.
    pub config_file: Option<PathBuf>,
}

/// Why settings could not be resolved.
#[derive(Debug)]
#[non_exhaustive]
pub enum SettingsError {
    /// The command line (or an `RGI_*` variable) is malformed; clap's error carries the usage text.
    Usage(clap::Error),
    /// The configuration file cannot be read.
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has unknown keys or wrong types.
    ParseFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range or malformed.
    Invalid {
        /// The setting's name (as in the file).
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Usage(_) => f.write_str("invalid command line"),
            SettingsError::ReadFile { path, .. } => write!(f, "cannot read {}", path.display()),
            SettingsError::ParseFile { path, .. } => {
                write!(f, "configuration file {}", path.display())
            }
            SettingsError::Invalid { setting, reason } => write!(f, "{setting}: {reason}"),
        }
    }
}

impl std::error::Error for SettingsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SettingsError::Usage(e) => Some(e),
            SettingsError::ReadFile { source, .. } => Some(source),
            SettingsError::ParseFile { source, .. } => Some(&**source),
            SettingsError::Invalid { .. } => None,
        }
    }
}

/// The command line the process manager understands: the launcher's [`Options`] plus
/// [`ProcessFlags`].
pub fn command() -> clap::Command {
    let mut base = Options::command();
    // The launcher may own a `--max-requests` of its own (FastCGI's in-flight limit); gunicorn's name
    // means worker recycling here, so the launcher's flag is renamed under the process manager.
    let clash: Option<String> = base
        .get_arguments()
        .find(|a| a.get_long() == Some("max-requests"))
        .map(|a| a.get_id().to_string());
    if let Some(id) = clash {
        base = base.mut_arg(id, |a| {
            a.long("max-requests-in-flight")
                .env("RGI_MAX_REQUESTS_IN_FLIGHT")
        });
    }
    base = base.mut_arg("threads", |a| {
        a.help("Threads: async runtime threads (0: one per CPU); sync workers: serving threads per worker [sync default: 1]")
    });
    let (about, long_about) = (base.get_about().cloned(), base.get_long_about().cloned());
    // Deriving `Args` would otherwise replace the program's description with this struct's docs.
    let mut command = ProcessFlags::augment_args(base);
    if let Some(about) = about {
        command = command.about(about);
    }
    if let Some(long_about) = long_about {
        command = command.long_about(long_about);
    }
    command
}

/// The raw stage: what the command line and the environment say.
#[derive(Debug, Clone)]
pub struct Raw {
    /// The launcher's options.
    pub options: Options,
    /// The process-manager flags.
    pub flags: ProcessFlags,
    matches: ArgMatches,
}

impl Raw {
    /// Parse `args` (the first is the program name) with [`command`].
    ///
    /// # Errors
    ///
    /// [`SettingsError::Usage`] for a malformed command line, `--help` and `--version`.
    pub fn parse(args: &[OsString]) -> Result<Raw, SettingsError> {
        let matches = command()
            .try_get_matches_from(args)
            .map_err(SettingsError::Usage)?;
        let options = Options::from_arg_matches(&matches).map_err(SettingsError::Usage)?;
        let flags = ProcessFlags::from_arg_matches(&matches).map_err(SettingsError::Usage)?;
        Ok(Raw {
            options,
            flags,
            matches,
        })
    }

    /// Whether `id` was given on the command line or through its environment variable.
    fn given(&self, id: &str) -> bool {
        matches!(
            self.matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    }

    /// Whether these options ask for the process manager: `-w`, `-k`, `-c`, `--check-config`, or
    /// any other process-manager option except `--max-requests`, which alone keeps the launcher's
    /// meaning (FastCGI's in-flight limit) in a single-process server.
    pub fn wants_arbiter(&self) -> bool {
        let f = &self.flags;
        f.workers.is_some()
            || f.worker_class.is_some()
            || f.config.is_some()
            || f.check_config
            || f.timeout.is_some()
            || f.request_timeout.is_some()
            || f.max_requests_jitter.is_some()
            || f.pidfile.is_some()
            || f.access_logfile.is_some()
            || f.access_logformat.is_some()
            || f.error_logfile.is_some()
            || f.log_level.is_some()
    }

    /// The resolved stage: read the configuration file, apply precedence and defaults, validate.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or parsed, or a value is invalid.
    pub fn resolve(&self) -> Result<Settings, SettingsError> {
        let file = match &self.flags.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let o = &self.options;
        let f = &self.flags;
        // The launcher's options with defaults: the file may override those not given.
        let pick = |id: &str| !self.given(id);

        let binds = if !o.bind.is_empty() {
            o.bind.clone()
        } else if let Some(b) = &file.bind {
            let list = match b {
                OneOrMany::One(s) => vec![s.clone()],
                OneOrMany::Many(v) => v.clone(),
            };
            list.iter()
                .map(|s| {
                    s.parse()
                        .map_err(|e: crate::bind::BadBind| invalid("bind", e.to_string()))
                })
                .collect::<Result<_, _>>()?
        } else {
            vec![Bind::Tcp("127.0.0.1:8000".into())]
        };

        let protocol = match (o.protocol, &file.protocol) {
            (Some(p), _) => p,
            (None, Some(name)) => Protocol::from_str(name, true)
                .map_err(|_| invalid("protocol", format!("unknown protocol {name:?}")))?,
            (None, None) => Protocol::Http,
        };

        let mut server = o.config();
        server.tls = o.tls().map_err(|e| {
            let cause =
                std::error::Error::source(&e).map_or_else(String::new, |c| format!(": {c}"));
            invalid("certfile", format!("{e}{cause}"))
        })?;
        let mut bind_options = BindOptions {
            backlog: o.backlog,
            reuse_port: o.reuse_port,
            unix_mode: o.socket_mode,
        };
        if pick("backlog") {
            if let Some(v) = file.backlog {
                bind_options.backlog = v;
            }
        }
        if pick("reuse_port") {
            if let Some(v) = file.reuse_port {
                bind_options.reuse_port = v;
            }
        }
        if pick("socket_mode") {
            if let Some(v) = &file.socket_mode {
                bind_options.unix_mode =
                    Some(crate::bind::parse_mode(v).map_err(|e| invalid("socket_mode", e))?);
            }
        }
        if pick("script_name") {
            if let Some(v) = &file.script_name {
                server.script_name = Some(v.clone()).filter(|s| !s.trim_matches('/').is_empty());
            }
        }
        if pick("limit_request_line") {
            if let Some(v) = file.limit_request_line {
                server.limits.max_request_line = v;
            }
        }
        if pick("limit_request_fields") {
            if let Some(v) = file.limit_request_fields {
                server.limits.max_headers = v;
            }
        }
        if pick("limit_request_head") {
            if let Some(v) = file.limit_request_head {
                server.limits.max_head_bytes = v.max(8192);
            }
        }
        if pick("limit_request_body") {
            if let Some(v) = file.limit_request_body {
                server.limits.max_body = (v > 0).then_some(v);
            }
        }
        if pick("header_timeout") {
            if let Some(v) = file.header_timeout {
                server.limits.header_read_timeout = seconds("header_timeout", v)?;
            }
        }
        if pick("idle_release") {
            if let Some(v) = file.idle_release {
                server.idle_release = seconds("idle_release", v)?;
            }
        }
        if pick("blocking_threads") {
            if let Some(v) = file.blocking_threads {
                server.blocking_threads = v.max(1);
            }
        }
        if pick("blocking_queue") {
            if let Some(v) = file.blocking_queue {
                server.blocking_queue = v;
            }
        }
        let graceful_timeout = if pick("graceful_timeout") {
            match file.graceful_timeout {
                Some(v) => seconds("graceful_timeout", v)?,
                None => server.graceful_timeout,
            }
        } else {
            seconds("graceful_timeout", o.graceful_timeout)?
        };
        server.graceful_timeout = graceful_timeout;

        let worker_class = f
            .worker_class
            .or(file.worker_class)
            .unwrap_or(WorkerClass::Async);
        let threads = if pick("threads") {
            file.threads.unwrap_or(o.threads)
        } else {
            o.threads
        };
        let threads = match worker_class {
            WorkerClass::Sync => threads.max(1),
            WorkerClass::Async => threads,
        };
        server.worker_threads = match worker_class {
            WorkerClass::Sync => 1,
            WorkerClass::Async => threads,
        };

        if protocol != Protocol::Http && worker_class == WorkerClass::Sync {
            return Err(invalid(
                "worker_class",
                format!(
                    "sync workers speak http only; use -k async for --protocol {}",
                    protocol.scheme()
                ),
            ));
        }
        let workers = f.workers.or(file.workers).unwrap_or(1);
        if workers == 0 || workers > 1024 {
            return Err(invalid("workers", format!("{workers} is not in 1..=1024")));
        }
        if threads > 4096 {
            return Err(invalid("threads", format!("{threads} is more than 4096")));
        }
        let timeout = seconds("timeout", f.timeout.or(file.timeout).unwrap_or(30.0))?;
        let request_timeout = seconds(
            "request_timeout",
            f.request_timeout.or(file.request_timeout).unwrap_or(0.0),
        )?;

        let access_log_format_text = f
            .access_logformat
            .clone()
            .or_else(|| file.access_log_format.clone())
            .unwrap_or_else(|| DEFAULT_FORMAT.to_owned());
        let access_log_format =
            access_log_format_text
                .parse()
                .map_err(|e: crate::accesslog::FormatError| {
                    invalid("access_log_format", e.to_string())
                })?;
        let access_log = f
            .access_logfile
            .clone()
            .or_else(|| file.accesslog.clone())
            .map(|s| target(&s, LogTarget::Stdout));
        let error_log = f
            .error_logfile
            .clone()
            .or_else(|| file.errorlog.clone())
            .map_or(LogTarget::Stderr, |s| target(&s, LogTarget::Stderr));

        Ok(Settings {
            binds,
            bind_options,
            protocol,
            server,
            workers,
            worker_class,
            threads,
            timeout: (!timeout.is_zero()).then_some(timeout),
            graceful_timeout,
            request_timeout: (!request_timeout.is_zero()).then_some(request_timeout),
            max_requests: f.max_requests.or(file.max_requests).unwrap_or(0),
            max_requests_jitter: f
                .max_requests_jitter
                .or(file.max_requests_jitter)
                .unwrap_or(0),
            pidfile: f.pidfile.clone().or_else(|| file.pidfile.clone()),
            access_log,
            access_log_format,
            access_log_format_text,
            error_log,
            log_level: f.log_level.or(file.loglevel).unwrap_or(LogLevel::Info),
            config_file: f.config.clone(),
        })
    }
}

fn invalid(setting: &'static str, reason: String) -> SettingsError {
    SettingsError::Invalid { setting, reason }
}

fn seconds(setting: &'static str, secs: f64) -> Result<Duration, SettingsError> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(invalid(
            setting,
            format!("{secs} is not a number of seconds ≥ 0"),
        ));
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

fn target(s: &str, dash: LogTarget) -> LogTarget {
    if s == "-" {
        dash
    } else {
        LogTarget::File(PathBuf::from(s))
    }
}

fn read_file(path: &std::path::Path) -> Result<FileSettings, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    parse_file(&text).map_err(|source| SettingsError::ParseFile {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

fn parse_file(text: &str) -> Result<FileSettings, toml::de::Error> {
    toml::from_str(text)
}

fn secs(d: Option<Duration>) -> f64 {
    d.map_or(0.0, |d| d.as_secs_f64())
}

impl Settings {
    /// The effective configuration as TOML (what `--check-config` prints).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let quote = |s: &str| format!("{s:?}");
        let binds: Vec<String> = self.binds.iter().map(|b| quote(&b.to_string())).collect();
        let _ = writeln!(
            out,
            "# effective configuration (command line > RGI_* > file > defaults)"
        );
        if let Some(file) = &self.config_file {
            let _ = writeln!(out, "# file: {}", file.display());
        }
        let _ = writeln!(out, "bind = [{}]", binds.join(", "));
        let _ = writeln!(out, "protocol = \"{}\"", self.protocol.scheme());
        let _ = writeln!(out, "backlog = {}", self.bind_options.backlog);
        let _ = writeln!(out, "reuse_port = {}", self.bind_options.reuse_port);
        if let Some(mode) = self.bind_options.unix_mode {
            let _ = writeln!(out, "socket_mode = \"{mode:o}\"");
        }
        let _ = writeln!(out, "workers = {}", self.workers);
        let _ = writeln!(out, "worker_class = \"{}\"", self.worker_class.as_str());
        let _ = writeln!(out, "threads = {}", self.threads);
        let _ = writeln!(out, "timeout = {}", secs(self.timeout));
        let _ = writeln!(
            out,
            "graceful_timeout = {}",
            self.graceful_timeout.as_secs_f64()
        );
        let _ = writeln!(out, "request_timeout = {}", secs(self.request_timeout));
        let _ = writeln!(out, "max_requests = {}", self.max_requests);
        let _ = writeln!(out, "max_requests_jitter = {}", self.max_requests_jitter);
        if let Some(p) = &self.pidfile {
            let _ = writeln!(out, "pidfile = {}", quote(&p.display().to_string()));
        }
        match &self.access_log {
            Some(LogTarget::File(p)) => {
                let _ = writeln!(out, "accesslog = {}", quote(&p.display().to_string()));
            }
            Some(_) => {
                let _ = writeln!(out, "accesslog = \"-\"");
            }
            None => {}
        }
        let _ = writeln!(
            out,
            "access_log_format = {}",
            quote(&self.access_log_format_text)
        );
        match &self.error_log {
            LogTarget::File(p) => {
                let _ = writeln!(out, "errorlog = {}", quote(&p.display().to_string()));
            }
            _ => {
                let _ = writeln!(out, "errorlog = \"-\"");
            }
        }
        let _ = writeln!(
            out,
            "loglevel = \"{}\"",
            self.log_level.label().to_ascii_lowercase()
        );
        let l = &self.server.limits;
        if let Some(s) = &self.server.script_name {
            let _ = writeln!(out, "script_name = {}", quote(s));
        }
        let _ = writeln!(out, "limit_request_line = {}", l.max_request_line);
        let _ = writeln!(out, "limit_request_fields = {}", l.max_headers);
        let _ = writeln!(out, "limit_request_head = {}", l.max_head_bytes);
        let _ = writeln!(out, "limit_request_body = {}", l.max_body.unwrap_or(0));
        let _ = writeln!(
            out,
            "header_timeout = {}",
            l.header_read_timeout.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "idle_release = {}",
            self.server.idle_release.as_secs_f64()
        );
        let _ = writeln!(out, "blocking_threads = {}", self.server.blocking_threads);
        let _ = writeln!(out, "blocking_queue = {}", self.server.blocking_queue);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(args: &[&str]) -> Raw {
        let mut all = vec![OsString::from("app")];
        all.extend(args.iter().map(OsString::from));
        Raw::parse(&all).unwrap()
    }

    #[test]
    fn the_combined_command_line_has_no_clashing_flags() {
        // clap panics (in debug builds, at every start) if the launcher and the process manager
        // ever claim the same argument name or short flag.
        command().debug_assert();
    }

    #[test]
    fn gunicorn_short_flags_parse() {
        let r = raw(&["-w", "4", "-k", "sync", "--threads", "8", "-t", "5"]);
        assert!(r.wants_arbiter());
        let s = r.resolve().unwrap();
        assert_eq!(s.workers, 4);
        assert_eq!(s.worker_class, WorkerClass::Sync);
        assert_eq!(s.threads, 8);
        assert_eq!(s.timeout, Some(Duration::from_secs(5)));
        assert_eq!(s.request_timeout, None);
    }

    #[test]
    fn without_process_flags_the_launcher_keeps_the_process() {
        assert!(!raw(&["-b", "127.0.0.1:0"]).wants_arbiter());
        assert!(!raw(&["--max-requests", "5"]).wants_arbiter());
        assert!(raw(&["--max-requests", "5", "-w", "2"]).wants_arbiter());
    }

    #[test]
    fn defaults_are_documented_ones() {
        let s = raw(&["-w", "1"]).resolve().unwrap();
        assert_eq!(s.worker_class, WorkerClass::Async);
        assert_eq!(s.timeout, Some(Duration::from_secs(30)));
        assert_eq!(s.graceful_timeout, Duration::from_secs(30));
        assert_eq!(s.max_requests, 0);
        assert_eq!(s.error_log, LogTarget::Stderr);
        assert_eq!(s.access_log, None);
        assert_eq!(s.binds, vec![Bind::Tcp("127.0.0.1:8000".into())]);
    }

    #[test]
    fn the_file_fills_in_what_the_command_line_left_out() {
        let dir = std::env::temp_dir().join(format!("rgi-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rgi.toml");
        std::fs::write(
            &path,
            "workers = 3\nworker_class = \"sync\"\ntimeout = 7\nbind = \"127.0.0.1:9\"\n\
             backlog = 64\ngraceful_timeout = 4\naccesslog = \"-\"\nmax_requests = 10\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let s = raw(&["-c", file, "-w", "2", "--graceful-timeout", "9"])
            .resolve()
            .unwrap();
        assert_eq!(s.workers, 2, "command line beats file");
        assert_eq!(
            s.graceful_timeout,
            Duration::from_secs(9),
            "launcher flag beats file"
        );
        assert_eq!(s.worker_class, WorkerClass::Sync, "file beats default");
        assert_eq!(s.timeout, Some(Duration::from_secs(7)));
        assert_eq!(s.bind_options.backlog, 64);
        assert_eq!(s.binds, vec![Bind::Tcp("127.0.0.1:9".into())]);
        assert_eq!(s.access_log, Some(LogTarget::Stdout));
        assert_eq!(s.max_requests, 10);
        let printed = s.render();
        assert!(printed.contains("workers = 2\n"), "{printed}");
        assert!(printed.contains("worker_class = \"sync\"\n"));
        std::fs::write(&path, "wrokers = 3\n").unwrap();
        let err = raw(&["-c", file]).resolve().unwrap_err();
        assert!(matches!(err, SettingsError::ParseFile { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_values_are_typed_errors() {
        let err = raw(&["-w", "0"]).resolve().unwrap_err();
        assert!(matches!(
            err,
            SettingsError::Invalid {
                setting: "workers",
                ..
            }
        ));
        let err = raw(&["-w", "1", "--timeout=-1"]).resolve().unwrap_err();
        assert!(matches!(
            err,
            SettingsError::Invalid {
                setting: "timeout",
                ..
            }
        ));
        let err = raw(&["-w", "1", "--access-logformat", "%(zz)s"])
            .resolve()
            .unwrap_err();
        assert!(err.to_string().starts_with("access_log_format: "));
        let err = raw(&["-k", "sync", "--protocol", "scgi"])
            .resolve()
            .unwrap_err();
        assert!(matches!(
            err,
            SettingsError::Invalid {
                setting: "worker_class",
                ..
            }
        ));
        assert!(raw(&["-w", "2", "--protocol", "fastcgi"]).resolve().is_ok());
        let err = Raw::parse(&["app".into(), "-k".into(), "gevent".into()]).unwrap_err();
        assert!(matches!(err, SettingsError::Usage(_)));
    }
}
