//! Entity tags, HTTP dates and the evaluation of preconditions (RFC 9110 §8.8, §13).

use std::time::SystemTime;

use http::{header, HeaderMap, HeaderValue, Method};

use super::truncate_to_second;

/// What the preconditions of a request say about a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// Serve the response as it is.
    Proceed,
    /// `304 Not Modified`.
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

impl Precondition {
    /// Evaluate `request`'s precondition headers for `method` against the response's `etag` and
    /// `last_modified`, in RFC 9110 §13.2.2's order.
    pub(crate) fn evaluate(
        method: &Method,
        request: &HeaderMap,
        etag: Option<&HeaderValue>,
        last_modified: Option<SystemTime>,
    ) -> Precondition {
        let etag = etag.and_then(|v| EntityTag::parse(v.as_bytes()));
        let last_modified = last_modified.map(truncate_to_second);
        if let Some(list) = header_list(request, &header::IF_MATCH) {
            // Strong comparison: a weak tag never matches.
            let matched =
                list_matches(&list, |tag| etag.as_ref().is_some_and(|e| e.strong_eq(tag)));
            if !matched {
                return Precondition::Failed;
            }
        } else if let (Some(since), Some(modified)) = (
            request.get(header::IF_UNMODIFIED_SINCE).and_then(http_date),
            last_modified,
        ) {
            if modified > since {
                return Precondition::Failed;
            }
        }
        let safe = matches!(*method, Method::GET | Method::HEAD);
        if let Some(list) = header_list(request, &header::IF_NONE_MATCH) {
            let matched = list_matches(&list, |tag| etag.as_ref().is_some_and(|e| e.weak_eq(tag)));
            if matched {
                return if safe {
                    Precondition::NotModified
                } else {
                    Precondition::Failed
                };
            }
        } else if let (true, Some(since), Some(modified)) = (
            safe,
            request.get(header::IF_MODIFIED_SINCE).and_then(http_date),
            last_modified,
        ) {
            if modified <= since {
                return Precondition::NotModified;
            }
        }
        Precondition::Proceed
    }
}

/// `If-Range` (RFC 9110 §13.1.5): whether a `Range` may be honoured for a representation with this
/// `etag` and `last_modified`. A tag must match strongly; a date must equal `Last-Modified`.
pub(crate) fn if_range_allows(
    request: &HeaderMap,
    etag: &HeaderValue,
    last_modified: Option<SystemTime>,
) -> bool {
    let Some(value) = request.get(header::IF_RANGE) else {
        return true;
    };
    let bytes = value.as_bytes();
    if bytes.starts_with(b"\"") || bytes.starts_with(b"W/") {
        return match (EntityTag::parse(bytes), EntityTag::parse(etag.as_bytes())) {
            (Some(wanted), Some(current)) => current.strong_eq(&wanted),
            _ => false,
        };
    }
    match (http_date(value), last_modified.map(truncate_to_second)) {
        (Some(date), Some(modified)) => date == modified,
        _ => false,
    }
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT` and the two obsolete forms); `None` if invalid.
pub(crate) fn http_date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

/// The comma-separated members of every `name` header: `None` when absent, `Some(["*"])` for `*`.
/// Members that are not valid entity tags are kept as `Invalid` so that they match nothing.
fn header_list(request: &HeaderMap, name: &header::HeaderName) -> Option<Vec<Member>> {
    let mut values = request.get_all(name).iter().peekable();
    values.peek()?;
    let mut members = Vec::new();
    for value in values {
        let mut rest = value.as_bytes();
        loop {
            rest = trim_start(rest);
            if rest.is_empty() {
                break;
            }
            if rest[0] == b',' {
                rest = &rest[1..];
                continue;
            }
            if rest[0] == b'*' {
                members.push(Member::Any);
                rest = &rest[1..];
                continue;
            }
            match EntityTag::split(rest) {
                Some((tag, after)) => {
                    members.push(Member::Tag(tag));
                    rest = after;
                }
                None => {
                    // Skip to the next comma: an invalid member matches nothing.
                    members.push(Member::Invalid);
                    let next = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
                    rest = &rest[next..];
                }
            }
        }
    }
    Some(members)
}

fn list_matches(list: &[Member], matches: impl Fn(&EntityTag) -> bool) -> bool {
    list.iter().any(|m| match m {
        // `*` matches when a current representation exists: the response is 2xx here.
        Member::Any => true,
        Member::Tag(tag) => matches(tag),
        Member::Invalid => false,
    })
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    &bytes[skip..]
}

#[derive(Debug)]
enum Member {
    Any,
    Tag(EntityTag),
    Invalid,
}

/// An entity tag: opaque bytes between quotes, weak or strong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntityTag {
    weak: bool,
    opaque: Vec<u8>,
}

impl EntityTag {
    /// Parse a whole value (`"abc"` or `W/"abc"`).
    fn parse(value: &[u8]) -> Option<EntityTag> {
        match EntityTag::split(value) {
            Some((tag, rest)) if trim_start(rest).is_empty() => Some(tag),
            _ => None,
        }
    }

    /// Parse one tag at the start of `value`; the rest follows.
    fn split(value: &[u8]) -> Option<(EntityTag, &[u8])> {
        let (weak, rest) = match value.strip_prefix(b"W/") {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let rest = rest.strip_prefix(b"\"")?;
        let end = rest.iter().position(|&b| b == b'"')?;
        let opaque = &rest[..end];
        // etagc = %x21 / %x23-7E / obs-text: no spaces, no quotes, no controls.
        if opaque.iter().any(|&b| b <= 0x20 || b == 0x7f) {
            return None;
        }
        Some((
            EntityTag {
                weak,
                opaque: opaque.to_vec(),
            },
            &rest[end + 1..],
        ))
    }

    fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    fn weak_eq(&self, other: &EntityTag) -> bool {
        self.opaque == other.opaque
    }
}
