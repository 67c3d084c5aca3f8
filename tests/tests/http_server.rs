//! The RGI HTTP server, driven over loopback by curl and raw sockets: keep-alive, pipelining,
//! streaming both ways, HEAD, Expect: 100-continue, limits, timeouts, panics, graceful stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rgi_tests::{curl, demo_json, raw_exchange, read_until_close, sha256_hex, Server};

fn get(server: &Server, path: &str) -> (u16, String) {
    let out = curl(&["-w", "\n%{http_code}", &server.url(path)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line from -w");
    (code.parse().expect("status code"), body.to_owned())
}

#[test]
fn demo_reports_every_required_environ_key() {
    let server = Server::start("demo", &[]);
    let out = curl(&[
        "-H",
        "Content-Type: text/plain",
        "-H",
        "X-Custom: yes",
        "--data-binary",
        "hello",
        &server.url("/some/path%20x?a=1&b=2"),
    ]);
    let json = demo_json(&out.stdout);
    let env = &json["environ"];
    let port = server.addr().rsplit(':').next().unwrap();
    let expect = [
        ("REQUEST_METHOD", "POST"),
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", "/some/path x"),
        ("QUERY_STRING", "a=1&b=2"),
        ("REQUEST_URI", "/some/path%20x?a=1&b=2"),
        ("CONTENT_TYPE", "text/plain"),
        ("CONTENT_LENGTH", "5"),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", port),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("HTTP_X_CUSTOM", "yes"),
        ("rgi.version", "1.0"),
        ("rgi.url_scheme", "http"),
    ];
    for (key, value) in expect {
        assert_eq!(env[key], value, "environ[{key}] in {json}");
    }
    assert!(env["SERVER_SOFTWARE"]
        .as_str()
        .unwrap()
        .starts_with("rgi-http/"));
    assert!(env["REMOTE_PORT"].as_str().unwrap().parse::<u16>().is_ok());
    assert!(env["HTTP_HOST"].as_str().is_some());
    assert!(env.get("HTTPS").is_none(), "HTTPS is absent on plain http");
    assert!(env.get("HTTP_CONTENT_TYPE").is_none());
    assert!(env.get("HTTP_CONTENT_LENGTH").is_none());
    assert_eq!(json["body_len"], 5);
    assert_eq!(json["body_sha256"], sha256_hex(b"hello"));
}

#[test]
fn a_10_mib_chunked_post_arrives_whole_while_memory_stays_bounded() {
    let server = Server::start("demo", &[]);
    let body: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let path = std::env::temp_dir().join(format!("rgi-10mib-{}", std::process::id()));
    std::fs::write(&path, &body).unwrap();
    // Warm up so the baseline includes the runtime's steady state.
    let _ = curl(&[&server.url("/warm")]);
    let before = server.memory_kib("VmRSS");
    let out = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", path.display()),
        &server.url("/upload"),
    ]);
    std::fs::remove_file(&path).ok();
    let json = demo_json(&out.stdout);
    assert_eq!(json["body_len"], 10 * 1024 * 1024);
    assert_eq!(json["body_sha256"], sha256_hex(&body));
    assert!(
        json["environ"].get("CONTENT_LENGTH").is_none(),
        "no CONTENT_LENGTH for chunked"
    );
    let peak = server.memory_kib("VmHWM");
    let grew = peak.saturating_sub(before);
    // Streaming: the 10 MiB body must never be held whole (allow the runtime some working memory).
    assert!(
        grew < 6 * 1024,
        "server memory grew by {grew} KiB (baseline {before}, peak {peak})"
    );
}

