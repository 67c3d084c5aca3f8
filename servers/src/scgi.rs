//! SCGI server (nginx `scgi_pass`, lighttpd `mod_scgi`, Apache `mod_proxy_scgi`).
//!
//! Supported: the SCGI protocol as specified (`protocol.txt`): a netstring header of `NAME\0VALUE\0`
//! pairs whose first is `CONTENT_LENGTH` and which includes `SCGI=1`, then the body, streamed to
//! `rgi.input`; one request per connection; the response is CGI-style (`Status:` line, headers, body),
//! as nginx expects; headers larger than [`Limits::max_head_bytes`](crate::config::Limits) are
//! refused; graceful stop; TCP and unix sockets. A malformed header (leading zero in the length, no
//! `CONTENT_LENGTH` first, no `SCGI=1`, a duplicate name other than `HTTP_*`, which nginx sends for
//! a repeated request header) is answered `400 Bad Request`, an
//! oversized one `431`, then the connection is closed. Not supported: keeping connections open
//! (SCGI has no such thing). `SCRIPT_NAME`/`PATH_INFO` are derived as the shared gateway code
//! documents (nginx's `scgi_params` sends neither).

use std::collections::HashSet;
use std::fmt;

use http::StatusCode;

use crate::gateway::oneshot::{Wire, WireError};
use crate::gateway::response::Head;

/// `SERVER_SOFTWARE` of this server.
pub const SOFTWARE: &str = concat!("rgi-scgi/", env!("CARGO_PKG_VERSION"));

/// The longest netstring length prefix accepted (10 digits: up to 9 999 999 999).
const MAX_LENGTH_DIGITS: usize = 10;

/// A request header that breaks the SCGI protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The netstring length is not digits followed by `:`, or starts with `0`.
    BadLength,
    /// The header is longer than the configured limit.
    TooLarge(usize),
    /// The netstring does not end with `,`.
    MissingComma,
    /// The header is not `NAME\0VALUE\0` pairs.
    BadPairs,
    /// The first variable is not `CONTENT_LENGTH` with a decimal value.
    ContentLengthNotFirst,
    /// `SCGI=1` is missing.
    MissingScgi,
    /// A variable appears twice.
    Duplicate(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadLength => f.write_str("scgi: header length is not a netstring length"),
            Error::TooLarge(limit) => write!(f, "scgi: header exceeds the limit of {limit} bytes"),
            Error::MissingComma => f.write_str("scgi: header netstring does not end with ','"),
            Error::BadPairs => f.write_str("scgi: header is not NAME\\0VALUE\\0 pairs"),
            Error::ContentLengthNotFirst => {
                f.write_str("scgi: the first header variable must be CONTENT_LENGTH")
            }
            Error::MissingScgi => f.write_str("scgi: header lacks SCGI=1"),
            Error::Duplicate(name) => write!(f, "scgi: header variable {name} appears twice"),
        }
    }
}

impl std::error::Error for Error {}

impl WireError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::TooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Parse the netstring header at the front of `buf`: `Ok(None)` while it is incomplete, else its
/// length on the wire and its variables, in order.
///
/// # Errors
///
/// As soon as the bytes received break the protocol, or the announced length exceeds `limit`.
///
/// ```
/// let wire = b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,";
/// let (len, vars) = rgi_servers::scgi::parse_header(wire, 1024)?.unwrap();
/// assert_eq!(len, wire.len());
/// assert_eq!(vars, [(&b"CONTENT_LENGTH"[..], &b"0"[..]), (&b"SCGI"[..], &b"1"[..])]);
/// # Ok::<(), rgi_servers::scgi::Error>(())
/// ```
pub fn parse_header(
    buf: &[u8],
    limit: usize,
) -> Result<Option<(usize, crate::gateway::Vars<'_>)>, Error> {
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_LENGTH_DIGITS || buf.first() == Some(&b'0') {
        return Err(Error::BadLength);
    }
    match buf.get(digits) {
        None => return Ok(None),
        Some(b':') if digits > 0 => {}
        Some(_) => return Err(Error::BadLength),
    }
    let len: usize = std::str::from_utf8(&buf[..digits])
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or(Error::BadLength)?;
    if len > limit {
        return Err(Error::TooLarge(limit));
    }
    let start = digits + 1;
    let Some(&end) = buf.get(start + len) else {
        return Ok(None);
    };
    if end != b',' {
        return Err(Error::MissingComma);
    }
    let vars = parse_pairs(&buf[start..start + len])?;
    Ok(Some((start + len + 1, vars)))
}

