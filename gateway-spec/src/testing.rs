//! An in-process test client: build a request, call an application, inspect the response. No socket.
//!
//! The environ is built by the same code as the RGI HTTP server's
//! ([`environ_from_request`](crate::convert::environ_from_request)), so an application sees the same
//! environ here as behind a real server, apart from server-specific keys (`SERVER_SOFTWARE`,
//! `REMOTE_PORT`, `rgi.multithread`…).
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use rgi::testing::TestClient;
//!
//! let app = rgi::app_fn(|mut environ, start| async move {
//!     let body = environ.input_mut().read_to_bytes().await?;
//!     Ok(start.respond(StatusCode::CREATED, HeaderMap::new(), body)?)
//! });
//! let client = TestClient::new(app);
//! let response = client.post("/items").header("Content-Type", "text/plain").body("pear").send_blocking();
//! assert_eq!(response.status(), StatusCode::CREATED);
//! assert_eq!(response.text(), "pear");
//! ```

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body::Body as _;

use crate::convert::{self, ConnInfo, InputLimits};
use crate::environ::ServerInfo;
use crate::errors::Captured;
use crate::{Application, Body, Errors};

/// Calls an application in-process; see the [module docs](self).
#[derive(Debug)]
pub struct TestClient<A> {
    app: Arc<A>,
    server: Arc<ServerInfo>,
    captured: Captured,
    conn: ConnInfo,
}

impl<A> Clone for TestClient<A> {
    fn clone(&self) -> Self {
        TestClient {
            app: Arc::clone(&self.app),
            server: Arc::clone(&self.server),
            captured: self.captured.clone(),
            conn: self.conn,
        }
    }
}

impl<A: Application> TestClient<A> {
    /// A client for `app`. `rgi.errors` is captured (see [`errors`](TestClient::errors)); blocking
    /// applications run inline.
    pub fn new(app: A) -> Self {
        let (errors, captured) = Errors::capture();
        let server = ServerInfo {
            software: concat!("rgi-test/", env!("CARGO_PKG_VERSION")).into(),
            errors,
            ..ServerInfo::default()
        };
        TestClient {
            app: Arc::new(app),
            server: Arc::new(server),
            captured,
            conn: ConnInfo::default(),
        }
    }

    /// Use these connection facts (addresses, scheme) for every request.
    pub fn with_conn(mut self, conn: ConnInfo) -> Self {
        self.conn = conn;
        self
    }

    /// Lines the application wrote to `rgi.errors` so far.
    pub fn errors(&self) -> Vec<String> {
        self.captured.lines()
    }

    /// Start a request.
    pub fn request(&self, method: Method, uri: &str) -> TestRequest<A> {
        TestRequest {
            client: self.clone(),
            builder: http::Request::builder().method(method).uri(uri),
            body: Body::empty(),
            chunked: false,
        }
    }

    /// Start a GET request.
    pub fn get(&self, uri: &str) -> TestRequest<A> {
        self.request(Method::GET, uri)
    }

    /// Start a HEAD request.
    pub fn head(&self, uri: &str) -> TestRequest<A> {
        self.request(Method::HEAD, uri)
    }

    /// Start a POST request.
    pub fn post(&self, uri: &str) -> TestRequest<A> {
        self.request(Method::POST, uri)
    }

    /// Start a PUT request.
    pub fn put(&self, uri: &str) -> TestRequest<A> {
        self.request(Method::PUT, uri)
    }

    /// Start a DELETE request.
    pub fn delete(&self, uri: &str) -> TestRequest<A> {
        self.request(Method::DELETE, uri)
    }
}

/// A request being built by a [`TestClient`].
#[derive(Debug)]
#[must_use = "a request does nothing until sent"]
pub struct TestRequest<A> {
    client: TestClient<A>,
    builder: http::request::Builder,
    body: Body,
    chunked: bool,
}

impl<A: Application> TestRequest<A> {
    /// Add a header. Invalid names or values make [`send`](TestRequest::send) panic with the reason.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.builder = self.builder.header(name, value);
        self
    }

    /// The request body; `Content-Length` is set from it.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Body::full(body.into());
        self.chunked = false;
        self
    }

    /// A streamed request body of unknown length (as a chunked upload).
    pub fn body_stream(mut self, body: Body) -> Self {
        self.body = body;
        self.chunked = true;
        self
    }

    /// Send the request; the whole response body is collected.
    ///
    /// # Panics
    ///
    /// When the request given to the builder is invalid (a bad header name, a bad URI), or the response
    /// body fails: both are bugs in the test.
    pub async fn send(self) -> TestResponse {
        let TestRequest {
            client,
            mut builder,
            body,
            chunked,
        } = self;
        if !chunked {
            if let Some(len) = body.exact_len() {
                if len > 0 || builder.method_ref() != Some(&Method::GET) {
                    builder = builder.header(http::header::CONTENT_LENGTH, len);
                }
            }
        }
        let request = builder
            .body(body)
            .expect("rgi::testing: invalid test request");
        // An invalid `Content-Length` is answered as the HTTP server answers it: 400.
        let response = match convert::environ_from_request(
            request,
            &client.conn,
            &client.server,
            InputLimits::default(),
        ) {
            Ok(environ) => convert::call_app(&*client.app, environ).await,
            Err(invalid) => convert::error_response(&invalid.into()),
        };
        let (parts, mut body) = response.into_parts();
        let mut collected = Vec::new();
        let mut chunks = 0;
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.expect("rgi::testing: response body failed");
            if let Ok(data) = frame.into_data() {
                chunks += usize::from(!data.is_empty());
                collected.extend_from_slice(&data);
            }
        }
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body: Bytes::from(collected),
            chunks,
        }
    }

    /// Send the request from synchronous code (the application must not need an async runtime).
    ///
    /// # Panics
    ///
    /// As [`send`](TestRequest::send).
    pub fn send_blocking(self) -> TestResponse {
        crate::block_on(self.send())
    }
}

/// A response collected by a [`TestClient`].
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    chunks: usize,
}

impl TestResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// How many non-empty data chunks the body arrived in.
    pub fn chunks(&self) -> usize {
        self.chunks
    }
}
