//! Response bodies (kinds, files, channels, closing) and `StartResponse` / `Response` rules.

use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use rgi::testing::TestClient;
use rgi::{
    BlockingJob, Body, BodyKind, BoxError, Executor, Overloaded, ResponseError, StartResponse,
};

async fn collect(body: Body) -> Result<Bytes, BoxError> {
    body.collect().await.map(|c| c.to_bytes())
}

/// A file under the temp dir, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &[u8]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "rgi-test-{}-{}-{}",
            std::process::id(),
            tag,
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(contents).unwrap();
        TempFile(path)
    }

    fn open(&self) -> std::fs::File {
        std::fs::File::open(&self.0).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn every_body_kind_knows_its_exact_length_when_it_can() {
    assert_eq!(Body::empty().exact_len(), Some(0));
    assert_eq!(Body::from(()).exact_len(), Some(0));
    assert_eq!(Body::from("hello").exact_len(), Some(5));
    assert_eq!(Body::from(String::from("hi")).exact_len(), Some(2));
    assert_eq!(Body::from(vec![1u8, 2, 3]).exact_len(), Some(3));
    assert_eq!(Body::from(Bytes::from_static(b"abcd")).exact_len(), Some(4));
    assert_eq!(Body::from(&b"xy"[..]).exact_len(), Some(2));
    assert_eq!(Body::full("").exact_len(), Some(0));
    assert!(matches!(Body::full("").into_kind(), BodyKind::Empty));
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>("a")]);
    assert_eq!(Body::from_stream(stream).exact_len(), None);
    let (_tx, body) = Body::channel(1);
    assert_eq!(body.exact_len(), None);
    // An http body's exact size hint is kept.
    let full = http_body_util::Full::new(Bytes::from_static(b"123"));
    assert_eq!(Body::from_http_body(full).exact_len(), Some(3));
    let file = TempFile::new("len", b"0123456789");
    assert_eq!(Body::file(file.open()).unwrap().exact_len(), Some(10));
    assert_eq!(Body::file_range(file.open(), 2, 5).exact_len(), Some(5));
}

#[test]
fn into_kind_takes_a_body_apart() {
    assert!(matches!(Body::empty().into_kind(), BodyKind::Empty));
    assert!(matches!(Body::from("x").into_kind(), BodyKind::Full(b) if b == "x"));
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>("a")]);
    assert!(matches!(
        Body::from_stream(stream).into_kind(),
        BodyKind::Stream(_)
    ));
    let file = TempFile::new("kind", b"abc");
    match Body::file_range(file.open(), 1, 2).into_kind() {
        BodyKind::File(f) => {
            assert_eq!((f.offset(), f.len(), f.is_empty()), (1, 2, false));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_file_body_and_a_file_range_read_back_correctly() {
    let contents: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let file = TempFile::new("file", &contents);
    assert_eq!(
        collect(Body::file(file.open()).unwrap()).await.unwrap(),
        contents
    );
    let range = collect(Body::file_range(file.open(), 70_000, 100_000))
        .await
        .unwrap();
    assert_eq!(range, contents[70_000..170_000]);
    assert_eq!(
        collect(Body::file_range(file.open(), 5, 0)).await.unwrap(),
        ""
    );
    // The end of the file.
    let tail = collect(Body::file_range(file.open(), 199_990, 10))
        .await
        .unwrap();
    assert_eq!(tail, contents[199_990..]);
}

#[tokio::test]
async fn a_file_shorter_than_its_range_is_an_error_not_a_short_body() {
    let file = TempFile::new("short", b"abc");
    let err = collect(Body::file_range(file.open(), 0, 10))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("shorter"), "{err}");
}

#[test]
fn a_file_body_through_the_test_client_sets_no_surprises() {
    let file = Arc::new(TempFile::new("client", b"file contents"));
    let path = file.0.clone();
    let app = rgi::blocking(move |_, start| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let body = Body::file(std::fs::File::open(&path)?)?;
        Ok(start.respond(StatusCode::OK, headers, body)?)
    });
    let response = TestClient::new(app).get("/").send_blocking();
    assert_eq!(response.text(), "file contents");
    drop(file);
}

