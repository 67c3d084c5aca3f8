//! Route patterns: checked before they reach matchit (which panics on some malformed inserts), expanded
//! (optional trailing segments), and filled in again for reverse routing.

use std::fmt::Write as _;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// Bytes escaped in a path segment: everything outside RFC 3986's `pchar`, plus `/` (a parameter is
/// one segment).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// As [`SEGMENT`], but `/` stays: catch-all values and mount points span segments.
pub(crate) const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Percent-encode a decoded path (`SCRIPT_NAME`, `PATH_INFO`) for a URL.
pub(crate) fn encode_path(path: &str) -> String {
    utf8_percent_encode(path, PATH).to_string()
}

/// One piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(String),
    Param(String),
    CatchAll(String),
}

/// A checked pattern, in matchit's syntax (`source`) and as pieces (for `url_for`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pub(crate) source: String,
    pub(crate) pieces: Vec<Piece>,
}

impl Pattern {
    /// The names of its parameters.
    pub(crate) fn params(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Param(n) | Piece::CatchAll(n) => Some(n.as_str()),
            Piece::Literal(_) => None,
        })
    }

    /// Fill in the parameters with `lookup`, percent-encoded. `Err(name)` names the first one missing.
    pub(crate) fn render<'a>(
        &self,
        mut lookup: impl FnMut(&str) -> Option<&'a str>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(&encode_path(text)),
                Piece::Param(name) => {
                    let value = lookup(name).ok_or_else(|| name.clone())?;
                    let _ = write!(out, "{}", utf8_percent_encode(value, SEGMENT));
                }
                Piece::CatchAll(name) => {
                    let value = lookup(name).ok_or_else(|| name.clone())?;
                    let _ = write!(out, "{}", utf8_percent_encode(value, PATH));
                }
            }
        }
        Ok(out)
    }
}

/// Parse `source`, expanding an optional last segment (`/{name?}`, `/{*rest?}`) into two patterns:
/// without that segment and with it (longest first).
pub(crate) fn parse(source: &str) -> Result<Vec<Pattern>, String> {
    if !source.starts_with('/') {
        return Err("a route must start with `/`".into());
    }
    let last_slash = source.rfind('/').unwrap_or(0);
    let last = &source[last_slash..];
    if last.starts_with("/{") && last.ends_with("?}") && !last.ends_with("}}?}") {
        let full = format!("{}}}", &source[..source.len() - 2]);
        let base = if last_slash == 0 {
            "/"
        } else {
            &source[..last_slash]
        };
        return Ok(vec![parse_one(&full)?, parse_one(base)?]);
    }
    Ok(vec![parse_one(source)?])
}

fn parse_one(source: &str) -> Result<Pattern, String> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut literal = String::new();
    let mut params_in_segment = 0;
    let mut chars = source.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                chars.next();
                literal.push('}');
            }
            '}' => return Err(format!("unmatched `}}` at byte {at}")),
            '{' => {
                let rest = &source[at + 1..];
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unclosed `{{` at byte {at}"))?;
                let inner = &rest[..end];
                // Skip to the closing brace.
                for (i, _) in chars.by_ref() {
                    if i == at + 1 + end {
                        break;
                    }
                }
                params_in_segment += 1;
                if params_in_segment > 1 {
                    return Err("only one parameter per path segment".into());
                }
                let (catch_all, name) = match inner.strip_prefix('*') {
                    Some(name) => (true, name),
                    None => (false, inner),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "parameter name `{inner}` must be letters, digits and `_`"
                    ));
                }
                if pieces
                    .iter()
                    .any(|p| matches!(p, Piece::Param(n) | Piece::CatchAll(n) if n == name))
                {
                    return Err(format!("parameter `{name}` appears twice"));
                }
                if catch_all {
                    if !literal.ends_with('/') {
                        return Err(format!("catch-all `{{*{name}}}` must follow a `/`"));
                    }
                    if at + end + 2 != source.len() {
                        return Err(format!("catch-all `{{*{name}}}` must end the route"));
                    }
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(if catch_all {
                    Piece::CatchAll(name.to_owned())
                } else {
                    Piece::Param(name.to_owned())
                });
            }
            '/' => {
                params_in_segment = 0;
                literal.push('/');
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(Pattern {
        source: source.to_owned(),
        pieces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_patterns_are_errors() {
        for (bad, why) in [
            ("users", "start with `/`"),
            ("/users/{id", "unclosed"),
            ("/users/id}", "unmatched"),
            ("/users/{}", "must be letters"),
            ("/users/{a-b}", "must be letters"),
            ("/users/{a}-{b}", "one parameter per path segment"),
            ("/users/{*rest}/x", "must end the route"),
            ("/users{*rest}", "must follow a `/`"),
            ("/{id}/x/{id}", "appears twice"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn optional_last_segment_expands_to_two_routes() {
        let p = parse("/blog/{page?}").unwrap();
        let sources: Vec<_> = p.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(sources, ["/blog/{page}", "/blog"]);
        let p = parse("/{*rest?}").unwrap();
        let sources: Vec<_> = p.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(sources, ["/{*rest}", "/"]);
    }

    #[test]
    fn render_percent_encodes_each_kind() {
        let p = &parse("/u/{name}/img-{id}.png/{*rest}").unwrap()[0];
        let url = p
            .render(|n| match n {
                "name" => Some("a b/c?d"),
                "id" => Some("ü"),
                _ => Some("x y/z"),
            })
            .unwrap();
        assert_eq!(url, "/u/a%20b%2Fc%3Fd/img-%C3%BC.png/x%20y/z");
        assert_eq!(p.render(|_| None).unwrap_err(), "name");
        let braces = &parse("/a{{b}}/{x}").unwrap()[0];
        assert_eq!(braces.render(|_| Some("1")).unwrap(), "/a%7Bb%7D/1");
    }
}
