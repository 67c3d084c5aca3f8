//! SCGI and uwsgi servers driven by hand over loopback TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use rgi::{Body, Environ, ServerInfo, StartResponse};
use rgi_servers::bind::{Bind, BindOptions, Listener};
use rgi_servers::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// `/stream`: "first", then 400 ms later "second"; anything else: `SCRIPT_NAME|PATH_INFO|body`.
fn app() -> Arc<impl rgi::Application> {
    Arc::new(rgi::app_fn(
        |mut environ: Environ, start: StartResponse| async move {
            if environ.path_info() == b"/stream" {
                let (mut tx, body) = Body::channel(1);
                tokio::spawn(async move {
                    let _ = tx.send("first").await;
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    let _ = tx.send("second").await;
                });
                return Ok(start.respond(StatusCode::OK, HeaderMap::new(), body)?);
            }
            let mut out = environ.script_name().to_vec();
            out.push(b'|');
            out.extend_from_slice(environ.path_info());
            out.push(b'|');
            while let Some(chunk) = environ.input_mut().chunk().await {
                out.extend_from_slice(&chunk?);
            }
            Ok(start.respond(StatusCode::OK, HeaderMap::new(), out)?)
        },
    ))
}

#[derive(Clone, Copy)]
enum Proto {
    Scgi,
    Uwsgi,
}

async fn start(proto: Proto, config: Config) -> (SocketAddr, CancellationToken) {
    let listener = Bind::Tcp("127.0.0.1:0".into())
        .listen(BindOptions::default())
        .unwrap()
        .into_tokio()
        .unwrap();
    let Listener::Tcp(tcp) = &listener else {
        unreachable!()
    };
    let addr = tcp.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = Arc::new(ServerInfo::default());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        match proto {
            Proto::Scgi => {
                rgi_servers::Protocol::Scgi
                    .serve(vec![listener], app(), config, server, stop)
                    .await
            }
            Proto::Uwsgi => {
                rgi_servers::Protocol::Uwsgi
                    .serve(vec![listener], app(), config, server, stop)
                    .await
            }
        }
    });
    (addr, shutdown)
}

/// An SCGI request: netstring of `NAME\0VALUE\0` pairs, then the body.
fn scgi_request(vars: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    for (k, v) in vars {
        block.extend_from_slice(k.as_bytes());
        block.push(0);
        block.extend_from_slice(v.as_bytes());
        block.push(0);
    }
    let mut out = format!("{}:", block.len()).into_bytes(); // netstring length
    out.extend(block);
    out.push(b','); // netstring end
    out.extend_from_slice(body);
    out
}

/// A uwsgi packet: modifier1, size (u16 LE), modifier2, then `u16 LE len, bytes` per name and value.
fn uwsgi_request(modifier1: u8, vars: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    for (k, v) in vars {
        for s in [k, v] {
            block.extend_from_slice(&(s.len() as u16).to_le_bytes());
            block.extend_from_slice(s.as_bytes());
        }
    }
    let mut out = vec![modifier1];
    out.extend_from_slice(&(block.len() as u16).to_le_bytes());
    out.push(0); // modifier2
    out.extend(block);
    out.extend_from_slice(body);
    out
}

