//! A validator for both sides of the contract, in the spirit of `wsgiref.validate` and `Rack::Lint`.
//!
//! Wrap an application in [`Lint`] (or add [`LintLayer`] to a stack) and every request is checked:
//! the **environ the server built** ([`check_environ`]) on the way in, the **response the application
//! made** ([`check_response`]) on the way out, and the **body as it streams** (bytes produced against
//! `Content-Length` and the size hint, nothing for HEAD, every body closed).
//!
//! Each problem is a [`Violation`] naming its [`Check`]; the check's doc cites the SPEC.md rule.
//! In [`LintMode::Strict`] (the default) an error-level violation fails the request (500 before the
//! response starts, an aborted body after); in [`LintMode::Log`] it is only logged to `rgi.errors`.
//! Either way it is recorded in the [`LintReport`] that tests inspect.
//!
//! ```
//! use rgi::lint::{Lint, Check};
//! use http::{HeaderMap, StatusCode};
//!
//! // This application forgets Content-Type on a non-empty body.
//! let app = rgi::app_fn(|_, start| async move { Ok(start.respond(StatusCode::OK, HeaderMap::new(), "x")?) });
//! let lint = Lint::new(app);
//! let report = lint.report();
//! let response = rgi::testing::TestClient::new(lint).get("/").send_blocking();
//! assert_eq!(response.status(), 500);
//! assert_eq!(report.violations()[0].check, Check::ContentTypeMissing);
//! ```

use std::fmt;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header;
use http::{Method, StatusCode};
use http_body::{Frame, SizeHint};

use crate::environ::parse_digits;
use crate::response::is_hop_by_hop;
use crate::{Application, Body, BoxError, Environ, Reply, Response, StartResponse};

/// One rule the lint checks. The doc of each names the rule in SPEC.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    /// SPEC env-script-name: `SCRIPT_NAME` is empty or starts with `/`, and is never `/`.
    ScriptName,
    /// SPEC env-path-info: `PATH_INFO` is empty or starts with `/` (`*` only for OPTIONS).
    PathInfo,
    /// SPEC env-path-info: `SCRIPT_NAME` and `PATH_INFO` are not both empty (but for CONNECT).
    EmptyPath,
    /// SPEC env-query-string: `QUERY_STRING` has no `#`, space or control byte.
    QueryString,
    /// SPEC env-content-length: `CONTENT_LENGTH` is all digits, given once.
    ContentLengthVar,
    /// SPEC env-input: `rgi.input` ends where `CONTENT_LENGTH` says.
    InputLength,
    /// SPEC env-server: `SERVER_NAME` is not empty and `SERVER_PORT` is not 0.
    ServerNamePort,
    /// SPEC env-protocol: `SERVER_PROTOCOL` is `HTTP/<digit>[.<digit>]` (or `INCLUDED`).
    ServerProtocol,
    /// SPEC env-remote: `REMOTE_ADDR` is an IP address; `REMOTE_PORT` only with it.
    RemoteAddr,
    /// SPEC env-request-uri: `REQUEST_URI` is an origin-, absolute-, authority- or asterisk-form target.
    RequestUri,
    /// SPEC env-request-uri (warning): the decoded `REQUEST_URI` path equals `SCRIPT_NAME + PATH_INFO`.
    RequestUriPath,
    /// SPEC resp-status: the status is a final status, 200–599 (or 1xx never).
    Status,
    /// SPEC resp-hop-by-hop: no hop-by-hop header.
    HopByHopHeader,
    /// SPEC resp-status: no `Status` header.
    StatusHeader,
    /// SPEC resp-content-type: no `Content-Type` on 1xx, 204 or 304.
    ContentTypeForbidden,
    /// SPEC resp-content-type: `Content-Type` present otherwise (a warning when the body is empty).
    ContentTypeMissing,
    /// SPEC resp-content-length: no `Content-Length` on 1xx or 204; otherwise all digits, given once.
    ContentLengthHeader,
    /// SPEC resp-no-body: no body bytes on 204 or 304.
    BodyForbidden,
    /// SPEC resp-content-length: the body produced exactly `Content-Length` bytes.
    ContentLengthMismatch,
    /// SPEC body-size-hint: the body produced exactly its exact size hint.
    SizeHintMismatch,
    /// SPEC resp-head: a HEAD response produced no body bytes.
    HeadBody,
    /// SPEC resp-header-value (warning): header values are visible ASCII (obs-text is legal but unwise).
    HeaderValueText,
    /// SPEC mw-spare (warning): a response made from a spare `StartResponse` has a status below 400
    /// (a spare is for answering in place of a failed inner application).
    SpareSuccess,
}

