//! Settings, each declared once in [`SETTINGS`] (gunicorn's `config.py` `Setting` classes as a
//! table): its flag, `RGI_*` environment variable, configuration-file key, default, help line and
//! parser all come from that one row. They are read in two stages: [`Raw`], the command line and the
//! environment as the user wrote them, then [`Settings`], resolved — the file read, defaults applied,
//! every value checked.
//!
//! # Precedence
//!
//! **command line > environment (`RGI_*`) > configuration file (`-c`/`--config`, or `RGI_CONFIG`) >
//! defaults.** A flag given on the command line wins over its `RGI_*` variable (clap merges the two),
//! and either wins over the file; the file fills in only what neither set. `--check-config` prints
//! the result as a configuration file.
//!
//! The process manager ([`crate::arbiter`]) starts when any of its settings is given on the command
//! line or in the environment, except `--max-requests`: on its own that keeps the single-process
//! server and its older meaning, the FastCGI in-flight limit (`--max-requests-in-flight`).
//! `--protocol fastcgi|scgi|uwsgi` needs async workers; the access log, `--max-requests` and
//! `--request-timeout` apply to every protocol alike.
//!
//! Not supported: gunicorn's Python-only settings (`preload_app`, `paste`, `pythonpath`…), `daemon`,
//! `user`/`group`, sync workers for gateway protocols.
//!
//! The table below is generated from [`SETTINGS`] by [`markdown_table`] (a test keeps it current).
//!
#![doc = include_str!("../../SETTINGS.md")]

mod table;

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, ValueEnum};
use serde::Deserialize;

pub use self::table::{Setting, SETTINGS};
pub use crate::accesslog::LogLevel;
use crate::accesslog::{AccessFormat, LogTarget};
use crate::bind::{Bind, BindOptions};
use crate::config::Config;
use crate::protocol::Protocol;
use crate::tls::{Tls, TlsError, TlsFiles};

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

/// Which part of the program a setting belongs to (its `--help` heading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Every server, with or without the process manager.
    Server,
    /// The process manager; giving one of these starts it.
    ProcessManager,
}

impl Group {
    fn heading(self) -> &'static str {
        match self {
            Group::Server => "Server",
            Group::ProcessManager => "Process manager (gunicorn-style master and workers)",
        }
    }
}

/// What a setting's value looks like: how clap takes it and which TOML type the file must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number (TOML integer).
    Integer,
    /// Seconds, fractions allowed (TOML integer or float).
    Seconds,
    /// A flag without a value on the command line; `true`/`false` in the environment and the file.
    Bool,
    /// Text or a path (TOML string).
    Text,
    /// One of these names (TOML string).
    Choice(&'static [&'static str]),
    /// Repeatable or comma-separated (TOML string or array of strings).
    List,
}

/// Settings the servers and the process manager run with (resolved stage): every default applied,
/// every value validated.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Where to listen. Default `127.0.0.1:8000`.
    pub binds: Vec<Bind>,
    /// Backlog, `SO_REUSEPORT`, unix socket mode.
    pub bind_options: BindOptions,
    /// The protocol. FastCGI, SCGI and uwsgi need async workers.
    pub protocol: Protocol,
    /// The per-server configuration each worker serves with (limits, mount point, pools, TLS).
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
    /// Recycle after this many requests; 0 = never (the default, and always without the process
    /// manager).
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
    /// The certificate chain for HTTPS (loaded into [`Config::tls`]).
    pub certfile: Option<PathBuf>,
    /// Its private key.
    pub keyfile: Option<PathBuf>,
    /// The CAs client certificates must chain to.
    pub ca_certs: Option<PathBuf>,
    /// `--reload`: reload when the program's file or one of
    /// [`reload_extra_files`](Settings::reload_extra_files) changes.
    pub reload: bool,
    /// More files `--reload` watches.
    pub reload_extra_files: Vec<PathBuf>,
    /// `--check-config`: print the configuration and exit.
    pub check_config: bool,
    /// Whether the process manager runs (see the module documentation).
    pub process_manager: bool,
    /// The settings given by the command line, the environment or the file (not defaulted).
    given: Vec<&'static str>,
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
    /// The configuration file is not valid TOML.
    ParseFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// The configuration file has an unknown key, or a value of the wrong type.
    FileKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A value is out of range or malformed.
    Invalid {
        /// The setting's name (as in the file).
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The TLS files cannot be loaded.
    Tls(TlsError),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Usage(_) => f.write_str("invalid command line"),
            SettingsError::ReadFile { path, .. } => write!(f, "cannot read {}", path.display()),
            SettingsError::ParseFile { path, .. } => {
                write!(f, "configuration file {}", path.display())
            }
            SettingsError::FileKey { path, key, reason } => {
                write!(f, "configuration file {}: {key}: {reason}", path.display())
            }
            SettingsError::Invalid { setting, reason } => write!(f, "{setting}: {reason}"),
            // Transparent: the TLS error names the file.
            SettingsError::Tls(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for SettingsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SettingsError::Usage(e) => Some(e),
            SettingsError::ReadFile { source, .. } => Some(source),
            SettingsError::ParseFile { source, .. } => Some(&**source),
            SettingsError::FileKey { .. } | SettingsError::Invalid { .. } => None,
            SettingsError::Tls(e) => e.source(),
        }
    }
}