/// Send `wire`, read until the server closes (at most 10 s).
async fn exchange(addr: SocketAddr, wire: &[u8]) -> String {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(wire).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn scgi_round_trip_with_nginx_stock_params() {
    let (addr, _stop) = start(Proto::Scgi, Config::default()).await;
    let wire = scgi_request(
        &[
            ("CONTENT_LENGTH", "5"),
            ("SCGI", "1"),
            ("REQUEST_METHOD", "POST"),
            ("REQUEST_URI", "/a%20b?x=1"),
            ("DOCUMENT_URI", "/a b"),
            ("QUERY_STRING", "x=1"),
        ],
        b"hello",
    );
    let text = exchange(addr, &wire).await;
    assert!(text.starts_with("Status: 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n|/a b|hello"), "{text}");
}

#[tokio::test]
async fn scgi_applies_the_configured_mount_point() {
    let config = Config {
        script_name: Some("/app".into()),
        ..Config::default()
    };
    let (addr, _stop) = start(Proto::Scgi, config).await;
    let wire = scgi_request(
        &[
            ("CONTENT_LENGTH", "0"),
            ("SCGI", "1"),
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/app/x"),
        ],
        b"",
    );
    assert!(exchange(addr, &wire).await.ends_with("/app|/x|"));
}

#[tokio::test]
async fn a_malformed_scgi_header_is_answered_400_and_closed() {
    let (addr, _stop) = start(Proto::Scgi, Config::default()).await;
    let mut wire = scgi_request(&[("CONTENT_LENGTH", "0"), ("SCGI", "1")], b"");
    wire.insert(0, b'0'); // leading zero in the netstring length
    let text = exchange(addr, &wire).await;
    assert!(text.starts_with("Status: 400 Bad Request\r\n"), "{text}");
    let missing_scgi = scgi_request(&[("CONTENT_LENGTH", "0"), ("REQUEST_METHOD", "GET")], b"");
    let text = exchange(addr, &missing_scgi).await;
    assert!(text.starts_with("Status: 400 Bad Request\r\n"), "{text}");
}

#[tokio::test]
async fn an_oversized_scgi_header_is_refused_before_it_is_read() {
    let mut config = Config::default();
    config.limits.max_head_bytes = 8192;
    let (addr, _stop) = start(Proto::Scgi, config).await;
    let text = exchange(addr, b"100000:").await;
    assert!(
        text.starts_with("Status: 431 Request Header Fields Too Large\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_streamed_response_reaches_the_client_before_the_app_finishes() {
    let (addr, _stop) = start(Proto::Scgi, Config::default()).await;
    let wire = scgi_request(
        &[
            ("CONTENT_LENGTH", "0"),
            ("SCGI", "1"),
            ("REQUEST_METHOD", "GET"),
            ("DOCUMENT_URI", "/stream"),
        ],
        b"",
    );
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    conn.write_all(&wire).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("first") {
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the first chunk");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        started.elapsed() < Duration::from_millis(350),
        "first chunk was held back"
    );
    assert!(!String::from_utf8_lossy(&got).contains("second"));
    conn.read_to_end(&mut got).await.unwrap();
    assert!(String::from_utf8_lossy(&got).ends_with("firstsecond"));
}

#[tokio::test]
async fn uwsgi_round_trip_answers_with_an_http_status_line() {
    let (addr, _stop) = start(Proto::Uwsgi, Config::default()).await;
    let wire = uwsgi_request(
        0,
        &[
            ("REQUEST_METHOD", "PUT"),
            ("PATH_INFO", "/caf\u{e9}"),
            ("REQUEST_URI", "/caf%C3%A9"),
            ("CONTENT_LENGTH", "4"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ],
        b"data",
    );
    let text = exchange(addr, &wire).await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("content-length: 12\r\n"), "{text}");
    assert!(text.ends_with("|/caf\u{e9}|data"), "{text}");
}

#[tokio::test]
async fn uwsgi_refuses_other_modifiers_and_oversized_or_truncated_vars() {
    let mut config = Config::default();
    config.limits.max_head_bytes = 1024;
    let (addr, _stop) = start(Proto::Uwsgi, config).await;
    let text = exchange(addr, &uwsgi_request(5, &[("A", "b")], b"")).await;
    assert!(
        text.starts_with("HTTP/1.1 501 Not Implemented\r\n"),
        "{text}"
    );
    let big = "v".repeat(2000);
    let text = exchange(addr, &uwsgi_request(0, &[("X", &big)], b"")).await;
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    let text = exchange(addr, &[0, 3, 0, 0, 9, 0, b'x']).await;
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
}