/// How serious a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Legal but likely a mistake; logged, never fails a request.
    Warning,
    /// Breaks a **must** of the spec.
    Error,
}

/// A broken rule, with what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub check: Check,
    /// Error or warning.
    pub severity: Severity,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "rgi lint {level}: {:?}: {}", self.check, self.detail)
    }
}

impl std::error::Error for Violation {}

fn error(check: Check, detail: impl Into<String>) -> Violation {
    Violation {
        check,
        severity: Severity::Error,
        detail: detail.into(),
    }
}

fn warning(check: Check, detail: impl Into<String>) -> Violation {
    Violation {
        check,
        severity: Severity::Warning,
        detail: detail.into(),
    }
}

/// Check the environ a server built. Returns every violation found (empty when all is well).
pub fn check_environ(environ: &Environ) -> Vec<Violation> {
    let mut out = Vec::new();
    let script = environ.script_name();
    let path = environ.path_info();
    let method = environ.method();

    if !(script.is_empty() || script.starts_with(b"/")) || script == b"/" {
        out.push(error(
            Check::ScriptName,
            format!("SCRIPT_NAME is {:?}", String::from_utf8_lossy(script)),
        ));
    }
    let path_ok =
        path.is_empty() || path.starts_with(b"/") || (path == b"*" && method == Method::OPTIONS);
    if !path_ok {
        out.push(error(
            Check::PathInfo,
            format!("PATH_INFO is {:?}", String::from_utf8_lossy(path)),
        ));
    }
    if script.is_empty() && path.is_empty() && method != Method::CONNECT {
        out.push(error(
            Check::EmptyPath,
            "SCRIPT_NAME and PATH_INFO are both empty",
        ));
    }
    if let Some(bad) = environ
        .query_string()
        .iter()
        .find(|&&c| c == b'#' || c <= b' ' || c == 0x7f)
    {
        out.push(error(
            Check::QueryString,
            format!("QUERY_STRING contains byte {bad:#04x}"),
        ));
    }

    let lengths: Vec<_> = environ
        .headers()
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .collect();
    match lengths.as_slice() {
        [] => {}
        [one] => match parse_digits(one.as_bytes()) {
            None => out.push(error(
                Check::ContentLengthVar,
                format!("CONTENT_LENGTH is {one:?}"),
            )),
            Some(n) => {
                let declared = environ_input_length(environ);
                if declared.is_some_and(|d| d != n) {
                    out.push(error(
                        Check::InputLength,
                        format!("CONTENT_LENGTH is {n} but rgi.input declares {declared:?}"),
                    ));
                }
            }
        },
        _ => out.push(error(
            Check::ContentLengthVar,
            "CONTENT_LENGTH given more than once",
        )),
    }

    if environ.server_name().is_empty() || environ.server_port() == 0 {
        out.push(error(
            Check::ServerNamePort,
            format!(
                "SERVER_NAME {:?}, SERVER_PORT {}",
                String::from_utf8_lossy(environ.server_name()),
                environ.server_port()
            ),
        ));
    }
    if !is_protocol(environ.protocol()) {
        out.push(error(
            Check::ServerProtocol,
            format!(
                "SERVER_PROTOCOL is {:?}",
                String::from_utf8_lossy(environ.protocol())
            ),
        ));
    }
    if let Some((addr, _)) = environ.remote_addr() {
        let parsed = std::str::from_utf8(addr)
            .ok()
            .and_then(|a| a.parse::<IpAddr>().ok());
        if parsed.is_none() {
            out.push(error(
                Check::RemoteAddr,
                format!("REMOTE_ADDR is {:?}", String::from_utf8_lossy(addr)),
            ));
        }
    } else if environ.get("REMOTE_PORT").is_some() {
        out.push(error(Check::RemoteAddr, "REMOTE_PORT without REMOTE_ADDR"));
    }
    if let Some(uri) = environ.request_uri() {
        check_request_uri(environ, uri, &mut out);
    }
    out
}

