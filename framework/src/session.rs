//! Extractors for the session middleware (`rgi_middleware::session`): [`Session`], [`Flash`] and
//! [`CsrfToken`], read from the environ's extensions. Without the layer in front of the application,
//! extracting one is a `500` that names the missing layer.

use rgi_middleware::session::{CsrfToken, Flash, Session};

use crate::extract::{FromRequestParts, Request};
use crate::Error;

fn missing(what: &str, layer: &str) -> Error {
    Error::internal(format!(
        "no {what} in the environ: wrap the application in rgi_middleware::session::{layer}"
    ))
}

/// The request's session (needs [`SessionLayer`](rgi_middleware::session::SessionLayer)).
impl FromRequestParts for Session {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        Session::from_environ(request.environ()).ok_or_else(|| missing("session", "SessionLayer"))
    }
}

/// The session's flash messages (needs [`SessionLayer`](rgi_middleware::session::SessionLayer)).
impl FromRequestParts for Flash {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        Flash::from_environ(request.environ()).ok_or_else(|| missing("session", "SessionLayer"))
    }
}

/// The CSRF token (needs [`Csrf`](rgi_middleware::session::Csrf) inside the session layer).
impl FromRequestParts for CsrfToken {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        CsrfToken::from_environ(request.environ()).ok_or_else(|| missing("CSRF token", "Csrf"))
    }
}
