//! Method override: HTML forms can only `GET` and `POST`; a hidden `_method` field (or the
//! `X-HTTP-Method-Override` header) turns a `POST` into `PUT`, `PATCH` or `DELETE`.
//!
//! Only `POST` requests are ever changed (a `GET` link must never delete anything), and only to the
//! allowed methods (by default `PUT`, `PATCH`, `DELETE`; any other value is ignored).
//!
//! - `X-HTTP-Method-Override: DELETE` on a `POST`, for clients that cannot send the method itself.
//! - `_method=DELETE` in an `application/x-www-form-urlencoded` body. To read it the body is buffered
//!   (up to a limit, 64 KiB by default) and put back with [`Environ::set_input`], so the application
//!   still reads the whole form. A body that declares more than the limit is not buffered (its method
//!   stays `POST`); a chunked body found to be longer midway is passed on complete, the part already
//!   read first.
//!
//! The original method is kept in an [`OriginalMethod`] extension.
//!
//! ```
//! use rgi::ApplicationExt;
//! use rgi_middleware::method_override::MethodOverrideLayer;
//!
//! let app = rgi::app_fn(|mut environ, start| async move {
//!     let body = environ.input_mut().read_to_bytes().await?;
//!     start.text(format!("{} {}", environ.method(), String::from_utf8_lossy(&body)))
//! })
//! .layer(MethodOverrideLayer::new());
//!
//! let response = rgi::testing::TestClient::new(app)
//!     .post("/todos/3")
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body("_method=DELETE&confirm=yes")
//!     .send_blocking();
//! assert_eq!(response.text(), "DELETE _method=DELETE&confirm=yes");
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{header, Method};
use http_body::{Frame, SizeHint};
use rgi::{Application, BoxError, Environ, Input, Layer, Reply, StartResponse};

/// The request's method before the override, in the environ's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalMethod(pub Method);

/// Makes [`MethodOverride`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct MethodOverrideLayer {
    allowed: Vec<Method>,
    limit: usize,
    header: bool,
}

impl Default for MethodOverrideLayer {
    fn default() -> Self {
        MethodOverrideLayer::new()
    }
}

impl MethodOverrideLayer {
    /// `PUT`, `PATCH` and `DELETE`, from `_method` (bodies up to 64 KiB) and `X-HTTP-Method-Override`.
    pub fn new() -> Self {
        MethodOverrideLayer {
            allowed: vec![Method::PUT, Method::PATCH, Method::DELETE],
            limit: 64 * 1024,
            header: true,
        }
    }

    /// The methods a `POST` may become.
    pub fn allowed(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.allowed = methods.into_iter().collect();
        self
    }

    /// Buffer form bodies up to `limit` bytes to look for `_method`.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Whether `X-HTTP-Method-Override` is read (default yes).
    pub fn header(mut self, on: bool) -> Self {
        self.header = on;
        self
    }
}

impl<A> Layer<A> for MethodOverrideLayer {
    type Service = MethodOverride<A>;

    fn layer(&self, inner: A) -> MethodOverride<A> {
        MethodOverride {
            inner,
            config: self.clone(),
        }
    }
}

/// The middleware made by [`MethodOverrideLayer`].
#[derive(Debug, Clone)]
pub struct MethodOverride<A> {
    inner: A,
    config: MethodOverrideLayer,
}

impl<A: Application> Application for MethodOverride<A> {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        if environ.method() == Method::POST {
            if let Some(method) = self.wanted(&mut environ).await {
                let method = method.to_ascii_uppercase();
                if let Some(allowed) = self.config.allowed.iter().find(|m| m.as_str() == method) {
                    let allowed = allowed.clone();
                    environ
                        .extensions_mut()
                        .insert(OriginalMethod(Method::POST));
                    // An allowed method is a valid token, so this cannot fail.
                    let _ = environ.set("REQUEST_METHOD", allowed.as_str().to_owned());
                }
            }
        }
        self.inner.call(environ, start).await
    }
}

