use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rgi::testing::TestClient;
use rgi::Body;
use tower_layer::Layer as _;

use super::*;

const ETAG: &str = "\"v1\"";
const MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

/// An app answering `status` with the given validators, a body and extra headers; counts the
/// bodies it made that were dropped (to check the 304 drops the body).
fn app(
    status: StatusCode,
    etag: Option<&'static str>,
    modified: Option<&'static str>,
    dropped: Arc<AtomicUsize>,
) -> impl Application {
    rgi::app_fn(move |_, start| {
        let dropped = Arc::clone(&dropped);
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("text/plain"));
            headers.insert("cache-control", HeaderValue::from_static("max-age=60"));
            headers.insert("set-cookie", HeaderValue::from_static("a=1"));
            if let Some(etag) = etag {
                headers.insert("etag", HeaderValue::from_static(etag));
            }
            if let Some(modified) = modified {
                headers.insert("last-modified", HeaderValue::from_static(modified));
            }
            struct Guard(Arc<AtomicUsize>);
            impl Drop for Guard {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let guard = Guard(dropped);
            let stream = futures_util::stream::iter(["the ", "body"]).map(move |chunk| {
                let _ = &guard;
                Ok::<_, std::io::Error>(chunk)
            });
            Ok(start.respond(status, headers, Body::from_stream(stream))?)
        }
    })
}

use futures_util::StreamExt as _;