/// The command line: one argument per row of [`SETTINGS`].
pub fn command() -> clap::Command {
    let mut command = clap::Command::new("rgi-servers")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Serve an RGI application")
        .long_about(
            "Serve an RGI application over HTTP, FastCGI, SCGI, uwsgi or CGI.\n\n\
             With neither --bind nor --protocol the environment decides:\n  \
             - GATEWAY_INTERFACE set: serve one request as a CGI script (RFC 3875) and exit; the command \
             line is ignored. A script named nph-* writes a full HTTP status line (NPH).\n  \
             - descriptor 0 is a listening socket: serve FastCGI on it (lighttpd bin-path, spawn-fcgi).\n  \
             - otherwise: HTTP on 127.0.0.1:8000.\n\n\
             --protocol fastcgi without --bind also serves descriptor 0 when it is a listening socket. \
             FastCGI honours FCGI_WEB_SERVER_ADDRS (comma-separated IPs allowed to connect over TCP).\n\n\
             -w, -k, -c or any other process-manager option starts a gunicorn-style master and workers. \
             Precedence: command line > RGI_* environment > configuration file > defaults.",
        );
    for setting in SETTINGS {
        command = command.arg(argument(setting));
        if let Some((id, long)) = setting.negation {
            command = command.arg(
                Arg::new(id)
                    .long(long)
                    .action(ArgAction::SetTrue)
                    .overrides_with(setting.name)
                    .help(format!("Turn --{} off", setting.long))
                    .help_heading(setting.group.heading()),
            );
        }
    }
    command
}

fn argument(s: &Setting) -> Arg {
    let mut help = s.help.to_owned();
    if let Some(default) = s.default_doc.or(s.default) {
        if s.kind != Kind::Bool {
            let _ = write!(help, " [default: {}]", default.replace('`', ""));
        }
    }
    let mut arg = Arg::new(s.name)
        .long(s.long)
        .help(help)
        .help_heading(s.group.heading());
    if let Some(c) = s.short {
        arg = arg.short(c);
    }
    if let Some(env) = s.env {
        arg = arg.env(env);
    }
    if let Some((id, _)) = s.negation {
        arg = arg.overrides_with(id);
    }
    match s.kind {
        Kind::Bool => arg.action(ArgAction::SetTrue),
        Kind::List => arg
            .action(ArgAction::Append)
            .value_name(s.value_name)
            .value_delimiter(','),
        Kind::Choice(names) => arg
            .action(ArgAction::Set)
            .value_name(s.value_name)
            .value_parser(clap::builder::PossibleValuesParser::new(names)),
        Kind::Integer | Kind::Seconds | Kind::Text => {
            arg.action(ArgAction::Set).value_name(s.value_name)
        }
    }
}

/// The settings as a Markdown table (flag, environment variable, file key, default, meaning): what
/// `servers/SETTINGS.md` holds.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| flag | env | file key | default | meaning |\n|---|---|---|---|---|\n");
    for s in SETTINGS {
        let flag = match (s.short, s.negation) {
            (Some(c), _) => format!("`-{c}`, `--{}`", s.long),
            (None, Some((_, no))) => format!("`--{}`, `--{no}`", s.long),
            (None, None) => format!("`--{}`", s.long),
        };
        let env = s.env.map_or_else(|| "—".to_owned(), |e| format!("`{e}`"));
        let key = if s.in_file {
            format!("`{}`", s.name)
        } else {
            "—".to_owned()
        };
        let default = match (s.default_doc, s.default) {
            (Some(doc), _) => doc.to_owned(),
            (None, Some(d)) => format!("`{d}`"),
            (None, None) => "none".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {flag} | {env} | {key} | {default} | {} |",
            s.help.replace('|', "\\|")
        );
    }
    out
}

