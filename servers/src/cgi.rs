//! CGI/1.1 (RFC 3875): serve one request as a child of the web server, then exit.
//!
//! Supported: the environ from the process environment (values that are not UTF-8 kept as bytes);
//! the body from stdin, read as the application asks and never past `CONTENT_LENGTH`; the response
//! on stdout as `Status:` + headers + body, streamed and flushed chunk by chunk; RFC 3875 local
//! redirects (a bare `Location: /path` with status 200 and no body is written as the `Location`
//! field alone, so the web server redirects internally; any other status is written explicitly, so
//! a `302` with a relative `Location` reaches the client as a 302); NPH mode when the script's name
//! (the basename of `argv[0]`, or the last segment of `SCRIPT_NAME`) starts with `nph-`: a full
//! `HTTP/1.1` status line is written and the web server passes the response through unparsed;
//! application errors and `rgi.errors` to stderr; `rgi.run_once` = true, `rgi.multithread` = false,
//! `rgi.multiprocess` = true. Blocking applications run inline ([`rgi::Inline`]) on the one thread.
//! Without `CONTENT_LENGTH` there is no body (RFC 3875 §4.2), except when the web server passes a
//! chunked request on as it came, `HTTP_TRANSFER_ENCODING=chunked` and no length (Apache's `mod_cgi`
//! and `mod_cgid` do): the body is then stdin up to its end. (Answering without reading it would
//! make Apache drop the response when it cannot write the body: "Empty reply from server".)
//!
//! Start-up is cheap, since every request pays for it: a current-thread tokio runtime (no worker
//! threads, no blocking pool; stdin and stdout are read and written with blocking calls), no command
//! line parsing, no work a request does not need. What is left is the operating system's: a
//! dynamically linked binary spends most of its start-up in the loader (mapping libc, libm and
//! libgcc_s, relocations). Build the program a web server execs per request statically, with LTO:
//!
//! ```sh
//! RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=true \
//!   cargo build --release --target x86_64-unknown-linux-gnu
//! ```
//!
//! (an explicit `--target`, so that build scripts and proc macros stay dynamic). Behind lighttpd
//! that takes a hello from 0.62–0.68× to 0.91–0.99× the requests per second of the same program in
//! C (bench/RESULTS.md).
//!
//! `SCRIPT_NAME` and `PATH_INFO` are kept as the web server set them (the script's location and the
//! rest); with a configured mount point ([`Config::script_name`]) the shared gateway rule applies.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use rgi::{Application, Capabilities, Errors, Input, ServerInfo};

use crate::config::Config;
use crate::gateway;
use crate::gateway::environ::Split;
use crate::gateway::response::{self, Head, SendError, Sink};
use crate::pipeline::Pipeline;
use crate::report::Report;

/// `SERVER_SOFTWARE` as the application sees it (the web server's own is not passed on).
pub const SOFTWARE: &str = concat!("rgi-cgi/", env!("CARGO_PKG_VERSION"));

/// How much of the body one read asks stdin for.
const READ_CHUNK: usize = 64 * 1024;

/// Why a CGI request could not be served.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The single-threaded runtime could not start.
    Runtime(io::Error),
    /// Writing the response to stdout failed.
    Write(io::Error),
    /// The response body failed after the head was written (the response is truncated).
    Body(rgi::BoxError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Runtime(_) => f.write_str("cgi: cannot start the runtime"),
            Error::Write(_) => f.write_str("cgi: writing the response failed"),
            Error::Body(_) => f.write_str("cgi: response body failed midway"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Runtime(e) | Error::Write(e) => Some(e),
            Error::Body(e) => Some(e.as_ref()),
        }
    }
}

/// Serve the one request described by the process environment and stdin; exit code 0 when the
/// response was written whole, 1 otherwise (the error goes to stderr).
pub fn run<A: Application>(app: A, config: &Config) -> ExitCode {
    let vars: Vec<(Vec<u8>, Vec<u8>)> = std::env::vars_os()
        .map(|(k, v)| (k.into_vec(), v.into_vec()))
        .collect();
    let argv0 = std::env::args_os().next();
    match serve(app, config, &vars, argv0, io::stdin(), io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", Report(&e));
            ExitCode::from(1)
        }
    }
}

/// Serve one request from explicit parts: the meta-variables, the program name, the body source
/// and the response sink. [`run`] calls it with the process's own.
///
/// # Errors
///
/// When the runtime cannot start, the response cannot be written, or its body fails midway.
pub fn serve<A, R, W>(
    app: A,
    config: &Config,
    vars: &[(Vec<u8>, Vec<u8>)],
    argv0: Option<OsString>,
    stdin: R,
    stdout: W,
) -> Result<(), Error>
where
    A: Application,
    R: Read + Send + Unpin + 'static,
    W: Write + Send,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let pairs: Vec<(&[u8], &[u8])> = vars
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    let script_name = pairs
        .iter()
        .find(|(k, _)| *k == b"SCRIPT_NAME")
        .map(|(_, v)| *v);
    let head = if is_nph(argv0.as_deref(), script_name) {
        Head::Http
    } else {
        Head::Cgi
    };
    let server = Arc::new(ServerInfo {
        software: SOFTWARE.into(),
        multithread: false,
        multiprocess: true,
        run_once: true,
        capabilities: Capabilities::STREAMING | Capabilities::STREAMING_INPUT,
        executor: Arc::new(rgi::Inline),
        errors: Errors::stderr(),
    });
    let mut pipeline = Pipeline::new(Arc::new(app), config.clone(), Arc::clone(&server), "cgi");
    pipeline.tokio_files = false; // no thread pool: files are read with blocking reads
    let to_eof = is_chunked(&pairs);
    let make_input = move |length: Option<u64>| match (length, to_eof) {
        (Some(remaining), _) => Input::from_body(StdinBody { stdin, remaining }),
        (None, true) => Input::from_body(StdinBody {
            stdin,
            remaining: u64::MAX,
        }),
        (None, false) => Input::empty(),
    };
    let mut sink = StdoutSink(stdout);
    runtime.block_on(async move {
        let answer =
            gateway::answer(&pipeline, &pairs, server, Split::Keep, make_input, |_| {}).await;
        match response::send(&mut sink, head, answer, false).await {
            Ok(()) => Ok(()),
            Err(SendError::Write(e)) => Err(Error::Write(e)),
            Err(SendError::Body(e)) => Err(Error::Body(e)),
        }
    })
}

