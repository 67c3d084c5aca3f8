use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rgi::testing::{TestClient, TestResponse};
use rgi::Body;
use tokio::io::AsyncReadExt as _;
use tower_layer::Layer as _;

use super::*;

const PAGE_LEN: usize = 4000;

fn page() -> String {
    "<p>compress me, compress me</p>\n"
        .repeat(PAGE_LEN / 32 + 1)
        .split_at(PAGE_LEN)
        .0
        .to_owned()
}

/// An app answering `status` with `headers` and a full body of `body`.
fn app(
    status: StatusCode,
    headers: &'static [(&'static str, &'static str)],
    body: String,
) -> impl Application {
    rgi::app_fn(move |_, start| {
        let body = body.clone();
        async move {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(*name, HeaderValue::from_static(value));
            }
            Ok(start.respond(status, map, body)?)
        }
    })
}

fn decode(encoding: Option<&str>, bytes: &[u8]) -> Vec<u8> {
    rgi::block_on(async {
        let mut out = Vec::new();
        match encoding {
            Some("gzip") => GzipDecoder::new(bytes).read_to_end(&mut out).await,
            Some("br") => BrotliDecoder::new(bytes).read_to_end(&mut out).await,
            Some("zstd") => ZstdDecoder::new(bytes).read_to_end(&mut out).await,
            None => {
                out.extend_from_slice(bytes);
                Ok(bytes.len())
            }
            Some(other) => panic!("unexpected coding {other}"),
        }
        .expect("the body decodes");
        out
    })
}

fn get(client: &TestClient<impl Application>, accept: Option<&str>) -> TestResponse {
    let mut request = client.get("/");
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    request.send_blocking()
}

#[test]
fn each_coding_round_trips_and_q_values_choose() {
    let client = TestClient::new(CompressionLayer::new().layer(app(
        StatusCode::OK,
        &[("content-type", "text/html"), ("etag", "\"abc\"")],
        page(),
    )));
    let table: &[(Option<&str>, Option<&str>)] = &[
        (Some("gzip"), Some("gzip")),
        (Some("br"), Some("br")),
        (Some("zstd"), Some("zstd")),
        (Some("gzip, deflate, br, zstd"), Some("br")),
        (Some("gzip;q=1, br;q=0.8, zstd;q=0.9"), Some("gzip")),
        (Some("br;q=0, gzip;q=0.1"), Some("gzip")),
        (Some("*"), Some("br")),
        (Some("*;q=0"), None),
        (Some("identity"), None),
        (Some("deflate"), None),
        (Some("gzip;q=0"), None),
        (Some("identity;q=0"), None),
        (None, None),
    ];
    for (accept, encoding) in table {
        let response = get(&client, *accept);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.header("content-encoding"), *encoding, "{accept:?}");
        assert_eq!(
            response.header("vary"),
            Some("accept-encoding"),
            "{accept:?}"
        );
        assert_eq!(
            decode(*encoding, response.body()),
            page().as_bytes(),
            "{accept:?}"
        );
        if encoding.is_some() {
            assert!(
                response.body().len() < PAGE_LEN / 4,
                "{accept:?}: compressed"
            );
            assert_eq!(response.header("etag"), Some("W/\"abc\""), "{accept:?}");
            assert_eq!(response.header("content-length"), None);
        } else {
            assert_eq!(response.header("etag"), Some("\"abc\""), "{accept:?}");
        }
    }
}

