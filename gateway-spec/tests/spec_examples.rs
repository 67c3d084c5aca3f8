//! Every Rust example in `gateway-spec/SPEC.md`, compiled and run.
//!
//! Each section below is copied from SPEC.md (the section it comes from is named above it); the test
//! functions exercise it. When an example in SPEC.md changes, change it here too.

use std::convert::Infallible;
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use percent_encoding::{percent_encode, AsciiSet, CONTROLS};
use rgi::convert::{environ_from_request, ConnInfo, EnvironMeta, InputLimits};
use rgi::lint::{Check, LintLayer};
use rgi::testing::TestClient;
use rgi::{Application, Body, Environ, Input, Reply, ServerInfo, StartResponse};
use tower_layer::Layer;

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "Overview: the application side"
// ---------------------------------------------------------------------------------------------------

/// Greets the caller by the query string and says how many body bytes it sent.
struct Greeter;

impl Application for Greeter {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let who = match environ.query_string() {
            b"" => "world".to_owned(),
            q => String::from_utf8_lossy(q).into_owned(),
        };
        // rgi.input ends exactly at CONTENT_LENGTH; a short body is an error, not a short read.
        let posted = environ.input_mut().read_to_bytes().await?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let body = format!("Hello, {who}! You sent {} bytes.\n", posted.len());
        // Consuming `start` is the only way to make the Response: once, by construction.
        Ok(start.respond(StatusCode::OK, headers, body)?)
    }
}

#[test]
fn overview_application() {
    let client = TestClient::new(rgi::lint::Lint::new(Greeter));
    let response = client.post("/?rgi").body("abc").send_blocking();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text(), "Hello, rgi! You sent 3 bytes.\n");
    let head = client.head("/").send_blocking();
    assert_eq!(head.header("content-length"), Some("32"));
    assert!(head.body().is_empty());
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "Overview: the server side" (a CGI gateway)
// ---------------------------------------------------------------------------------------------------

/// Serve one request as a CGI/1.1 script: environ from `vars`, body from `stdin`, response to `out`.
fn run_cgi<A: Application>(
    app: &A,
    server: &std::sync::Arc<rgi::ServerInfo>,
    vars: &[(Vec<u8>, Vec<u8>)],
    stdin: impl Read,
    mut out: impl Write,
) -> std::io::Result<()> {
    let pairs = vars.iter().map(|(k, v)| (&k[..], &v[..]));
    let mut environ = rgi::environ_from_cgi(pairs).map_err(std::io::Error::other)?;
    environ.set_server_info(server.clone()); // rgi.run_once, Inline, rgi.errors to stderr
    let len = environ.content_length().unwrap_or(0);
    let mut body = Vec::new();
    stdin.take(len).read_to_end(&mut body)?; // never read past CONTENT_LENGTH
    environ.set_input(Input::from_bytes(body).with_content_length(len));
    let start = StartResponse::new(environ.method());
    let response = match rgi::block_on(app.call(environ, start)) {
        Ok(response) => rgi::convert::into_http_response(response),
        Err(error) => {
            server.errors.log(format_args!("rgi: {error}"));
            rgi::convert::error_response(&error)
        }
    };
    let (parts, mut body) = response.into_parts();
    write!(out, "Status: {}\r\n", parts.status)?;
    for (name, value) in &parts.headers {
        out.write_all(&[name.as_str().as_bytes(), b": ", value.as_bytes(), b"\r\n"].concat())?;
    }
    out.write_all(b"\r\n")?;
    while let Some(frame) = rgi::block_on(body.frame()) {
        if let Some(data) = frame.map_err(std::io::Error::other)?.data_ref() {
            out.write_all(data)?;
            out.flush()?; // each chunk as it is produced
        }
    }
    Ok(()) // dropping `body` closes it
}

/// The `main` of a CGI program: the process environment as bytes, stdin, stdout.
#[cfg(unix)]
fn cgi_main<A: Application>(app: A) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStringExt;
    let server = std::sync::Arc::new(rgi::ServerInfo {
        software: "example-cgi/1.0".into(),
        multiprocess: true,
        run_once: true,
        ..rgi::ServerInfo::default() // Inline executor, rgi.errors to stderr
    });
    let vars: Vec<_> = std::env::vars_os()
        .map(|(k, v)| (k.into_vec(), v.into_vec()))
        .collect();
    let (stdin, stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
    run_cgi(&app, &server, &vars, stdin, stdout)
}

