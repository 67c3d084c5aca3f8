//! From a request path to path segments that cannot leave the root.
//!
//! `PATH_INFO` is already percent-decoded by the gateway, and is decoded exactly once: a literal `%`
//! left in it (from `%25`) is part of a file name, never decoded again. So `%2e%2e` arrives as `..`
//! and is refused like `..`, and `%252e%252e` names the file `%2e%2e`.

use std::ffi::OsString;

use http::StatusCode;

/// The checked segments of a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segments {
    /// Non-empty, never `.` or `..`, without `/`, `\` or NUL.
    pub(crate) parts: Vec<OsString>,
    /// The path ended with `/` (a directory was asked for).
    pub(crate) trailing_slash: bool,
}

/// Split `path_info` into segments, refusing every way out of the root:
///
/// - `..` segments, backslashes (a separator on Windows), NUL, and (on Windows) `:` → `400`;
/// - `%2f`, `%5c` or `%00` in the raw `request_uri` (an encoded separator or NUL: the decoded path
///   would not say where the segments were) → `400`;
/// - Windows device names (`CON`, `PRN`, `AUX`, `NUL`, `COM1`–`COM9`, `LPT1`–`LPT9`, `CONIN$`,
///   `CONOUT$`, with any extension and any case) → `404`, on every platform, so a site behaves the
///   same wherever it is deployed.
///
/// Empty and `.` segments are skipped (`//a/./b` is `a/b`).
pub(crate) fn segments(
    path_info: &[u8],
    request_uri: Option<&[u8]>,
) -> Result<Segments, StatusCode> {
    if let Some(uri) = request_uri {
        let path = uri.split(|&b| b == b'?').next().unwrap_or(uri);
        if has_encoded_separator(path) {
            return Err(StatusCode::BAD_REQUEST);
        }
    }
    let mut parts = Vec::new();
    for segment in path_info.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => continue,
            b".." => return Err(StatusCode::BAD_REQUEST),
            _ => {}
        }
        if segment
            .iter()
            .any(|&b| b == b'\\' || b == 0 || (cfg!(windows) && b == b':'))
        {
            return Err(StatusCode::BAD_REQUEST);
        }
        if is_windows_device(segment) {
            return Err(StatusCode::NOT_FOUND);
        }
        parts.push(os_string(segment)?);
    }
    Ok(Segments {
        parts,
        trailing_slash: path_info.ends_with(b"/"),
    })
}

fn has_encoded_separator(path: &[u8]) -> bool {
    path.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'f') | (b'5', b'c') | (b'0', b'0')
            )
    })
}

#[cfg(unix)]
fn os_string(segment: &[u8]) -> Result<OsString, StatusCode> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::ffi::OsStr::from_bytes(segment).to_os_string())
}

#[cfg(not(unix))]
fn os_string(segment: &[u8]) -> Result<OsString, StatusCode> {
    // Elsewhere file names are Unicode: a name that is not UTF-8 names no file.
    std::str::from_utf8(segment)
        .map(OsString::from)
        .map_err(|_| StatusCode::NOT_FOUND)
}

/// Names Windows resolves to devices in any directory, whatever follows the first dot.
fn is_windows_device(segment: &[u8]) -> bool {
    let stem = segment.split(|&b| b == b'.').next().unwrap_or(segment);
    // Windows ignores trailing spaces: `CON .txt` is `CON`.
    let end = stem.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    let stem = stem[..end].to_ascii_uppercase();
    match stem.as_slice() {
        b"CON" | b"PRN" | b"AUX" | b"NUL" | b"CONIN$" | b"CONOUT$" => true,
        [b'C', b'O', b'M', d] | [b'L', b'P', b'T', d] => (b'1'..=b'9').contains(d),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &[u8], raw: Option<&str>) -> Result<Vec<String>, StatusCode> {
        segments(path, raw.map(str::as_bytes)).map(|s| {
            s.parts
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn every_way_out_is_refused() {
        let bad = StatusCode::BAD_REQUEST;
        let missing = StatusCode::NOT_FOUND;
        type Row = (
            &'static [u8],
            Option<&'static str>,
            Result<&'static [&'static str], StatusCode>,
        );
        let table: &[Row] = &[
            (b"/a/b.txt", Some("/a/b.txt"), Ok(&["a", "b.txt"])),
            (b"//a/./b/", None, Ok(&["a", "b"])),
            (b"/../secret", Some("/../secret"), Err(bad)),
            (b"/a/../../secret", None, Err(bad)),
            (b"/..", None, Err(bad)),
            (b"/../secret", Some("/%2e%2e/secret"), Err(bad)),
            (b"/../secret", Some("/%2E%2e/secret"), Err(bad)),
            (b"/../secret", Some("/.%2e/secret"), Err(bad)),
            (b"/a/../secret", Some("/a%2f..%2fsecret"), Err(bad)),
            (b"/a/b", Some("/a%2Fb"), Err(bad)),
            (b"/a\\..\\secret", Some("/a%5c..%5csecret"), Err(bad)),
            (b"/a\\b", Some("/a\\b"), Err(bad)),
            (b"/..\\secret", None, Err(bad)),
            (b"/secret\0.txt", Some("/secret%00.txt"), Err(bad)),
            (b"/a\0", None, Err(bad)),
            // Double encoding is decoded once: a literal `%2e%2e` file name, not a way up.
            (
                b"/%2e%2e/secret",
                Some("/%252e%252e/secret"),
                Ok(&["%2e%2e", "secret"]),
            ),
            (b"/%2f", Some("/%252f"), Ok(&["%2f"])),
            (b"/CON", None, Err(missing)),
            (b"/con.txt", None, Err(missing)),
            (b"/a/NUL.tar.gz", None, Err(missing)),
            (b"/aux", None, Err(missing)),
            (b"/COM1", None, Err(missing)),
            (b"/lpt9.log", None, Err(missing)),
            (b"/PRN ", None, Err(missing)),
            (b"/CON .txt", None, Err(missing)),
            (b"/conin$", None, Err(missing)),
            (b"/COM0", None, Ok(&["COM0"])),
            (b"/CONSOLE", None, Ok(&["CONSOLE"])),
            (b"/com10", None, Ok(&["com10"])),
            (b"/...", None, Ok(&["..."])),
            (b"/..a", None, Ok(&["..a"])),
            (b"/a..", None, Ok(&["a.."])),
            // The query is not part of the path.
            (b"/a", Some("/a?next=%2f"), Ok(&["a"])),
        ];
        for (path, raw, want) in table {
            let want = want.map(|w| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            assert_eq!(
                check(path, *raw),
                want,
                "PATH_INFO {:?}, REQUEST_URI {raw:?}",
                String::from_utf8_lossy(path)
            );
        }
    }

    #[test]
    fn a_trailing_slash_is_remembered() {
        assert!(segments(b"/docs/", None).unwrap().trailing_slash);
        assert!(!segments(b"/docs", None).unwrap().trailing_slash);
    }
}