impl<A> MethodOverride<A> {
    /// The method asked for: the header, else the form field.
    async fn wanted(&self, environ: &mut Environ) -> Option<String> {
        if self.config.header {
            if let Some(value) = environ.headers().get("x-http-method-override") {
                return value.to_str().ok().map(str::to_owned);
            }
        }
        let is_form = environ
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form
            || environ
                .content_length()
                .is_some_and(|len| len > self.config.limit as u64)
        {
            return None;
        }
        let (body, rest) = read_up_to(environ.input_mut(), self.config.limit).await;
        let field = matches!(rest, Ok(true))
            .then(|| form_field(&body, b"_method"))
            .flatten();
        let declared = environ.input_ref().content_length();
        let input = match rest {
            // The whole body was read: give it back as it was.
            Ok(true) => Input::from_bytes(body),
            // Longer than the limit: the bytes read so far, then the rest of the original input.
            Ok(false) => {
                let rest = environ.take_input();
                let input = Input::from_body(Prefixed {
                    prefix: Some(body),
                    error: None,
                    rest,
                });
                match declared {
                    Some(len) => input.with_content_length(len),
                    None => input,
                }
            }
            // The read failed (over the server's limit, cut short): the application gets the bytes
            // read so far, then the same error.
            Err(error) => Input::from_body(Prefixed {
                prefix: Some(body),
                error: Some(error),
                rest: Input::empty(),
            }),
        };
        environ.set_input(input);
        field
    }
}

/// Read up to `limit` bytes: `Ok(true)` when that was the whole body, `Ok(false)` when more remains.
async fn read_up_to(input: &mut Input, limit: usize) -> (Bytes, std::io::Result<bool>) {
    let mut buf = BytesMut::new();
    loop {
        match std::future::poll_fn(|cx| input.poll_chunk(cx)).await {
            None => return (buf.freeze(), Ok(true)),
            Some(Ok(chunk)) => {
                buf.extend_from_slice(&chunk);
                if buf.len() > limit {
                    return (buf.freeze(), Ok(false));
                }
            }
            Some(Err(error)) => return (buf.freeze(), Err(error)),
        }
    }
}

/// The value of `name` in an urlencoded form (`+` is a space, `%XX` decoded), lossily as UTF-8.
fn form_field(body: &[u8], name: &[u8]) -> Option<String> {
    let decode = |s: &[u8]| -> Vec<u8> {
        let plus: Vec<u8> = s
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&plus).collect()
    };
    body.split(|&b| b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let key = decode(kv.next()?);
        (key == name)
            .then(|| String::from_utf8_lossy(&decode(kv.next().unwrap_or(b""))).into_owned())
    })
}