#[tokio::test]
async fn a_channel_body_streams_what_the_sender_sends() {
    let (mut tx, mut body) = Body::channel(1);
    let producer = tokio::spawn(async move {
        for i in 0..5 {
            tx.send(format!("chunk {i};")).await.unwrap();
        }
    });
    let mut got = Vec::new();
    while let Some(frame) = body.frame().await {
        got.push(frame.unwrap().into_data().unwrap());
    }
    producer.await.unwrap();
    assert_eq!(got.len(), 5, "each send arrives as its own chunk");
    assert_eq!(got.concat(), b"chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;");
}

#[test]
fn a_channel_body_can_be_fed_from_a_blocking_thread() {
    let (mut tx, body) = Body::channel(2);
    let t = std::thread::spawn(move || {
        for i in 0..100 {
            tx.blocking_send(format!("{i},")).unwrap();
        }
    });
    let all = rgi::block_on(collect(body)).unwrap();
    t.join().unwrap();
    let expected: String = (0..100).map(|i| format!("{i},")).collect();
    assert_eq!(all, expected.as_bytes());
}

#[tokio::test]
async fn aborting_a_channel_body_surfaces_an_error() {
    let (mut tx, body) = Body::channel(4);
    tx.send("partial").await.unwrap();
    tx.abort("database went away");
    let err = collect(body).await.unwrap_err();
    assert!(err.to_string().contains("database went away"), "{err}");
}

#[tokio::test]
async fn aborting_a_channel_body_with_a_full_buffer_still_surfaces_an_error() {
    // The buffer holds one chunk; it is full when abort is called. A clean end here would let a client
    // take the truncated body for a whole one.
    let (mut tx, mut body) = Body::channel(1);
    tx.send("first").await.unwrap();
    tx.abort("producer failed");
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first");
    let next = body.frame().await;
    match next {
        Some(Err(e)) => assert!(e.to_string().contains("producer failed"), "{e}"),
        other => panic!("expected the abort error, got {other:?}"),
    }
}

#[tokio::test]
async fn dropping_the_sender_ends_the_body_normally() {
    let (mut tx, body) = Body::channel(4);
    tx.send("all").await.unwrap();
    drop(tx);
    assert_eq!(collect(body).await.unwrap(), "all");
}

#[tokio::test]
async fn the_sender_learns_that_the_body_was_dropped() {
    let (mut tx, body) = Body::channel(1);
    drop(body);
    assert_eq!(tx.send("x").await, Err(rgi::BodyClosed));
}

/// A stream of chunks that counts its drops.
struct Guarded {
    items: std::vec::IntoIter<Result<Bytes, std::io::Error>>,
    dropped: Arc<AtomicUsize>,
}

impl Stream for Guarded {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.items.next())
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn guarded(items: Vec<Result<&'static str, &'static str>>) -> (Body, Arc<AtomicUsize>) {
    let dropped = Arc::new(AtomicUsize::new(0));
    let items: Vec<_> = items
        .into_iter()
        .map(|r| r.map(Bytes::from).map_err(std::io::Error::other))
        .collect();
    let body = Body::from_stream(Guarded {
        items: items.into_iter(),
        dropped: Arc::clone(&dropped),
    });
    (body, dropped)
}

