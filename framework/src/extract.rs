//! Extractors: typed arguments of handlers, read from the request. A failed extraction is an
//! [`Error`] response (400, 413, 415, 422…) and the handler is not called.

use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};
use rgi::{Environ, Input};
use serde::de::DeserializeOwned;

use crate::app::Shared;
use crate::de;
use crate::response::Json;
use crate::routing::{Params, UrlError};
use crate::Error;

/// A request on its way to a handler: the environ, the route's parameters, the application.
///
/// Extractors read it; custom extractors implement [`FromRequestParts`] or [`FromRequest`] with it.
pub struct Request {
    pub(crate) environ: Environ,
    pub(crate) params: Params,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("environ", &self.environ)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// The environ.
    pub fn environ(&self) -> &Environ {
        &self.environ
    }

    /// The environ, mutably (e.g. to take its body).
    pub fn environ_mut(&mut self) -> &mut Environ {
        &mut self.environ
    }

    /// The environ, by value.
    pub fn into_environ(self) -> Environ {
        self.environ
    }

    /// The matched route's parameters (decoded), in route order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// A URL builder for this request (its mount point and the application's routes).
    pub fn urls(&self) -> Urls {
        Urls {
            shared: Arc::clone(&self.shared),
            script_name: String::from_utf8_lossy(self.environ.script_name()).into_owned(),
        }
    }

    /// The request's `Content-Type` essence (`application/json`), lowercased, without parameters.
    fn content_type(&self) -> Option<String> {
        let value = self.environ.headers().get(http::header::CONTENT_TYPE)?;
        let value = value.to_str().ok()?;
        let essence = value.split(';').next().unwrap_or("").trim();
        Some(essence.to_ascii_lowercase())
    }

    /// Read the whole body, refusing more than the application's body limit (`413`).
    pub async fn read_body(&mut self) -> Result<Bytes, Error> {
        let limit = self.shared.limits.body;
        let too_large = || {
            Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {limit} bytes"),
            )
        };
        if self.environ.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let input = self.environ.input_mut();
        let mut body = BytesMut::new();
        while let Some(chunk) = input.chunk().await {
            let chunk = chunk.map_err(|e| {
                if crate::error::is_too_large(&e) {
                    too_large()
                } else {
                    Error::bad_request("the request body could not be read").with_cause(e)
                }
            })?;
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// Marker types that keep the blanket implementations of [`FromRequest`] apart.
pub mod marker {
    /// The extractor reads only the request's parts.
    #[derive(Debug)]
    pub enum ViaParts {}
    /// The extractor may consume the request (its body).
    #[derive(Debug)]
    pub enum ViaRequest {}
}

/// An extractor that reads the request without consuming it; any argument of a handler.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extractor that can come before the last argument",
    note = "only the last argument of a handler may read the body (`Json`, `Form`, `Multipart`, `String`, `Bytes`, `Environ`, `Input`)"
)]
pub trait FromRequestParts: Sized + Send {
    /// Extract the value.
    fn from_request_parts(
        request: &mut Request,
    ) -> impl Future<Output = Result<Self, Error>> + Send;
}

/// An extractor that may consume the request (read its body); only the last argument of a handler.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extractor",
    note = "extractors implement `FromRequestParts` or `FromRequest`: `Path`, `Query`, `Form`, `Json`, `State`, `HeaderMap`, `Cookies`, `Urls`, `Multipart`, `Environ`…"
)]
pub trait FromRequest<M = marker::ViaRequest>: Sized + Send {
    /// Extract the value.
    fn from_request(request: Request) -> impl Future<Output = Result<Self, Error>> + Send;
}

impl<T: FromRequestParts> FromRequest<marker::ViaParts> for T {
    async fn from_request(mut request: Request) -> Result<Self, Error> {
        T::from_request_parts(&mut request).await
    }
}

/// Typed route parameters: `Path<u32>` for one, `Path<(String, u32)>` by position, or a struct by
/// name. A value that does not parse is `400 Bad Request` naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts for Path<T> {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        T::deserialize(de::Params(&request.params))
            .map(Path)
            .map_err(|e| Error::bad_request(e.0))
    }
}

/// Deserialize urlencoded `bytes` into `T`, naming the field that did not fit.
fn from_urlencoded<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let deserializer = serde_html_form::Deserializer::from_bytes(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

/// The query string, deserialized (repeated keys fill a `Vec`). A mismatch is `400 Bad Request`
/// naming the field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts for Query<T> {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        from_urlencoded(request.environ.query_string())
            .map(Query)
            .map_err(|e| Error::bad_request(format!("query string: {e}")))
    }
}

/// A form (`application/x-www-form-urlencoded`), deserialized; for `GET` and `HEAD`, the query string.
///
/// Another content type is `415`, a body over the limit `413`, fields of the wrong shape `422` naming
/// the field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest for Form<T> {
    async fn from_request(mut request: Request) -> Result<Self, Error> {
        let method = request.environ.method();
        if method == Method::GET || method == Method::HEAD {
            return from_urlencoded(request.environ.query_string())
                .map(Form)
                .map_err(|e| Error::bad_request(format!("query string: {e}")));
        }
        if request.content_type().as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: application/x-www-form-urlencoded",
            ));
        }
        let body = request.read_body().await?;
        from_urlencoded(&body)
            .map(Form)
            .map_err(|e| Error::new(StatusCode::UNPROCESSABLE_ENTITY, e))
    }
}

