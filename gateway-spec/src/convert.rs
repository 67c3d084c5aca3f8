//! Conversions between RGI and the `http` crate's types, shared by the HTTP server, the tower bridges
//! and the test client so that an application sees the same environ through each of them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode, Version};

use crate::environ::{FromHttp, ServerInfo, Target};
use crate::input::{BadBody, BodyTooLarge, ShortBody};
use crate::{
    Application, Body, BoxError, Environ, Input, Overloaded, Response, Scheme, StartResponse,
};

/// Where a request came in: the per-connection facts an HTTP server knows.
///
/// The tower bridge looks for one in the request's extensions; servers insert it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The server's own address (`SERVER_PORT` when no `Host` header says otherwise); `None` on a
    /// unix socket.
    pub local: Option<SocketAddr>,
    /// The client's address (`REMOTE_ADDR`, `REMOTE_PORT`); `None` on a unix socket.
    pub remote: Option<SocketAddr>,
    /// The scheme the client used (`https` behind TLS termination in this process).
    pub scheme: Scheme,
}

impl Default for ConnInfo {
    /// A loopback connection: `127.0.0.1:80` ← `127.0.0.1:0`, plain HTTP.
    fn default() -> Self {
        ConnInfo {
            local: Some(SocketAddr::from(([127, 0, 0, 1], 80))),
            remote: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            scheme: Scheme::Http,
        }
    }
}

/// Limits applied while turning a request into an environ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputLimits {
    /// Refuse request bodies longer than this many bytes (`None`: no limit).
    pub max_body: Option<u64>,
}

/// Build the environ for an HTTP request.
///
/// - `SERVER_NAME`/`SERVER_PORT` come from the `Host` header when present (as gunicorn and most CGI
///   servers do), else from the local address (`localhost` on a unix socket).
/// - `SCRIPT_NAME` is `""`; `PATH_INFO` is the percent-decoded path; `REQUEST_URI` the raw target.
/// - The body becomes `rgi.input` as is: streamed, with EOF at `Content-Length` when given.
///
/// # Errors
///
/// [`InvalidContentLength`] when `Content-Length` is not `1*DIGIT` (RFC 9110 §8.6), or its copies (a
/// comma list, or the field repeated) differ. Identical copies are collapsed into one value, as the
/// RFC allows, so the application sees `CONTENT_LENGTH` as a plain number. Answer the error with 400
/// ([`error_response`] does).
pub fn environ_from_request<B>(
    request: http::Request<B>,
    conn: &ConnInfo,
    server: &Arc<ServerInfo>,
    limits: InputLimits,
) -> Result<Environ, InvalidContentLength>
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = request.into_parts();
    let (server_name, server_port) = server_name_port(&parts.headers, parts.uri.authority(), conn);
    let mut input = Input::from_body(body);
    if let Some(len) = content_length(&mut parts.headers)? {
        input = input.with_content_length(len);
    }
    if let Some(max) = limits.max_body {
        input = input.with_limit(max);
    }

    Ok(Environ::from_http(FromHttp {
        method: parts.method,
        uri: parts.uri,
        protocol: protocol_name(parts.version),
        server_name,
        server_port,
        scheme: conn.scheme,
        remote: conn.remote.map(|r| (ip_text(r.ip()), r.port())),
        headers: parts.headers,
        input,
        server: Arc::clone(server),
        extensions: parts.extensions,
    }))
}

/// A request's `Content-Length` is not a length: not `1*DIGIT`, too large for a `u64`, or a list
/// (or repeated field) of values that differ (RFC 9110 §8.6). The request's framing cannot be
/// trusted; [`error_status`] maps it to 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidContentLength;

impl std::fmt::Display for InvalidContentLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid Content-Length (RFC 9110 §8.6: 1*DIGIT, copies identical)")
    }
}

impl std::error::Error for InvalidContentLength {}