#[tokio::test]
async fn dropping_a_body_closes_its_stream_after_success() {
    let (body, dropped) = guarded(vec![Ok("a"), Ok("b")]);
    assert_eq!(collect(body).await.unwrap(), "ab");
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropping_a_body_closes_its_stream_after_an_error() {
    let (body, dropped) = guarded(vec![Ok("a"), Err("boom"), Ok("never")]);
    assert!(collect(body).await.is_err());
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[test]
fn dropping_an_unpolled_body_closes_its_stream_like_a_client_disconnect() {
    let (body, dropped) = guarded(vec![Ok("a")]);
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    drop(body);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);

    // And through a Response being dropped.
    let (body, dropped) = guarded(vec![Ok("a")]);
    let response = StartResponse::new(&Method::GET)
        .respond(StatusCode::OK, HeaderMap::new(), body)
        .unwrap();
    drop(response);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[test]
fn a_head_response_drops_the_body_at_once() {
    let (body, dropped) = guarded(vec![Ok("a")]);
    let response = StartResponse::new(&Method::HEAD)
        .respond(StatusCode::OK, HeaderMap::new(), body)
        .unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert!(response.is_head());
    assert_eq!(response.body().exact_len(), Some(0));
    // No Content-Length: the stream's length was unknown.
    assert!(response.headers().get(header::CONTENT_LENGTH).is_none());
}

#[test]
fn start_response_rejects_informational_statuses() {
    for code in [100, 101, 103, 199] {
        let status = StatusCode::from_u16(code).unwrap();
        let err = StartResponse::new(&Method::GET)
            .respond(status, HeaderMap::new(), ())
            .unwrap_err();
        assert_eq!(err, ResponseError::InformationalStatus(status));
    }
    for code in [200, 204, 304, 404, 500, 599] {
        let status = StatusCode::from_u16(code).unwrap();
        assert!(StartResponse::new(&Method::GET)
            .respond(status, HeaderMap::new(), ())
            .is_ok());
    }
}

#[test]
fn start_response_rejects_every_hop_by_hop_header() {
    let mut names: Vec<&str> = rgi::HOP_BY_HOP.to_vec();
    names.push("trailers");
    for name in names {
        for spelled in [name.to_owned(), name.to_ascii_uppercase()] {
            let header = HeaderName::from_bytes(spelled.as_bytes()).unwrap();
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            headers.insert(header.clone(), HeaderValue::from_static("x"));
            let err = StartResponse::new(&Method::GET)
                .respond(StatusCode::OK, headers, "x")
                .unwrap_err();
            assert_eq!(
                err,
                ResponseError::HopByHopHeader(header.clone()),
                "{spelled}"
            );
            assert!(rgi::is_hop_by_hop(&header));
        }
    }
    assert!(!rgi::is_hop_by_hop(&header::CONTENT_LENGTH));
    assert!(!rgi::is_hop_by_hop(&header::SET_COOKIE));
}

#[test]
fn start_response_rejects_a_status_header() {
    let mut headers = HeaderMap::new();
    headers.insert("Status", HeaderValue::from_static("404 Not Found"));
    let err = StartResponse::new(&Method::GET)
        .respond(StatusCode::OK, headers, ())
        .unwrap_err();
    assert_eq!(err, ResponseError::StatusHeader);
    assert!(!err.to_string().is_empty());
}

#[test]
fn head_drops_the_body_and_sets_content_length_from_its_exact_length() {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let response = StartResponse::new(&Method::HEAD)
        .respond(StatusCode::OK, headers, "twelve bytes")
        .unwrap();
    assert_eq!(response.headers()[header::CONTENT_LENGTH], "12");
    assert_eq!(response.body().exact_len(), Some(0));

    // An explicit Content-Length is kept.
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
    let response = StartResponse::new(&Method::HEAD)
        .respond(StatusCode::OK, headers, "abc")
        .unwrap();
    assert_eq!(response.headers()[header::CONTENT_LENGTH], "99");

    // Not on statuses without a body.
    let response = StartResponse::new(&Method::HEAD)
        .respond(StatusCode::NOT_MODIFIED, HeaderMap::new(), "abc")
        .unwrap();
    assert!(response.headers().get(header::CONTENT_LENGTH).is_none());

    // GET keeps its body and sets no Content-Length itself.
    let response = StartResponse::new(&Method::GET)
        .respond(StatusCode::OK, HeaderMap::new(), "abc")
        .unwrap();
    assert_eq!(response.body().exact_len(), Some(3));
    assert!(response.headers().get(header::CONTENT_LENGTH).is_none());

    // map_body on a HEAD response keeps it empty.
    let response = StartResponse::new(&Method::HEAD)
        .respond(StatusCode::OK, HeaderMap::new(), ())
        .unwrap()
        .map_body(|_| Body::from("sneaky"));
    assert_eq!(response.body().exact_len(), Some(0));
}

#[test]
fn head_through_the_test_client_has_no_body_but_a_length() {
    let app = rgi::app_fn(|_, start| async move {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(start.respond(StatusCode::OK, headers, "hello")?)
    });
    let response = TestClient::new(app).head("/").send_blocking();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), "");
    assert_eq!(response.header("content-length"), Some("5"));
}

