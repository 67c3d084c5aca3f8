//! The access-log line format shared by the server's `--access-logfile` and the
//! [`AccessLogLayer`](super::AccessLogLayer) middleware: gunicorn's atoms, or JSON lines.
//!
//! - gunicorn's access-log atoms (`--access-logformat`): `h` remote address, `l` `-`, `u` `-` (no
//!   authentication here), `t` time `[26/Nov/2026:14:20:00 +0000]` (UTC), `r` request line, `m` method,
//!   `U` path, `q` query string, `H` protocol, `s` status, `b` body bytes (`-` for none), `B` body bytes
//!   (`0` for none), `f` referer, `a` user agent, `T` seconds, `M` milliseconds, `D` microseconds,
//!   `L` seconds with decimals, `p` process id, `{header}i` a request header and `{header}o` a response
//!   header, in the `%(…)s` syntax; and `json`, one JSON object per line.
//! - Hostile bytes (quotes, backslashes, control characters, non-ASCII) are escaped as `\xHH`, so a
//!   line stays one line.
//!
//! Not supported: `{var}e` (environ) atoms; local time zones (times are UTC).
//!
//! ```
//! use rgi_middleware::access_log::format::{AccessFormat, AccessRecord};
//! let format: AccessFormat = "%(m)s %(U)s %(s)s %(B)s".parse().unwrap();
//! let record = AccessRecord {
//!     remote: None,
//!     time: std::time::SystemTime::UNIX_EPOCH,
//!     method: "GET".into(),
//!     target: "/hello?x=1".into(),
//!     protocol: "HTTP/1.1",
//!     status: 200,
//!     bytes: 6,
//!     duration: std::time::Duration::from_millis(2),
//!     request_headers: http::HeaderMap::new(),
//!     response_headers: http::HeaderMap::new(),
//! };
//! assert_eq!(format.render(&record, 1), "GET /hello 200 6");
//! ```

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};

/// gunicorn's default access-log format (Apache "combined" without the host name lookups).
pub const DEFAULT_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// One piece of a parsed `--access-logformat`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Atom(char),
    RequestHeader(String),
    ResponseHeader(String),
}

/// A parsed access-log format: gunicorn atoms, or JSON lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessFormat {
    /// `%(atom)s` pieces and literal text.
    Atoms(Vec<AtomPiece>),
    /// One JSON object per line with the keys `time`, `remote`, `method`, `path`, `query`,
    /// `protocol`, `status`, `bytes`, `duration_us`, `referer`, `user_agent`, `pid`.
    Json,
}

/// An opaque piece of an [`AccessFormat::Atoms`] format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomPiece(Piece);

/// An `--access-logformat` that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    format: String,
    reason: &'static str,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "access-logformat: {} in {:?}", self.reason, self.format)
    }
}

impl std::error::Error for FormatError {}

const ATOMS: &str = "hlutrmUqHsBbfaTMDLp";

impl FromStr for AccessFormat {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, FormatError> {
        if s.eq_ignore_ascii_case("json") {
            return Ok(AccessFormat::Json);
        }
        let err = |reason| FormatError {
            format: s.to_owned(),
            reason,
        };
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = s;
        while let Some(at) = rest.find("%(") {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let close = after.find(")s").ok_or_else(|| err("unclosed %( atom"))?;
            let name = &after[..close];
            let piece = if let Some(inner) = name.strip_prefix('{') {
                let (header, kind) = inner
                    .rsplit_once('}')
                    .ok_or_else(|| err("unclosed {header} atom"))?;
                match kind {
                    "i" => Piece::RequestHeader(header.to_ascii_lowercase()),
                    "o" => Piece::ResponseHeader(header.to_ascii_lowercase()),
                    _ => return Err(err("only {header}i and {header}o atoms are supported")),
                }
            } else {
                let mut chars = name.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if ATOMS.contains(c) => Piece::Atom(c),
                    _ => return Err(err("unknown atom")),
                }
            };
            if !literal.is_empty() {
                pieces.push(AtomPiece(Piece::Literal(std::mem::take(&mut literal))));
            }
            pieces.push(AtomPiece(piece));
            rest = &after[close + 2..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(AtomPiece(Piece::Literal(literal)));
        }
        Ok(AccessFormat::Atoms(pieces))
    }
}