/// What `rgi.input` says the body length is, without consuming it.
fn environ_input_length(environ: &Environ) -> Option<u64> {
    // `Input` is reached through `&mut`; reading its declared length needs only a shared view.
    environ.input_ref().content_length()
}

fn is_protocol(p: &[u8]) -> bool {
    match p {
        b"INCLUDED" => true,
        [b'H', b'T', b'T', b'P', b'/', d] => d.is_ascii_digit(),
        [b'H', b'T', b'T', b'P', b'/', d1, b'.', d2] => d1.is_ascii_digit() && d2.is_ascii_digit(),
        _ => false,
    }
}

fn check_request_uri(environ: &Environ, uri: &[u8], out: &mut Vec<Violation>) {
    let form_ok = uri.starts_with(b"/")
        || uri == b"*"
        || uri.windows(3).any(|w| w == b"://")
        || environ.method() == Method::CONNECT;
    if !form_ok || uri.iter().any(|&c| c <= b' ' || c == 0x7f || c == b'#') {
        out.push(error(
            Check::RequestUri,
            format!("REQUEST_URI is {:?}", String::from_utf8_lossy(uri)),
        ));
        return;
    }
    if !uri.starts_with(b"/") {
        return;
    }
    let raw_path = uri.split(|&c| c == b'?').next().unwrap_or_default();
    let decoded = crate::environ::percent_decode(raw_path);
    let mut joined = environ.script_name().to_vec();
    joined.extend_from_slice(environ.path_info());
    if decoded[..] != joined[..] {
        out.push(warning(
            Check::RequestUriPath,
            format!(
                "REQUEST_URI path {:?} decodes to {:?}, but SCRIPT_NAME + PATH_INFO is {:?}",
                String::from_utf8_lossy(raw_path),
                String::from_utf8_lossy(&decoded),
                String::from_utf8_lossy(&joined)
            ),
        ));
    }
}

/// Check the status and headers of a response, before its body is sent.
pub fn check_response(method: &Method, response: &Response) -> Vec<Violation> {
    let mut out = Vec::new();
    let status = response.status();
    let headers = response.headers();
    let no_body_status = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;

    if status.is_informational() || status.as_u16() > 599 {
        out.push(error(Check::Status, format!("final status {status}")));
    }
    if response.is_from_spare() && status.as_u16() < 400 {
        out.push(warning(
            Check::SpareSuccess,
            format!("a spare StartResponse answered {status}"),
        ));
    }
    for name in headers.keys() {
        if is_hop_by_hop(name) {
            out.push(error(Check::HopByHopHeader, format!("header `{name}`")));
        }
        if name == "status" {
            out.push(error(Check::StatusHeader, "a `Status` header"));
        }
    }
    for (name, value) in headers {
        if value.as_bytes().iter().any(|&c| c >= 0x80) {
            out.push(warning(
                Check::HeaderValueText,
                format!("header `{name}` has non-ASCII bytes"),
            ));
        }
    }

    let has_type = headers.contains_key(header::CONTENT_TYPE);
    let body_len = response.body().exact_len();
    if no_body_status {
        if has_type {
            out.push(error(
                Check::ContentTypeForbidden,
                format!("Content-Type on a {status} response"),
            ));
        }
        if body_len.is_some_and(|n| n > 0) {
            out.push(error(
                Check::BodyForbidden,
                format!("{status} response with a body"),
            ));
        }
    } else if !has_type {
        if body_len == Some(0) || method == Method::HEAD {
            out.push(warning(
                Check::ContentTypeMissing,
                "no Content-Type (empty body)",
            ));
        } else {
            out.push(error(Check::ContentTypeMissing, "no Content-Type"));
        }
    }

    let lengths: Vec<_> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
    if !lengths.is_empty() && (status.is_informational() || status == StatusCode::NO_CONTENT) {
        out.push(error(
            Check::ContentLengthHeader,
            format!("Content-Length on a {status} response"),
        ));
    } else if lengths.len() > 1 {
        out.push(error(
            Check::ContentLengthHeader,
            "Content-Length given more than once",
        ));
    } else if let Some(v) = lengths.first() {
        if parse_digits(v.as_bytes()).is_none() {
            out.push(error(
                Check::ContentLengthHeader,
                format!("Content-Length is {v:?}"),
            ));
        }
    }
    out
}