#[test]
fn the_test_client_and_the_http_server_show_the_app_the_same_environ() {
    let server = Server::start("demo", &[]);
    let out = curl(&[
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: */*",
        "-H",
        "User-Agent: parity/1",
        "-H",
        "Cookie: a=1",
        "-H",
        "Cookie: b=2",
        "--data-binary",
        "{\"x\":1}",
        &server.url("/p%C3%A9/q?x=%20&y"),
    ]);
    let over_http = demo_json(&out.stdout);

    let client =
        rgi::testing::TestClient::new(example_demo::Demo).with_conn(rgi::convert::ConnInfo {
            local: Some(server.addr().parse().unwrap()),
            remote: Some("127.0.0.1:1".parse().unwrap()),
            scheme: rgi::Scheme::Http,
        });
    let response = client
        .post("/p%C3%A9/q?x=%20&y")
        .header("Host", server.addr())
        .header("User-Agent", "parity/1")
        .header("Accept", "*/*")
        .header("Content-Type", "application/json")
        .header("Cookie", "a=1")
        .header("Cookie", "b=2")
        .body("{\"x\":1}")
        .send_blocking();
    let in_process = demo_json(response.body());

    let mut a = over_http["environ"].as_object().unwrap().clone();
    let mut b = in_process["environ"].as_object().unwrap().clone();
    for server_specific in ["SERVER_SOFTWARE", "REMOTE_PORT"] {
        a.remove(server_specific);
        b.remove(server_specific);
    }
    assert_eq!(a, b, "environ differs between HTTP and the test client");
    assert_eq!(a["HTTP_COOKIE"], "a=1; b=2");
    assert_eq!(over_http["body_sha256"], in_process["body_sha256"]);
}

#[test]
fn a_blocking_request_does_not_delay_a_concurrent_fast_one() {
    let server = Server::start("testapp", &["--threads", "1"]);
    let slow_url = server.url("/sleep?ms=800");
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let out = curl(&[&slow_url]);
        (
            started.elapsed(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    });
    std::thread::sleep(Duration::from_millis(150));
    let started = Instant::now();
    let (code, body) = get(&server, "/fast");
    let fast = started.elapsed();
    let (slow_took, slow_body) = slow.join().unwrap();
    assert_eq!((code, body.as_str()), (200, "fast\n"));
    assert_eq!(slow_body, "slept 800\n");
    // One async worker thread: if the blocking sleep ran on it, /fast would wait ~650 ms.
    assert!(
        fast < Duration::from_millis(300),
        "fast request took {fast:?}"
    );
    assert!(slow_took >= Duration::from_millis(800));
}

#[test]
fn an_axum_router_answers_through_the_bridge_over_the_rgi_server() {
    let server = Server::start("axum-bridge", &[]);
    assert_eq!(get(&server, "/hello/rgi"), (200, "hello rgi\n".into()));
    assert_eq!(get(&server, "/nope").0, 404);
    let out = curl(&["--data-binary", "ping", &server.url("/echo")]);
    assert_eq!(out.stdout, b"ping");
}

#[test]
fn an_rgi_app_runs_inside_axum_on_plain_hyper() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/axum", axum::routing::get(|| async { "native axum\n" }))
        .fallback_service(rgi::tower::AppService::new(example_demo::Demo));
    let served = runtime.spawn(async move { axum::serve(listener, router).await });
    let out = curl(&[&format!("http://{addr}/axum")]);
    assert_eq!(out.stdout, b"native axum\n");
    let out = curl(&["--data-binary", "abc", &format!("http://{addr}/rgi/x?q=1")]);
    let json = demo_json(&out.stdout);
    assert_eq!(json["environ"]["PATH_INFO"], "/rgi/x");
    assert_eq!(json["environ"]["QUERY_STRING"], "q=1");
    assert_eq!(json["body_sha256"], sha256_hex(b"abc"));
    served.abort();
}

#[test]
fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let server = Server::start("hello", &[]);
    let request = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let reply = raw_exchange(server.addr(), request, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    let counts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Access count:"))
        .collect();
    assert_eq!(
        counts,
        ["Access count: 1", "Access count: 2", "Access count: 3"]
    );
    assert!(
        text.to_ascii_lowercase().contains("date: "),
        "Date header: {text}"
    );
}

#[test]
fn head_has_the_get_length_and_no_body() {
    let server = Server::start("testapp", &[]);
    let reply = raw_exchange(
        server.addr(),
        b"HEAD /big?bytes=1234 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("content-length: 1234"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\n"),
        "HEAD response carried a body: {text:?}"
    );
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let server = Server::start("demo", &[]);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100 Continue"),
        "got {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    stream.write_all(b"data").unwrap();
    let rest = read_until_close(&mut stream, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("200 OK"), "{text}");
    assert!(text.contains(&sha256_hex(b"data")), "{text}");
}

