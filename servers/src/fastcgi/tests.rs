//! A hand-driven FastCGI client against [`serve`] over real loopback sockets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderMap, StatusCode};
use rgi::{Environ, ServerInfo, StartResponse};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::record::*;
use super::*;
use crate::bind::{Bind, BindOptions};
use crate::config::Config;

const KEEP: bool = true;
const CLOSE: bool = false;

/// `BEGIN_REQUEST`: role, flags.
fn begin(id: u16, role: u16, keep_conn: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let [r0, r1] = role.to_be_bytes();
    let body = [r0, r1, u8::from(keep_conn), 0, 0, 0, 0, 0]; // role, flags, reserved
    encode_record(&mut out, FCGI_BEGIN_REQUEST, id, &body);
    out
}

/// A whole `PARAMS` stream for `vars`, one record per pair (so pairs never share a record), then the
/// empty record that ends it.
fn params(id: u16, vars: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in vars {
        let mut pair = Vec::new();
        encode_pair(&mut pair, k.as_bytes(), v.as_bytes());
        encode_record(&mut out, FCGI_PARAMS, id, &pair);
    }
    encode_record(&mut out, FCGI_PARAMS, id, b"");
    out
}

/// A whole stream (`STDIN`, `DATA`) of `data`, then its empty record.
fn stream(kind: u8, id: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_stream(&mut out, kind, id, data);
    encode_record(&mut out, kind, id, b"");
    out
}

/// A complete Responder request as nginx sends it (`SCRIPT_NAME` = the whole path, no `PATH_INFO`).
fn request(id: u16, keep_conn: bool, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    let mut out = begin(id, FCGI_RESPONDER, keep_conn);
    out.extend(params(
        id,
        &[
            ("REQUEST_METHOD", method),
            ("SCRIPT_NAME", path),
            ("REQUEST_URI", path),
            ("CONTENT_LENGTH", if body.is_empty() { "" } else { &len }),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ],
    ));
    out.extend(stream(FCGI_STDIN, id, body));
    out
}

/// Test app: `/fast`, `/sleep` (300 ms), `/echo` (body length and sha256), `/hang` (sets the flag
/// when its future is dropped), `/error`, `/panic`, `/filter`.
fn app(dropped: Arc<AtomicBool>) -> Arc<impl rgi::Application> {
    Arc::new(rgi::app_fn(
        move |mut environ: Environ, start: StartResponse| {
            let dropped = Arc::clone(&dropped);
            async move {
                let path = String::from_utf8_lossy(environ.path_info()).into_owned();
                let body: Vec<u8> = match path.as_str() {
                    "/fast" => b"fast".to_vec(),
                    "/sleep" => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        b"slow".to_vec()
                    }
                    "/echo" | "/hang" => {
                        let _guard = SetOnDrop(dropped);
                        let mut hasher = Sha256::new();
                        let mut len = 0;
                        while let Some(chunk) = environ.input_mut().chunk().await {
                            let chunk = chunk?;
                            len += chunk.len();
                            hasher.update(&chunk);
                        }
                        if path == "/hang" {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                        }
                        format!("{len} {:x}", hasher.finalize()).into_bytes()
                    }
                    "/lazy" => {
                        // Reads nothing for 500 ms, then counts the body.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        environ.input_mut().drain().await?.to_string().into_bytes()
                    }
                    "/error" => return Err("deliberate failure".into()),
                    "/panic" => panic!("deliberate panic"),
                    "/filter" => {
                        let mut out = environ.input_mut().read_to_bytes().await?.to_vec();
                        let data = environ
                            .extensions()
                            .get::<FilterData>()
                            .and_then(FilterData::take);
                        out.extend_from_slice(&data.expect("filter data").read_to_bytes().await?);
                        out
                    }
                    _ => environ
                        .vars()
                        .iter()
                        .map(|(k, v)| format!("{k}={v:?}\n"))
                        .collect::<String>()
                        .into_bytes(),
                };
                Ok(start.respond(StatusCode::OK, HeaderMap::new(), body)?)
            }
        },
    ))
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    dropped: Arc<AtomicBool>,
    /// What the server logged to its own `rgi.errors` (connection errors).
    log: rgi::Captured,
}

