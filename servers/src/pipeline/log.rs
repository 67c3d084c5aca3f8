//! The access-log line of one request: its request half captured when the request arrives (before
//! the application consumes it), its status and headers when the response is ready, its byte count
//! and duration when the body ends — then written, once, whatever the transport.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Response;
use rgi::Body;

use crate::accesslog::{AccessLog, AccessRecord};

/// What the access log knows of a request when it arrives.
#[derive(Debug)]
pub(crate) struct Arrival {
    started: Instant,
    time: SystemTime,
    remote: Option<SocketAddr>,
    method: String,
    target: String,
    protocol: &'static str,
    headers: HeaderMap,
}

impl Arrival {
    /// An HTTP request as hyper parsed it, from `remote`.
    pub(crate) fn from_http<B>(request: &http::Request<B>, remote: Option<SocketAddr>) -> Self {
        let uri = request.uri();
        Arrival {
            started: Instant::now(),
            time: SystemTime::now(),
            remote,
            method: request.method().as_str().to_owned(),
            target: uri
                .path_and_query()
                .map_or_else(|| uri.to_string(), |pq| pq.as_str().to_owned()),
            protocol: rgi::convert::protocol_name(request.version()),
            headers: request.headers().clone(),
        }
    }

    /// A request sent by a web server as CGI variables (FastCGI, SCGI, uwsgi, CGI): the client is
    /// `REMOTE_ADDR`/`REMOTE_PORT`, the target `REQUEST_URI`, the headers the `HTTP_*` variables.
    pub(crate) fn from_vars(vars: &[(&[u8], &[u8])]) -> Self {
        let var = |name: &str| {
            vars.iter()
                .rev()
                .find(|(k, _)| *k == name.as_bytes())
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let target = var("REQUEST_URI").unwrap_or_else(|| {
            let mut target = var("SCRIPT_NAME").unwrap_or_default();
            target.push_str(&var("PATH_INFO").unwrap_or_default());
            match var("QUERY_STRING") {
                Some(q) if !q.is_empty() => target + "?" + &q,
                _ => target,
            }
        });
        let remote = var("REMOTE_ADDR")
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| {
                SocketAddr::new(
                    ip,
                    var("REMOTE_PORT").and_then(|p| p.parse().ok()).unwrap_or(0),
                )
            });
        let protocol = match var("SERVER_PROTOCOL").as_deref() {
            Some("HTTP/1.1") => "HTTP/1.1",
            Some("HTTP/1.0") => "HTTP/1.0",
            Some("HTTP/2.0" | "HTTP/2") => "HTTP/2.0",
            Some("HTTP/3.0" | "HTTP/3") => "HTTP/3.0",
            _ => "-",
        };
        let mut headers = HeaderMap::new();
        for (name, value) in vars {
            if let (Some(name), Ok(value)) = (header_of(name), HeaderValue::from_bytes(value)) {
                headers.append(name, value);
            }
        }
        Arrival {
            started: Instant::now(),
            time: SystemTime::now(),
            remote,
            method: var("REQUEST_METHOD").unwrap_or_else(|| "-".into()),
            target,
            protocol,
            headers,
        }
    }
}

/// The header an `HTTP_*` CGI variable carries (`HTTP_USER_AGENT` → `user-agent`); `None` for any
/// other variable.
pub(crate) fn header_of(cgi_name: &[u8]) -> Option<HeaderName> {
    let rest = cgi_name.strip_prefix(b"HTTP_")?;
    let name: Vec<u8> = rest
        .iter()
        .map(|&b| {
            if b == b'_' {
                b'-'
            } else {
                b.to_ascii_lowercase()
            }
        })
        .collect();
    HeaderName::from_bytes(&name).ok()
}

/// A request's access-log line, waiting for its response to end.
#[derive(Debug)]
pub(crate) struct Unlogged {
    arrival: Arrival,
    status: u16,
    response_headers: HeaderMap,
    log: Arc<AccessLog>,
}

impl Unlogged {
    pub(crate) fn new(arrival: Arrival, log: Arc<AccessLog>) -> Box<Self> {
        Box::new(Unlogged {
            arrival,
            status: 0,
            response_headers: HeaderMap::new(),
            log,
        })
    }

    /// The response is decided: its status and headers go in the line.
    pub(crate) fn respond(&mut self, response: &Response<Body>) {
        self.status = response.status().as_u16();
        self.response_headers = response.headers().clone();
    }

    /// The response ended (or was abandoned) after `bytes` body bytes: write the line.
    pub(crate) fn write(self: Box<Self>, bytes: u64) {
        let Unlogged {
            arrival: a,
            status,
            response_headers,
            log,
        } = *self;
        log.log(&AccessRecord {
            remote: a.remote,
            time: a.time,
            method: a.method,
            target: a.target,
            protocol: a.protocol,
            status,
            bytes,
            duration: a.started.elapsed(),
            request_headers: a.headers,
            response_headers,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_variables_give_the_same_facts_as_the_http_request() {
        let vars: [(&[u8], &[u8]); 6] = [
            (b"REQUEST_METHOD", b"POST"),
            (b"REQUEST_URI", b"/a%20b?x=1"),
            (b"SERVER_PROTOCOL", b"HTTP/1.1"),
            (b"REMOTE_ADDR", b"127.0.0.1"),
            (b"REMOTE_PORT", b"4242"),
            (b"HTTP_USER_AGENT", b"curl/8"),
        ];
        let a = Arrival::from_vars(&vars);
        let request = http::Request::post("/a%20b?x=1")
            .header("user-agent", "curl/8")
            .body(())
            .unwrap();
        let b = Arrival::from_http(&request, Some("127.0.0.1:4242".parse().unwrap()));
        assert_eq!(
            (&a.method, &a.target, a.protocol, a.remote, &a.headers),
            (&b.method, &b.target, b.protocol, b.remote, &b.headers)
        );
        let bare = Arrival::from_vars(&[(b"SCRIPT_NAME", b"/app"), (b"QUERY_STRING", b"q")]);
        assert_eq!(
            (bare.method.as_str(), bare.target.as_str()),
            ("-", "/app?q")
        );
    }
}