/// The request's declared body length: `None` without `Content-Length`. Copies of one value (`5, 5`,
/// or the field twice) and over-long forms (leading zeros past 20 digits) are rewritten as one
/// plain number in `headers`, so `CONTENT_LENGTH` is what every CGI consumer parses.
fn content_length(headers: &mut HeaderMap) -> Result<Option<u64>, InvalidContentLength> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    // The common case: one field, one number; nothing to rewrite.
    if let Some(len) = crate::environ::parse_digits(first.as_bytes()) {
        if values.next().is_none() {
            return Ok(Some(len));
        }
    }
    let mut len = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for element in value.as_bytes().split(|&b| b == b',') {
            let element = element.trim_ascii();
            let n = decimal(element).ok_or(InvalidContentLength)?;
            if len.is_some_and(|l| l != n) {
                return Err(InvalidContentLength);
            }
            len = Some(n);
        }
    }
    let len = len.ok_or(InvalidContentLength)?;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(Some(len))
}

/// `1*DIGIT` as a `u64`, any number of leading zeros; `None` when empty, not digits, or too large.
fn decimal(digits: &[u8]) -> Option<u64> {
    let zeros = digits.iter().take_while(|&&d| d == b'0').count();
    // Keep one zero of an all-zero value.
    crate::environ::parse_digits(&digits[zeros.min(digits.len().saturating_sub(1))..])
}

/// `SERVER_NAME` and `SERVER_PORT` for a request.
fn server_name_port(
    headers: &HeaderMap,
    authority: Option<&http::uri::Authority>,
    conn: &ConnInfo,
) -> (Bytes, u16) {
    let default_port = conn.local.map_or(conn.scheme.default_port(), |a| a.port());
    // The Host header, else the target's authority (absolute-form, HTTP/2's :authority).
    let host = headers
        .get(header::HOST)
        .map(HeaderValue::as_bytes)
        .or_else(|| authority.map(|a| a.as_str().as_bytes()));
    if let Some(host) = host {
        if !host.is_empty() {
            let (name, port) = split_host_port(host);
            let port = port
                .and_then(crate::environ::parse_digits)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_else(|| {
                    if port.is_some() {
                        default_port
                    } else {
                        conn.scheme.default_port()
                    }
                });
            return (Bytes::copy_from_slice(name), port);
        }
    }
    match conn.local {
        Some(addr) => (ip_text(addr.ip()), addr.port()),
        None => (Bytes::from_static(b"localhost"), default_port),
    }
}

/// An IP address as `REMOTE_ADDR`/`SERVER_NAME` text. IPv4 (every request's case) is written by hand:
/// `Display` for `Ipv4Addr` goes through the padding-aware formatter and costs more than the rest of
/// the environ.
fn ip_text(ip: IpAddr) -> Bytes {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    out[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    out[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                out[len] = b'0' + octet % 10;
                len += 1;
            }
            Bytes::copy_from_slice(&out[..len])
        }
        IpAddr::V6(_) => Bytes::from(ip.to_string()),
    }
}

/// `example.org:8080` → (`example.org`, `8080`); `[::1]:80` → (`[::1]`, `80`).
fn split_host_port(host: &[u8]) -> (&[u8], Option<&[u8]>) {
    let colon = if host.starts_with(b"[") {
        host.iter()
            .position(|&c| c == b']')
            .and_then(|end| (host.get(end + 1) == Some(&b':')).then_some(end + 1))
    } else {
        host.iter().rposition(|&c| c == b':')
    };
    match colon {
        Some(i) => (&host[..i], Some(&host[i + 1..])),
        None => (host, None),
    }
}

/// `SERVER_PROTOCOL` for an HTTP version: `HTTP/2.0` and `HTTP/3.0` for the newer versions, as
/// nginx's `$server_protocol` and Apache httpd name them (and CGI's `HTTP/x.y` form).
pub fn protocol_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Turn an RGI response into an `http` response (the body is the RGI [`Body`], an `http_body::Body`).
pub fn into_http_response(response: Response) -> http::Response<Body> {
    let (status, headers, body, extensions) = response.into_parts();
    let mut out = http::Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    *out.extensions_mut() = extensions;
    out
}

