//! CSRF protection: a per-session token that every unsafe request must carry.
//!
//! [`Csrf`] (inside a [`SessionLayer`](super::SessionLayer)) lets `GET`, `HEAD`, `OPTIONS` and
//! `TRACE` through. Any other method must present the session's token, either in the
//! `X-CSRF-Token` header (scripts) or in the form field `csrf_token` (configurable) of an
//! `application/x-www-form-urlencoded` or `multipart/form-data` body. The form body is read into
//! memory (at most [`Csrf::max_form_bytes`], 413 beyond) and put back with `Environ::set_input`, so
//! the application reads it as if untouched. A missing or wrong token is `403 Forbidden` with a
//! short page. Tokens are compared in constant time. Paths under [`Csrf::exempt`] prefixes (relative
//! to `SCRIPT_NAME`: webhooks, token-authenticated APIs) are not checked.
//!
//! Pages get the token with [`CsrfToken::from_environ`] (made on first use, so only visitors shown a
//! form get a session) and put [`CsrfToken::hidden_input`] in their forms.
//!
//! As a layer, `Csrf` sees every request before the application routes it, so an unsafe method
//! without the token is `403` even on a path the application would answer `404` or `405`. A
//! framework that routes first can call [`Csrf::verify`] itself after routing (rgi-framework's
//! `App::csrf` does), answering unknown paths and methods first, as Flask-WTF's `CSRFProtect` does.

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use rgi::{Application, Environ, Input, Reply, StartResponse};
use subtle::ConstantTimeEq;

use super::handle::Session;

/// The session key that holds the token.
const KEY: &str = "_csrf";

/// The default form field name.
pub const DEFAULT_CSRF_FIELD: &str = "csrf_token";

/// The request header scripts send the token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The token of this request's session, for forms and scripts.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfToken {
    token: String,
    field: Arc<str>,
}

/// The field name [`Csrf`] checks, for [`CsrfToken::hidden_input`].
#[derive(Clone)]
struct FieldName(Arc<str>);

impl CsrfToken {
    /// The session's token, made and stored on first use; `None` without the session layer.
    pub fn from_environ(environ: &Environ) -> Option<CsrfToken> {
        let session = Session::from_environ(environ)?;
        let field = environ
            .extensions()
            .get::<FieldName>()
            .map_or_else(|| Arc::from(DEFAULT_CSRF_FIELD), |f| f.0.clone());
        Some(CsrfToken {
            token: token_of(&session)?,
            field,
        })
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The form field name the token goes in.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// `<input type="hidden" name="csrf_token" value="…">` for a form (the token is URL-safe base64,
    /// nothing to escape).
    pub fn hidden_input(&self) -> String {
        format!(
            r#"<input type="hidden" name="{}" value="{}">"#,
            self.field, self.token
        )
    }
}

impl fmt::Display for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.token)
    }
}

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsrfToken")
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

/// The session's token, made when missing (`None` only if the system random source fails).
fn token_of(session: &Session) -> Option<String> {
    if let Ok(Some(token)) = session.get::<String>(KEY) {
        return Some(token);
    }
    let token = super::layer::new_session_id().ok()?;
    session.insert_value(KEY, token.clone().into());
    Some(token)
}

/// The CSRF layer; see the [module docs](self).
#[derive(Clone, Debug)]
#[must_use]
pub struct Csrf {
    field: Arc<str>,
    exempt: Vec<String>,
    max_form_bytes: usize,
}

impl Default for Csrf {
    fn default() -> Self {
        Csrf::new()
    }
}

impl Csrf {
    /// Check the field `csrf_token` and the `X-CSRF-Token` header; forms up to 1 MiB.
    pub fn new() -> Csrf {
        Csrf {
            field: Arc::from(DEFAULT_CSRF_FIELD),
            exempt: Vec::new(),
            max_form_bytes: 1 << 20,
        }
    }

    /// The form field that carries the token.
    pub fn field(mut self, name: &str) -> Csrf {
        self.field = Arc::from(name);
        self
    }