/// Whether the web server passed a chunked body on without a length: `HTTP_TRANSFER_ENCODING` ends
/// in `chunked` and `CONTENT_LENGTH` is absent or empty (Apache's empty value means absent).
fn is_chunked(pairs: &[(&[u8], &[u8])]) -> bool {
    let var = |name: &[u8]| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    };
    let chunked = var(b"HTTP_TRANSFER_ENCODING").is_some_and(|te| {
        te.rsplit(|&b| b == b',')
            .next()
            .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
    });
    chunked && var(b"CONTENT_LENGTH").is_none_or(<[u8]>::is_empty)
}

/// NPH (RFC 3875 §5): the script's name starts with `nph-`.
fn is_nph(argv0: Option<&std::ffi::OsStr>, script_name: Option<&[u8]>) -> bool {
    let basename = |path: &[u8]| -> bool {
        let last = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
        last.starts_with(b"nph-")
    };
    argv0.is_some_and(|a| basename(a.as_bytes())) || script_name.is_some_and(basename)
}

/// The request body: blocking reads of stdin, never past `CONTENT_LENGTH` (a web server need not
/// close stdin after the body).
struct StdinBody<R> {
    stdin: R,
    remaining: u64,
}

impl<R: Read + Unpin> http_body::Body for StdinBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = self.remaining.min(READ_CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        // Bounded: only EINTR repeats, and each repetition is a fresh blocking read.
        loop {
            match self.stdin.read(&mut buf) {
                Ok(0) => return Poll::Ready(None), // short body: Input reports UnexpectedEof
                Ok(n) => {
                    buf.truncate(n);
                    self.remaining -= n as u64;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

/// The response: blocking writes to stdout, flushed per chunk.
struct StdoutSink<W>(W);

impl<W: Write + Send> Sink for StdoutSink<W> {
    async fn write(&mut self, data: Bytes) -> io::Result<()> {
        self.0.write_all(&data)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        list.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect()
    }

    fn echo() -> impl Application {
        rgi::app_fn(
            |mut environ: rgi::Environ, start: rgi::StartResponse| async move {
                let body = environ.input_mut().read_to_bytes().await?;
                let mut out = environ.path_info().to_vec();
                out.push(b' ');
                out.extend_from_slice(&body);
                Ok(start.respond(http::StatusCode::OK, Default::default(), out)?)
            },
        )
    }

    #[test]
    fn a_post_body_is_read_up_to_content_length_and_echoed_after_a_status_line() {
        let env = vars(&[
            ("REQUEST_METHOD", b"POST"),
            ("SCRIPT_NAME", b"/cgi-bin/echo"),
            ("PATH_INFO", b"/x"),
            ("CONTENT_LENGTH", b"5"),
        ]);
        let mut out = Vec::new();
        let stdin = io::Cursor::new(b"hello, and more that is not the body".to_vec());
        serve(echo(), &Config::default(), &env, None, stdin, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Status: 200 OK\r\ncontent-length: 8\r\n\r\n/x hello"
        );
    }

    #[test]
    fn a_chunked_body_without_a_length_is_read_to_the_end_of_stdin() {
        let env = vars(&[
            ("REQUEST_METHOD", b"POST"),
            ("HTTP_TRANSFER_ENCODING", b"chunked"),
        ]);
        let mut out = Vec::new();
        let stdin = io::Cursor::new(b"all of it".to_vec());
        serve(echo(), &Config::default(), &env, None, stdin, &mut out).unwrap();
        assert!(
            out.ends_with(b"\r\n\r\n all of it"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        // Without the chunked marker, no length means no body.
        let env = vars(&[("REQUEST_METHOD", b"POST")]);
        let mut out = Vec::new();
        let stdin = io::Cursor::new(b"not the body".to_vec());
        serve(echo(), &Config::default(), &env, None, stdin, &mut out).unwrap();
        assert!(
            out.ends_with(b"\r\n\r\n "),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn an_nph_script_writes_a_full_status_line() {
        let env = vars(&[("REQUEST_METHOD", b"GET"), ("SCRIPT_NAME", b"/nph-echo")]);
        let mut out = Vec::new();
        serve(
            echo(),
            &Config::default(),
            &env,
            None,
            io::empty(),
            &mut out,
        )
        .unwrap();
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"), "{out:?}");
        assert!(is_nph(Some("/usr/lib/cgi-bin/nph-demo".as_ref()), None));
        assert!(!is_nph(Some("demo".as_ref()), Some(b"/nph-dir/demo")));
    }

    #[test]
    fn a_missing_request_method_is_answered_400_not_a_panic() {
        let mut out = Vec::new();
        serve(echo(), &Config::default(), &[], None, io::empty(), &mut out).unwrap();
        assert!(out.starts_with(b"Status: 400 Bad Request\r\n"));
    }
}
