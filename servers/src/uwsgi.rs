//! uwsgi-protocol server (nginx `uwsgi_pass`), for packets with `modifier1` = 0 (WSGI-style
//! variables).
//!
//! Supported: the 4-byte packet header (`modifier1`, u16 little-endian size, `modifier2`), a vars
//! block of `u16 LE length, name, u16 LE length, value` entries of at most 64 KiB (and at most
//! [`Limits::max_head_bytes`](crate::config::Limits)), then the body sized by `CONTENT_LENGTH`,
//! streamed to `rgi.input`; one request per connection; the response is a raw HTTP/1.1 response
//! (status line, headers, body), which is what nginx's uwsgi module parses; graceful stop; TCP and
//! unix sockets. Not supported: other `modifier1` values (PSGI, Rack, raw HTTP… answered `501`), the
//! uwsgi server's own management packets, keep-alive. A truncated vars block is answered `400`, an
//! oversized one `431`. nginx's `uwsgi_params` sends `PATH_INFO` and no `SCRIPT_NAME`; the shared
//! gateway code applies the configured mount point.

use std::fmt;

use http::StatusCode;

use crate::gateway::oneshot::{Wire, WireError};
use crate::gateway::response::Head;

/// `SERVER_SOFTWARE` of this server.
pub const SOFTWARE: &str = concat!("rgi-uwsgi/", env!("CARGO_PKG_VERSION"));

/// The packet header: `modifier1`, `datasize` (u16 LE), `modifier2`.
const HEADER_LEN: usize = 4;
/// The largest vars block the 16-bit `datasize` can announce.
const MAX_VARS: usize = u16::MAX as usize;

/// A request packet that this server does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `modifier1` is not 0 (WSGI-style variables).
    UnsupportedModifier(u8),
    /// The vars block is larger than the configured limit.
    TooLarge(usize),
    /// A length in the vars block runs past its end.
    Truncated,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnsupportedModifier(m) => {
                write!(f, "uwsgi: modifier1 {m} is not supported (only 0)")
            }
            Error::TooLarge(limit) => write!(f, "uwsgi: vars block exceeds {limit} bytes"),
            Error::Truncated => f.write_str("uwsgi: vars block is truncated"),
        }
    }
}

impl std::error::Error for Error {}

impl WireError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::UnsupportedModifier(_) => StatusCode::NOT_IMPLEMENTED,
            Error::TooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Error::Truncated => StatusCode::BAD_REQUEST,
        }
    }
}

/// Parse the packet header and vars block at the front of `buf`: `Ok(None)` while incomplete, else
/// their length on the wire and the variables, in order.
///
/// # Errors
///
/// A `modifier1` other than 0, a block larger than `limit`, or a truncated entry.
///
/// ```
/// let wire = [0, 6, 0, 0, /* vars: */ 1, 0, b'A', 1, 0, b'b'];
/// let (len, vars) = rgi_servers::uwsgi::parse_header(&wire, 1024)?.unwrap();
/// assert_eq!((len, vars), (10, vec![(&b"A"[..], &b"b"[..])]));
/// # Ok::<(), rgi_servers::uwsgi::Error>(())
/// ```
pub fn parse_header(
    buf: &[u8],
    limit: usize,
) -> Result<Option<(usize, crate::gateway::Vars<'_>)>, Error> {
    let Some(&[modifier1, lo, hi, _modifier2]) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    if modifier1 != 0 {
        return Err(Error::UnsupportedModifier(modifier1));
    }
    let size = usize::from(u16::from_le_bytes([lo, hi]));
    let limit = limit.min(MAX_VARS);
    if size > limit {
        return Err(Error::TooLarge(limit));
    }
    let Some(mut block) = buf.get(HEADER_LEN..HEADER_LEN + size) else {
        return Ok(None);
    };
    let mut vars = Vec::new();
    while !block.is_empty() {
        let (name, rest) = sized(block)?;
        let (value, rest) = sized(rest)?;
        vars.push((name, value));
        block = rest;
    }
    Ok(Some((HEADER_LEN + size, vars)))
}

/// `u16 LE length, bytes` → (bytes, rest).
fn sized(block: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let Some((&[lo, hi], rest)) = block.split_first_chunk::<2>() else {
        return Err(Error::Truncated);
    };
    let len = usize::from(u16::from_le_bytes([lo, hi]));
    if rest.len() < len {
        return Err(Error::Truncated);
    }
    Ok(rest.split_at(len))
}

/// The uwsgi framing, served by the shared one-request-per-connection server.
pub(crate) static WIRE: Wire<Error> = Wire {
    head: Head::Http,
    parse: parse_header,
    max_vars: MAX_VARS,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_parses_only_when_whole() {
        let wire = [
            0, 10, 0, 0, // modifier1 0, size 10 (LE), modifier2 0
            4, 0, b'P', b'A', b'T', b'H', // name length 4, name
            2, 0, b'/', b'x', // value length 2, value
        ];
        for cut in 0..wire.len() {
            assert_eq!(parse_header(&wire[..cut], 4096), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            parse_header(&wire, 4096),
            Ok(Some((14, vec![(&b"PATH"[..], &b"/x"[..])])))
        );
    }

    #[test]
    fn only_modifier1_zero_is_accepted() {
        assert_eq!(
            parse_header(&[5, 0, 0, 0], 4096),
            Err(Error::UnsupportedModifier(5))
        );
    }

    #[test]
    fn an_oversized_or_truncated_vars_block_is_refused() {
        assert_eq!(
            parse_header(&[0, 0x00, 0x10, 0], 1024),
            Err(Error::TooLarge(1024))
        );
        assert_eq!(
            parse_header(&[0, 3, 0, 0, 9, 0, b'x'], 1024),
            Err(Error::Truncated)
        );
    }
}
