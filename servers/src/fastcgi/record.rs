//! FastCGI 1.0 records and name-value pairs, encoded and decoded on byte slices (no I/O).
//!
//! Supported: every record type of the specification, both name-value length forms (1 and 4 bytes),
//! padding (skipped on read, 8-byte alignment on write), streams cut into records of at most 65535
//! bytes. Not supported: versions other than `FCGI_VERSION_1` (an error).
//!
//! Names follow the specification (<https://fastcgi-archives.github.io/FastCGI_Specification.html>,
//! §8 "Types and constants").

use std::fmt;

/// `FCGI_LISTENSOCK_FILENO` (§8): the listening socket a web server passes as descriptor 0.
pub const FCGI_LISTENSOCK_FILENO: i32 = 0;
/// `FCGI_HEADER_LEN` (§8): every record starts with 8 header bytes.
pub const FCGI_HEADER_LEN: usize = 8;
/// `FCGI_VERSION_1` (§8): the only version there is.
pub const FCGI_VERSION_1: u8 = 1;
/// The largest content of one record (`contentLength` is a u16, §3.3).
pub const FCGI_MAX_CONTENT: usize = 65535;
/// `FCGI_NULL_REQUEST_ID` (§8): management records.
pub const FCGI_NULL_REQUEST_ID: u16 = 0;

/// `FCGI_BEGIN_REQUEST` (§5.1).
pub const FCGI_BEGIN_REQUEST: u8 = 1;
/// `FCGI_ABORT_REQUEST` (§5.4).
pub const FCGI_ABORT_REQUEST: u8 = 2;
/// `FCGI_END_REQUEST` (§5.5).
pub const FCGI_END_REQUEST: u8 = 3;
/// `FCGI_PARAMS` (§5.2).
pub const FCGI_PARAMS: u8 = 4;
/// `FCGI_STDIN` (§5.3).
pub const FCGI_STDIN: u8 = 5;
/// `FCGI_STDOUT` (§5.3).
pub const FCGI_STDOUT: u8 = 6;
/// `FCGI_STDERR` (§5.3).
pub const FCGI_STDERR: u8 = 7;
/// `FCGI_DATA` (§5.3).
pub const FCGI_DATA: u8 = 8;
/// `FCGI_GET_VALUES` (§4.1).
pub const FCGI_GET_VALUES: u8 = 9;
/// `FCGI_GET_VALUES_RESULT` (§4.1).
pub const FCGI_GET_VALUES_RESULT: u8 = 10;
/// `FCGI_UNKNOWN_TYPE` (§4.2).
pub const FCGI_UNKNOWN_TYPE: u8 = 11;

/// `FCGI_KEEP_CONN` (§5.1): the web server keeps the connection open after the request.
pub const FCGI_KEEP_CONN: u8 = 1;

/// `FCGI_RESPONDER` (§6.2).
pub const FCGI_RESPONDER: u16 = 1;
/// `FCGI_AUTHORIZER` (§6.3).
pub const FCGI_AUTHORIZER: u16 = 2;
/// `FCGI_FILTER` (§6.4).
pub const FCGI_FILTER: u16 = 3;

/// `FCGI_REQUEST_COMPLETE` (§5.5).
pub const FCGI_REQUEST_COMPLETE: u8 = 0;
/// `FCGI_CANT_MPX_CONN` (§5.5).
pub const FCGI_CANT_MPX_CONN: u8 = 1;
/// `FCGI_OVERLOADED` (§5.5).
pub const FCGI_OVERLOADED: u8 = 2;
/// `FCGI_UNKNOWN_ROLE` (§5.5).
pub const FCGI_UNKNOWN_ROLE: u8 = 3;

/// `FCGI_MAX_CONNS` (§4.1): a `GET_VALUES` variable.
pub const FCGI_MAX_CONNS: &str = "FCGI_MAX_CONNS";
/// `FCGI_MAX_REQS` (§4.1).
pub const FCGI_MAX_REQS: &str = "FCGI_MAX_REQS";
/// `FCGI_MPXS_CONNS` (§4.1).
pub const FCGI_MPXS_CONNS: &str = "FCGI_MPXS_CONNS";

