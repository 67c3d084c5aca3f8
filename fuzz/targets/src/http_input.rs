//! HTTP requests → environ, and the request body reader (`rgi::Input`) against declared lengths.

use std::sync::Arc;

use bytes::Bytes;
use rgi::convert::{self, ConnInfo, InputLimits};
use rgi::{Body, Input, ServerInfo};

/// A request parsed from raw HTTP/1.1 bytes, as far as the `http` crate accepts its parts.
#[derive(Debug)]
pub struct RawRequest {
    /// The method.
    pub method: http::Method,
    /// The request target.
    pub uri: String,
    /// The header fields the `http` crate accepts, in order.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Everything after the head.
    pub body: Bytes,
}

/// Parse `data` as an HTTP/1.1 request head and body (`None` when the head is incomplete or
/// invalid, as an HTTP server would refuse it).
pub fn parse_request(data: &[u8]) -> Option<RawRequest> {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut fields);
    let httparse::Status::Complete(head_len) = request.parse(data).ok()? else {
        return None;
    };
    let method = http::Method::from_bytes(request.method?.as_bytes()).ok()?;
    let uri = request.path?.to_owned();
    let headers = request
        .headers
        .iter()
        .filter_map(|h| {
            Some((
                http::HeaderName::from_bytes(h.name.as_bytes()).ok()?,
                http::HeaderValue::from_bytes(h.value).ok()?,
            ))
        })
        .collect();
    Some(RawRequest {
        method,
        uri,
        headers,
        body: Bytes::copy_from_slice(&data[head_len..]),
    })
}

/// Raw HTTP bytes → `http::Request` → environ (the HTTP server's conversion) → and back.
pub(crate) fn http_environ(data: &[u8]) {
    let Some(raw) = parse_request(data) else {
        return;
    };
    let Ok(uri) = raw.uri.parse::<http::Uri>() else {
        return;
    };
    let mut builder = http::Request::builder()
        .method(raw.method.clone())
        .uri(uri.clone());
    for (name, value) in &raw.headers {
        builder = builder.header(name, value);
    }
    let Ok(request) = builder.body(Body::full(raw.body)) else {
        return;
    };
    let server = Arc::new(ServerInfo::default());
    let limits = InputLimits {
        max_body: Some(1 << 20),
    };
    let declared = declared_length(&raw.headers);
    let environ =
        match convert::environ_from_request(request, &ConnInfo::default(), &server, limits) {
            Ok(environ) => environ,
            Err(invalid) => {
                assert_eq!(declared, Err(()), "a valid Content-Length refused");
                assert_eq!(
                    convert::error_status(&invalid.into()),
                    http::StatusCode::BAD_REQUEST
                );
                return;
            }
        };
    assert_eq!(
        declared,
        Ok(environ.content_length()),
        "Content-Length accepted as something else"
    );
    assert_eq!(environ.method(), &raw.method);
    assert_eq!(
        environ.query_string(),
        uri.query().unwrap_or_default().as_bytes()
    );
    assert!(environ.script_name().is_empty());
    crate::wire::assert_cgi_round_trip(&environ);
    let back = convert::into_http_request(environ);
    assert_eq!(back.method(), &raw.method);
}

/// The body length RFC 9110 §8.6 reads from the `Content-Length` fields, written independently of
/// the converter: every comma-separated element of every field is `1*DIGIT` (fitting a `u64`), and all
/// are the same number. `Ok(None)` without the field, `Err` when it is invalid.
fn declared_length(headers: &[(http::HeaderName, http::HeaderValue)]) -> Result<Option<u64>, ()> {
    let mut length = None;
    for (_, value) in headers
        .iter()
        .filter(|(name, _)| name == http::header::CONTENT_LENGTH)
    {
        for element in value.as_bytes().split(|&b| b == b',') {
            let element = std::str::from_utf8(element).map_err(|_| ())?;
            let element = element.trim_matches([' ', '\t']);
            if element.is_empty() || !element.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let n: u64 = element.parse().map_err(|_| ())?;
            if length.is_some_and(|l| l != n) {
                return Err(());
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// A body source cut into chunks, read with a declared length and a limit in the ways an application
/// reads: never more than declared, never past the limit, always a prefix of what was sent, and an
/// error when the source ends short of the declared length.
pub(crate) fn input(data: &[u8]) {
    let Some((control, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let [declared, limit, cut, mode] = *control;
    let declared = (declared != 255).then_some(u64::from(declared));
    let limit = (limit != 255).then_some(u64::from(limit));
    let cut = usize::from(cut % 16) + 1;
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(cut)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let mut input = Input::from_body(Body::from_stream(futures_util::stream::iter(chunks)));
    if let Some(len) = declared {
        input = input.with_content_length(len);
    }
    if let Some(limit) = limit {
        input = input.with_limit(limit);
    }
    let (read, error) = rgi::block_on(async {
        let mut read = Vec::new();
        let mut error = None;
        match mode % 3 {
            0 => match input.read_to_bytes().await {
                Ok(all) => read.extend_from_slice(&all),
                Err(e) => error = Some(e),
            },
            1 => {
                let mut buf = vec![0; usize::from(mode / 3 % 7) + 1];
                loop {
                    match input.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => read.extend_from_slice(&buf[..n]),
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
            }
            _ => {
                while let Some(chunk) = input.chunk().await {
                    match chunk {
                        Ok(c) => read.extend_from_slice(&c),
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        (read, error)
    });
    assert!(body.starts_with(&read), "bytes read are not what was sent");
    if let Some(len) = declared {
        assert!(read.len() as u64 <= len, "read past CONTENT_LENGTH");
    }
    if let Some(limit) = limit {
        assert!(read.len() as u64 <= limit, "read past the limit");
    }
    let over_limit = limit.is_some_and(|l| declared.unwrap_or(body.len() as u64) > l);
    match declared {
        Some(len) if (body.len() as u64) < len && !over_limit => assert_eq!(
            error.as_ref().map(std::io::Error::kind),
            Some(std::io::ErrorKind::UnexpectedEof),
            "a short body is an error"
        ),
        Some(len) if !over_limit => {
            assert!(error.is_none(), "{error:?}");
            assert_eq!(read.len() as u64, len);
        }
        None if !over_limit => {
            assert!(error.is_none(), "{error:?}");
            assert_eq!(read, body);
        }
        _ => assert!(error.is_some(), "a body over the limit is an error"),
    }
}