/// The raw stage: what the command line and the environment say.
#[derive(Debug, Clone)]
pub struct Raw {
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
        Ok(Raw { matches })
    }

    /// The values of `setting` when the command line or its environment variable gave it.
    fn given(&self, setting: &Setting) -> Option<Vec<String>> {
        // `--no-LONG` on the command line beats the variable (and the last of the pair wins).
        if setting
            .negation
            .is_some_and(|(id, _)| self.matches.get_flag(id))
        {
            return Some(vec!["false".to_owned()]);
        }
        if !matches!(
            self.matches.value_source(setting.name),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            return None;
        }
        Some(match setting.kind {
            Kind::Bool => vec![self.matches.get_flag(setting.name).to_string()],
            _ => self
                .matches
                .get_many::<String>(setting.name)?
                .cloned()
                .collect(),
        })
    }

    /// Whether these options ask for the process manager: any of its settings, except
    /// `--max-requests`, which alone keeps the launcher's meaning (FastCGI's in-flight limit) in a
    /// single-process server.
    pub fn wants_arbiter(&self) -> bool {
        SETTINGS.iter().any(|s| {
            s.group == Group::ProcessManager && s.name != "max_requests" && self.given(s).is_some()
        })
    }

    /// The resolved stage: read the configuration file, apply precedence and defaults, validate.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or parsed, or a value is invalid.
    pub fn resolve(&self) -> Result<Settings, SettingsError> {
        let config = SETTINGS
            .iter()
            .find(|s| s.name == "config")
            .and_then(|s| self.given(s))
            .and_then(|v| v.last().map(PathBuf::from));
        let file = match &config {
            Some(path) => read_file(path)?,
            None => toml::Table::new(),
        };
        let mut settings = Settings::blank();
        for setting in SETTINGS {
            let values = if let Some(v) = self.given(setting) {
                settings.given.push(setting.name);
                v
            } else if let Some(value) = file.get(setting.name).filter(|_| setting.in_file) {
                settings.given.push(setting.name);
                let path = config.clone().unwrap_or_default();
                from_toml(setting.kind, value).map_err(|reason| SettingsError::FileKey {
                    path,
                    key: setting.name.to_owned(),
                    reason,
                })?
            } else if let Some(default) = setting.default {
                vec![default.to_owned()]
            } else {
                continue;
            };
            (setting.apply)(&mut settings, &values).map_err(|reason| SettingsError::Invalid {
                setting: setting.name,
                reason,
            })?;
        }
        if let Some(key) = file
            .keys()
            .find(|k| !SETTINGS.iter().any(|s| s.in_file && s.name == k.as_str()))
        {
            return Err(SettingsError::FileKey {
                path: config.unwrap_or_default(),
                key: key.clone(),
                reason: "unknown setting".into(),
            });
        }
        settings.process_manager = self.wants_arbiter();
        settings.finish()?;
        Ok(settings)
    }
}

/// A file value as the strings a command line would give, after checking its TOML type.
fn from_toml(kind: Kind, value: &toml::Value) -> Result<Vec<String>, String> {
    use toml::Value as V;
    let text = match (kind, value) {
        (Kind::Integer, V::Integer(n)) => n.to_string(),
        (Kind::Seconds, V::Integer(n)) => n.to_string(),
        (Kind::Seconds, V::Float(n)) => n.to_string(),
        (Kind::Bool, V::Boolean(b)) => b.to_string(),
        (Kind::Text | Kind::Choice(_) | Kind::List, V::String(s)) => s.clone(),
        (Kind::List, V::Array(items)) => {
            return items
                .iter()
                .map(|v| match v {
                    V::String(s) => Ok(s.clone()),
                    other => Err(format!("expected strings, found {}", other.type_str())),
                })
                .collect()
        }
        (kind, other) => {
            let wanted = match kind {
                Kind::Integer => "an integer",
                Kind::Seconds => "a number of seconds",
                Kind::Bool => "true or false",
                Kind::Text | Kind::Choice(_) => "a string",
                Kind::List => "a string or an array of strings",
            };
            return Err(format!("expected {wanted}, found {}", other.type_str()));
        }
    };
    Ok(vec![text])
}