#[test]
fn overview_cgi_gateway() {
    let vars: Vec<(Vec<u8>, Vec<u8>)> = [
        ("REQUEST_METHOD", "POST"),
        ("SCRIPT_NAME", "/cgi-bin/greet"),
        ("QUERY_STRING", "cgi"),
        ("CONTENT_LENGTH", "3"),
        ("SERVER_NAME", "example.org"),
        ("SERVER_PORT", "80"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    let server = Arc::new(ServerInfo {
        run_once: true,
        ..ServerInfo::default()
    });
    let mut out = Vec::new();
    run_cgi(&Greeter, &server, &vars, &b"abcdef"[..], &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("Status: 200 OK\r\n"), "{out}");
    assert!(
        out.ends_with("\r\n\r\nHello, cgi! You sent 3 bytes.\n"),
        "{out}"
    );

    // A short body is the application's error; the gateway answers 400.
    let mut out = Vec::new();
    run_cgi(&Greeter, &server, &vars, &b"ab"[..], &mut out).unwrap();
    #[cfg(unix)]
    let _never_called: fn(Greeter) -> std::io::Result<()> = cgi_main;
    assert!(String::from_utf8(out)
        .unwrap()
        .starts_with("Status: 400 Bad Request\r\n"));
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "Overview: the server side" (the core of an HTTP server)
// ---------------------------------------------------------------------------------------------------

/// The per-request core of an HTTP server: a parsed request in, a response to write out.
async fn handle<A, B>(
    app: &A,
    request: http::Request<B>,
    conn: &ConnInfo,
    server: &Arc<ServerInfo>,
) -> http::Response<Body>
where
    A: Application,
    B: http_body::Body + Send + 'static,
    B::Error: Into<rgi::BoxError>,
{
    let limits = InputLimits {
        max_body: Some(16 << 20),
    };
    let environ = match environ_from_request(request, conn, server, limits) {
        Ok(environ) => environ,
        // `Content-Length` is not a number, or its copies differ: 400.
        Err(invalid) => return rgi::convert::error_response(&invalid.into()),
    };
    let errors = environ.errors().clone();
    let start = StartResponse::new(environ.method());
    match app.call(environ, start).await {
        Ok(response) => {
            let known = response.body().exact_len();
            let frame_it = !response.is_head() && rgi::status_allows_body(response.status());
            let mut response = rgi::convert::into_http_response(response);
            if let (Some(len), true) = (known, frame_it) {
                let headers = response.headers_mut();
                headers.entry(CONTENT_LENGTH).or_insert(len.into());
            }
            response // the server adds Date, and chunked framing when no length is known
        }
        Err(error) => {
            errors.log(format_args!("rgi: application error: {error}"));
            rgi::convert::error_response(&error)
        }
    }
}

#[tokio::test]
async fn overview_http_server_core() {
    let server = Arc::new(ServerInfo {
        software: "example-server/1.0".into(),
        multithread: true,
        executor: Arc::new(rgi::TokioBlocking::current(1024)),
        ..ServerInfo::default()
    });
    let request = http::Request::post("/?http")
        .header("host", "example.org")
        .header("content-length", "2")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"hi")))
        .unwrap();
    let response = handle(&Greeter, request, &ConnInfo::default(), &server).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "31");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "Hello, http! You sent 2 bytes.\n");
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "Overview: middleware"
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RequestId(u64); // for the layers below (an extension) and the client (a header)

#[derive(Debug, Clone)]
struct Tag<A> {
    inner: A,
    next: Arc<AtomicU64>,
}

impl<A: Application> Application for Tag<A> {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let id = RequestId(self.next.fetch_add(1, Ordering::Relaxed));
        environ.extensions_mut().insert(id);
        let mut response = self.inner.call(environ, start).await?;
        // Only headers change on the way out: the body passes through untouched and still streams.
        let value = HeaderValue::from(id.0);
        response.headers_mut().insert("x-request-id", value);
        Ok(response)
    }
}

#[derive(Debug, Clone, Default)]
struct TagLayer {
    next: Arc<AtomicU64>, // shared by every application the layer wraps
}

impl<A> Layer<A> for TagLayer {
    type Service = Tag<A>;

    fn layer(&self, inner: A) -> Tag<A> {
        let next = Arc::clone(&self.next);
        Tag { inner, next }
    }
}

