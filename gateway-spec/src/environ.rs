//! The [`Environ`]: CGI/1.1 meta-variables, request headers, `rgi.*` keys and typed extensions.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Extensions, Method};

use crate::executor::{Inline, SharedExecutor};
use crate::{Errors, Executor, Input};

/// The RGI version a server implements: `rgi.version`.
pub const VERSION: (u16, u16) = (1, 0);

/// `rgi.version` as the string the environ reports.
const VERSION_STR: &str = "1.0";

/// `GATEWAY_INTERFACE`, always.
const GATEWAY_INTERFACE: &str = "CGI/1.1";

/// The URL scheme of the request as the client sent it: `rgi.url_scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    /// `http`
    #[default]
    Http,
    /// `https`
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port a URL of this scheme implies.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Optional features a server offers, so that applications and the lint can check what they rely on
/// (the model is PSGI's `psgi.streaming`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u32);

impl Capabilities {
    /// Stream bodies are sent chunk by chunk as produced, not buffered whole.
    pub const STREAMING: Capabilities = Capabilities(1);
    /// File bodies may be sent with `sendfile` or another zero-copy path.
    pub const SENDFILE: Capabilities = Capabilities(1 << 1);
    /// `rgi.input` streams the request body as it arrives (not buffered whole before the call).
    pub const STREAMING_INPUT: Capabilities = Capabilities(1 << 2);

    /// No capabilities.
    pub const fn empty() -> Self {
        Capabilities(0)
    }

    /// Whether every capability in `other` is present.
    pub const fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets.
    pub const fn union(self, other: Capabilities) -> Self {
        Capabilities(self.0 | other.0)
    }

    fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (Self::STREAMING, "streaming"),
            (Self::SENDFILE, "sendfile"),
            (Self::STREAMING_INPUT, "streaming_input"),
        ]
        .into_iter()
        .filter(move |(c, _)| self.contains(*c))
        .map(|(_, n)| n)
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl std::ops::BitOr for Capabilities {
    type Output = Capabilities;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

/// Facts about the server process that every environ it builds shares (`rgi.multithread`,
/// `SERVER_SOFTWARE`, the executor, the error sink…). Servers build one and clone the `Arc`.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `SERVER_SOFTWARE`, e.g. `rgi-http/0.1`.
    pub software: Cow<'static, str>,
    /// `rgi.multithread`: the same application object may be called concurrently from several threads.
    pub multithread: bool,
    /// `rgi.multiprocess`: other processes run the same application.
    pub multiprocess: bool,
    /// `rgi.run_once`: the process handles one request and exits (CGI).
    pub run_once: bool,
    /// Optional features the server offers.
    pub capabilities: Capabilities,
    /// Where blocking applications run.
    pub executor: SharedExecutor,
    /// Where `rgi.errors` goes.
    pub errors: Errors,
}

impl Default for ServerInfo {
    /// A single-threaded, in-process server: the test client's defaults.
    fn default() -> Self {
        ServerInfo {
            software: Cow::Borrowed(concat!("rgi/", env!("CARGO_PKG_VERSION"))),
            multithread: false,
            multiprocess: false,
            run_once: false,
            capabilities: Capabilities::STREAMING | Capabilities::STREAMING_INPUT,
            executor: Arc::new(Inline),
            errors: Errors::stderr(),
        }
    }
}

/// One value of the environ: bytes, with string views that fail softly.
///
/// ```
/// let v = rgi::Var::from(&b"caf\xe9"[..]); // Latin-1, not UTF-8
/// assert!(v.to_str().is_err());
/// assert_eq!(v.to_string_lossy(), "caf\u{fffd}");
/// assert_eq!(v.as_bytes(), b"caf\xe9");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Var<'a>(Cow<'a, [u8]>);

impl<'a> Var<'a> {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as UTF-8.
    ///
    /// # Errors
    ///
    /// When the bytes are not UTF-8 (obs-text header values, Latin-1 CGI variables).
    pub fn to_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.0)
    }

    /// The value as UTF-8, with invalid sequences replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// An owned copy.
    pub fn into_owned(self) -> Var<'static> {
        Var(Cow::Owned(self.0.into_owned()))
    }
}

impl<'a> From<&'a [u8]> for Var<'a> {
    fn from(b: &'a [u8]) -> Self {
        Var(Cow::Borrowed(b))
    }
}

impl<'a> From<&'a str> for Var<'a> {
    fn from(s: &'a str) -> Self {
        Var(Cow::Borrowed(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Var<'static> {
    fn from(b: Vec<u8>) -> Self {
        Var(Cow::Owned(b))
    }
}

impl fmt::Debug for Var<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string_lossy(), f)
    }
}

impl PartialEq<str> for Var<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Var<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// A value could not be stored in the environ.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvironError {
    /// A required meta-variable is missing (`REQUEST_METHOD`).
    Missing(&'static str),
    /// A meta-variable has a value of the wrong form (a method that is not a token, a port that is not a
    /// number, a header value with a control character…).
    Invalid {
        /// The variable's name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The key is computed by the environ and cannot be set (`GATEWAY_INTERFACE`, `rgi.version`).
    ReadOnly(String),
}

impl fmt::Display for EnvironError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvironError::Missing(name) => write!(f, "rgi: required variable {name} is missing"),
            EnvironError::Invalid { name, reason } => {
                write!(f, "rgi: variable {name} is invalid: {reason}")
            }
            EnvironError::ReadOnly(name) => write!(f, "rgi: variable {name} cannot be set"),
        }
    }
}

impl std::error::Error for EnvironError {}

fn invalid(name: &str, reason: &'static str) -> EnvironError {
    EnvironError::Invalid {
        name: name.to_owned(),
        reason,
    }
}