    /// Do not check requests under `prefix` (relative to `SCRIPT_NAME`, on a segment boundary:
    /// `/hooks` exempts `/hooks` and `/hooks/x`, not `/hooksx`).
    pub fn exempt(mut self, prefix: &str) -> Csrf {
        self.exempt.push(format!("/{}", prefix.trim_matches('/')));
        self
    }

    /// The largest form body read to find the token (default 1 MiB); larger is 413.
    pub fn max_form_bytes(mut self, bytes: usize) -> Csrf {
        self.max_form_bytes = bytes;
        self
    }

    fn is_exempt(&self, path: &[u8]) -> bool {
        self.exempt.iter().any(|prefix| {
            let prefix = prefix.as_bytes();
            prefix == b"/"
                || (path.starts_with(prefix) && matches!(path.get(prefix.len()), None | Some(b'/')))
        })
    }
}

impl<A: Application> tower_layer::Layer<A> for Csrf {
    type Service = CsrfMiddleware<A>;

    fn layer(&self, inner: A) -> CsrfMiddleware<A> {
        CsrfMiddleware {
            inner,
            config: Arc::new(self.clone()),
        }
    }
}

/// An application wrapped by [`Csrf`].
#[derive(Clone, Debug)]
pub struct CsrfMiddleware<A> {
    inner: A,
    config: Arc<Csrf>,
}

/// Why a request was refused.
enum Refusal {
    /// 403: no token, or the wrong one.
    Token(&'static str),
    /// 413: the form is larger than the limit.
    TooLarge,
    /// 400: the body could not be read or parsed.
    BadBody(String),
    /// 500: no session layer around this one.
    NoSession,
}

/// A request [`Csrf::verify`] refused: `403` (no token or the wrong one), `413` (a form over
/// [`Csrf::max_form_bytes`]), `400` (a form that cannot be read) or `500` (no session layer).
pub struct CsrfRejection {
    refusal: Refusal,
}

impl CsrfRejection {
    /// The status to answer with.
    pub fn status(&self) -> StatusCode {
        match self.refusal {
            Refusal::Token(_) => StatusCode::FORBIDDEN,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BadBody(_) => StatusCode::BAD_REQUEST,
            Refusal::NoSession => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short HTML page that says what went wrong (the body the layer answers with).
    pub fn page(&self) -> String {
        let message = match &self.refusal {
            Refusal::Token(_) => "The form's security token is missing or does not match. Reload \
                                  the page and submit the form again."
                .to_owned(),
            Refusal::TooLarge => "The form is too large.".to_owned(),
            Refusal::BadBody(why) => format!("The form could not be read: {why}."),
            Refusal::NoSession => "Server misconfiguration.".to_owned(),
        };
        let status = self.status();
        let reason = status.canonical_reason().unwrap_or("");
        format!(
            "<!doctype html>\n<title>{code} {reason}</title>\n<h1>{code} {reason}</h1>\n<p>{}</p>\n",
            escape(&message),
            code = status.as_u16()
        )
    }

    /// Answer the request with [`status`](CsrfRejection::status) and [`page`](CsrfRejection::page).
    ///
    /// # Errors
    ///
    /// As [`StartResponse::respond`].
    pub fn respond(self, start: StartResponse) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        Ok(start.respond(self.status(), headers, self.page())?)
    }
}

impl fmt::Debug for CsrfRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsrfRejection")
            .field("status", &self.status())
            .field("reason", &format_args!("{self}"))
            .finish()
    }
}

/// Why, in a few words (`CSRF token missing`), for an application that logs refusals itself.
impl fmt::Display for CsrfRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.refusal {
            Refusal::Token(why) => write!(f, "CSRF token {why}"),
            Refusal::TooLarge => f.write_str("form over the size limit"),
            Refusal::BadBody(why) => write!(f, "form could not be read: {why}"),
            Refusal::NoSession => f.write_str("no session layer outside the CSRF check"),
        }
    }
}

