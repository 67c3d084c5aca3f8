//! Writing a response: one head writer per wire format and one body pump for every gateway.
//!
//! - [`Head::Cgi`]: `Status: 200 OK` + headers (CGI, FastCGI, SCGI). A response that is exactly a
//!   RFC 3875 local redirect (status 200, a `Location` path, no other header, no body) is written as
//!   the bare `Location:` line, so the web server redirects internally as the RFC says.
//! - [`Head::Http`]: `HTTP/1.1 200 OK` + headers + `Connection: close` (uwsgi, NPH CGI): these
//!   gateways answer one request per connection.
//!
//! Both add `Content-Length` when the body's length is known ([`Body::exact_len`]) and the status
//! allows a body. The pump sends each chunk as soon as it is produced and flushes it; a body that
//! fails (or panics) midway is reported as [`SendError::Body`] so the caller can end the exchange
//! without pretending success. The access-log line is written when the body is done.

use std::future::Future;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::StatusCode;
use rgi::{Body, BodyKind, BoxError};

use super::Answer;
use crate::pipeline::body;

/// The wire format of a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    /// CGI response fields: `Status:` first.
    Cgi,
    /// A full HTTP/1.1 status line.
    Http,
}

/// Where response bytes go (a socket, stdout, FastCGI `STDOUT` records).
pub(crate) trait Sink: Send {
    /// Write all of `data`.
    fn write(&mut self, data: Bytes) -> impl Future<Output = io::Result<()>> + Send;
    /// Push what was written to the peer.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

/// Why a response was not sent whole.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Writing failed (the peer went away).
    Write(io::Error),
    /// The application's body failed (or panicked) after the head was sent.
    Body(BoxError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Write(_) => f.write_str("writing the response failed"),
            SendError::Body(_) => f.write_str("response body failed midway"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Write(e) => Some(e),
            SendError::Body(e) => Some(e.as_ref()),
        }
    }
}

/// The head of `response` in the given format, ending with the empty line.
pub(crate) fn encode_head(style: Head, response: &http::Response<Body>, is_head: bool) -> Vec<u8> {
    let status = response.status();
    let headers = response.headers();
    let mut out = Vec::with_capacity(256);
    let reason = status.canonical_reason().unwrap_or("Unknown");
    let local_redirect = style == Head::Cgi && is_local_redirect(status, headers, response.body());
    match style {
        Head::Http => {
            out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).as_bytes());
        }
        Head::Cgi if local_redirect => {}
        Head::Cgi => {
            out.extend_from_slice(format!("Status: {} {reason}\r\n", status.as_u16()).as_bytes());
        }
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(header::CONTENT_LENGTH)
        && rgi::status_allows_body(status)
        && !is_head
        && !local_redirect
    {
        if let Some(len) = response.body().exact_len() {
            out.extend_from_slice(format!("content-length: {len}\r\n").as_bytes());
        }
    }
    if style == Head::Http {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// RFC 3875 §6.2.2: only `Location` with a local path, no body.
fn is_local_redirect(status: StatusCode, headers: &HeaderMap, body: &Body) -> bool {
    status == StatusCode::OK
        && headers.len() == 1
        && body.exact_len() == Some(0)
        && headers
            .get(header::LOCATION)
            .is_some_and(|l| l.as_bytes().starts_with(b"/"))
}

/// Send the answer to `sink`: the head, then the body chunk by chunk (none for HEAD, 204, 304);
/// then the access-log line, with the body bytes that went out.
///
/// File bodies are read through tokio when `tokio_files`, else with blocking reads (CGI: no thread
/// pool).
pub(crate) async fn send<S: Sink>(
    sink: &mut S,
    style: Head,
    answer: Answer,
    tokio_files: bool,
) -> Result<(), SendError> {
    let Answer {
        response,
        is_head,
        record,
    } = answer;
    let mut sent = 0;
    let result = send_counted(sink, style, response, is_head, tokio_files, &mut sent).await;
    if let Some(record) = record {
        record.write(sent);
    }
    result
}

async fn send_counted<S: Sink>(
    sink: &mut S,
    style: Head,
    response: http::Response<Body>,
    is_head: bool,
    tokio_files: bool,
    sent: &mut u64,
) -> Result<(), SendError> {
    let head = encode_head(style, &response, is_head);
    let status = response.status();
    let mut body = response.into_body();
    if is_head || !rgi::status_allows_body(status) {
        body = Body::empty();
    }
    let body = match body.into_kind() {
        BodyKind::Full(bytes) if bytes.len() <= 16 * 1024 => {
            // One write for a small response.
            let mut all = head;
            all.extend_from_slice(&bytes);
            sink.write(all.into()).await.map_err(SendError::Write)?;
            sink.flush().await.map_err(SendError::Write)?;
            *sent = bytes.len() as u64;
            return Ok(());
        }
        BodyKind::File(file) if tokio_files => body::tokio_file(file.into()),
        other => Body::from(other),
    };
    sink.write(head.into()).await.map_err(SendError::Write)?;
    sink.flush().await.map_err(SendError::Write)?;
    pump(sink, body, sent).await
}

async fn pump<S: Sink>(sink: &mut S, mut body: Body, sent: &mut u64) -> Result<(), SendError> {
    loop {
        match std::future::poll_fn(|cx| body::poll_frame(Pin::new(&mut body), cx)).await {
            None => return Ok(()),
            Some(Err(e)) => return Err(SendError::Body(e)),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        let len = data.len() as u64;
                        sink.write(data).await.map_err(SendError::Write)?;
                        sink.flush().await.map_err(SendError::Write)?;
                        *sent += len;
                    }
                }
            }
        }
    }
}