impl Default for AccessFormat {
    fn default() -> Self {
        DEFAULT_FORMAT.parse().unwrap_or(AccessFormat::Json)
    }
}

/// What the access log knows about one finished request.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    /// The client's address (`None` on a unix socket).
    pub remote: Option<SocketAddr>,
    /// When the request arrived.
    pub time: SystemTime,
    /// Request method.
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// `HTTP/1.1` etc.
    pub protocol: &'static str,
    /// Response status.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// From the request's arrival until its body was sent (or abandoned).
    pub duration: Duration,
    /// The request headers.
    pub request_headers: HeaderMap,
    /// The response headers.
    pub response_headers: HeaderMap,
}

impl AccessFormat {
    /// The request and the response headers this format shows: all a caller needs to put in an
    /// [`AccessRecord`] (copying every header of every request costs more than the line itself).
    pub(crate) fn headers_used(&self) -> (Vec<HeaderName>, Vec<HeaderName>) {
        let name = |n: &str| HeaderName::from_bytes(n.as_bytes()).ok();
        match self {
            AccessFormat::Json => (
                vec![http::header::REFERER, http::header::USER_AGENT],
                Vec::new(),
            ),
            AccessFormat::Atoms(pieces) => {
                let (mut request, mut response) = (Vec::new(), Vec::new());
                for AtomPiece(piece) in pieces {
                    let (list, header) = match piece {
                        Piece::Atom('f') => (&mut request, Some(http::header::REFERER)),
                        Piece::Atom('a') => (&mut request, Some(http::header::USER_AGENT)),
                        Piece::RequestHeader(n) => (&mut request, name(n)),
                        Piece::ResponseHeader(n) => (&mut response, name(n)),
                        _ => continue,
                    };
                    if let Some(header) = header.filter(|h| !list.contains(h)) {
                        list.push(header);
                    }
                }
                (request, response)
            }
        }
    }

    /// Render `record` as one line (without the newline); `pid` is the worker's process id.
    pub fn render(&self, record: &AccessRecord, pid: u32) -> String {
        match self {
            AccessFormat::Json => render_json(record, pid),
            AccessFormat::Atoms(pieces) => {
                let mut out = String::with_capacity(160);
                for AtomPiece(piece) in pieces {
                    match piece {
                        Piece::Literal(text) => out.push_str(text),
                        Piece::Atom(c) => render_atom(&mut out, *c, record, pid),
                        Piece::RequestHeader(name) => {
                            push_escaped(&mut out, header(&record.request_headers, name))
                        }
                        Piece::ResponseHeader(name) => {
                            push_escaped(&mut out, header(&record.response_headers, name))
                        }
                    }
                }
                out
            }
        }
    }
}

fn header<N: http::header::AsHeaderName>(headers: &HeaderMap, name: N) -> &[u8] {
    headers.get(name).map_or(b"-", |v| v.as_bytes())
}

/// A number in decimal (what `write!(out, "{n}")` writes, without the formatting machinery).
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