/// A JSON body (`application/json` or `…+json`): `415` for another type, `400` for bad JSON, `422`
/// for valid JSON of the wrong shape (naming the field: `items[2].qty`), `413` over the limit.
impl<T: DeserializeOwned + Send> FromRequest for Json<T> {
    async fn from_request(mut request: Request) -> Result<Self, Error> {
        let is_json = request
            .content_type()
            .is_some_and(|ct| ct == "application/json" || ct.ends_with("+json"));
        if !is_json {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: application/json",
            ));
        }
        let body = request.read_body().await?;
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_data() {
                let at = if path == "." {
                    String::new()
                } else {
                    format!("{path}: ")
                };
                Error::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{at}{inner}"))
            } else {
                Error::bad_request(format!("malformed JSON: {inner}"))
            }
        })?;
        deserializer
            .end()
            .map_err(|e| Error::bad_request(format!("malformed JSON: {e}")))?;
        Ok(Json(value))
    }
}

/// The body as bytes (up to the body limit).
impl FromRequest for Bytes {
    async fn from_request(mut request: Request) -> Result<Self, Error> {
        request.read_body().await
    }
}

/// The body as UTF-8 text (up to the body limit); not UTF-8 is `400`.
impl FromRequest for String {
    async fn from_request(mut request: Request) -> Result<Self, Error> {
        let body = request.read_body().await?;
        String::from_utf8(body.to_vec())
            .map_err(|_| Error::bad_request("the request body is not UTF-8"))
    }
}

/// The raw environ, body included (last argument only).
impl FromRequest for Environ {
    async fn from_request(request: Request) -> Result<Self, Error> {
        Ok(request.environ)
    }
}

/// The body as a stream ([`Input::chunk`]) or, in a [`blocking`](crate::blocking) handler, a
/// [`std::io::Read`]er; no limit beyond the server's.
impl FromRequest for Input {
    async fn from_request(mut request: Request) -> Result<Self, Error> {
        Ok(request.environ.take_input())
    }
}

/// The request headers.
impl FromRequestParts for HeaderMap {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        Ok(request.environ.headers().clone())
    }
}

/// The request method.
impl FromRequestParts for Method {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        Ok(request.environ.method().clone())
    }
}

/// The request's cookies, parsed from every `Cookie` header; malformed pairs are skipped.
#[derive(Debug, Clone, Default)]
pub struct Cookies(Vec<(String, String)>);

impl Cookies {
    /// The value of the cookie `name` (the first, if sent twice).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every cookie, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

impl FromRequestParts for Cookies {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        let mut cookies = Vec::new();
        for header in request.environ.headers().get_all(http::header::COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            for cookie in cookie::Cookie::split_parse(text).flatten() {
                cookies.push((cookie.name().to_owned(), cookie.value().to_owned()));
            }
        }
        Ok(Cookies(cookies))
    }
}

/// Shared application state, registered with [`App::state`](crate::App::state). A type that was never
/// registered is a `500` naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromRequestParts for State<T> {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        request
            .shared
            .state
            .get::<T>()
            .cloned()
            .map(State)
            .ok_or_else(|| {
                Error::internal(format!(
                    "no state of type `{}`: register it with App::state",
                    std::any::type_name::<T>()
                ))
            })
    }
}

/// Reverse routing for this request: URLs of named routes under the application's mount point.
#[derive(Clone)]
pub struct Urls {
    shared: Arc<Shared>,
    script_name: String,
}

impl std::fmt::Debug for Urls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Urls")
            .field("script_name", &self.script_name)
            .finish_non_exhaustive()
    }
}

impl Urls {
    /// The URL of the route `name` (`"post"`, `"admin.index"`), its parameters filled in and
    /// percent-encoded, prefixed with `SCRIPT_NAME`; extra parameters go into the query string.
    ///
    /// ```
    /// use rgi_framework::{get, App, Urls};
    /// async fn show(urls: Urls) -> String {
    ///     urls.url_for("post", [("id", "a b"), ("page", "2")]).unwrap()
    /// }
    /// let app = App::new().route("/posts/{id}", get(show)).name("post").build().unwrap();
    /// let client = rgi::testing::TestClient::new(app);
    /// assert_eq!(client.get("/posts/1").send_blocking().text(), "/posts/a%20b?page=2");
    /// ```
    ///
    /// # Errors
    ///
    /// [`UrlError`] when no route has that name or a parameter is missing.
    pub fn url_for<K, V>(
        &self,
        name: &str,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Result<String, UrlError>
    where
        K: AsRef<str>,
        V: std::fmt::Display,
    {
        let params: Vec<(String, String)> = params
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.to_string()))
            .collect();
        self.shared.table.url_for(&self.script_name, name, &params)
    }

    /// The URL of the route `name`, which has no parameters.
    ///
    /// # Errors
    ///
    /// As [`url_for`](Urls::url_for).
    pub fn url(&self, name: &str) -> Result<String, UrlError> {
        self.shared.table.url_for(&self.script_name, name, &[])
    }

    /// The mount point (`SCRIPT_NAME`), decoded.
    pub fn script_name(&self) -> &str {
        &self.script_name
    }
}

impl FromRequestParts for Urls {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        Ok(request.urls())
    }
}