#[test]
fn responses_left_alone() {
    let big = page();
    type Row = (
        &'static str,
        StatusCode,
        &'static [(&'static str, &'static str)],
        String,
    );
    let table: Vec<Row> = vec![
        (
            "small",
            StatusCode::OK,
            &[("content-type", "text/html")],
            "x".repeat(100),
        ),
        (
            "empty",
            StatusCode::OK,
            &[("content-type", "text/html")],
            String::new(),
        ),
        (
            "image",
            StatusCode::OK,
            &[("content-type", "image/png")],
            big.clone(),
        ),
        (
            "jpeg",
            StatusCode::OK,
            &[("content-type", "IMAGE/JPEG; q=1")],
            big.clone(),
        ),
        (
            "video",
            StatusCode::OK,
            &[("content-type", "video/mp4")],
            big.clone(),
        ),
        (
            "zip",
            StatusCode::OK,
            &[("content-type", "application/zip")],
            big.clone(),
        ),
        (
            "woff2",
            StatusCode::OK,
            &[("content-type", "font/woff2")],
            big.clone(),
        ),
        (
            "gzip file",
            StatusCode::OK,
            &[("content-type", "application/gzip")],
            big.clone(),
        ),
        (
            "encoded",
            StatusCode::OK,
            &[("content-type", "text/html"), ("content-encoding", "br")],
            big.clone(),
        ),
        (
            "no-transform",
            StatusCode::OK,
            &[("cache-control", "public, No-Transform")],
            big.clone(),
        ),
        ("no content", StatusCode::NO_CONTENT, &[], String::new()),
        (
            "not modified",
            StatusCode::NOT_MODIFIED,
            &[("etag", "\"x\"")],
            String::new(),
        ),
        (
            "partial",
            StatusCode::PARTIAL_CONTENT,
            &[("content-range", "bytes 0-3999/9000")],
            big.clone(),
        ),
    ];
    for (name, status, headers, body) in table {
        let expected = body.clone();
        let client = TestClient::new(CompressionLayer::new().layer(app(status, headers, body)));
        let response = get(&client, Some("gzip, br, zstd"));
        assert_eq!(response.status(), status, "{name}");
        let original_coding = headers
            .iter()
            .find(|(n, _)| *n == "content-encoding")
            .map(|(_, v)| *v);
        assert_eq!(
            response.header("content-encoding"),
            original_coding,
            "{name}"
        );
        assert_eq!(response.header("vary"), None, "{name}");
        assert_eq!(response.text(), expected, "{name}");
    }
}

#[test]
fn svg_is_compressed_and_the_minimum_is_configurable() {
    let svg = TestClient::new(CompressionLayer::new().layer(app(
        StatusCode::OK,
        &[("content-type", "image/svg+xml")],
        page(),
    )));
    assert_eq!(
        get(&svg, Some("gzip")).header("content-encoding"),
        Some("gzip")
    );
    let small = || {
        app(
            StatusCode::OK,
            &[("content-type", "text/plain")],
            "y".repeat(100),
        )
    };
    let default = TestClient::new(CompressionLayer::new().layer(small()));
    assert_eq!(get(&default, Some("gzip")).header("content-encoding"), None);
    let lowered = TestClient::new(CompressionLayer::new().min_size(10).layer(small()));
    let response = get(&lowered, Some("gzip"));
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(
        decode(Some("gzip"), response.body()),
        "y".repeat(100).as_bytes()
    );
    let only_gzip = TestClient::new(
        CompressionLayer::new()
            .encodings(&[Encoding::Gzip])
            .layer(app(StatusCode::OK, &[], page())),
    );
    assert_eq!(
        get(&only_gzip, Some("br, gzip;q=0.1")).header("content-encoding"),
        Some("gzip")
    );
    assert_eq!(get(&only_gzip, Some("br")).header("content-encoding"), None);
}

#[test]
fn head_requests_are_not_compressed() {
    let client = TestClient::new(CompressionLayer::new().layer(app(
        StatusCode::OK,
        &[("content-type", "text/html")],
        page(),
    )));
    let response = client
        .head("/")
        .header("accept-encoding", "gzip")
        .send_blocking();
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.header("content-length"), Some("4000"));
    let post = client
        .request(Method::POST, "/")
        .header("accept-encoding", "gzip")
        .send_blocking();
    assert_eq!(post.header("content-encoding"), Some("gzip"));
}

#[test]
fn an_existing_vary_is_extended_once() {
    let client = TestClient::new(CompressionLayer::new().layer(app(
        StatusCode::OK,
        &[("vary", "cookie")],
        page(),
    )));
    let response = get(&client, Some("gzip"));
    let vary: Vec<_> = response
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(vary, ["cookie", "accept-encoding"]);
    let client = TestClient::new(CompressionLayer::new().layer(app(
        StatusCode::OK,
        &[("vary", "Accept-Encoding, Cookie")],
        page(),
    )));
    let response = get(&client, Some("gzip"));
    assert_eq!(response.headers().get_all("vary").iter().count(), 1);
}