/// A record that breaks the protocol. The connection it came on is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The header's version is not `FCGI_VERSION_1`.
    Version(u8),
    /// A `BEGIN_REQUEST` body that is not 8 bytes.
    BeginRequestLength(usize),
    /// A name-value pair runs past the end of its stream.
    TruncatedPair,
    /// A request's `PARAMS` stream is longer than the configured limit.
    ParamsTooLarge(usize),
    /// A `BEGIN_REQUEST` for a request id that is already active.
    DuplicateRequest(u16),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Version(v) => write!(f, "fastcgi: record version {v} is not supported"),
            RecordError::BeginRequestLength(n) => {
                write!(f, "fastcgi: BEGIN_REQUEST body is {n} bytes, not 8")
            }
            RecordError::TruncatedPair => f.write_str("fastcgi: truncated name-value pair"),
            RecordError::ParamsTooLarge(limit) => {
                write!(f, "fastcgi: PARAMS exceed the limit of {limit} bytes")
            }
            RecordError::DuplicateRequest(id) => {
                write!(f, "fastcgi: BEGIN_REQUEST for active request id {id}")
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// A record header (§3.3): `version, type, requestId (u16 BE), contentLength (u16 BE),
/// paddingLength, reserved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The record type (`FCGI_STDIN`…).
    pub kind: u8,
    /// The request id; 0 for management records.
    pub request_id: u16,
    /// Content bytes that follow the header.
    pub content_length: u16,
    /// Padding bytes that follow the content (skipped).
    pub padding_length: u8,
}

impl Header {
    /// Decode a header.
    ///
    /// # Errors
    ///
    /// [`RecordError::Version`] for any version but 1.
    pub fn decode(bytes: &[u8; FCGI_HEADER_LEN]) -> Result<Header, RecordError> {
        if bytes[0] != FCGI_VERSION_1 {
            return Err(RecordError::Version(bytes[0]));
        }
        Ok(Header {
            kind: bytes[1],
            request_id: u16::from_be_bytes([bytes[2], bytes[3]]),
            content_length: u16::from_be_bytes([bytes[4], bytes[5]]),
            padding_length: bytes[6],
        })
    }

    /// Content plus padding: the bytes after the header.
    pub fn body_len(&self) -> usize {
        usize::from(self.content_length) + usize::from(self.padding_length)
    }
}

/// Append one record: header, `content` (at most [`FCGI_MAX_CONTENT`] bytes) and padding to a
/// multiple of 8 bytes (as the specification recommends, §3.3).
///
/// # Panics
///
/// When `content` is longer than [`FCGI_MAX_CONTENT`] (a bug in the caller; use [`encode_stream`]).
pub fn encode_record(out: &mut Vec<u8>, kind: u8, request_id: u16, content: &[u8]) {
    let len = u16::try_from(content.len()).expect("fastcgi: record content over 65535 bytes");
    let padding = (8 - content.len() % 8) % 8;
    out.reserve(FCGI_HEADER_LEN + content.len() + padding);
    out.push(FCGI_VERSION_1);
    out.push(kind);
    out.extend_from_slice(&request_id.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.push(padding as u8);
    out.push(0); // reserved
    out.extend_from_slice(content);
    out.extend_from_slice(&[0u8; 7][..padding]);
}

/// Append `data` as records of a stream (`STDOUT`, `STDERR`), cut at [`FCGI_MAX_CONTENT`] bytes.
/// Empty `data` appends nothing (an empty record would end the stream).
pub fn encode_stream(out: &mut Vec<u8>, kind: u8, request_id: u16, data: &[u8]) {
    for chunk in data.chunks(FCGI_MAX_CONTENT) {
        encode_record(out, kind, request_id, chunk);
    }
}

/// The body of a `BEGIN_REQUEST` record (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeginRequest {
    /// `FCGI_RESPONDER`, `FCGI_AUTHORIZER`, `FCGI_FILTER` or an unknown role.
    pub role: u16,
    /// Whether `FCGI_KEEP_CONN` is set.
    pub keep_conn: bool,
}