/// A [`Sink`] over any async writer (SCGI and uwsgi sockets).
#[derive(Debug)]
pub(crate) struct WriteSink<W>(pub(crate) W);

impl<W: tokio::io::AsyncWrite + Unpin + Send> Sink for WriteSink<W> {
    async fn write(&mut self, data: Bytes) -> io::Result<()> {
        tokio::io::AsyncWriteExt::write_all(&mut self.0, &data).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        tokio::io::AsyncWriteExt::flush(&mut self.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: Body) -> http::Response<Body> {
        let mut r = http::Response::new(body);
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        for (k, v) in headers {
            r.headers_mut().append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        r
    }

    fn head(style: Head, r: &http::Response<Body>, is_head: bool) -> String {
        String::from_utf8(encode_head(style, r, is_head)).unwrap()
    }

    #[test]
    fn a_cgi_head_starts_with_status_and_gets_the_known_length() {
        let r = response(200, &[("content-type", "text/plain")], "hi".into());
        assert_eq!(
            head(Head::Cgi, &r, false),
            "Status: 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\n"
        );
    }

    #[test]
    fn an_http_head_has_a_status_line_and_closes_the_connection() {
        let r = response(
            404,
            &[("set-cookie", "a=1"), ("set-cookie", "b=2")],
            ().into(),
        );
        assert_eq!(
            head(Head::Http, &r, false),
            "HTTP/1.1 404 Not Found\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n\
             content-length: 0\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_bare_local_location_is_written_as_an_rfc_3875_local_redirect() {
        let r = response(200, &[("location", "/elsewhere")], ().into());
        assert_eq!(head(Head::Cgi, &r, false), "location: /elsewhere\r\n\r\n");
        let r = response(302, &[("location", "/elsewhere")], ().into());
        assert_eq!(
            head(Head::Cgi, &r, false),
            "Status: 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn no_length_is_invented_for_204_or_head() {
        let r = response(204, &[], ().into());
        assert_eq!(head(Head::Cgi, &r, false), "Status: 204 No Content\r\n\r\n");
        let r = response(200, &[], "body".into());
        assert_eq!(head(Head::Cgi, &r, true), "Status: 200 OK\r\n\r\n");
    }
}
