//! Every setting, declared once: its flag, environment variable, file key, default, help line, how
//! a value is parsed and checked into [`Settings`], and how `--check-config` shows it (gunicorn's
//! `config.py` `Setting` classes, as a table). The command line ([`super::command`]), the file
//! reader, the defaults, `--check-config` and the documented table ([`super::markdown_table`]) are
//! all derived from [`SETTINGS`].

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use super::{quote, Group, Kind, Settings, WorkerClass};
use crate::accesslog::{LogLevel, LogTarget, DEFAULT_FORMAT};
use crate::protocol::Protocol;

/// One setting: one row of [`SETTINGS`], read through its accessors.
pub struct Setting {
    pub(super) name: &'static str,
    pub(super) long: &'static str,
    pub(super) short: Option<char>,
    pub(super) env: Option<&'static str>,
    pub(super) in_file: bool,
    pub(super) value_name: &'static str,
    pub(super) kind: Kind,
    pub(super) default: Option<&'static str>,
    pub(super) default_doc: Option<&'static str>,
    pub(super) help: &'static str,
    pub(super) group: Group,
    /// For a [`Kind::Bool`] on by default: the id and long flag (`no_NAME`, `no-LONG`) of the flag
    /// that turns it off.
    pub(super) negation: Option<(&'static str, &'static str)>,
    /// Parse and check the winning value (one string, or several for [`Kind::List`]) into the
    /// resolved settings.
    pub(super) apply: fn(&mut Settings, &[String]) -> Result<(), String>,
    /// The value as a TOML literal, `None` when unset.
    pub(super) show: fn(&Settings) -> Option<String>,
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting")
            .field("name", &self.name)
            .field("long", &self.long)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

// One row per setting reads best as one call; a builder would spread each row over many lines.
#[allow(clippy::too_many_arguments)]
/// A setting of the server (every protocol, with or without the process manager), with a default,
/// readable from the file, its variable `RGI_` + the upper-case name.
const fn server(
    name: &'static str,
    long: &'static str,
    env: &'static str,
    kind: Kind,
    value_name: &'static str,
    default: Option<&'static str>,
    help: &'static str,
    apply: fn(&mut Settings, &[String]) -> Result<(), String>,
    show: fn(&Settings) -> Option<String>,
) -> Setting {
    Setting {
        name,
        long,
        short: None,
        env: Some(env),
        in_file: true,
        value_name,
        kind,
        default,
        default_doc: None,
        help,
        group: Group::Server,
        negation: None,
        apply,
        show,
    }
}

impl Setting {
    const fn short(mut self, c: char) -> Self {
        self.short = Some(c);
        self
    }

    const fn process(mut self) -> Self {
        self.group = Group::ProcessManager;
        self
    }

    const fn default_doc(mut self, doc: &'static str) -> Self {
        self.default_doc = Some(doc);
        self
    }

    const fn negation(mut self, id: &'static str, long: &'static str) -> Self {
        self.negation = Some((id, long));
        self
    }

    const fn not_in_file(mut self) -> Self {
        self.in_file = false;
        self
    }

    const fn no_env(mut self) -> Self {
        self.env = None;
        self
    }

    /// The name: the configuration file's key (gunicorn's setting name).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The long flag, without `--`.
    pub fn long(&self) -> &'static str {
        self.long
    }

    /// The environment variable, if any.
    pub fn env(&self) -> Option<&'static str> {
        self.env
    }

    /// Whether the configuration file may set it.
    pub fn in_file(&self) -> bool {
        self.in_file
    }
}