impl BeginRequest {
    /// Decode `role (u16 BE), flags, reserved[5]`.
    ///
    /// # Errors
    ///
    /// [`RecordError::BeginRequestLength`] unless the body is 8 bytes.
    pub fn decode(content: &[u8]) -> Result<BeginRequest, RecordError> {
        if content.len() != 8 {
            return Err(RecordError::BeginRequestLength(content.len()));
        }
        Ok(BeginRequest {
            role: u16::from_be_bytes([content[0], content[1]]),
            keep_conn: content[2] & FCGI_KEEP_CONN != 0,
        })
    }
}

/// The body of an `END_REQUEST` record (§5.5): `appStatus (u32 BE), protocolStatus, reserved[3]`.
pub fn end_request_body(app_status: u32, protocol_status: u8) -> [u8; 8] {
    let s = app_status.to_be_bytes();
    [s[0], s[1], s[2], s[3], protocol_status, 0, 0, 0]
}

/// The body of an `UNKNOWN_TYPE` record (§4.2): `type, reserved[7]`.
pub fn unknown_type_body(kind: u8) -> [u8; 8] {
    [kind, 0, 0, 0, 0, 0, 0, 0]
}

/// Decode a name-value pair stream (§3.4): each length is one byte (< 128) or four bytes with the
/// high bit set (u31 BE), name length first.
///
/// # Errors
///
/// [`RecordError::TruncatedPair`] when a length or a name or value runs past the end.
pub fn decode_pairs(mut data: &[u8]) -> Result<crate::gateway::Vars<'_>, RecordError> {
    let mut pairs = Vec::new();
    while !data.is_empty() {
        let (name_len, rest) = decode_length(data)?;
        let (value_len, rest) = decode_length(rest)?;
        if rest.len() < name_len || rest.len() - name_len < value_len {
            return Err(RecordError::TruncatedPair);
        }
        let (name, rest) = rest.split_at(name_len);
        let (value, rest) = rest.split_at(value_len);
        pairs.push((name, value));
        data = rest;
    }
    Ok(pairs)
}

fn decode_length(data: &[u8]) -> Result<(usize, &[u8]), RecordError> {
    match data {
        [b, rest @ ..] if b & 0x80 == 0 => Ok((usize::from(*b), rest)),
        [b0, b1, b2, b3, rest @ ..] => {
            let len = u32::from_be_bytes([b0 & 0x7f, *b1, *b2, *b3]);
            Ok((len as usize, rest))
        }
        _ => Err(RecordError::TruncatedPair),
    }
}

