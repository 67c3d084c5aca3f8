//! The tower bridges: an axum `Router` as an RGI application (`ServiceApp`), and RGI applications as
//! tower services inside axum (`AppService`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::{Extension, Router};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use rgi::convert::{ConnInfo, EnvironMeta};
use rgi::testing::TestClient;
use rgi::tower::{AppService, ServiceApp};
use rgi::{app_fn, Application, BoxError, Environ, Input, Scheme, StartResponse};
use tokio::sync::mpsc;
use tower::ServiceExt;

#[derive(Clone, Debug, PartialEq)]
struct Tenant(&'static str);

#[derive(Clone, Debug, PartialEq)]
struct Matched(&'static str);

fn router() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello from axum" }))
        .route("/echo", post(|body: axum::body::Body| async move { body }))
        .route(
            "/users",
            get(|uri: http::Uri| async move { format!("users; uri {uri}") }),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let seen = headers.get("x-request").cloned().unwrap_or(HeaderValue::from_static("none"));
                (
                    [("x-seen", seen), ("connection", HeaderValue::from_static("close"))],
                    Extension(Matched("/headers")),
                    "ok",
                )
            }),
        )
        .route(
            "/meta",
            get(|Extension(meta): Extension<EnvironMeta>, tenant: Option<Extension<Tenant>>| async move {
                format!(
                    "script {:?} scheme {} server {:?}:{} tenant {:?}",
                    String::from_utf8_lossy(&meta.script_name),
                    meta.scheme.as_str(),
                    String::from_utf8_lossy(&meta.server.0),
                    meta.server.1,
                    tenant.map(|Extension(t)| t.0),
                )
            }),
        )
}

/// Call an RGI application directly with `environ`.
async fn call<A: Application>(app: &A, environ: Environ) -> Result<rgi::Response, BoxError> {
    let start = StartResponse::new(environ.method());
    app.call(environ, start).await
}

async fn body_text(body: rgi::Body) -> String {
    String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

// ---------------------------------------------------------------------------------------------------
// ServiceApp: axum as an RGI application

#[tokio::test]
async fn an_axum_get_route_answers_through_service_app() {
    let client = TestClient::new(ServiceApp::new(router()));
    let response = client.get("/hello").send().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "hello from axum");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[tokio::test]
async fn an_unknown_route_falls_back_to_404() {
    let client = TestClient::new(ServiceApp::new(router()));
    assert_eq!(client.get("/nope").send().await.status(), 404);
    let with_fallback = router().fallback(|| async { (StatusCode::NOT_FOUND, "custom 404") });
    let response = TestClient::new(ServiceApp::new(with_fallback))
        .get("/nope")
        .send()
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.text(), "custom 404");
}

#[tokio::test]
async fn a_post_echo_route_gets_the_request_body() {
    let client = TestClient::new(ServiceApp::new(router()));
    let response = client.post("/echo").body("ping pong").send().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "ping pong");
}