/// The request as an application sees it: PEP 3333's `environ`, typed.
///
/// Every CGI/1.1 meta-variable (RFC 3875 §4.1) is available under its exact name through
/// [`get`](Environ::get), and through a typed accessor where one helps. `HTTP_*` variables are computed
/// from the request [`headers`](Environ::headers) on demand, so building an environ from an HTTP request
/// copies no header. Values are bytes ([`Var`]); nothing panics on non-UTF-8 input.
///
/// | key | accessor | notes |
/// |---|---|---|
/// | `REQUEST_METHOD` | [`method`](Environ::method) | |
/// | `SCRIPT_NAME` | [`script_name`](Environ::script_name) | mount point, decoded; `""` at the root, never `"/"` |
/// | `PATH_INFO` | [`path_info`](Environ::path_info) | rest of the path, percent-decoded |
/// | `QUERY_STRING` | [`query_string`](Environ::query_string) | raw, always present (maybe `""`) |
/// | `REQUEST_URI` | [`request_uri`](Environ::request_uri) | the raw request target |
/// | `CONTENT_TYPE`, `CONTENT_LENGTH` | [`content_length`](Environ::content_length) | from the headers; absent when absent |
/// | `SERVER_NAME`, `SERVER_PORT`, `SERVER_PROTOCOL`, `SERVER_SOFTWARE` | | |
/// | `REMOTE_ADDR`, `REMOTE_PORT` | [`remote_addr`](Environ::remote_addr) | absent on unix sockets |
/// | `HTTPS` | | `on` for https, absent otherwise |
/// | `GATEWAY_INTERFACE` | | `CGI/1.1` |
/// | `HTTP_*` | [`headers`](Environ::headers) | one per header; repeated headers joined with `, ` (`Cookie` with `; `) |
/// | others (`AUTH_TYPE`, `REMOTE_USER`, `DOCUMENT_ROOT`…) | [`set`](Environ::set) | as the gateway delivered them |
/// | `rgi.version` | [`VERSION`] | `1.0` |
/// | `rgi.url_scheme` | [`url_scheme`](Environ::url_scheme) | `http` or `https` |
/// | `rgi.input` | [`input_mut`](Environ::input_mut) | the request body |
/// | `rgi.errors` | [`errors`](Environ::errors) | |
/// | `rgi.multithread`, `rgi.multiprocess`, `rgi.run_once` | [`server`](Environ::server) | |
/// | typed extensions | [`extensions`](Environ::extensions) | session, route params, request id… |
///
/// Two headers are never exposed as `HTTP_*` variables: `Proxy` (so that no CGI-style code takes a
/// client's header for the `HTTP_PROXY` setting — "httpoxy") and any header whose name contains `_`
/// (so that `X_Forwarded_For` cannot pose as `X-Forwarded-For`). Both stay readable in
/// [`headers`](Environ::headers).
pub struct Environ {
    /// Boxed: an environ is moved by value through every layer (into each layer's future and on to
    /// the next call), so it is one pointer wide; the fields are allocated once per request.
    f: Box<Fields>,
}

/// An [`Environ`]'s contents.
struct Fields {
    method: Method,
    script_name: Bytes,
    path_info: Text,
    query_string: Text,
    request_uri: Option<Target>,
    protocol: Bytes,
    server_name: Bytes,
    server_port: u16,
    remote_addr: Option<Bytes>,
    remote_port: Option<u16>,
    scheme: Scheme,
    headers: HeaderMap,
    /// Other meta-variables, by name (`AUTH_TYPE`, `DOCUMENT_ROOT`, …); never `HTTP_*`.
    vars: Vec<(Bytes, Bytes)>,
    input: Input,
    server: Arc<ServerInfo>,
    extensions: Extensions,
}

impl Environ {
    /// Start building an environ for `method` and the raw request target `request_uri`.
    ///
    /// `PATH_INFO` and `QUERY_STRING` are derived from the target (the path percent-decoded); the rest
    /// has defaults a server overrides: `SERVER_NAME` `localhost`, `SERVER_PORT` 80, `HTTP/1.1`, no
    /// headers, an empty body, [`ServerInfo::default`].
    ///
    /// ```
    /// let environ = rgi::Environ::builder(http::Method::GET, "/a%20b?x=1").build();
    /// assert_eq!(environ.path_info(), b"/a b");
    /// assert_eq!(environ.query_string(), b"x=1");
    /// assert_eq!(environ.get("REQUEST_URI").unwrap(), "/a%20b?x=1");
    /// ```
    pub fn builder(method: Method, request_uri: &str) -> EnvironBuilder {
        EnvironBuilder::new(method, request_uri)
    }

    /// `REQUEST_METHOD`.
    pub fn method(&self) -> &Method {
        &self.f.method
    }

    /// `SCRIPT_NAME`: where the application is mounted; `""` at the root.
    pub fn script_name(&self) -> &[u8] {
        &self.f.script_name
    }

    /// `PATH_INFO`: the request path below the mount point, percent-decoded.
    pub fn path_info(&self) -> &[u8] {
        self.f.path_info.view(&self.f.request_uri)
    }

    /// `QUERY_STRING`, raw (not decoded).
    pub fn query_string(&self) -> &[u8] {
        self.f.query_string.view(&self.f.request_uri)
    }

    /// `REQUEST_URI`: the request target exactly as the client sent it, when the gateway knows it.
    pub fn request_uri(&self) -> Option<&[u8]> {
        self.f.request_uri.as_ref().map(Target::as_bytes)
    }

    /// `REQUEST_URI` as a cheap, shareable handle (for logging after the environ is gone).
    pub(crate) fn request_uri_handle(&self) -> Option<Target> {
        self.f.request_uri.clone()
    }