/// Append one name-value pair (§3.4), using one-byte lengths where they fit.
///
/// # Panics
///
/// When a name or value is 2³¹ bytes or longer.
pub fn encode_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    for len in [name.len(), value.len()] {
        if len < 128 {
            out.push(len as u8);
        } else {
            let len = u32::try_from(len)
                .ok()
                .filter(|l| *l < 1 << 31)
                .expect("fastcgi: name-value pair over 2^31 bytes");
            out.extend_from_slice(&(len | 1 << 31).to_be_bytes());
        }
    }
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stdout_record_is_padded_to_eight_bytes() {
        let mut out = Vec::new();
        encode_record(&mut out, FCGI_STDOUT, 1, b"hello");
        assert_eq!(
            out,
            [
                1, 6, // version, FCGI_STDOUT
                0, 1, // request id 1
                0, 5, // content length 5
                3, 0, // padding 3, reserved
                b'h', b'e', b'l', b'l', b'o', // content
                0, 0, 0, // padding
            ]
        );
    }

    #[test]
    fn an_aligned_record_gets_no_padding_and_an_empty_one_ends_a_stream() {
        let mut out = Vec::new();
        encode_record(&mut out, FCGI_STDERR, 258, b"8 bytes!");
        encode_record(&mut out, FCGI_STDOUT, 258, b"");
        assert_eq!(
            out,
            [
                1, 7, 1, 2, 0, 8, 0, 0, // STDERR, id 258, 8 bytes, no padding
                b'8', b' ', b'b', b'y', b't', b'e', b's', b'!', // content
                1, 6, 1, 2, 0, 0, 0, 0, // STDOUT, id 258, empty: end of stream
            ]
        );
    }

    #[test]
    fn a_long_stream_is_cut_into_records_of_at_most_65535_bytes() {
        let mut out = Vec::new();
        encode_stream(&mut out, FCGI_STDOUT, 1, &vec![b'x'; 70000]);
        let first = Header::decode(out[..8].try_into().unwrap()).unwrap();
        assert_eq!((first.content_length, first.padding_length), (65535, 1));
        let second_at = 8 + 65535 + 1;
        let second = Header::decode(out[second_at..second_at + 8].try_into().unwrap()).unwrap();
        assert_eq!((second.content_length, second.padding_length), (4465, 7));
        assert_eq!(out.len(), second_at + 8 + 4465 + 7);
    }

    #[test]
    fn a_header_with_version_2_is_refused() {
        let err = Header::decode(&[2, 1, 0, 1, 0, 8, 0, 0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "fastcgi: record version 2 is not supported"
        );
    }

    #[test]
    fn a_header_decodes_big_endian_fields() {
        let h = Header::decode(&[1, 5, 0x12, 0x34, 0x01, 0x00, 7, 0]).unwrap();
        assert_eq!(
            h,
            Header {
                kind: FCGI_STDIN,
                request_id: 0x1234,
                content_length: 256,
                padding_length: 7
            }
        );
        assert_eq!(h.body_len(), 263);
    }

    #[test]
    fn begin_request_carries_role_and_keep_conn() {
        let b = BeginRequest::decode(&[0, 1, 1, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            b,
            BeginRequest {
                role: FCGI_RESPONDER,
                keep_conn: true
            }
        );
        let b = BeginRequest::decode(&[0, 3, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((b.role, b.keep_conn), (FCGI_FILTER, false));
        assert!(BeginRequest::decode(&[0, 1, 0]).is_err());
    }

    #[test]
    fn end_request_and_unknown_type_bodies_are_byte_exact() {
        assert_eq!(
            end_request_body(0x0102_0304, FCGI_OVERLOADED),
            [1, 2, 3, 4, 2, 0, 0, 0] // appStatus, protocolStatus, reserved
        );
        assert_eq!(unknown_type_body(42), [42, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn pairs_use_one_byte_lengths_below_128_and_four_bytes_above() {
        let mut out = Vec::new();
        encode_pair(&mut out, b"A", b"bc");
        let long = vec![b'v'; 200];
        encode_pair(&mut out, b"L", &long);
        assert_eq!(&out[..5], [1, 2, b'A', b'b', b'c']); // 1-byte lengths, name, value
        assert_eq!(&out[5..11], [1, 0x80, 0, 0, 200, b'L']); // 1-byte name length, 4-byte value length
        let pairs = decode_pairs(&out).unwrap();
        assert_eq!(pairs, [(&b"A"[..], &b"bc"[..]), (&b"L"[..], &long[..])]);
    }

    #[test]
    fn a_truncated_pair_is_an_error_not_a_panic() {
        for bad in [
            &[5u8, 1, b'a'][..],
            &[0x80, 0, 0][..],
            &[0x80, 0, 0, 9, 0, b'x'][..],
        ] {
            assert_eq!(decode_pairs(bad), Err(RecordError::TruncatedPair));
        }
        assert_eq!(
            decode_pairs(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(RecordError::TruncatedPair)
        );
    }
}
