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

    /// Write `line` (which must end with `\n`) with one `write(2)`. A full disk or a closed pipe
    /// must not stop the server: callers that can report the failure elsewhere use
    /// [`try_write_line`](LogFile::try_write_line); this one ignores it.
    pub fn write_line(&self, line: &[u8]) {
        let _ = self.try_write_line(line);
    }

    /// As [`write_line`](LogFile::write_line), saying whether the whole line was written.
    ///
    /// # Errors
    ///
    /// The write's error (`ENOSPC` on a full disk); a short write (a disk filling up in the
    /// middle of the line) is `WriteZero`. The rest of a short line is not written: a second
    /// `write(2)` could land after another process's line.
    pub fn try_write_line(&self, line: &[u8]) -> io::Result<()> {
        let Ok(mut sink) = self.sink.lock() else {
            return Err(io::Error::other("log lock poisoned"));
        };
        match &mut *sink {
            // `write_all` on the locked handles: with an empty buffer and one trailing newline,
            // std's line writer issues one write.
            Sink::Stdout => io::stdout().lock().write_all(line),
            Sink::Stderr => io::stderr().lock().write_all(line),
            // One `write(2)`, never retried: a retry could interleave with another process's line.
            Sink::File(file) => match file.write(line)? {
                n if n == line.len() => Ok(()),
                n => Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!(
                        "only {n} of the line's {} bytes written: is the disk full?",
                        line.len()
                    ),
                )),
            },
        }
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

/// An access log: a [`LogFile`] and a format, and where its own write failures are reported.
#[derive(Debug)]
pub struct AccessLog {
    file: LogFile,
    format: AccessFormat,
    errors: Option<Arc<ErrorLog>>,
    failure: Mutex<Option<Failure>>,
}

/// How often a log that keeps failing is reported again (one line per failing request would flood
/// the error log of a server under load, on what may be the same full disk).
const FAILURE_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The access log is failing to write (a full disk): since when, and how many lines were lost.
#[derive(Debug)]
struct Failure {
    lost: u64,
    reported: std::time::Instant,
}

impl AccessLog {
    /// Log to `file` in `format`. Write failures are not reported (see
    /// [`reporting_to`](AccessLog::reporting_to)).
    pub fn new(file: LogFile, format: AccessFormat) -> Self {
        AccessLog {
            file,
            format,
            errors: None,
            failure: Mutex::new(None),
        }
    }

    /// Report this log's write failures to `errors`: one `ERROR` line when writing starts failing
    /// (a full disk), one more at most every minute while it goes on, with the number of lines
    /// lost, and one `WARNING` when lines are written again. Requests are answered throughout.
    #[must_use]
    pub fn reporting_to(mut self, errors: Arc<ErrorLog>) -> Self {
        self.errors = Some(errors);
        self
    }

    /// The underlying file (for [`LogFile::reopen`]).
    pub fn file(&self) -> &LogFile {
        &self.file
    }

    /// Format and write one record (one `write(2)`).
    pub fn log(&self, record: &AccessRecord) {
        let mut line = self.format.render(record, std::process::id());
        line.push('\n');
        let written = self.file.try_write_line(line.as_bytes());
        self.account(written);
    }

    /// Track failing writes and report their start, their persistence and their end.
    fn account(&self, written: io::Result<()>) {
        let Some(errors) = &self.errors else {
            return;
        };
        let Ok(mut failure) = self.failure.lock() else {
            return;
        };
        let target = &self.file.target;
        match (written, &mut *failure) {
            (Ok(()), None) => {}
            (Ok(()), Some(f)) => {
                errors.log(
                    LogLevel::Warning,
                    format_args!(
                        "access log {target}: writing again; {} lines were lost",
                        f.lost
                    ),
                );
                *failure = None;
            }
            (Err(e), None) => {
                errors.log(
                    LogLevel::Error,
                    format_args!(
                        "access log {target}: cannot write ({e}); requests are still served, \
                         their lines are lost until it can (reported again at most once a minute)"
                    ),
                );
                *failure = Some(Failure {
                    lost: 1,
                    reported: std::time::Instant::now(),
                });
            }
            (Err(e), Some(f)) => {
                f.lost += 1;
                if f.reported.elapsed() >= FAILURE_REPORT_INTERVAL {
                    f.reported = std::time::Instant::now();
                    errors.log(
                        LogLevel::Error,
                        format_args!(
                            "access log {target}: still cannot write ({e}); {} lines lost so far",
                            f.lost
                        ),
                    );
                }
            }
        }
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

    #[test]
    fn a_failing_access_log_is_reported_once_then_again_when_it_recovers() {
        let dir = std::env::temp_dir().join(format!("rgi-accesslog-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let error_path = dir.join("error.log");
        let errors = LogFile::open(LogTarget::File(error_path.clone())).unwrap();
        let errors = Arc::new(ErrorLog::new(errors, LogLevel::Info));
        // /dev/full: every write fails with ENOSPC.
        let full = LogFile::open(LogTarget::File("/dev/full".into())).unwrap();
        let failed = full.try_write_line(b"line\n").unwrap_err();
        assert_eq!(failed.raw_os_error(), Some(28), "{failed}"); // ENOSPC
        let log = AccessLog::new(full, AccessFormat::default()).reporting_to(errors);
        for _ in 0..100 {
            log.account(log.file.try_write_line(b"line\n"));
        }
        log.account(Ok(()));
        log.account(Ok(()));
        let text = std::fs::read_to_string(&error_path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0]
                .contains("[ERROR] access log /dev/full: cannot write (No space left on device"),
            "{text}"
        );
        assert!(
            lines[1].contains("[WARNING] access log /dev/full: writing again; 100 lines were lost"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