/// A stream of `chunks` chunks; counts drops of the stream (SPEC `[mw-close]`).
fn streaming(chunks: usize, dropped: Arc<AtomicUsize>) -> impl Application {
    rgi::app_fn(move |_, start| {
        let dropped = Arc::clone(&dropped);
        async move {
            struct Guard(Arc<AtomicUsize>);
            impl Drop for Guard {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let guard = Guard(dropped);
            let stream = futures_util::stream::iter(0..chunks).map(move |i| {
                let _ = &guard;
                Ok::<_, std::io::Error>(format!("event {i}: {}\n", "data ".repeat(50)))
            });
            let mut headers = HeaderMap::new();
            headers.insert(
                "content-type",
                HeaderValue::from_static("text/event-stream"),
            );
            Ok(start.respond(StatusCode::OK, headers, Body::from_stream(stream))?)
        }
    })
}

use futures_util::StreamExt as _;

#[test]
fn a_stream_is_compressed_chunk_by_chunk() {
    for encoding in ["gzip", "br", "zstd"] {
        let dropped = Arc::new(AtomicUsize::new(0));
        let client =
            TestClient::new(CompressionLayer::new().layer(streaming(5, Arc::clone(&dropped))));
        let response = get(&client, Some(encoding));
        assert_eq!(response.header("content-encoding"), Some(encoding));
        // One flushed block per input chunk, then the end of the stream.
        assert!(
            response.chunks() >= 5,
            "{encoding}: {} chunks",
            response.chunks()
        );
        let text = String::from_utf8(decode(Some(encoding), response.body())).unwrap();
        assert_eq!(text.lines().count(), 5);
        assert!(text.starts_with("event 0: data"));
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "{encoding}: the inner body is dropped"
        );
    }
}

#[test]
fn each_chunk_is_decodable_as_it_arrives() {
    // The prefix produced after the first chunk decodes to exactly that chunk: it was flushed.
    let (mut tx, body) = Body::channel(1);
    let compressed = encode::compress(body, Encoding::Gzip, Level::Default);
    rgi::block_on(async move {
        use http_body_util::BodyExt as _;
        let mut compressed = compressed;
        tx.send("first chunk\n").await.unwrap();
        let first = compressed
            .frame()
            .await
            .unwrap()
            .unwrap()
            .into_data()
            .unwrap();
        let mut decoder = async_compression::tokio::write::GzipDecoder::new(Vec::new());
        use tokio::io::AsyncWriteExt as _;
        decoder.write_all(&first).await.unwrap();
        decoder.flush().await.unwrap();
        assert_eq!(decoder.get_ref().as_slice(), b"first chunk\n");
        tx.send("second\n").await.unwrap();
        drop(tx);
        let mut rest = Vec::new();
        while let Some(frame) = compressed.frame().await {
            rest.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        decoder.write_all(&rest).await.unwrap();
        decoder.shutdown().await.unwrap();
        assert_eq!(decoder.get_ref().as_slice(), b"first chunk\nsecond\n");
    });
}

#[test]
fn a_body_error_ends_the_compressed_stream_with_that_error() {
    let inner = rgi::app_fn(|_, start| async move {
        let stream = futures_util::stream::iter([
            Ok(bytes::Bytes::from("x".repeat(2000))),
            Err(std::io::Error::other("boom")),
        ]);
        Ok(start.respond(StatusCode::OK, HeaderMap::new(), Body::from_stream(stream))?)
    });
    let app = CompressionLayer::new().layer(inner);
    let environ = rgi::Environ::builder(Method::GET, "/")
        .header("accept-encoding", "gzip")
        .build();
    let response = rgi::block_on(app.call(environ, rgi::StartResponse::new(&Method::GET))).unwrap();
    let (_, _, mut body, _) = response.into_parts();
    let outcome = rgi::block_on(async {
        use http_body_util::BodyExt as _;
        let mut errors = 0;
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(_) => frames += 1,
                Err(e) => {
                    assert_eq!(e.to_string(), "boom");
                    errors += 1;
                }
            }
        }
        (frames, errors)
    });
    assert_eq!(outcome, (1, 1));
}