/// What the lint does with an error-level violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LintMode {
    /// Fail the request: a 500 before the response starts, an aborted body after. Warnings are logged.
    #[default]
    Strict,
    /// Log every violation to `rgi.errors` and let the request through.
    Log,
}

/// What the lint has seen, shared by every clone of a [`Lint`]: violations and open bodies.
#[derive(Debug, Clone, Default)]
pub struct LintReport {
    inner: Arc<ReportInner>,
}

#[derive(Debug, Default)]
struct ReportInner {
    violations: Mutex<Vec<Violation>>,
    open_bodies: AtomicUsize,
    requests: AtomicUsize,
}

impl LintReport {
    /// Every violation seen so far, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.inner
            .violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Only the error-level ones.
    pub fn errors(&self) -> Vec<Violation> {
        let mut v = self.violations();
        v.retain(|v| v.severity == Severity::Error);
        v
    }

    /// Response bodies handed to the server and not yet dropped. After all requests are done this must
    /// be 0: a body that is never dropped was never closed (SPEC body-close).
    pub fn open_bodies(&self) -> usize {
        self.inner.open_bodies.load(Ordering::SeqCst)
    }

    /// Requests checked so far.
    pub fn requests(&self) -> usize {
        self.inner.requests.load(Ordering::SeqCst)
    }

    fn record(&self, v: &Violation) {
        if let Ok(mut all) = self.inner.violations.lock() {
            all.push(v.clone());
        }
    }
}

/// The lint middleware; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Lint<A> {
    inner: A,
    mode: LintMode,
    report: LintReport,
}

impl<A> Lint<A> {
    /// Check every request to and response from `inner`, strictly.
    pub fn new(inner: A) -> Self {
        Lint {
            inner,
            mode: LintMode::Strict,
            report: LintReport::default(),
        }
    }

    /// Choose what happens on a violation.
    pub fn mode(mut self, mode: LintMode) -> Self {
        self.mode = mode;
        self
    }

    /// The shared report of what this lint (and its clones) has seen.
    pub fn report(&self) -> LintReport {
        self.report.clone()
    }

    /// The wrapped application.
    pub fn get_ref(&self) -> &A {
        &self.inner
    }

    /// The wrapped application, mutably.
    pub fn get_mut(&mut self) -> &mut A {
        &mut self.inner
    }

    /// Unwrap the application.
    pub fn into_inner(self) -> A {
        self.inner
    }

    /// Record and log every violation; the error-level ones if strict.
    fn judge(&self, environ_errors: &crate::Errors, found: Vec<Violation>) -> Option<Violation> {
        let mut fatal = None;
        for v in found {
            self.report.record(&v);
            environ_errors.log(&v);
            if v.severity == Severity::Error && self.mode == LintMode::Strict && fatal.is_none() {
                fatal = Some(v);
            }
        }
        fatal
    }
}

/// A `tower::Layer` that wraps applications in [`Lint`].
#[derive(Debug, Clone, Default)]
pub struct LintLayer {
    mode: LintMode,
    report: LintReport,
}

impl LintLayer {
    /// A strict lint layer.
    pub fn new() -> Self {
        LintLayer::default()
    }

    /// Choose what happens on a violation.
    pub fn mode(mut self, mode: LintMode) -> Self {
        self.mode = mode;
        self
    }

    /// The report shared by every application this layer wraps.
    pub fn report(&self) -> LintReport {
        self.report.clone()
    }
}

impl<A> tower_layer::Layer<A> for LintLayer {
    type Service = Lint<A>;

