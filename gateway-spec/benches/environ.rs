//! Hot-path micro-benchmarks: building an environ from an HTTP request and from CGI variables, a
//! hello-world application call, and what one layer around it costs (an RGI closure layer, a tower-http
//! layer through `TowerLayer`, and the same tower-http layer through a full http round trip of the
//! environ). Run with `cargo bench -p rgi`.

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use rgi::convert::{self, ConnInfo, InputLimits};
use rgi::tower::{AppService, ServiceApp};
use rgi::{Application, ApplicationExt, Environ, Reply, ServerInfo, StartResponse};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_layer::Layer;

struct Hello;

impl Application for Hello {
    async fn call(&self, _environ: Environ, start: StartResponse) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(start.respond(StatusCode::OK, headers, "Hello World!\n")?)
    }
}

fn request() -> http::Request<http_body_util::Empty<bytes::Bytes>> {
    http::Request::get("/hello/world?x=1&y=2")
        .header("host", "127.0.0.1:8000")
        .header("user-agent", "wrk/4.2")
        .header("accept", "*/*")
        .header("accept-encoding", "gzip")
        .body(http_body_util::Empty::new())
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let server = Arc::new(ServerInfo::default());
    let conn = ConnInfo::default();
    c.bench_function("environ_from_request", |b| {
        b.iter_batched(
            request,
            |req| {
                black_box(
                    convert::environ_from_request(req, &conn, &server, InputLimits::default())
                        .expect("a valid request"),
                )
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let vars: Vec<(&[u8], &[u8])> = vec![
        (b"REQUEST_METHOD", b"GET"),
        (b"SCRIPT_NAME", b""),
        (b"PATH_INFO", b"/hello/world"),
        (b"QUERY_STRING", b"x=1&y=2"),
        (b"REQUEST_URI", b"/hello/world?x=1&y=2"),
        (b"SERVER_NAME", b"127.0.0.1"),
        (b"SERVER_PORT", b"8000"),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"REMOTE_ADDR", b"127.0.0.1"),
        (b"REMOTE_PORT", b"54321"),
        (b"HTTP_HOST", b"127.0.0.1:8000"),
        (b"HTTP_USER_AGENT", b"wrk/4.2"),
        (b"HTTP_ACCEPT", b"*/*"),
    ];
    c.bench_function("environ_from_cgi", |b| {
        b.iter(|| black_box(rgi::environ_from_cgi(vars.iter().copied()).unwrap()))
    });
    c.bench_function("hello_call_http", |b| {
        b.iter_batched(
            request,
            |req| {
                let environ =
                    convert::environ_from_request(req, &conn, &server, InputLimits::default())
                        .expect("a valid request");
                black_box(rgi::block_on(convert::call_app(&Hello, environ)))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let set_header = || {
        SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        )
    };
    let layered: Vec<(&str, rgi::BoxApp)> = vec![
        (
            "hello_call_http_rgi_layer",
            Hello
                .layer(rgi::middleware::map_response(|mut r: rgi::Response| {
                    r.headers_mut()
                        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                    r
                }))
                .boxed(),
        ),
        (
            "hello_call_http_tower_layer",
            Hello.tower_layer(set_header()).boxed(),
        ),
        (
            "hello_call_http_tower_layer_full_bridge",
            ServiceApp::new(set_header().layer(AppService::new(Hello))).boxed(),
        ),
        ("hello_call_http_boxed", Hello.boxed()),
    ];
    for (name, app) in layered {
        c.bench_function(name, |b| {
            b.iter_batched(
                request,
                |req| {
                    let environ =
                        convert::environ_from_request(req, &conn, &server, InputLimits::default())
                            .expect("a valid request");
                    black_box(rgi::block_on(convert::call_app(&app, environ)))
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
}

// `criterion_group!` defines an undocumented `pub fn`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(environ, benches);
}
use group::environ;
criterion_main!(environ);