    /// Replace `REQUEST_URI`; `PATH_INFO` and `QUERY_STRING` stop being views of the old one.
    fn replace_request_uri(&mut self, uri: Option<Target>) {
        self.f.path_info = Text::Own(Bytes::copy_from_slice(self.path_info()));
        self.f.query_string = Text::Own(Bytes::copy_from_slice(self.query_string()));
        self.f.request_uri = uri;
    }

    /// `SERVER_PROTOCOL`, e.g. `HTTP/1.1`.
    pub fn protocol(&self) -> &[u8] {
        &self.f.protocol
    }

    /// `SERVER_NAME`.
    pub fn server_name(&self) -> &[u8] {
        &self.f.server_name
    }

    /// `SERVER_PORT`.
    pub fn server_port(&self) -> u16 {
        self.f.server_port
    }

    /// `REMOTE_ADDR` and `REMOTE_PORT`, when the client is on an IP socket.
    pub fn remote_addr(&self) -> Option<(&[u8], Option<u16>)> {
        self.f
            .remote_addr
            .as_deref()
            .map(|a| (a, self.f.remote_port))
    }

    /// `rgi.url_scheme`.
    pub fn url_scheme(&self) -> Scheme {
        self.f.scheme
    }

    /// `CONTENT_LENGTH`, parsed; `None` when absent or not a number.
    pub fn content_length(&self) -> Option<u64> {
        let value = self.f.headers.get(header::CONTENT_LENGTH)?;
        parse_digits(value.as_bytes())
    }

    /// The request headers (`HTTP_*`, `CONTENT_TYPE`, `CONTENT_LENGTH` are views of these).
    pub fn headers(&self) -> &HeaderMap {
        &self.f.headers
    }