fn read_file(path: &Path) -> Result<toml::Table, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|source| SettingsError::ParseFile {
            path: path.to_owned(),
            source: Box::new(source),
        })
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Settings {
    /// The starting point every default of [`SETTINGS`] is applied to.
    fn blank() -> Settings {
        Settings {
            binds: Vec::new(),
            bind_options: BindOptions::default(),
            protocol: Protocol::Http,
            server: Config::default(),
            workers: 1,
            worker_class: WorkerClass::Async,
            threads: 0,
            timeout: None,
            graceful_timeout: Duration::ZERO,
            request_timeout: None,
            max_requests: 0,
            max_requests_jitter: 0,
            pidfile: None,
            access_log: None,
            access_log_format: AccessFormat::default(),
            access_log_format_text: String::new(),
            error_log: LogTarget::Stderr,
            log_level: LogLevel::Info,
            config_file: None,
            certfile: None,
            keyfile: None,
            ca_certs: None,
            reload: false,
            reload_extra_files: Vec::new(),
            check_config: false,
            process_manager: false,
            given: Vec::new(),
        }
    }

    /// Whether the command line, the environment or the file gave `setting` (a name of
    /// [`SETTINGS`]), rather than its default.
    pub fn is_given(&self, setting: &str) -> bool {
        self.given.contains(&setting)
    }

    /// The rules between settings.
    fn finish(&mut self) -> Result<(), SettingsError> {
        let invalid = |setting, reason| SettingsError::Invalid { setting, reason };
        if self.worker_class == WorkerClass::Sync {
            self.threads = self.threads.max(1);
        }
        self.server.worker_threads = match self.worker_class {
            WorkerClass::Sync => 1,
            WorkerClass::Async => self.threads,
        };
        self.graceful_timeout = self.server.graceful_timeout;
        if self.protocol != Protocol::Http && self.worker_class == WorkerClass::Sync {
            return Err(invalid(
                "worker_class",
                format!(
                    "sync workers speak http only; use -k async for --protocol {}",
                    self.protocol.scheme()
                ),
            ));
        }
        self.reload |= !self.reload_extra_files.is_empty();
        if !self.process_manager {
            // Without the process manager --max-requests is FastCGI's in-flight limit.
            if self.is_given("max_requests") && !self.is_given("max_requests_in_flight") {
                self.server.max_requests = usize::try_from(self.max_requests)
                    .unwrap_or(usize::MAX)
                    .max(1);
            }
            self.max_requests = 0;
        }
        if self.worker_class == WorkerClass::Sync {
            // One connection per thread, without keep-alive: an HTTP/2 connection, which carries
            // any number of requests at once, would hold a thread for its whole life.
            if self.is_given("http2") && self.server.http2.enabled {
                return Err(invalid(
                    "http2",
                    "sync workers serve one connection per thread without keep-alive, and an \
                     HTTP/2 connection carries many requests at once: use -k async for HTTP/2"
                        .into(),
                ));
            }
            self.server.http2.enabled = false;
        }
        self.server.tls = match (&self.certfile, &self.keyfile) {
            (Some(certfile), Some(keyfile)) => Some(
                Tls::load(
                    TlsFiles {
                        certfile: certfile.clone(),
                        keyfile: keyfile.clone(),
                        ca_certs: self.ca_certs.clone(),
                    },
                    self.server.http2.enabled,
                )
                .map_err(SettingsError::Tls)?,
            ),
            (Some(_), None) => return Err(invalid("certfile", "needs keyfile".into())),
            (None, Some(_)) => return Err(invalid("keyfile", "needs certfile".into())),
            (None, None) if self.ca_certs.is_some() => {
                return Err(invalid("ca_certs", "needs certfile and keyfile".into()))
            }
            (None, None) => None,
        };
        Ok(())
    }

    /// The effective configuration as a TOML file (what `--check-config` prints): every setting
    /// the file may hold, from the same table that parses it.
    pub fn render(&self) -> String {
        let mut out =
            String::from("# effective configuration (command line > RGI_* > file > defaults)\n");
        if let Some(file) = &self.config_file {
            let _ = writeln!(out, "# file: {}", file.display());
        }
        for setting in SETTINGS.iter().filter(|s| s.in_file) {
            match (setting.show)(self) {
                Some(value) => {
                    let _ = writeln!(out, "{} = {value}", setting.name);
                }
                None => {
                    let _ = writeln!(out, "# {} is not set", setting.name);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