#[rustfmt::skip]
/// Every setting, in the order `--help`, `--check-config` and the documentation list them.
pub static SETTINGS: &[Setting] = &[
    server(
        "bind", "bind", "RGI_BIND", Kind::List, "ADDR", Some("127.0.0.1:8000"),
        "Where to listen: HOST:PORT, unix:PATH or fd://N; repeatable or comma-separated. Port 0 picks a free port (the actual address is printed)",
        |s, v| {
            s.binds = v.iter().map(|b| b.parse().map_err(|e: crate::bind::BadBind| e.to_string())).collect::<Result<_, _>>()?;
            Ok(())
        },
        |s| Some(format!("[{}]", s.binds.iter().map(|b| quote(&b.to_string())).collect::<Vec<_>>().join(", "))),
    ).short('b').default_doc("`127.0.0.1:8000`, or as detected (CGI, a socket on descriptor 0)"),
    server(
        "protocol", "protocol", "RGI_PROTOCOL", Kind::Choice(&["http", "fastcgi", "scgi", "uwsgi"]), "PROTOCOL", Some("http"),
        "The protocol to speak on the listeners",
        |s, v| { s.protocol = choice::<Protocol>(v)?; Ok(()) },
        |s| Some(quote(s.protocol.scheme())),
    ).default_doc("`http`, or as detected"),
    server(
        "script_name", "script-name", "RGI_SCRIPT_NAME", Kind::Text, "PATH", None,
        "The mount point the web server maps to this application (SCRIPT_NAME), e.g. /app",
        |s, v| { s.server.script_name = Some(one(v).to_owned()).filter(|p| !p.trim_matches('/').is_empty()); Ok(()) },
        |s| s.server.script_name.as_deref().map(quote),
    ),
    server(
        "limit_request_line", "limit-request-line", "RGI_LIMIT_REQUEST_LINE", Kind::Integer, "BYTES", Some("8190"),
        "Longest request target in bytes (else 414)",
        |s, v| { s.server.limits.max_request_line = number(v)?; Ok(()) },
        |s| Some(s.server.limits.max_request_line.to_string()),
    ),
    server(
        "limit_request_fields", "limit-request-fields", "RGI_LIMIT_REQUEST_FIELDS", Kind::Integer, "N", Some("100"),
        "Most header fields per request (else 431)",
        |s, v| { s.server.limits.max_headers = number(v)?; Ok(()) },
        |s| Some(s.server.limits.max_headers.to_string()),
    ),
    server(
        "limit_request_head", "limit-request-head", "RGI_LIMIT_REQUEST_HEAD", Kind::Integer, "BYTES", Some("65536"),
        "Largest request head (request line plus headers) in bytes (else 431); at least 8192",
        |s, v| { s.server.limits.max_head_bytes = number::<usize>(v)?.max(8192); Ok(()) },
        |s| Some(s.server.limits.max_head_bytes.to_string()),
    ),
    server(
        "limit_request_body", "limit-request-body", "RGI_LIMIT_REQUEST_BODY", Kind::Integer, "BYTES", Some("1073741824"),
        "Largest request body in bytes (else 413); 0 means no limit",
        |s, v| { s.server.limits.max_body = Some(number::<u64>(v)?).filter(|n| *n > 0); Ok(()) },
        |s| Some(s.server.limits.max_body.unwrap_or(0).to_string()),
    ).default_doc("1073741824 (1 GiB)"),
    server(
        "header_timeout", "header-timeout", "RGI_HEADER_TIMEOUT", Kind::Seconds, "SECS", Some("30"),
        "Seconds a client may take to send a request head (slowloris guard; also the keep-alive idle limit); 0 turns it off",
        |s, v| { s.server.limits.header_read_timeout = seconds(v)?; Ok(()) },
        |s| Some(secs(s.server.limits.header_read_timeout)),
    ),
    server(
        "idle_release", "idle-release", "RGI_IDLE_RELEASE", Kind::Seconds, "SECS", Some("1"),
        "Seconds a kept-alive HTTP connection idles before releasing its buffers (~10 KiB each); 0 keeps them",
        |s, v| { s.server.idle_release = seconds(v)?; Ok(()) },
        |s| Some(secs(s.server.idle_release)),
    ),
    server(
        "graceful_timeout", "graceful-timeout", "RGI_GRACEFUL_TIMEOUT", Kind::Seconds, "SECS", Some("30"),
        "Seconds in-flight requests may take to finish after TERM, INT or a reload (HUP)",
        |s, v| { s.server.graceful_timeout = seconds(v)?; Ok(()) },
        |s| Some(secs(s.server.graceful_timeout)),
    ),
    server(
        "threads", "threads", "RGI_THREADS", Kind::Integer, "N", Some("0"),
        "Async: runtime threads (0: one per CPU); sync workers: serving threads per worker, at most 4096",
        |s, v| {
            s.threads = number(v)?;
            if s.threads > 4096 {
                return Err(format!("{} is more than 4096", s.threads));
            }
            Ok(())
        },
        |s| Some(s.threads.to_string()),
    ).default_doc("0 (one per CPU); sync workers: 1"),
    server(
        "blocking_threads", "blocking-threads", "RGI_BLOCKING_THREADS", Kind::Integer, "N", Some("512"),
        "Threads for blocking applications",
        |s, v| { s.server.blocking_threads = number::<usize>(v)?.max(1); Ok(()) },
        |s| Some(s.server.blocking_threads.to_string()),
    ),
    server(
        "blocking_queue", "blocking-queue", "RGI_BLOCKING_QUEUE", Kind::Integer, "N", Some("1024"),
        "Blocking jobs that may wait for a thread before requests get 503",
        |s, v| { s.server.blocking_queue = number(v)?; Ok(()) },
        |s| Some(s.server.blocking_queue.to_string()),
    ),
    server(
        "max_connections", "max-connections", "RGI_MAX_CONNECTIONS", Kind::Integer, "N", Some("1024"),
        "FastCGI, SCGI, uwsgi: most connections served at once (FCGI_MAX_CONNS)",
        |s, v| { s.server.max_connections = number::<usize>(v)?.max(1); Ok(()) },
        |s| Some(s.server.max_connections.to_string()),
    ),
    server(
        "max_requests_in_flight", "max-requests-in-flight", "RGI_MAX_REQUESTS_IN_FLIGHT", Kind::Integer, "N", Some("1024"),
        "FastCGI: most requests in flight at once (FCGI_MAX_REQS); more are refused as overloaded. Without the process manager --max-requests also sets it",
        |s, v| { s.server.max_requests = number::<usize>(v)?.max(1); Ok(()) },
        |s| Some(s.server.max_requests.to_string()),
    ),
    server(
        "backlog", "backlog", "RGI_BACKLOG", Kind::Integer, "N", Some("2048"),
        "Listen backlog",
        |s, v| { s.bind_options.backlog = number(v)?; Ok(()) },
        |s| Some(s.bind_options.backlog.to_string()),
    ),
    server(
        "reuse_port", "reuse-port", "RGI_REUSE_PORT", Kind::Bool, "", Some("false"),
        "Set SO_REUSEPORT on TCP listeners",
        |s, v| { s.bind_options.reuse_port = boolean(v)?; Ok(()) },
        |s| Some(s.bind_options.reuse_port.to_string()),
    ),
    server(
        "socket_mode", "socket-mode", "RGI_SOCKET_MODE", Kind::Text, "OCTAL", None,
        "Permissions of unix socket files, in octal (660: owner and group may connect; a string in the file)",
        |s, v| { s.bind_options.unix_mode = Some(crate::bind::parse_mode(one(v))?); Ok(()) },
        |s| s.bind_options.unix_mode.map(|m| quote(&format!("{m:o}"))),
    ).default_doc("as the umask leaves them"),
    server(
        "certfile", "certfile", "RGI_CERTFILE", Kind::Text, "PATH", None,
        "HTTP: serve HTTPS with this PEM certificate chain (leaf first); needs keyfile. Each new worker reads it, so HUP reloads it",
        |s, v| { s.certfile = Some(PathBuf::from(one(v))); Ok(()) },
        |s| s.certfile.as_deref().map(path),
    ),
    server(
        "keyfile", "keyfile", "RGI_KEYFILE", Kind::Text, "PATH", None,
        "HTTP: the PEM private key of certfile",
        |s, v| { s.keyfile = Some(PathBuf::from(one(v))); Ok(()) },
        |s| s.keyfile.as_deref().map(path),
    ),
    server(
        "ca_certs", "ca-certs", "RGI_CA_CERTS", Kind::Text, "PATH", None,
        "HTTPS: require client certificates issued by these PEM CA certificates",
        |s, v| { s.ca_certs = Some(PathBuf::from(one(v))); Ok(()) },
        |s| s.ca_certs.as_deref().map(path),
    ),
    server(
        "http2", "http2", "RGI_HTTP2", Kind::Bool, "", Some("true"),
        "HTTP: serve HTTP/2 too, by ALPN over TLS and by prior knowledge (h2c) on cleartext listeners; --no-http2 (RGI_HTTP2=false) serves HTTP/1.1 only. Sync workers serve HTTP/1.1 only and refuse --http2",
        |s, v| { s.server.http2.enabled = boolean(v)?; Ok(()) },
        |s| Some(s.server.http2.enabled.to_string()),
    ).negation("no_http2", "no-http2").default_doc("`true`; `false` for sync workers"),
    server(
        "http2_max_streams", "http2-max-streams", "RGI_HTTP2_MAX_STREAMS", Kind::Integer, "N", Some("100"),
        "HTTP/2: most streams (requests) a client may have open at once on one connection",
        |s, v| { s.server.http2.max_concurrent_streams = number::<u32>(v)?.max(1); Ok(()) },
        |s| Some(s.server.http2.max_concurrent_streams.to_string()),
    ),
    server(
        "workers", "workers", "RGI_WORKERS", Kind::Integer, "N", Some("1"),
        "Worker processes, 1 to 1024 (starts the process manager)",
        |s, v| {
            let n: usize = number(v)?;
            if !(1..=1024).contains(&n) {
                return Err(format!("{n} is not in 1..=1024"));
            }
            s.workers = n;
            Ok(())
        },
        |s| Some(s.workers.to_string()),
    ).short('w').process(),
    server(
        "worker_class", "worker-class", "RGI_WORKER_CLASS", Kind::Choice(&["sync", "async"]), "CLASS", Some("async"),
        "Worker kind: sync (threads, one connection each) or async (tokio); gateway protocols need async",
        |s, v| { s.worker_class = choice::<WorkerClass>(v)?; Ok(()) },
        |s| Some(quote(s.worker_class.as_str())),
    ).short('k').process(),
    server(
        "timeout", "timeout", "RGI_TIMEOUT", Kind::Seconds, "SECS", Some("30"),
        "Seconds a worker may stay silent (no heartbeat) before it is aborted (SIGABRT, then SIGKILL) and replaced; 0 = off",
        |s, v| { s.timeout = Some(seconds(v)?).filter(|t| !t.is_zero()); Ok(()) },
        |s| Some(secs(s.timeout.unwrap_or_default())),
    ).short('t').process(),
    server(
        "request_timeout", "request-timeout", "RGI_REQUEST_TIMEOUT", Kind::Seconds, "SECS", Some("0"),
        "Per-request deadline in seconds for async code (504 when exceeded); 0 = off",
        |s, v| { s.request_timeout = Some(seconds(v)?).filter(|t| !t.is_zero()); Ok(()) },
        |s| Some(secs(s.request_timeout.unwrap_or_default())),
    ).process(),
    server(
        "max_requests", "max-requests", "RGI_MAX_REQUESTS", Kind::Integer, "N", Some("0"),
        "Recycle a worker after this many requests; 0 = never. Without the process manager (no -w, -k, -c…) it is the FastCGI in-flight limit instead",
        |s, v| { s.max_requests = number(v)?; Ok(()) },
        |s| Some(s.max_requests.to_string()),
    ).process(),
    server(
        "max_requests_jitter", "max-requests-jitter", "RGI_MAX_REQUESTS_JITTER", Kind::Integer, "N", Some("0"),
        "Add a random 0..=N to each worker's max_requests",
        |s, v| { s.max_requests_jitter = number(v)?; Ok(()) },
        |s| Some(s.max_requests_jitter.to_string()),
    ).process(),
    server(
        "pidfile", "pid", "RGI_PIDFILE", Kind::Text, "FILE", None,
        "Write the master's pid to this file (FILE.2 for a USR2 upgrade)",
        |s, v| { s.pidfile = Some(PathBuf::from(one(v))); Ok(()) },
        |s| s.pidfile.as_deref().map(path),
    ).short('p').process(),
    server(
        "accesslog", "access-logfile", "RGI_ACCESS_LOGFILE", Kind::Text, "FILE", None,
        "Access log: a file, or - for standard output",
        |s, v| { s.access_log = Some(target(one(v), LogTarget::Stdout)); Ok(()) },
        |s| s.access_log.as_ref().map(show_target),
    ).process(),
    server(
        "access_log_format", "access-logformat", "RGI_ACCESS_LOGFORMAT", Kind::Text, "FORMAT", Some(DEFAULT_FORMAT),
        "Access log format: gunicorn's atoms (%(h)s …) or json",
        |s, v| {
            s.access_log_format = one(v).parse().map_err(|e: crate::accesslog::FormatError| e.to_string())?;
            s.access_log_format_text = one(v).to_owned();
            Ok(())
        },
        |s| Some(quote(&s.access_log_format_text)),
    ).process().default_doc("gunicorn's (`%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"`)"),
    server(
        "errorlog", "error-logfile", "RGI_ERROR_LOGFILE", Kind::Text, "FILE", Some("-"),
        "Error log (master and worker messages): a file, or - for standard error",
        |s, v| { s.error_log = target(one(v), LogTarget::Stderr); Ok(()) },
        |s| Some(show_target(&s.error_log)),
    ).process(),
    server(
        "loglevel", "log-level", "RGI_LOG_LEVEL", Kind::Choice(&["debug", "info", "warning", "error", "critical"]), "LEVEL", Some("info"),
        "Error log level",
        |s, v| { s.log_level = choice::<LogLevel>(v)?; Ok(()) },
        |s| Some(quote(&s.log_level.label().to_ascii_lowercase())),
    ).process(),
    server(
        "reload", "reload", "RGI_RELOAD", Kind::Bool, "", Some("false"),
        "Development: when the program's file (or a reload_extra_files path) changes, start new workers from it and retire the old ones gracefully, as HUP does (polled every second)",
        |s, v| { s.reload = boolean(v)?; Ok(()) },
        |s| Some(s.reload.to_string()),
    ).process(),
    server(
        "reload_extra_files", "reload-extra-file", "RGI_RELOAD_EXTRA_FILE", Kind::List, "FILE", None,
        "Also watch this file for --reload (repeatable or comma-separated; implies --reload)",
        |s, v| { s.reload_extra_files = v.iter().map(PathBuf::from).collect(); Ok(()) },
        |s| (!s.reload_extra_files.is_empty()).then(|| {
            format!("[{}]", s.reload_extra_files.iter().map(|p| path(p)).collect::<Vec<_>>().join(", "))
        }),
    ).process(),
    server(
        "config", "config", "RGI_CONFIG", Kind::Text, "FILE", None,
        "A TOML file with the keys of this table (starts the process manager)",
        |s, v| { s.config_file = Some(PathBuf::from(one(v))); Ok(()) },
        |_| None,
    ).short('c').process().not_in_file(),
    server(
        "check_config", "check-config", "", Kind::Bool, "", Some("false"),
        "Print the effective configuration and exit (0 valid, 2 invalid)",
        |s, v| { s.check_config = boolean(v)?; Ok(()) },
        |_| None,
    ).process().not_in_file().no_env(),
];

/// The single value of a setting (clap and the file reader give exactly one for non-list kinds).
fn one(v: &[String]) -> &str {
    v.last().map_or("", String::as_str)
}

fn number<T: std::str::FromStr>(v: &[String]) -> Result<T, String> {
    let text = one(v).trim();
    text.parse()
        .map_err(|_| format!("{text:?} is not a whole number in range"))
}

fn seconds(v: &[String]) -> Result<Duration, String> {
    let text = one(v).trim();
    let n: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("{text} is not a number of seconds ≥ 0"));
    }
    Ok(Duration::try_from_secs_f64(n).unwrap_or(Duration::MAX))
}

fn boolean(v: &[String]) -> Result<bool, String> {
    match one(v) {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

fn choice<T: ValueEnum>(v: &[String]) -> Result<T, String> {
    T::from_str(one(v), false)
}

fn target(s: &str, dash: LogTarget) -> LogTarget {
    if s == "-" {
        dash
    } else {
        LogTarget::File(PathBuf::from(s))
    }
}

fn show_target(t: &LogTarget) -> String {
    match t {
        LogTarget::File(p) => path(p),
        LogTarget::Stdout | LogTarget::Stderr => quote("-"),
    }
}

fn path(p: &std::path::Path) -> String {
    quote(&p.display().to_string())
}

fn secs(d: Duration) -> String {
    d.as_secs_f64().to_string()
}