/// A request body fed chunk by chunk through a channel.
struct ChannelSource(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelSource {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn the_request_body_streams_through_an_axum_echo_route_without_buffering() {
    let (tx, rx) = mpsc::channel(1);
    let environ = Environ::builder(Method::POST, "/echo")
        .input(Input::from_body(ChannelSource(rx)))
        .build();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        call(&ServiceApp::new(router()), environ),
    )
    .await
    .expect("the response waited for the whole request body")
    .unwrap();
    assert_eq!(response.status(), 200);
    let (_, _, mut body, _) = response.into_parts();
    for chunk in ["first", "second", "third"] {
        tx.send(Bytes::from_static(chunk.as_bytes())).await.unwrap();
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("chunk not passed through")
            .unwrap()
            .unwrap();
        assert_eq!(frame.into_data().unwrap(), chunk);
    }
    drop(tx);
    assert!(body.frame().await.is_none());
}

#[tokio::test]
async fn headers_and_extensions_cross_the_bridge_and_hop_by_hop_headers_do_not() {
    let app = ServiceApp::new(router());
    let environ = Environ::builder(Method::GET, "/headers")
        .header("X-Request", "42")
        .build();
    let response = call(&app, environ).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-seen"], "42");
    assert!(
        response.headers().get(header::CONNECTION).is_none(),
        "{:?}",
        response.headers()
    );
    assert_eq!(
        response.extensions().get::<Matched>(),
        Some(&Matched("/headers"))
    );
    let (_, _, body, _) = response.into_parts();
    assert_eq!(body_text(body).await, "ok");
}

#[tokio::test]
async fn environ_extensions_and_cgi_facts_reach_the_service() {
    // Middleware-ish: put an extension on the environ before the bridged service sees it.
    let inner = ServiceApp::new(router());
    let app = app_fn(move |mut environ: Environ, start| {
        let inner = inner.clone();
        async move {
            environ.extensions_mut().insert(Tenant("acme"));
            inner.call(environ, start).await
        }
    });
    let client = TestClient::new(app).with_conn(ConnInfo {
        local: Some(SocketAddr::from(([127, 0, 0, 1], 8443))),
        remote: Some(SocketAddr::from(([10, 1, 2, 3], 999))),
        scheme: Scheme::Https,
    });
    let response = client
        .get("/meta")
        .header("Host", "example.org")
        .send()
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text(),
        "script \"\" scheme https server \"example.org\":443 tenant Some(\"acme\")"
    );
}

#[tokio::test]
async fn a_mounted_service_routes_on_path_info() {
    let app = ServiceApp::new(router());
    let environ = Environ::builder(Method::GET, "/api/users?page=2")
        .mount("/api")
        .build();
    assert_eq!(environ.script_name(), b"/api");
    let response = call(&app, environ).await.unwrap();
    assert_eq!(response.status(), 200);
    let (_, _, body, _) = response.into_parts();
    assert_eq!(body_text(body).await, "users; uri /users?page=2");

    let environ = Environ::builder(Method::GET, "/api/meta")
        .mount("/api")
        .build();
    let (_, _, body, _) = call(&app, environ).await.unwrap().into_parts();
    assert!(body_text(body).await.starts_with("script \"/api\""));

    // Unmounted, the service sees the raw target.
    let environ = Environ::builder(Method::GET, "/users?page=%41").build();
    let (_, _, body, _) = call(&app, environ).await.unwrap().into_parts();
    assert_eq!(body_text(body).await, "users; uri /users?page=%41");

    // A mounted path that needs re-encoding.
    let environ = Environ::builder(Method::GET, "/api/hello%3F")
        .mount("/api")
        .build();
    let response = call(&app, environ).await.unwrap();
    assert_eq!(response.status(), 404, "`/hello?` is not `/hello`");
}

#[tokio::test]
async fn a_path_info_rewritten_by_middleware_is_what_the_service_routes_on() {
    let app = ServiceApp::new(router());
    let mut environ = Environ::builder(Method::GET, "/old-hello").build();
    environ.set_path("", "/hello").unwrap();
    let response = call(&app, environ).await.unwrap();
    assert_eq!(response.status(), 200);
    let (_, _, body, _) = response.into_parts();
    assert_eq!(body_text(body).await, "hello from axum");
}

#[tokio::test]
async fn a_cgi_environ_with_an_unusual_query_still_routes_on_its_path() {
    let app = ServiceApp::new(router());
    let environ = rgi::environ_from_cgi([
        (&b"REQUEST_METHOD"[..], &b"GET"[..]),
        (b"SCRIPT_NAME", b"/cgi-bin/app"),
        (b"PATH_INFO", b"/users"),
        (b"QUERY_STRING", b"q=a b\"c"),
    ])
    .unwrap();
    let response = call(&app, environ).await.unwrap();
    assert_eq!(response.status(), 200);
    let (_, _, body, _) = response.into_parts();
    assert!(body_text(body).await.starts_with("users; uri /users?q=a"));
}

#[tokio::test]
async fn a_head_request_through_service_app_has_no_body() {
    let response = TestClient::new(ServiceApp::new(router()))
        .head("/hello")
        .send()
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), "");
}