fn path_and_query(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

fn render_atom(out: &mut String, atom: char, r: &AccessRecord, pid: u32) {
    match atom {
        'h' => match r.remote {
            Some(addr) => push_ip(out, addr.ip()),
            None => out.push('-'),
        },
        'l' | 'u' => out.push('-'),
        't' => {
            out.push('[');
            push_clf_time(out, r.time);
            out.push(']');
        }
        'r' => {
            push_escaped(out, r.method.as_bytes());
            out.push(' ');
            push_escaped(out, r.target.as_bytes());
            out.push(' ');
            out.push_str(r.protocol);
        }
        'm' => push_escaped(out, r.method.as_bytes()),
        'U' => push_escaped(out, path_and_query(&r.target).0.as_bytes()),
        'q' => push_escaped(out, path_and_query(&r.target).1.as_bytes()),
        'H' => out.push_str(r.protocol),
        's' => push_u64(out, u64::from(r.status)),
        'b' => {
            if r.bytes == 0 {
                out.push('-');
            } else {
                push_u64(out, r.bytes);
            }
        }
        'B' => push_u64(out, r.bytes),
        'f' => push_escaped(out, header(&r.request_headers, &http::header::REFERER)),
        'a' => push_escaped(out, header(&r.request_headers, &http::header::USER_AGENT)),
        'T' => {
            let _ = write!(out, "{}", r.duration.as_secs());
        }
        'M' => {
            let _ = write!(out, "{}", r.duration.as_millis());
        }
        'D' => {
            let _ = write!(out, "{}", r.duration.as_micros());
        }
        'L' => {
            let _ = write!(out, "{:.6}", r.duration.as_secs_f64());
        }
        'p' => {
            let _ = write!(out, "<{pid}>");
        }
        _ => out.push('-'),
    }
}

/// An IP address as `Display` writes it; IPv4 by hand (`Display` through `fmt` costs more than the
/// rest of the line).
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

thread_local! {
    /// The last second formatted by [`push_clf_time`] on this thread, and its text.
    static CLF_CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// [`clf_time`] into `out`, formatted once per second per thread.
fn push_clf_time(out: &mut String, time: SystemTime) {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CLF_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            *cache = (secs, clf_time(time));
        }
        out.push_str(&cache.1);
    });
}

/// Copy bytes, escaping `"`, `\`, control characters and non-ASCII as `\xHH` so that a line stays
/// one line and parseable whatever the client sent.
fn push_escaped(out: &mut String, mut bytes: &[u8]) {
    // Runs of printable ASCII (the common case: every byte of most lines) are copied whole.
    while !bytes.is_empty() {
        let clean = bytes
            .iter()
            .position(|&b| !matches!(b, 0x20..=0x7e) || b == b'"' || b == b'\\')
            .unwrap_or(bytes.len());
        let (run, rest) = bytes.split_at(clean);
        // Printable ASCII is UTF-8.
        out.push_str(std::str::from_utf8(run).unwrap_or_default());
        let Some((&b, rest)) = rest.split_first() else {
            break;
        };
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        bytes = rest;
    }
}

fn push_json_str(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
    }
    out.push('"');
}

fn render_json(r: &AccessRecord, pid: u32) -> String {
    let (path, query) = path_and_query(&r.target);
    let mut out = String::with_capacity(256);
    out.push_str("{\"time\":");
    push_json_str(&mut out, rfc3339(r.time).as_bytes());
    out.push_str(",\"remote\":");
    match r.remote {
        Some(addr) => {
            let mut ip = String::with_capacity(15);
            push_ip(&mut ip, addr.ip());
            push_json_str(&mut out, ip.as_bytes());
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"method\":");
    push_json_str(&mut out, r.method.as_bytes());
    out.push_str(",\"path\":");
    push_json_str(&mut out, path.as_bytes());
    out.push_str(",\"query\":");
    push_json_str(&mut out, query.as_bytes());
    out.push_str(",\"protocol\":");
    push_json_str(&mut out, r.protocol.as_bytes());
    let _ = write!(
        out,
        ",\"status\":{},\"bytes\":{},\"duration_us\":{}",
        r.status,
        r.bytes,
        r.duration.as_micros()
    );
    out.push_str(",\"referer\":");
    match r.request_headers.get(http::header::REFERER) {
        Some(v) => push_json_str(&mut out, v.as_bytes()),
        None => out.push_str("null"),
    }
    out.push_str(",\"user_agent\":");
    match r.request_headers.get(http::header::USER_AGENT) {
        Some(v) => push_json_str(&mut out, v.as_bytes()),
        None => out.push_str("null"),
    }
    let _ = write!(out, ",\"pid\":{pid}}}");
    out
}

/// Broken-down UTC time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
}