async fn start(config: Config, allowed: Option<Vec<std::net::IpAddr>>) -> Server {
    let listener = Bind::Tcp("127.0.0.1:0".into())
        .listen(BindOptions::default())
        .unwrap()
        .into_tokio()
        .unwrap();
    let addr = match &listener {
        Listener::Tcp(l) => l.local_addr().unwrap(),
        Listener::Unix(..) => unreachable!(),
    };
    let shutdown = CancellationToken::new();
    let dropped = Arc::new(AtomicBool::new(false));
    let (errors, log) = rgi::Errors::capture();
    let server = Arc::new(ServerInfo {
        errors,
        ..ServerInfo::default()
    });
    let pipeline = Arc::new(Pipeline::new(
        app(Arc::clone(&dropped)),
        config,
        server,
        "fastcgi",
    ));
    let drain = pipeline.control.drain_on(shutdown.clone());
    let done = tokio::spawn(async move {
        let served = serve_allowing(vec![listener], pipeline, allowed.map(Arc::new)).await;
        drop(drain);
        served
    });
    Server {
        addr,
        shutdown,
        done,
        dropped,
        log,
    }
}

/// One record received: type, request id, content.
type Rec = (u8, u16, Vec<u8>);

/// Read one record, `None` at EOF; fails the test after 10 s.
async fn next_record(conn: &mut TcpStream, buf: &mut BytesMut) -> Option<Rec> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(head) = buf.first_chunk::<8>() {
            let h = Header::decode(head).expect("server sent a bad version");
            if buf.len() >= 8 + h.body_len() {
                let rec = buf.split_to(8 + h.body_len());
                let content = rec[8..8 + usize::from(h.content_length)].to_vec();
                assert_eq!((8 + h.body_len()) % 8, 0, "records are 8-byte aligned");
                return Some((h.kind, h.request_id, content));
            }
        }
        match tokio::time::timeout_at(deadline, conn.read_buf(buf)).await {
            Ok(Ok(0)) => return None,
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return None,
            Err(_) => panic!("no record within 10 s"),
        }
    }
}

/// What one request got back.
#[derive(Debug, Default)]
struct Reply {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    end: Option<(u32, u8)>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn body(&self) -> String {
        let text = self.text();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }
}

/// Read until every id in `ids` has its `END_REQUEST`; returns the replies and the order of ends.
async fn replies(conn: &mut TcpStream, buf: &mut BytesMut, ids: &[u16]) -> (Vec<Reply>, Vec<u16>) {
    let mut out: Vec<Reply> = ids.iter().map(|_| Reply::default()).collect();
    let mut order = Vec::new();
    while order.len() < ids.len() {
        let (kind, id, content) = next_record(conn, buf)
            .await
            .expect("connection closed early");
        let i = ids
            .iter()
            .position(|x| *x == id)
            .expect("unexpected request id");
        match kind {
            FCGI_STDOUT => out[i].stdout.extend(content),
            FCGI_STDERR => out[i].stderr.extend(content),
            FCGI_END_REQUEST => {
                let status = u32::from_be_bytes(content[..4].try_into().unwrap());
                out[i].end = Some((status, content[4]));
                order.push(id);
            }
            other => panic!("unexpected record type {other}"),
        }
    }
    (out, order)
}

async fn connect(addr: SocketAddr) -> (TcpStream, BytesMut) {
    let conn = TcpStream::connect(addr).await.unwrap();
    conn.set_nodelay(true).unwrap();
    (conn, BytesMut::new())
}

async fn assert_closed(conn: &mut TcpStream, buf: &mut BytesMut) {
    assert_eq!(
        next_record(conn, buf).await,
        None,
        "connection should be closed"
    );
}

#[tokio::test]
async fn a_sleeping_request_does_not_block_a_fast_one_on_the_same_connection() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    let mut wire = request(1, KEEP, "GET", "/sleep", b"");
    wire.extend(request(2, KEEP, "GET", "/fast", b""));
    conn.write_all(&wire).await.unwrap();
    let (got, order) = replies(&mut conn, &mut buf, &[1, 2]).await;
    assert_eq!(order, [2, 1], "the fast request finishes first");
    assert_eq!(got[0].body(), "slow");
    assert_eq!(got[1].body(), "fast");
    assert!(got[1].text().starts_with("Status: 200 OK\r\n"));
    assert_eq!(got[1].end, Some((0, FCGI_REQUEST_COMPLETE)));
}

