//! `rgi.errors`: where applications write diagnostics, one whole line at a time.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Receives lines written to `rgi.errors`. Servers implement it (stderr, FastCGI `FCGI_STDERR` records,
/// a log pipe to the master process).
///
/// Implementations **must** write each line whole: lines from concurrent requests may interleave with
/// each other but never tear.
pub trait ErrorSink: Send + Sync + 'static {
    /// Write one line; `line` has no trailing newline.
    fn write_line(&self, line: &str);
}

/// The `rgi.errors` stream of an environ: a cheap, clonable handle to the server's [`ErrorSink`].
///
/// ```
/// let (errors, captured) = rgi::Errors::capture();
/// errors.log(format_args!("cache miss for {}", 42));
/// errors.log("two\nlines");
/// assert_eq!(captured.lines(), ["cache miss for 42", "two", "lines"]);
/// ```
#[derive(Clone)]
pub struct Errors {
    sink: Arc<dyn ErrorSink>,
}

impl Errors {
    /// Errors written to the process's standard error.
    pub fn stderr() -> Self {
        Errors::from_sink(Stderr)
    }

    /// Errors written to `sink`.
    pub fn from_sink(sink: impl ErrorSink) -> Self {
        Errors {
            sink: Arc::new(sink),
        }
    }

    /// Errors kept in memory, for tests; read them through the returned [`Captured`].
    pub fn capture() -> (Self, Captured) {
        let captured = Captured::default();
        (Errors::from_sink(captured.clone()), captured)
    }

    /// Write a message; each of its lines is written whole. A trailing newline is not needed.
    pub fn log(&self, message: impl fmt::Display) {
        let text = message.to_string();
        for line in text.lines() {
            self.sink.write_line(line);
        }
    }
}

impl fmt::Debug for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Errors").finish_non_exhaustive()
    }
}

/// Writes each line to stderr with a single `write` call.
#[derive(Debug)]
struct Stderr;

impl ErrorSink for Stderr {
    fn write_line(&self, line: &str) {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        // Nothing sensible to do when stderr itself fails.
        let _ = std::io::stderr().lock().write_all(&buf);
    }
}

/// Lines captured by [`Errors::capture`].
#[derive(Debug, Clone, Default)]
pub struct Captured {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Captured {
    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl ErrorSink for Captured {
    fn write_line(&self, line: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line.to_owned());
        }
    }
}