#[test]
fn discard_lets_the_app_respond_anew() {
    let (body, dropped) = guarded(vec![Ok("half a page")]);
    let first = StartResponse::new(&Method::GET)
        .respond(StatusCode::OK, HeaderMap::new(), body)
        .unwrap();
    let start = first.discard();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the first body is dropped"
    );
    let second = start
        .respond(StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), "sorry")
        .unwrap();
    assert_eq!(second.status(), 500);
    assert!(!second.is_head());

    // A HEAD start stays HEAD after discard.
    let head = StartResponse::new(&Method::HEAD)
        .respond(StatusCode::OK, HeaderMap::new(), ())
        .unwrap();
    let again = head
        .discard()
        .respond(StatusCode::OK, HeaderMap::new(), "body")
        .unwrap();
    assert!(again.is_head());
    assert_eq!(again.body().exact_len(), Some(0));
}

#[test]
fn response_parts_can_be_changed_by_middleware() {
    let mut response = StartResponse::new(&Method::GET)
        .respond(StatusCode::OK, HeaderMap::new(), "a")
        .unwrap();
    *response.status_mut() = StatusCode::CREATED;
    response
        .headers_mut()
        .insert("x-mw", HeaderValue::from_static("1"));
    response.extensions_mut().insert(7u8);
    response.set_body("bb");
    assert_eq!(response.extensions().get::<u8>(), Some(&7));
    let (status, headers, body, extensions) = response.into_parts();
    assert_eq!(status, 201);
    assert_eq!(headers["x-mw"], "1");
    assert_eq!(body.exact_len(), Some(2));
    assert_eq!(extensions.get::<u8>(), Some(&7));
}

#[test]
fn a_blocking_app_runs_and_reads_its_body() {
    let app = rgi::blocking(|mut environ, start| {
        let mut body = String::new();
        std::io::Read::read_to_string(environ.input_mut(), &mut body)?;
        Ok(start.respond(StatusCode::OK, HeaderMap::new(), body.to_uppercase())?)
    });
    let response = TestClient::new(app).post("/").body("shout").send_blocking();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "SHOUT");
}

/// An executor that refuses all work.
#[derive(Debug)]
struct Refuse(Arc<AtomicUsize>);

impl Executor for Refuse {
    fn spawn_blocking(&self, _job: BlockingJob) -> Result<(), Overloaded> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Overloaded)
    }
}

#[test]
fn an_overloaded_executor_gives_503() {
    let refused = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let ran2 = Arc::clone(&ran);
    let app = rgi::blocking(move |_, start| {
        ran2.fetch_add(1, Ordering::SeqCst);
        Ok(start.respond(StatusCode::OK, HeaderMap::new(), ())?)
    });
    let environ = rgi::Environ::builder(Method::GET, "/")
        .executor(Refuse(Arc::clone(&refused)))
        .build();
    let response = rgi::block_on(rgi::convert::call_app(&app, environ));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert_eq!(refused.load(Ordering::SeqCst), 1);
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    let err: BoxError = Box::new(Overloaded);
    assert_eq!(rgi::convert::error_status(&err), 503);
}