impl<A: Application> Application for CsrfMiddleware<A> {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        match self.config.verify(&mut environ).await {
            Ok(()) => self.inner.call(environ, start).await,
            Err(rejection) => rejection.respond(start),
        }
    }
}

impl Csrf {
    /// What the layer does before calling the application, for a framework that checks after
    /// routing (so that an unknown path or method is answered `404`/`405` first, as Flask-WTF
    /// does): lets `GET`, `HEAD`, `OPTIONS`, `TRACE` and the exempt paths through, and checks the
    /// token of any other request. The field name is recorded in the environ for
    /// [`CsrfToken::field`]; a form body that was read is put back. A missing or wrong token is
    /// the client's mistake: it is answered `403` (and so appears in the access log) but not
    /// written to `rgi.errors`, which behind nginx would become an `[error]` line per refusal. A
    /// missing session is the deployment's mistake and is logged there.
    ///
    /// # Errors
    ///
    /// A [`CsrfRejection`] to answer with.
    pub async fn verify(&self, environ: &mut Environ) -> Result<(), CsrfRejection> {
        environ
            .extensions_mut()
            .insert(FieldName(self.field.clone()));
        let safe = matches!(
            *environ.method(),
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        );
        if safe || self.is_exempt(environ.path_info()) {
            return Ok(());
        }
        let checked = self.check(environ).await;
        if let Err(Refusal::NoSession) = &checked {
            environ
                .errors()
                .log("rgi csrf: no session: install SessionLayer outside (before) Csrf");
        }
        checked.map_err(|refusal| CsrfRejection { refusal })
    }

    async fn check(&self, environ: &mut Environ) -> Result<(), Refusal> {
        let session = Session::from_environ(environ).ok_or(Refusal::NoSession)?;
        let expected = session.get::<String>(KEY).ok().flatten();
        let presented = match environ.headers().get(CSRF_HEADER) {
            Some(value) => Some(value.as_bytes().to_vec()),
            None => self.form_token(environ).await?,
        };
        let (Some(expected), Some(presented)) = (expected, presented) else {
            return Err(Refusal::Token("missing"));
        };
        if bool::from(expected.as_bytes().ct_eq(&presented)) {
            Ok(())
        } else {
            Err(Refusal::Token("does not match"))
        }
    }

    /// The token field of a form body; the body is put back for the application.
    async fn form_token(&self, environ: &mut Environ) -> Result<Option<Vec<u8>>, Refusal> {
        let content_type = environ
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let multipart = match essence.as_str() {
            "application/x-www-form-urlencoded" => false,
            "multipart/form-data" => true,
            _ => return Ok(None),
        };
        let body = self.read_body(environ).await?;
        environ.set_input(Input::from_bytes(body.clone()));
        let field = &*self.field;
        if !multipart {
            return Ok(form_urlencoded::parse(&body)
                .find(|(name, _)| name == field)
                .map(|(_, value)| value.into_owned().into_bytes()));
        }
        let boundary = multer::parse_boundary(&content_type)
            .map_err(|e| Refusal::BadBody(format!("multipart: {e}")))?;
        let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
        let mut parts = multer::Multipart::new(stream, boundary);
        loop {
            match parts.next_field().await {
                Ok(Some(part)) if part.name() == Some(field) => {
                    let text = part
                        .bytes()
                        .await
                        .map_err(|e| Refusal::BadBody(format!("multipart: {e}")))?;
                    return Ok(Some(text.to_vec()));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ok(None),
                Err(e) => return Err(Refusal::BadBody(format!("multipart: {e}"))),
            }
        }
    }

    /// The whole request body, at most `max_form_bytes`.
    async fn read_body(&self, environ: &mut Environ) -> Result<Bytes, Refusal> {
        let limit = self.max_form_bytes;
        if environ
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(Refusal::TooLarge);
        }
        let mut input = environ.take_input();
        let mut body = BytesMut::new();
        while let Some(chunk) = input.chunk().await {
            let chunk = chunk.map_err(|e| Refusal::BadBody(format!("reading the body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(Refusal::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