    /// The request headers, mutably (middleware).
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.f.headers
    }

    /// `rgi.input`, for inspection (its declared length, how much was read).
    pub fn input_ref(&self) -> &Input {
        &self.f.input
    }

    /// `rgi.input`: the request body.
    pub fn input_mut(&mut self) -> &mut Input {
        &mut self.f.input
    }

    /// Take `rgi.input` out, leaving an empty body.
    pub fn take_input(&mut self) -> Input {
        std::mem::take(&mut self.f.input)
    }

    /// Replace `rgi.input` (middleware that filters the body).
    pub fn set_input(&mut self, input: Input) {
        self.f.input = input;
    }

    /// `rgi.errors`.
    pub fn errors(&self) -> &Errors {
        &self.f.server.errors
    }

    /// The executor for blocking work (see [`blocking`](crate::blocking)).
    pub fn executor(&self) -> &SharedExecutor {
        &self.f.server.executor
    }

    /// Facts about the server: `rgi.multithread`, `rgi.multiprocess`, `rgi.run_once`, capabilities.
    pub fn server(&self) -> &ServerInfo {
        &self.f.server
    }

    /// The shared handle to the server facts (cloned by `call_app` to report errors afterwards).
    pub(crate) fn server_arc(&self) -> &Arc<ServerInfo> {
        &self.f.server
    }

    /// Replace the facts about the server (a gateway that builds the environ with
    /// [`environ_from_cgi`] attaches its own, e.g. with a per-request `rgi.errors` sink).
    pub fn set_server_info(&mut self, info: Arc<ServerInfo>) {
        self.f.server = info;
    }

    /// Typed extensions: data middleware attaches for the layers below (session, route params…).
    pub fn extensions(&self) -> &Extensions {
        &self.f.extensions
    }

    /// Typed extensions, mutably.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.f.extensions
    }

    /// Set `SCRIPT_NAME` and `PATH_INFO` together (mounting). Both must be empty or start with `/`,
    /// and `SCRIPT_NAME` must not be `/`.
    ///
    /// # Errors
    ///
    /// [`EnvironError::Invalid`] when either breaks those rules.
    pub fn set_path(
        &mut self,
        script_name: impl Into<Bytes>,
        path_info: impl Into<Bytes>,
    ) -> Result<(), EnvironError> {
        self.set_path_text(script_name.into(), Text::Own(path_info.into()))
    }

    fn set_path_text(&mut self, script_name: Bytes, path_info: Text) -> Result<(), EnvironError> {
        check_path("SCRIPT_NAME", &script_name)?;
        if &script_name[..] == b"/" {
            return Err(invalid("SCRIPT_NAME", "must not be \"/\" (use \"\")"));
        }
        let path = path_info.view(&self.f.request_uri);
        if !(path.is_empty() || path.starts_with(b"/") || path == b"*") {
            return Err(invalid("PATH_INFO", "must be empty or start with \"/\""));
        }
        self.f.script_name = script_name;
        self.f.path_info = path_info;
        Ok(())
    }

    /// Move the mount point `prefix` from the front of `PATH_INFO` to the end of `SCRIPT_NAME`.
    ///
    /// The split is on a segment boundary (`/app` mounts `/app` and `/app/x`, not `/apple`). Returns
    /// whether the path was under the mount point; when it was not, nothing changes.
    ///
    /// ```
    /// let mut environ = rgi::Environ::builder(http::Method::GET, "/app/x").build();
    /// assert!(environ.mount("/app/"));
    /// assert_eq!((environ.script_name(), environ.path_info()), (&b"/app"[..], &b"/x"[..]));
    /// ```
    pub fn mount(&mut self, prefix: &str) -> bool {
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return true;
        }
        let Some(rest) = self.path_info().strip_prefix(prefix.as_bytes()) else {
            return false;
        };
        if !(rest.is_empty() || rest.starts_with(b"/")) {
            return false;
        }
        let mut script_name = self.f.script_name.to_vec();
        script_name.extend_from_slice(prefix.as_bytes());
        let path_info = self.f.path_info.skip(prefix.len());
        self.set_path_text(Bytes::from(script_name), path_info)
            .is_ok()
    }

    /// Set `rgi.url_scheme` (and so `HTTPS`), e.g. from a trusted proxy's `X-Forwarded-Proto`.
    pub fn set_url_scheme(&mut self, scheme: Scheme) {
        self.f.scheme = scheme;
    }

    /// Look up a meta-variable or string-valued `rgi.*` key by its exact name.
    ///
    /// ```
    /// let environ = rgi::Environ::builder(http::Method::POST, "/")
    ///     .header("User-Agent", "curl/8")
    ///     .header("Content-Type", "text/plain")
    ///     .build();
    /// assert_eq!(environ.get("HTTP_USER_AGENT").unwrap(), "curl/8");
    /// assert_eq!(environ.get("CONTENT_TYPE").unwrap(), "text/plain");
    /// assert!(environ.get("HTTP_CONTENT_TYPE").is_none());
    /// assert_eq!(environ.get("rgi.url_scheme").unwrap(), "http");
    /// ```
    pub fn get(&self, key: &str) -> Option<Var<'_>> {
        fn borrowed(b: &[u8]) -> Option<Var<'_>> {
            Some(Var(Cow::Borrowed(b)))
        }
        match key {
            "REQUEST_METHOD" => borrowed(self.f.method.as_str().as_bytes()),
            "SCRIPT_NAME" => borrowed(&self.f.script_name),
            "PATH_INFO" => borrowed(self.path_info()),
            "QUERY_STRING" => borrowed(self.query_string()),
            "REQUEST_URI" => self.request_uri().and_then(borrowed),
            "SERVER_PROTOCOL" => borrowed(&self.f.protocol),
            "SERVER_NAME" => borrowed(&self.f.server_name),
            "SERVER_PORT" => Some(Var(Cow::Owned(self.f.server_port.to_string().into_bytes()))),
            "SERVER_SOFTWARE" => borrowed(self.f.server.software.as_bytes()),
            "REMOTE_ADDR" => self.f.remote_addr.as_deref().and_then(borrowed),
            "REMOTE_PORT" => self
                .f
                .remote_port
                .map(|p| Var(Cow::Owned(p.to_string().into_bytes()))),
            "HTTPS" => (self.f.scheme == Scheme::Https).then(|| Var::from("on")),
            "GATEWAY_INTERFACE" => Some(Var::from(GATEWAY_INTERFACE)),
            "CONTENT_TYPE" => self.header_var(&header::CONTENT_TYPE),
            "CONTENT_LENGTH" => self.header_var(&header::CONTENT_LENGTH),
            "rgi.version" => Some(Var::from(VERSION_STR)),
            "rgi.url_scheme" => Some(Var::from(self.f.scheme.as_str())),
            _ => {
                if let Some(suffix) = key.strip_prefix("HTTP_") {
                    let name = header_name_for(suffix)?;
                    // RFC 3875 §4.1.18: the body's headers are CONTENT_TYPE / CONTENT_LENGTH only.
                    if !exposed_as_http_var(&name)
                        || name == header::CONTENT_TYPE
                        || name == header::CONTENT_LENGTH
                    {
                        return None;
                    }
                    self.header_var(&name)
                } else {
                    self.f
                        .vars
                        .iter()
                        .find(|(k, _)| &k[..] == key.as_bytes())
                        .and_then(|(_, v)| borrowed(v))
                }
            }
        }
    }

    /// A header's value as a variable; repeated headers joined as CGI servers do.
    fn header_var(&self, name: &HeaderName) -> Option<Var<'_>> {
        let mut values = self.f.headers.get_all(name).iter();
        let first = values.next()?;
        let Some(second) = values.next() else {
            return Some(Var(Cow::Borrowed(first.as_bytes())));
        };
        let sep: &[u8] = if name == header::COOKIE { b"; " } else { b", " };
        let mut joined = first.as_bytes().to_vec();
        for v in std::iter::once(second).chain(values) {
            joined.extend_from_slice(sep);
            joined.extend_from_slice(v.as_bytes());
        }
        Some(Var(Cow::Owned(joined)))
    }

    /// Set a meta-variable by name: typed fields are parsed and checked, `HTTP_*` names set the
    /// corresponding header, other names are stored as given.
    ///
    /// # Errors
    ///
    /// [`EnvironError::Invalid`] for a value of the wrong form, [`EnvironError::ReadOnly`] for computed
    /// keys (`GATEWAY_INTERFACE`, `SERVER_SOFTWARE`, `rgi.*`).
    pub fn set(&mut self, key: &str, value: impl Into<Bytes>) -> Result<(), EnvironError> {
        let value: Bytes = value.into();
        if value.contains(&0) {
            return Err(invalid(key, "contains NUL"));
        }
        match key {
            "REQUEST_METHOD" => {
                self.f.method =
                    Method::from_bytes(&value).map_err(|_| invalid(key, "not a token"))?;
            }
            "SCRIPT_NAME" => {
                let path_info = self.f.path_info.clone();
                self.set_path_text(value, path_info)?;
            }
            "PATH_INFO" => {
                let script_name = self.f.script_name.clone();
                self.set_path(script_name, value)?;
            }
            "QUERY_STRING" => self.f.query_string = Text::Own(value),
            "REQUEST_URI" => self.replace_request_uri(Some(Target::Bytes(value))),
            "SERVER_PROTOCOL" => self.f.protocol = value,
            "SERVER_NAME" => self.f.server_name = value,
            "SERVER_PORT" => {
                self.f.server_port = parse_digits(&value)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| invalid(key, "not a port number"))?;
            }
            // Empty optional variables are absent (a gateway on a unix socket passes them empty).
            "REMOTE_ADDR" => self.f.remote_addr = (!value.is_empty()).then_some(value),
            "REMOTE_PORT" if value.is_empty() => self.f.remote_port = None,
            "REMOTE_PORT" => {
                self.f.remote_port = Some(
                    parse_digits(&value)
                        .and_then(|p| u16::try_from(p).ok())
                        .ok_or_else(|| invalid(key, "not a port number"))?,
                );
            }
            "HTTPS" => {
                self.f.scheme = if is_https_on(&value) {
                    Scheme::Https
                } else {
                    Scheme::Http
                };
            }
            "rgi.url_scheme" => {
                self.f.scheme = match &value[..] {
                    b"http" => Scheme::Http,
                    b"https" => Scheme::Https,
                    _ => return Err(invalid(key, "must be http or https")),
                };
            }
            "CONTENT_TYPE" if value.is_empty() => {
                self.f.headers.remove(header::CONTENT_TYPE);
            }
            "CONTENT_TYPE" => self.set_header(key, header::CONTENT_TYPE, value)?,
            "CONTENT_LENGTH" => {
                if value.is_empty() {
                    self.f.headers.remove(header::CONTENT_LENGTH);
                } else {
                    parse_digits(&value).ok_or_else(|| invalid(key, "not a decimal number"))?;
                    self.set_header(key, header::CONTENT_LENGTH, value)?;
                }
            }
            "GATEWAY_INTERFACE" | "SERVER_SOFTWARE" => {
                return Err(EnvironError::ReadOnly(key.to_owned()))
            }
            _ if key.starts_with("rgi.") => return Err(EnvironError::ReadOnly(key.to_owned())),
            _ => {
                if let Some(suffix) = key.strip_prefix("HTTP_") {
                    let name =
                        header_name_for(suffix).ok_or_else(|| invalid(key, "not a header name"))?;
                    if name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH {
                        // RFC 3875 §4.1.18: these travel as CONTENT_TYPE / CONTENT_LENGTH only.
                        return Err(invalid(key, "use CONTENT_TYPE / CONTENT_LENGTH"));
                    }
                    return self.set_header(key, name, value);
                }
                if key.is_empty() || key.contains('=') {
                    return Err(invalid(key, "not a variable name"));
                }
                match self
                    .f
                    .vars
                    .iter_mut()
                    .find(|(k, _)| &k[..] == key.as_bytes())
                {
                    Some(slot) => slot.1 = value,
                    None => self
                        .f
                        .vars
                        .push((Bytes::copy_from_slice(key.as_bytes()), value)),
                }
            }
        }
        Ok(())
    }

    fn set_header(
        &mut self,
        key: &str,
        name: HeaderName,
        value: Bytes,
    ) -> Result<(), EnvironError> {
        let value = HeaderValue::from_maybe_shared(value)
            .map_err(|_| invalid(key, "not a valid header value"))?;
        self.f.headers.insert(name, value);
        Ok(())
    }

    /// Remove a meta-variable stored by name (an `HTTP_*` header or an extra variable). Typed fields
    /// cannot be removed; set them instead.
    pub fn remove(&mut self, key: &str) {
        if let Some(name) = key.strip_prefix("HTTP_").and_then(header_name_for) {
            self.f.headers.remove(name);
        } else if key == "CONTENT_TYPE" {
            self.f.headers.remove(header::CONTENT_TYPE);
        } else if key == "CONTENT_LENGTH" {
            self.f.headers.remove(header::CONTENT_LENGTH);
        } else {
            self.f.vars.retain(|(k, _)| &k[..] != key.as_bytes());
        }
    }

    /// Every string-valued key and its value: the CGI meta-variables, `HTTP_*` and `rgi.version` /
    /// `rgi.url_scheme`, in a stable order. Allocates the names of `HTTP_*` keys; meant for debugging,
    /// dumping and lint, not for the hot path.
    pub fn vars(&self) -> Vec<(Cow<'_, str>, Var<'_>)> {
        const FIXED: [&str; 17] = [
            "REQUEST_METHOD",
            "SCRIPT_NAME",
            "PATH_INFO",
            "QUERY_STRING",
            "REQUEST_URI",
            "CONTENT_TYPE",
            "CONTENT_LENGTH",
            "SERVER_NAME",
            "SERVER_PORT",
            "SERVER_PROTOCOL",
            "SERVER_SOFTWARE",
            "REMOTE_ADDR",
            "REMOTE_PORT",
            "HTTPS",
            "GATEWAY_INTERFACE",
            "rgi.version",
            "rgi.url_scheme",
        ];
        let mut out: Vec<(Cow<'_, str>, Var<'_>)> = FIXED
            .iter()
            .filter_map(|k| self.get(k).map(|v| (Cow::Borrowed(*k), v)))
            .collect();
        for (k, v) in &self.f.vars {
            out.push((String::from_utf8_lossy(k), Var(Cow::Borrowed(v))));
        }
        let mut seen: Vec<&HeaderName> = Vec::new();
        for name in self.f.headers.keys() {
            if name == header::CONTENT_TYPE
                || name == header::CONTENT_LENGTH
                || !exposed_as_http_var(name)
                || seen.contains(&name)
            {
                continue;
            }
            seen.push(name);
            if let Some(v) = self.header_var(name) {
                out.push((Cow::Owned(cgi_name_for(name)), v));
            }
        }
        out
    }
}

