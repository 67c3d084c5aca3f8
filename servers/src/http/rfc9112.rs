//! What RFC 9112/9110 require a server to refuse and hyper lets through: checked on every request
//! head before the application sees it, on the `HeaderMap` hyper already built (no allocation, a few
//! hash lookups).
//!
//! hyper itself refuses (400) malformed request lines and field lines, obsolete line folding, a
//! `Content-Length` that is not a number or whose copies differ, `Transfer-Encoding` on HTTP/1.0 or
//! without `chunked` last, and malformed chunk sizes (the body read fails; the application's error
//! then maps to 400 through [`rgi::convert::error_status`]). What is left is here.
//!
//! Not checked (hyper accepts it and its decoder gives us no hook): whitespace between a chunk size
//! and its CRLF (`5 \r\n`). The size is unambiguous (whitespace is not a hex digit), so the body
//! cannot be read two ways; see the conformance table in `tests/tests/http_conformance.rs`.

use http::{header, HeaderMap, Method, Request, StatusCode, Version};

/// Why a request head is refused; the status and a short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Violation {
    /// 400, or 501 for a transfer coding the server cannot decode.
    pub(crate) status: StatusCode,
    /// Sent to the client after the status (static text: nothing about the request is echoed).
    pub(crate) reason: &'static str,
}

const fn bad(reason: &'static str) -> Violation {
    Violation {
        status: StatusCode::BAD_REQUEST,
        reason,
    }
}

/// Check one request head. `Ok` for every request a browser or a conforming client sends.
pub(crate) fn check<B>(request: &Request<B>) -> Result<(), Violation> {
    check_target(request.method(), request.uri())?;
    let headers = request.headers();
    check_host(headers, request.version())?;
    // Singleton fields (RFC 9110 §5.3): joined with commas they would reach the application as one
    // value no sender meant. (hyper refuses differing Content-Length copies and keeps one of
    // identical copies, as RFC 9110 §8.6 allows.)
    if headers
        .get_all(header::CONTENT_TYPE)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(bad("more than one Content-Type (RFC 9110 §5.3)"));
    }
    check_transfer_coding(headers)
}

/// RFC 9112 §3.2: the asterisk form only for OPTIONS, the authority form only for CONNECT (and
/// CONNECT only in the authority form).
fn check_target(method: &Method, uri: &http::Uri) -> Result<(), Violation> {
    let asterisk = uri.scheme().is_none() && uri.authority().is_none() && uri.path() == "*";
    let authority_form = uri.scheme().is_none() && uri.authority().is_some();
    if asterisk && method != Method::OPTIONS {
        return Err(bad(
            "asterisk-form target for a method other than OPTIONS (RFC 9112 §3.2.4)",
        ));
    }
    if authority_form != (method == Method::CONNECT) {
        return Err(bad(
            "authority-form target without CONNECT, or CONNECT without it (RFC 9112 §3.2.3)",
        ));
    }
    Ok(())
}

/// RFC 9112 §3.2: 400 for an HTTP/1.1 request without `Host`, for more than one `Host`, and for a
/// `Host` whose value is not `uri-host [ ":" port ]`.
fn check_host(headers: &HeaderMap, version: Version) -> Result<(), Violation> {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(bad("more than one Host (RFC 9112 §3.2)")),
        (None, None) if version == Version::HTTP_11 => {
            Err(bad("HTTP/1.1 request without Host (RFC 9112 §3.2)"))
        }
        (Some(host), None) if !is_host(host.as_bytes()) => {
            Err(bad("Host is not uri-host [ \":\" port ] (RFC 9112 §3.2)"))
        }
        _ => Ok(()),
    }
}

/// `uri-host [ ":" port ]` (RFC 3986 §3.2.2): a reg-name or IPv4 address (unreserved, pct-encoded,
/// sub-delims), or an IP literal in brackets; then digits after a colon. Empty is allowed (a target
/// without an authority).
fn is_host(value: &[u8]) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix(b"[") {
        let Some(end) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &rest[..end];
        let ok = !literal.is_empty()
            && literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b":.vV".contains(&b) || is_sub_delim(b));
        if !ok {
            return false;
        }
        match &rest[end + 1..] {
            [] => return true,
            [b':', port @ ..] => (&[][..], Some(port)),
            _ => return false,
        }
    } else {
        match value.iter().position(|&b| b == b':') {
            Some(i) => (&value[..i], Some(&value[i + 1..])),
            None => (value, None),
        }
    };
    let host_ok = host
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b) || is_sub_delim(b));
    host_ok && port.is_none_or(|p| p.iter().all(u8::is_ascii_digit))
}