// ---------------------------------------------------------------------------------------------------
// AppService: RGI applications inside axum

fn rgi_app() -> impl Application + Clone {
    app_fn(|mut environ: Environ, start| async move {
        let body = environ.input_mut().read_to_bytes().await?;
        let text = format!(
            "{} {} path {:?} query {:?} body {:?} remote {:?} scheme {}",
            environ.method(),
            String::from_utf8_lossy(environ.script_name()),
            String::from_utf8_lossy(environ.path_info()),
            String::from_utf8_lossy(environ.query_string()),
            String::from_utf8_lossy(&body),
            environ
                .remote_addr()
                .map(|(a, p)| (String::from_utf8_lossy(a).into_owned(), p)),
            environ.url_scheme().as_str(),
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(start.respond(StatusCode::OK, headers, text)?)
    })
}

async fn text_of(response: axum::response::Response) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn an_rgi_app_serves_a_route_inside_an_axum_router() {
    let router: Router = Router::new()
        .route("/native", get(|| async { "native" }))
        .route_service("/rgi", AppService::new(rgi_app()));
    let response = router
        .clone()
        .oneshot(
            Request::get("/rgi?x=1")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(
        text_of(response).await,
        "GET  path \"/rgi\" query \"x=1\" body \"\" remote Some((\"127.0.0.1\", Some(0))) scheme http"
    );
    let response = router
        .oneshot(
            Request::get("/native")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(text_of(response).await, "native");
}

#[tokio::test]
async fn an_rgi_app_as_the_fallback_service_gets_every_other_request_with_its_body() {
    let router: Router = Router::new()
        .route("/native", get(|| async { "native" }))
        .fallback_service(AppService::new(rgi_app()));
    let request = Request::post("/anything/else")
        .header("content-length", "5")
        .body(axum::body::Body::from("hello"))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = text_of(response).await;
    assert!(
        text.starts_with("POST  path \"/anything/else\" query \"\" body \"hello\""),
        "{text}"
    );
}

#[tokio::test]
async fn conn_info_on_the_request_becomes_remote_addr_and_scheme() {
    let mut request = Request::get("/x").body(String::new()).unwrap();
    request.extensions_mut().insert(ConnInfo {
        local: Some(SocketAddr::from(([192, 0, 2, 1], 443))),
        remote: Some(SocketAddr::from(([198, 51, 100, 7], 61000))),
        scheme: Scheme::Https,
    });
    let response = AppService::new(rgi_app()).oneshot(request).await.unwrap();
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.ends_with("remote Some((\"198.51.100.7\", Some(61000))) scheme https"),
        "{text}"
    );
}

#[tokio::test]
async fn an_app_error_through_app_service_is_a_500() {
    let app = app_fn(|_, _start| async move { Err::<rgi::Response, BoxError>("boom".into()) });
    let response = AppService::new(app)
        .oneshot(Request::get("/").body(String::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_blocking_app_inside_app_service_does_not_block_other_requests() {
    let app = rgi::blocking(|environ, start| {
        if environ.path_info() == b"/slow" {
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(start.respond(StatusCode::OK, headers, environ.path_info().to_vec())?)
    });
    let router: Router = Router::new().fallback_service(AppService::new(app));
    let started = Instant::now();
    let done = Arc::new(std::sync::Mutex::new(Vec::new()));
    let request = |path: &'static str| {
        let router = router.clone();
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let response = router
                .oneshot(Request::get(path).body(axum::body::Body::empty()).unwrap())
                .await
                .unwrap();
            let text = text_of(response).await;
            done.lock().unwrap().push((text, started.elapsed()));
        })
    };
    let slow = request("/slow");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let fast = request("/fast");
    fast.await.unwrap();
    slow.await.unwrap();
    let done = done.lock().unwrap().clone();
    // One worker thread: had the sleep run on it, the fast request could not have finished first.
    assert_eq!(done[0].0, "/fast", "the fast request waited: {done:?}");
    assert_eq!(done[1].0, "/slow");
    assert!(done[1].1 >= Duration::from_millis(200));
}