impl fmt::Debug for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in self.vars() {
            map.entry(&k, &v);
        }
        map.entry(&"rgi.input", &self.f.input);
        map.entry(&"rgi.multithread", &self.f.server.multithread);
        map.entry(&"rgi.multiprocess", &self.f.server.multiprocess);
        map.entry(&"rgi.run_once", &self.f.server.run_once);
        map.finish()
    }
}

/// Builds an [`Environ`]; see [`Environ::builder`].
#[derive(Debug)]
pub struct EnvironBuilder {
    environ: Environ,
    error: Option<EnvironError>,
}

impl EnvironBuilder {
    fn new(method: Method, request_uri: &str) -> Self {
        Self::with_server(method, request_uri, default_server_info())
    }

    fn with_server(method: Method, request_uri: &str, server: Arc<ServerInfo>) -> Self {
        let target = Target::Bytes(Bytes::copy_from_slice(request_uri.as_bytes()));
        let (path_info, query_string) = target_parts(request_uri);
        let environ = Environ::from_fields(Fields {
            method,
            script_name: Bytes::new(),
            path_info,
            query_string,
            request_uri: Some(target),
            protocol: Bytes::from_static(b"HTTP/1.1"),
            server_name: Bytes::from_static(b"localhost"),
            server_port: 80,
            remote_addr: None,
            remote_port: None,
            scheme: Scheme::Http,
            headers: HeaderMap::new(),
            vars: Vec::new(),
            input: Input::empty(),
            server,
            extensions: Extensions::new(),
        });
        EnvironBuilder {
            environ,
            error: None,
        }
    }

