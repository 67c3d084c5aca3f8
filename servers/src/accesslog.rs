//! Access and error logs shared by many processes: one `write(2)` per line, reopened on `SIGUSR1`.
//!
//! Supported:
//! - gunicorn's access-log atoms (`--access-logformat`) and `json` lines. The format engine
//!   ([`AccessFormat`], [`AccessRecord`]) lives in `rgi_middleware::access_log::format`, shared with the
//!   access-log middleware so that an application under CGI or FastCGI logs the same lines; it is
//!   re-exported here.
//! - Lines never tear or interleave across processes: each line is built in memory and written with a
//!   single `write(2)` to a descriptor opened with `O_APPEND`, which the kernel applies atomically for
//!   regular files (gunicorn #1272, #1941: Python's `logging` is not multi-process safe).
//! - [`LogFile::reopen`] re-opens the path (logrotate: rename, then `SIGUSR1`); every arbiter process
//!   reopens its own descriptor, so no process keeps writing to the rotated file (gunicorn #1317).
//!
//! Not supported: `{var}e` (environ) atoms, syslog, statsd; local time zones (times are UTC).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use clap::ValueEnum;
use serde::Deserialize;

pub use rgi_middleware::access_log::format::{
    clf_time, rfc3339, AccessFormat, AccessRecord, AtomPiece, FormatError, DEFAULT_FORMAT,
};

/// Where a log goes: `-` (standard output for the access log, standard error for the error log) or
/// a file path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, opened with `O_APPEND | O_CREAT`.
    File(PathBuf),
}

impl fmt::Display for LogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogTarget::Stdout => f.write_str("- (stdout)"),
            LogTarget::Stderr => f.write_str("- (stderr)"),
            LogTarget::File(p) => write!(f, "{}", p.display()),
        }
    }
}

enum Sink {
    Stdout,
    Stderr,
    File(File),
}

/// A log destination written one whole line at a time, reopenable for log rotation.
pub struct LogFile {
    target: LogTarget,
    sink: Mutex<Sink>,
}

impl fmt::Debug for LogFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogFile")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn open_append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    /// Open `target`.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened for appending.
    pub fn open(target: LogTarget) -> io::Result<Self> {
        let sink = match &target {
            LogTarget::Stdout => Sink::Stdout,
            LogTarget::Stderr => Sink::Stderr,
            LogTarget::File(path) => Sink::File(open_append(path)?),
        };
        Ok(LogFile {
            target,
            sink: Mutex::new(sink),
        })
    }

    /// Where this log goes.
    pub fn target(&self) -> &LogTarget {
        &self.target
    }

    /// Write `line` (which must end with `\n`) with one `write(2)`. Errors are ignored: a full disk
    /// or a closed pipe must not stop the server.
    pub fn write_line(&self, line: &[u8]) {
        let Ok(mut sink) = self.sink.lock() else {
            return;
        };
        let _ = match &mut *sink {
            // `write_all` on the locked handles: with an empty buffer and one trailing newline,
            // std's line writer issues one write.
            Sink::Stdout => io::stdout().lock().write_all(line),
            Sink::Stderr => io::stderr().lock().write_all(line),
            Sink::File(file) => file.write(line).map(|_| ()),
        };
    }

    /// Re-open the file at the same path (after logrotate renamed it); standard streams are left as
    /// they are.
    ///
    /// # Errors
    ///
    /// When the path cannot be opened; the old descriptor is then kept.
    pub fn reopen(&self) -> io::Result<()> {
        if let LogTarget::File(path) = &self.target {
            let file = open_append(path)?;
            if let Ok(mut sink) = self.sink.lock() {
                *sink = Sink::File(file);
            }
        }
        Ok(())
    }
}

/// Error-log verbosity (`--log-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything, including each heartbeat-related decision.
    Debug,
    /// Worker starts and stops, signals.
    Info,
    /// Timeouts, crashed workers.
    Warning,
    /// Failures.
    Error,
    /// Only what stops the master.
    Critical,
}

impl LogLevel {
    /// The name in log lines (`INFO`).
    pub fn label(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }
}

/// The error log of an arbiter process: `[time] [pid] [LEVEL] message`, filtered by `--log-level`.
#[derive(Debug)]
pub struct ErrorLog {
    file: LogFile,
    level: std::sync::atomic::AtomicU8,
}

fn level_rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Debug => 0,
        LogLevel::Info => 1,
        LogLevel::Warning => 2,
        LogLevel::Error => 3,
        LogLevel::Critical => 4,
    }
}

impl ErrorLog {
    /// Log to `file` at `level` and above.
    pub fn new(file: LogFile, level: LogLevel) -> Self {
        ErrorLog {
            file,
            level: std::sync::atomic::AtomicU8::new(level_rank(level)),
        }
    }

    /// Change the level (after a reload).
    pub fn set_level(&self, level: LogLevel) {
        self.level
            .store(level_rank(level), std::sync::atomic::Ordering::Relaxed);
    }

    /// Write `message` at `level` (each of its lines separately, each with one `write(2)`).
    pub fn log(&self, level: LogLevel, message: impl fmt::Display) {
        if level_rank(level) < self.level.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        self.write(level, message);
    }

    fn write(&self, level: LogLevel, message: impl fmt::Display) {
        let text = message.to_string();
        let prefix = format!(
            "[{}] [{}] [{}] ",
            clf_time(SystemTime::now()),
            std::process::id(),
            level.label()
        );
        for line in text.lines() {
            let mut buf = String::with_capacity(prefix.len() + line.len() + 1);
            buf.push_str(&prefix);
            buf.push_str(line);
            buf.push('\n');
            self.file.write_line(buf.as_bytes());
        }
    }

    /// Re-open the file (USR1).
    ///
    /// # Errors
    ///
    /// As [`LogFile::reopen`].
    pub fn reopen(&self) -> io::Result<()> {
        self.file.reopen()
    }
}

/// Routes `rgi.errors` (application diagnostics) to an [`ErrorLog`], unfiltered, at `ERROR`.
#[derive(Debug, Clone)]
pub struct ErrorLogSink(pub Arc<ErrorLog>);

impl rgi::ErrorSink for ErrorLogSink {
    fn write_line(&self, line: &str) {
        self.0.write(LogLevel::Error, line);
    }
}

/// An access log: a [`LogFile`] and a format.
#[derive(Debug)]
pub struct AccessLog {
    file: LogFile,
    format: AccessFormat,
}

impl AccessLog {
    /// Log to `file` in `format`.
    pub fn new(file: LogFile, format: AccessFormat) -> Self {
        AccessLog { file, format }
    }

    /// The underlying file (for [`LogFile::reopen`]).
    pub fn file(&self) -> &LogFile {
        &self.file
    }

    /// Format and write one record (one `write(2)`).
    pub fn log(&self, record: &AccessRecord) {
        let mut line = self.format.render(record, std::process::id());
        line.push('\n');
        self.file.write_line(line.as_bytes());
    }
}

/// A shared access log handle.
pub type SharedAccessLog = Arc<AccessLog>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_follows_a_rename() {
        let dir = std::env::temp_dir().join(format!("rgi-accesslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let log = LogFile::open(LogTarget::File(path.clone())).unwrap();
        log.write_line(b"one\n");
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        log.write_line(b"two\n");
        log.reopen().unwrap();
        log.write_line(b"three\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("access.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