fn is_sub_delim(b: u8) -> bool {
    b"!$&'()*+,;=".contains(&b)
}

/// RFC 9112 §6.1, §7: `chunked` at most once; any other transfer coding is one RGI cannot decode:
/// 501 (a SHOULD), so that no application ever reads coded bytes as the body. hyper already refuses
/// codings without `chunked` last, and `Transfer-Encoding` on HTTP/1.0.
fn check_transfer_coding(headers: &HeaderMap) -> Result<(), Violation> {
    let mut chunked = 0;
    for value in headers.get_all(header::TRANSFER_ENCODING) {
        for coding in value.as_bytes().split(|&b| b == b',') {
            let coding = coding.trim_ascii();
            if coding.eq_ignore_ascii_case(b"chunked") {
                chunked += 1;
            } else if !coding.is_empty() {
                return Err(Violation {
                    status: StatusCode::NOT_IMPLEMENTED,
                    reason: "a transfer coding other than chunked (RFC 9112 §6.1)",
                });
            }
        }
    }
    if chunked > 1 {
        return Err(bad("chunked applied more than once (RFC 9112 §6.1)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields<'a> = &'a [(&'a str, &'a str)];

    fn request(method: &str, target: &str, headers: Fields<'_>) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(target);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn ordinary_requests_pass() {
        for (m, t, h) in [
            ("GET", "/", &[("host", "example.org")][..]),
            ("GET", "/a?b", &[("host", "example.org:8080")]),
            ("GET", "/", &[("host", "[::1]:80")]),
            ("GET", "/", &[("host", "127.0.0.1")]),
            ("GET", "/", &[("host", "")]),
            ("OPTIONS", "*", &[("host", "a")]),
            ("CONNECT", "a.example:443", &[("host", "a.example:443")]),
            ("GET", "http://a.example/x", &[("host", "a.example")]),
            (
                "POST",
                "/",
                &[("host", "a"), ("transfer-encoding", "chunked")],
            ),
        ] {
            assert_eq!(check(&request(m, t, h)), Ok(()), "{m} {t} {h:?}");
        }
    }

    #[test]
    fn what_the_rfc_excludes_is_refused() {
        let cases: [(&str, &str, Fields<'_>, u16); 12] = [
            ("GET", "/", &[], 400),
            ("GET", "/", &[("host", "a"), ("host", "b")], 400),
            ("GET", "/", &[("host", "a b")], 400),
            ("GET", "/", &[("host", "u@a")], 400),
            ("GET", "/", &[("host", "a:8x")], 400),
            ("GET", "/", &[("host", "[::1")], 400),
            ("GET", "*", &[("host", "a")], 400),
            ("GET", "a.example:80", &[("host", "a")], 400),
            ("CONNECT", "/", &[("host", "a")], 400),
            (
                "POST",
                "/",
                &[
                    ("host", "a"),
                    ("content-type", "a/b"),
                    ("content-type", "c/d"),
                ],
                400,
            ),
            (
                "POST",
                "/",
                &[("host", "a"), ("transfer-encoding", "chunked, chunked")],
                400,
            ),
            (
                "POST",
                "/",
                &[("host", "a"), ("transfer-encoding", "gzip, chunked")],
                501,
            ),
        ];
        for (m, t, h, status) in cases {
            let got = check(&request(m, t, h)).map_err(|v| v.status.as_u16());
            assert_eq!(got, Err(status), "{m} {t} {h:?}");
        }
    }

    #[test]
    fn http_1_0_may_omit_host() {
        let mut r = request("GET", "/", &[]);
        *r.version_mut() = Version::HTTP_10;
        assert_eq!(check(&r), Ok(()));
    }
}