    fn record(&mut self, result: Result<(), EnvironError>) {
        if let (Err(e), None) = (result, &self.error) {
            self.error = Some(e);
        }
    }

    /// Set a meta-variable by name, as [`Environ::set`].
    pub fn var(mut self, key: &str, value: impl Into<Bytes>) -> Self {
        let r = self.environ.set(key, value);
        self.record(r);
        self
    }

    /// Add a request header (repeatable).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_ref()),
        ) {
            (Ok(n), Ok(v)) => {
                self.environ.f.headers.append(n, v);
            }
            _ => self.record(Err(invalid(name, "not a valid header"))),
        }
        self
    }

    /// Replace all request headers.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.environ.f.headers = headers;
        self
    }

    /// `SERVER_PROTOCOL`.
    pub fn protocol(mut self, protocol: impl Into<Bytes>) -> Self {
        self.environ.f.protocol = protocol.into();
        self
    }

    /// `SERVER_NAME` and `SERVER_PORT`.
    pub fn server(mut self, name: impl Into<Bytes>, port: u16) -> Self {
        self.environ.f.server_name = name.into();
        self.environ.f.server_port = port;
        self
    }

    /// `REMOTE_ADDR` and `REMOTE_PORT`.
    pub fn remote(mut self, addr: impl Into<Bytes>, port: Option<u16>) -> Self {
        self.environ.f.remote_addr = Some(addr.into());
        self.environ.f.remote_port = port;
        self
    }

    /// `rgi.url_scheme`.
    pub fn scheme(mut self, scheme: Scheme) -> Self {
        self.environ.f.scheme = scheme;
        self
    }

    /// `SCRIPT_NAME` and `PATH_INFO`, replacing the ones derived from the target.
    pub fn path(mut self, script_name: impl Into<Bytes>, path_info: impl Into<Bytes>) -> Self {
        let r = self.environ.set_path(script_name, path_info);
        self.record(r);
        self
    }

    /// Mount the application at `script_name`; see [`Environ::mount`].
    pub fn mount(mut self, script_name: &str) -> Self {
        self.environ.mount(script_name);
        self
    }

    /// The request body.
    pub fn input(mut self, input: Input) -> Self {
        self.environ.f.input = input;
        self
    }

    /// The request body from bytes; sets `CONTENT_LENGTH` unless already set.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        if !self.environ.f.headers.contains_key(header::CONTENT_LENGTH) {
            self.environ
                .f
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        self.environ.f.input = Input::from_bytes(body);
        self
    }

    /// The shared facts about the server.
    pub fn server_info(mut self, info: Arc<ServerInfo>) -> Self {
        self.environ.f.server = info;
        self
    }

    /// An executor for blocking work (replaces the one in the server info).
    pub fn executor(mut self, executor: impl Executor) -> Self {
        let mut info = (*self.environ.f.server).clone();
        info.executor = Arc::new(executor);
        self.environ.f.server = Arc::new(info);
        self
    }

    /// Add a typed extension.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.environ.f.extensions.insert(value);
        self
    }

    /// Finish, ignoring invalid values given along the way (they were not stored).
    pub fn build(self) -> Environ {
        self.environ
    }

    /// Finish, failing on the first invalid value given along the way.
    ///
    /// # Errors
    ///
    /// The first [`EnvironError`] met.
    pub fn try_build(self) -> Result<Environ, EnvironError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.environ),
        }
    }
}

