//! What the gateways that receive a request as CGI variables (CGI, FastCGI, SCGI, uwsgi) share, so
//! that none of them copies another: the variables → environ conversion with the
//! `SCRIPT_NAME`/`PATH_INFO` fix-ups ([`environ`]), the response-head writers and the body pump
//! ([`response`]), the one-request-per-connection server of SCGI and uwsgi ([`oneshot`]), and
//! [`answer`], which takes a request from its variables through the [pipeline](crate::pipeline).

pub(crate) mod environ;
pub(crate) mod oneshot;
pub(crate) mod response;

use std::net::IpAddr;
use std::sync::Arc;

use rgi::{Application, Body, Environ, Errors, Input, ServerInfo};

use crate::pipeline::log::{Arrival, Unlogged};
use crate::pipeline::{plain, Pipeline};
use environ::Split;

/// CGI meta-variables as (name, value) byte pairs, borrowed from a request's header block (FastCGI
/// `PARAMS`, an SCGI netstring, a uwsgi vars block), in the order sent.
pub type Vars<'a> = Vec<(&'a [u8], &'a [u8])>;

/// A response decided by the pipeline, ready for the transport to write.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The response.
    pub(crate) response: http::Response<Body>,
    /// Whether the request was `HEAD` (the body is not sent).
    pub(crate) is_head: bool,
    /// The access-log line, written once the body is sent ([`response::send`]).
    pub(crate) record: Option<Box<Unlogged>>,
}

impl Answer {
    /// A response of the gateway's own (a request head that breaks the protocol), not logged.
    pub(crate) fn refusal(response: http::Response<Body>) -> Self {
        Answer {
            response,
            is_head: false,
            record: None,
        }
    }
}

/// Answer the request the variables `vars` describe: build its environ (`server` its facts, `split`
/// how far to trust the web server's `SCRIPT_NAME`, `make_input` its body, `extend` anything a
/// transport adds), then the pipeline. Variables that make no environ are answered 400 and logged.
pub(crate) async fn answer<A: Application>(
    pipeline: &Pipeline<A>,
    vars: &[(&[u8], &[u8])],
    server: Arc<ServerInfo>,
    split: Split,
    make_input: impl FnOnce(Option<u64>) -> Input,
    extend: impl FnOnce(&mut Environ),
) -> Answer {
    let mut record = pipeline.arrived(|| Arrival::from_vars(vars));
    let errors = server.errors.clone();
    let (response, is_head) =
        match environ::build(vars, server, &pipeline.config, split, make_input) {
            Ok(mut environ) => {
                extend(&mut environ);
                let is_head = environ.method() == http::Method::HEAD;
                (pipeline.respond(environ, &errors).await, is_head)
            }
            Err(refusal) => {
                errors.log(format_args!("{}: request refused: {refusal}", pipeline.tag));
                let status = http::StatusCode::BAD_REQUEST;
                (pipeline.refuse(plain(status, None)), false)
            }
        };
    if let Some(record) = &mut record {
        record.respond(&response);
    }
    Answer {
        response,
        is_head,
        record,
    }
}

/// The peers a gateway accepts on TCP: `FCGI_WEB_SERVER_ADDRS` (comma-separated IP addresses), when
/// set. Unparsable entries are logged and skipped.
pub(crate) fn allowed_peers(value: Option<&str>, errors: &Errors) -> Option<Arc<Vec<IpAddr>>> {
    let value = value?;
    let mut addrs = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<IpAddr>() {
            Ok(ip) => addrs.push(ip),
            Err(_) => errors.log(format_args!(
                "rgi: FCGI_WEB_SERVER_ADDRS entry {part:?} is not an IP address; ignored"
            )),
        }
    }
    Some(Arc::new(addrs))
}