#[tokio::test]
async fn get_values_is_answered_from_the_configured_limits() {
    let config = Config {
        max_connections: 7,
        max_requests: 9,
        ..Config::default()
    };
    let server = start(config, None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    let mut query = Vec::new();
    for name in [
        FCGI_MAX_CONNS,
        FCGI_MAX_REQS,
        FCGI_MPXS_CONNS,
        "NOT_A_VARIABLE",
    ] {
        encode_pair(&mut query, name.as_bytes(), b"");
    }
    let mut wire = Vec::new();
    encode_record(&mut wire, FCGI_GET_VALUES, 0, &query);
    conn.write_all(&wire).await.unwrap();
    let (kind, id, content) = next_record(&mut conn, &mut buf).await.unwrap();
    assert_eq!((kind, id), (FCGI_GET_VALUES_RESULT, 0));
    let pairs = decode_pairs(&content).unwrap();
    assert_eq!(
        pairs,
        [
            (FCGI_MAX_CONNS.as_bytes(), &b"7"[..]),
            (FCGI_MAX_REQS.as_bytes(), &b"9"[..]),
            (FCGI_MPXS_CONNS.as_bytes(), &b"1"[..]),
        ]
    );
}

#[tokio::test]
async fn an_unknown_management_record_is_answered_unknown_type() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    let mut wire = Vec::new();
    encode_record(&mut wire, 42, 0, b"??");
    conn.write_all(&wire).await.unwrap();
    let rec = next_record(&mut conn, &mut buf).await.unwrap();
    assert_eq!(rec, (FCGI_UNKNOWN_TYPE, 0, vec![42, 0, 0, 0, 0, 0, 0, 0]));
}

#[tokio::test]
async fn abort_request_mid_body_drops_the_app_and_sends_end_request() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    let mut wire = begin(1, FCGI_RESPONDER, KEEP);
    wire.extend(params(
        1,
        &[
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_NAME", "/hang"),
            ("CONTENT_LENGTH", "1000"),
        ],
    ));
    encode_record(&mut wire, FCGI_STDIN, 1, &[b'x'; 100]); // 100 of the 1000 bytes
    conn.write_all(&wire).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut abort = Vec::new();
    encode_record(&mut abort, FCGI_ABORT_REQUEST, 1, b"");
    conn.write_all(&abort).await.unwrap();
    let (got, _) = replies(&mut conn, &mut buf, &[1]).await;
    assert_eq!(got[0].end, Some((1, FCGI_REQUEST_COMPLETE)));
    assert!(got[0].stdout.is_empty());
    assert!(
        server.dropped.load(Ordering::SeqCst),
        "the app's future was dropped"
    );
    // The connection (kept) serves the next request, reusing the id.
    conn.write_all(&request(1, KEEP, "GET", "/fast", b""))
        .await
        .unwrap();
    let (got, _) = replies(&mut conn, &mut buf, &[1]).await;
    assert_eq!(got[0].body(), "fast");
}

/// A request with a long value (4-byte lengths), pairs cut across PARAMS records, and a body.
fn tricky_request() -> Vec<u8> {
    let long = "v".repeat(300);
    let mut pairs = Vec::new();
    encode_pair(&mut pairs, b"REQUEST_METHOD", b"POST");
    encode_pair(&mut pairs, b"SCRIPT_NAME", b"/echo");
    encode_pair(&mut pairs, b"CONTENT_LENGTH", b"5");
    encode_pair(&mut pairs, b"HTTP_X_LONG", long.as_bytes());
    let mut wire = begin(1, FCGI_RESPONDER, CLOSE);
    for piece in pairs.chunks(7) {
        // Odd-sized records: every pair is cut somewhere; padding varies.
        encode_record(&mut wire, FCGI_PARAMS, 1, piece);
    }
    encode_record(&mut wire, FCGI_PARAMS, 1, b"");
    wire.extend(stream(FCGI_STDIN, 1, b"hello"));
    wire
}

#[test]
fn records_split_at_every_byte_offset_reassemble_identically() {
    let wire = tricky_request();
    let whole: Vec<_> = {
        let mut buf = BytesMut::from(&wire[..]);
        std::iter::from_fn(|| super::conn::split_record_for_test(&mut buf)).collect()
    };
    for cut in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut got: Vec<_> =
            std::iter::from_fn(|| super::conn::split_record_for_test(&mut buf)).collect();
        buf.extend_from_slice(&wire[cut..]);
        got.extend(std::iter::from_fn(|| {
            super::conn::split_record_for_test(&mut buf)
        }));
        assert_eq!(got, whole, "cut at {cut}");
    }
}