fn parse_pairs(block: &[u8]) -> Result<crate::gateway::Vars<'_>, Error> {
    let Some(body) = block.strip_suffix(b"\0") else {
        return Err(Error::BadPairs);
    };
    let mut fields = body.split(|&b| b == 0);
    let mut vars = Vec::new();
    let mut seen = HashSet::new();
    while let Some(name) = fields.next() {
        let value = fields.next().ok_or(Error::BadPairs)?;
        if name.is_empty() {
            return Err(Error::BadPairs);
        }
        // nginx sends a repeated request header as repeated `HTTP_*` names, which the protocol
        // forbids; they are accepted (and joined like repeated headers). Any other name twice (a
        // second CONTENT_LENGTH…) is refused.
        if !seen.insert(name) && !name.starts_with(b"HTTP_") {
            return Err(Error::Duplicate(String::from_utf8_lossy(name).into_owned()));
        }
        vars.push((name, value));
    }
    match vars.first() {
        Some((name, value))
            if *name == b"CONTENT_LENGTH"
                && !value.is_empty()
                && value.iter().all(u8::is_ascii_digit) => {}
        _ => return Err(Error::ContentLengthNotFirst),
    }
    if !vars.iter().any(|(n, v)| *n == b"SCGI" && *v == b"1") {
        return Err(Error::MissingScgi);
    }
    Ok(vars)
}

/// The SCGI framing, served by the shared one-request-per-connection server.
pub(crate) static WIRE: Wire<Error> = Wire {
    head: Head::Cgi,
    parse: parse_header,
    max_vars: usize::MAX,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A netstring of `NAME\0VALUE\0` pairs.
    fn header(vars: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        for (k, v) in vars {
            block.extend_from_slice(k.as_bytes());
            block.push(0);
            block.extend_from_slice(v.as_bytes());
            block.push(0);
        }
        let mut out = format!("{}:", block.len()).into_bytes();
        out.extend_from_slice(&block);
        out.push(b',');
        out
    }

    const OK: [(&str, &str); 3] = [
        ("CONTENT_LENGTH", "5"),
        ("SCGI", "1"),
        ("REQUEST_METHOD", "POST"),
    ];

    #[test]
    fn a_well_formed_header_parses_at_every_prefix_only_when_whole() {
        let wire = header(&OK);
        for cut in 0..wire.len() {
            assert_eq!(parse_header(&wire[..cut], 1024), Ok(None), "cut at {cut}");
        }
        let (len, vars) = parse_header(&wire, 1024).unwrap().unwrap();
        assert_eq!(len, wire.len());
        assert_eq!(vars.len(), 3);
    }

    #[test]
    fn malformed_headers_are_refused_with_their_reason() {
        let mut leading_zero = header(&OK);
        leading_zero.insert(0, b'0');
        assert_eq!(parse_header(&leading_zero, 1024), Err(Error::BadLength));
        assert_eq!(parse_header(b"x:", 1024), Err(Error::BadLength));
        assert_eq!(parse_header(b":", 1024), Err(Error::BadLength));
        let mut no_comma = header(&OK);
        *no_comma.last_mut().unwrap() = b';';
        assert_eq!(parse_header(&no_comma, 1024), Err(Error::MissingComma));
        let swapped = header(&[("SCGI", "1"), ("CONTENT_LENGTH", "0")]);
        assert_eq!(
            parse_header(&swapped, 1024),
            Err(Error::ContentLengthNotFirst)
        );
        let no_scgi = header(&[("CONTENT_LENGTH", "0")]);
        assert_eq!(parse_header(&no_scgi, 1024), Err(Error::MissingScgi));
        let twice = header(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("SCGI", "1")]);
        assert_eq!(
            parse_header(&twice, 1024),
            Err(Error::Duplicate("SCGI".into()))
        );
        let nginx_repeated_header = header(&[
            ("CONTENT_LENGTH", "0"),
            ("SCGI", "1"),
            ("HTTP_X_MULTI", "a"),
            ("HTTP_X_MULTI", "b"),
        ]);
        assert!(parse_header(&nginx_repeated_header, 1024).is_ok());
        assert_eq!(parse_header(b"3:a\0b,", 1024), Err(Error::BadPairs));
    }

    #[test]
    fn a_header_longer_than_the_limit_is_refused_before_it_is_read() {
        assert_eq!(parse_header(b"100000:", 1024), Err(Error::TooLarge(1024)));
        assert_eq!(parse_header(b"12345678901", 1024), Err(Error::BadLength));
        assert_eq!(
            Error::TooLarge(1).status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
}
