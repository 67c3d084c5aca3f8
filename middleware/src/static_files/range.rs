//! `Range: bytes=…` for one representation of known length (RFC 9110 §14).

/// What to do with a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// Send the whole representation (`200`): no header, another unit, a syntax error (RFC 9110
    /// says to ignore it), or several ranges (answered whole rather than as `multipart/byteranges`).
    Whole,
    /// Send `len` bytes from `start` (`206`).
    Part { start: u64, len: u64 },
    /// No byte of the range exists (`416`).
    Unsatisfiable,
}

impl ByteRange {
    /// Read a `Range` value against a representation of `total` bytes.
    pub(crate) fn parse(value: &[u8], total: u64) -> ByteRange {
        let Ok(value) = std::str::from_utf8(value) else {
            return ByteRange::Whole;
        };
        let Some((unit, set)) = value.split_once('=') else {
            return ByteRange::Whole;
        };
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return ByteRange::Whole;
        }
        let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
        let (Some(spec), None) = (specs.next(), specs.next()) else {
            return ByteRange::Whole;
        };
        let Some((first, last)) = spec.split_once('-') else {
            return ByteRange::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        if first.is_empty() {
            // `-N`: the last N bytes.
            let Some(suffix) = number(last) else {
                return ByteRange::Whole;
            };
            if suffix == 0 || total == 0 {
                return ByteRange::Unsatisfiable;
            }
            let len = suffix.min(total);
            return ByteRange::Part {
                start: total - len,
                len,
            };
        }
        let Some(start) = number(first) else {
            return ByteRange::Whole;
        };
        let end = if last.is_empty() {
            None
        } else {
            match number(last) {
                Some(end) if end >= start => Some(end),
                // `5-2` or garbage: invalid, so ignored.
                _ => return ByteRange::Whole,
            }
        };
        if start >= total {
            return ByteRange::Unsatisfiable;
        }
        let end = end.map_or(total - 1, |e| e.min(total - 1));
        ByteRange::Part {
            start,
            len: end - start + 1,
        }
    }
}

/// `1*DIGIT`, no sign, no spaces inside.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::ByteRange::{self, *};

    #[test]
    fn ranges_against_a_ten_byte_file() {
        let table: &[(&str, ByteRange)] = &[
            ("bytes=0-0", Part { start: 0, len: 1 }),
            ("bytes=2-5", Part { start: 2, len: 4 }),
            ("bytes=2-", Part { start: 2, len: 8 }),
            ("bytes=2-100", Part { start: 2, len: 8 }),
            ("bytes=-3", Part { start: 7, len: 3 }),
            ("bytes=-30", Part { start: 0, len: 10 }),
            ("BYTES = 9-9", Part { start: 9, len: 1 }),
            ("bytes=0-1,", Part { start: 0, len: 2 }),
            ("bytes=10-", Unsatisfiable),
            ("bytes=10-20", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=0-1,3-4", Whole),
            ("bytes=5-2", Whole),
            ("bytes=a-b", Whole),
            ("bytes=+1-2", Whole),
            ("bytes=-", Whole),
            ("bytes=", Whole),
            ("items=0-1", Whole),
            ("0-1", Whole),
            ("bytes=99999999999999999999999-", Whole),
        ];
        for (value, want) in table {
            assert_eq!(ByteRange::parse(value.as_bytes(), 10), *want, "{value}");
        }
    }

    #[test]
    fn an_empty_file_satisfies_no_range() {
        assert_eq!(ByteRange::parse(b"bytes=0-", 0), Unsatisfiable);
        assert_eq!(ByteRange::parse(b"bytes=-1", 0), Unsatisfiable);
    }
}
