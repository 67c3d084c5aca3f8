//! The application the end-to-end tests drive: one route per behaviour under test.
//!
//! Run with: `cargo run -p rgi-tests --bin testapp -- --bind 127.0.0.1:8000`.
//!
//! | path | behaviour |
//! |---|---|
//! | `/fast` | `200 fast` at once |
//! | `/sleep?ms=N` | a **blocking** handler: `std::thread::sleep(N ms)`, then `200 slept N` |
//! | `/async-sleep?ms=N` | `tokio::time::sleep(N ms)`, then `200` |
//! | `/panic` | panics inside the application |
//! | `/panic-body` | panics inside the body stream, after one chunk |
//! | `/stream?chunks=N&delay_ms=M` | N chunks, M ms apart, each flushed as produced |
//! | `/infinite` | a body that never ends; counts its drop in `/stats` |
//! | `/stats` | `{"dropped": N}`: infinite bodies dropped so far |
//! | `/cookies` | two `Set-Cookie` headers |
//! | `/status/NNN` | status NNN, empty body |
//! | `/echo` | the request body back, with the request's Content-Type |
//! | `/big?bytes=N` | N bytes of `x` |
//! | `/short-body` | declares `Content-Length: 10`, produces 5 bytes |
//! | `/abort` | one chunk, then a body error |
//! | `/raise-limit?to=N` | asks `rgi.input` for a body limit of N, reads the body: `read B bytes, limit L` |
//! | anything else | the `demo` application (environ as JSON) |
//!
//! In front of it all stands a middleware layer ([`PanickyLayer`]) that panics itself, not the
//! application: on `/panic-layer-before` before calling the application, on `/panic-layer-after`
//! after the application answered (the demo's 200).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderValue, StatusCode};
use rgi::{Application, Body, Environ, Reply, StartResponse};

static DROPPED: AtomicU64 = AtomicU64::new(0);

fn query_u64(environ: &Environ, key: &str, default: u64) -> u64 {
    let query = String::from_utf8_lossy(environ.query_string()).into_owned();
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(default)
}

/// Counts drops of the infinite body.
struct DropCounter;

impl Drop for DropCounter {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

struct TestApp;

impl Application for TestApp {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let path = String::from_utf8_lossy(environ.path_info()).into_owned();
        match path.as_str() {
            "/fast" => start.text("fast\n"),
            "/sleep" => {
                let sleeper = rgi::blocking(|environ, start| {
                    let ms = query_u64(&environ, "ms", 100);
                    std::thread::sleep(Duration::from_millis(ms));
                    start.text(format!("slept {ms}\n"))
                });
                sleeper.call(environ, start).await
            }
            "/async-sleep" => {
                let ms = query_u64(&environ, "ms", 100);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                start.text(format!("slept {ms}\n"))
            }
            "/panic" => panic!("testapp: deliberate panic"),
            "/panic-body" => {
                let stream = futures_util::stream::iter(0..2).map(|i| {
                    if i == 1 {
                        panic!("testapp: deliberate panic in body");
                    }
                    Ok::<_, std::io::Error>(Bytes::from_static(b"first chunk\n"))
                });
                start.text(Body::from_stream(stream))
            }
            "/stream" => {
                let chunks = query_u64(&environ, "chunks", 3);
                let delay = Duration::from_millis(query_u64(&environ, "delay_ms", 100));
                let (mut tx, body) = Body::channel(1);
                tokio::spawn(async move {
                    for i in 0..chunks {
                        if i > 0 {
                            tokio::time::sleep(delay).await;
                        }
                        if tx.send(format!("chunk {i}\n")).await.is_err() {
                            return;
                        }
                    }
                });
                start.text(body)
            }
            "/infinite" => {
                let guard = DropCounter;
                let stream = futures_util::stream::unfold(guard, |guard| async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x\n")), guard))
                });
                start.text(Body::from_stream(stream))
            }
            "/stats" => {
                let body = format!("{{\"dropped\": {}}}\n", DROPPED.load(Ordering::SeqCst));
                start.bytes("application/json", body)
            }
            "/cookies" => start
                .status(StatusCode::OK)
                .headers([
                    ("set-cookie", "a=1; Path=/"),
                    ("set-cookie", "b=2; Path=/; HttpOnly"),
                ])
                .text("two cookies\n"),
            "/echo" => {
                let body = environ.input_mut().read_to_bytes().await?;
                let content_type = environ
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .cloned()
                    .unwrap_or(HeaderValue::from_static("application/octet-stream"));
                start
                    .header(header::CONTENT_TYPE, content_type)
                    .body("", body)
            }
            "/big" => {
                let n = query_u64(&environ, "bytes", 1024) as usize;
                start.text(vec![b'x'; n])
            }
            "/short-body" => {
                // A Content-Length the body does not keep (the server must not pass it off whole).
                let stream = futures_util::stream::iter([Ok::<_, std::io::Error>("12345")]);
                start
                    .header("content-length", "10")
                    .text(Body::from_stream(stream))
            }
            "/abort" => {
                let stream = futures_util::stream::iter([
                    Ok(Bytes::from_static(b"partial\n")),
                    Err(std::io::Error::other("testapp: deliberate body error")),
                ]);
                start.text(Body::from_stream(stream))
            }
            "/reflect-header" => {
                // Puts the decoded query into a response header, as an app reflecting user input
                // would: CR/LF in it must never split the response (the header is refused: 500).
                let value: Vec<u8> =
                    percent_encoding::percent_decode(environ.query_string()).collect();
                start.header("x-reflected", value).text("reflected\n")
            }
            "/raise-limit" => {
                // An application may only lower the server's limit (issue 18): this one tries
                // to raise it.
                let wanted = query_u64(&environ, "to", u64::MAX);
                let input = environ.take_input().with_limit(wanted);
                environ.set_input(input);
                let limit = environ.input_mut().limit().unwrap_or(u64::MAX);
                let body = environ.input_mut().read_to_bytes().await?;
                let text = format!("read {} bytes, limit {limit}\n", body.len());
                start.text(text)
            }
            _ => {
                if let Some(code) = path.strip_prefix("/status/") {
                    let status = code
                        .parse::<u16>()
                        .ok()
                        .and_then(|c| StatusCode::from_u16(c).ok())
                        .unwrap_or(StatusCode::BAD_REQUEST);
                    return if rgi::status_allows_body(status) {
                        start.status(status).text(())
                    } else {
                        start.empty(status)
                    };
                }
                example_demo::Demo.call(environ, start).await
            }
        }
    }
}

/// A middleware layer that panics on two paths (see the module docs); every other request passes
/// through untouched.
struct PanickyLayer<A>(A);

impl<A: Application> Application for PanickyLayer<A> {
    fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> impl std::future::Future<Output = Reply> + Send {
        // Synchronously, while the server calls the layer: not inside any future of the app.
        if environ.path_info() == b"/panic-layer-before" {
            panic!("testapp: deliberate panic in a middleware layer, before the app");
        }
        let after = environ.path_info() == b"/panic-layer-after";
        let inner = self.0.call(environ, start);
        async move {
            let reply = inner.await;
            if after {
                panic!("testapp: deliberate panic in a middleware layer, after the app");
            }
            reply
        }
    }
}

fn main() -> std::process::ExitCode {
    rgi_servers::run(PanickyLayer(TestApp))
}