#[test]
fn the_precondition_table() {
    // (method, request headers, response status, etag, last-modified, expected status)
    type Row = (
        Method,
        &'static [(&'static str, &'static str)],
        StatusCode,
        Option<&'static str>,
        Option<&'static str>,
        StatusCode,
    );
    let ok = StatusCode::OK;
    let nm = StatusCode::NOT_MODIFIED;
    let pf = StatusCode::PRECONDITION_FAILED;
    let get = Method::GET;
    let table: &[Row] = &[
        (get.clone(), &[], ok, Some(ETAG), None, ok),
        (
            get.clone(),
            &[("if-none-match", ETAG)],
            ok,
            Some(ETAG),
            None,
            nm,
        ),
        (
            get.clone(),
            &[("if-none-match", "W/\"v1\"")],
            ok,
            Some(ETAG),
            None,
            nm,
        ),
        (
            get.clone(),
            &[("if-none-match", "\"v0\", \"v1\"")],
            ok,
            Some(ETAG),
            None,
            nm,
        ),
        (
            get.clone(),
            &[("if-none-match", "*")],
            ok,
            Some(ETAG),
            None,
            nm,
        ),
        (get.clone(), &[("if-none-match", "*")], ok, None, None, nm),
        (
            get.clone(),
            &[("if-none-match", "\"v2\"")],
            ok,
            Some(ETAG),
            None,
            ok,
        ),
        (
            get.clone(),
            &[("if-none-match", "v1")],
            ok,
            Some(ETAG),
            None,
            ok,
        ),
        (
            get.clone(),
            &[("if-none-match", "\"v1")],
            ok,
            Some(ETAG),
            None,
            ok,
        ),
        (get.clone(), &[("if-none-match", ETAG)], ok, None, None, ok),
        (
            get.clone(),
            &[("if-none-match", ETAG)],
            StatusCode::NOT_FOUND,
            Some(ETAG),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::HEAD,
            &[("if-none-match", ETAG)],
            ok,
            Some(ETAG),
            None,
            nm,
        ),
        // Unsafe methods are the application's business (the layer runs after it acted).
        (
            Method::POST,
            &[("if-none-match", ETAG)],
            ok,
            Some(ETAG),
            None,
            ok,
        ),
        (
            Method::PUT,
            &[("if-match", "\"v2\"")],
            ok,
            Some(ETAG),
            None,
            ok,
        ),
        (
            get.clone(),
            &[("if-modified-since", MODIFIED)],
            ok,
            None,
            Some(MODIFIED),
            nm,
        ),
        (
            get.clone(),
            &[("if-modified-since", "Thu, 22 Oct 2015 07:28:00 GMT")],
            ok,
            None,
            Some(MODIFIED),
            nm,
        ),
        (
            get.clone(),
            &[("if-modified-since", "Tue, 20 Oct 2015 07:28:00 GMT")],
            ok,
            None,
            Some(MODIFIED),
            ok,
        ),
        (
            get.clone(),
            &[("if-modified-since", "yesterday")],
            ok,
            None,
            Some(MODIFIED),
            ok,
        ),
        (
            get.clone(),
            &[("if-modified-since", MODIFIED)],
            ok,
            None,
            None,
            ok,
        ),
        (
            get.clone(),
            &[("if-modified-since", MODIFIED)],
            ok,
            None,
            Some("garbage"),
            ok,
        ),
        // If-None-Match decides; If-Modified-Since is ignored then.
        (
            get.clone(),
            &[("if-none-match", "\"v2\""), ("if-modified-since", MODIFIED)],
            ok,
            Some(ETAG),
            Some(MODIFIED),
            ok,
        ),
        (get.clone(), &[("if-match", ETAG)], ok, Some(ETAG), None, ok),
        (get.clone(), &[("if-match", "*")], ok, None, None, ok),
        (
            get.clone(),
            &[("if-match", "\"v2\"")],
            ok,
            Some(ETAG),
            None,
            pf,
        ),
        (
            get.clone(),
            &[("if-match", "W/\"v1\"")],
            ok,
            Some(ETAG),
            None,
            pf,
        ),
        (
            get.clone(),
            &[("if-match", ETAG)],
            ok,
            Some("W/\"v1\""),
            None,
            pf,
        ),
        (get.clone(), &[("if-match", ETAG)], ok, None, None, pf),
        (
            get.clone(),
            &[("if-unmodified-since", MODIFIED)],
            ok,
            None,
            Some(MODIFIED),
            ok,
        ),
        (
            get.clone(),
            &[("if-unmodified-since", "Tue, 20 Oct 2015 07:28:00 GMT")],
            ok,
            None,
            Some(MODIFIED),
            pf,
        ),
        // If-Match decides; If-Unmodified-Since is ignored then.
        (
            get.clone(),
            &[
                ("if-match", ETAG),
                ("if-unmodified-since", "Tue, 20 Oct 2015 07:28:00 GMT"),
            ],
            ok,
            Some(ETAG),
            Some(MODIFIED),
            ok,
        ),
        (
            get.clone(),
            &[("if-match", ETAG), ("if-none-match", ETAG)],
            ok,
            Some(ETAG),
            None,
            nm,
        ),
    ];
    for (method, headers, status, etag, modified, want) in table {
        let dropped = Arc::new(AtomicUsize::new(0));
        let client = TestClient::new(ConditionalLayer::new().layer(app(
            *status,
            *etag,
            *modified,
            Arc::clone(&dropped),
        )));
        let mut request = client.request(method.clone(), "/");
        for (name, value) in *headers {
            request = request.header(*name, *value);
        }
        let response = request.send_blocking();
        let row = format!("{method} {headers:?} on {status} etag {etag:?} modified {modified:?}");
        assert_eq!(response.status(), *want, "{row}");
        match *want {
            StatusCode::NOT_MODIFIED => {
                assert!(response.body().is_empty(), "{row}");
                assert_eq!(response.header("content-type"), None, "{row}");
                assert_eq!(response.header("etag"), *etag, "{row}");
                assert_eq!(
                    response.header("cache-control"),
                    Some("max-age=60"),
                    "{row}"
                );
                assert_eq!(response.header("set-cookie"), Some("a=1"), "{row}");
            }
            StatusCode::PRECONDITION_FAILED => {
                assert_eq!(response.text(), "412 Precondition Failed\n", "{row}");
            }
            _ if *method != Method::HEAD => assert_eq!(response.text(), "the body", "{row}"),
            _ => {}
        }
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "{row}: the body is dropped once"
        );
    }
}

#[test]
fn extensions_survive_a_304() {
    #[derive(Clone, Debug, PartialEq)]
    struct Route(&'static str);
    let inner = rgi::app_fn(|_, start| async move {
        let mut headers = HeaderMap::new();
        headers.insert("etag", HeaderValue::from_static(ETAG));
        let mut response = start.respond(StatusCode::OK, headers, "x")?;
        response.extensions_mut().insert(Route("/x"));
        Ok(response)
    });
    /// Checks that the route survives whatever `Conditional` did.
    struct Outer<A>(Conditional<A>);
    impl<A: Application> Application for Outer<A> {
        async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
            let response = self.0.call(environ, start).await?;
            assert_eq!(response.extensions().get::<Route>(), Some(&Route("/x")));
            Ok(response)
        }
    }
    let outer = Outer(Conditional::new(inner));
    let response = TestClient::new(outer)
        .get("/")
        .header("if-none-match", ETAG)
        .send_blocking();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
}