#[tokio::test]
async fn a_request_written_one_byte_at_a_time_is_served() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    for byte in tricky_request() {
        conn.write_all(&[byte]).await.unwrap();
    }
    let (got, _) = replies(&mut conn, &mut buf, &[1]).await;
    let expected = format!("5 {:x}", Sha256::digest(b"hello"));
    assert_eq!(got[0].body(), expected);
    assert_closed(&mut conn, &mut buf).await; // keep-conn was off
}

#[tokio::test]
async fn a_bad_version_closes_the_connection_and_the_server_serves_the_next() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    let mut wire = request(1, KEEP, "GET", "/fast", b"");
    wire[0] = 2; // version 2
    conn.write_all(&wire).await.unwrap();
    assert_closed(&mut conn, &mut buf).await;
    assert_eq!(
        server.log.lines(),
        ["fastcgi: record version 2 is not supported"]
    );
    let (mut conn, mut buf) = connect(server.addr).await;
    conn.write_all(&request(1, CLOSE, "GET", "/fast", b""))
        .await
        .unwrap();
    let (got, _) = replies(&mut conn, &mut buf, &[1]).await;
    assert_eq!(got[0].body(), "fast");
}

#[tokio::test]
async fn params_beyond_the_limit_or_truncated_pairs_close_the_connection() {
    let mut config = Config::default();
    config.limits.max_head_bytes = 1024;
    let server = start(config, None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    let mut wire = begin(1, FCGI_RESPONDER, KEEP);
    wire.extend(params(1, &[("HTTP_X_BIG", &"b".repeat(2000))]));
    conn.write_all(&wire).await.unwrap();
    assert_closed(&mut conn, &mut buf).await;

    let (mut conn, mut buf) = connect(server.addr).await;
    let mut wire = begin(1, FCGI_RESPONDER, KEEP);
    encode_record(&mut wire, FCGI_PARAMS, 1, &[9, 1, b'A']); // name length 9, only 1 byte
    encode_record(&mut wire, FCGI_PARAMS, 1, b"");
    conn.write_all(&wire).await.unwrap();
    assert_closed(&mut conn, &mut buf).await;
    assert_eq!(
        server.log.lines(),
        [
            "fastcgi: PARAMS exceed the limit of 1024 bytes",
            "fastcgi: truncated name-value pair"
        ]
    );

    let (mut conn, mut buf) = connect(server.addr).await;
    conn.write_all(&request(1, CLOSE, "GET", "/fast", b""))
        .await
        .unwrap();
    assert_eq!(replies(&mut conn, &mut buf, &[1]).await.0[0].body(), "fast");
}

#[tokio::test]
async fn keep_conn_serves_requests_in_a_row_and_without_it_the_app_closes() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    for _ in 0..3 {
        conn.write_all(&request(1, KEEP, "GET", "/fast", b""))
            .await
            .unwrap();
        assert_eq!(replies(&mut conn, &mut buf, &[1]).await.0[0].body(), "fast");
    }
    conn.write_all(&request(1, CLOSE, "GET", "/fast", b""))
        .await
        .unwrap();
    assert_eq!(replies(&mut conn, &mut buf, &[1]).await.0[0].body(), "fast");
    assert_closed(&mut conn, &mut buf).await;
}

/// nginx (`fastcgi_keep_conn on`) reuses request id 1 the moment its `END_REQUEST` arrives, which
/// may be before the server has reaped the finished request's task: the id is free all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_is_free_again_once_its_end_request_is_sent() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    for _ in 0..2000 {
        conn.write_all(&request(1, KEEP, "GET", "/fast", b""))
            .await
            .unwrap();
        assert_eq!(replies(&mut conn, &mut buf, &[1]).await.0[0].body(), "fast");
    }
    assert_eq!(server.log.lines(), Vec::<String>::new());
}

