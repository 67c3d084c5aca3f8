//! `Accept-Encoding` with q-values (RFC 9110 §12.5.3).

use http::{header, HeaderMap};

/// A content coding RGI's middleware can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// `br` (RFC 7932).
    Brotli,
    /// `zstd` (RFC 8878).
    Zstd,
    /// `gzip` (RFC 1952; `x-gzip` is accepted as its alias).
    Gzip,
}

impl Encoding {
    /// The token in `Content-Encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }

    fn from_token(token: &str) -> Option<Encoding> {
        if token.eq_ignore_ascii_case("br") {
            Some(Encoding::Brotli)
        } else if token.eq_ignore_ascii_case("zstd") {
            Some(Encoding::Zstd)
        } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            Some(Encoding::Gzip)
        } else {
            None
        }
    }
}

/// The q-values a request gave, in thousandths; `None` for codings it did not name.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct AcceptEncoding {
    brotli: Option<u16>,
    zstd: Option<u16>,
    gzip: Option<u16>,
    any: Option<u16>,
}

impl AcceptEncoding {
    /// Read every `Accept-Encoding` header of a request. Without one, only identity is acceptable
    /// here (RFC 9110 allows any coding then, but clients that omit the header rarely decode).
    pub(crate) fn of(headers: &HeaderMap) -> AcceptEncoding {
        let mut accept = AcceptEncoding::default();
        for value in headers.get_all(header::ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for member in value.split(',') {
                let mut parts = member.split(';');
                let token = parts.next().unwrap_or("").trim();
                if token.is_empty() {
                    continue;
                }
                let q = parts
                    .find_map(|p| {
                        let (name, value) = p.split_once('=')?;
                        name.trim().eq_ignore_ascii_case("q").then(|| value.trim())
                    })
                    .map_or(Some(1000), parse_q);
                // An unreadable q-value refuses the coding: never send what a client may not decode.
                let q = q.unwrap_or(0);
                let slot = match Encoding::from_token(token) {
                    Some(Encoding::Brotli) => &mut accept.brotli,
                    Some(Encoding::Zstd) => &mut accept.zstd,
                    Some(Encoding::Gzip) => &mut accept.gzip,
                    None if token == "*" => &mut accept.any,
                    None => continue,
                };
                *slot = Some(q);
            }
        }
        accept
    }

    /// The q-value of `encoding`: its own, else `*`'s, else 0.
    pub(crate) fn q(&self, encoding: Encoding) -> u16 {
        let own = match encoding {
            Encoding::Brotli => self.brotli,
            Encoding::Zstd => self.zstd,
            Encoding::Gzip => self.gzip,
        };
        own.or(self.any).unwrap_or(0)
    }

    /// The acceptable codings among `offered` (in the server's order of preference), best first:
    /// highest q-value, ties going to the earlier in `offered`. Codings with q=0 are left out.
    pub(crate) fn ranked(&self, offered: &[Encoding]) -> Vec<Encoding> {
        let mut acceptable: Vec<(usize, Encoding)> = offered
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, e)| self.q(e) > 0)
            .collect();
        acceptable.sort_by_key(|&(i, e)| (std::cmp::Reverse(self.q(e)), i));
        acceptable.into_iter().map(|(_, e)| e).collect()
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn parse_q(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(header: &str) -> Vec<&'static str> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, header.parse().unwrap());
        AcceptEncoding::of(&headers)
            .ranked(&[Encoding::Brotli, Encoding::Zstd, Encoding::Gzip])
            .into_iter()
            .map(Encoding::as_str)
            .collect()
    }

    #[test]
    fn q_values_rank_codings_and_zero_refuses() {
        let table: &[(&str, &[&str])] = &[
            ("gzip, br, zstd", &["br", "zstd", "gzip"]),
            ("gzip;q=1.0, br;q=0.5", &["gzip", "br"]),
            ("br;q=0, gzip", &["gzip"]),
            ("*", &["br", "zstd", "gzip"]),
            ("*;q=0.1, gzip;q=0.9", &["gzip", "br", "zstd"]),
            ("*, br;q=0", &["zstd", "gzip"]),
            ("identity", &[]),
            ("", &[]),
            ("x-gzip", &["gzip"]),
            ("GZIP;Q=0.5", &["gzip"]),
            ("gzip;q=2", &[]),
            ("gzip;q=0.5000", &[]),
            ("gzip;q=abc, br", &["br"]),
            ("gzip;q=0.001", &["gzip"]),
            ("deflate, compress", &[]),
            (" , ,gzip ,", &["gzip"]),
        ];
        for (header, want) in table {
            assert_eq!(ranked(header), *want, "Accept-Encoding: {header}");
        }
    }

    #[test]
    fn several_headers_add_up() {
        let mut headers = HeaderMap::new();
        headers.append(header::ACCEPT_ENCODING, "gzip;q=0.5".parse().unwrap());
        headers.append(header::ACCEPT_ENCODING, "zstd".parse().unwrap());
        let got = AcceptEncoding::of(&headers).ranked(&[Encoding::Gzip, Encoding::Zstd]);
        assert_eq!(got, [Encoding::Zstd, Encoding::Gzip]);
    }
}