    fn layer(&self, inner: A) -> Lint<A> {
        Lint {
            inner,
            mode: self.mode,
            report: self.report.clone(),
        }
    }
}

impl<A: Application> Application for Lint<A> {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        self.report.inner.requests.fetch_add(1, Ordering::SeqCst);
        let errors = environ.errors().clone();
        let method = environ.method().clone();
        if let Some(v) = self.judge(&errors, check_environ(&environ)) {
            return Err(Box::new(v) as BoxError);
        }
        let mut response = self.inner.call(environ, start).await?;
        if let Some(v) = self.judge(&errors, check_response(&method, &response)) {
            return Err(Box::new(v) as BoxError);
        }
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| parse_digits(v.as_bytes()));
        let head = method == Method::HEAD;
        // Not `map_body`: for HEAD it would drop the body unseen, hiding a HeadBody violation.
        let body = std::mem::take(response.body_slot());
        self.report.inner.open_bodies.fetch_add(1, Ordering::SeqCst);
        let hint = body.exact_len();
        // A body of unknown length on 204/304 can only be judged as it streams (check_response
        // judged the others).
        let status = response.status();
        let no_body = (status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED)
            && hint.is_none();
        *response.body_slot() = Body::from_http_body(LintBody {
            inner: body,
            produced: 0,
            declared: if head { None } else { declared },
            hint,
            head,
            no_body,
            report: self.report.clone(),
            errors,
            mode: self.mode,
            finished: false,
        });
        Ok(response)
    }
}

/// Watches a body as it streams.
struct LintBody {
    inner: Body,
    produced: u64,
    declared: Option<u64>,
    hint: Option<u64>,
    head: bool,
    /// A 204 or 304 response whose body length was unknown up front.
    no_body: bool,
    report: LintReport,
    errors: crate::Errors,
    mode: LintMode,
    finished: bool,
}

impl LintBody {
    fn violation(&mut self, v: Violation) -> Option<BoxError> {
        self.report.record(&v);
        self.errors.log(&v);
        (v.severity == Severity::Error && self.mode == LintMode::Strict)
            .then(|| Box::new(v) as BoxError)
    }

    /// Checks at the end of the body.
    fn at_end(&mut self) -> Option<BoxError> {
        self.finished = true;
        if let Some(d) = self.declared {
            // Too many bytes were reported as they streamed.
            if d > self.produced {
                return self.violation(error(
                    Check::ContentLengthMismatch,
                    format!("Content-Length {d}, body produced {}", self.produced),
                ));
            }
        }
        if let Some(h) = self.hint {
            if h != self.produced && !self.head {
                return self.violation(error(
                    Check::SizeHintMismatch,
                    format!("exact size hint {h}, body produced {}", self.produced),
                ));
            }
        }
        None
    }
}

impl Drop for LintBody {
    fn drop(&mut self) {
        self.report.inner.open_bodies.fetch_sub(1, Ordering::SeqCst);
    }
}

impl http_body::Body for LintBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => match this.at_end() {
                Some(e) => Poll::Ready(Some(Err(e))),
                None => Poll::Ready(None),
            },
            Poll::Ready(Some(Err(e))) => {
                this.finished = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    // Each mistake is reported once, when first seen (Log mode streams on).
                    let before = this.produced;
                    this.produced += data.len() as u64;
                    if this.head && before == 0 && !data.is_empty() {
                        if let Some(e) =
                            this.violation(error(Check::HeadBody, "HEAD response with body bytes"))
                        {
                            this.finished = true;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                    if this.no_body && !data.is_empty() {
                        this.no_body = false;
                        let detail = "204/304 response with body bytes";
                        if let Some(e) = this.violation(error(Check::BodyForbidden, detail)) {
                            this.finished = true;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                    if let Some(d) = this.declared {
                        if this.produced > d && before <= d {
                            let detail = format!(
                                "Content-Length {d}, body produced more ({})",
                                this.produced
                            );
                            if let Some(e) =
                                this.violation(error(Check::ContentLengthMismatch, detail))
                            {
                                this.finished = true;
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}