#[test]
fn requests_beyond_the_limits_get_4xx_answers() {
    let server = Server::start(
        "demo",
        &[
            "--limit-request-line",
            "100",
            "--limit-request-fields",
            "10",
            "--limit-request-head",
            "8192",
            "--limit-request-body",
            "1000",
        ],
    );
    let status = |req: Vec<u8>| -> String {
        let reply = raw_exchange(server.addr(), &req, Duration::from_secs(10));
        String::from_utf8_lossy(&reply)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(200));
    assert_eq!(status(long_uri.into_bytes()), "HTTP/1.1 414 URI Too Long");
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..20 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(
        status(many.into_bytes()),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(9000)
    );
    assert_eq!(
        status(big_head.into_bytes()),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let big_body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".to_vec();
    assert_eq!(status(big_body), "HTTP/1.1 413 Payload Too Large");
    let mut chunked =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[b'z'; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(status(chunked), "HTTP/1.1 413 Payload Too Large");
    // And the server is still fine.
    assert_eq!(
        curl(&["-o", "/dev/null", "-w", "%{http_code}", &server.url("/")]).stdout,
        b"200"
    );
}

#[test]
fn a_client_that_sends_its_head_too_slowly_is_disconnected() {
    let server = Server::start("hello", &["--header-timeout", "1"]);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let reply = read_until_close(&mut stream, Duration::from_secs(10));
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "connection kept for {waited:?}"
    );
    assert!(!String::from_utf8_lossy(&reply).contains("200 OK"));
}

#[test]
fn the_header_timeout_spares_slow_requests_and_closes_idle_keep_alive_connections() {
    let server = Server::start("testapp", &["--header-timeout", "1"]);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The application takes longer than the header timeout: the request is answered.
    stream
        .write_all(b"GET /async-sleep?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Then the connection idles: closed about one timeout after the response.
    let idle = Instant::now();
    let rest = read_until_close(&mut stream, Duration::from_secs(10));
    let waited = idle.elapsed();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "idle connection closed after {waited:?}"
    );
}

/// Reads one response with a `Content-Length` body from a kept-alive connection, and not a byte more:
/// a pipelined second response that arrived in the same segment stays in the socket for the next call.
fn read_response(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let len: usize = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("read the body");
    text + &String::from_utf8_lossy(&body)
}

#[test]
fn an_idle_connection_that_released_its_buffers_serves_on() {
    let server = Server::start("hello", &["--idle-release", "0.2", "--header-timeout", "3"]);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request).unwrap();
    assert!(read_response(&mut stream).contains("Access count: 1"));
    // Idle past --idle-release: the connection is parked, then answers again.
    std::thread::sleep(Duration::from_millis(600));
    stream.write_all(request).unwrap();
    assert!(read_response(&mut stream).contains("Access count: 2"));
    // Two pipelined requests in one write after another idle period.
    std::thread::sleep(Duration::from_millis(600));
    stream
        .write_all(&[&request[..], &request[..]].concat())
        .unwrap();
    assert!(read_response(&mut stream).contains("Access count: 3"));
    assert!(read_response(&mut stream).contains("Access count: 4"));
    // A head that arrives slowly, across an idle-release period, is still served.
    std::thread::sleep(Duration::from_millis(600));
    stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    stream.write_all(b"Host: x\r\n\r\n").unwrap();
    assert!(read_response(&mut stream).contains("Access count: 5"));
    // The header-read timeout still closes a parked connection.
    let idle = Instant::now();
    let rest = read_until_close(&mut stream, Duration::from_secs(10));
    assert!(rest.is_empty());
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(6),
        "parked connection closed after {waited:?}"
    );
}

