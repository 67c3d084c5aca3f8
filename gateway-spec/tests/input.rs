//! `rgi.input`: EOF at `CONTENT_LENGTH`, short bodies, limits, chunked sources, blocking reads.

use std::io::{self, BufRead, Read};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use rgi::{BodyTooLarge, BoxError, Input};
use tokio::sync::mpsc;

/// A request body fed through a channel, of unknown length (like a chunked upload).
struct ChannelSource {
    rx: mpsc::Receiver<Result<Bytes, BoxError>>,
}

impl http_body::Body for ChannelSource {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

fn channel_source(buffer: usize) -> (mpsc::Sender<Result<Bytes, BoxError>>, Input) {
    let (tx, rx) = mpsc::channel(buffer);
    (tx, Input::from_body(ChannelSource { rx }))
}

/// A source that yields the given chunks then ends, and never reports its length.
fn chunks(parts: &[&'static str]) -> Input {
    let items: Vec<Result<Bytes, io::Error>> = parts
        .iter()
        .map(|p| Ok(Bytes::from_static(p.as_bytes())))
        .collect();
    let stream = futures_util::stream::iter(items.into_iter().map(|r| r.map(Frame::data)));
    Input::from_body(http_body_util::StreamBody::new(stream))
}

#[tokio::test]
async fn eof_comes_exactly_at_content_length_even_when_the_source_has_more() {
    let mut input = chunks(&["hello ", "world", " and then some garbage"]).with_content_length(11);
    assert_eq!(input.content_length(), Some(11));
    assert_eq!(
        Input::read_to_bytes(&mut input).await.unwrap(),
        "hello world"
    );
    assert!(input.is_eof());
    assert_eq!(input.consumed(), 11);
    assert!(input.chunk().await.is_none());

    // The same with bytes: a declared length shorter than the buffer.
    let mut input = Input::from_bytes("abcdef").with_content_length(4);
    let mut buf = [0u8; 3];
    assert_eq!(input.read(&mut buf).await.unwrap(), 3);
    assert_eq!(&buf, b"abc");
    assert_eq!(input.read(&mut buf).await.unwrap(), 1);
    assert_eq!(buf[0], b'd');
    assert_eq!(input.read(&mut buf).await.unwrap(), 0);
}

#[tokio::test]
async fn reads_never_wait_for_more_once_content_length_is_reached() {
    // The sender stays open: a read past the declared end would hang.
    let (tx, input) = channel_source(4);
    let mut input = input.with_content_length(5);
    tx.send(Ok(Bytes::from_static(b"12345"))).await.unwrap();
    let all = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        Input::read_to_bytes(&mut input),
    )
    .await;
    assert_eq!(
        all.expect("read blocked past CONTENT_LENGTH").unwrap(),
        "12345"
    );
    drop(tx);
}

#[tokio::test]
async fn a_source_that_ends_early_is_an_unexpected_eof() {
    let mut input = chunks(&["only", "eight"]).with_content_length(20);
    let err = Input::read_to_bytes(&mut input).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    let boxed: BoxError = Box::new(err);
    assert_eq!(rgi::convert::error_status(&boxed), 400);

    // From bytes, too.
    let mut input = Input::from_bytes("abc").with_content_length(5);
    let mut out = Vec::new();
    let err = input.read_to_end_async(&mut out).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(out, b"abc");
}

/// A small async read_to_end on top of `Input::read`, to exercise the buffer-sized path.
trait ReadToEndAsync {
    async fn read_to_end_async(&mut self, out: &mut Vec<u8>) -> io::Result<usize>;
}

impl ReadToEndAsync for Input {
    async fn read_to_end_async(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut buf = [0u8; 2];
        let mut total = 0;
        loop {
            match self.read(&mut buf).await? {
                0 => return Ok(total),
                n => {
                    out.extend_from_slice(&buf[..n]);
                    total += n;
                }
            }
        }
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_body_too_large_and_maps_to_413() {
    let mut input = chunks(&["0123456789", "0123456789"]).with_limit(15);
    let err = Input::read_to_bytes(&mut input).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert_eq!(
        err.get_ref().and_then(|e| e.downcast_ref::<BodyTooLarge>()),
        Some(&BodyTooLarge { limit: 15 })
    );
    let boxed: BoxError = Box::new(err);
    assert_eq!(rgi::convert::error_status(&boxed), 413);
    // The body is finished after the error.
    assert!(input.chunk().await.is_none());

    // Exactly at the limit is fine.
    let mut input = chunks(&["0123456789", "01234"]).with_limit(15);
    assert_eq!(Input::read_to_bytes(&mut input).await.unwrap().len(), 15);

    // BodyTooLarge itself, boxed, maps to 413 as well.
    let boxed: BoxError = Box::new(BodyTooLarge { limit: 1 });
    assert_eq!(rgi::convert::error_status(&boxed), 413);
}

#[tokio::test]
async fn a_chunked_source_of_unknown_length_is_read_to_its_end() {
    let mut input = chunks(&["a", "", "bc", "def"]);
    assert_eq!(input.content_length(), None);
    let mut got = Vec::new();
    while let Some(chunk) = input.chunk().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, b"abcdef");
    assert!(input.is_eof());
    assert_eq!(input.consumed(), 6);
}

#[tokio::test]
async fn a_source_error_is_an_io_error() {
    let (tx, mut input) = channel_source(4);
    tx.send(Ok(Bytes::from_static(b"ab"))).await.unwrap();
    tx.send(Err("connection reset".into())).await.unwrap();
    assert_eq!(input.chunk().await.unwrap().unwrap(), "ab");
    let err = input.chunk().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert!(input.chunk().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_read_and_read_line_over_a_channel_fed_body_stop_at_the_end() {
    let (tx, input) = channel_source(1);
    let reader = tokio::task::spawn_blocking(move || {
        let mut input = input;
        let mut lines = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if input.read_line(&mut line).unwrap() == 0 {
                break;
            }
            lines.push(line.clone());
        }
        let mut rest = Vec::new();
        assert_eq!(input.read_to_end(&mut rest).unwrap(), 0);
        (lines, input.consumed())
    });
    for part in [
        "first li",
        "ne\nsecond line\nthi",
        "rd",
        " line\nno newline",
    ] {
        tx.send(Ok(Bytes::from_static(part.as_bytes())))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    drop(tx);
    let (lines, consumed) = tokio::time::timeout(std::time::Duration::from_secs(10), reader)
        .await
        .expect("blocking reader hung")
        .unwrap();
    assert_eq!(
        lines,
        [
            "first line\n",
            "second line\n",
            "third line\n",
            "no newline"
        ]
    );
    assert_eq!(consumed, 44);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reads_with_content_length_return_eof_without_waiting_for_the_sender() {
    let (tx, input) = channel_source(4);
    let input = input.with_content_length(10);
    let reader = tokio::task::spawn_blocking(move || {
        let mut input = input;
        let mut all = Vec::new();
        input.read_to_end(&mut all).unwrap();
        all
    });
    tx.send(Ok(Bytes::from_static(b"01234"))).await.unwrap();
    tx.send(Ok(Bytes::from_static(b"56789extra")))
        .await
        .unwrap();
    // `tx` is kept alive: the reader must stop at 10 bytes on its own.
    let all = tokio::time::timeout(std::time::Duration::from_secs(10), reader)
        .await
        .expect("blocking read waited past CONTENT_LENGTH")
        .unwrap();
    assert_eq!(all, b"0123456789");
    drop(tx);
}

#[test]
fn buf_read_lines_and_fill_buf_consume_agree_with_read() {
    let mut input = chunks(&["a\nb", "b\n", "c"]).with_content_length(6);
    let lines: Vec<String> = (&mut input).lines().map(Result::unwrap).collect();
    assert_eq!(lines, ["a", "bb", "c"]);
    assert!(input.is_eof());
    assert_eq!(input.consumed(), 6);

    let mut input = Input::from_bytes("xyz");
    assert_eq!(input.fill_buf().unwrap(), b"xyz");
    input.consume(1);
    assert_eq!(input.consumed(), 1);
    let mut rest = String::new();
    input.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "yz");
    assert_eq!(input.fill_buf().unwrap(), b"");
}

#[tokio::test]
async fn input_is_an_http_body_with_an_exact_size_hint() {
    let input = Input::from_bytes("hello");
    assert_eq!(http_body::Body::size_hint(&input).exact(), Some(5));
    assert!(!http_body::Body::is_end_stream(&input));
    assert_eq!(input.collect().await.unwrap().to_bytes(), "hello");

    let input = chunks(&["ab", "cd", "ef"]).with_content_length(6);
    assert_eq!(http_body::Body::size_hint(&input).exact(), Some(6));
    assert_eq!(input.collect().await.unwrap().to_bytes(), "abcdef");

    let input = chunks(&["ab"]);
    assert_eq!(http_body::Body::size_hint(&input).exact(), None);

    let empty = Input::empty();
    assert!(http_body::Body::is_end_stream(&empty));
    assert_eq!(http_body::Body::size_hint(&empty).exact(), Some(0));

    // An Input can be the source of another Input (middleware re-wrapping the body).
    let outer = Input::from_body(Input::from_bytes("nested"));
    assert_eq!(outer.content_length(), Some(6));
    assert_eq!(outer.collect().await.unwrap().to_bytes(), "nested");
}

#[tokio::test]
async fn a_source_with_an_exact_size_hint_declares_its_length() {
    let input = Input::from_body(http_body_util::Full::new(Bytes::from_static(b"12345")));
    assert_eq!(input.content_length(), Some(5));
    assert_eq!(
        http_body::Body::size_hint(&input).exact(),
        SizeHint::with_exact(5).exact()
    );
}

/// A deterministic pseudo-random byte pattern.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_read_in_small_pieces_comes_through_intact() {
    const LEN: usize = 10 * 1024 * 1024;
    let data = Bytes::from(pattern(LEN));
    let (tx, input) = channel_source(8);
    let input = input.with_content_length(LEN as u64);
    let producer = {
        let data = data.clone();
        tokio::spawn(async move {
            // Uneven chunk sizes.
            let mut off = 0;
            let mut step = 1;
            while off < LEN {
                let end = (off + step).min(LEN);
                tx.send(Ok(data.slice(off..end))).await.unwrap();
                off = end;
                step = (step * 7 + 13) % 65_521 + 1;
            }
        })
    };
    let reader = tokio::task::spawn_blocking(move || {
        let mut input = input;
        let mut out = Vec::with_capacity(LEN);
        let mut buf = [0u8; 1000];
        loop {
            let n = Read::read(&mut input, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    let out = reader.await.unwrap();
    producer.await.unwrap();
    assert_eq!(out.len(), LEN);
    assert!(out == data[..], "10 MiB body differs");
}

#[tokio::test]
async fn a_huge_declared_length_with_a_short_body_is_an_error_not_an_allocation() {
    // A client may claim any Content-Length; `bytes()` must not reserve it up front.
    let mut input = chunks(&["tiny", "body"]).with_content_length(1 << 62);
    let err = Input::read_to_bytes(&mut input).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn drain_skips_the_rest_of_the_body() {
    let mut input = chunks(&["abc", "defg"]).with_content_length(7);
    let mut two = [0u8; 2];
    input.read(&mut two).await.unwrap();
    assert_eq!(input.drain().await.unwrap(), 5);
    assert!(input.is_eof());
}

#[derive(Debug)]
struct AppError(io::Error);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not parse the upload")
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[tokio::test]
async fn only_a_short_request_body_maps_to_400_not_any_unexpected_eof() {
    // The app's own I/O (a truncated cache file, a database socket) is a server error.
    let own: BoxError = Box::new(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "cache file truncated",
    ));
    assert_eq!(rgi::convert::error_status(&own), 500);

    // The request body ending early is the client's fault, however the app wraps it.
    let mut input = chunks(&["abc"]).with_content_length(10);
    let short = Input::read_to_bytes(&mut input).await.unwrap_err();
    assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
    let wrapped: BoxError = Box::new(AppError(short));
    assert_eq!(rgi::convert::error_status(&wrapped), 400);
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    // The source would block forever: the refusal must not wait for it.
    let (_tx, rx) = mpsc::channel::<Result<Frame<Bytes>, io::Error>>(1);
    let source = http_body_util::StreamBody::new(tokio_stream_from(rx));
    let mut input = Input::from_body(source)
        .with_content_length(5000)
        .with_limit(1000);
    let err = tokio::time::timeout(std::time::Duration::from_secs(5), input.chunk())
        .await
        .expect("no wait")
        .expect("an error, not EOF")
        .unwrap_err();
    let inner = err.get_ref().expect("wrapped error");
    assert_eq!(
        inner.downcast_ref::<BodyTooLarge>(),
        Some(&BodyTooLarge { limit: 1000 })
    );
}

/// A `Stream` over an mpsc receiver, without pulling in tokio-stream.
fn tokio_stream_from<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures_core::Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

#[tokio::test]
async fn an_application_can_lower_the_body_limit_but_never_raise_it() {
    // The server's limit is 15; an app asking for 1000 still gets 413 past 15 bytes.
    let mut input = chunks(&["0123456789", "0123456789"])
        .with_limit(15)
        .with_limit(1000);
    assert_eq!(input.limit(), Some(15));
    let err = Input::read_to_bytes(&mut input).await.unwrap_err();
    assert_eq!(
        err.get_ref().and_then(|e| e.downcast_ref::<BodyTooLarge>()),
        Some(&BodyTooLarge { limit: 15 })
    );
    // Lowering works, and a first limit is taken as given.
    let mut input = chunks(&["0123456789"]).with_limit(15).with_limit(5);
    assert_eq!(input.limit(), Some(5));
    assert!(Input::read_to_bytes(&mut input).await.is_err());
    assert_eq!(chunks(&["x"]).with_limit(1000).limit(), Some(1000));
}

#[tokio::test]
async fn a_failing_body_source_is_the_clients_mistake_and_maps_to_400() {
    // hyper reports a malformed chunk or a connection cut mid-body as an error of the source.
    let (tx, mut input) = channel_source(2);
    tx.send(Ok(Bytes::from_static(b"ab"))).await.unwrap();
    tx.send(Err("Invalid chunk size line".into()))
        .await
        .unwrap();
    let err = Input::read_to_bytes(&mut input).await.unwrap_err();
    assert!(err.to_string().contains("Invalid chunk size line"), "{err}");
    let wrapped: BoxError = Box::new(AppError(err));
    assert_eq!(rgi::convert::error_status(&wrapped), 400);

    // A source that is itself a limited `Input` (middleware re-wrapping the body): 413 wins.
    let inner = chunks(&["0123456789", "0123456789"]).with_limit(15);
    let mut outer = Input::from_body(inner);
    let err = Input::read_to_bytes(&mut outer).await.unwrap_err();
    let boxed: BoxError = Box::new(err);
    assert_eq!(rgi::convert::error_status(&boxed), 413);
}

/// Reads the whole body (`/read`) or fails on its own (`/fail`).
struct Reader;

impl rgi::Application for Reader {
    async fn call(&self, mut environ: rgi::Environ, start: rgi::StartResponse) -> rgi::Reply {
        if environ.path_info() == b"/fail" {
            return Err("database is down".into());
        }
        let body = environ.input_mut().read_to_bytes().await?;
        Ok(start.respond(http::StatusCode::OK, http::HeaderMap::new(), body)?)
    }
}

#[tokio::test]
async fn client_mistakes_are_answered_4xx_without_an_error_line_and_app_failures_are_logged() {
    let (errors, captured) = rgi::Errors::capture();
    let server = std::sync::Arc::new(rgi::ServerInfo {
        errors,
        ..rgi::ServerInfo::default()
    });
    let call = |path: &'static str, input: Input| {
        let request = http::Request::post(path).body(input).unwrap();
        let limits = rgi::convert::InputLimits { max_body: Some(15) };
        let environ = rgi::convert::environ_from_request(
            request,
            &rgi::convert::ConnInfo::default(),
            &server,
            limits,
        )
        .expect("a valid Content-Length");
        rgi::convert::call_app(&Reader, environ)
    };
    let too_large = call("/read", chunks(&["0123456789", "0123456789"])).await;
    assert_eq!(too_large.status(), 413);
    let short = call("/read", chunks(&["abc"]).with_content_length(10)).await;
    assert_eq!(short.status(), 400);
    let (tx, broken) = channel_source(1);
    tx.send(Err("Invalid chunk size line".into()))
        .await
        .unwrap();
    assert_eq!(call("/read", broken).await.status(), 400);
    assert_eq!(captured.lines(), Vec::<String>::new(), "client mistakes");

    assert_eq!(call("/fail", Input::empty()).await.status(), 500);
    assert_eq!(
        captured.lines(),
        ["rgi: application error for /fail: database is down"]
    );
}