fn civil(time: SystemTime) -> Civil {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days_from_civil inverse (public domain), valid for the proleptic Gregorian
    // calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Common Log Format time, UTC: `26/Nov/2026:14:20:00 +0000`.
pub fn clf_time(time: SystemTime) -> String {
    let c = civil(time);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        c.day,
        MONTHS[(c.month as usize).saturating_sub(1) % 12],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// RFC 3339 time, UTC, with milliseconds: `2026-11-26T14:20:00.123Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let c = civil(time);
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AccessRecord {
        let mut request_headers = HeaderMap::new();
        request_headers.insert("user-agent", "curl/8 \"x\"".parse().unwrap());
        request_headers.insert("x-request-id", "abc".parse().unwrap());
        AccessRecord {
            remote: Some("127.0.0.1:5555".parse().unwrap()),
            time: UNIX_EPOCH + Duration::from_secs(1_795_615_200),
            method: "GET".into(),
            target: "/a/b?x=1".into(),
            protocol: "HTTP/1.1",
            status: 200,
            bytes: 12,
            duration: Duration::from_micros(1500),
            request_headers,
            response_headers: HeaderMap::new(),
        }
    }

    #[test]
    fn the_default_format_is_gunicorns_combined_line() {
        let line = AccessFormat::default().render(&record(), 7);
        assert_eq!(
            line,
            r#"127.0.0.1 - - [25/Nov/2026:14:00:00 +0000] "GET /a/b?x=1 HTTP/1.1" 200 12 "-" "curl/8 \"x\"""#
        );
    }

    #[test]
    fn every_atom_renders() {
        let format: AccessFormat = "%(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(T)s %(M)s %(D)s %(p)s %({X-Request-Id}i)s %({etag}o)s"
            .parse()
            .unwrap();
        assert_eq!(
            format.render(&record(), 7),
            "GET /a/b x=1 HTTP/1.1 200 12 0 1 1500 <7> abc -"
        );
    }

    #[test]
    fn unknown_atoms_and_unclosed_atoms_are_errors() {
        assert!("%(z)s".parse::<AccessFormat>().is_err());
        assert!("%(h".parse::<AccessFormat>().is_err());
        assert!("%({x}e)s".parse::<AccessFormat>().is_err());
    }

    #[test]
    fn json_lines_are_json() {
        let line = AccessFormat::Json.render(&record(), 7);
        assert!(
            line.starts_with("{\"time\":\"2026-11-25T14:00:00.000Z\""),
            "{line}"
        );
        assert!(line.contains("\"status\":200"));
        assert!(line.contains("\"user_agent\":\"curl/8 \\\"x\\\"\""));
        assert!(line.ends_with("\"pid\":7}"));
    }

    #[test]
    fn ip_addresses_render_as_display_does() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "192.168.100.255",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }

    #[test]
    fn the_cached_time_follows_the_clock() {
        let base = UNIX_EPOCH + Duration::from_secs(1_795_615_200);
        for offset in [0, 0, 1, 86_400, 1] {
            let time = base + Duration::from_millis(offset * 1000 + 300);
            let mut out = String::new();
            push_clf_time(&mut out, time);
            assert_eq!(out, clf_time(time));
        }
    }

    #[test]
    fn a_format_names_the_headers_it_shows() {
        let format: AccessFormat = "%(a)s %({X-Request-Id}i)s %({etag}o)s %(f)s %(a)s"
            .parse()
            .unwrap();
        let (request, response) = format.headers_used();
        assert_eq!(request, ["user-agent", "x-request-id", "referer"]);
        assert_eq!(response, ["etag"]);
        let (request, response) = AccessFormat::Json.headers_used();
        assert_eq!((request.len(), response.len()), (2, 0));
    }

    #[test]
    fn escaping_keeps_printable_runs_and_escapes_the_rest() {
        let mut out = String::new();
        push_escaped(&mut out, "GET a\"b\\c\u{1}é end".as_bytes());
        assert_eq!(out, "GET a\\\"b\\\\c\\x01\\xc3\\xa9 end");
        out.clear();
        push_escaped(&mut out, b"");
        assert_eq!(out, "");
    }

    #[test]
    fn hostile_bytes_stay_on_one_line() {
        let mut r = record();
        r.target = "/\n\u{7f}".into();
        let line = AccessFormat::default().render(&r, 1);
        assert!(!line.contains('\n'));
        assert!(line.contains("/\\x0a\\x7f"));
    }
}