#[test]
fn overview_middleware() {
    let seen = rgi::app_fn(|environ, start| async move {
        let id = environ.extensions().get::<RequestId>().copied();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(start.respond(StatusCode::OK, headers, format!("{id:?}"))?)
    });
    let client = TestClient::new(TagLayer::default().layer(seen));
    assert_eq!(client.get("/").send_blocking().text(), "Some(RequestId(0))");
    let second = client.get("/").send_blocking();
    assert_eq!(second.header("x-request-id"), Some("1"));
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "Middleware" (composition with tower::ServiceBuilder)
// ---------------------------------------------------------------------------------------------------

#[test]
fn middleware_composition() {
    // Outermost first: Tag sees the request first and the response last.
    let lint = LintLayer::new();
    let report = lint.report();
    let app = tower::ServiceBuilder::new()
        .layer(TagLayer::default())
        .layer(lint)
        .service(Greeter);
    let response = TestClient::new(app).get("/?stack").send_blocking();
    assert_eq!(response.header("x-request-id"), Some("0"));
    assert!(report.violations().is_empty());
    assert_eq!(report.open_bodies(), 0);
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "Blocking applications"
// ---------------------------------------------------------------------------------------------------

fn line_counter() -> impl Application {
    rgi::blocking(|mut environ, start| {
        let mut lines = 0;
        for line in environ.input_mut().lines() {
            line?; // std::io::BufRead on rgi.input
            lines += 1;
        }
        std::thread::sleep(Duration::from_millis(5)); // allowed: this runs on the executor
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(start.respond(StatusCode::OK, headers, format!("{lines} lines\n"))?)
    })
}

fn ticker() -> impl Application {
    rgi::blocking(|_environ, start| {
        let (mut tx, body) = Body::channel(1);
        std::thread::spawn(move || {
            for i in 0..3 {
                if tx.blocking_send(format!("tick {i}\n")).is_err() {
                    return; // the body was dropped: the client went away
                }
            }
        });
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(start.respond(StatusCode::OK, headers, body)?)
    })
}

#[test]
fn blocking_applications() {
    let response = TestClient::new(line_counter())
        .post("/")
        .body("a\nb\nc\n")
        .send_blocking();
    assert_eq!(response.text(), "3 lines\n");
    let response = TestClient::new(ticker()).get("/").send_blocking();
    assert_eq!(response.text(), "tick 0\ntick 1\ntick 2\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn blocking_applications_on_a_pool() {
    let service = rgi::tower::AppService::new(line_counter());
    let request = http::Request::post("/")
        .header("content-length", "4")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"x\ny\n",
        )))
        .unwrap();
    let response = tower::ServiceExt::oneshot(service, request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "2 lines\n");
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "The response body" (streaming from async code)
// ---------------------------------------------------------------------------------------------------

fn events() -> impl Application {
    rgi::app_fn(|_environ, start| async move {
        let (mut tx, body) = Body::channel(1);
        tokio::spawn(async move {
            for i in 0..3 {
                if tx.send(format!("data: {i}\n\n")).await.is_err() {
                    return; // the client went away and the server dropped the body
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        Ok(start.respond(StatusCode::OK, headers, body)?)
    })
}

#[tokio::test]
async fn body_streaming() {
    let response = TestClient::new(events()).get("/").send().await;
    assert_eq!(response.chunks(), 3);
    assert_eq!(response.text(), "data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "start_response, by types" (changing one's mind: discard)
// ---------------------------------------------------------------------------------------------------

fn render(environ: &Environ) -> Result<String, std::fmt::Error> {
    match environ.path_info() {
        b"/broken" => Err(std::fmt::Error),
        _ => Ok("<p>fine</p>".to_owned()),
    }
}

fn page() -> impl Application {
    rgi::app_fn(|environ, start| async move {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        let response = start.respond(StatusCode::OK, headers, ())?;
        // Nothing has been sent while the application holds its Response.
        match render(&environ) {
            Ok(html) => Ok(response.map_body(|_| html.into())),
            Err(error) => {
                environ.errors().log(format_args!("render failed: {error}"));
                let mut headers = HeaderMap::new(); // no Cache-Control on the error page
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                let start = response.discard(); // drops the old body, returns the right to respond
                Ok(start.respond(StatusCode::INTERNAL_SERVER_ERROR, headers, "sorry\n")?)
            }
        }
    })
}

#[test]
fn start_response_discard() {
    let client = TestClient::new(page());
    let ok = client.get("/").send_blocking();
    assert_eq!(
        (ok.status(), ok.text().as_str()),
        (StatusCode::OK, "<p>fine</p>")
    );
    let broken = client.get("/broken").send_blocking();
    assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(broken.header("cache-control").is_none());
    assert_eq!(
        client.errors(),
        ["render failed: an error occurred when formatting an argument"]
    );
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "Bridges"
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn bridges() -> Result<(), rgi::EnvironError> {
    // A tower service as an RGI application, mounted below /api by a gateway.
    let service = tower::service_fn(|request: http::Request<Input>| async move {
        let meta = request.extensions().get::<EnvironMeta>().cloned();
        let mount = meta.map(|m| String::from_utf8_lossy(&m.script_name).into_owned());
        let text = format!("{} below {:?}", request.uri(), mount.unwrap_or_default());
        Ok::<_, Infallible>(http::Response::new(text))
    });
    let app = rgi::tower::ServiceApp::new(service);
    let mut environ = Environ::builder(Method::GET, "/api/items?page=2").build();
    environ.set_path("/api", "/items")?;
    let response = app
        .call(environ, StartResponse::new(&Method::GET))
        .await
        .unwrap();
    // The service saw "/items?page=2", mounted below "/api".
    let (_, _, body, _) = response.into_parts();
    let text = body.collect().await.unwrap().to_bytes();
    assert_eq!(text, "/items?page=2 below \"/api\"");

    // And back: an RGI application as a tower service.
    let service = rgi::tower::AppService::new(Greeter);
    let request = http::Request::get("/?tower").body(String::new()).unwrap();
    let response = tower::ServiceExt::oneshot(service, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "Gateway notes" (SCRIPT_NAME / PATH_INFO fix-ups)
// ---------------------------------------------------------------------------------------------------

/// Re-split `SCRIPT_NAME` + `PATH_INFO` at the configured mount point (`""` for none).
fn fix_up_paths(environ: &mut Environ, mount: &str) -> Result<(), rgi::EnvironError> {
    let mut path = [environ.script_name(), environ.path_info()].concat();
    if path.is_empty() {
        // Neither was sent (nginx's scgi_params): decode the path of the raw request target.
        let target = environ.request_uri().unwrap_or(b"/");
        let raw = target.split(|&c| c == b'?').next().unwrap_or_default();
        path = percent_encoding::percent_decode(raw).collect();
    }
    environ.set_path(Vec::new(), path)?;
    environ.mount(mount); // false, leaving SCRIPT_NAME "", when the path is outside the mount point
    Ok(())
}

fn from_pairs(pairs: &[(&str, &str)]) -> Environ {
    rgi::environ_from_cgi(pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()))).unwrap()
}

#[test]
fn gateway_fix_ups() {
    // nginx fastcgi_params: the whole path in SCRIPT_NAME, no PATH_INFO.
    let mut fastcgi = from_pairs(&[
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", "/app/users/7"),
        ("REQUEST_URI", "/app/users/7?x=1"),
        ("QUERY_STRING", "x=1"),
    ]);
    fix_up_paths(&mut fastcgi, "/app").unwrap();
    assert_eq!(
        (fastcgi.script_name(), fastcgi.path_info()),
        (&b"/app"[..], &b"/users/7"[..])
    );
    assert!(rgi::lint::check_environ(&fastcgi)
        .iter()
        .all(|v| v.check != Check::ScriptName && v.check != Check::RequestUriPath));

    // nginx uwsgi_params: PATH_INFO, no SCRIPT_NAME.
    let mut uwsgi = from_pairs(&[("REQUEST_METHOD", "GET"), ("PATH_INFO", "/app/users/7")]);
    fix_up_paths(&mut uwsgi, "/app/").unwrap();
    assert_eq!(
        (uwsgi.script_name(), uwsgi.path_info()),
        (&b"/app"[..], &b"/users/7"[..])
    );

    // nginx scgi_params: neither; the raw target decides.
    let mut scgi = from_pairs(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/app/a%20b?x")]);
    fix_up_paths(&mut scgi, "/app").unwrap();
    assert_eq!(
        (scgi.script_name(), scgi.path_info()),
        (&b"/app"[..], &b"/a b"[..])
    );

    // No mount point: everything is PATH_INFO. A path outside the mount point stays whole.
    let mut root = from_pairs(&[("REQUEST_METHOD", "GET"), ("SCRIPT_NAME", "/application")]);
    fix_up_paths(&mut root, "/app").unwrap();
    assert_eq!(
        (root.script_name(), root.path_info()),
        (&b""[..], &b"/application"[..])
    );
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "URL reconstruction"
// ---------------------------------------------------------------------------------------------------

/// Characters that must be escaped in a path (plus `%`, so decoded bytes round-trip).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The URL the client asked for, rebuilt from the environ (PEP 3333's algorithm).
fn request_url(environ: &Environ) -> String {
    let scheme = environ.url_scheme();
    let mut url = format!("{}://", scheme.as_str());
    match environ.get("HTTP_HOST") {
        Some(host) => url.push_str(&host.to_string_lossy()),
        None => {
            url.push_str(&String::from_utf8_lossy(environ.server_name()));
            if environ.server_port() != scheme.default_port() {
                url.push_str(&format!(":{}", environ.server_port()));
            }
        }
    }
    url.extend(percent_encode(environ.script_name(), PATH));
    url.extend(percent_encode(environ.path_info(), PATH));
    if !environ.query_string().is_empty() {
        url.push('?');
        url.push_str(&String::from_utf8_lossy(environ.query_string()));
    }
    url
}

#[test]
fn url_reconstruction() {
    let environ = Environ::builder(Method::GET, "/shop/caf%C3%A9%20menu?x=1")
        .header("Host", "example.org:8080")
        .mount("/shop")
        .build();
    assert_eq!(
        request_url(&environ),
        "http://example.org:8080/shop/caf%C3%A9%20menu?x=1"
    );
    let environ = Environ::builder(Method::GET, "/a")
        .server("example.org", 443)
        .scheme(rgi::Scheme::Https)
        .build();
    assert_eq!(request_url(&environ), "https://example.org/a");
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "Mounting"
// ---------------------------------------------------------------------------------------------------

/// Serves `inner` below `prefix`, and answers 404 elsewhere.
struct Mount<A> {
    prefix: &'static str,
    inner: A,
}

impl<A: Application> Application for Mount<A> {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        if environ.mount(self.prefix) {
            return self.inner.call(environ, start).await;
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(start.respond(StatusCode::NOT_FOUND, headers, "not found\n")?)
    }
}

#[test]
fn mounting() {
    let where_am_i = rgi::app_fn(|environ, start| async move {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let text = format!(
            "{} + {}",
            String::from_utf8_lossy(environ.script_name()),
            String::from_utf8_lossy(environ.path_info())
        );
        Ok(start.respond(StatusCode::OK, headers, text)?)
    });
    let blog = Mount {
        prefix: "/blog",
        inner: Mount {
            prefix: "/2026",
            inner: where_am_i,
        },
    };
    let client = TestClient::new(blog);
    assert_eq!(
        client.get("/blog/2026/rgi").send_blocking().text(),
        "/blog/2026 + /rgi"
    );
    let response = client.get("/blog/2026x").send_blocking();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "`start_response`, by types" (responding in one line)
// ---------------------------------------------------------------------------------------------------

fn helpers() -> impl Application {
    rgi::app_fn(|environ, start| async move {
        match (environ.method().as_str(), environ.path_info()) {
            ("GET", b"/") => start.html("<form method=post><button>go</button></form>"),
            ("POST", b"/") => start.see_other("/done"),
            ("GET", b"/done") => start
                .status(StatusCode::OK)
                .header("cache-control", "no-store")
                .text("done\n"),
            _ => start.error(StatusCode::NOT_FOUND),
        }
    })
}

#[test]
fn one_line_helpers_answer_the_form_flow() {
    let client = TestClient::new(rgi::lint::Lint::new(helpers()));
    assert_eq!(
        client.get("/").send_blocking().header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let r = client.post("/").send_blocking();
    assert_eq!(
        (r.status(), r.header("location")),
        (StatusCode::SEE_OTHER, Some("/done"))
    );
    assert_eq!(
        client.get("/done").send_blocking().header("cache-control"),
        Some("no-store")
    );
    assert_eq!(client.get("/x").send_blocking().status(), 404);
}

// ---------------------------------------------------------------------------------------------------
// SPEC.md, "Middleware rules" ([mw-spare])
// ---------------------------------------------------------------------------------------------------

fn shielded<A: Application>(inner: A) -> impl Application {
    use rgi::ApplicationExt;
    inner.layer(rgi::middleware::from_fn(
        |environ, start, next| async move {
            let spare = start.spare();
            match next.call(environ, start).await {
                Ok(response) => Ok(response),
                Err(_) => spare.error_with(StatusCode::SERVICE_UNAVAILABLE, "try again soon"),
            }
        },
    ))
}

#[test]
fn a_spare_answers_for_a_failed_inner_app() {
    let failing = rgi::app_fn(|_, _start| async move { Err("down".into()) });
    let r = TestClient::new(shielded(failing)).get("/").send_blocking();
    assert_eq!(
        (r.status(), r.text().as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "503 Service Unavailable: try again soon\n"
        )
    );
}