/// The response a server sends when an application returns `Err`: 413 for [`BodyTooLarge`], 503 for
/// [`Overloaded`], 400 for a body that ended early or an [`InvalidContentLength`], 500 otherwise. Only the status line's words go to
/// the client; the error itself goes to `rgi.errors`.
pub fn error_response(error: &BoxError) -> http::Response<Body> {
    let status = error_status(error);
    let mut response = http::Response::new(Body::from(format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The status for an application error; see [`error_response`].
///
/// This is RGI's one classification of application errors, shared by every server: a 4xx means the
/// client caused it (the body was too large, ended early, or could not be read as framed), so servers
/// do not report it as an error (see [`call_app`]); a 5xx is the server's or the application's own
/// failure. When the chain holds several markers, 413 and 503 win over 400 (a body that was both cut
/// short and over the limit is reported as too large).
pub fn error_status(error: &BoxError) -> StatusCode {
    let mut status = StatusCode::INTERNAL_SERVER_ERROR;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = cause {
        // `io::Error::source` skips the error it wraps: look inside too.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for e in std::iter::once(e).chain(inner) {
            if e.is::<BodyTooLarge>() {
                return StatusCode::PAYLOAD_TOO_LARGE;
            }
            if e.is::<Overloaded>() {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            // Only the request body's own short read or failed source; an application's
            // `UnexpectedEof` is a 500.
            if e.is::<ShortBody>() || e.is::<BadBody>() || e.is::<InvalidContentLength>() {
                status = StatusCode::BAD_REQUEST;
            }
        }
        // For an `io::Error`, this is the wrapped error's own source.
        cause = e.source();
    }
    status
}

/// Call `app` with `environ` and turn the outcome into an `http` response; an `Err` is answered by
/// [`error_response`] and, unless the client caused it (a 4xx from [`error_status`]), logged to
/// `rgi.errors`.
pub async fn call_app<A: Application>(app: &A, environ: Environ) -> http::Response<Body> {
    let start = StartResponse::new(environ.method());
    // The server facts' handle, not `rgi.errors`' own: servers keep one per connection, so this
    // reference count is not shared between threads.
    let server = Arc::clone(environ.server_arc());
    // A reference-counted handle, not a copy: only the error path formats it.
    let uri = environ.request_uri_handle();
    match app.call(environ, start).await {
        Ok(response) => into_http_response(response),
        Err(error) => {
            let response = error_response(&error);
            // The client's mistakes (413, 400) are not the server's errors: the status is in the
            // access log, and nothing goes to the error stream (behind nginx, every `rgi.errors`
            // line becomes an `[error]` in its log).
            if !response.status().is_client_error() {
                let uri = String::from_utf8_lossy(uri.as_ref().map_or(&[][..], Target::as_bytes));
                server
                    .errors
                    .log(format_args!("rgi: application error for {uri}: {error}"));
            }
            response
        }
    }
}

/// Turn an environ back into an `http` request, for tower services behind
/// [`ServiceApp`](crate::tower::ServiceApp).
///
/// The URI is `REQUEST_URI` when the application is not mounted and the environ's path and query are
/// still the ones it names (the exact bytes the client sent); otherwise (under a mount point, or after
/// middleware rewrote `PATH_INFO`) it is the re-encoded `PATH_INFO` plus `QUERY_STRING`, so the service
/// routes on the path the environ holds. The environ's extensions move to the request, with an
/// [`EnvironMeta`] added.
pub fn into_http_request(mut environ: Environ) -> http::Request<Input> {
    let uri = request_uri_for(&environ);
    let meta = EnvironMeta::from_environ(&environ);
    let mut request = http::Request::new(environ.take_input());
    *request.method_mut() = environ.method().clone();
    *request.version_mut() = version_of(&environ);
    *request.uri_mut() = uri;
    *request.headers_mut() = std::mem::take(environ.headers_mut());
    *request.extensions_mut() = std::mem::take(environ.extensions_mut());
    request.extensions_mut().insert(meta);
    request
}

/// The HTTP version `SERVER_PROTOCOL` names (HTTP/1.1 for anything else).
pub(crate) fn version_of(environ: &Environ) -> Version {
    match environ.protocol() {
        b"HTTP/1.0" => Version::HTTP_10,
        b"HTTP/0.9" => Version::HTTP_09,
        b"HTTP/2" | b"HTTP/2.0" => Version::HTTP_2,
        b"HTTP/3" | b"HTTP/3.0" => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

pub(crate) fn request_uri_for(environ: &Environ) -> http::Uri {
    if environ.script_name().is_empty() {
        if let Some(raw) = environ.request_uri() {
            // Only while it still describes the environ: middleware may have rewritten the path.
            let (raw_path, raw_query) = match raw.iter().position(|&c| c == b'?') {
                Some(i) => (&raw[..i], &raw[i + 1..]),
                None => (raw, &b""[..]),
            };
            if raw_query == environ.query_string()
                && crate::environ::percent_decode(raw_path) == environ.path_info()
            {
                if let Ok(uri) = http::Uri::try_from(raw) {
                    if uri.scheme().is_none() {
                        return uri;
                    }
                }
            }
        }
    }
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'%');
    // The query stays raw (its escapes are the application's to decode); only bytes a URI cannot
    // carry are escaped.
    const QUERY: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'`')
        .add(b'{')
        .add(b'}');
    let mut target: String = percent_encoding::percent_encode(environ.path_info(), PATH).collect();
    if target.is_empty() {
        target.push('/');
    }
    let path_only = target.clone();
    if !environ.query_string().is_empty() {
        target.push('?');
        target.extend(percent_encoding::percent_encode(
            environ.query_string(),
            QUERY,
        ));
    }
    http::Uri::try_from(target)
        .or_else(|_| http::Uri::try_from(path_only))
        .unwrap_or_else(|_| http::Uri::from_static("/"))
}

/// The CGI facts of an environ that have no place in an `http::Request`, carried as a request
/// extension by [`into_http_request`] (like Go's `fcgi.ProcessEnv`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironMeta {
    /// `SCRIPT_NAME`.
    pub script_name: Bytes,
    /// `rgi.url_scheme`.
    pub scheme: Scheme,
    /// `REMOTE_ADDR`, `REMOTE_PORT`.
    pub remote: Option<(Bytes, Option<u16>)>,
    /// `SERVER_NAME`, `SERVER_PORT`.
    pub server: (Bytes, u16),
}

impl EnvironMeta {
    fn from_environ(environ: &Environ) -> Self {
        EnvironMeta {
            script_name: Bytes::copy_from_slice(environ.script_name()),
            scheme: environ.url_scheme(),
            remote: environ
                .remote_addr()
                .map(|(a, p)| (Bytes::copy_from_slice(a), p)),
            server: (
                Bytes::copy_from_slice(environ.server_name()),
                environ.server_port(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_matches_display() {
        let samples = [0u8, 1, 9, 10, 42, 99, 100, 127, 199, 200, 255];
        for a in samples {
            for b in samples {
                let ip = IpAddr::from([a, b, 255 - a, b / 2]);
                assert_eq!(ip_text(ip), ip.to_string().as_bytes());
            }
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_text(v6), "2001:db8::1".as_bytes());
    }

    /// The environ for a request with these `Content-Length` fields (an empty body).
    fn with_content_length(fields: &[&str]) -> Result<Environ, InvalidContentLength> {
        let mut request = http::Request::post("/");
        for field in fields {
            request = request.header(header::CONTENT_LENGTH, *field);
        }
        let request = request.body(Body::empty()).unwrap();
        let server = Arc::new(ServerInfo::default());
        environ_from_request(
            request,
            &ConnInfo::default(),
            &server,
            InputLimits::default(),
        )
    }

    /// `CONTENT_LENGTH` as the application sees it.
    fn cgi_content_length(environ: &Environ) -> Option<Vec<u8>> {
        environ
            .vars()
            .into_iter()
            .find(|(k, _)| k == "CONTENT_LENGTH")
            .map(|(_, v)| v.as_bytes().to_vec())
    }

    #[test]
    fn a_content_length_that_is_not_1_digit_is_refused_with_400() {
        // The fuzz finding (`%6`) and its relatives: signs, spaces inside, hex, empty, empty list
        // elements, overflow.
        for bad in [
            "%6",
            "+5",
            "-1",
            "5 5",
            "0x10",
            "",
            " ",
            "5,",
            ",5",
            "5,,5",
            "1e3",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            let error = with_content_length(&[bad]).expect_err(bad);
            assert_eq!(error, InvalidContentLength, "{bad:?}");
            assert_eq!(error_status(&error.into()), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn differing_copies_are_refused_identical_ones_collapsed() {
        assert!(with_content_length(&["5, 6"]).is_err());
        assert!(with_content_length(&["5", "6"]).is_err());
        assert!(with_content_length(&["5", "5, 6"]).is_err());
        assert!(with_content_length(&["5", "x"]).is_err());
        for same in [
            &["5, 5"][..],
            &["5", "5"],
            &["5 ,\t5", "05"],
            &["0000000000000000000000005"],
        ] {
            let environ = with_content_length(same).unwrap();
            assert_eq!(environ.content_length(), Some(5), "{same:?}");
            assert_eq!(cgi_content_length(&environ).as_deref(), Some(&b"5"[..]));
            assert_eq!(
                environ
                    .headers()
                    .get_all(header::CONTENT_LENGTH)
                    .iter()
                    .count(),
                1
            );
        }
    }

    #[test]
    fn a_plain_content_length_is_kept_as_sent() {
        for (sent, len) in [
            ("0", 0),
            ("17", 17),
            ("007", 7),
            ("18446744073709551615", u64::MAX),
        ] {
            let environ = with_content_length(&[sent]).unwrap();
            assert_eq!(environ.content_length(), Some(len));
            assert_eq!(
                cgi_content_length(&environ).as_deref(),
                Some(sent.as_bytes())
            );
        }
        let environ = with_content_length(&[]).unwrap();
        assert_eq!(environ.content_length(), None);
        assert_eq!(cgi_content_length(&environ), None);
    }

    #[test]
    fn the_test_client_answers_an_invalid_content_length_with_400() {
        let client = crate::testing::TestClient::new(crate::app_fn(|_environ, start| async move {
            Ok(start.respond(StatusCode::OK, HeaderMap::new(), "called")?)
        }));
        let response = client
            .post("/")
            .header(header::CONTENT_LENGTH, "%6")
            .send_blocking();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_ne!(response.text(), "called");
    }
    #[test]
    fn an_http2_request_has_server_protocol_http_2_0_and_its_authority_as_server_name() {
        let request = http::Request::get("https://example.org:8443/a?b")
            .version(Version::HTTP_2)
            .body(Body::empty())
            .unwrap();
        let environ = environ_from_request(
            request,
            &ConnInfo::default(),
            &Arc::default(),
            InputLimits::default(),
        )
        .unwrap();
        assert_eq!(environ.protocol(), b"HTTP/2.0");
        assert_eq!(version_of(&environ), Version::HTTP_2);
        assert_eq!(environ.server_name(), b"example.org");
        assert_eq!(environ.server_port(), 8443);
        for version in [
            Version::HTTP_10,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_3,
        ] {
            let environ = Environ::builder(http::Method::GET, "/")
                .protocol(protocol_name(version))
                .build();
            assert_eq!(version_of(&environ), version, "{version:?} back and forth");
        }
    }
}