/// Build an environ from CGI meta-variables as a gateway received them (the process environment of a
/// CGI script, FastCGI `PARAMS`, an SCGI or uwsgi header block).
///
/// This is the one pure conversion every non-HTTP gateway uses. `HTTP_*` variables become request
/// headers; `CONTENT_TYPE`/`CONTENT_LENGTH` become the corresponding headers; everything else is stored
/// under its name. `REQUEST_METHOD` is required. `PATH_INFO` is taken as given (already decoded by the
/// web server); gateways fix up `SCRIPT_NAME`/`PATH_INFO` afterwards with [`Environ::set_path`].
/// An empty `CONTENT_TYPE`, `CONTENT_LENGTH`, `REMOTE_ADDR` or `REMOTE_PORT` counts as absent (web
/// servers pass every variable, empty when it does not apply); an absent or empty `SERVER_PORT` is the
/// scheme's default port.
///
/// # Errors
///
/// [`EnvironError::Missing`] without `REQUEST_METHOD`; [`EnvironError::Invalid`] for values of the wrong
/// form (a port that is not a number, a header value with CR or LF…).
///
/// ```
/// let vars = [
///     ("REQUEST_METHOD", "GET"), ("SCRIPT_NAME", "/app"), ("PATH_INFO", "/x"),
///     ("QUERY_STRING", "a=1"), ("SERVER_NAME", "example.org"), ("SERVER_PORT", "8080"),
///     ("SERVER_PROTOCOL", "HTTP/1.0"), ("HTTP_ACCEPT", "*/*"), ("DOCUMENT_ROOT", "/srv"),
/// ];
/// let environ = rgi::environ_from_cgi(vars.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))?;
/// assert_eq!(environ.script_name(), b"/app");
/// assert_eq!(environ.server_port(), 8080);
/// assert_eq!(environ.headers()["accept"], "*/*");
/// assert_eq!(environ.get("DOCUMENT_ROOT").unwrap(), "/srv");
/// # Ok::<(), rgi::EnvironError>(())
/// ```
pub fn environ_from_cgi<'a, I>(vars: I) -> Result<Environ, EnvironError>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let mut method = None;
    let mut rest: Vec<(&str, &[u8])> = Vec::new();
    for (k, v) in vars {
        let Ok(key) = std::str::from_utf8(k) else {
            // A variable name that is not even UTF-8 cannot be looked up; RFC 3875 names are ASCII.
            continue;
        };
        match key {
            "REQUEST_METHOD" => {
                method = Some(Method::from_bytes(v).map_err(|_| invalid(key, "not a token"))?);
            }
            // Computed by the environ; the gateway's value is not needed.
            "GATEWAY_INTERFACE" | "SERVER_SOFTWARE" => {}
            // Never let a header collide with the body's own variables.
            "HTTP_CONTENT_TYPE" | "HTTP_CONTENT_LENGTH" => {}
            // `rgi.*` keys are the server's to set, never the web server's.
            _ if key.starts_with("rgi.") => {}
            _ => rest.push((key, v)),
        }
    }
    let method = method.ok_or(EnvironError::Missing("REQUEST_METHOD"))?;
    let mut environ = EnvironBuilder::new(method, "/").build();
    environ.replace_request_uri(None);
    environ.f.path_info = Text::Own(Bytes::new());
    environ.f.protocol = Bytes::from_static(b"HTTP/1.0");
    // Paths are applied together at the end so that their order in the input does not matter.
    let (mut script_name, mut path_info) = (Bytes::new(), Bytes::new());
    let mut port_given = false;
    for (key, value) in rest {
        match key {
            "SCRIPT_NAME" => script_name = Bytes::copy_from_slice(value),
            "PATH_INFO" => path_info = Bytes::copy_from_slice(value),
            // A web server listening on a unix socket has no port to pass (nginx sends it empty).
            "SERVER_PORT" if value.is_empty() => {}
            _ => {
                port_given |= key == "SERVER_PORT";
                environ.set(key, Bytes::copy_from_slice(value))?;
            }
        }
    }
    if !port_given {
        environ.f.server_port = environ.f.scheme.default_port();
    }
    // RFC 3875 allows SCRIPT_NAME "/" for a script at the root; RGI spells that "".
    if &script_name[..] == b"/" {
        script_name = Bytes::new();
        if path_info.is_empty() {
            path_info = Bytes::from_static(b"/");
        }
    }
    environ.set_path(script_name, path_info)?;
    Ok(environ)
}

/// `HTTPS` values that mean on (Apache and nginx use `on`; others `1`).
fn is_https_on(value: &[u8]) -> bool {
    value.eq_ignore_ascii_case(b"on") || value == b"1"
}

fn check_path(name: &str, value: &[u8]) -> Result<(), EnvironError> {
    if value.is_empty() || value.starts_with(b"/") {
        Ok(())
    } else {
        Err(invalid(name, "must be empty or start with \"/\""))
    }
}

/// Parse an all-digits decimal number (no sign, no spaces, no empty string) of at most 20 digits
/// (`u64::MAX` has 20; overflow is checked).
pub(crate) fn parse_digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The path part of an absolute-form request target (`http://host/p` → `/p`); others unchanged.
/// [`absolute_form_path`], skipping the search for the usual origin-form target.
fn absolute_form_path_if_any(target: &str) -> &str {
    if target.starts_with('/') {
        target
    } else {
        absolute_form_path(target)
    }
}

fn absolute_form_path(target: &str) -> &str {
    match target.find("://") {
        Some(i) if !target[..i].contains('/') => {
            let after = &target[i + 3..];
            match after.find('/') {
                Some(j) => &after[j..],
                None => "/",
            }
        }
        _ => target,
    }
}

/// What an HTTP request gives its environ; see [`Environ::from_http`].
pub(crate) struct FromHttp {
    pub(crate) method: Method,
    pub(crate) uri: http::Uri,
    pub(crate) protocol: &'static str,
    pub(crate) server_name: Bytes,
    pub(crate) server_port: u16,
    pub(crate) scheme: Scheme,
    pub(crate) remote: Option<(Bytes, u16)>,
    pub(crate) headers: HeaderMap,
    pub(crate) input: Input,
    pub(crate) server: Arc<ServerInfo>,
    pub(crate) extensions: Extensions,
}