#[test]
fn a_blocking_job_that_panics_gives_500_with_the_inline_executor() {
    let app = rgi::blocking(|_, _start| -> rgi::Reply { panic!("bug in the app") });
    let client = TestClient::new(app);
    let response = client.get("/").send_blocking();
    assert_eq!(response.status(), 500);
    assert!(
        client
            .errors()
            .iter()
            .any(|l| l.contains("without a reply")),
        "{:?}",
        client.errors()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_job_that_panics_gives_500_on_the_tokio_pool() {
    let app = rgi::blocking(|_, _start| -> rgi::Reply { panic!("bug in the app") });
    let executor = rgi::TokioBlocking::current(4);
    let environ = rgi::Environ::builder(Method::GET, "/")
        .executor(executor.clone())
        .build();
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        rgi::convert::call_app(&app, environ),
    )
    .await
    .expect("a panicking job hung the request");
    assert_eq!(response.status(), 500);
    // The slot was released despite the panic.
    for _ in 0..100 {
        if executor.in_flight() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(executor.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_blocking_refuses_jobs_beyond_its_limit() {
    let executor = rgi::TokioBlocking::current(1);
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    executor
        .spawn_blocking(Box::new(move || {
            let _ = release_rx.recv();
        }))
        .unwrap();
    assert_eq!(executor.in_flight(), 1);
    assert_eq!(executor.spawn_blocking(Box::new(|| {})), Err(Overloaded));
    assert_eq!(executor.in_flight(), 1, "a refused job does not count");
    release_tx.send(()).unwrap();
    for _ in 0..100 {
        if executor.in_flight() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(executor.in_flight(), 0);
    executor.spawn_blocking(Box::new(|| {})).unwrap();
}

#[test]
fn an_app_error_is_a_500_and_is_logged() {
    let app =
        rgi::app_fn(
            |_, _start| async move { Err::<rgi::Response, BoxError>("no database".into()) },
        );
    let client = TestClient::new(app);
    let response = client.get("/x?y").send_blocking();
    assert_eq!(response.status(), 500);
    assert_eq!(response.text(), "500 Internal Server Error\n");
    assert!(
        !response.text().contains("database"),
        "the error itself stays out of the response"
    );
    assert!(
        client
            .errors()
            .iter()
            .any(|l| l.contains("no database") && l.contains("/x?y")),
        "{:?}",
        client.errors()
    );
}

#[test]
fn box_app_erases_the_type_and_still_responds() {
    let apps = [
        rgi::BoxApp::new(rgi::app_fn(|_, start| async move {
            Ok(start.respond(StatusCode::OK, HeaderMap::new(), "async")?)
        })),
        rgi::BoxApp::new(rgi::blocking(|_, start| {
            Ok(start.respond(StatusCode::OK, HeaderMap::new(), "blocking")?)
        })),
    ];
    let texts: Vec<String> = apps
        .iter()
        .map(|a| TestClient::new(a.clone()).get("/").send_blocking().text())
        .collect();
    assert_eq!(texts, ["async", "blocking"]);
}

#[tokio::test]
async fn a_body_taken_apart_by_kind_goes_back_together() {
    let file = TempFile::new("roundtrip", b"from a file");
    let bodies = [
        Body::empty(),
        Body::from("full"),
        stream_body(&["str", "eam"]),
        Body::file(file.open()).unwrap(),
    ];
    let mut texts = Vec::new();
    for body in bodies {
        let len = body.exact_len();
        let again = Body::from(body.into_kind());
        assert_eq!(again.exact_len(), len);
        texts.push(collect(again).await.unwrap());
    }
    assert_eq!(texts, ["", "full", "stream", "from a file"]);
}

fn stream_body(parts: &'static [&'static str]) -> Body {
    Body::from_stream(futures_util::stream::iter(
        parts.iter().map(|p| Ok::<_, std::io::Error>(*p)),
    ))
}

#[test]
fn statuses_beyond_599_and_proxy_connection_are_refused() {
    let start = StartResponse::new(&Method::GET);
    let err = start
        .respond(StatusCode::from_u16(600).unwrap(), HeaderMap::new(), ())
        .unwrap_err();
    assert!(matches!(err, rgi::ResponseError::StatusOutOfRange(_)));
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("proxy-connection"),
        HeaderValue::from_static("keep-alive"),
    );
    let err = StartResponse::new(&Method::GET)
        .respond(StatusCode::OK, headers, ())
        .unwrap_err();
    assert!(matches!(err, rgi::ResponseError::HopByHopHeader(_)));
}