#[tokio::test]
async fn a_ten_mebibyte_body_streams_through_to_the_app_intact() {
    let server = start(Config::default(), None).await;
    let (conn, mut buf) = connect(server.addr).await;
    let body: Vec<u8> = (0..10 << 20).map(|i: u32| (i % 251) as u8).collect();
    let wire = request(1, CLOSE, "POST", "/echo", &body);
    let (mut rd, mut wr) = conn.into_split();
    let writer = tokio::spawn(async move { wr.write_all(&wire).await.map(|()| wr) });
    let mut records = Vec::new();
    // Read while the writer task still sends: collect records until END_REQUEST.
    loop {
        if let Some(head) = buf.first_chunk::<8>() {
            let h = Header::decode(head).unwrap();
            if buf.len() >= 8 + h.body_len() {
                let rec = buf.split_to(8 + h.body_len());
                records.push((h.kind, rec[8..8 + usize::from(h.content_length)].to_vec()));
                if h.kind == FCGI_END_REQUEST {
                    break;
                }
                continue;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(20), rd.read_buf(&mut buf))
            .await
            .expect("response within 20 s")
            .unwrap();
        assert!(n > 0, "closed before END_REQUEST");
    }
    let _ = writer.await.unwrap().unwrap();
    let stdout: Vec<u8> = records
        .iter()
        .filter(|(k, _)| *k == FCGI_STDOUT)
        .flat_map(|(_, c)| c.clone())
        .collect();
    let text = String::from_utf8(stdout).unwrap();
    let expected = format!("{} {:x}", body.len(), Sha256::digest(&body));
    assert!(text.ends_with(&expected), "{text}");
}

#[tokio::test]
async fn stdin_is_not_buffered_whole_an_upload_waits_for_the_app_to_read() {
    let server = start(Config::default(), None).await;
    let (conn, mut buf) = connect(server.addr).await;
    let body = vec![7u8; 64 << 20]; // far more than the socket buffers and the request's queue hold
    let wire = request(1, CLOSE, "POST", "/lazy", &body);
    let (mut rd, mut wr) = conn.into_split();
    let started = std::time::Instant::now();
    let writer = tokio::spawn(async move {
        wr.write_all(&wire).await.unwrap();
        (started.elapsed(), wr)
    });
    let mut stdout = Vec::new();
    loop {
        if let Some(head) = buf.first_chunk::<8>() {
            let h = Header::decode(head).unwrap();
            if buf.len() >= 8 + h.body_len() {
                let rec = buf.split_to(8 + h.body_len());
                match h.kind {
                    FCGI_STDOUT => {
                        stdout.extend_from_slice(&rec[8..8 + usize::from(h.content_length)])
                    }
                    FCGI_END_REQUEST => break,
                    _ => {}
                }
                continue;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(30), rd.read_buf(&mut buf))
            .await
            .expect("response within 30 s")
            .unwrap();
        assert!(n > 0, "closed before END_REQUEST");
    }
    let (sent_after, _wr) = writer.await.unwrap();
    assert!(
        sent_after >= Duration::from_millis(400),
        "the whole upload was accepted after {sent_after:?}, before the app read any of it"
    );
    assert!(String::from_utf8_lossy(&stdout).ends_with(&body.len().to_string()));
}

#[tokio::test]
async fn app_errors_and_panics_become_500_with_the_error_on_stderr() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    let mut wire = request(1, KEEP, "GET", "/error", b"");
    wire.extend(request(2, KEEP, "GET", "/panic", b""));
    conn.write_all(&wire).await.unwrap();
    let (got, _) = replies(&mut conn, &mut buf, &[1, 2]).await;
    for reply in &got {
        assert!(reply
            .text()
            .starts_with("Status: 500 Internal Server Error\r\n"));
        assert_eq!(reply.end, Some((0, FCGI_REQUEST_COMPLETE)));
    }
    let stderr = String::from_utf8_lossy(&got[0].stderr);
    assert!(stderr.contains("deliberate failure"), "{stderr}");
    let stderr = String::from_utf8_lossy(&got[1].stderr);
    assert!(stderr.contains("deliberate panic"), "{stderr}");
    conn.write_all(&request(3, KEEP, "GET", "/fast", b""))
        .await
        .unwrap();
    assert_eq!(replies_for(&mut conn, &mut buf, 3).await.body(), "fast");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_with_nothing_on_stderr() {
    let mut config = Config::default();
    config.limits.max_body = Some(10);
    let server = start(config, None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    // Declared over the limit: refused before the application runs.
    conn.write_all(&request(1, KEEP, "POST", "/echo", &[b'x'; 20]))
        .await
        .unwrap();
    let declared = replies_for(&mut conn, &mut buf, 1).await;
    // No CONTENT_LENGTH (nginx streaming a chunked upload): the read fails at the limit.
    let mut wire = begin(2, FCGI_RESPONDER, KEEP);
    wire.extend(params(
        2,
        &[("REQUEST_METHOD", "POST"), ("SCRIPT_NAME", "/echo")],
    ));
    wire.extend(stream(FCGI_STDIN, 2, &[b'x'; 20]));
    conn.write_all(&wire).await.unwrap();
    let streamed = replies_for(&mut conn, &mut buf, 2).await;
    for reply in [declared, streamed] {
        assert!(reply.text().starts_with("Status: 413 "), "{}", reply.text());
        // Behind nginx every STDERR record is an `[error]` line: a client's mistake is not one.
        assert_eq!(String::from_utf8_lossy(&reply.stderr), "");
    }
}

async fn replies_for(conn: &mut TcpStream, buf: &mut BytesMut, id: u16) -> Reply {
    replies(conn, buf, &[id]).await.0.remove(0)
}

#[tokio::test]
async fn the_filter_role_exposes_the_data_stream_as_an_extension() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    let mut wire = begin(1, FCGI_FILTER, CLOSE);
    wire.extend(params(
        1,
        &[
            ("REQUEST_METHOD", "GET"),
            ("SCRIPT_NAME", "/filter"),
            ("CONTENT_LENGTH", "3"),
            ("FCGI_DATA_LENGTH", "4"),
            ("FCGI_DATA_LAST_MOD", "0"),
        ],
    ));
    wire.extend(stream(FCGI_STDIN, 1, b"in "));
    wire.extend(stream(FCGI_DATA, 1, b"data"));
    conn.write_all(&wire).await.unwrap();
    assert_eq!(replies_for(&mut conn, &mut buf, 1).await.body(), "in data");
}

#[tokio::test]
async fn the_authorizer_role_is_answered_and_an_unknown_role_is_refused() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    let mut wire = begin(1, FCGI_AUTHORIZER, KEEP);
    wire.extend(params(
        1,
        &[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/fast")],
    ));
    wire.extend(stream(FCGI_STDIN, 1, b""));
    wire.extend(begin(2, 9, KEEP));
    conn.write_all(&wire).await.unwrap();
    let (got, _) = replies(&mut conn, &mut buf, &[1, 2]).await;
    assert_eq!(got[0].body(), "fast");
    assert_eq!(got[1].end, Some((0, FCGI_UNKNOWN_ROLE)));
}

#[tokio::test]
async fn a_peer_outside_fcgi_web_server_addrs_is_refused() {
    let server = start(Config::default(), Some(vec!["10.9.9.9".parse().unwrap()])).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    let _ = conn
        .write_all(&request(1, CLOSE, "GET", "/fast", b""))
        .await;
    assert_closed(&mut conn, &mut buf).await;
    assert_eq!(
        crate::gateway::allowed_peers(Some("127.0.0.1, ::1,junk"), &rgi::Errors::stderr())
            .map(|a| a.len()),
        Some(2)
    );
}

#[tokio::test]
async fn a_graceful_stop_finishes_the_request_in_flight_then_closes() {
    let server = start(Config::default(), None).await;
    let (mut conn, mut buf) = connect(server.addr).await;
    conn.write_all(&request(1, KEEP, "GET", "/sleep", b""))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.shutdown.cancel();
    assert_eq!(replies_for(&mut conn, &mut buf, 1).await.body(), "slow");
    assert_closed(&mut conn, &mut buf).await;
    tokio::time::timeout(Duration::from_secs(5), server.done)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn fastcgi_is_served_on_a_unix_socket() {
    let path = std::env::temp_dir().join(format!("rgi-fcgi-test-{}.sock", std::process::id()));
    let listener = Bind::Unix(path.clone())
        .listen(BindOptions::default())
        .unwrap()
        .into_tokio()
        .unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(crate::Protocol::Fastcgi.serve(
        vec![listener],
        app(Arc::new(AtomicBool::new(false))),
        Config::default(),
        Arc::new(ServerInfo::default()),
        shutdown.clone(),
    ));
    let mut conn = tokio::net::UnixStream::connect(&path).await.unwrap();
    conn.write_all(&request(1, CLOSE, "GET", "/fast", b""))
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("Status: 200 OK\r\n"), "{text}");
    assert!(text.contains("fast"));
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