/// Bytes already read, then the error the read ended with or the rest of the original body.
struct Prefixed {
    prefix: Option<Bytes>,
    error: Option<std::io::Error>,
    rest: Input,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(prefix) = self.prefix.take().filter(|p| !p.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if let Some(error) = self.error.take() {
            // Unwrapped, so that `Input` wraps it once, as it wraps any body error: servers then
            // still recognise a `BodyTooLarge` (413) or a short body (400).
            let error: BoxError = if error.get_ref().is_some() {
                error
                    .into_inner()
                    .unwrap_or_else(|| "rgi: the request body failed".into())
            } else {
                Box::new(error)
            };
            return Poll::Ready(Some(Err(error)));
        }
        self.rest
            .poll_chunk(cx)
            .map(|c| c.map(|r| r.map(Frame::data).map_err(Into::into)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::testing::TestClient;
    use rgi::{ApplicationExt, Body};

    fn echo() -> impl Application {
        rgi::app_fn(|mut environ: Environ, start: StartResponse| async move {
            let body = environ.input_mut().read_to_bytes().await?;
            let original = environ
                .extensions()
                .get::<OriginalMethod>()
                .map(|m| m.0.to_string());
            start.text(format!(
                "{} {} {}",
                environ.method(),
                original.unwrap_or("-".into()),
                String::from_utf8_lossy(&body)
            ))
        })
    }

    const FORM: &str = "application/x-www-form-urlencoded";

    fn client(layer: MethodOverrideLayer) -> TestClient<MethodOverride<impl Application>> {
        TestClient::new(echo().layer(layer))
    }

    #[test]
    fn form_field_and_header_on_post() {
        let c = client(MethodOverrideLayer::new());
        let r = c
            .post("/")
            .header("content-type", FORM)
            .body("a=1&_method=put")
            .send_blocking();
        assert_eq!(r.text(), "PUT POST a=1&_method=put");
        let r = c
            .post("/")
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body("_m%65thod=P%41TCH")
            .send_blocking();
        assert_eq!(r.text(), "PATCH POST _m%65thod=P%41TCH");
        let r = c
            .post("/")
            .header("x-http-method-override", "DELETE")
            .body("x")
            .send_blocking();
        assert_eq!(r.text(), "DELETE POST x");
    }

    #[test]
    fn only_post_and_only_allowed_methods() {
        let c = client(MethodOverrideLayer::new());
        let r = c
            .get("/?_method=DELETE")
            .header("x-http-method-override", "DELETE")
            .send_blocking();
        assert_eq!(r.text(), "GET - ");
        let r = c
            .put("/")
            .header("content-type", FORM)
            .body("_method=DELETE")
            .send_blocking();
        assert_eq!(r.text(), "PUT - _method=DELETE");
        for bad in ["GET", "CONNECT", "TRACE", "del ete", ""] {
            let r = c
                .post("/")
                .header("content-type", FORM)
                .body(format!("_method={bad}"))
                .send_blocking();
            assert!(r.text().starts_with("POST - "), "{bad}: {}", r.text());
        }
        let c = client(
            MethodOverrideLayer::new()
                .allowed([Method::DELETE])
                .header(false),
        );
        let r = c
            .post("/")
            .header("x-http-method-override", "DELETE")
            .body("")
            .send_blocking();
        assert!(r.text().starts_with("POST"));
        let r = c
            .post("/")
            .header("content-type", FORM)
            .body("_method=PUT")
            .send_blocking();
        assert!(r.text().starts_with("POST"));
    }

    #[test]
    fn other_content_types_are_not_read() {
        let c = client(MethodOverrideLayer::new());
        let r = c
            .post("/")
            .header("content-type", "text/plain")
            .body("_method=DELETE")
            .send_blocking();
        assert_eq!(r.text(), "POST - _method=DELETE");
    }

    #[test]
    fn bodies_over_the_limit_reach_the_app_whole() {
        let c = client(MethodOverrideLayer::new().limit(8));
        let r = c
            .post("/")
            .header("content-type", FORM)
            .body("_method=DELETE&x=1")
            .send_blocking();
        assert_eq!(
            r.text(),
            "POST - _method=DELETE&x=1",
            "declared too long: not read"
        );
        let chunks = futures_util::stream::iter(
            ["_method=", "DELETE", "&x=1"].map(Ok::<_, std::convert::Infallible>),
        );
        let r = c
            .post("/")
            .header("content-type", FORM)
            .body_stream(Body::from_stream(chunks))
            .send_blocking();
        assert_eq!(
            r.text(),
            "POST - _method=DELETE&x=1",
            "chunked and too long: put back whole"
        );
        let chunks =
            futures_util::stream::iter(["_method=", "PUT"].map(Ok::<_, std::convert::Infallible>));
        let c = client(MethodOverrideLayer::new().limit(64));
        let r = c
            .post("/")
            .header("content-type", FORM)
            .body_stream(Body::from_stream(chunks))
            .send_blocking();
        assert_eq!(r.text(), "PUT POST _method=PUT");
    }

    #[test]
    fn a_failing_read_reaches_the_application_as_an_error() {
        let app = echo()
            .layer(MethodOverrideLayer::new())
            .layer(crate::limits::BodyLimitLayer::new(4));
        let chunks =
            futures_util::stream::iter(["_met", "hod=PUT"].map(Ok::<_, std::convert::Infallible>));
        let r = TestClient::new(app)
            .post("/")
            .header("content-type", FORM)
            .body_stream(Body::from_stream(chunks))
            .send_blocking();
        assert_eq!(r.status(), 413);
    }

    #[test]
    fn form_parsing() {
        assert_eq!(
            form_field(b"a=1&_method=DELETE", b"_method").as_deref(),
            Some("DELETE")
        );
        assert_eq!(form_field(b"_method", b"_method").as_deref(), Some(""));
        assert_eq!(form_field(b"x_method=PUT", b"_method"), None);
        assert_eq!(
            form_field(b"_method=a+b%2", b"_method").as_deref(),
            Some("a b%2")
        );
        assert_eq!(form_field(b"&&=&", b"_method"), None);
    }
}