#[test]
fn an_application_panic_gives_500_and_the_server_keeps_serving() {
    let server = Server::start("testapp", &[]);
    assert_eq!(get(&server, "/panic").0, 500);
    assert_eq!(get(&server, "/fast"), (200, "fast\n".into()));
    // A panic inside the body stream aborts that response (no clean end), then the server goes on.
    let out = curl(&[&server.url("/panic-body")]);
    assert!(
        !out.status.success(),
        "a body that panicked must not look complete"
    );
    assert_eq!(get(&server, "/fast"), (200, "fast\n".into()));
}

#[test]
fn body_errors_and_short_bodies_never_look_complete_to_the_client() {
    let server = Server::start("testapp", &[]);
    let out = curl(&[&server.url("/abort")]);
    assert!(
        !out.status.success(),
        "an aborted chunked body must fail in curl"
    );
    let out = curl(&[&server.url("/short-body")]);
    assert!(
        !out.status.success(),
        "a body shorter than Content-Length must fail in curl"
    );
    assert_eq!(get(&server, "/fast").0, 200);
}

#[test]
fn a_streamed_response_delivers_its_first_chunk_before_the_app_finishes() {
    let server = Server::start("testapp", &[]);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            b"GET /stream?chunks=3&delay_ms=500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut first_chunk_at = None;
    while started.elapsed() < Duration::from_secs(10) {
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if first_chunk_at.is_none() && String::from_utf8_lossy(&seen).contains("chunk 0") {
            first_chunk_at = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let first = first_chunk_at.expect("chunk 0 arrived");
    assert!(String::from_utf8_lossy(&seen).contains("chunk 2"));
    assert!(
        first < Duration::from_millis(400),
        "first chunk after {first:?}"
    );
    assert!(
        total >= Duration::from_millis(1000),
        "whole body after {total:?}"
    );
}

#[test]
fn a_client_disconnect_drops_the_response_body() {
    let server = Server::start("testapp", &[]);
    let before: serde_json::Value = demo_json(&curl(&[&server.url("/stats")]).stdout);
    {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .write_all(b"GET /infinite HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 256];
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = stream.read(&mut buf).unwrap();
    } // closed here
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now: serde_json::Value = demo_json(&curl(&[&server.url("/stats")]).stdout);
        if now["dropped"].as_u64() > before["dropped"].as_u64() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "infinite body not dropped after disconnect"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_cleanly() {
    let mut server = Server::start("testapp", &["--graceful-timeout", "10"]);
    let url = server.url("/sleep?ms=700");
    let addr = server.addr().to_owned();
    let in_flight = std::thread::spawn(move || curl(&[&url]));
    std::thread::sleep(Duration::from_millis(200));
    server.signal("TERM");
    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "listener still open after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = in_flight.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "slept 700\n");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("server exited");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn unix_socket_listeners_serve_and_are_removed_on_exit() {
    let path = std::env::temp_dir().join(format!("rgi-test-{}.sock", std::process::id()));
    let bind = format!("unix:{}", path.display());
    let mut server = Server::start("hello", &["--bind", &bind]);
    let out = curl(&["--unix-socket", path.to_str().unwrap(), "http://localhost/"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Hello World!\n"));
    let demo = Server::start(
        "demo",
        &["--bind", &format!("unix:{}.demo", path.display())],
    );
    let out = curl(&[
        "--unix-socket",
        &format!("{}.demo", path.display()),
        "http://localhost/x",
    ]);
    let json = demo_json(&out.stdout);
    assert!(
        json["environ"].get("REMOTE_ADDR").is_none(),
        "no REMOTE_ADDR on unix sockets"
    );
    drop(demo);
    server.stop_within(Duration::from_secs(10));
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn responses_with_several_set_cookie_headers_keep_them_apart() {
    let server = Server::start("testapp", &[]);
    let out = curl(&["-i", &server.url("/cookies")]);
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(text.contains("set-cookie: a=1; path=/\r\n"), "{text}");
    assert!(
        text.contains("set-cookie: b=2; path=/; httponly\r\n"),
        "{text}"
    );
}

#[test]
fn the_launcher_rejects_bad_bind_addresses_with_a_usage_error() {
    let out = std::process::Command::new(rgi_tests::binary("hello"))
        .args(["--bind", "nonsense/path"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOST:PORT"));
}