impl Environ {
    /// The environ of an HTTP request, built in one step: this runs for every request a server
    /// answers, and the builder's by-value chain costs a copy of the whole environ per call.
    pub(crate) fn from_http(from: FromHttp) -> Environ {
        let (target, path_info, query_string) = match from.uri.path_and_query() {
            // origin-form, the usual case: the target stays in the `Uri` hyper parsed, uncopied.
            Some(pq) if from.uri.scheme().is_none() && !pq.as_str().is_empty() => {
                let (path, query) = target_parts(pq.as_str());
                (Target::Uri(from.uri), path, query)
            }
            // absolute-form, authority-form (CONNECT) or asterisk-form: keep exactly what was sent.
            _ => {
                let text = from.uri.to_string();
                let (path, query) = target_parts(&text);
                (Target::Bytes(Bytes::from(text)), path, query)
            }
        };
        let (remote_addr, remote_port) = match from.remote {
            Some((addr, port)) => (Some(addr), Some(port)),
            None => (None, None),
        };
        Environ::from_fields(Fields {
            method: from.method,
            script_name: Bytes::new(),
            path_info,
            query_string,
            request_uri: Some(target),
            protocol: Bytes::from_static(from.protocol.as_bytes()),
            server_name: from.server_name,
            server_port: from.server_port,
            remote_addr,
            remote_port,
            scheme: from.scheme,
            headers: from.headers,
            vars: Vec::new(),
            input: from.input,
            server: from.server,
            extensions: from.extensions,
        })
    }

    fn from_fields(fields: Fields) -> Environ {
        Environ {
            f: Box::new(fields),
        }
    }
}

/// The request target as received: the `http::Uri` it arrived in (not copied) or bytes.
#[derive(Clone)]
pub(crate) enum Target {
    Uri(http::Uri),
    Bytes(Bytes),
}

impl Target {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Target::Uri(uri) => uri.path_and_query().map_or("", |pq| pq.as_str()).as_bytes(),
            Target::Bytes(b) => b,
        }
    }
}

/// `PATH_INFO` or `QUERY_STRING`: own bytes, or a range of `REQUEST_URI` (so that serving a request
/// copies neither). A range is only ever stored while `REQUEST_URI` holds the target it indexes.
#[derive(Clone)]
enum Text {
    Own(Bytes),
    InTarget(usize, usize),
}

impl Text {
    fn view<'a>(&'a self, target: &'a Option<Target>) -> &'a [u8] {
        match self {
            Text::Own(b) => b,
            Text::InTarget(start, end) => target
                .as_ref()
                .and_then(|t| t.as_bytes().get(*start..*end))
                .unwrap_or_default(),
        }
    }

    /// The text without its first `n` bytes.
    fn skip(&self, n: usize) -> Text {
        match self {
            Text::Own(b) => Text::Own(b.slice(n.min(b.len())..)),
            Text::InTarget(start, end) => Text::InTarget((start + n).min(*end), *end),
        }
    }
}

/// `PATH_INFO` and `QUERY_STRING` of a request target, as ranges of it where possible.
fn target_parts(request_uri: &str) -> (Text, Text) {
    let (path, query) = match request_uri.split_once('?') {
        Some((p, q)) => (p, q),
        None => (request_uri, ""),
    };
    // An absolute-form target (proxy request) carries scheme and authority before the path;
    // authority-form (CONNECT host:port) names no path: PATH_INFO is empty.
    let path = match absolute_form_path_if_any(path) {
        p if p.starts_with('/') || p == "*" => p,
        _ => "",
    };
    let range = |sub: &str| {
        let (base, at) = (request_uri.as_ptr() as usize, sub.as_ptr() as usize);
        if at >= base && at - base + sub.len() <= request_uri.len() {
            Text::InTarget(at - base, at - base + sub.len())
        } else {
            // "/" made up for an absolute-form target without a path.
            Text::Own(Bytes::copy_from_slice(sub.as_bytes()))
        }
    };
    let path_info = if path.is_empty() {
        Text::Own(Bytes::new())
    } else if path.contains('%') {
        Text::Own(percent_decode(path.as_bytes()))
    } else {
        range(path)
    };
    let query_string = if query.is_empty() {
        Text::Own(Bytes::new())
    } else {
        range(query)
    };
    (path_info, query_string)
}

/// [`ServerInfo::default`], made once per process.
fn default_server_info() -> Arc<ServerInfo> {
    static DEFAULT: std::sync::OnceLock<Arc<ServerInfo>> = std::sync::OnceLock::new();
    Arc::clone(DEFAULT.get_or_init(|| Arc::new(ServerInfo::default())))
}

/// Percent-decode a path; `%2F` becomes `/` (as CGI servers do; the raw form stays in `REQUEST_URI`).
pub(crate) fn percent_decode(path: &[u8]) -> Bytes {
    if !path.contains(&b'%') {
        return Bytes::copy_from_slice(path);
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode(path).collect();
    Bytes::from(decoded)
}

/// `USER_AGENT` → `user-agent`.
fn header_name_for(cgi_suffix: &str) -> Option<HeaderName> {
    if cgi_suffix.is_empty() || cgi_suffix.len() > 256 {
        return None;
    }
    let mut buf = [0u8; 256];
    let name = &mut buf[..cgi_suffix.len()];
    for (dst, src) in name.iter_mut().zip(cgi_suffix.bytes()) {
        *dst = match src {
            b'_' => b'-',
            c => c.to_ascii_lowercase(),
        };
    }
    HeaderName::from_bytes(name).ok()
}

/// `user-agent` → `HTTP_USER_AGENT`.
pub(crate) fn cgi_name_for(name: &HeaderName) -> String {
    let mut out = String::with_capacity(5 + name.as_str().len());
    out.push_str("HTTP_");
    for c in name.as_str().chars() {
        out.push(match c {
            '-' => '_',
            c => c.to_ascii_uppercase(),
        });
    }
    out
}

/// Whether a request header is visible as an `HTTP_*` variable (see [`Environ`]).
fn exposed_as_http_var(name: &HeaderName) -> bool {
    name != "proxy" && !name.as_str().contains('_')
}
